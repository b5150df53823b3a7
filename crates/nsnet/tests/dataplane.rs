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
