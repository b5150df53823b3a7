//! containerd 1.6 (`ctr run --cni`, which reads its CNI configuration from /etc/cni/net.d and
//! plugins from /opt/cni/bin) with nsnet as the plugin: the daemon is started by the test in
//! a sandbox with its own root, state, sockets and configuration (see `engines`), the image
//! imported offline (`ctr image import` of an OCI archive built from busybox-static). Rounds
//! of run / traffic / kill under networks defined anew with the same subnet or edited in
//! place, containers started and killed at once, and nothing left after each round. Skipped,
//! saying so, when containerd or what it needs is not installed.

mod common;
mod engines;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Sandbox, root};
use engines::{assert_nothing_left, have, http_get_soon, oci_archive, plugin_dir, rootfs};
use serde_json::{Value, json};

const IMAGE: &str = "localhost/bb:latest";

fn have_containerd(test: &str) -> bool {
    root()
        && have(
            test,
            &[
                "containerd",
                "containerd-shim-runc-v2",
                "ctr",
                "runc",
                "tar",
                "sha256sum",
                engines::BUSYBOX,
            ],
        )
}

/// A containerd daemon in a sandbox, with everything in a temporary directory.
struct Containerd<'a> {
    s: &'a Sandbox,
    dir: tempfile::TempDir,
    daemon: Child,
}

impl<'a> Containerd<'a> {
    fn start(s: &'a Sandbox) -> Containerd<'a> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let p = |sub: &str| d.join(sub).display().to_string();
        // No CRI (nothing here is Kubernetes); its `opt` plugin installs into a path of ours.
        let conf = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{debug}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = p("root"),
            state = p("state"),
            sock = p("containerd.sock"),
            debug = p("debug.sock"),
            opt = p("opt"),
        );
        std::fs::write(d.join("config.toml"), conf).unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let daemon = s
            .command("containerd", &["--config", &p("config.toml")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let c = Containerd { s, dir, daemon };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !c.ctr(&["version"]).output().unwrap().status.success() {
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                std::fs::read_to_string(d.join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The fixed CNI directories, in the sandbox's private /opt and /etc/cni.
        let inside = |path: &str| PathBuf::from(format!("/proc/{}/root{path}", s.pid()));
        plugin_dir(&inside("/opt/cni/bin"));
        std::fs::create_dir_all(inside("/etc/cni/net.d")).unwrap();
        let archive = d.join("bb.oci.tar");
        oci_archive(&rootfs(&d), IMAGE, &archive);
        c.ok(&[
            "image",
            "import",
            "--snapshotter",
            "native",
            archive.to_str().unwrap(),
        ]);
        c
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let sock = self.dir.path().join("containerd.sock");
        let mut a = vec!["--address", sock.to_str().unwrap(), "--namespace", "nsnet"];
        a.extend(args);
        self.s.command("ctr", &a)
    }

    fn ok(&self, args: &[&str]) -> String {
        engines::run_ok(self.ctr(args), &format!("ctr {}", args.join(" ")))
    }

    /// The conflist `ctr --cni` loads (the only one in /etc/cni/net.d).
    fn configure(&self, name: &str, subnet: &str, bridge: &str) {
        let list = json!({
            "cniVersion": "1.0.0",
            "name": name,
            "plugins": [{
                "type": "nsnet",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": true,
                "stateDir": self.s.state_dir(),
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}]
                }
            }]
        });
        let path = format!(
            "/proc/{}/root/etc/cni/net.d/10-nsnet.conflist",
            self.s.pid()
        );
        std::fs::write(path, list.to_string()).unwrap();
    }

