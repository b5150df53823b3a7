//! nsnet as a CNI plugin, driven like libcni drives plugins (see `cnidriver`), each test in
//! its own sandbox: ADD/CHECK/DEL round trips in every spec version, 64 parallel ADDs, DEL
//! without a namespace, GC, chaining with the reference `portmap`, published ports through
//! nsnet's own firewall, and the error codes of malformed input. Traffic only flows between
//! namespaces the tests create; "outside" uses documentation addresses.

mod cnidriver;
mod common;

use std::collections::BTreeSet;

use cnidriver::{Conflist, Driver, Runtime};
use common::{Sandbox, root};
use serde_json::{Value, json};

/// The nsnet plugin's configuration, as a podman-style bridge entry with `type` swapped.
fn plugin(name: &str, subnet: &str) -> Value {
    json!({
        "type": "nsnet",
        "name": name,
        "bridge": format!("cni-{name}"),
        "isGateway": true,
        "ipMasq": true,
        "hairpinMode": true,
        "ipam": {
            "type": "host-local",
            "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": subnet}]]
        }
    })
}

/// A namespace for a container; its path is what a runtime passes as CNI_NETNS.
fn netns(s: &Sandbox, name: &str) -> String {
    s.ok(&["netns", "add", name]);
    format!("/run/netns/{name}")
}

fn endpoints(s: &Sandbox, network: &str) -> Vec<Value> {
    s.json(&["network", "inspect", network])["endpoints"]
        .as_array()
        .unwrap()
        .clone()
}

fn count(s: &Sandbox, table: &str) -> i64 {
    s.rows().into_iter().find(|(t, _)| *t == table).unwrap().1
}

/// The sandbox and an "outside" namespace behind an uplink (sandbox 203.0.113.1, outside
/// 203.0.113.2), for published ports.
fn world() -> Sandbox {
    let s = Sandbox::new();
    s.add_outside();
    s
}

/// Removes the test's namespaces and the networks in `networks` (those something other than
/// a CNI attachment keeps), then asserts nothing is left: a network a configuration created
/// went with its last attachment.
fn finish(s: &Sandbox, networks: &[&str]) {
    for ns in s.netns_files() {
        s.ok(&["netns", "rm", &ns]);
    }
    for n in networks {
        s.ok(&["network", "rm", n, "--force"]);
    }
    s.assert_clean();
}

