//! Open vSwitch as a network's switch (`--driver ovs`), proven with real traffic inside
//! sandboxes where nsnet starts ovsdb-server and ovs-vswitchd itself (the userspace datapath
//! on a kernel without the openvswitch module): every path the Linux bridge has (IPv4 and
//! IPv6), isolation, internal, routed, and icc=false enforced inside OVS; gc of a port whose
//! namespace vanished and of commands killed at every crash point; repair after the daemons
//! died; the topology and CNI faces; the system's own OVS when it runs; and teardown that
//! leaves no OVS row, no daemon and no interface.

mod cnidriver;
mod common;

use std::path::PathBuf;

use cnidriver::{Conflist, Driver, Runtime};
use common::{Sandbox, root};
use serde_json::json;

/// Whether Open vSwitch is installed; without it the test skips, or fails under `CI` (as
/// root tests do), since a test that needs OVS must never pass without having run.
fn ovs_installed() -> bool {
    let found = ["/usr/sbin/ovsdb-server", "/usr/bin/ovsdb-server"]
        .iter()
        .any(|p| std::path::Path::new(p).exists());
    if !found && std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!("Open vSwitch is not installed and CI is set: run scripts/deps.sh");
    }
    if !found {
        eprintln!("skipped: Open vSwitch is not installed (scripts/deps.sh installs it)");
    }
    found
}

/// A sandbox with nsnet's OVS daemons stopped when the test ends, passed or not.
struct OvsSandbox(Sandbox);

impl std::ops::Deref for OvsSandbox {
    type Target = Sandbox;
    fn deref(&self) -> &Sandbox {
        &self.0
    }
}

impl OvsSandbox {
    fn dir(&self) -> PathBuf {
        self.0.state_dir().join("ovs")
    }

    /// The pids of nsnet's OVS daemons that are running.
    fn daemons(&self) -> Vec<i32> {
        ["ovsdb-server", "ovs-vswitchd"]
            .iter()
            .filter_map(|d| std::fs::read_to_string(self.dir().join(format!("{d}.pid"))).ok())
            .filter_map(|t| t.trim().parse().ok())
            .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
            .collect()
    }

    /// `ovs-vsctl ARGS` against nsnet's database.
    fn vsctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}", self.dir().join("db.sock").display());
        let mut a = vec![db.as_str()];
        a.extend(args);
        let r = self.sh("ovs-vsctl", &a);
        assert_eq!(r.code, 0, "ovs-vsctl {args:?}: {}", r.stderr);
        r.stdout
    }

    /// The rows of Bridge, Port and Interface in nsnet's database file (read offline).
    fn ovs_rows(&self) -> usize {
        let q = r#"["Open_vSwitch",{"op":"select","table":"Bridge","where":[]},{"op":"select","table":"Port","where":[]},{"op":"select","table":"Interface","where":[]}]"#;
        let db = self.dir().join("conf.db");
        let r = self.sh("ovsdb-tool", &["query", db.to_str().unwrap(), q]);
        assert_eq!(r.code, 0, "ovsdb-tool query: {}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        v.as_array()
            .unwrap()
            .iter()
            .map(|t| t["rows"].as_array().unwrap().len())
            .sum()
    }

    /// Everything gone: namespaces, networks, then no OVS row, no daemon, no interface.
    fn teardown(&self, nets: &[&str]) {
        for ns in self.netns_files() {
            self.ok(&["netns", "rm", &ns]);
        }
        for n in nets {
            self.ok(&["network", "rm", n, "--force"]);
        }
        assert!(self.daemons().is_empty(), "OVS daemons left running");
        assert_eq!(self.ovs_rows(), 0, "OVS rows left");
        self.assert_clean();
    }
}

