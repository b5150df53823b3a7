//! Overlay networks across hosts, end to end: three "hosts" (each its own sandbox: network and
//! mount namespaces, /run/netns, state directory) joined by an underlay bridge on 192.0.2.0/24
//! in a fourth sandbox, which also plays "outside" (192.0.2.254). Each host applies its own
//! file (the same `hosts` and `networks`, its own workloads); containers reach each other across
//! hosts by address, unmasqueraded; a second overlay is isolated from the first; egress is
//! masqueraded by the container's own host; a published port works on its host; drift of each
//! of a peer's entries and of the device is shown by plan and repaired by apply; a host removed
//! from the file loses exactly its entries on the others.

mod common;
mod overlaykit;

use common::{Sandbox, root};
use overlaykit::{
    Started, eventually, have_etcd, ip, lines, routes_on, start_etcd, underlay, write,
};

const HOSTS: usize = 3;

/// Host `n`'s file (1-based), for the hosts `members` (1-based numbers).
fn file(n: usize, members: &[usize]) -> String {
    let mut hosts = String::from("hosts:\n");
    for m in members {
        hosts.push_str(&format!("  h{m}: {{ underlay: 192.0.2.{m} }}\n"));
    }
    workloads(n, &hosts)
}

/// Host `n`'s file with its membership in etcd (on the outside, leases of `ttl` seconds).
fn etcd_file(n: usize, ttl: u32) -> String {
    let member = format!(
        "etcd: {{ endpoint: \"192.0.2.254:2379\", ttl: {ttl}, host: h{n}, underlay: 192.0.2.{n} }}\n"
    );
    workloads(n, &member)
}

/// The two overlays and host `n`'s containers on them, after `membership`.
fn workloads(n: usize, membership: &str) -> String {
    let publish = if n == 2 {
        ", publish: [\"8080:80\"]"
    } else {
        ""
    };
    format!(
        "name: overlay\n\
         {membership}\
         namespaces: [a{n}, b{n}]\n\
         networks:\n\
         \x20 ov:\n\
         \x20   driver: vxlan\n\
         \x20   vni: 42\n\
         \x20   subnets: [10.200.0.0/16]\n\
         \x20   endpoints:\n\
         \x20     a{n}: {{ ip: [10.200.{n}.10]{publish} }}\n\
         \x20 ov2:\n\
         \x20   driver: vxlan\n\
         \x20   vni: 43\n\
         \x20   subnets: [10.201.0.0/16]\n\
         \x20   endpoints:\n\
         \x20     b{n}: {{ ip: [10.201.{n}.10] }}\n"
    )
}