#[test]
fn add_check_del_round_trip_in_every_version() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let versions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
    for v in versions {
        let vs = d.version("nsnet")["supportedVersions"].clone();
        assert!(vs.as_array().unwrap().contains(&json!(v)), "{vs}");
    }
    for (i, v) in versions.iter().enumerate() {
        let list = Conflist::single(v, plugin("podman", "10.88.0.0/16"));
        let name = format!("c{i}");
        let ns = netns(&s, &name);
        let rt = Runtime::new(&format!("ctr{i}"), &ns);
        let res = d.add(&list, &rt).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(res["cniVersion"], *v);
        let ifaces = res["interfaces"].as_array().unwrap();
        assert_eq!(ifaces[0]["name"], "cni-podman");
        assert!(ifaces[1]["name"].as_str().unwrap().starts_with("nsv"));
        assert_eq!(ifaces[2]["name"], "eth0");
        assert_eq!(ifaces[2]["sandbox"], ns.as_str());
        // ctr0 keeps 10.88.0.2; each later container gets .3, released by its DEL.
        let addr = format!("10.88.0.{}/16", if i == 0 { 2 } else { 3 });
        let ip = &res["ips"][0];
        assert_eq!(ip["address"], addr.as_str(), "{res}");
        assert_eq!(ip["gateway"], "10.88.0.1");
        assert_eq!(ip["interface"], 2);
        assert_eq!(ip.get("version").is_some(), v.starts_with('0'), "{v}: {ip}");
        assert_eq!(
            res["routes"],
            json!([{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}])
        );
        let bare = addr.split('/').next().unwrap();
        assert!(s.ping(&name, "10.88.0.1"), "{v}: gateway unreachable");
        assert!(s.ping("host", bare), "{v}: container unreachable");
        if i > 0 {
            assert!(
                s.ping(&name, "10.88.0.2"),
                "{v}: first container unreachable"
            );
        }
        // Listed and inspected like any other endpoint.
        let eps = endpoints(&s, "podman");
        let ep = eps
            .iter()
            .find(|e| e["container_id"] == json!(format!("ctr{i}")))
            .unwrap_or_else(|| panic!("no endpoint for ctr{i}: {eps:?}"));
        assert_eq!(ep["ifname"], "eth0");
        assert_eq!(ep["netns"], ns.as_str());
        let table = s.ok(&["network", "inspect", "podman"]);
        assert!(
            table.contains("CONTAINER") && table.contains(&format!("ctr{i}")),
            "{table}"
        );
        if *v != "0.3.0" && *v != "0.3.1" {
            d.check(&list, &rt, &res)
                .unwrap_or_else(|e| panic!("{v}: {e}"));
        }
        // The first container stays to the end; the others go now, twice.
        if i > 0 {
            d.del(&list, &rt, Some(&res)).unwrap();
            d.del(&list, &rt, Some(&res)).unwrap();
            assert!(!s.ping("host", bare), "{v}: still reachable after DEL");
        }
    }
    // A list that names versions instead of one: the newest both sides speak (1.1.0).
    let list = Conflist::new(json!({
        "cniVersions": ["0.4.0", "1.0.0", "1.1.0"],
        "name": "podman",
        "plugins": [plugin("podman", "10.88.0.0/16")]
    }));
    let ns = netns(&s, "cv");
    let rt = Runtime::new("ctr-cv", &ns);
    let res = d.add(&list, &rt).unwrap();
    assert_eq!(res["cniVersion"], "1.1.0");
    d.check(&list, &rt, &res).unwrap();
    d.del(&list, &rt, Some(&res)).unwrap();
    let first = Conflist::single("0.3.0", plugin("podman", "10.88.0.0/16"));
    d.del(&first, &Runtime::new("ctr0", "/run/netns/c0"), None)
        .unwrap();
    assert_eq!(count(&s, "endpoints"), 0);
    finish(&s, &[]);
}