impl Drop for OvsSandbox {
    fn drop(&mut self) {
        for pid in self.daemons() {
            // SAFETY: a daemon this test's nsnet started, by the pid in its own state dir.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A sandbox with an uplink to "outside" (host 203.0.113.1, outside 203.0.113.2) and a
/// second host address towards "side" (198.51.100.1 / .2).
fn world() -> OvsSandbox {
    let s = Sandbox::new();
    s.add_outside();
    s.ok(&["netns", "add", "side"]);
    s.ok(&[
        "link",
        "add",
        "host",
        "side",
        "--ifname-a",
        "side0",
        "--ifname-b",
        "eth0",
        "--addr",
        "198.51.100.1/24",
        "--addr",
        "198.51.100.2/24",
    ]);
    s.add_outside_v6();
    OvsSandbox(s)
}

#[test]
fn ovs_network_carries_every_path_the_bridge_does() {
    if !root() || !ovs_installed() {
        return;
    }
    let s = world();
    for ns in ["web", "peer"] {
        s.ok(&["netns", "add", ns]);
    }
    s.ok(&[
        "network",
        "create",
        "lan",
        "--driver",
        "ovs",
        "--subnet",
        "10.88.0.0/24",
        "--subnet",
        "fd00:88::/64",
        "--mtu",
        "1400",
    ]);
    let d = s.json(&["network", "inspect", "lan"]);
    assert_eq!(d["driver"], "ovs", "{d}");
    s.ok(&["network", "connect", "lan", "web", "--publish", "8080:80"]);
    s.ok(&["network", "connect", "lan", "peer"]);
    // The switch is OVS's (ports owned by nsnet), not a Linux bridge.
    let br = s.vsctl(&["list-ports", "nsbr-lan"]);
    assert_eq!(br.lines().count(), 2, "{br}");
    let owner = s.vsctl(&["get", "Port", br.lines().next().unwrap(), "external_ids"]);
    assert!(owner.contains("nsnet-network=lan"), "{owner}");
    let link = s.sh("ip", &["-d", "link", "show", "nsbr-lan"]);
    assert!(!link.stdout.contains("bridge "), "{}", link.stdout);
    assert!(link.stdout.contains("mtu 1400"), "{}", link.stdout);
    // Container to container (ICMP and TCP, both ways), and the gateway.
    assert!(s.ping("web", "10.88.0.3"));
    let srv = s.tcp_server("peer", "0.0.0.0:7000");
    assert!(s.tcp_hello("web", "10.88.0.3:7000"), "tcp web -> peer");
    assert_eq!(srv.peer().unwrap().to_string(), "10.88.0.2");
    let srv = s.tcp_server("web", "0.0.0.0:7000");
    assert!(s.tcp_hello("peer", "10.88.0.2:7000"), "tcp peer -> web");
    assert!(srv.peer().is_some());
    assert!(s.ping("web", "10.88.0.1"), "gateway");
    assert!(s.ping("web", "fd00:88::3"), "IPv6 container to container");
    assert!(s.ping("web", "fd00:88::1"), "IPv6 gateway");
    // Egress, masqueraded behind the uplink.
    let srv = s.tcp_server("outside", "203.0.113.2:9000");
    assert!(s.tcp_hello("web", "203.0.113.2:9000"), "egress");
    assert_eq!(srv.peer().unwrap().to_string(), "203.0.113.1", "masquerade");
    // The published port from outside (source kept), the host's addresses and 127.0.0.1,
    // another container and hairpin.
    let srv = s.tcp_server("web", "0.0.0.0:80");
    assert!(
        s.tcp_hello("outside", "203.0.113.1:8080"),
        "outside -> published"
    );
    assert_eq!(srv.peer().unwrap().to_string(), "203.0.113.2");
    let srv = s.tcp_server("web", "[::]:80");
    assert!(
        s.tcp_hello("outside", "[2001:db8::1]:8080"),
        "outside -> published over IPv6"
    );
    assert_eq!(srv.peer().unwrap().to_string(), "2001:db8::2");
    for dst in ["203.0.113.1:8080", "198.51.100.1:8080", "127.0.0.1:8080"] {
        let srv = s.tcp_server("web", "0.0.0.0:80");
        assert!(s.tcp_hello("host", dst), "host -> {dst}");
        assert!(srv.peer().is_some());
    }
    for client in ["peer", "web"] {
        let srv = s.tcp_server("web", "0.0.0.0:80");
        assert!(
            s.tcp_hello(client, "203.0.113.1:8080"),
            "{client} -> published"
        );
        assert!(srv.peer().is_some());
        let srv = s.tcp_server("web", "[::]:80");
        assert!(
            s.tcp_hello(client, "[2001:db8::1]:8080"),
            "{client} -> published over IPv6"
        );
        assert!(srv.peer().is_some());
    }
    // Disconnect takes the port off the switch; connecting again works.
    s.ok(&["network", "disconnect", "lan", "peer"]);
    assert_eq!(s.vsctl(&["list-ports", "nsbr-lan"]).lines().count(), 1);
    assert!(!s.ping("web", "10.88.0.3"));
    s.ok(&["network", "connect", "lan", "peer"]);
    assert!(s.ping("peer", "10.88.0.2"));
    s.teardown(&["lan"]);
}

#[test]
fn ovs_networks_are_isolated_internal_icc_off_and_routed() {
    if !root() || !ovs_installed() {
        return;
    }
    let s = world();
    for ns in ["a1", "a2", "b1", "q1", "q2", "i1", "i2", "o1"] {
        s.ok(&["netns", "add", ns]);
    }
    let ovs = ["--driver", "ovs"];
    let create = |name: &str, subnet: &str, extra: &[&str]| {
        let mut a = vec!["network", "create", name, "--subnet", subnet];
        a.extend(extra);
        s.ok(&a);
    };
    create("neta", "10.91.0.0/24", &ovs);
    // The other network is a Linux bridge: the two drivers live side by side.
    create("netb", "10.92.0.0/24", &[]);
    create("quiet", "10.93.0.0/24", &["--driver", "ovs", "--icc=false"]);
    create("inner", "10.94.0.0/24", &["--driver", "ovs", "--internal"]);
    create("open", "10.95.0.0/24", &["--driver", "ovs", "--routed"]);
    for (net, ns) in [
        ("neta", "a1"),
        ("neta", "a2"),
        ("quiet", "q1"),
        ("quiet", "q2"),
        ("inner", "i1"),
        ("inner", "i2"),
    ] {
        s.ok(&["network", "connect", net, ns]);
    }
    s.ok(&["network", "connect", "netb", "b1", "--publish", "8090:80"]);
    assert!(s.ping("a1", "10.91.0.3"));
    assert!(!s.ping("a1", "10.92.0.2"), "a1 reached b1 directly");
    assert!(!s.ping("b1", "10.91.0.2"), "b1 reached a1 directly");
    let srv = s.tcp_server("b1", "0.0.0.0:80");
    assert!(
        !s.tcp_hello("a1", "10.92.0.2:80"),
        "direct tcp across networks"
    );
    assert!(srv.peer().is_none());
    let srv = s.tcp_server("b1", "0.0.0.0:80");
    assert!(
        s.tcp_hello("a1", "203.0.113.1:8090"),
        "published port across networks"
    );
    assert!(srv.peer().is_some());
    // icc=false: no frame between the two containers inside OVS, the gateway and out work.
    assert!(!s.ping("q1", "10.93.0.3"), "icc=false let q1 reach q2");
    let srv = s.tcp_server("q2", "0.0.0.0:80");
    assert!(
        !s.tcp_hello("q1", "10.93.0.3:80"),
        "icc=false let tcp through"
    );
    assert!(srv.peer().is_none());
    assert!(s.ping("q1", "10.93.0.1"), "gateway of icc=false");
    assert!(s.ping("q1", "203.0.113.2"), "egress from icc=false");
    // Internal: talk inside, nothing outside or to other networks.
    assert!(s.ping("i1", "10.94.0.3"), "internal peers");
    assert!(!s.ping("i1", "203.0.113.2"), "internal reached outside");
    assert!(
        !s.ping("i1", "10.91.0.2"),
        "internal reached another network"
    );
    assert!(
        !s.ping("a1", "10.94.0.2"),
        "another network reached internal"
    );
    // From outside, with routes to the subnets through the host: only the routed network
    // takes traffic straight to its containers.
    s.ok(&["network", "connect", "open", "o1"]);
    for net in ["10.91.0.0/24", "10.95.0.0/24"] {
        s.ok(&["route", "add", "outside", net, "via", "203.0.113.1"]);
    }
    let srv = s.tcp_server("o1", "0.0.0.0:81");
    assert!(
        s.tcp_hello("outside", "10.95.0.2:81"),
        "outside -> routed OVS network"
    );
    assert_eq!(srv.peer().unwrap().to_string(), "203.0.113.2");
    let srv = s.tcp_server("a1", "0.0.0.0:81");
    assert!(
        !s.tcp_hello("outside", "10.91.0.2:81"),
        "outside reached an unrouted network"
    );
    assert!(srv.peer().is_none());
    s.teardown(&["neta", "netb", "quiet", "inner", "open"]);
}

#[test]
fn gc_collects_the_port_of_a_vanished_namespace() {
    if !root() || !ovs_installed() {
        return;
    }
    let s = OvsSandbox(Sandbox::new());
    s.ok(&[
        "network",
        "create",
        "lan",
        "--driver",
        "ovs",
        "--subnet",
        "10.88.0.0/24",
    ]);
    for ns in ["gone", "kept"] {
        s.ok(&["netns", "add", ns]);
        s.ok(&["network", "connect", "lan", ns]);
    }
    // The namespace disappears behind nsnet's back (a runtime removed it): its veth goes
    // with it, its port row stays, naming a device that no longer exists.
    assert_eq!(s.sh("ip", &["netns", "del", "gone"]).code, 0);
    assert_eq!(s.vsctl(&["list-ports", "nsbr-lan"]).lines().count(), 2);
    s.ok(&["gc"]);
    let ports = s.vsctl(&["list-ports", "nsbr-lan"]);
    assert_eq!(ports.lines().count(), 1, "{ports}");
    let d = s.json(&["network", "inspect", "lan"]);
    assert_eq!(d["endpoints"].as_array().unwrap().len(), 1, "{d}");
    assert!(s.ping("kept", "10.88.0.1"));
    s.teardown(&["lan"]);
}

#[test]
fn ovs_not_installed_is_a_clear_error_and_changes_nothing() {
    if !root() {
        return;
    }
    let s = OvsSandbox(Sandbox::new());
    // The firewall skeleton first, with the usual PATH (its install runs nft once).
    s.ok(&["network", "create", "plain", "--subnet", "10.87.0.0/24"]);
    // PATH for nsnet alone: nsenter itself must still be found.
    let r = s
        .command(
            "env",
            &[
                "PATH=/nonexistent",
                common::NSNET,
                "network",
                "create",
                "lan",
                "--driver",
                "ovs",
                "--subnet",
                "10.88.0.0/24",
            ],
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(1), "{err}");
    assert!(err.contains("Open vSwitch is not installed"), "{err}");
    assert!(err.contains("ovsdb-server"), "{err}");
    assert_eq!(s.json(&["network", "ls"]).as_array().unwrap().len(), 1);
    assert!(s.daemons().is_empty());
    s.ok(&["network", "rm", "plain"]);
    s.assert_clean();
}

#[test]
fn repair_restarts_dead_daemons_and_restores_the_switch() {
    if !root() || !ovs_installed() {
        return;
    }
    let s = world();
    for ns in ["web", "peer"] {
        s.ok(&["netns", "add", ns]);
    }
    s.ok(&[
        "network",
        "create",
        "lan",
        "--driver",
        "ovs",
        "--subnet",
        "10.88.0.0/24",
    ]);
    s.ok(&["network", "connect", "lan", "web", "--publish", "8080:80"]);
    s.ok(&["network", "connect", "lan", "peer"]);
    assert!(s.ping("peer", "10.88.0.2"));
    // Both daemons die (OOM killer, an admin): the local port with the gateway goes with
    // ovs-vswitchd, and nothing is switched.
    let pids = s.daemons();
    assert_eq!(pids.len(), 2);
    for pid in pids {
        // SAFETY: the daemons this test's nsnet started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for _ in 0..100 {
        if s.daemons().is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(
        !s.ping("peer", "10.88.0.2"),
        "switching without ovs-vswitchd"
    );
    s.ok(&["repair"]);
    assert_eq!(s.daemons().len(), 2, "repair did not restart the daemons");
    assert!(
        s.ping("peer", "10.88.0.2"),
        "container to container after repair"
    );
    assert!(s.ping("peer", "10.88.0.1"), "gateway after repair");
    let srv = s.tcp_server("web", "0.0.0.0:80");
    assert!(
        s.tcp_hello("outside", "203.0.113.1:8080"),
        "published port after repair"
    );
    assert!(srv.peer().is_some());
    // Repair with everything in place changes nothing.
    s.ok(&["repair"]);
    assert!(s.ping("peer", "10.88.0.2"));
    s.teardown(&["lan"]);
}

#[test]
fn topology_file_mixes_drivers_and_destroy_leaves_nothing() {
    if !root() || !ovs_installed() {
        return;
    }
    let s = OvsSandbox(Sandbox::new());
    let file = s.state_dir().join("t.yaml");
    std::fs::write(
        &file,
        "name: t\nnamespaces: [web, app, db]\nnetworks:\n  front:\n    subnets: [10.10.1.0/24]\n    driver: ovs\n    endpoints:\n      web: {}\n      app: {}\n  back:\n    subnets: [10.10.2.0/24]\n    internal: true\n    endpoints:\n      app: {}\n      db: {}\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    s.ok(&["apply", "-f", file]);
    assert!(s.ok(&["apply", "-f", file]).contains("no changes"));
    assert_eq!(s.json(&["network", "inspect", "front"])["driver"], "ovs");
    assert_eq!(s.json(&["network", "inspect", "back"])["driver"], "bridge");
    assert!(s.ping("web", "10.10.1.3"), "web -> app over OVS");
    assert!(s.ping("app", "10.10.2.3"), "app -> db over the bridge");
    assert!(
        !s.ping("web", "10.10.2.3"),
        "web reached the internal network"
    );
    // Changing a network's driver in the file replaces the network, endpoints and all.
    let text = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, text.replacen("    driver: ovs\n", "", 1)).unwrap();
    assert!(s.ok(&["plan", "-f", file]).contains("replace"));
    s.ok(&["apply", "-f", file]);
    assert_eq!(s.json(&["network", "inspect", "front"])["driver"], "bridge");
    assert!(s.ping("web", "10.10.1.3"), "web -> app over the bridge now");
    assert!(
        s.daemons().is_empty(),
        "OVS daemons left after the last OVS network went"
    );
    std::fs::write(file, text).unwrap();
    s.ok(&["apply", "-f", file]);
    assert_eq!(s.json(&["network", "inspect", "front"])["driver"], "ovs");
    assert!(s.ping("web", "10.10.1.3"), "web -> app over OVS again");
    s.ok(&["destroy", "-f", file]);
    assert!(s.daemons().is_empty(), "OVS daemons left running");
    assert_eq!(s.ovs_rows(), 0, "OVS rows left");
    s.assert_clean();
}

#[test]
fn cni_parallel_add_check_del_on_an_ovs_network() {
    if !root() || !ovs_installed() {
        return;
    }
    let s = OvsSandbox(Sandbox::new());
    let d = Driver::new(&s);
    let list = Conflist::single(
        "1.0.0",
        json!({
            "type": "nsnet",
            "name": "kube",
            "driver": "ovs",
            "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.70.0.0/24"}]]}
        }),
    );
    // 16 ADDs at once: the first creates the network and starts the daemons, the others
    // wait for it (the store's lock), each returns with its port switching.
    let n = 16;
    let names: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    for ns in &names {
        s.ok(&["netns", "add", ns]);
    }
    let rts: Vec<Runtime> = names
        .iter()
        .enumerate()
        .map(|(i, ns)| Runtime::new(&format!("ctr{i}"), &format!("/run/netns/{ns}")))
        .collect();
    let results: Vec<serde_json::Value> = std::thread::scope(|sc| {
        let handles: Vec<_> = rts.iter().map(|rt| sc.spawn(|| d.add(&list, rt))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap_or_else(|e| panic!("ADD: {e}")))
            .collect()
    });
    for (rt, res) in rts.iter().zip(&results) {
        d.check(&list, rt, res)
            .unwrap_or_else(|e| panic!("CHECK: {e}"));
    }
    assert_eq!(s.json(&["network", "inspect", "kube"])["driver"], "ovs");
    assert_eq!(s.vsctl(&["list-ports", "nsbr-kube"]).lines().count(), n);
    for res in &results {
        let ip = res["ips"][0]["address"].as_str().unwrap();
        let ip = ip.split('/').next().unwrap();
        assert!(s.ping("c0", ip), "c0 -> {ip} over OVS");
    }
    assert!(s.ping("c1", "10.70.0.1"), "gateway");
    std::thread::scope(|sc| {
        for (rt, res) in rts.iter().zip(&results) {
            let (d, list) = (&d, &list);
            sc.spawn(move || d.del(list, rt, Some(res)).unwrap());
        }
    });
    for ns in &names {
        s.ok(&["netns", "rm", ns]);
    }
    // The configuration-owned network went with its last attachment, and OVS with it.
    assert!(s.daemons().is_empty(), "OVS daemons left running");
    assert_eq!(s.ovs_rows(), 0, "OVS rows left");
    s.assert_clean();
}

