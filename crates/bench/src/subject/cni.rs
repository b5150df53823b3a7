//! CNI plugin chains driven the way libcni drives them: one process per plugin, the network
//! config on stdin with `name`, `cniVersion`, `runtimeConfig` (from the plugin's declared
//! `capabilities`) and `prevResult` filled in; ADD in order, DEL in reverse with the cached ADD
//! result. Used for nsnet's CNI face (`type: nsnet`) and for the reference chain
//! bridge + host-local + portmap from containernetworking-plugins.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use super::{CONTAINER_PORT, Container, Net, Subject};
use crate::run;

/// Directories the reference plugins are installed in (Debian: /usr/lib/cni).
pub const CNI_DIRS: &[&str] = &["/usr/lib/cni", "/opt/cni/bin"];

/// The CNI version both faces are driven with.
pub const CNI_VERSION: &str = "1.0.0";

/// One plugin of a chain: its binary and its config (as in a conflist's `plugins` entry).
#[derive(Debug, Clone)]
pub struct Plugin {
    pub binary: PathBuf,
    pub conf: Value,
}

/// A chain of plugins under one network name.
pub struct Chain {
    pub label: String,
    pub network: String,
    pub cni_version: String,
    pub plugins: Vec<Plugin>,
    /// CNI_PATH handed to plugins (where they find IPAM plugins).
    pub cni_path: String,
    /// Extra environment (e.g. NSNET_STATE_DIR).
    pub env: Vec<(String, String)>,
    /// Untimed steps before the first ADD (e.g. create a directory).
    pub state_dirs: Vec<PathBuf>,
    /// ADD results by container id, for DEL (libcni keeps them in its cache dir).
    results: Mutex<HashMap<String, Value>>,
}

/// The config one plugin sees for `container` (libcni's buildOneConfig): name and version,
/// runtimeConfig for each capability it declared, the previous plugin's result.
pub fn plugin_stdin(
    network: &str,
    cni_version: &str,
    plugin: &Value,
    c: &Container,
    prev: Option<&Value>,
) -> Value {
    let mut conf = plugin.clone();
    let obj = conf.as_object_mut().expect("plugin config is an object");
    obj.insert("name".into(), json!(network));
    obj.insert("cniVersion".into(), json!(cni_version));
    let caps = obj.remove("capabilities").unwrap_or(Value::Null);
    if caps["portMappings"] == json!(true) {
        obj.insert(
            "runtimeConfig".into(),
            json!({"portMappings": [
                {"hostPort": c.host_port, "containerPort": CONTAINER_PORT, "protocol": "tcp"}
            ]}),
        );
    }
    if let Some(p) = prev {
        obj.insert("prevResult".into(), p.clone());
    }
    conf
}

/// The first IPv4 address of a CNI result.
pub fn result_ip(result: &Value) -> Option<IpAddr> {
    result["ips"].as_array()?.iter().find_map(|ip| {
        let addr = ip["address"].as_str()?.split('/').next()?;
        addr.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
    })
}

/// A plugin's error as the spec writes it on stdout (`{code, msg, details}`), else its raw
/// output and exit status.
fn plugin_error(stdout: &[u8], stderr: &[u8], status: std::process::ExitStatus) -> String {
    match serde_json::from_slice::<Value>(stdout) {
        Ok(v) if v.get("code").is_some() => format!(
            "CNI error {}: {} {}",
            v["code"],
            v["msg"].as_str().unwrap_or(""),
            v["details"].as_str().unwrap_or("")
        )
        .trim_end()
        .to_string(),
        _ => format!(
            "{status}: {}{}",
            String::from_utf8_lossy(stdout).trim(),
            String::from_utf8_lossy(stderr).trim()
        ),
    }
}

impl Chain {
    /// A chain; results are cached per container id.
    pub fn new(label: &str, network: &str, plugins: Vec<Plugin>, cni_path: String) -> Chain {
        Chain {
            label: label.into(),
            network: network.into(),
            cni_version: CNI_VERSION.into(),
            plugins,
            cni_path,
            env: Vec::new(),
            state_dirs: Vec::new(),
            results: Mutex::new(HashMap::new()),
        }
    }