#[test]
fn sixty_four_parallel_adds() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let list = Conflist::single("1.0.0", plugin("par", "10.64.0.0/24"));
    let n = 64;
    for i in 0..n {
        netns(&s, &format!("p{i}"));
    }
    let rts: Vec<Runtime> = (0..n)
        .map(|i| Runtime::new(&format!("ctr{i}"), &format!("/run/netns/p{i}")))
        .collect();
    // Nobody created the network: the first ADD does, the others wait for it.
    let results: Vec<Value> = std::thread::scope(|sc| {
        let handles: Vec<_> = rts.iter().map(|rt| sc.spawn(|| d.add(&list, rt))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap_or_else(|e| panic!("{e}")))
            .collect()
    });
    let addrs: BTreeSet<String> = results
        .iter()
        .map(|r| r["ips"][0]["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(addrs.len(), n, "{addrs:?}");
    for a in &addrs {
        let ip = a.split('/').next().unwrap();
        assert!(s.ping("p0", ip), "{ip} unreachable from p0");
    }
    assert_eq!(count(&s, "endpoints"), n as i64);
    std::thread::scope(|sc| {
        for (rt, res) in rts.iter().zip(&results) {
            let (d, list) = (&d, &list);
            sc.spawn(move || d.del(list, rt, Some(res)).unwrap());
        }
    });
    assert_eq!(count(&s, "endpoints"), 0);
    assert_eq!(count(&s, "addresses"), 0);
    finish(&s, &[]);
}

#[test]
fn del_twice_without_netns_and_after_the_namespace_is_gone() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let list = Conflist::single("1.0.0", plugin("lan", "10.21.0.0/24"));
    let ns = netns(&s, "c1");
    let rt = Runtime::new("ctr1", &ns);
    let res = d.add(&list, &rt).unwrap();
    let veth = res["interfaces"][1]["name"].as_str().unwrap().to_string();
    assert!(s.host_links().contains(&veth));
    // containerd sends DEL without CNI_NETNS once the sandbox is gone.
    let mut no_ns = rt.clone();
    no_ns.netns = String::new();
    d.del(&list, &no_ns, Some(&res)).unwrap();
    assert!(!s.host_links().contains(&veth), "host veth left");
    assert_eq!(count(&s, "endpoints"), 0);
    d.del(&list, &no_ns, Some(&res)).unwrap();
    d.del(&list, &rt, Some(&res)).unwrap();
    // The namespace deleted behind nsnet's back, then DEL with its old path.
    let ns2 = netns(&s, "c2");
    let rt2 = Runtime::new("ctr2", &ns2);
    let res2 = d.add(&list, &rt2).unwrap();
    assert_eq!(s.sh("ip", &["netns", "del", "c2"]).code, 0);
    d.del(&list, &rt2, Some(&res2)).unwrap();
    assert_eq!(count(&s, "endpoints"), 0);
    assert_eq!(count(&s, "ports"), 0);
    // A container nsnet never saw, and a configuration that would no longer pass ADD.
    d.del(&list, &Runtime::new("never", ""), None).unwrap();
    let broken = Conflist::single("1.0.0", json!({"type": "nsnet", "name": "lan"}));
    d.del(&broken, &Runtime::new("never", ""), None).unwrap();
    // The address was released: the next ADD gets the first one again.
    let ns3 = netns(&s, "c3");
    let rt3 = Runtime::new("ctr3", &ns3);
    let res3 = d.add(&list, &rt3).unwrap();
    assert_eq!(res3["ips"][0]["address"], "10.21.0.2/24");
    d.del(&list, &rt3, Some(&res3)).unwrap();
    // The last attachment took the network (bridge, row) with it.
    assert_eq!(s.host_links(), ["lo"]);
    assert_eq!(count(&s, "networks"), 0);
    finish(&s, &[]);
}

#[test]
fn gc_removes_attachments_not_in_the_valid_list() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let list = Conflist::single("1.1.0", plugin("lan", "10.30.0.0/24"));
    let mut cached = Vec::new();
    for i in 1..=3 {
        let ns = netns(&s, &format!("c{i}"));
        let rt = Runtime::new(&format!("ctr{i}"), &ns);
        cached.push((rt.clone(), d.add(&list, &rt).unwrap()));
    }
    // An endpoint the CLI made on the same network is not the runtime's to collect.
    s.ok(&["netns", "add", "cli"]);
    s.ok(&["network", "connect", "lan", "cli"]);
    d.gc(&list, &[("ctr1", "eth0"), ("ctr3", "eth0")]).unwrap();
    let left: BTreeSet<String> = endpoints(&s, "lan")
        .iter()
        .map(|e| e["container_id"].as_str().unwrap_or("cli").to_string())
        .collect();
    assert_eq!(
        left,
        BTreeSet::from(["ctr1".into(), "ctr3".into(), "cli".into()])
    );
    let gone = cached[1].1["interfaces"][1]["name"].as_str().unwrap();
    assert!(
        !s.host_links().iter().any(|l| l == gone),
        "veth of ctr2 left"
    );
    assert!(s.ping("c1", "10.30.0.4"), "ctr3 unreachable after GC");
    // ctr2's address is free again.
    let ns = netns(&s, "c4");
    let rt4 = Runtime::new("ctr4", &ns);
    let res4 = d.add(&list, &rt4).unwrap();
    assert_eq!(res4["ips"][0]["address"], "10.30.0.3/24");
    // Nothing valid: every CNI attachment goes, the CLI's stays.
    d.gc(&list, &[]).unwrap();
    let left = endpoints(&s, "lan");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0]["container_id"].is_null());
    // The runtime's DEL of a collected attachment still succeeds.
    d.del(&list, &cached[0].0, Some(&cached[0].1)).unwrap();
    finish(&s, &["lan"]);
}

