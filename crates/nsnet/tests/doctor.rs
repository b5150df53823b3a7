//! `nsnet doctor` in a sandbox: healthy, then with an interrupted connect and a firewall
//! element deleted by hand. Doctor reports both with the command that fixes them, and changes
//! nothing (rows and ruleset identical before and after).

mod common;

use common::{Sandbox, root};

/// Runs `nsnet doctor --format json`; returns its exit code and its checks by name.
fn doctor(s: &Sandbox) -> (i32, serde_json::Value) {
    let r = s.nsnet(&["doctor", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {}{}", r.stdout, r.stderr));
    (r.code, report)
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn ruleset(s: &Sandbox) -> String {
    s.sh("nft", &["list", "ruleset"]).stdout
}

#[test]
fn doctor_reports_leftovers_and_missing_elements_without_touching_them() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "front", "--subnet", "10.61.0.0/24"]);
    s.ok(&["netns", "add", "web"]);
    s.ok(&["network", "connect", "front", "web"]);

    let (code, healthy) = doctor(&s);
    assert_eq!(code, 0, "{healthy:#}");
    assert_eq!(healthy["ok"], true);
    for name in [
        "nftables",
        "nft binary",
        "br_netfilter",
        "ipv6",
        "ip_forward",
        "state directory",
        "state database",
        "gc",
        "firewall elements",
    ] {
        assert_eq!(check(&healthy, name)["status"], "OK", "{name}: {healthy:#}");
    }
    // tbf works on this kernel; netem may not: either way both are reported.
    assert_eq!(check(&healthy, "tbf qdisc")["status"], "OK");
    let netem = check(&healthy, "netem qdisc");
    assert!(
        netem["status"] == "OK"
            || netem["detail"]
                .as_str()
                .unwrap()
                .contains("`--rate` alone works")
    );

    // A connect SIGKILLed half-way leaves a `creating` row; a hand-deleted element leaves a
    // ready row without its firewall element.
    s.ok(&["netns", "add", "db"]);
    let crashed = s
        .command(common::NSNET, &["network", "connect", "front", "db"])
        .env("NSNET_CRASH_AT", "2")
        .output()
        .unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&crashed.status),
        Some(9),
        "the crash hook did not kill the connect"
    );
    let del = s.sh(
        "nft",
        &[
            "delete",
            "element",
            "inet",
            "nsnet",
            "bridges",
            "{ nsbr-front }",
        ],
    );
    assert_eq!(del.code, 0, "{}", del.stderr);

    let rows_before = s.rows();
    let rules_before = ruleset(&s);
    let (code, sick) = doctor(&s);
    assert_eq!(code, 0, "WARNs only: {sick:#}");
    let gc = check(&sick, "gc");
    assert_eq!(gc["status"], "WARN", "{sick:#}");
    assert!(
        gc["detail"]
            .as_str()
            .unwrap()
            .contains("endpoint db on network front")
    );
    assert_eq!(gc["fix"], "run nsnet gc");
    let fw = check(&sick, "firewall elements");
    assert_eq!(fw["status"], "WARN", "{sick:#}");
    assert!(
        fw["detail"].as_str().unwrap().contains("nsbr-front"),
        "{fw}"
    );
    assert!(fw["fix"].as_str().unwrap().contains("nsnet gc"));
    assert_eq!(s.rows(), rows_before, "doctor changed the store");
    assert_eq!(ruleset(&s), rules_before, "doctor changed the ruleset");

    // The text form says the same, one line per check.
    let text = s.nsnet(&["doctor"]).stdout;
    assert!(
        text.lines()
            .any(|l| l.starts_with("WARN") && l.contains("gc")),
        "{text}"
    );
    assert!(text.contains("fix: run nsnet gc"), "{text}");

    // What doctor promised, gc does: afterwards doctor is clean again.
    s.ok(&["gc"]);
    let (_, after) = doctor(&s);
    assert_eq!(check(&after, "gc")["status"], "OK", "{after:#}");
    assert_eq!(
        check(&after, "firewall elements")["status"],
        "OK",
        "{after:#}"
    );
}

#[test]
fn doctor_warns_on_a_loose_state_dir_and_fails_on_a_file_in_its_way() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "front", "--subnet", "10.62.0.0/24"]);
    use std::os::unix::fs::PermissionsExt;
    let loose = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(s.state_dir(), loose).unwrap();
    let (code, report) = doctor(&s);
    assert_eq!(code, 0, "{report:#}");
    let dir = check(&report, "state directory");
    assert_eq!(dir["status"], "WARN");
    assert!(dir["fix"].as_str().unwrap().starts_with("chmod 700 "));
    let mode = std::fs::metadata(s.state_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755, "doctor changed the mode");

    let file = s.state_dir().join("state.db");
    let r = s
        .command(common::NSNET, &["doctor", "--format", "json"])
        .env("NSNET_STATE_DIR", &file)
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(check(&report, "state directory")["status"], "FAIL");
    assert!(String::from_utf8_lossy(&r.stderr).contains("doctor found 1 failing check(s)"));
}

