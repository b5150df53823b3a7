//! nsnet as a netavark plugin (podman 5's network backend): `create` and `info` by hand, then
//! netavark itself (≥ 1.6, `scripts/deps.sh` installs it) running `setup`/`teardown` against a
//! plugin directory holding nsnet, with podman's JSON on stdin, inside a sandbox: addresses,
//! container↔container and gateway traffic, a published port from an outside namespace and
//! from the host, refusals that leave nothing, idempotent teardown, nothing left after; and
//! netavark's own bridge driver on the same input, timed against the plugin.

mod common;
mod engines;

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use common::{NSNET, Run, Sandbox, root};
use engines::{assert_nothing_left, fw_elements};
use serde_json::{Value, json};

/// What the sandbox's own namespace keeps: loopback and the outside namespace's uplink.
const KEEP: [&str; 2] = ["lo", "uplink0"];
const CONTAINERS: [&str; 3] = ["outside", "c1", "c2"];

/// Where scripts/deps.sh installs netavark (Debian's 1.4 in /usr/lib/podman has no plugins).
const NETAVARK: &str = "/usr/local/bin/netavark";

/// netavark with plugin support, or None having said why (a failure under `CI`).
fn netavark(test: &str) -> Option<PathBuf> {
    if !root() {
        return None;
    }
    let version = std::process::Command::new(NETAVARK)
        .arg("version")
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|v| v["version"].as_str().map(str::to_string));
    let ok = version.as_deref().is_some_and(|v| {
        let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (1, 6)
    });
    if ok {
        return Some(PathBuf::from(NETAVARK));
    }
    let why = format!(
        "{test}: needs netavark >= 1.6 at {NETAVARK} (found {version:?}); scripts/deps.sh installs it"
    );
    if std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("{why}");
    }
    eprintln!("SKIPPED {why}");
    None
}

