//! `nsnet repair` puts an overlay network's peers back from the store: two "hosts" (sandboxes
//! joined by an underlay bridge, see `overlaykit`) share an overlay; on host 1 someone deletes
//! the entries of host 2's peer, then the whole VXLAN device. Each time traffic across the
//! hosts stops, `inspect --check` and `doctor` name the network, the peer and the fix, and
//! after `repair` traffic flows again. Nothing of it is left after `destroy`.

mod common;
mod overlaykit;

use common::{Sandbox, root};
use overlaykit::{ip, lines, underlay, write};

/// Host `n`'s file: one overlay over hosts 1 and 2, a container on it.
fn file(n: usize) -> String {
    format!(
        "name: overlay\n\
         hosts:\n\
         \x20 h1: {{ underlay: 192.0.2.1 }}\n\
         \x20 h2: {{ underlay: 192.0.2.2 }}\n\
         namespaces: [a{n}]\n\
         networks:\n\
         \x20 ov:\n\
         \x20   driver: vxlan\n\
         \x20   vni: 42\n\
         \x20   subnets: [10.200.0.0/16]\n\
         \x20   endpoints:\n\
         \x20     a{n}: {{ ip: [10.200.{n}.10] }}\n"
    )
}

/// `nsnet doctor`'s check `name`.
fn doctor_check(s: &Sandbox, name: &str) -> serde_json::Value {
    let r = s.nsnet(&["doctor", "--format", "json"]);
    let report: serde_json::Value = serde_json::from_str(&r.stdout)
        .unwrap_or_else(|e| panic!("doctor printed no JSON ({e}): {}{}", r.stdout, r.stderr));
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
        .clone()
}

/// `inspect NS --check`'s output and exit code.
fn check(s: &Sandbox, ns: &str) -> (i32, String) {
    let r = s.nsnet(&["inspect", ns, "--check"]);
    (r.code, r.stdout + &r.stderr)
}