#[test]
fn doctor_warns_about_docker_and_podman_tables() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    // What Docker (iptables-nft) and netavark leave in a ruleset, made inside the sandbox.
    let script = "add table ip nat\nadd chain ip nat DOCKER\nadd table inet netavark\n";
    let r = s.sh("sh", &["-c", &format!("printf '{script}' | nft -f -")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (code, report) = doctor(&s);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(check(&report, "docker")["status"], "WARN");
    assert!(
        check(&report, "docker")["detail"]
            .as_str()
            .unwrap()
            .contains("FORWARD policy")
    );
    assert_eq!(check(&report, "podman")["status"], "WARN");
    assert!(
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "firewalld")
    );
}

#[test]
fn doctor_reports_a_deleted_bridge_and_repair_brings_traffic_back() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "side", "--subnet", "10.62.0.0/24"]);
    s.ok(&["netns", "add", "app"]);
    s.ok(&["network", "connect", "side", "app", "--ip", "10.62.0.5"]);
    let (_, healthy) = doctor(&s);
    assert_eq!(check(&healthy, "switches")["status"], "OK", "{healthy:#}");
    assert!(s.ping("app", "10.62.0.1"), "app cannot reach its gateway");

    let bridge = s.json(&["network", "inspect", "side"])["bridge"]
        .as_str()
        .expect("network inspect names the bridge")
        .to_string();
    let del = s.sh("ip", &["link", "del", &bridge]);
    assert_eq!(del.code, 0, "{}", del.stderr);
    assert!(
        !s.ping("app", "10.62.0.1"),
        "the gateway answers without its bridge"
    );

    let (code, sick) = doctor(&s);
    assert_eq!(code, 0, "a missing bridge is a warning: {sick:#}");
    let c = check(&sick, "switches");
    assert_eq!(c["status"], "WARN", "{sick:#}");
    let detail = c["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("network side: bridge {bridge} is missing")),
        "{detail}"
    );
    assert_eq!(c["fix"], "run nsnet repair", "{sick:#}");
    assert!(
        !s.host_links().contains(&bridge),
        "doctor recreated the bridge"
    );

    s.ok(&["repair"]);
    let (_, after) = doctor(&s);
    assert_eq!(check(&after, "switches")["status"], "OK", "{after:#}");
    assert!(
        s.ping("app", "10.62.0.1"),
        "repair did not bring the gateway back"
    );
}

/// The host end of `netns`'s endpoint on `network`.
fn host_end(s: &Sandbox, network: &str, netns: &str) -> String {
    s.json(&["network", "inspect", network])["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["netns"] == netns)
        .and_then(|e| e["host_ifname"].as_str())
        .unwrap_or_else(|| panic!("no endpoint of {netns} on {network}"))
        .to_string()
}

/// A host end taken off its bridge and another set down by hand: traffic stops, doctor names
/// both endpoints with `repair` as the fix and changes nothing; after repair doctor is OK and
/// traffic flows again.
#[test]
fn doctor_reports_a_detached_host_end_and_repair_brings_traffic_back() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "side", "--subnet", "10.63.0.0/24"]);
    for (ns, ip) in [("app", "10.63.0.5"), ("db", "10.63.0.6")] {
        s.ok(&["netns", "add", ns]);
        s.ok(&["network", "connect", "side", ns, "--ip", ip]);
    }
    let (_, healthy) = doctor(&s);
    let c = check(&healthy, "bridge ports");
    assert_eq!(c["status"], "OK", "{healthy:#}");
    assert!(
        c["detail"].as_str().unwrap().starts_with("2 endpoint(s)"),
        "{c:#}"
    );
    assert!(s.ping("app", "10.63.0.6"), "app cannot reach db");

    let (app, db) = (host_end(&s, "side", "app"), host_end(&s, "side", "db"));
    let detach = s.sh("ip", &["link", "set", &app, "nomaster"]);
    assert_eq!(detach.code, 0, "{}", detach.stderr);
    let down = s.sh("ip", &["link", "set", &db, "down"]);
    assert_eq!(down.code, 0, "{}", down.stderr);
    assert!(
        !s.ping("app", "10.63.0.1"),
        "app reaches its gateway off the bridge"
    );
    assert!(
        !s.ping("db", "10.63.0.1"),
        "db reaches its gateway with its host end down"
    );

    let (code, sick) = doctor(&s);
    assert_eq!(code, 0, "a detached host end is a warning: {sick:#}");
    let c = check(&sick, "bridge ports");
    assert_eq!(c["status"], "WARN", "{sick:#}");
    let detail = c["detail"].as_str().unwrap();
    for want in [
        format!("endpoint app on network side: host interface {app} is not a port of nsbr-side"),
        format!("endpoint db on network side: host interface {db} is down"),
    ] {
        assert!(detail.contains(&want), "{detail}");
    }
    assert_eq!(c["fix"], "run nsnet repair", "{sick:#}");
    let master = s.sh("ip", &["-j", "link", "show", &app]).stdout;
    assert!(
        !master.contains("\"master\""),
        "doctor attached {app}: {master}"
    );

    s.ok(&["repair"]);
    let (_, after) = doctor(&s);
    assert_eq!(check(&after, "bridge ports")["status"], "OK", "{after:#}");
    // A veth whose peer was down gets its carrier, and with it a qdisc that sends, when the
    // kernel's link watcher runs: up to a second later, more on a loaded machine.
    let reaches = |ns: &str, dst: &str| (0..4).any(|_| s.ping(ns, dst));
    assert!(
        reaches("app", "10.63.0.6"),
        "repair did not bring app and db back together"
    );
    assert!(
        reaches("db", "10.63.0.1"),
        "repair did not bring db's gateway back"
    );
}