/// Runs `program ARGS` in the sandbox with `input` on stdin.
fn piped(s: &Sandbox, program: &str, args: &[&str], input: &str) -> Run {
    let mut child = s
        .command(program, args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `nsnet SUB` as the plugin, with `input`; the JSON it printed and its exit code.
fn plugin(s: &Sandbox, args: &[&str], input: &Value) -> (i32, Value) {
    let r = piped(s, NSNET, args, &input.to_string());
    let v = serde_json::from_str(r.stdout.trim())
        .unwrap_or_else(|e| panic!("nsnet {args:?}: not JSON ({e}): {}{}", r.stdout, r.stderr));
    (r.code, v)
}

/// A network definition as `podman network create -d nsnet --subnet 10.89.5.0/24` hands it
/// to the plugin, with the sandbox's state directory.
fn definition(s: &Sandbox, name: &str) -> Value {
    json!({
        "name": name,
        "id": "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9",
        "driver": "nsnet",
        "created": "2026-11-30T13:00:00.000000000Z",
        "subnets": [{"subnet": "10.89.5.0/24"}],
        "ipv6_enabled": false,
        "internal": false,
        "dns_enabled": true,
        "options": {"state_dir": s.state_dir().to_str().unwrap()},
    })
}

/// One sandbox with a plugin directory (nsnet linked in as `nsnet`, as an administrator
/// installs it) and netavark's configuration directory.
struct Rig {
    s: Sandbox,
    netavark: PathBuf,
    dir: tempfile::TempDir,
    /// Each container's per-network options and ports, for its teardown.
    given: RefCell<HashMap<String, (Value, Value)>>,
}

impl Rig {
    fn new(netavark: PathBuf) -> Rig {
        let s = Sandbox::new();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        std::os::unix::fs::symlink(NSNET, dir.path().join("plugins/nsnet")).unwrap();
        s.add_outside();
        for c in &CONTAINERS[1..] {
            assert_eq!(s.sh("ip", &["netns", "add", c]).code, 0);
        }
        Rig {
            s,
            netavark,
            dir,
            given: RefCell::default(),
        }
    }

    fn path(&self, sub: &str) -> String {
        self.dir.path().join(sub).display().to_string()
    }

    /// `netavark setup|teardown /run/netns/C` with podman's options for container `c` on
    /// network `net` (its definition as stored).
    fn netavark(&self, verb: &str, c: &str, net: &Value, per_net: Value, ports: Value) -> Run {
        let name = net["name"].as_str().unwrap();
        let opts = json!({
            "container_id": format!("{c}-0123456789abcdef"),
            "container_name": c,
            "port_mappings": ports,
            "networks": {name: per_net},
            "network_info": {name: net},
        });
        let netns = format!("/run/netns/{c}");
        let args = [
            "--config",
            &self.path("config"),
            "--plugin-directory",
            &self.path("plugins"),
            verb,
            &netns,
        ];
        piped(
            &self.s,
            self.netavark.to_str().unwrap(),
            &args,
            &opts.to_string(),
        )
    }

    fn setup_ok(&self, c: &str, net: &Value, per_net: Value, ports: Value) -> Value {
        self.given
            .borrow_mut()
            .insert(c.to_string(), (per_net.clone(), ports.clone()));
        let r = self.netavark("setup", c, net, per_net, ports);
        assert_eq!(r.code, 0, "netavark setup {c}: {}{}", r.stdout, r.stderr);
        serde_json::from_str(&r.stdout).unwrap()
    }

    /// Teardown with the options the container's setup had, as podman passes them.
    fn teardown_ok(&self, c: &str, net: &Value) {
        let (per_net, ports) = self.given.borrow()[c].clone();
        let r = self.netavark("teardown", c, net, per_net, ports);
        assert_eq!(r.code, 0, "netavark teardown {c}: {}{}", r.stdout, r.stderr);
    }

    fn ping(&self, ns: &str, dst: &str) -> bool {
        self.s
            .sh(
                "ip",
                &[
                    "netns", "exec", ns, "ping", "-c", "1", "-i", "0.5", "-w", "2", dst,
                ],
            )
            .code
            == 0
    }
}

#[test]
fn info_and_create_by_hand_complete_and_refuse_definitions() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let r = s.nsnet(&["info"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let info: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(info["api_version"], "1.0.0");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));

    let (code, out) = plugin(&s, &["create"], &definition(&s, "web"));
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out["subnets"],
        json!([{"subnet": "10.89.5.0/24", "gateway": "10.89.5.1"}])
    );
    assert_eq!(out["network_interface"], "nsbr-web");
    assert_eq!(
        out["dns_enabled"], true,
        "kept: nsnet's responder serves it"
    );
    assert_eq!(out["ipam_options"], json!({"driver": "host-local"}));
    assert_eq!(out["created"], "2026-11-30T13:00:00.000000000Z");
    assert_eq!(out["driver"], "nsnet");

    // No subnet: the first /24 of 10.89.0.0/16 that none of nsnet's networks uses.
    s.ok(&["network", "create", "taken", "--subnet", "10.89.0.0/24"]);
    let mut bare = definition(&s, "bare");
    bare.as_object_mut().unwrap().remove("subnets");
    let (code, out) = plugin(&s, &["create"], &bare);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out["subnets"][0]["subnet"], "10.89.1.0/24");
    s.ok(&["network", "rm", "taken"]);

    for (patch, needle) in [
        (
            json!({"options": {"vlan": "2"}}),
            "network web option vlan: not an nsnet option",
        ),
        (
            json!({"subnets": [{"subnet": "10.89.5.1/24"}]}),
            "host bits are set",
        ),
        (
            json!({"ipv6_enabled": true}),
            "IPv6 is enabled but no IPv6 subnet",
        ),
        (
            json!({"ipam_options": {"driver": "dhcp"}}),
            "ipam driver dhcp",
        ),
    ] {
        let mut d = definition(&s, "web");
        for (k, v) in patch.as_object().unwrap() {
            d[k] = v.clone();
        }
        let (code, out) = plugin(&s, &["create"], &d);
        assert_eq!(code, 1, "{patch}: {out}");
        let e = out["error"].as_str().unwrap();
        assert!(e.contains(needle), "{patch}: {e}");
    }
    assert_nothing_left(&s, &["lo"], &[], "after create");
}