#[test]
fn repair_restores_overlay_peers_and_device() {
    if !root() {
        return;
    }
    let hosts: Vec<Sandbox> = (0..2).map(|_| Sandbox::new()).collect();
    let _outside = underlay(&hosts);
    let h = |n: usize| &hosts[n - 1];
    let files: Vec<String> = (1..=2).map(|n| write(h(n), &file(n))).collect();
    for n in 1..=2 {
        h(n).ok(&["apply", "-f", &files[n - 1]]);
    }
    assert!(h(1).ping("a1", "10.200.2.10"), "a1 -> a2 before any drift");
    assert_eq!(check(h(1), "a1").0, 0, "healthy");
    let healthy = doctor_check(h(1), "overlay peers");
    assert_eq!(healthy["status"], "OK", "{healthy:#}");

    // Host 2's peer deleted behind nsnet's back on host 1: its FDB, neighbour and route entries.
    let mac2 = ip(h(1), &["neigh", "show", "10.200.2.0", "dev", "nsvx42"])
        .split_whitespace()
        .nth(2)
        .unwrap()
        .to_string();
    let r = h(1).sh(
        "bridge",
        &["fdb", "del", &mac2, "dev", "nsvx42", "dst", "192.0.2.2"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    ip(h(1), &["neigh", "del", "10.200.2.0", "dev", "nsvx42"]);
    ip(h(1), &["route", "del", "10.200.2.0/24", "dev", "nsvx42"]);
    assert!(!h(1).ping("a1", "10.200.2.10"), "no peer, no way to host 2");
    assert!(!h(2).ping("a2", "10.200.1.10"), "nor back from host 2");

    let (code, text) = check(h(1), "a1");
    assert_ne!(code, 0, "{text}");
    assert!(
        text.contains("network ov: overlay peer 10.200.2.0/24")
            && text.contains("at 192.0.2.2")
            && text.contains("`nsnet repair` restores it"),
        "{text}"
    );
    let sick = doctor_check(h(1), "overlay peers");
    assert_eq!(sick["status"], "WARN", "{sick:#}");
    assert_eq!(sick["fix"], "run nsnet repair", "{sick:#}");
    assert!(
        sick["detail"]
            .as_str()
            .unwrap()
            .contains("network ov: overlay peer 10.200.2.0/24"),
        "{sick:#}"
    );

    let repaired = h(1).json(&["repair"]);
    assert_eq!(repaired["overlay_peers"], 1, "{repaired:#}");
    assert!(h(1).ping("a1", "10.200.2.10"), "a1 -> a2 after repair");
    assert!(h(2).ping("a2", "10.200.1.10"), "a2 -> a1 after repair");
    assert_eq!(check(h(1), "a1").0, 0, "healthy after repair");
    assert!(
        lines(h(1), &["plan", "-f", &files[0]]).is_empty(),
        "the file sees nothing to do"
    );
    let again = h(1).json(&["repair"]);
    assert_eq!(again["overlay_peers"], 0, "nothing more to restore");

    // The device itself deleted: repair makes it again, and its peers with it.
    ip(h(1), &["link", "del", "nsvx42"]);
    assert!(
        !h(1).ping("a1", "10.200.2.10"),
        "no device, no way to host 2"
    );
    let repaired = h(1).json(&["repair"]);
    assert_eq!(repaired["overlay_peers"], 1, "{repaired:#}");
    let dev = ip(h(1), &["-d", "link", "show", "nsvx42"]);
    assert!(
        dev.contains("vxlan id 42") && dev.contains("nolearning") && dev.contains("UP"),
        "{dev}"
    );
    assert!(
        h(1).ping("a1", "10.200.2.10"),
        "a1 -> a2 after the device's repair"
    );
    assert!(
        h(2).ping("a2", "10.200.1.10"),
        "a2 -> a1 after the device's repair"
    );
    assert_eq!(check(h(1), "a1").0, 0, "healthy after the device's repair");
    assert!(lines(h(1), &["plan", "-f", &files[0]]).is_empty());

    for n in 1..=2 {
        h(n).ok(&["destroy", "-f", &files[n - 1]]);
        let links = h(n).sh("ip", &["-o", "link"]).stdout;
        assert!(!links.contains("nsvx"), "{links}");
        for (table, rows) in h(n).rows() {
            assert_eq!(rows, 0, "{rows} rows left in {table}");
        }
    }
}

/// A container's veth pair on an overlay deleted from inside its namespace: traffic across
/// the hosts stops, `doctor` names the endpoint; `repair` makes the pair again on the host's
/// slice bridge with its recorded MAC and address, and traffic crosses the hosts again.
#[test]
fn repair_makes_a_deleted_veth_on_an_overlay_again() {
    if !root() {
        return;
    }
    let hosts: Vec<Sandbox> = (0..2).map(|_| Sandbox::new()).collect();
    let _outside = underlay(&hosts);
    let h = |n: usize| &hosts[n - 1];
    let files: Vec<String> = (1..=2).map(|n| write(h(n), &file(n))).collect();
    for n in 1..=2 {
        h(n).ok(&["apply", "-f", &files[n - 1]]);
    }
    assert!(h(1).ping("a1", "10.200.2.10"), "a1 -> a2 before any drift");
    let before = ip(h(1), &["-n", "a1", "-br", "link", "show", "eth0"]);
    let mac = before.split_whitespace().nth(2).unwrap().to_string();

    ip(h(1), &["-n", "a1", "link", "del", "eth0"]);
    assert!(
        !h(2).ping("a2", "10.200.1.10"),
        "a2 reaches a1 without its veth"
    );
    let sick = doctor_check(h(1), "veth pairs");
    assert_eq!(sick["status"], "WARN", "{sick:#}");
    assert!(
        sick["detail"]
            .as_str()
            .unwrap()
            .contains("endpoint a1 on network ov: veth "),
        "{sick:#}"
    );

    let repaired = h(1).json(&["repair"]);
    assert_eq!(repaired["veths"], 1, "{repaired:#}");
    let after = ip(h(1), &["-n", "a1", "-br", "link", "show", "eth0"]);
    assert_eq!(
        after.split_whitespace().nth(2),
        Some(mac.as_str()),
        "{after}"
    );
    assert!(h(1).ping("a1", "10.200.2.10"), "a1 -> a2 after repair");
    assert!(h(2).ping("a2", "10.200.1.10"), "a2 -> a1 after repair");
    assert_eq!(check(h(1), "a1").0, 0, "healthy after repair");
    assert_eq!(doctor_check(h(1), "veth pairs")["status"], "OK");
    assert!(
        lines(h(1), &["plan", "-f", &files[0]]).is_empty(),
        "the file sees nothing to do"
    );
    assert_eq!(h(1).json(&["repair"])["veths"], 0, "nothing more to make");
    for n in 1..=2 {
        h(n).ok(&["destroy", "-f", &files[n - 1]]);
    }
}
