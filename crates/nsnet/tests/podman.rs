//! Podman 4 with its CNI backend and nsnet as the plugin, everything private to a sandbox
//! (see `engines`): rounds of network create / run with a published port / traffic from an
//! outside namespace / stop / rm / network rm, networks defined anew with an old subnet or
//! edited in place, several containers removed at once, and nothing left after each round
//! (no rows, veths, bridges, namespaces or firewall elements). Skipped, saying so, when
//! podman or what it needs is not installed.

mod common;
mod engines;

use std::path::PathBuf;
use std::process::Command;

use common::{Sandbox, root};
use engines::{assert_nothing_left, have, http_get, http_get_soon, plugin_dir, rootfs, tar};
use serde_json::{Value, json};

/// What the sandbox's own namespace keeps: loopback and the outside namespace's uplink.
const KEEP: [&str; 2] = ["lo", "uplink0"];

fn have_podman(test: &str) -> bool {
    root()
        && have(
            test,
            &[
                "podman",
                "runc",
                "conmon",
                "catatonit",
                "tar",
                engines::BUSYBOX,
            ],
        )
}

/// One podman installation in a temporary directory, run inside a sandbox.
struct Podman<'a> {
    s: &'a Sandbox,
    dir: tempfile::TempDir,
}

impl<'a> Podman<'a> {
    fn new(s: &'a Sandbox) -> Podman<'a> {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let d = d.as_path();
        for sub in ["cni", "root", "runroot", "tmp"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        plugin_dir(&d.join("bin"));
        let catatonit = engines::which("catatonit").unwrap();
        let p = |sub: &str| d.join(sub).display().to_string();
        // Podman's default limits (nofile 1048576, nproc 4194304) are above what a process
        // may raise here; runc (cgroup v1 hosts: crun refuses hybrid hierarchies); no
        // systemd; events, temporary files and networks in the test's directory.
        let conf = format!(
            r#"[containers]
init_path = "{catatonit}"
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[network]
network_backend = "cni"
cni_plugin_dirs = ["{bin}"]
network_config_dir = "{cni}"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{events}"
runtime = "runc"
tmp_dir = "{tmp}"
image_copy_tmp_dir = "{tmp}"
"#,
            catatonit = catatonit.display(),
            bin = p("bin"),
            cni = p("cni"),
            events = p("events.log"),
            tmp = p("tmp"),
        );
        std::fs::write(d.join("containers.conf"), conf).unwrap();
        let storage = format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            p("root"),
            p("runroot")
        );
        std::fs::write(d.join("storage.conf"), storage).unwrap();
        let podman = Podman { s, dir };
        let image = d.join("rootfs.tar");
        tar(&rootfs(d), &image);
        podman.ok(&["import", image.to_str().unwrap(), "localhost/bb"]);
        podman
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = self.s.command("podman", args);
        c.env("CONTAINERS_CONF", self.dir.path().join("containers.conf"))
            .env(
                "CONTAINERS_STORAGE_CONF",
                self.dir.path().join("storage.conf"),
            );
        c
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        engines::run_ok(self.command(args), &format!("podman {}", args.join(" ")))
    }

    fn conflist(&self, network: &str) -> PathBuf {
        self.dir
            .path()
            .join("cni")
            .join(format!("{network}.conflist"))
    }

    fn read(&self, network: &str) -> Value {
        serde_json::from_slice(&std::fs::read(self.conflist(network)).unwrap()).unwrap()
    }

    fn write(&self, network: &str, v: &Value) {
        std::fs::write(
            self.conflist(network),
            serde_json::to_vec_pretty(v).unwrap(),
        )
        .unwrap();
    }

    /// `podman network create --subnet`, then podman's conflist turned into nsnet's the way
    /// the README says: `bridge` becomes `nsnet` (publishing ports itself, so no `portmap`
    /// or `firewall`), with nsnet's state directory.
    fn network_create(&self, name: &str, subnet: &str) {
        self.ok(&["network", "create", "--subnet", subnet, name]);
        let mut list = self.read(name);
        let plugins = list["plugins"].as_array_mut().unwrap();
        plugins.retain(|p| p["type"] != "portmap" && p["type"] != "firewall");
        let first = &mut plugins[0];
        assert_eq!(first["type"], "bridge", "podman's conflist: {first}");
        first["type"] = json!("nsnet");
        first["capabilities"] = json!({"portMappings": true, "ips": true});
        first["stateDir"] = json!(self.s.state_dir());
        self.write(name, &list);
    }

    /// Edits a network's conflist in place: another subnet (gateway .1) and bridge.
    fn network_edit(&self, name: &str, subnet: &str, bridge: &str) {
        let mut list = self.read(name);
        let first = &mut list["plugins"][0];
        first["bridge"] = json!(bridge);
        let gateway = subnet.replace(".0/24", ".1");
        first["ipam"]["ranges"] = json!([[{"subnet": subnet, "gateway": gateway}]]);
        self.write(name, &list);
    }

    /// `podman run -d` of httpd on `network`, publishing `port` to 80.
    fn serve(&self, name: &str, network: &str, port: u16) {
        self.ok(&[
            "run",
            "-d",
            "--init",
            "--pull",
            "never",
            "--name",
            name,
            "--network",
            network,
            "-p",
            &format!("{port}:80"),
            "localhost/bb",
            "httpd",
            "-f",
            "-p",
            "80",
            "-h",
            "/www",
        ]);
    }

    /// The nsnet network as inspected (JSON).
    fn inspect(&self, network: &str) -> Value {
        self.s.json(&["network", "inspect", network])
    }
}

impl Drop for Podman<'_> {
    fn drop(&mut self) {
        // After a failure: no container process may outlive the test.
        let _ = self.run(&["rm", "-af", "-t", "0"]);
    }
}