#[test]
fn netavark_runs_nsnet_setup_and_teardown_with_real_traffic() {
    let Some(bin) = netavark(module_path!()) else {
        return;
    };
    let rig = Rig::new(bin);
    let s = &rig.s;
    let (_, net) = plugin(s, &["create"], &definition(s, "pnet"));

    let ports = json!([{"container_port": 80, "host_ip": "", "host_port": 8080,
        "protocol": "tcp", "range": 1}]);
    let st1 = rig.setup_ok(
        "c1",
        &net,
        json!({"interface_name": "eth0",
        "aliases": ["c1"]}),
        ports,
    );
    let st2 = rig.setup_ok(
        "c2",
        &net,
        json!({"interface_name": "eth0",
        "static_ips": ["10.89.5.50"], "static_mac": "02:aa:bb:cc:dd:01"}),
        json!(null),
    );
    let if1 = &st1["pnet"]["interfaces"]["eth0"];
    assert_eq!(
        if1["subnets"],
        json!([{"gateway": "10.89.5.1", "ipnet": "10.89.5.2/24"}])
    );
    // nsnet's responder on the gateway: podman writes it into the containers' resolv.conf.
    assert_eq!(st1["pnet"]["dns_server_ips"], json!(["10.89.5.1"]));
    assert_eq!(st1["pnet"]["dns_search_domains"], json!(["dns.nsnet"]));
    let mac1 = if1["mac_address"].as_str().unwrap();
    assert!(
        s.sh("ip", &["-n", "c1", "link", "show", "eth0"])
            .stdout
            .contains(mac1)
    );
    let if2 = &st2["pnet"]["interfaces"]["eth0"];
    assert_eq!(if2["mac_address"], "02:aa:bb:cc:dd:01");
    assert_eq!(if2["subnets"][0]["ipnet"], "10.89.5.50/24");

    // c1's alias answered to c2 by the responder on the gateway.
    let found = (0..20).any(|_| {
        let r = s.sh(
            "ip",
            &[
                "netns",
                "exec",
                "c2",
                "busybox",
                "nslookup",
                "-type=a",
                "c1",
                "10.89.5.1",
            ],
        );
        r.code == 0 && r.stdout.contains("10.89.5.2") || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            false
        }
    });
    assert!(found, "c2 resolves c1 through nsnet's responder");
    // Container to container, to the gateway, and out through the masquerade.
    assert!(rig.ping("c1", "10.89.5.50"));
    assert!(rig.ping("c2", "10.89.5.1"));
    assert!(rig.ping("c2", "203.0.113.2"));
    // The published port from outside and from the host.
    for from in ["outside", "host"] {
        let server = s.tcp_server("c1", "0.0.0.0:80");
        assert!(
            s.tcp_hello(from, "203.0.113.1:8080"),
            "published port from {from}"
        );
        assert!(server.peer().is_some());
    }
    // A second setup of a container (podman after a reboot, the first one's namespace gone)
    // replaces its stale attachment.
    let again = rig.setup_ok(
        "c1",
        &net,
        json!({"interface_name": "eth0", "aliases": ["c1"]}),
        json!([{"container_port": 80, "host_ip": "", "host_port": 8080, "protocol": "tcp",
            "range": 1}]),
    );
    assert_eq!(
        again["pnet"]["interfaces"]["eth0"]["subnets"][0]["ipnet"],
        "10.89.5.2/24"
    );
    assert!(rig.ping("c1", "10.89.5.50"));
    // nsnet shows podman's containers like any other attachment.
    let shown = s.ok(&["network", "inspect", "pnet"]);
    assert!(shown.contains("c1-0123456789abcdef"), "{shown}");

    // Refusals through netavark: {"error"} reaches podman, nothing is left of the attempt.
    let before = fw_elements(s);
    assert_eq!(s.sh("ip", &["netns", "add", "c3"]).code, 0);
    let r = rig.netavark(
        "setup",
        "c3",
        &net,
        json!({"interface_name": "eth0",
        "static_ips": ["10.89.5.50"]}),
        json!(null),
    );
    let said = format!("{}{}", r.stdout, r.stderr);
    assert_eq!(r.code, 1, "{said}");
    assert!(
        said.contains("nsnet") && said.contains("10.89.5.50"),
        "{said}"
    );
    let r = rig.netavark(
        "setup",
        "c3",
        &net,
        json!({"interface_name": "eth0"}),
        json!([{"container_port": 81, "host_ip": "", "host_port": 8080, "protocol": "tcp",
            "range": 1}]),
    );
    assert_eq!(r.code, 1, "a host port in use: {}", r.stdout);
    assert!(r.stdout.contains("8080"), "{}", r.stdout);
    // A failure half-way, in the kernel (the container already has an eth0): undone.
    let links_before = s.host_links();
    let made = s.sh(
        "ip",
        &[
            "-n", "c3", "link", "add", "eth0", "type", "veth", "peer", "name", "x0",
        ],
    );
    assert_eq!(made.code, 0, "{}", made.stderr);
    let r = rig.netavark(
        "setup",
        "c3",
        &net,
        json!({"interface_name": "eth0"}),
        json!([{"container_port": 80, "host_ip": "", "host_port": 8081, "protocol": "tcp",
            "range": 1}]),
    );
    assert_eq!(r.code, 1, "eth0 exists in c3: {}", r.stdout);
    assert!(
        r.stdout.contains("interface eth0 already exists"),
        "{}",
        r.stdout
    );
    assert_eq!(s.host_links(), links_before, "a failed setup left a link");
    assert_eq!(s.sh("ip", &["-n", "c3", "link", "del", "eth0"]).code, 0);
    let shown = s.ok(&["network", "inspect", "pnet"]);
    assert!(!shown.contains("c3-0123456789abcdef"), "{shown}");
    assert_eq!(
        fw_elements(s),
        before,
        "a refused setup changed the firewall"
    );
    assert_eq!(
        s.sh("ip", &["-n", "c3", "-o", "link"])
            .stdout
            .lines()
            .count(),
        1
    );

    // Teardown: idempotent, and the network goes with its last container.
    rig.teardown_ok("c1", &net);
    rig.teardown_ok("c1", &net);
    assert!(!s.tcp_hello("outside", "203.0.113.1:8080"));
    assert!(rig.ping("c2", "10.89.5.1"));
    assert_eq!(s.sh("ip", &["netns", "delete", "c2"]).code, 0);
    rig.teardown_ok("c2", &net);
    assert_nothing_left(s, &KEEP, &["outside", "c1", "c3"], "after teardown");
}

