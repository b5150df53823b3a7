//! Throwaway sandboxes for end-to-end tests: a holder process in new network and mount
//! namespaces (private tmpfs on /run and /etc/netns), commands run inside it with nsenter, and
//! a state directory on the test's side so rows can be counted. Nothing touches the machine's
//! own interfaces; everything dies with the holder.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use nsnet_store::Store;

/// The nsnet binary under test.
pub const NSNET: &str = env!("CARGO_BIN_EXE_nsnet");

/// Root is needed for namespaces; without it the end-to-end tests skip.
pub fn root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: end-to-end tests need root");
    false
}

/// A running sandbox.
pub struct Sandbox {
    holder: Child,
    state: tempfile::TempDir,
}

/// What a command printed and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Sandbox {
    /// Starts a sandbox and waits until its mounts are in place.
    pub fn new() -> Sandbox {
        // /etc/netns must exist to be covered by the sandbox's tmpfs (iproute2 creates it too).
        std::fs::create_dir_all("/etc/netns").unwrap();
        let script = "mount -t tmpfs nsnet-test /run && mkdir -p /run/netns && \
                      mount -t tmpfs nsnet-test /etc/netns && ip link set lo up && \
                      echo ready && exec sleep 3600";
        let mut holder = Command::new("unshare")
            .args([
                "--net",
                "--mount",
                "--propagation",
                "private",
                "--",
                "sh",
                "-c",
                script,
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("start sandbox holder (unshare)");
        let mut line = String::new();
        BufReader::new(holder.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "sandbox failed to start");
        Sandbox {
            holder,
            state: tempfile::tempdir().unwrap(),
        }
    }

    /// The state directory (outside the sandbox, so the test can open the store).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// A command run inside the sandbox.
    pub fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg("--target")
            .arg(self.holder.id().to_string())
            .args(["--net", "--mount", "--"])
            .arg(program)
            .args(args)
            .env("NSNET_STATE_DIR", self.state.path())
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null());
        c
    }

    /// Runs any program inside the sandbox.
    pub fn sh(&self, program: &str, args: &[&str]) -> Run {
        Run::from(self.command(program, args).output().unwrap())
    }

    /// Runs `nsnet ARGS` inside the sandbox.
    pub fn nsnet(&self, args: &[&str]) -> Run {
        self.sh(NSNET, args)
    }

    /// Runs `nsnet ARGS` and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.nsnet(args);
        assert_eq!(
            r.code,
            0,
            "nsnet {} failed: {}{}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// Runs `nsnet ARGS --format json` and parses it.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap()
    }

    /// Runs `nsnet ARGS`, asserts it fails with `code` and that stderr contains each of `needles`.
    pub fn fails(&self, code: i32, args: &[&str], needles: &[&str]) -> String {
        let r = self.nsnet(args);
        assert_eq!(
            r.code,
            code,
            "nsnet {}: expected exit {code}, got {}: {}{}",
            args.join(" "),
            r.code,
            r.stdout,
            r.stderr
        );
        for n in needles {
            assert!(
                r.stderr.contains(n),
                "nsnet {}: {n:?} not in {:?}",
                args.join(" "),
                r.stderr
            );
        }
        r.stderr
    }

    /// Whether one ping from `ns` ("host" for the sandbox itself) to `dst` is answered.
    pub fn ping(&self, ns: &str, dst: &str) -> bool {
        let mut args = vec![];
        if ns != "host" {
            args.extend(["netns", "exec", ns, "--"]);
        }
        args.extend(["ping", "-c", "1", "-W", "1", dst]);
        let r = if ns == "host" {
            self.sh("ping", &args[1..])
        } else {
            self.nsnet(&args)
        };
        r.code == 0
    }

    /// Interface names in the sandbox's own namespace.
    pub fn host_links(&self) -> Vec<String> {
        let r = self.sh("ip", &["-o", "link", "show"]);
        r.stdout
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_string())
            .collect()
    }

    /// Namespace files under the sandbox's /run/netns.
    pub fn netns_files(&self) -> Vec<String> {
        let r = self.sh("ls", &["/run/netns"]);
        r.stdout.split_whitespace().map(str::to_string).collect()
    }

    /// Row counts of the state store, per table.
    pub fn rows(&self) -> Vec<(&'static str, i64)> {
        let mut store = Store::open(self.state.path()).unwrap();
        store.read(|tx| tx.row_counts()).unwrap()
    }

    /// Asserts nothing nsnet made is left: only lo in the sandbox, no namespace, no row.
    pub fn assert_clean(&self) {
        assert_eq!(self.host_links(), vec!["lo".to_string()], "links left");
        assert!(
            self.netns_files().is_empty(),
            "namespaces left: {:?}",
            self.netns_files()
        );
        for (table, n) in self.rows() {
            assert_eq!(n, 0, "{n} rows left in {table}");
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}