#[test]
fn check_names_what_is_missing_and_status_sees_a_flushed_firewall() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let list = Conflist::single("1.1.0", plugin("lan", "10.20.0.0/24"));
    d.status(&list).unwrap();
    let ns = netns(&s, "c1");
    let rt = Runtime::new("ctr1", &ns);
    let res = d.add(&list, &rt).unwrap();
    d.check(&list, &rt, &res).unwrap();
    d.status(&list).unwrap();
    let check_fails = |needle: &str| {
        let e = d.check(&list, &rt, &res).unwrap_err();
        assert_eq!(e.code, 100, "{e}");
        assert!(e.msg.contains(needle), "{needle:?} not in {:?}", e.msg);
    };
    let mut other = res.clone();
    other["ips"][0]["address"] = json!("10.20.0.99/24");
    let e = d.check(&list, &rt, &other).unwrap_err();
    assert_eq!(e.code, 100);
    assert!(e.msg.contains("10.20.0.99/24"), "{}", e.msg);
    assert_eq!(s.sh("ip", &["-n", "c1", "route", "del", "default"]).code, 0);
    check_fails("route 0.0.0.0/0 via 10.20.0.1 dev eth0 is missing");
    assert_eq!(
        s.sh(
            "ip",
            &["-n", "c1", "addr", "del", "10.20.0.2/24", "dev", "eth0"]
        )
        .code,
        0
    );
    check_fails("address 10.20.0.2/24 is missing on eth0");
    // Someone flushes the ruleset (the sandbox's own): CHECK and STATUS notice.
    assert_eq!(s.sh("nft", &["flush", "ruleset"]).code, 0);
    check_fails("firewall element bridges \"cni-lan\" is missing");
    let e = d.status(&list).unwrap_err();
    assert_eq!(e.code, 51, "{e}");
    assert!(e.msg.contains("nsnet repair"), "{}", e.msg);
    s.ok(&["repair"]);
    d.status(&list).unwrap();
    // An attachment nsnet does not know.
    let e = d
        .check(&list, &Runtime::new("nobody", &ns), &res)
        .unwrap_err();
    assert_eq!(e.code, 3, "{e}");
    d.del(&list, &rt, Some(&res)).unwrap();
    finish(&s, &[]);
}

#[test]
fn chained_with_the_reference_portmap_plugin() {
    if !root() {
        return;
    }
    let s = world();
    let d = Driver::new(&s);
    // portmap 1.1 speaks up to 1.0.0.
    // Dual stack, so portmap's IPv6 side runs too.
    let mut first = plugin("chain", "10.40.0.0/24");
    first.as_object_mut().unwrap().remove("name");
    first["ipam"]["ranges"] = json!([[{"subnet": "10.40.0.0/24"}], [{"subnet": "fd00:40::/64"}]]);
    first["ipam"]["routes"] = json!([{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]);
    let list = Conflist::new(json!({
        "cniVersion": "1.0.0",
        "name": "chain",
        "plugins": [first, {"type": "portmap", "capabilities": {"portMappings": true}}]
    }));
    let ns = netns(&s, "c1");
    let rt = Runtime::new("ctr1", &ns).cap(
        "portMappings",
        json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]),
    );
    let res = d.add(&list, &rt).unwrap_or_else(|e| panic!("{e}"));
    // portmap passed nsnet's result on.
    assert_eq!(res["ips"][0]["address"], "10.40.0.2/24");
    assert_eq!(res["ips"][1]["address"], "fd00:40::2/64");
    assert_eq!(res["interfaces"][2]["sandbox"], ns.as_str());
    assert!(s.ping("c1", "fd00:40::1"), "IPv6 gateway unreachable");
    let server = s.tcp_server("c1", "0.0.0.0:80");
    assert!(
        s.tcp_hello("outside", "203.0.113.1:8080"),
        "published port unreachable through portmap"
    );
    assert!(server.peer().is_some());
    // nsnet's CHECK passes with the chain's final result. portmap 1.1's own CHECK looks for
    // its IPv4 rules in ip6tables and fails (containernetworking/plugins#819): only there.
    let nsnet_only = Conflist {
        plugins: list.plugins[..1].to_vec(),
        ..list.clone()
    };
    d.check(&nsnet_only, &rt, &res)
        .unwrap_or_else(|e| panic!("{e}"));
    let e = d.check(&list, &rt, &res).unwrap_err();
    assert_eq!(e.plugin, "portmap", "{e}");
    d.del(&list, &rt, Some(&res)).unwrap();
    let nat = s.sh("iptables", &["-t", "nat", "-S"]).stdout;
    assert!(!nat.contains("10.40.0.2"), "portmap rules left: {nat}");
    d.del(&list, &rt, Some(&res)).unwrap();
    assert_eq!(count(&s, "endpoints"), 0);
    finish(&s, &[]);
}