/// Median of `samples` in milliseconds.
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

/// How a timed call reaches the driver.
#[derive(Clone, Copy, PartialEq)]
enum Via {
    Netavark,
    /// nsnet's plugin run directly with the input netavark hands it: the plugin's own share.
    Direct,
}

/// One setup or teardown of container `c` on `net`, through `via`; asserts success.
fn call(rig: &Rig, via: Via, verb: &str, c: &str, net: &Value, per_net: Value, ports: Value) {
    if via == Via::Netavark {
        if verb == "setup" {
            rig.setup_ok(c, net, per_net, ports);
        } else {
            rig.teardown_ok(c, net);
        }
        return;
    }
    let input = json!({
        "container_id": format!("{c}-0123456789abcdef"),
        "container_name": c,
        "port_mappings": ports,
        "network": net,
        "network_options": per_net,
    });
    let netns = format!("/run/netns/{c}");
    let r = piped(&rig.s, NSNET, &[verb, &netns], &input.to_string());
    assert_eq!(r.code, 0, "nsnet {verb} {c}: {}{}", r.stdout, r.stderr);
}

/// One way of running podman's input: the driver, its network, its two containers (the
/// second stays attached, so the network exists throughout) and their addresses.
struct Subject {
    via: Via,
    net: Value,
    ctrs: [&'static str; 2],
    ips: [&'static str; 2],
    setup: Vec<f64>,
    teardown: Vec<f64>,
}

impl Subject {
    fn new(via: Via, net: Value, ctrs: [&'static str; 2], ips: [&'static str; 2]) -> Subject {
        Subject {
            via,
            net,
            ctrs,
            ips,
            setup: Vec::new(),
            teardown: Vec::new(),
        }
    }

    fn per_net(&self, i: usize) -> Value {
        json!({"interface_name": "eth0", "static_ips": [self.ips[i]]})
    }

    /// Setup and teardown of the first container, timed; traffic to the second in between.
    fn round(&mut self, rig: &Rig) {
        let ports = json!([{"container_port": 80, "host_ip": "", "host_port": 8080,
            "protocol": "tcp", "range": 1}]);
        let [c, resident] = self.ctrs;
        let t = Instant::now();
        call(
            rig,
            self.via,
            "setup",
            c,
            &self.net,
            self.per_net(0),
            ports.clone(),
        );
        self.setup.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(rig.ping(c, self.ips[1]), "{resident} from {c}");
        let t = Instant::now();
        call(
            rig,
            self.via,
            "teardown",
            c,
            &self.net,
            self.per_net(0),
            ports,
        );
        self.teardown.push(t.elapsed().as_secs_f64() * 1000.0);
    }
}

#[test]
fn the_plugin_against_netavarks_bridge_driver_on_the_same_input() {
    let Some(bin) = netavark(module_path!()) else {
        return;
    };
    let rig = Rig::new(bin);
    let s = &rig.s;
    for c in ["b1", "b2"] {
        assert_eq!(s.sh("ip", &["netns", "add", c]).code, 0);
    }
    // DNS off on both sides: the bridge driver's aardvark-dns is not installed here, and the
    // comparison is of the network setup.
    let mut def = definition(s, "pnet");
    def["dns_enabled"] = json!(false);
    let (_, plugin_net) = plugin(s, &["create"], &def);
    // The same definition for netavark's own driver, on another subnet so that both networks
    // exist at once: its bridge takes no nsnet options.
    let mut bridge_net = plugin_net.clone();
    bridge_net["name"] = json!("bnet");
    bridge_net["driver"] = json!("bridge");
    bridge_net["network_interface"] = json!("podman1");
    bridge_net["subnets"] = json!([{"subnet": "10.89.7.0/24", "gateway": "10.89.7.1"}]);
    bridge_net.as_object_mut().unwrap().remove("options");
    let mut subjects = [
        Subject::new(
            Via::Netavark,
            bridge_net,
            ["b1", "b2"],
            ["10.89.7.2", "10.89.7.50"],
        ),
        Subject::new(
            Via::Netavark,
            plugin_net.clone(),
            ["c1", "c2"],
            ["10.89.5.2", "10.89.5.50"],
        ),
        Subject::new(
            Via::Direct,
            plugin_net,
            ["c1", "c2"],
            ["10.89.5.2", "10.89.5.50"],
        ),
    ];
    // The resident containers: one per network (the plugin's two subjects share one).
    for sub in &subjects[..2] {
        call(
            &rig,
            sub.via,
            "setup",
            sub.ctrs[1],
            &sub.net,
            sub.per_net(1),
            json!(null),
        );
    }
    // Rounds alternate between the subjects, so the load of a shared machine weighs on each
    // alike.
    let rounds = 15;
    for _ in 0..rounds {
        for sub in subjects.iter_mut() {
            sub.round(&rig);
        }
    }
    for sub in &subjects[..2] {
        call(
            &rig,
            sub.via,
            "teardown",
            sub.ctrs[1],
            &sub.net,
            sub.per_net(1),
            json!(null),
        );
    }
    let [bridge, via, alone] = subjects.map(|s| (median(s.setup), median(s.teardown)));
    eprintln!(
        "netavark {} with its bridge driver vs the nsnet plugin, median of {rounds} alternating rounds:",
        Path::new(NETAVARK).display()
    );
    eprintln!(
        "| step | netavark bridge | netavark + nsnet plugin | nsnet plugin alone | plugin via netavark / bridge | plugin alone / bridge |"
    );
    eprintln!("| --- | --: | --: | --: | --: | --: |");
    let row = |what: &str, b: f64, p: f64, d: f64| {
        eprintln!(
            "| {what} | {b:.1} ms | {p:.1} ms | {d:.1} ms | {:.2} | {:.2} |",
            p / b,
            d / b
        );
    };
    row("setup (1 published port)", bridge.0, via.0, alone.0);
    row("teardown", bridge.1, via.1, alone.1);
    assert_nothing_left(
        s,
        &KEEP,
        &["outside", "c1", "c2", "b1", "b2"],
        "after both drivers",
    );
}

#[test]
fn a_container_on_two_networks_gets_one_default_route_per_family_and_keeps_one_when_the_first_goes()
{
    let Some(bin) = netavark(module_path!()) else {
        return;
    };
    let rig = Rig::new(bin);
    let s = &rig.s;
    let (_, a) = plugin(s, &["create"], &definition(s, "pnet"));
    let mut q = definition(s, "qnet");
    q["subnets"] = json!([{"subnet": "10.89.6.0/24"}, {"subnet": "fd00:89:6::/64"}]);
    let (code, b) = plugin(s, &["create"], &q);
    assert_eq!(code, 0, "{b}");
    assert_eq!(b["ipv6_enabled"], true);
    let ports = json!([{"container_port": 80, "host_ip": "", "host_port": 8080,
        "protocol": "tcp", "range": 1}]);
    let opts = json!({
        "container_id": "c1-0123456789abcdef",
        "container_name": "c1",
        "port_mappings": ports,
        "networks": {"pnet": {"interface_name": "eth0"}, "qnet": {"interface_name": "eth1"}},
        "network_info": {"pnet": a, "qnet": b},
    });
    let run_with = |verb: &str, opts: &Value| {
        let args = [
            "--config",
            &rig.path("config"),
            "--plugin-directory",
            &rig.path("plugins"),
            verb,
            "/run/netns/c1",
        ];
        let r = piped(s, NETAVARK, &args, &opts.to_string());
        assert_eq!(r.code, 0, "netavark {verb}: {}{}", r.stdout, r.stderr);
        r.stdout
    };
    let run = |verb: &str| run_with(verb, &opts);
    let status: Value = serde_json::from_str(&run("setup")).unwrap();
    let eth1 = &status["qnet"]["interfaces"]["eth1"]["subnets"];
    assert_eq!(
        eth1[1],
        json!({"gateway": "fd00:89:6::1", "ipnet": "fd00:89:6::2/64"})
    );
    let routes = s.sh("ip", &["-n", "c1", "route", "show", "default"]).stdout;
    assert_eq!(
        routes.trim(),
        "default via 10.89.5.1 dev eth0 proto static",
        "{routes}"
    );
    let routes6 = s
        .sh("ip", &["-n", "c1", "-6", "route", "show", "default"])
        .stdout;
    assert!(
        routes6.contains("default via fd00:89:6::1 dev eth1"),
        "{routes6}"
    );
    assert!(rig.ping("c1", "10.89.5.1"));
    assert!(rig.ping("c1", "10.89.6.1"));
    assert!(rig.ping("c1", "fd00:89:6::1"));
    // The port is published once, to the first network's address.
    let server = s.tcp_server("c1", "0.0.0.0:80");
    assert!(s.tcp_hello("outside", "203.0.113.1:8080"));
    assert_eq!(server.peer(), Some("203.0.113.2".parse().unwrap()));
    assert!(rig.ping("c1", "203.0.113.2"), "the outside through pnet");
    // `podman network disconnect pnet c1`: a teardown of pnet alone. qnet takes over the
    // IPv4 default route, and the container still reaches the outside (masqueraded by qnet).
    let mut only_p = opts.clone();
    only_p["networks"] = json!({"pnet": {"interface_name": "eth0"}});
    only_p["network_info"] = json!({"pnet": a});
    run_with("teardown", &only_p);
    let routes = s.sh("ip", &["-n", "c1", "route", "show", "default"]).stdout;
    assert_eq!(
        routes.trim(),
        "default via 10.89.6.1 dev eth1 proto static",
        "{routes}"
    );
    assert!(rig.ping("c1", "203.0.113.2"), "the outside through qnet");
    let routes6 = s
        .sh("ip", &["-n", "c1", "-6", "route", "show", "default"])
        .stdout;
    assert!(
        routes6.contains("default via fd00:89:6::1 dev eth1"),
        "{routes6}"
    );
    run("teardown");
    run("teardown");
    assert_nothing_left(s, &KEEP, &["outside", "c1", "c2"], "after teardown");
}

#[test]
fn a_network_with_no_default_route_is_never_handed_the_default_route() {
    let Some(bin) = netavark(module_path!()) else {
        return;
    };
    let rig = Rig::new(bin);
    let s = &rig.s;
    let (_, p) = plugin(s, &["create"], &definition(s, "pnet"));
    let mut r = definition(s, "rnet");
    r["subnets"] = json!([{"subnet": "10.89.7.0/24"}]);
    r["options"]["no_default_route"] = json!("true");
    let (code, r) = plugin(s, &["create"], &r);
    assert_eq!(code, 0, "{r}");
    let defaults = |c: &str| {
        s.sh("ip", &["-n", c, "route", "show", "default"])
            .stdout
            .trim()
            .to_string()
    };
    let eth = |i: u32| json!({"interface_name": format!("eth{i}")});
    let call = |verb: &str, c: &str, net: &Value, per_net: Value| {
        let out = rig.netavark(verb, c, net, per_net, json!([]));
        assert_eq!(
            out.code, 0,
            "netavark {verb} {c}: {}{}",
            out.stdout, out.stderr
        );
    };

    // c1: pnet first (it carries the default route), then rnet. `podman network disconnect
    // pnet c1` leaves c1 with no default route: rnet asked for none.
    call("setup", "c1", &p, eth(0));
    call("setup", "c1", &r, eth(1));
    assert_eq!(
        defaults("c1"),
        "default via 10.89.5.1 dev eth0 proto static"
    );
    assert!(rig.ping("c1", "203.0.113.2"), "the outside through pnet");
    call("teardown", "c1", &p, eth(0));
    assert_eq!(defaults("c1"), "", "rnet was handed the default route");
    assert!(rig.ping("c1", "10.89.7.1"), "c1 still on rnet");
    assert!(
        !rig.ping("c1", "203.0.113.2"),
        "no way out without a default route"
    );

    // c2: rnet first, then pnet, which carries the default route (rnet covers no family);
    // rnet's teardown leaves it there.
    call("setup", "c2", &r, eth(0));
    assert_eq!(defaults("c2"), "");
    call("setup", "c2", &p, eth(1));
    assert_eq!(
        defaults("c2"),
        "default via 10.89.5.1 dev eth1 proto static"
    );
    call("teardown", "c2", &r, eth(0));
    assert_eq!(
        defaults("c2"),
        "default via 10.89.5.1 dev eth1 proto static"
    );
    assert!(rig.ping("c2", "203.0.113.2"), "the outside through pnet");

    call("teardown", "c1", &r, eth(1));
    call("teardown", "c2", &p, eth(1));
    assert_nothing_left(s, &KEEP, &["outside", "c1", "c2"], "after teardown");
}