fn outside(s: &Sandbox, port: u16) -> Option<String> {
    http_get_soon(s, "outside", &format!("203.0.113.1:{port}"))
}

#[test]
fn podman_rounds_with_networks_that_come_and_go() {
    if !have_podman("podman_rounds_with_networks_that_come_and_go") {
        return;
    }
    let s = Sandbox::with_private(&engines::PRIVATE);
    s.add_outside();
    let p = Podman::new(&s);
    // Pairs of rounds: `network create` of a new network with the subnet the previous pair
    // used; then the same conflist edited in place (other subnet and bridge); `network rm`.
    // NSNET_PODMAN_ROUNDS runs more (a stress run).
    let rounds: usize = std::env::var("NSNET_PODMAN_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    for round in 0..rounds {
        let net = format!("net{}", round / 2);
        let subnet = if round % 2 == 0 {
            p.network_create(&net, "10.231.0.0/24");
            "10.231.0.0/24"
        } else {
            p.network_edit(&net, "10.232.0.0/24", &format!("cni-edit{round}"));
            "10.232.0.0/24"
        };
        let ctr = format!("c{round}");
        p.serve(&ctr, &net, 18080);
        let when = format!("round {round} ({net}, {subnet})");
        assert_eq!(outside(&s, 18080).as_deref(), Some("hello\n"), "{when}");
        let n = p.inspect(&net);
        assert_eq!(n["subnets"][0]["cidr"], subnet, "{when}: {n}");
        assert_eq!(n["endpoints"].as_array().unwrap().len(), 1, "{when}: {n}");
        if round % 3 == 2 {
            p.ok(&["rm", "-f", &ctr]);
        } else {
            p.ok(&["stop", &ctr]);
            assert_eq!(http_get(&s, "outside", "203.0.113.1:18080"), None, "{when}");
            p.ok(&["rm", &ctr]);
        }
        if round % 2 == 1 {
            p.ok(&["network", "rm", &net]);
        }
        assert_nothing_left(&s, &KEEP, &["outside"], &when);
    }
}

#[test]
fn podman_rm_f_of_several_containers_at_once() {
    if !have_podman("podman_rm_f_of_several_containers_at_once") {
        return;
    }
    let s = Sandbox::with_private(&engines::PRIVATE);
    s.add_outside();
    let p = Podman::new(&s);
    p.network_create("web", "10.233.0.0/24");
    let ports: Vec<u16> = (18081..18085).collect();
    for &port in &ports {
        p.serve(&format!("w{port}"), "web", port);
    }
    for &port in &ports {
        assert_eq!(outside(&s, port).as_deref(), Some("hello\n"), "port {port}");
    }
    assert_eq!(
        s.json(&["port", "ls"]).as_array().unwrap().len(),
        ports.len()
    );
    // Every DEL at once (each also takes the network when it finds itself the last).
    let removals: Vec<_> = ports
        .iter()
        .map(|port| {
            p.command(&["rm", "-f", &format!("w{port}")])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut r in removals {
        assert!(r.wait().unwrap().success());
    }
    for &port in &ports {
        assert_eq!(
            http_get(&s, "outside", &format!("203.0.113.1:{port}")),
            None
        );
    }
    assert_nothing_left(&s, &KEEP, &["outside"], "after the removals");
    // And the network is there again for the next container.
    p.serve("again", "web", 18081);
    assert_eq!(outside(&s, 18081).as_deref(), Some("hello\n"));
    p.ok(&["rm", "-f", "again"]);
    p.ok(&["network", "rm", "web"]);
    assert_nothing_left(&s, &KEEP, &["outside"], "at the end");
}

#[test]
fn podman_refuses_a_state_dir_given_only_by_the_environment() {
    if !have_podman("podman_refuses_a_state_dir_given_only_by_the_environment") {
        return;
    }
    let s = Sandbox::with_private(&engines::PRIVATE);
    let p = Podman::new(&s);
    p.network_create("envonly", "10.234.0.0/24");
    let mut list = p.read("envonly");
    list["plugins"][0]
        .as_object_mut()
        .unwrap()
        .remove("stateDir");
    p.write("envonly", &list);
    // The sandbox gives podman NSNET_STATE_DIR; podman's cleanup process (started by
    // conmon with PATH only) would run DEL without it, against another store: before, the
    // DEL found nothing there and the attachment (row, veth, DNAT element) outlived it.
    let out = p.run(&[
        "run",
        "-d",
        "--init",
        "--pull",
        "never",
        "--name",
        "e",
        "--network",
        "envonly",
        "-p",
        "18090:80",
        "localhost/bb",
        "httpd",
        "-f",
        "-p",
        "80",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "podman run succeeded");
    assert!(
        err.contains("differs from the state directory of the network configuration")
            && err.contains("stateDir"),
        "{err}"
    );
    let _ = p.run(&["rm", "-f", "e"]);
    assert_nothing_left(&s, &["lo"], &[], "after the refusal");
    assert!(
        s.sh("ls", &["/var/lib/nsnet"]).code != 0,
        "a store was created at the default path"
    );
}