#[test]
fn three_hosts_share_two_isolated_overlays() {
    if !root() {
        return;
    }
    let hosts: Vec<Sandbox> = (0..HOSTS).map(|_| Sandbox::new()).collect();
    let outside = underlay(&hosts);
    let all: Vec<usize> = (1..=HOSTS).collect();
    let files: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| write(h, &file(i + 1, &all)))
        .collect();
    for (h, f) in hosts.iter().zip(&files) {
        let applied = lines(h, &["apply", "-f", f]);
        // Per network, one peer per other host.
        assert_eq!(
            applied
                .iter()
                .filter(|l| l.starts_with("+ overlay peer"))
                .count(),
            2 * (HOSTS - 1),
            "{applied:?}"
        );
        assert!(lines(h, &["plan", "-f", f]).is_empty());
    }
    let h = |n: usize| &hosts[n - 1];

    // Per remote host exactly three entries: a route, a neighbour, an FDB entry; learning off;
    // MTU 1450 on the device, the bridge and the container.
    let dev = ip(h(1), &["-d", "link", "show", "nsvx42"]);
    assert!(
        dev.contains("mtu 1450")
            && dev.contains("vxlan id 42")
            && dev.contains("dstport 4789")
            && dev.contains("nolearning"),
        "{dev}"
    );
    let routes = ip(h(1), &["route", "show", "dev", "nsvx42"]);
    assert_eq!(routes.lines().count(), HOSTS - 1, "{routes}");
    assert!(
        routes.contains("10.200.2.0/24 via 10.200.2.0 proto static onlink"),
        "{routes}"
    );
    let neigh = ip(h(1), &["neigh", "show", "dev", "nsvx42"]);
    assert_eq!(neigh.lines().count(), HOSTS - 1, "{neigh}");
    assert!(neigh.contains("PERMANENT"), "{neigh}");
    let fdb = h(1).sh("bridge", &["fdb", "show", "dev", "nsvx42"]).stdout;
    assert_eq!(
        fdb.lines().filter(|l| l.contains(" dst ")).count(),
        HOSTS - 1,
        "{fdb}"
    );
    assert!(
        fdb.contains("dst 192.0.2.2") && fdb.contains("dst 192.0.2.3"),
        "{fdb}"
    );
    let mtu = h(3)
        .nsnet(&["netns", "exec", "a3", "--", "ip", "link", "show", "eth0"])
        .stdout;
    assert!(mtu.contains("mtu 1450"), "{mtu}");

    // Every container reaches the others on its overlay, by address and unmasqueraded.
    for (from, to) in [(1, 2), (2, 3), (3, 1)] {
        assert!(
            h(from).ping(&format!("a{from}"), &format!("10.200.{to}.10")),
            "a{from} -> a{to}"
        );
        assert!(
            h(from).ping(&format!("b{from}"), &format!("10.201.{to}.10")),
            "b{from} -> b{to}"
        );
    }
    let srv = h(2).tcp_server("a2", "10.200.2.10:7000");
    assert!(h(1).tcp_hello("a1", "10.200.2.10:7000"), "tcp a1 -> a2");
    assert_eq!(srv.peer().unwrap().to_string(), "10.200.1.10");
    let srv = h(1).tcp_server("b1", "10.201.1.10:7000");
    assert!(h(3).tcp_hello("b3", "10.201.1.10:7000"), "tcp b3 -> b1");
    assert_eq!(srv.peer().unwrap().to_string(), "10.201.3.10");

    // The two overlays are isolated, on one host and across hosts.
    assert!(!h(1).ping("a1", "10.201.1.10"), "ov -> ov2 on one host");
    assert!(!h(1).ping("a1", "10.201.2.10"), "ov -> ov2 across hosts");
    let srv = h(2).tcp_server("b2", "10.201.2.10:7001");
    assert!(!h(1).tcp_hello("a1", "10.201.2.10:7001"), "tcp ov -> ov2");
    assert!(srv.peer().is_none());

    // Egress to the outside is masqueraded by the container's own host.
    for n in 1..=HOSTS {
        let srv = outside.tcp_server("host", "192.0.2.254:7002");
        assert!(
            h(n).tcp_hello(&format!("a{n}"), "192.0.2.254:7002"),
            "egress from host {n}"
        );
        assert_eq!(srv.peer().unwrap().to_string(), format!("192.0.2.{n}"));
    }

    // A port published on host 2 reaches its container there, from outside and from a
    // container on host 1.
    let srv = h(2).tcp_server("a2", "0.0.0.0:80");
    assert!(
        outside.tcp_hello("host", "192.0.2.2:8080"),
        "published port from outside"
    );
    assert_eq!(srv.peer().unwrap().to_string(), "192.0.2.254");

    // Inspect shows this host's slice of the overlay.
    let ov = h(1).json(&["network", "inspect", "ov"]);
    assert_eq!(ov["driver"], "vxlan");
    assert_eq!(ov["vni"], 42);
    assert_eq!(ov["mtu"], 1450);
    assert_eq!(ov["subnets"][0]["cidr"], "10.200.1.0/24");
    h(1).fails(
        1,
        &[
            "network",
            "create",
            "bad",
            "--subnet",
            "10.250.0.0/16",
            "--driver",
            "vxlan",
            "--vni",
            "0",
        ],
        &["invalid vni \"0\"", "allowed: 1 to 16777215"],
    );

    // The same with br_netfilter off: the overlay is routed, bridged frames only stay local.
    for n in [1, 2] {
        h(n).br_netfilter(false);
    }
    assert!(h(1).ping("a1", "10.200.2.10"), "br_netfilter off: a1 -> a2");
    assert!(
        !h(1).ping("a1", "10.201.2.10"),
        "br_netfilter off: still isolated"
    );
    let srv = h(2).tcp_server("a2", "0.0.0.0:80");
    assert!(
        h(1).tcp_hello("a1", "192.0.2.2:8080"),
        "br_netfilter off: published port from host 1's container"
    );
    assert_eq!(
        srv.peer().unwrap().to_string(),
        "192.0.2.1",
        "masqueraded by host 1 on its way out"
    );
    for n in [1, 2] {
        h(n).br_netfilter(true);
    }

    // Drift: each of a peer's entries, deleted by hand, is shown and repaired.
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
    assert!(
        !h(1).ping("a1", "10.200.2.10"),
        "no FDB entry, no way there"
    );
    let plan = lines(h(1), &["plan", "-f", &files[0]]);
    assert_eq!(plan.len(), 1, "{plan:?}");
    assert!(
        plan[0].starts_with("~ overlay peer 10.200.2.0/24")
            && plan[0].contains(&format!("forwarding entry for {mac2} is missing")),
        "{plan:?}"
    );
    ip(h(1), &["route", "del", "10.200.3.0/24", "dev", "nsvx42"]);
    ip(h(1), &["neigh", "del", "10.201.2.0", "dev", "nsvx43"]);
    let plan = lines(h(1), &["plan", "-f", &files[0]]);
    assert_eq!(plan.len(), 3, "{plan:?}");
    assert!(
        plan.iter()
            .any(|l| l.contains("route to 10.200.3.0/24 is missing")),
        "{plan:?}"
    );
    assert!(
        plan.iter()
            .any(|l| l.contains("neighbour entry for 10.201.2.0 is missing")),
        "{plan:?}"
    );
    assert_eq!(lines(h(1), &["apply", "-f", &files[0]]).len(), 3);
    assert!(lines(h(1), &["plan", "-f", &files[0]]).is_empty());
    assert!(
        h(1).ping("a1", "10.200.2.10")
            && h(1).ping("a1", "10.200.3.10")
            && h(1).ping("b1", "10.201.2.10"),
        "repaired"
    );

    // Drift: the device itself. The network is rebuilt with its endpoints, then its peers.
    ip(h(1), &["link", "del", "nsvx42"]);
    let check = h(1).nsnet(&["inspect", "a1", "--check"]);
    assert!(
        (check.stdout.clone() + &check.stderr)
            .contains("vxlan device nsvx42 of the overlay is missing"),
        "{}{}",
        check.stdout,
        check.stderr
    );
    let plan = lines(h(1), &["plan", "-f", &files[0]]);
    assert!(
        plan.iter()
            .any(|l| l.contains("vxlan device nsvx42 is missing")),
        "{plan:?}"
    );
    h(1).ok(&["apply", "-f", &files[0]]);
    assert!(lines(h(1), &["plan", "-f", &files[0]]).is_empty());
    assert!(
        h(1).ping("a1", "10.200.3.10") && h(3).ping("a3", "10.200.1.10"),
        "device rebuilt"
    );

    // Host 3 leaves: on hosts 1 and 2, exactly its two peers go (one per overlay), nothing else.
    let before: Vec<String> = [1, 2]
        .iter()
        .map(|&n| h(n).sh("ip", &["-o", "link"]).stdout)
        .collect();
    for n in [1, 2] {
        let f = write(h(n), &file(n, &[1, 2]));
        let applied = lines(h(n), &["apply", "-f", &f]);
        assert_eq!(applied.len(), 2, "{applied:?}");
        assert!(
            applied
                .iter()
                .all(|l| l.starts_with("- overlay peer 10.20") && l.contains("at 192.0.2.3")),
            "{applied:?}"
        );
        assert!(lines(h(n), &["plan", "-f", &f]).is_empty());
        let routes = ip(h(n), &["route", "show", "dev", "nsvx42"]);
        assert_eq!(routes.lines().count(), 1, "{routes}");
        let fdb = h(n).sh("bridge", &["fdb", "show", "dev", "nsvx43"]).stdout;
        assert!(!fdb.contains("192.0.2.3"), "{fdb}");
        assert!(
            ip(h(n), &["neigh", "show", "dev", "nsvx42"])
                .lines()
                .count()
                == 1
        );
    }
    let after: Vec<String> = [1, 2]
        .iter()
        .map(|&n| h(n).sh("ip", &["-o", "link"]).stdout)
        .collect();
    assert_eq!(before, after, "links changed");
    assert!(h(1).ping("a1", "10.200.2.10"), "hosts 1 and 2 still talk");
    assert!(
        !h(1).ping("a1", "10.200.3.10"),
        "host 3 is gone from host 1"
    );

    // Destroy leaves nothing on a host.
    for n in 1..=HOSTS {
        h(n).ok(&["destroy", "-f", &files[n - 1]]);
        let links = h(n).sh("ip", &["-o", "link"]).stdout;
        assert!(!links.contains("nsvx"), "{links}");
    }
}