/// Runs `nsnet ARGS` killed (SIGKILL) at crash point `k`; true when it got that far.
fn crashed_at(s: &Sandbox, k: u32, args: &[&str]) -> bool {
    let out = s
        .command(common::NSNET, args)
        .env("NSNET_CRASH_AT", k.to_string())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let crashed = err.contains("crash point");
    assert!(
        crashed || out.status.success(),
        "nsnet {args:?} failed: {err}"
    );
    crashed
}

#[test]
fn a_command_killed_at_any_point_leaves_what_gc_makes_whole() {
    if !root() || !ovs_installed() {
        return;
    }
    let s = OvsSandbox(Sandbox::new());
    let create = [
        "network",
        "create",
        "lan",
        "--driver",
        "ovs",
        "--subnet",
        "10.88.0.0/24",
    ];
    let connect = ["network", "connect", "lan", "a"];
    let ports = |s: &OvsSandbox| -> usize {
        if s.daemons().is_empty() {
            return 0;
        }
        let r = s.sh(
            "ovs-vsctl",
            &[
                &format!("--db=unix:{}", s.dir().join("db.sock").display()),
                "--columns=name",
                "--bare",
                "find",
                "Port",
                "external_ids:nsnet-network=lan",
            ],
        );
        r.stdout.split_whitespace().count()
    };
    // A killed create: gc rolls it back (no bridge, daemons stopped) or it was complete.
    let mut points = 0;
    for k in 1.. {
        if !crashed_at(&s, k, &create) {
            points = k - 1;
            break;
        }
        s.ok(&["gc"]);
        let nets = s.json(&["network", "ls"]).as_array().unwrap().len();
        match nets {
            0 => {
                assert_eq!(ports(&s), 0, "create killed at {k}: OVS rows left");
                assert!(s.daemons().is_empty(), "create killed at {k}: daemons left");
            }
            _ => {
                // Committed before the kill: the bridge and its local port are whole.
                assert_eq!(ports(&s), 1, "create killed at {k}");
                s.ok(&["network", "rm", "lan"]);
            }
        }
        assert_eq!(
            s.host_links(),
            vec!["lo".to_string()],
            "create killed at {k}"
        );
    }
    // The bridge with its local port and the gateway device's steps, each with two points.
    assert!(points >= 8, "create has only {points} crash points");
    s.ok(&["netns", "add", "a"]);
    // A killed connect: after gc, the endpoint and its port are both there or both gone.
    for k in 1.. {
        if !crashed_at(&s, k, &connect) {
            points = k - 1;
            break;
        }
        s.ok(&["gc"]);
        let eps = s.json(&["network", "inspect", "lan"])["endpoints"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(ports(&s), 1 + eps, "connect killed at {k}: port rows");
        if eps == 1 {
            assert!(s.ping("a", "10.88.0.1"), "connect killed at {k}");
            s.ok(&["network", "disconnect", "lan", "a"]);
        }
        assert_eq!(ports(&s), 1, "connect killed at {k}");
    }
    assert!(points >= 8, "connect has only {points} crash points");
    assert!(s.ping("a", "10.88.0.1"));
    s.teardown(&["lan"]);
}

#[test]
fn a_running_system_open_vswitch_is_used_and_left_running() {
    if !root() || !ovs_installed() {
        return;
    }
    let s = OvsSandbox(Sandbox::new());
    // The system's OVS, as Debian's service runs it, in the sandbox's private /run.
    let start = "set -e; d=/run/openvswitch; mkdir -p $d; export OVS_RUNDIR=$d OVS_LOGDIR=$d OVS_DBDIR=$d; \
        ovsdb-tool create $d/conf.db /usr/share/openvswitch/vswitch.ovsschema; \
        ovsdb-server --detach --pidfile=$d/ovsdb-server.pid --log-file=$d/ovsdb-server.log --remote=punix:$d/db.sock $d/conf.db; \
        ovs-vsctl --db=unix:$d/db.sock --no-wait init; \
        ovs-vswitchd --detach --pidfile=$d/ovs-vswitchd.pid --log-file=$d/ovs-vswitchd.log unix:$d/db.sock";
    let r = s.sh("sh", &["-c", start]);
    assert_eq!(r.code, 0, "start the system's OVS: {}", r.stderr);
    let system_pids = || -> Vec<i32> {
        ["ovsdb-server", "ovs-vswitchd"]
            .iter()
            .filter_map(|d| {
                let p = format!("/proc/{}/root/run/openvswitch/{d}.pid", s.pid());
                std::fs::read_to_string(p).ok()?.trim().parse().ok()
            })
            .filter(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
            .collect()
    };
    /// Kills the system's daemons of this sandbox at the end, however the test ends.
    struct Kill(Vec<i32>);
    impl Drop for Kill {
        fn drop(&mut self) {
            for pid in &self.0 {
                // SAFETY: the daemons this test started, by their pidfiles.
                unsafe { libc::kill(*pid, libc::SIGKILL) };
            }
        }
    }
    let _kill = Kill(system_pids());
    assert_eq!(system_pids().len(), 2);
    s.ok(&[
        "network",
        "create",
        "lan",
        "--driver",
        "ovs",
        "--subnet",
        "10.88.0.0/24",
    ]);
    for ns in ["a", "b"] {
        s.ok(&["netns", "add", ns]);
        s.ok(&["network", "connect", "lan", ns]);
    }
    assert!(s.daemons().is_empty(), "nsnet started its own daemons");
    let show = s.sh(
        "ovs-vsctl",
        &[
            "--db=unix:/run/openvswitch/db.sock",
            "list-ports",
            "nsbr-lan",
        ],
    );
    assert_eq!(
        show.stdout.lines().count(),
        2,
        "{}{}",
        show.stdout,
        show.stderr
    );
    assert!(s.ping("a", "10.88.0.3"));
    for ns in ["a", "b"] {
        s.ok(&["netns", "rm", ns]);
    }
    s.ok(&["network", "rm", "lan"]);
    let left = s.sh(
        "ovs-vsctl",
        &["--db=unix:/run/openvswitch/db.sock", "list-br"],
    );
    assert_eq!(left.stdout.trim(), "", "bridges left");
    assert_eq!(system_pids().len(), 2, "nsnet stopped the system's OVS");
}

/// A container's veth deleted from the host side on an OVS network (its port row stays in
/// OVS's database, naming a device that is gone): doctor names the endpoint, repair makes
/// the pair again with its recorded names, MAC and address, OVS switches it again, and the
/// published port passes.
#[test]
fn repair_makes_a_deleted_veth_again_on_an_ovs_network() {
    if !root() || !ovs_installed() {
        return;
    }
    let s = world();
    for ns in ["web", "peer"] {
        s.ok(&["netns", "add", ns]);
    }
    s.ok(&[
        "network",
        "create",
        "lan",
        "--driver",
        "ovs",
        "--subnet",
        "10.89.0.0/24",
    ]);
    s.ok(&["network", "connect", "lan", "web", "--publish", "8080:80"]);
    s.ok(&["network", "connect", "lan", "peer"]);
    assert!(s.ping("peer", "10.89.0.2"));
    let web = s.json(&["network", "inspect", "lan"])["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["netns"] == "web")
        .unwrap()
        .clone();
    let host_end = web["host_ifname"].as_str().unwrap().to_string();
    let mac = web["mac"].as_str().unwrap().to_string();

    let del = s.sh("ip", &["link", "del", &host_end]);
    assert_eq!(del.code, 0, "{}", del.stderr);
    assert!(
        !s.ping("peer", "10.89.0.2"),
        "peer reaches web without its veth"
    );
    let r = s.nsnet(&["doctor", "--format", "json"]);
    let sick: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let c = sick["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "veth pairs")
        .unwrap_or_else(|| panic!("no veth pairs check: {sick:#}"));
    assert_eq!(c["status"], "WARN", "{sick:#}");
    assert!(
        c["detail"].as_str().unwrap().contains(&format!(
            "endpoint web on network lan: veth {host_end} / eth0"
        )),
        "{c:#}"
    );

    s.ok(&["repair"]);
    let link = s
        .sh("ip", &["-n", "web", "-j", "link", "show", "eth0"])
        .stdout;
    assert!(link.contains(&format!("\"address\":\"{mac}\"")), "{link}");
    assert!(s.ping("peer", "10.89.0.2"), "peer does not reach web again");
    assert!(s.ping("web", "10.89.0.3"), "web does not reach peer again");
    assert!(s.ping("web", "10.89.0.1"), "web's gateway is not back");
    let srv = s.tcp_server("web", "0.0.0.0:80");
    assert!(
        s.tcp_hello("outside", "203.0.113.1:8080"),
        "published port after repair"
    );
    assert!(srv.peer().is_some());
    let r = s.nsnet(&["doctor", "--format", "json"]);
    let after: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(after["ok"], true, "{after:#}");
    s.teardown(&["lan"]);
}