    fn exec(&self, plugin: &Plugin, command: &str, c: &Container, stdin: &Value) -> Result<Value> {
        let mut cmd = Command::new(&plugin.binary);
        cmd.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", c.id())
            .env("CNI_NETNS", c.netns_path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", &self.cni_path)
            .env_remove("NSNET_LOG");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let input = serde_json::to_vec(stdin)?;
        let out = run::capture(&mut cmd, Some(&input))?;
        if !out.status.success() {
            anyhow::bail!(
                "{} {command} {}: {}",
                plugin.binary.display(),
                c.netns,
                plugin_error(&out.stdout, &out.stderr, out.status)
            );
        }
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&out.stdout)
            .with_context(|| format!("parse {} {command} result", plugin.binary.display()))
    }

    /// CNI ADD through the whole chain; returns the final result.
    pub fn add(&self, c: &Container) -> Result<Value> {
        let mut prev: Option<Value> = None;
        for p in &self.plugins {
            let stdin = plugin_stdin(&self.network, &self.cni_version, &p.conf, c, prev.as_ref());
            prev = Some(self.exec(p, "ADD", c, &stdin)?);
        }
        let result = prev.unwrap_or(Value::Null);
        self.results
            .lock()
            .expect("results lock")
            .insert(c.id(), result.clone());
        Ok(result)
    }

