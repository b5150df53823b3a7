//! The data plane under real use, proven with traffic inside a sandbox: the gateway keeps its
//! MAC while neighbours come and go (and across a re-create after a reboot), and container
//! ports are reachable from outside only through published ports unless a network is `--routed`.

mod common;

use std::time::Duration;

use common::{Sandbox, root};
use nsnet_core::names::NetName;
use nsnet_store::Store;

/// The MAC of interface `dev` in namespace `ns` ("host" for the sandbox itself).
fn mac_of(s: &Sandbox, ns: &str, dev: &str) -> String {
    let mut args = vec![];
    if ns != "host" {
        args.extend(["-n", ns]);
    }
    args.extend(["-j", "link", "show", "dev", dev]);
    let r = s.sh("ip", &args);
    assert_eq!(r.code, 0, "ip link show {dev}: {}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v[0]["address"].as_str().unwrap().to_string()
}

/// `(netns, host veth)` of every endpoint of `network`.
fn host_veths(s: &Sandbox, network: &str) -> Vec<(String, String)> {
    let d = s.json(&["network", "inspect", network]);
    d["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["netns"].as_str().unwrap().to_string(),
                e["host_ifname"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `(lladdr, state)` of the neighbour entry for `ip` in namespace `ns`.
fn neighbour(s: &Sandbox, ns: &str, ip: &str) -> (String, String) {
    let r = s.sh("ip", &["-n", ns, "-j", "neigh", "show", ip]);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let e = &v[0];
    (
        e["lladdr"].as_str().unwrap_or("none").to_string(),
        e["state"][0].as_str().unwrap_or("none").to_string(),
    )
}

#[test]
fn gateway_keeps_its_mac_when_a_neighbour_leaves() {
    if !root() {
        return;
    }
    const BR: &str = "nsbr-lan";
    const GW: &str = "10.88.0.1";
    let s = Sandbox::new();
    s.ok(&["network", "create", "lan", "--subnet", "10.88.0.0/24"]);
    let empty = mac_of(&s, "host", BR);
    let names: Vec<String> = (0..12).map(|i| format!("n{i:02}")).collect();
    for n in &names {
        s.ok(&["netns", "add", n]);
        s.ok(&["network", "connect", "lan", n]);
    }
    let full = mac_of(&s, "host", BR);
    // The neighbour whose host veth would lend the bridge its MAC: the one whose MAC the
    // bridge has (unpinned), else the lowest, the one the kernel would pick.
    let mut veths: Vec<(String, String, String)> = host_veths(&s, "lan")
        .into_iter()
        .map(|(ns, veth)| {
            let mac = mac_of(&s, "host", &veth);
            (mac, ns, veth)
        })
        .collect();
    veths.sort();
    let (_, leaver, _) = veths
        .iter()
        .find(|(mac, ..)| *mac == full)
        .unwrap_or(&veths[0])
        .clone();
    let pinger = names.iter().find(|n| **n != leaver).unwrap().clone();
    // The pinger's neighbour entry for the gateway is fresh (REACHABLE) when the leaver goes.
    assert!(s.ping(&pinger, GW));
    let ping = s
        .command(
            common::NSNET,
            &[
                "netns", "exec", &pinger, "--", "ping", "-n", "-i", "0.2", "-c", "20", "-W", "1",
                GW,
            ],
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    s.ok(&["network", "disconnect", "lan", &leaver]);
    let out = ping.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or("no summary")
        .to_string();
    let after = mac_of(&s, "host", BR);
    let (lladdr, state) = neighbour(&s, &pinger, GW);
    eprintln!(
        "bridge MAC empty {empty}, with 12 ports {full}, after {leaver} left {after}; \
         {pinger} -> gateway across the leave: {summary}; neighbour entry {lladdr} {state}"
    );
    assert!(
        summary.contains(" 20 received") && summary.contains(" 0% packet loss"),
        "pings to the gateway were lost when {leaver} left: {summary} (bridge MAC {full} -> {after})"
    );
    assert_eq!(lladdr, after, "{pinger}'s neighbour entry for the gateway");
    assert!(
        ["REACHABLE", "STALE", "DELAY", "PROBE"].contains(&state.as_str()),
        "neighbour entry for the gateway is {state}"
    );
    assert_ne!(empty, "00:00:00:00:00:00", "an empty bridge has no MAC");
    let first = u8::from_str_radix(&empty[..2], 16).unwrap();
    assert_eq!(
        first & 0b11,
        0b10,
        "{empty} is not a locally administered unicast MAC"
    );
    assert_eq!(full, empty, "ports joining changed the bridge MAC");
    assert_eq!(after, empty, "a port leaving changed the bridge MAC");
    // Churn: everyone leaves, some come back; the MAC never moves.
    for n in names.iter().filter(|n| **n != leaver) {
        s.ok(&["network", "disconnect", "lan", n]);
    }
    assert_eq!(mac_of(&s, "host", BR), empty, "empty again");
    for n in &names[..3] {
        s.ok(&["network", "connect", "lan", n]);
    }
    assert_eq!(mac_of(&s, "host", BR), empty, "after reconnects");
    // A reboot: the bridge and the firewall are gone and the store says another boot made
    // them. The next connect re-creates the bridge, with the same MAC.
    for n in &names[..3] {
        s.ok(&["network", "disconnect", "lan", n]);
    }
    assert_eq!(s.sh("ip", &["link", "del", BR]).code, 0);
    assert_eq!(s.sh("nft", &["flush", "ruleset"]).code, 0);
    Store::open(s.state_dir())
        .unwrap()
        .write(|tx| tx.set_network_boot(&NetName::new("lan").unwrap(), "an-earlier-boot"))
        .unwrap();
    s.ok(&["network", "connect", "lan", &names[0]]);
    assert_eq!(mac_of(&s, "host", BR), empty, "re-created after a reboot");
    assert!(s.ping(&names[0], GW));
    for n in &names {
        s.ok(&["netns", "rm", n]);
    }
    s.ok(&["network", "rm", "lan"]);
    s.assert_clean();
}

/// A sandbox with an uplink to "outside" (203.0.113.2, 2001:db8::2) whose routes to
/// nsnet's subnets (10.88-89.0.0/24, fd00:88-89::/64) go through the sandbox host, as a
/// machine on the host's LAN could set up.
fn world() -> Sandbox {
    let s = Sandbox::new();
    s.add_outside();
    s.add_outside_v6();
    for (dest, via) in [
        ("10.88.0.0/24", "203.0.113.1"),
        ("10.89.0.0/24", "203.0.113.1"),
        ("fd00:88::/64", "2001:db8::1"),
        ("fd00:89::/64", "2001:db8::1"),
    ] {
        let r = s.sh("ip", &["-n", "outside", "route", "add", dest, "via", via]);
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    s
}

/// Whether a TCP server listening in `ns` on `listen` answers a client in `client` at `dst`.
fn reaches(s: &Sandbox, client: &str, ns: &str, listen: &str, dst: &str) -> bool {
    let srv = s.tcp_server(ns, listen);
    let hello = s.tcp_hello(client, dst);
    let seen = srv.peer().is_some();
    assert_eq!(hello, seen, "{client} -> {dst}: client and server disagree");
    hello
}

#[test]
fn unpublished_ports_are_not_reachable_from_outside_with_br_netfilter() {
    if root() {
        only_published_ports_from_outside(true);
    }
}

#[test]
fn unpublished_ports_are_not_reachable_from_outside_without_br_netfilter() {
    if root() {
        only_published_ports_from_outside(false);
    }
}

fn only_published_ports_from_outside(brnf: bool) {
    let ctx = format!("br_netfilter {brnf}");
    let s = world();
    s.br_netfilter(brnf);
    for ns in ["web", "peer", "open"] {
        s.ok(&["netns", "add", ns]);
    }
    s.ok(&[
        "network",
        "create",
        "lan",
        "--subnet",
        "10.88.0.0/24",
        "--subnet",
        "fd00:88::/64",
    ]);
    s.ok(&["network", "connect", "lan", "web", "--publish", "8080:80"]);
    s.ok(&["network", "connect", "lan", "peer"]);
    // From outside, straight to the container: refused, published or not, both families.
    for (listen, dst) in [
        ("0.0.0.0:81", "10.88.0.2:81"),
        ("0.0.0.0:80", "10.88.0.2:80"),
        ("[::]:81", "[fd00:88::2]:81"),
        ("[::]:80", "[fd00:88::2]:80"),
    ] {
        assert!(
            !reaches(&s, "outside", "web", listen, dst),
            "{ctx}: outside reached {dst} directly"
        );
    }
    let srv = s.udp_server("web", "0.0.0.0:53");
    assert!(
        !s.udp_hello("outside", "10.88.0.2:53"),
        "{ctx}: outside reached udp 10.88.0.2:53 directly"
    );
    assert!(srv.peer().is_none());
    assert!(
        !s.ping("outside", "10.88.0.2"),
        "{ctx}: outside pinged a container"
    );
    // Through the published port: yes, both families, with the client's own address.
    for (listen, dst) in [
        ("0.0.0.0:80", "203.0.113.1:8080"),
        ("[::]:80", "[2001:db8::1]:8080"),
    ] {
        assert!(
            reaches(&s, "outside", "web", listen, dst),
            "{ctx}: published {dst}"
        );
    }
    // The same network and the host itself still reach every port.
    for (client, listen, dst) in [
        ("peer", "0.0.0.0:81", "10.88.0.2:81"),
        ("peer", "[::]:81", "[fd00:88::2]:81"),
        ("host", "0.0.0.0:81", "10.88.0.2:81"),
        ("host", "[::]:81", "[fd00:88::2]:81"),
    ] {
        assert!(
            reaches(&s, client, "web", listen, dst),
            "{ctx}: {client} -> {dst}"
        );
    }
    // Replies to the container's own connections come back in.
    let srv = s.tcp_server("outside", "203.0.113.2:9000");
    assert!(s.tcp_hello("web", "203.0.113.2:9000"), "{ctx}: egress");
    assert!(srv.peer().is_some());
    // An explicitly routed network accepts direct inbound traffic.
    s.ok(&[
        "network",
        "create",
        "open",
        "--subnet",
        "10.89.0.0/24",
        "--subnet",
        "fd00:89::/64",
        "--routed",
    ]);
    s.ok(&["network", "connect", "open", "open"]);
    assert_eq!(s.json(&["network", "inspect", "open"])["routed"], true);
    assert_eq!(s.json(&["network", "inspect", "lan"])["routed"], false);
    assert!(
        s.ok(&["network", "inspect", "open"])
            .contains("Routed:      true")
    );
    for (listen, dst) in [
        ("0.0.0.0:81", "10.89.0.2:81"),
        ("[::]:81", "[fd00:89::2]:81"),
    ] {
        assert!(
            reaches(&s, "outside", "open", listen, dst),
            "{ctx}: routed network {dst}"
        );
    }
    // Isolation still holds between a routed network and another one.
    assert!(
        !reaches(&s, "open", "web", "0.0.0.0:81", "10.88.0.2:81"),
        "{ctx}: routed network reached lan directly"
    );
    // repair restores the routed set along with everything else.
    assert_eq!(s.sh("nft", &["flush", "ruleset"]).code, 0);
    s.ok(&["repair"]);
    assert!(
        reaches(&s, "outside", "open", "0.0.0.0:81", "10.89.0.2:81"),
        "{ctx}: routed network after repair"
    );
    assert!(
        !reaches(&s, "outside", "web", "0.0.0.0:81", "10.88.0.2:81"),
        "{ctx}: lan reachable directly after repair"
    );
    for ns in ["web", "peer", "open", "outside"] {
        s.ok(&["netns", "rm", ns]);
    }
    s.ok(&["network", "rm", "lan"]);
    s.ok(&["network", "rm", "open"]);
    let left = s.sh("nft", &["list", "tables"]).stdout;
    assert!(!left.contains("nsnet"), "{ctx}: tables left: {left}");
    s.assert_clean();
}

/// Deletes the rules of chain `family nsnet chain` whose text satisfies `pick`.
fn delete_rules(s: &Sandbox, family: &str, chain: &str, pick: impl Fn(&str) -> bool) {
    let listing = s
        .sh("nft", &["-a", "list", "chain", family, "nsnet", chain])
        .stdout;
    for line in listing.lines() {
        let Some((rule, handle)) = line.trim().split_once(" # handle ") else {
            continue;
        };
        if pick(rule) {
            let r = s.sh(
                "nft",
                &["delete", "rule", family, "nsnet", chain, "handle", handle],
            );
            assert_eq!(r.code, 0, "{}", r.stderr);
        }
    }
}

#[test]
fn tables_of_an_older_nsnet_are_upgraded_in_place() {
    if !root() {
        return;
    }
    let s = world();
    s.ok(&["netns", "add", "web"]);
    s.ok(&["netns", "add", "open"]);
    s.ok(&["network", "create", "lan", "--subnet", "10.88.0.0/24"]);
    s.ok(&["network", "connect", "lan", "web", "--publish", "8080:80"]);
    // The previous release's tables, elements kept: no routed set, no rules after the last
    // accept from a bridge.
    delete_rules(&s, "inet", "forward", |r| {
        r.contains("routed_bridges")
            || r == "iifname @bridges accept"
            || r == "oifname @bridges drop"
    });
    let r = s.sh("nft", &["delete", "set", "inet", "nsnet", "routed_bridges"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // Nor the input chain and set that came with DNS.
    for args in [
        &["flush", "chain", "inet", "nsnet", "input"][..],
        &["delete", "chain", "inet", "nsnet", "input"],
        &["delete", "set", "inet", "nsnet", "dns_bridges"],
    ] {
        let r = s.sh("nft", args);
        assert_eq!(r.code, 0, "nft {args:?}: {}", r.stderr);
    }
    assert!(
        reaches(&s, "outside", "web", "0.0.0.0:81", "10.88.0.2:81"),
        "the old tables let the outside in"
    );
    // The next command that makes sure the tables are there upgrades them.
    s.ok(&[
        "network",
        "create",
        "open",
        "--subnet",
        "10.89.0.0/24",
        "--routed",
    ]);
    s.ok(&["network", "connect", "open", "open"]);
    assert!(
        !reaches(&s, "outside", "web", "0.0.0.0:81", "10.88.0.2:81"),
        "still reachable directly after the upgrade"
    );
    assert!(
        reaches(&s, "outside", "web", "0.0.0.0:80", "203.0.113.1:8080"),
        "the published port's element was lost in the upgrade"
    );
    assert!(
        reaches(&s, "outside", "open", "0.0.0.0:81", "10.89.0.2:81"),
        "routed network after the upgrade"
    );
    let forward = s
        .sh("nft", &["list", "chain", "inet", "nsnet", "forward"])
        .stdout;
    assert_eq!(
        forward.matches("oifname @bridges drop").count(),
        1,
        "rules duplicated: {forward}"
    );
    let input = s
        .sh("nft", &["list", "chain", "inet", "nsnet", "input"])
        .stdout;
    assert_eq!(input.matches("th dport 53").count(), 1, "{input}");
    for ns in ["web", "open", "outside"] {
        s.ok(&["netns", "rm", ns]);
    }
    s.ok(&["network", "rm", "lan"]);
    s.ok(&["network", "rm", "open"]);
    s.assert_clean();
}

#[test]
fn routed_flag_from_the_cli_and_a_topology_file() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.fails(
        1,
        &[
            "network",
            "create",
            "shut",
            "--subnet",
            "10.90.0.0/24",
            "--internal",
            "--routed",
        ],
        &["network \"shut\": internal and routed exclude each other"],
    );
    assert!(s.json(&["network", "ls"]).as_array().unwrap().is_empty());
    let file = s.state_dir().join("routed.yaml");
    std::fs::write(
        &file,
        "name: r\nnamespaces: [a]\nnetworks:\n  open:\n    subnets: [10.89.0.0/24]\n    routed: true\n    endpoints: { a: {} }\n  lan:\n    subnets: [10.88.0.0/24]\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    s.ok(&["apply", "-f", file]);
    assert_eq!(s.json(&["network", "inspect", "open"])["routed"], true);
    assert_eq!(s.json(&["network", "inspect", "lan"])["routed"], false);
    let set = s
        .sh("nft", &["list", "set", "inet", "nsnet", "routed_bridges"])
        .stdout;
    assert!(
        set.contains("\"nsbr-open\"") && !set.contains("nsbr-lan"),
        "{set}"
    );
    // Turning it off replaces the network.
    let text = std::fs::read_to_string(file).unwrap();
    std::fs::write(file, text.replace("routed: true", "routed: false")).unwrap();
    s.ok(&["apply", "-f", file]);
    assert_eq!(s.json(&["network", "inspect", "open"])["routed"], false);
    let set = s
        .sh("nft", &["list", "set", "inet", "nsnet", "routed_bridges"])
        .stdout;
    assert!(!set.contains("nsbr-open"), "{set}");
    s.ok(&["destroy", "-f", file]);
    s.assert_clean();
}