#[test]
fn port_mappings_capability_publishes_through_nsnets_firewall() {
    if !root() {
        return;
    }
    let s = world();
    let d = Driver::new(&s);
    let mut p = plugin("web", "10.41.0.0/24");
    p["capabilities"] = json!({"portMappings": true, "ips": true, "mac": true});
    let list = Conflist::single("1.1.0", p);
    let ns = netns(&s, "c1");
    let rt = Runtime::new("ctr1", &ns)
        .cap(
            "portMappings",
            json!([
                {"hostPort": 8081, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}
            ]),
        )
        .cap("ips", json!(["10.41.0.50/24"]))
        .cap("mac", json!("02:00:00:00:00:50"));
    let res = d.add(&list, &rt).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(res["ips"][0]["address"], "10.41.0.50/24");
    assert_eq!(res["interfaces"][2]["mac"], "02:00:00:00:00:50");
    let ports = s.json(&["port", "ls"]);
    assert_eq!(ports.as_array().unwrap().len(), 2, "{ports}");
    let server = s.tcp_server("c1", "0.0.0.0:80");
    assert!(s.tcp_hello("outside", "203.0.113.1:8081"));
    assert_eq!(server.peer().unwrap().to_string(), "203.0.113.2");
    let udp = s.udp_server("c1", "0.0.0.0:53");
    assert!(s.udp_hello("outside", "203.0.113.1:5353"));
    assert!(udp.peer().is_some());
    // Hairpin: the container reaches its own published port through the host's address.
    let server = s.tcp_server("c1", "0.0.0.0:80");
    assert!(s.tcp_hello("c1", "203.0.113.1:8081"), "hairpin failed");
    assert!(server.peer().is_some());
    d.check(&list, &rt, &res).unwrap_or_else(|e| panic!("{e}"));
    d.del(&list, &rt, Some(&res)).unwrap();
    assert_eq!(count(&s, "ports"), 0);
    let map = s
        .sh("nft", &["list", "map", "inet", "nsnet", "pf_any4"])
        .stdout;
    assert!(!map.contains("8081"), "element left: {map}");
    assert!(!s.tcp_hello("outside", "203.0.113.1:8081"));
    finish(&s, &[]);
}

/// One malformed invocation: environment, stdin, the expected code and part of the message.
type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<u8>, i64, &'a str);

