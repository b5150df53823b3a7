//! A libcni-like driver for end-to-end tests. It runs the plugins of a conflist the way a
//! runtime does: the CNI_* environment, each plugin's configuration on stdin with the list's
//! `name` and chosen `cniVersion`, `runtimeConfig` built from the plugin's `capabilities`,
//! `prevResult` passed down the chain; it hands back the final result so the caller can keep
//! it (libcni's cache) for CHECK and DEL, and runs DEL in reverse order.
//!
//! Plugins run inside a sandbox (through nsenter), or directly when the driver itself already
//! runs inside one (benchmarks, so nothing but the plugins is timed).

#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value, json};

use super::common::{NSNET, Sandbox};

/// Where the reference plugins live (Debian's containernetworking-plugins).
pub const REFERENCE_DIR: &str = "/usr/lib/cni";
/// Spec versions this driver speaks, oldest first (like libcni 1.2).
pub const DRIVER_VERSIONS: [&str; 5] = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// A network configuration list.
#[derive(Debug, Clone)]
pub struct Conflist {
    pub name: String,
    /// The version the driver chose (`cniVersion`, else the newest of `cniVersions` it knows).
    pub version: String,
    pub plugins: Vec<Value>,
}

impl Conflist {
    /// Reads a conflist as a runtime does.
    pub fn new(v: Value) -> Conflist {
        let version = match v["cniVersion"].as_str() {
            Some(s) => s.to_string(),
            None => v["cniVersions"]
                .as_array()
                .expect("conflist has cniVersion or cniVersions")
                .iter()
                .filter_map(Value::as_str)
                .filter(|s| DRIVER_VERSIONS.contains(s))
                .max_by_key(|s| DRIVER_VERSIONS.iter().position(|d| d == s))
                .expect("a version the driver knows")
                .to_string(),
        };
        Conflist {
            name: v["name"].as_str().unwrap().to_string(),
            version,
            plugins: v["plugins"].as_array().unwrap().clone(),
        }
    }

    /// A list of one plugin.
    pub fn single(version: &str, plugin: Value) -> Conflist {
        Conflist::new(json!({
            "cniVersion": version,
            "name": plugin["name"].as_str().expect("plugin has a name"),
            "plugins": [plugin],
        }))
    }

    fn at_least(&self, v: &str) -> bool {
        let pos = |x: &str| DRIVER_VERSIONS.iter().position(|d| *d == x).unwrap();
        pos(&self.version) >= pos(v)
    }
}

/// One container's side of an invocation.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub container_id: String,
    /// CNI_NETNS (empty string for "none", as containerd sends on a late DEL).
    pub netns: String,
    pub ifname: String,
    /// CNI_ARGS pairs.
    pub args: Vec<(String, String)>,
    /// Values for capabilities, e.g. `portMappings`, `ips`, `mac`.
    pub capability_args: Map<String, Value>,
}

impl Runtime {
    /// A container `id` in namespace file `netns`, interface eth0.
    pub fn new(id: &str, netns: &str) -> Runtime {
        Runtime {
            container_id: id.to_string(),
            netns: netns.to_string(),
            ifname: "eth0".to_string(),
            args: Vec::new(),
            capability_args: Map::new(),
        }
    }

    /// With a capability value.
    pub fn cap(mut self, name: &str, v: Value) -> Runtime {
        self.capability_args.insert(name.to_string(), v);
        self
    }
}

/// A plugin's error result (or a plugin that failed without one).
#[derive(Debug, Clone)]
pub struct CniFailure {
    pub plugin: String,
    pub code: i64,
    pub msg: String,
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for CniFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plugin {} failed (exit {}, code {}): {}\nstdout: {}\nstderr: {}",
            self.plugin, self.exit, self.code, self.msg, self.stdout, self.stderr
        )
    }
}

/// What one plugin run printed.
#[derive(Debug, Clone)]
pub struct Raw {
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Raw {
    /// The error JSON on stdout, asserting the spec's shape.
    pub fn error(&self) -> (i64, String) {
        assert_ne!(self.exit, 0, "expected a failure: {}", self.stdout);
        let v: Value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not the error JSON ({e}): {:?} (stderr {:?})",
                self.stdout, self.stderr
            )
        });
        assert!(v["cniVersion"].is_string(), "{v}");
        assert!(v["msg"].is_string(), "{v}");
        (
            v["code"].as_i64().expect("code"),
            v["msg"].as_str().unwrap().to_string(),
        )
    }
}