#[test]
fn etcd_membership_follows_hosts_and_their_leases() {
    if !root() || !have_etcd() {
        return;
    }
    let hosts: Vec<Sandbox> = (0..HOSTS).map(|_| Sandbox::new()).collect();
    let outside = underlay(&hosts);
    let h = |n: usize| &hosts[n - 1];
    let _etcd = start_etcd(&outside);
    const TTL: u32 = 3;
    let files: Vec<String> = (1..=HOSTS)
        .map(|n| write(h(n), &etcd_file(n, TTL)))
        .collect();
    // Each host joins in turn and sees those before it.
    for n in 1..=HOSTS {
        let applied = lines(h(n), &["apply", "-f", &files[n - 1]]);
        let peers = applied
            .iter()
            .filter(|l| l.starts_with("+ overlay peer"))
            .count();
        assert_eq!(peers, 2 * (n - 1), "host {n}: {applied:?}");
    }
    // A slice another host holds is refused, and nothing changes.
    let taken = h(3).state_dir().join("taken.yaml");
    std::fs::write(
        &taken,
        etcd_file(3, TTL)
            .replace("underlay: 192.0.2.3 }", "underlay: 192.0.2.3, slice: 1 }")
            .replace("host: h3", "host: h9"),
    )
    .unwrap();
    let taken = taken.to_str().unwrap();
    h(3).fails(
        1,
        &["apply", "-f", taken],
        &["slice 1 is held by host h1 in etcd"],
    );
    // The watchers keep the leases alive and bring the earlier hosts up to date.
    let watch = |n: usize| {
        Started(
            h(n).command(
                common::NSNET,
                &[
                    "overlay",
                    "watch",
                    "-f",
                    &files[n - 1],
                    "--interval-ms",
                    "200",
                ],
            )
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start nsnet overlay watch"),
        )
    };
    let mut watchers: Vec<Started> = (1..=HOSTS).map(watch).collect();
    for n in 1..=HOSTS {
        assert!(
            eventually(10, || routes_on(h(n), "nsvx42") == HOSTS - 1
                && routes_on(h(n), "nsvx43") == HOSTS - 1),
            "host {n} did not learn every other host"
        );
    }
    // The same traffic as with static membership.
    for (from, to) in [(1, 2), (2, 3), (3, 1)] {
        assert!(
            h(from).ping(&format!("a{from}"), &format!("10.200.{to}.10")),
            "a{from} -> a{to}"
        );
        assert!(
            h(from).ping(&format!("b{from}"), &format!("10.201.{to}.10")),
            "b{from} -> b{to}"
        );
    }
    let srv = h(3).tcp_server("a3", "10.200.3.10:7000");
    assert!(h(1).tcp_hello("a1", "10.200.3.10:7000"), "tcp a1 -> a3");
    assert_eq!(srv.peer().unwrap().to_string(), "10.200.1.10");
    assert!(!h(1).ping("a1", "10.201.3.10"), "ov -> ov2 across hosts");
    let srv = outside.tcp_server("host", "192.0.2.254:7002");
    assert!(
        h(3).tcp_hello("a3", "192.0.2.254:7002"),
        "egress from host 3"
    );
    assert_eq!(
        srv.peer().unwrap().to_string(),
        "192.0.2.3",
        "masqueraded by host 3"
    );
    let srv = h(2).tcp_server("a2", "0.0.0.0:80");
    assert!(
        outside.tcp_hello("host", "192.0.2.2:8080"),
        "published port on host 2"
    );
    assert_eq!(srv.peer().unwrap().to_string(), "192.0.2.254");
    // Leases outlive many TTLs while the watchers run.
    std::thread::sleep(std::time::Duration::from_secs(u64::from(TTL) * 2));
    assert!(h(1).ping("a1", "10.200.3.10"), "still there after two TTLs");

    // Host 3 stops renewing: when its lease expires it disappears from hosts 1 and 2 (its two
    // peers, nothing else), and host 3 itself is left as it was.
    let before = h(3).sh("ip", &["route"]).stdout;
    drop(watchers.pop());
    for n in [1, 2] {
        assert!(
            eventually(u64::from(TTL) + 10, || routes_on(h(n), "nsvx42") == 1
                && routes_on(h(n), "nsvx43") == 1),
            "host {n} still has host 3's entries"
        );
        let fdb = h(n).sh("bridge", &["fdb", "show", "dev", "nsvx42"]).stdout;
        assert!(
            !fdb.contains("192.0.2.3") && fdb.contains("192.0.2.2") != (n == 2),
            "{fdb}"
        );
    }
    assert!(h(1).ping("a1", "10.200.2.10"), "hosts 1 and 2 still talk");
    assert!(
        !h(1).ping("a1", "10.200.3.10"),
        "host 3 is gone from host 1"
    );
    assert_eq!(h(3).sh("ip", &["route"]).stdout, before, "host 3 untouched");
    // What host 1's watcher reported: host 2 and 3 coming, host 3 going, per overlay.
    let mut w1 = watchers.remove(0);
    w1.0.kill().unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(w1.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    let gone: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("- overlay peer"))
        .collect();
    assert_eq!(gone.len(), 2, "{out}");
    assert!(gone.iter().all(|l| l.contains("at 192.0.2.3")), "{out}");
    // Host 1 destroys its part: its lease is revoked at once (long before it would expire),
    // and host 2's watcher drops its peers.
    h(1).ok(&["destroy", "-f", &files[0]]);
    let listed = outside
        .in_ns("host", || {
            nsnet_sys::etcd::Etcd::new("192.0.2.254:2379")
                .unwrap()
                .range_prefix("/nsnet/overlay/hosts/")
                .unwrap()
        })
        .join()
        .unwrap();
    let names: Vec<&str> = listed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(names, ["/nsnet/overlay/hosts/h2"]);
    assert!(
        eventually(5, || routes_on(h(2), "nsvx42") == 0),
        "host 2 still has host 1's entries"
    );
    h(1).ok(&["destroy", "-f", &files[0]]);
    drop(watchers);
    for n in 2..=HOSTS {
        h(n).ok(&["destroy", "-f", &files[n - 1]]);
    }
}