    /// CNI DEL through the chain in reverse, each plugin given the cached ADD result.
    pub fn del(&self, c: &Container) -> Result<()> {
        let cached = self.results.lock().expect("results lock").remove(&c.id());
        let mut first_err = None;
        for p in self.plugins.iter().rev() {
            let stdin = plugin_stdin(
                &self.network,
                &self.cni_version,
                &p.conf,
                c,
                cached.as_ref(),
            );
            if let Err(e) = self.exec(p, "DEL", c, &stdin) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Subject for Chain {
    fn name(&self) -> String {
        self.label.clone()
    }

    fn prepare(&mut self) -> Result<()> {
        for d in &self.state_dirs {
            std::fs::create_dir_all(d)?;
        }
        Ok(())
    }

    fn setup(&self, c: &Container) -> Result<Option<IpAddr>> {
        Ok(result_ip(&self.add(c)?))
    }

    fn teardown(&self, c: &Container) -> Result<()> {
        self.del(c)
    }

    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

/// The reference chain: bridge (with host-local IPAM, masquerade, hairpin) then portmap.
pub fn reference_chain(net: Net, ipam_dir: &Path) -> Option<Chain> {
    let bridge = plugin_binary("bridge")?;
    let portmap = plugin_binary("portmap")?;
    plugin_binary("host-local")?;
    let plugins = vec![
        Plugin {
            binary: bridge,
            conf: json!({
                "type": "bridge",
                "bridge": "cnibr0",
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": ipam(net, Some(ipam_dir)),
            }),
        },
        Plugin {
            binary: portmap,
            conf: json!({"type": "portmap", "snat": true, "capabilities": {"portMappings": true}}),
        },
    ];
    let mut chain = Chain::new(super::CNI_REF, "benchref", plugins, CNI_DIRS.join(":"));
    chain.state_dirs.push(ipam_dir.to_path_buf());
    Some(chain)
}

/// A reference plugin, looked up only in the plugin directories (`bridge` on $PATH is
/// iproute2's).
fn plugin_binary(name: &str) -> Option<PathBuf> {
    let candidates: Vec<PathBuf> = CNI_DIRS.iter().map(|d| Path::new(d).join(name)).collect();
    run::find_executable(&candidates)
}

/// host-local-style IPAM keys (nsnet reads the same keys into its own store).
fn ipam(net: Net, data_dir: Option<&Path>) -> Value {
    let mut v = json!({
        "type": "host-local",
        "ranges": [[{"subnet": net.cidr(), "gateway": net.gateway().to_string()}]],
        "routes": [{"dst": "0.0.0.0/0"}],
    });
    if let Some(d) = data_dir {
        v["dataDir"] = json!(d.display().to_string());
    }
    v
}

/// What `nsnet` answers to CNI_COMMAND=VERSION: the versions it supports, or why not.
pub fn nsnet_versions(nsnet: &Path) -> Result<Vec<String>, String> {
    let mut cmd = Command::new(nsnet);
    cmd.env("CNI_COMMAND", "VERSION").env_remove("NSNET_LOG");
    let out = run::capture(&mut cmd, Some(br#"{"cniVersion":"1.0.0"}"#))
        .map_err(|e| format!("cannot run nsnet as a CNI plugin: {e:#}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!(
            "nsnet does not answer CNI_COMMAND=VERSION yet ({}: {}); skipped",
            out.status,
            stderr.lines().next().unwrap_or("").trim()
        ));
    }
    let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!("nsnet's answer to CNI_COMMAND=VERSION is not a CNI version result: {e}")
    })?;
    let versions: Vec<String> = v["supportedVersions"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if versions.is_empty() {
        return Err("nsnet's VERSION result lists no supportedVersions".into());
    }
    Ok(versions)
}

/// nsnet as a CNI plugin: the reference bridge config with `"type": "nsnet"`, portMappings as
/// a capability, state in `state_dir`.
pub fn nsnet_chain(nsnet: &Path, versions: &[String], net: Net, state_dir: &Path) -> Chain {
    let plugins = vec![Plugin {
        binary: nsnet.to_path_buf(),
        conf: json!({
            "type": "nsnet",
            "bridge": "nscni0",
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": ipam(net, None),
            "capabilities": {"portMappings": true},
            // A CNI plugin's state directory is a configuration key: nsnet refuses an
            // NSNET_STATE_DIR that disagrees with it (runtimes drop the environment on DEL).
            "stateDir": state_dir,
        }),
    }];
    let dir = nsnet
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let mut chain = Chain::new(
        super::NSNET_CNI,
        "benchcni",
        plugins,
        format!("{dir}:{}", CNI_DIRS.join(":")),
    );
    if !versions.iter().any(|v| v == CNI_VERSION)
        && let Some(last) = versions.last()
    {
        chain.cni_version = last.clone();
    }
    chain
        .env
        .push(("NSNET_STATE_DIR".into(), state_dir.display().to_string()));
    chain.state_dirs.push(state_dir.to_path_buf());
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_stdin_like_libcni() {
        let c = Container::new("c", 3, 20003);
        let conf = json!({"type": "portmap", "capabilities": {"portMappings": true}});
        let prev = json!({"cniVersion": "1.0.0", "ips": [{"address": "10.94.0.5/16"}]});
        let s = plugin_stdin("benchref", "1.0.0", &conf, &c, Some(&prev));
        assert_eq!(s["name"], "benchref");
        assert_eq!(s["cniVersion"], "1.0.0");
        assert!(s.get("capabilities").is_none());
        assert_eq!(s["runtimeConfig"]["portMappings"][0]["hostPort"], 20003);
        assert_eq!(s["runtimeConfig"]["portMappings"][0]["containerPort"], 80);
        assert_eq!(s["runtimeConfig"]["portMappings"][0]["protocol"], "tcp");
        assert_eq!(s["prevResult"], prev);

        let bridge = json!({"type": "bridge", "bridge": "cnibr0"});
        let s = plugin_stdin("benchref", "1.0.0", &bridge, &c, None);
        assert!(s.get("runtimeConfig").is_none());
        assert!(s.get("prevResult").is_none());
    }

    #[test]
    fn result_ip_takes_the_first_ipv4() {
        let r = json!({"ips": [{"address": "fd00::5/64"}, {"address": "10.94.0.5/16"}]});
        assert_eq!(result_ip(&r), Some("10.94.0.5".parse().unwrap()));
        assert_eq!(result_ip(&json!({})), None);
    }

    #[test]
    fn plugin_errors_use_the_spec_json() {
        use std::os::unix::process::ExitStatusExt;
        let status = std::process::ExitStatus::from_raw(1 << 8);
        let msg = plugin_error(
            br#"{"code": 11, "msg": "try again", "details": "busy"}"#,
            b"",
            status,
        );
        assert_eq!(msg, "CNI error 11: try again busy");
        assert_eq!(
            plugin_error(b"garbage", b" oops", status),
            "exit status: 1: garbageoops"
        );
    }

    #[test]
    fn nsnet_chain_uses_bridge_keys_and_the_state_dir() {
        let net = Net {
            base: Ipv4Addr::new(10, 91, 0, 0),
        };
        let chain = nsnet_chain(
            Path::new("/x/nsnet"),
            &["0.4.0".into(), "1.0.0".into(), "1.1.0".into()],
            net,
            Path::new("/run/s"),
        );
        assert_eq!(chain.cni_version, "1.0.0");
        assert_eq!(chain.plugins[0].conf["type"], "nsnet");
        assert_eq!(
            chain.plugins[0].conf["ipam"]["ranges"][0][0]["subnet"],
            "10.91.0.0/16"
        );
        assert!(chain.cni_path.starts_with("/x:"));
        assert_eq!(chain.env[0].1, "/run/s");
        assert_eq!(chain.plugins[0].conf["stateDir"], "/run/s");
        let old = nsnet_chain(
            Path::new("/x/nsnet"),
            &["0.4.0".into()],
            net,
            Path::new("/s"),
        );
        assert_eq!(old.cni_version, "0.4.0");
    }
}