#[test]
fn malformed_configs_and_environments_get_the_right_codes() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let ns = netns(&s, "c1");
    let good = |v: &str| {
        json!({"cniVersion": v, "name": "lan", "type": "nsnet",
               "ipam": {"ranges": [[{"subnet": "10.50.0.0/24"}]]}})
    };
    let with = |mut v: Value, k: &str, x: Value| {
        v[k] = x;
        v.to_string().into_bytes()
    };
    let add: Vec<(&str, &str)> = vec![
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "ctr1"),
        ("CNI_NETNS", &ns),
        ("CNI_IFNAME", "eth0"),
    ];
    let without = |k: &str| -> Vec<(&str, &str)> {
        add.iter().copied().filter(|(key, _)| *key != k).collect()
    };
    let replaced = |k: &'static str, v: &'static str| -> Vec<(&str, &str)> {
        let mut e = without(k);
        e.push((k, v));
        e
    };
    let g = good("1.0.0").to_string().into_bytes();
    let cases: Vec<Case<'_>> = vec![
        (replaced("CNI_COMMAND", "FROB"), g.clone(), 4, "CNI_COMMAND"),
        (without("CNI_IFNAME"), g.clone(), 4, "CNI_IFNAME"),
        (without("CNI_CONTAINERID"), g.clone(), 4, "CNI_CONTAINERID"),
        (without("CNI_NETNS"), g.clone(), 4, "CNI_NETNS"),
        (replaced("CNI_NETNS", "c1"), g.clone(), 4, "absolute path"),
        (replaced("CNI_IFNAME", "eth0:1"), g.clone(), 4, "CNI_IFNAME"),
        (
            replaced("CNI_CONTAINERID", "../x"),
            g.clone(),
            4,
            "CNI_CONTAINERID",
        ),
        (
            replaced("CNI_ARGS", "FOO=bar"),
            g.clone(),
            4,
            "IgnoreUnknown=1",
        ),
        (add.clone(), b"{not json".to_vec(), 6, "not valid JSON"),
        (
            add.clone(),
            with(good("1.0.0"), "mtu", json!("big")),
            6,
            "decode",
        ),
        (
            add.clone(),
            good("0.2.0").to_string().into_bytes(),
            1,
            "0.2.0",
        ),
        (
            add.clone(),
            json!({"name": "lan"}).to_string().into_bytes(),
            1,
            "cniVersion",
        ),
        (
            add.clone(),
            with(good("1.0.0"), "name", Value::Null),
            7,
            "name",
        ),
        (
            add.clone(),
            with(good("1.0.0"), "ipam", json!({"type": "dhcp"})),
            2,
            "ipam.type",
        ),
        (
            add.clone(),
            with(good("1.0.0"), "isGateway", json!(false)),
            2,
            "isGateway",
        ),
        (
            add.clone(),
            with(good("1.0.0"), "ipam", json!({"subnet": "10.50.0.1/24"})),
            7,
            "did you mean 10.50.0.0/24",
        ),
        (
            add.clone(),
            with(
                good("1.0.0"),
                "runtimeConfig",
                json!({"portMappings": [{"hostPort": 0, "containerPort": 80}]}),
            ),
            7,
            "hostPort 0",
        ),
        (
            replaced("CNI_NETNS", "/run/netns/nope"),
            g.clone(),
            3,
            "does not exist",
        ),
        (
            replaced("CNI_COMMAND", "CHECK"),
            good("0.3.1").to_string().into_bytes(),
            1,
            "CHECK",
        ),
        (replaced("CNI_COMMAND", "CHECK"), g.clone(), 7, "prevResult"),
        (vec![("CNI_COMMAND", "GC")], g.clone(), 1, "GC"),
        (
            vec![("CNI_COMMAND", "STATUS")],
            good("0.4.0").to_string().into_bytes(),
            1,
            "STATUS",
        ),
        (
            vec![("CNI_COMMAND", "GC")],
            good("1.1.0").to_string().into_bytes(),
            7,
            "valid-attachments",
        ),
    ];
    for (env, stdin, want, needle) in &cases {
        let raw = d.raw("nsnet", env, stdin);
        let (code, msg) = raw.error();
        assert_eq!(
            code,
            *want,
            "{env:?} {}: {msg}",
            String::from_utf8_lossy(stdin)
        );
        assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
        assert_eq!(
            raw.stdout.lines().count(),
            1,
            "one JSON line: {}",
            raw.stdout
        );
    }
    // Refused input changed nothing.
    for (table, n) in s.rows() {
        assert_eq!(n, 0, "{n} rows in {table}");
    }

    let list = Conflist::single("1.0.0", good("1.0.0"));
    let rt = Runtime::new("ctr1", &ns);
    let res = d.add(&list, &rt).unwrap();
    // The same attachment twice.
    let e = d.add(&list, &rt).unwrap_err();
    assert_eq!(e.code, 101, "{e}");
    assert!(e.msg.contains("already attached"), "{}", e.msg);
    // Another definition of the same network.
    let mut other = good("1.0.0");
    other["ipam"] = json!({"ranges": [[{"subnet": "10.51.0.0/24"}]]});
    let ns2 = netns(&s, "c2");
    let e = d
        .add(
            &Conflist::single("1.0.0", other),
            &Runtime::new("ctr2", &ns2),
        )
        .unwrap_err();
    assert_eq!(e.code, 7, "{e}");
    assert!(
        e.msg.contains("already exists with subnets 10.50.0.0/24"),
        "{}",
        e.msg
    );
    // The interface name is taken inside the namespace.
    assert_eq!(
        s.sh(
            "ip",
            &[
                "-n", "c2", "link", "add", "eth0", "type", "veth", "peer", "name", "x0"
            ]
        )
        .code,
        0
    );
    let e = d.add(&list, &Runtime::new("ctr2", &ns2)).unwrap_err();
    assert_eq!(e.code, 101, "{e}");
    assert!(e.msg.contains("eth0 already exists"), "{}", e.msg);
    assert_eq!(count(&s, "endpoints"), 1);
    // CNI_ARGS as kubelet sends them: unknown keys tolerated, IP= honoured.
    let ns3 = netns(&s, "c3");
    let mut rt3 = Runtime::new("ctr3", &ns3);
    rt3.args = vec![
        ("IgnoreUnknown".into(), "1".into()),
        ("K8S_POD_NAME".into(), "web".into()),
        ("IP".into(), "10.50.0.77".into()),
    ];
    let res3 = d.add(&list, &rt3).unwrap();
    assert_eq!(res3["ips"][0]["address"], "10.50.0.77/24");
    // The address is taken now: a conflict, not a bad configuration.
    let ns4 = netns(&s, "c4");
    let mut rt4 = Runtime::new("ctr4", &ns4);
    rt4.args = vec![("IP".into(), "10.50.0.77".into())];
    let e = d.add(&list, &rt4).unwrap_err();
    assert_eq!(e.code, 101, "{e}");
    assert!(e.msg.contains("already in use"), "{}", e.msg);
    d.del(&list, &rt, Some(&res)).unwrap();
    d.del(&list, &rt3, Some(&res3)).unwrap();
    finish(&s, &[]);
}