/// The driver: a plugin directory holding `nsnet` (a link to the binary under test, as an
/// administrator installs it) searched before the reference plugins.
pub struct Driver<'a> {
    sandbox: Option<&'a Sandbox>,
    dir: tempfile::TempDir,
}

impl<'a> Driver<'a> {
    /// Runs plugins inside `sandbox`.
    pub fn new(sandbox: &'a Sandbox) -> Driver<'a> {
        Self::make(Some(sandbox))
    }

    /// Runs plugins directly (the caller already runs inside a sandbox).
    pub fn direct() -> Driver<'static> {
        Driver::make(None)
    }

    fn make(sandbox: Option<&Sandbox>) -> Driver<'_> {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(NSNET, dir.path().join("nsnet")).unwrap();
        Driver { sandbox, dir }
    }

    /// The state directory nsnet's configurations name: the sandbox's, or (run directly
    /// inside one) the one `NSNET_STATE_DIR` gives this process.
    pub fn state_dir(&self) -> String {
        match self.sandbox {
            Some(s) => s.state_dir().display().to_string(),
            None => std::env::var("NSNET_STATE_DIR")
                .expect("a driver run directly needs NSNET_STATE_DIR (the sandbox's)"),
        }
    }

    /// CNI_PATH.
    pub fn cni_path(&self) -> String {
        format!("{}:{REFERENCE_DIR}", self.dir.path().display())
    }

    fn find(&self, kind: &str) -> PathBuf {
        [self.dir.path(), Path::new(REFERENCE_DIR)]
            .iter()
            .map(|d| d.join(kind))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("no CNI plugin {kind:?} in {}", self.cni_path()))
    }

    /// Runs a plugin binary with this environment and stdin.
    pub fn raw(&self, kind: &str, env: &[(&str, &str)], stdin: &[u8]) -> Raw {
        let mut cmd = self.command(kind);
        for (k, v) in env {
            cmd.env(k, v);
        }
        self.run(cmd, stdin)
    }

    /// The command that runs plugin `kind` (in the sandbox, with CNI_PATH), for a caller
    /// that shapes the environment itself.
    pub fn command(&self, kind: &str) -> Command {
        let path = self.find(kind);
        let mut cmd = match self.sandbox {
            Some(s) => s.command(path.to_str().unwrap(), &[]),
            None => Command::new(&path),
        };
        cmd.env("CNI_PATH", self.cni_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs a plugin command with `stdin`.
    pub fn run(&self, mut cmd: Command, stdin: &[u8]) -> Raw {
        let mut child = cmd.spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        Raw {
            exit: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// libcni's buildOneConfig: the plugin's keys, the list's name and version, runtimeConfig
    /// for declared capabilities, prevResult.
    fn plugin_config(
        list: &Conflist,
        plugin: &Value,
        rt: Option<&Runtime>,
        prev: Option<&Value>,
    ) -> Value {
        let mut conf = plugin.as_object().unwrap().clone();
        conf.insert("name".into(), json!(list.name));
        conf.insert("cniVersion".into(), json!(list.version));
        if let Some(p) = prev {
            conf.insert("prevResult".into(), p.clone());
        }
        let mut runtime_config = Map::new();
        if let (Some(caps), Some(rt)) = (plugin["capabilities"].as_object(), rt) {
            for (cap, on) in caps {
                if on.as_bool() == Some(true)
                    && let Some(v) = rt.capability_args.get(cap)
                {
                    runtime_config.insert(cap.clone(), v.clone());
                }
            }
        }
        if !runtime_config.is_empty() {
            conf.insert("runtimeConfig".into(), Value::Object(runtime_config));
        }
        Value::Object(conf)
    }

    fn invoke(
        &self,
        command: &str,
        list: &Conflist,
        plugin: &Value,
        rt: Option<&Runtime>,
        prev: Option<&Value>,
        extra: &Map<String, Value>,
    ) -> Result<Option<Value>, CniFailure> {
        let mut conf = Self::plugin_config(list, plugin, rt, prev);
        // nsnet's state directory is a configuration key (a plugin cannot rely on the
        // runtime's environment): the sandbox's, as an administrator would write it.
        if conf["type"] == "nsnet" && conf.get("stateDir").is_none() {
            conf["stateDir"] = json!(self.state_dir());
        }
        for (k, v) in extra {
            conf[k] = v.clone();
        }
        let kind = plugin["type"].as_str().unwrap();
        let args = rt
            .map(|r| {
                r.args
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .unwrap_or_default();
        let mut env = vec![("CNI_COMMAND", command)];
        if let Some(r) = rt {
            env.extend([
                ("CNI_CONTAINERID", r.container_id.as_str()),
                ("CNI_NETNS", r.netns.as_str()),
                ("CNI_IFNAME", r.ifname.as_str()),
                ("CNI_ARGS", args.as_str()),
            ]);
        }
        let raw = self.raw(kind, &env, conf.to_string().as_bytes());
        if raw.exit == 0 {
            let out = raw.stdout.trim();
            return Ok(if out.is_empty() {
                None
            } else {
                Some(
                    serde_json::from_str(out)
                        .unwrap_or_else(|e| panic!("plugin {kind} printed no JSON ({e}): {out:?}")),
                )
            });
        }
        let v: Value = serde_json::from_str(&raw.stdout).unwrap_or(Value::Null);
        Err(CniFailure {
            plugin: kind.to_string(),
            code: v["code"].as_i64().unwrap_or(-1),
            msg: v["msg"].as_str().unwrap_or_default().to_string(),
            exit: raw.exit,
            stdout: raw.stdout,
            stderr: raw.stderr,
        })
    }

    /// ADD through the chain; the final result (to cache).
    pub fn add(&self, list: &Conflist, rt: &Runtime) -> Result<Value, CniFailure> {
        let mut prev: Option<Value> = None;
        for p in &list.plugins {
            let out = self.invoke("ADD", list, p, Some(rt), prev.as_ref(), &Map::new())?;
            prev = Some(out.unwrap_or_else(|| panic!("ADD of {} printed no result", p["type"])));
        }
        Ok(prev.expect("a list has plugins"))
    }

    /// CHECK through the chain with the cached result (0.4.0 and later).
    pub fn check(&self, list: &Conflist, rt: &Runtime, cached: &Value) -> Result<(), CniFailure> {
        assert!(list.at_least("0.4.0"), "CHECK needs 0.4.0");
        for p in &list.plugins {
            self.invoke("CHECK", list, p, Some(rt), Some(cached), &Map::new())?;
        }
        Ok(())
    }

    /// DEL through the chain in reverse, with the cached result from 0.4.0 on.
    pub fn del(
        &self,
        list: &Conflist,
        rt: &Runtime,
        cached: Option<&Value>,
    ) -> Result<(), CniFailure> {
        let prev = cached.filter(|_| list.at_least("0.4.0"));
        for p in list.plugins.iter().rev() {
            self.invoke("DEL", list, p, Some(rt), prev, &Map::new())?;
        }
        Ok(())
    }

    /// GC with the attachments to keep (1.1.0).
    pub fn gc(&self, list: &Conflist, valid: &[(&str, &str)]) -> Result<(), CniFailure> {
        let keep: Vec<Value> = valid
            .iter()
            .map(|(c, i)| json!({"containerID": c, "ifname": i}))
            .collect();
        let mut extra = Map::new();
        extra.insert("cni.dev/valid-attachments".into(), Value::Array(keep));
        for p in &list.plugins {
            self.invoke("GC", list, p, None, None, &extra)?;
        }
        Ok(())
    }

    /// STATUS of each plugin (1.1.0).
    pub fn status(&self, list: &Conflist) -> Result<(), CniFailure> {
        for p in &list.plugins {
            self.invoke("STATUS", list, p, None, None, &Map::new())?;
        }
        Ok(())
    }

    /// VERSION of a plugin.
    pub fn version(&self, kind: &str) -> Value {
        let raw = self.raw(
            kind,
            &[("CNI_COMMAND", "VERSION")],
            br#"{"cniVersion":"1.0.0"}"#,
        );
        assert_eq!(raw.exit, 0, "{}{}", raw.stdout, raw.stderr);
        serde_json::from_str(&raw.stdout).unwrap()
    }
}
