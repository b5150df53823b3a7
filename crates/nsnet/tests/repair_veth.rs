//! A container's veth pair deleted by hand while its namespace stays (`ip -n NS link del
//! eth0`): traffic stops, `doctor` names the endpoint with `repair` as the fix, `inspect
//! --check` says the same; `repair` makes the pair again as recorded (MAC, address, bridge
//! port, default route, rate limit) and traffic flows again both ways, through its published
//! port too.

mod common;

use common::{Sandbox, root};
use serde_json::Value;

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn doctor(s: &Sandbox) -> Value {
    let r = s.nsnet(&["doctor", "--format", "json"]);
    serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {}{}", r.stdout, r.stderr))
}

/// `netns`'s endpoint on `network` as `network inspect` records it.
fn endpoint(s: &Sandbox, network: &str, netns: &str) -> Value {
    s.json(&["network", "inspect", network])["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["netns"] == netns)
        .unwrap_or_else(|| panic!("no endpoint of {netns} on {network}"))
        .clone()
}

/// The MAC and addresses (with prefix) the kernel gives `ifname` in `netns`.
fn live(s: &Sandbox, netns: &str, ifname: &str) -> (String, Vec<String>) {
    let r = s.sh("ip", &["-n", netns, "-j", "addr", "show", "dev", ifname]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    let i = &v[0];
    let addrs = i["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    (i["address"].as_str().unwrap().to_string(), addrs)
}

/// A TCP connection from `client` to `dst` answered by a server in `ns` on port 80.
fn reaches(s: &Sandbox, client: &str, ns: &str, dst: &str) -> bool {
    let srv = s.tcp_server(ns, "0.0.0.0:80");
    let hello = s.tcp_hello(client, dst);
    let seen = srv.peer().is_some();
    assert_eq!(hello, seen, "{client} -> {dst}: client and server disagree");
    hello
}

#[test]
fn repair_makes_a_deleted_veth_pair_again_and_traffic_flows() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.add_outside();
    s.ok(&[
        "network",
        "create",
        "side",
        "--subnet",
        "10.64.0.0/24",
        "--subnet",
        "fd00:64::/64",
    ]);
    s.ok(&["netns", "add", "app"]);
    s.ok(&["netns", "add", "db"]);
    s.ok(&[
        "network",
        "connect",
        "side",
        "app",
        "--ip",
        "10.64.0.5",
        "--publish",
        "8080:80",
    ]);
    s.ok(&["network", "connect", "side", "db", "--ip", "10.64.0.6"]);
    assert!(s.ping("app", "10.64.0.6"), "app cannot reach db");
    assert!(s.ping("db", "10.64.0.5"), "db cannot reach app");
    assert!(s.ping("app", "10.64.0.1"), "app cannot reach its gateway");
    assert!(
        reaches(&s, "outside", "app", "203.0.113.1:8080"),
        "the published port does not pass before"
    );
    let recorded = endpoint(&s, "side", "app");
    let mac = recorded["mac"].as_str().unwrap().to_string();
    let host_end = recorded["host_ifname"].as_str().unwrap().to_string();
    let app6 = recorded["addrs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .find(|a| a.contains(':'))
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(s.ping("db", &app6), "db cannot reach app over IPv6");
    assert_eq!(
        live(&s, "app", "eth0"),
        (mac.clone(), vec!["10.64.0.5/24".into()])
    );
    s.ok(&["link", "set", "app", "eth0", "--rate", "10mbit"]);
    // A recorded route through the endpoint's subnet: it goes with the device.
    s.ok(&["route", "add", "app", "198.51.100.0/24", "via", "10.64.0.6"]);
    let route = || {
        s.sh("ip", &["-n", "app", "route", "show", "198.51.100.0/24"])
            .stdout
    };
    assert!(route().contains("via 10.64.0.6"), "{}", route());
    let healthy = doctor(&s);
    let c = check(&healthy, "veth pairs");
    assert_eq!(c["status"], "OK", "{healthy:#}");
    assert!(
        c["detail"].as_str().unwrap().starts_with("2 endpoint(s)"),
        "{c:#}"
    );

    // Deleted from inside the container: the host end goes with it, the namespace stays.
    let del = s.sh("ip", &["-n", "app", "link", "del", "eth0"]);
    assert_eq!(del.code, 0, "{}", del.stderr);
    assert!(!s.host_links().contains(&host_end), "{host_end} survived");
    assert!(
        !s.ping("db", "10.64.0.5"),
        "db reaches app without its veth"
    );
    assert!(
        !s.ping("app", "10.64.0.1"),
        "app reaches its gateway without its veth"
    );

    let rows = s.rows();
    let sick = doctor(&s);
    let c = check(&sick, "veth pairs");
    assert_eq!(c["status"], "WARN", "{sick:#}");
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!(
            "endpoint app on network side: veth {host_end} / eth0 in netns app is gone"
        )),
        "{detail}"
    );
    assert!(!detail.contains("endpoint db"), "{detail}");
    assert_eq!(c["fix"], "run nsnet repair", "{sick:#}");
    // Not gc's: the namespace is there.
    assert_eq!(check(&sick, "gc")["status"], "OK", "{sick:#}");
    assert_eq!(s.rows(), rows, "doctor changed the store");
    assert!(
        !s.host_links().contains(&host_end),
        "doctor made the pair again"
    );
    let r = s.nsnet(&["inspect", "app", "--check"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout
            .contains(&format!("veth {host_end} / eth0 in netns app is gone")),
        "{}",
        r.stdout
    );

    let out = s.ok(&["repair"]);
    assert!(out.contains("1 veth pair(s) made again"), "{out}");
    let after = doctor(&s);
    assert_eq!(check(&after, "veth pairs")["status"], "OK", "{after:#}");
    assert_eq!(after["ok"], true, "{after:#}");
    let out = s.ok(&["inspect", "app", "--check"]);
    assert!(out.contains("no problems"), "{out}");
    assert_eq!(
        live(&s, "app", "eth0"),
        (mac, vec!["10.64.0.5/24".into()]),
        "not the recorded MAC and address"
    );
    let shaped = s.json(&["inspect", "app"])["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "eth0")
        .unwrap()["shaping"]["rate_bps"]
        .clone();
    assert_eq!(shaped, 10_000_000, "the recorded rate limit is not back");
    let master = s.sh("ip", &["-j", "link", "show", &host_end]).stdout;
    assert!(master.contains("\"master\":\"nsbr-side\""), "{master}");
    assert!(
        route().contains("via 10.64.0.6"),
        "the recorded route is not back: {}",
        route()
    );
    assert!(s.ping("db", "10.64.0.5"), "db does not reach app again");
    assert!(s.ping("app", "10.64.0.6"), "app does not reach db again");
    assert!(s.ping("app", "10.64.0.1"), "app's gateway is not back");
    assert!(s.ping("db", &app6), "db does not reach app over IPv6 again");
    assert!(
        s.ping("app", "fd00:64::1"),
        "app's IPv6 gateway is not back"
    );
    assert!(
        reaches(&s, "outside", "app", "203.0.113.1:8080"),
        "the published port does not pass again"
    );
    // A second repair has no pair to make.
    let out = s.ok(&["repair"]);
    assert!(out.contains("0 veth pair(s) made again"), "{out}");
    assert!(s.ping("db", "10.64.0.5"));
}