/// Invalid requests (whatever exists) get 7; requests in conflict with something that exists
/// (an address, host port, interface or attachment taken) get 101. Engine messages name no
/// CLI flag. Each refusal leaves the attachments as they were.
#[test]
fn invalid_requests_get_7_and_conflicts_get_101() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let mut p = plugin("lan", "10.52.0.0/24");
    p["capabilities"] = json!({"portMappings": true, "ips": true});
    let list = Conflist::single("1.0.0", p.clone());
    let mut internal = plugin("int", "10.53.0.0/24");
    internal["capabilities"] = json!({"portMappings": true});
    internal["internal"] = json!(true);
    internal["ipam"]["routes"] = json!([]);
    let internal = Conflist::single("1.0.0", internal);
    let first_ns = netns(&s, "c1");
    let first = Runtime::new("ctr1", &first_ns)
        .cap("ips", json!(["10.52.0.50/24"]))
        .cap(
            "portMappings",
            json!([{"hostPort": 8080, "containerPort": 80}]),
        );
    let res = d.add(&list, &first).unwrap_or_else(|e| panic!("{e}"));
    let ns = netns(&s, "c2");
    let rt = || Runtime::new("ctr2", &ns);
    let ports = |v: Value| rt().cap("portMappings", v);
    let cases: Vec<(&Conflist, Runtime, i64, &str)> = vec![
        (
            &internal,
            ports(json!([{"hostPort": 8081, "containerPort": 80}])),
            7,
            "is internal",
        ),
        (
            &list,
            ports(json!([
                {"hostPort": 8082, "containerPort": 80},
                {"hostPort": 8082, "containerPort": 81}
            ])),
            7,
            "given twice",
        ),
        (
            &list,
            rt().cap("ips", json!(["10.52.0.5/24", "10.52.0.6/24"])),
            7,
            "more than one address",
        ),
        (
            &list,
            ports(json!([{"hostPort": 8083, "containerPort": 80, "hostIP": "192.0.2.1"}])),
            7,
            "the host holds no address 192.0.2.1",
        ),
        (
            &list,
            rt().cap("ips", json!(["10.52.0.50/24"])),
            101,
            "10.52.0.50 for network lan: is already in use",
        ),
        (
            &list,
            ports(json!([{"hostPort": 8080, "containerPort": 80}])),
            101,
            "host port 8080/tcp is already published",
        ),
        (&list, first.clone(), 101, "already attached"),
    ];
    for (list, rt, code, needle) in cases {
        let e = d.add(list, &rt).unwrap_err();
        assert_eq!(e.code, code, "{needle}: {e}");
        assert!(e.msg.contains(needle), "{needle:?} not in {:?}", e.msg);
        assert!(!e.msg.contains("--"), "a CLI flag in {:?}", e.msg);
        assert_eq!(count(&s, "endpoints"), 1, "{needle}");
        // What a runtime does after a failed ADD.
        if rt.container_id != "ctr1" {
            d.del(list, &rt, None).unwrap();
        }
    }
    d.del(&list, &first, Some(&res)).unwrap();
    finish(&s, &[]);
}