    /// `ctr run --rm --cni` of httpd, in the foreground of a child process (ctr runs the
    /// CNI DEL itself once the task exits).
    fn serve(&self, id: &str) -> Child {
        self.ctr(&[
            "run",
            "--rm",
            "--cni",
            "--snapshotter",
            "native",
            IMAGE,
            id,
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
    }

    fn kill(&self, id: &str) {
        self.ok(&["task", "kill", "--signal", "SIGKILL", id]);
    }
}

impl Drop for Containerd<'_> {
    fn drop(&mut self) {
        // After a failure: no task may outlive the test (the shims exit with their tasks).
        if let Ok(out) = self.ctr(&["task", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = self
                    .ctr(&["task", "kill", "--signal", "SIGKILL", id])
                    .output();
            }
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.daemon.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.daemon.wait();
    }
}

/// The addresses of the attachments of `network`, once `n` are there (within 15 s).
fn attached(s: &Sandbox, network: &str, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = s.nsnet(&["network", "inspect", network, "--format", "json"]);
        if r.code == 0 {
            let v: Value = serde_json::from_str(&r.stdout).unwrap();
            let eps = v["endpoints"].as_array().unwrap();
            if eps.len() == n && eps.iter().all(|e| e["state"] == "ready") {
                return eps
                    .iter()
                    .map(|e| {
                        let a = e["addrs"][0].as_str().unwrap();
                        a.split('/').next().unwrap().to_string()
                    })
                    .collect();
            }
        }
        assert!(
            Instant::now() < deadline,
            "{network}: {n} attachments never came"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn exited(mut c: Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{what}: ctr run did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn containerd_rounds_with_networks_that_come_and_go() {
    if !have_containerd("containerd_rounds_with_networks_that_come_and_go") {
        return;
    }
    let s = Sandbox::with_private(&engines::PRIVATE);
    let c = Containerd::start(&s);
    for round in 0..10 {
        // A new network with the previous one's subnet, then that one edited in place.
        let net = format!("ctd{}", round / 2);
        let (subnet, bridge) = if round % 2 == 0 {
            ("10.240.0.0/24", format!("cni-{net}"))
        } else {
            ("10.241.0.0/24", format!("cni-{net}-b"))
        };
        c.configure(&net, subnet, &bridge);
        let id = format!("k{round}");
        let run = c.serve(&id);
        let when = format!("round {round} ({net}, {subnet})");
        let addrs = attached(&s, &net, 1);
        assert!(
            addrs[0].starts_with(&subnet[..8]),
            "{when}: address {addrs:?}"
        );
        assert_eq!(
            http_get_soon(&s, "host", &format!("{}:80", addrs[0])).as_deref(),
            Some("hello\n"),
            "{when}"
        );
        assert!(s.host_links().contains(&bridge), "{when}");
        c.kill(&id);
        exited(run, &when);
        assert_nothing_left(&s, &["lo"], &[], &when);
        assert_eq!(c.ok(&["container", "ls", "-q"]), "", "{when}");
    }
}

#[test]
fn containerd_containers_started_and_killed_at_once() {
    if !have_containerd("containerd_containers_started_and_killed_at_once") {
        return;
    }
    let s = Sandbox::with_private(&engines::PRIVATE);
    let c = Containerd::start(&s);
    c.configure("many", "10.242.0.0/24", "cni-many");
    for round in 0..2 {
        let ids: Vec<String> = (0..4).map(|i| format!("m{round}-{i}")).collect();
        let runs: Vec<Child> = ids.iter().map(|id| c.serve(id)).collect();
        let addrs = attached(&s, "many", ids.len());
        for a in &addrs {
            assert_eq!(
                http_get_soon(&s, "host", &format!("{a}:80")).as_deref(),
                Some("hello\n"),
                "{a}"
            );
        }
        let kills: Vec<Child> = ids
            .iter()
            .map(|id| {
                c.ctr(&["task", "kill", "--signal", "SIGKILL", id])
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut k in kills {
            assert!(k.wait().unwrap().success());
        }
        for run in runs {
            exited(run, "killed at once");
        }
        assert_nothing_left(&s, &["lo"], &[], &format!("round {round}"));
    }
}