/// The conflists the README gives for podman and containerd, as written there.
fn readme_conflists() -> Vec<Value> {
    let readme = include_str!("../../../README.md");
    readme
        .split("```json")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .filter(|block| block.contains("\"type\": \"nsnet\""))
        .map(|block| serde_json::from_str::<Value>(block).expect("README conflist is JSON"))
        // tests/cri.rs runs the Kubernetes node's conflist under containerd's CRI, and
        // tests/cni_overlay.rs the multi-node one on two nodes with etcd.
        .filter(|v| v["name"] != "k8s-pod-network" && v["name"] != "k8s-pod-overlay")
        .collect()
}

#[test]
fn the_readme_conflists_work() {
    if !root() {
        return;
    }
    let lists = readme_conflists();
    assert_eq!(lists.len(), 2, "podman and containerd conflists");
    let s = world();
    let d = Driver::new(&s);
    for (i, v) in lists.into_iter().enumerate() {
        let list = Conflist::new(v);
        let ns = netns(&s, &format!("r{i}"));
        let rt = Runtime::new(&format!("readme{i}"), &ns)
            .cap(
                "portMappings",
                json!([{"hostPort": 9000 + i, "containerPort": 80, "protocol": "tcp"}]),
            )
            .cap("aliases", json!({list.name.clone(): ["web"]}));
        let res = d
            .add(&list, &rt)
            .unwrap_or_else(|e| panic!("{}: {e}", list.name));
        assert!(s.ping(&format!("r{i}"), "10.88.0.1"), "{}", list.name);
        let server = s.tcp_server(&format!("r{i}"), "0.0.0.0:80");
        assert!(
            s.tcp_hello("outside", &format!("203.0.113.1:{}", 9000 + i)),
            "{}: published port",
            list.name
        );
        assert!(server.peer().is_some());
        d.check(&list, &rt, &res)
            .unwrap_or_else(|e| panic!("{}: {e}", list.name));
        d.del(&list, &rt, Some(&res)).unwrap();
        assert_eq!(count(&s, "networks"), 0, "{}", list.name);
    }
    finish(&s, &[]);
}
