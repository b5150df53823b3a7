//! Bad input and failures halfway: a clear one-line error that states its cause once, exit
//! code 1 (2 for usage), and nothing changed — no veth, no address, no row.

mod cnidriver;
mod common;

use cnidriver::{Conflist, Driver, Runtime};
use common::{Sandbox, root};
use serde_json::{Value, json};

/// What a refusal may change: nothing. Interfaces of the sandbox and of each namespace given,
/// and the store's row counts.
fn snapshot(s: &Sandbox, netns: &[&str]) -> (Vec<String>, Vec<String>, Vec<(&'static str, i64)>) {
    let mut inside = Vec::new();
    for ns in netns {
        let r = s.sh("ip", &["-n", ns, "-o", "addr", "show"]);
        inside.push(format!("{ns}: {}", r.stdout));
        let r = s.sh("ip", &["-n", ns, "-o", "link", "show"]);
        inside.push(format!("{ns}: {}", r.stdout));
    }
    (s.host_links(), inside, s.rows())
}

/// Asserts a refusal is one line whose `: `-separated clauses each appear once.
fn once(err: &str) {
    let line = err.trim();
    assert_eq!(line.lines().count(), 1, "not one line: {err}");
    let clauses: Vec<&str> = line.split(": ").collect();
    for (i, c) in clauses.iter().enumerate() {
        assert!(
            !clauses[..i].contains(c),
            "clause {c:?} stated twice in {line:?}"
        );
    }
}

/// Runs each refusal, asserting exit 1, one line naming what `needles` say, nothing changed.
fn refused(s: &Sandbox, netns: &[&str], cases: &[(&[&str], &[&str])]) {
    for (args, needles) in cases {
        let before = snapshot(s, netns);
        let err = s.fails(1, args, needles);
        once(&err);
        assert_eq!(snapshot(s, netns), before, "state changed by {args:?}");
    }
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "red"]);
    s.ok(&["network", "create", "lan", "--subnet", "10.1.0.0/24"]);
    let before = (s.host_links(), s.rows());
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["netns", "add", "../etc"],
            &["invalid namespace name", "A-Z"],
        ),
        (&["netns", "add", "host"], &["reserved"]),
        (
            &["netns", "add", &"x".repeat(65)],
            &["invalid namespace name"],
        ),
        (
            &["network", "create", "bad/name", "--subnet", "10.9.0.0/24"],
            &["invalid network name"],
        ),
        (
            &["network", "create", "n2", "--subnet", "10.9.0.0/33"],
            &["invalid subnet", "CIDR"],
        ),
        (
            &["network", "create", "n2", "--subnet", "10.9.0.1"],
            &["give a prefix length"],
        ),
        (
            &["network", "create", "n2", "--subnet", "10.9.0.7/24"],
            &["did you mean 10.9.0.0/24"],
        ),
        (
            &[
                "network",
                "create",
                "n2",
                "--subnet",
                "10.9.0.0/24",
                "--gateway",
                "10.8.0.1",
            ],
            &["gateway 10.8.0.1", "not inside"],
        ),
        (
            &["network", "create", "n2", "--subnet", "10.1.0.0/16"],
            &["overlaps subnet 10.1.0.0/24 of network lan"],
        ),
        (
            &["network", "create", "lan", "--subnet", "10.9.0.0/24"],
            &["network lan already exists"],
        ),
        (
            &[
                "network",
                "create",
                "n2",
                "--subnet",
                "10.9.0.0/24",
                "--bridge",
                "this-name-is-too-long",
            ],
            &["invalid interface name", "1-15"],
        ),
        (
            &[
                "network",
                "create",
                "n2",
                "--subnet",
                "10.9.0.0/24",
                "--mtu",
                "60",
            ],
            &["invalid mtu", "68-65535"],
        ),
        (
            &["network", "connect", "lan", "nope"],
            &["netns nope not found"],
        ),
        (
            &["network", "connect", "nonet", "red"],
            &["network nonet not found"],
        ),
        (
            &["network", "connect", "lan", "red", "--ip", "10.2.0.5"],
            &["10.2.0.5", "outside"],
        ),
        (
            &["network", "connect", "lan", "red", "--ip", "10.1.0.1"],
            &["is the gateway"],
        ),
        (
            &[
                "network",
                "connect",
                "lan",
                "red",
                "--mac",
                "01:00:00:00:00:01",
            ],
            &["multicast"],
        ),
        (
            &["network", "connect", "lan", "red", "--ifname", "a:b"],
            &["invalid interface name"],
        ),
        (
            &["network", "connect", "lan", "host"],
            &["not allowed here"],
        ),
        (&["link", "add", "red", "red"], &["same namespace"]),
        (&["link", "add", "red", "nope"], &["netns nope not found"]),
        (
            &[
                "link",
                "add",
                "red",
                "host",
                "--addr",
                "1.2.3.4/24",
                "--addr",
                "1.2.3.5/24",
                "--addr",
                "1.2.3.6/24",
            ],
            &["at most two --addr"],
        ),
        (
            &["route", "add", "red", "10.5.0.0/16", "via", "fd00::1"],
            &["same IP version"],
        ),
        (
            &["route", "add", "nope", "10.5.0.0/16", "via", "10.1.0.1"],
            &["netns nope not found"],
        ),
        (&["network", "rm", "nonet"], &["network nonet not found"]),
        (
            &["network", "disconnect", "lan", "red"],
            &["endpoint of netns red on network lan not found"],
        ),
    ];
    for (args, needles) in cases {
        let err = s.fails(1, args, needles);
        once(&err);
        assert_eq!(
            (s.host_links(), s.rows()),
            before,
            "state changed by {args:?}"
        );
    }
    // Usage errors exit with 2.
    s.fails(2, &["network", "create", "n3"], &["--subnet"]);
    s.fails(
        2,
        &["route", "add", "red", "10.0.0.0/8", "through", "10.1.0.1"],
        &["via"],
    );
    s.fails(2, &["frobnicate"], &[]);
    s.ok(&["network", "rm", "lan"]);
    s.ok(&["netns", "rm", "red"]);
    s.assert_clean();
}

#[test]
fn subnet_overlapping_a_host_route_is_refused() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    assert_eq!(
        s.sh(
            "ip",
            &[
                "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink1"
            ]
        )
        .code,
        0
    );
    assert_eq!(
        s.sh("ip", &["addr", "add", "198.51.100.1/24", "dev", "uplink0"])
            .code,
        0
    );
    assert_eq!(s.sh("ip", &["link", "set", "uplink0", "up"]).code, 0);
    s.fails(
        1,
        &["network", "create", "n", "--subnet", "198.51.100.0/25"],
        &["overlaps route 198.51.100.0/24 already on the host (dev uplink0)"],
    );
    assert!(s.rows().iter().all(|(_, n)| *n == 0));
    assert_eq!(s.sh("ip", &["link", "del", "uplink0"]).code, 0);
    s.assert_clean();
}

#[test]
fn failed_connects_leave_no_veth_address_or_row() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "red"]);
    s.ok(&["netns", "add", "blue"]);
    s.ok(&["network", "create", "tiny", "--subnet", "10.3.0.0/30"]);
    s.ok(&["network", "create", "lan", "--subnet", "10.4.0.0/24"]);
    // Interface name taken inside the namespace (made by hand): the kernel refuses, nsnet undoes.
    assert_eq!(
        s.sh(
            "ip",
            &[
                "-n", "red", "link", "add", "eth0", "type", "veth", "peer", "name", "spare0"
            ]
        )
        .code,
        0
    );
    let before = (s.host_links(), s.rows());
    s.fails(
        1,
        &["network", "connect", "lan", "red"],
        &["interface eth0 already exists in netns red"],
    );
    assert_eq!((s.host_links(), s.rows()), before);
    // The same address requested twice.
    s.ok(&["network", "connect", "lan", "blue", "--ip", "10.4.0.7"]);
    let before = (s.host_links(), s.rows());
    s.fails(
        1,
        &[
            "network", "connect", "lan", "red", "--ifname", "eth1", "--ip", "10.4.0.7",
        ],
        &["10.4.0.7", "already in use"],
    );
    // Already connected.
    s.fails(
        1,
        &["network", "connect", "lan", "blue"],
        &["already connected to network lan"],
    );
    // Subnet full: /30 holds one endpoint besides the gateway.
    s.ok(&["network", "connect", "tiny", "blue"]);
    let before_full = (s.host_links(), s.rows());
    s.fails(
        1,
        &["network", "connect", "tiny", "red", "--ifname", "eth1"],
        &["no free address left in 10.3.0.0/30"],
    );
    assert_eq!((s.host_links(), s.rows()), before_full);
    assert_ne!(before.1, before_full.1);
    // After the failures the next connect gets the lowest free address.
    let ep = s.json(&["network", "connect", "lan", "red", "--ifname", "eth1"]);
    assert_eq!(ep["addrs"][0], "10.4.0.2/24");
    assert!(s.ping("red", "10.4.0.7"));
    s.ok(&["netns", "rm", "red", "blue"]);
    s.ok(&["network", "rm", "lan"]);
    s.ok(&["network", "rm", "tiny"]);
    s.assert_clean();
}

#[test]
fn namespace_deleted_by_hand_is_collected() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "red"]);
    s.ok(&["network", "create", "lan", "--subnet", "10.4.0.0/24"]);
    s.ok(&["network", "connect", "lan", "red"]);
    assert_eq!(s.sh("ip", &["netns", "del", "red"]).code, 0);
    let report = s.json(&["gc"]);
    assert_eq!(report["endpoints"][0], "red on network lan");
    let net = s.json(&["network", "inspect", "lan"]);
    assert_eq!(net["usage"][0]["used"], 0);
    // Teardown is idempotent: a second gc finds nothing.
    assert!(s.ok(&["gc"]).contains("nothing to collect"));
    s.ok(&["network", "rm", "lan"]);
    s.assert_clean();
}

/// The minimal nsnet CNI configuration of network `name` on `subnet`.
fn cni_conf(name: &str, subnet: &str) -> Value {
    json!({"cniVersion": "1.0.0", "name": name, "type": "nsnet",
           "capabilities": {"mac": true},
           "ipam": {"ranges": [[{"subnet": subnet}]]}})
}

#[test]
fn special_use_subnets_are_refused_on_every_face() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "a"]);
    // Each subnet and the range it touches.
    let bad = [
        ("0.0.0.0/8", "0.0.0.0/8"),
        ("0.0.0.0/0", "0.0.0.0/8"),
        ("127.0.0.0/24", "127.0.0.0/8 (loopback"),
        ("169.254.10.0/24", "169.254.0.0/16 (link-local"),
        ("224.0.0.0/24", "224.0.0.0/4 (multicast"),
        ("239.255.0.0/16", "224.0.0.0/4 (multicast"),
        ("240.0.0.0/24", "240.0.0.0/4 (reserved"),
        (
            "255.255.255.0/24",
            "240.0.0.0/4 (reserved, with the broadcast address 255.255.255.255",
        ),
        ("::/64", "::/128 (the unspecified address"),
        ("::/127", "::/128 (the unspecified address"),
        ("fe80::/64", "fe80::/10 (link-local"),
        ("ff00::/64", "ff00::/8 (multicast"),
        ("ff02::/64", "ff00::/8 (multicast"),
    ];
    for (subnet, range) in bad {
        let head = format!("subnet {subnet} of network n: overlaps {range}");
        refused(
            &s,
            &["a"],
            &[(
                &["network", "create", "n", "--subnet", subnet],
                &[&head, "allowed: unicast ranges"],
            )],
        );
    }
    refused(
        &s,
        &["a"],
        &[(
            &[
                "network",
                "create",
                "n",
                "--subnet",
                "10.5.0.0/24",
                "--subnet",
                "ff00::/64",
            ],
            &["subnet ff00::/64 of network n", "multicast"],
        )],
    );
    // The topology face: refused while reading the file, before any namespace exists.
    let file = s.state_dir().join("loopback.yaml");
    std::fs::write(
        &file,
        "name: special\nnamespaces: [t1]\nnetworks:\n  lo:\n    subnets: [127.0.0.0/24]\n    endpoints:\n      t1: {}\n",
    )
    .unwrap();
    let before = snapshot(&s, &["a"]);
    s.fails(
        1,
        &["apply", "-f", file.to_str().unwrap()],
        &["127.0.0.0/24", "loopback"],
    );
    assert_eq!(snapshot(&s, &["a"]), before);
    assert_eq!(s.netns_files(), ["a"]);
    // The CNI face: the configuration is invalid (code 7), nothing is made.
    let d = Driver::new(&s);
    for subnet in ["127.0.0.0/24", "ff00::/64"] {
        let list = Conflist::single("1.0.0", cni_conf("lo", subnet));
        let e = d
            .add(&list, &Runtime::new("ctr1", "/run/netns/a"))
            .unwrap_err();
        assert_eq!(e.code, 7, "{e}");
        assert!(e.msg.contains(&format!("subnet {subnet}")), "{}", e.msg);
        once(&e.msg);
        assert_eq!(snapshot(&s, &["a"]), before);
    }
    // The same ranges elsewhere are fine: unicast neighbours of each.
    s.ok(&["network", "create", "n", "--subnet", "126.255.255.0/24"]);
    s.ok(&["network", "create", "m", "--subnet", "fd00:5::/64"]);
    s.ok(&["network", "connect", "n", "a"]);
    assert!(s.ping("a", "126.255.255.1"));
    s.ok(&["netns", "rm", "a"]);
    s.ok(&["network", "rm", "n"]);
    s.ok(&["network", "rm", "m"]);
    s.assert_clean();
}

#[test]
fn a_mac_already_on_the_network_is_refused() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    for ns in ["a", "b", "c", "d", "e", "f"] {
        s.ok(&["netns", "add", ns]);
    }
    s.ok(&["network", "create", "good", "--subnet", "10.1.0.0/24"]);
    s.ok(&["network", "create", "other", "--subnet", "10.2.0.0/24"]);
    let a = s.json(&["network", "connect", "good", "a"]);
    let mac = a["mac"].as_str().unwrap().to_string();
    assert_eq!(mac, "0a:58:0a:01:00:02");
    let taken = format!("MAC {mac} is already used by netns a on network good");
    let upper = mac.to_uppercase();
    refused(
        &s,
        &["a", "b"],
        &[
            (
                &["network", "connect", "good", "b", "--mac", &mac],
                &[&taken, "connect netns b to network good"],
            ),
            (
                &["network", "connect", "good", "b", "--mac", &upper],
                &[&taken],
            ),
            (
                &[
                    "network",
                    "connect",
                    "good",
                    "b",
                    "--mac",
                    "00:00:00:00:00:00",
                ],
                &["all-zero"],
            ),
            (
                &[
                    "network",
                    "connect",
                    "good",
                    "b",
                    "--mac",
                    "33:33:00:00:00:01",
                ],
                &["multicast"],
            ),
        ],
    );
    // Another network is another segment: the same MAC is fine there.
    s.ok(&["network", "connect", "other", "b", "--mac", &mac]);
    // A MAC nsnet would derive for a new endpoint (0a:58 + its IPv4) that someone asked for
    // already: the new endpoint gets another one, and the two talk.
    let c = s.json(&[
        "network",
        "connect",
        "good",
        "c",
        "--mac",
        "0a:58:0a:01:00:04",
    ]);
    assert_eq!(c["addrs"][0], "10.1.0.3/24");
    let d = s.json(&["network", "connect", "good", "d"]);
    assert_eq!(d["addrs"][0], "10.1.0.4/24");
    assert_ne!(d["mac"], c["mac"], "{d}");
    assert!(s.ping("d", "10.1.0.3"), "d cannot reach c");
    assert!(s.ping("c", "10.1.0.4"), "c cannot reach d");
    assert!(s.ping("a", "10.1.0.4"), "a cannot reach d");
    // The CNI face: the `mac` capability and CNI_ARGS MAC= are conflicts (code 101).
    let drv = Driver::new(&s);
    let list = Conflist::single("1.0.0", cni_conf("cnet", "10.60.0.0/24"));
    let first = Runtime::new("ctr-e", "/run/netns/e").cap("mac", json!("02:00:00:00:00:09"));
    let res = drv.add(&list, &first).unwrap_or_else(|e| panic!("{e}"));
    let before = snapshot(&s, &["e", "f"]);
    let by_cap = Runtime::new("ctr-f", "/run/netns/f").cap("mac", json!("02:00:00:00:00:09"));
    let mut by_args = Runtime::new("ctr-f", "/run/netns/f");
    by_args.args = vec![("MAC".into(), "02:00:00:00:00:09".into())];
    for rt in [by_cap, by_args] {
        let e = drv.add(&list, &rt).unwrap_err();
        assert_eq!(e.code, 101, "{e}");
        assert!(
            e.msg.contains(
                "MAC 02:00:00:00:00:09 is already used by netns /run/netns/e on network cnet"
            ),
            "{}",
            e.msg
        );
        once(&e.msg);
        assert_eq!(snapshot(&s, &["e", "f"]), before);
    }
    drv.del(&list, &first, Some(&res)).unwrap();
    s.ok(&["netns", "rm", "a", "b", "c", "d", "e", "f"]);
    // The CNI network went with its last attachment.
    for n in ["good", "other"] {
        s.ok(&["network", "rm", n]);
    }
    s.assert_clean();
}

#[test]
fn link_mtus_and_addresses_are_checked() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "a"]);
    s.ok(&["netns", "add", "b"]);
    refused(
        &s,
        &["a", "b"],
        &[
            (
                &["link", "add", "a", "b", "--mtu", "10"],
                &[
                    "link netns a with netns b",
                    "invalid mtu \"10\"",
                    "68-65535",
                ],
            ),
            (
                &["link", "add", "a", "b", "--mtu", "65536"],
                &["invalid mtu", "68-65535"],
            ),
            (
                &[
                    "link",
                    "add",
                    "a",
                    "b",
                    "--mtu",
                    "1000",
                    "--addr",
                    "fd00:9::1/64",
                    "--addr",
                    "fd00:9::2/64",
                ],
                &["invalid mtu \"1000\"", "1280-65535", "IPv6"],
            ),
            (
                &[
                    "link",
                    "add",
                    "a",
                    "b",
                    "--addr",
                    "10.9.0.1/24",
                    "--addr",
                    "10.9.0.1/24",
                ],
                &["link netns a with netns b", "10.9.0.1", "both ends"],
            ),
            (
                &[
                    "link",
                    "add",
                    "a",
                    "host",
                    "--addr",
                    "10.9.0.1/30",
                    "--addr",
                    "10.9.0.1/24",
                ],
                &["10.9.0.1", "both ends"],
            ),
            (
                &[
                    "network",
                    "create",
                    "n",
                    "--subnet",
                    "10.5.0.0/24",
                    "--mtu",
                    "67",
                ],
                &["invalid mtu \"67\"", "68-65535"],
            ),
            (
                &[
                    "network",
                    "create",
                    "n",
                    "--subnet",
                    "fd00:5::/64",
                    "--mtu",
                    "1279",
                ],
                &["invalid mtu \"1279\"", "1280-65535"],
            ),
        ],
    );
    // The bounds themselves are accepted by the kernel, and traffic flows.
    s.ok(&[
        "link",
        "add",
        "a",
        "b",
        "--mtu",
        "68",
        "--addr",
        "10.9.0.1/24",
        "--addr",
        "10.9.0.2/24",
    ]);
    assert!(
        s.sh("ip", &["-n", "a", "link", "show"])
            .stdout
            .contains("mtu 68 ")
    );
    assert!(s.ping("a", "10.9.0.2"));
    s.ok(&[
        "link",
        "add",
        "a",
        "b",
        "--ifname-a",
        "v6a",
        "--ifname-b",
        "v6b",
        "--mtu",
        "1280",
        "--addr",
        "fd00:9::1/64",
        "--addr",
        "fd00:9::2/64",
    ]);
    s.ok(&[
        "network",
        "create",
        "n",
        "--subnet",
        "10.5.0.0/24",
        "--mtu",
        "68",
    ]);
    s.ok(&[
        "network",
        "create",
        "m",
        "--subnet",
        "fd00:5::/64",
        "--mtu",
        "1280",
    ]);
    s.ok(&["netns", "rm", "a", "b"]);
    s.ok(&["network", "rm", "n"]);
    s.ok(&["network", "rm", "m"]);
    s.assert_clean();
}

#[test]
fn publishing_on_an_address_the_host_does_not_hold_is_refused() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    // The sandbox holds 203.0.113.1 (and loopback), nothing else.
    s.add_outside();
    s.ok(&["netns", "add", "a"]);
    s.ok(&[
        "network",
        "create",
        "good",
        "--subnet",
        "10.1.0.0/24",
        "--subnet",
        "fd00:1::/64",
    ]);
    let v4 = "host holds no address 192.0.2.1";
    refused(
        &s,
        &["a"],
        &[(
            &[
                "network",
                "connect",
                "good",
                "a",
                "--publish",
                "192.0.2.1:8080:80",
            ],
            &["connect netns a to network good", v4, "203.0.113.1"],
        )],
    );
    s.ok(&["network", "connect", "good", "a"]);
    refused(
        &s,
        &["a"],
        &[
            (
                &["port", "add", "a", "192.0.2.1:8080:80"],
                &["cannot publish 192.0.2.1:8080:80/tcp", v4, "203.0.113.1"],
            ),
            (
                &["port", "add", "a", "[2001:db8::1]:8080:80"],
                &["host holds no address 2001:db8::1", "assign it"],
            ),
            (
                &["port", "add", "nope", "8080:80"],
                &["netns nope not found"],
            ),
            (
                &["port", "rm", "nope", "8080:80"],
                &["netns nope not found"],
            ),
        ],
    );
    // Addresses the host holds, loopback and every address are fine; traffic flows.
    s.ok(&[
        "port",
        "add",
        "a",
        "203.0.113.1:8081:80",
        "127.0.0.1:8082:80",
        "0.0.0.0:8083:80",
        "[::]:8084:80",
    ]);
    let server = s.tcp_server("a", "0.0.0.0:80");
    assert!(s.tcp_hello("outside", "203.0.113.1:8081"));
    assert!(server.peer().is_some());
    s.ok(&["netns", "rm", "a", "outside"]);
    s.ok(&["network", "rm", "good"]);
    s.assert_clean();
}

#[test]
fn cni_netns_that_is_not_a_network_namespace_is_invalid_env() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let mk = s.sh("sh", &["-c", "touch /run/plain && mkdir -p /run/adir"]);
    assert_eq!(mk.code, 0, "{}", mk.stderr);
    s.ok(&["netns", "add", "a"]);
    let conf = cni_conf("lan", "10.50.0.0/24").to_string();
    let before = snapshot(&s, &["a"]);
    let cases = [
        ("/run/plain", 4, "is not a network namespace"),
        ("/run/adir", 4, "is not a network namespace"),
        (
            "/proc/self/ns/mnt",
            4,
            "is a mount namespace, not a network namespace",
        ),
        ("/run/netns/nope", 3, "does not exist"),
    ];
    for command in ["ADD", "CHECK"] {
        for (path, want, needle) in cases {
            let env = [
                ("CNI_COMMAND", command),
                ("CNI_CONTAINERID", "ctr1"),
                ("CNI_NETNS", path),
                ("CNI_IFNAME", "eth0"),
            ];
            let raw = d.raw("nsnet", &env, conf.as_bytes());
            let (code, msg) = raw.error();
            assert_eq!(code, want, "{command} {path}: {msg}");
            assert!(msg.contains(path) && msg.contains(needle), "{msg}");
            once(&msg);
            assert_eq!(
                snapshot(&s, &["a"]),
                before,
                "{command} {path} changed something"
            );
        }
    }
    for (table, n) in s.rows() {
        assert_eq!(n, 0, "{n} rows in {table}");
    }
    // DEL of an unmounted namespace file (what a runtime leaves after unmounting) succeeds.
    let env = [
        ("CNI_COMMAND", "DEL"),
        ("CNI_CONTAINERID", "ctr1"),
        ("CNI_NETNS", "/run/plain"),
        ("CNI_IFNAME", "eth0"),
    ];
    let raw = d.raw("nsnet", &env, conf.as_bytes());
    assert_eq!(raw.exit, 0, "{}{}", raw.stdout, raw.stderr);
    // A real namespace still works.
    let list = Conflist::single("1.0.0", cni_conf("lan", "10.50.0.0/24"));
    let rt = Runtime::new("ctr1", "/run/netns/a");
    let res = d.add(&list, &rt).unwrap_or_else(|e| panic!("{e}"));
    d.del(&list, &rt, Some(&res)).unwrap();
    s.sh("sh", &["-c", "rm -r /run/plain /run/adir"]);
    s.ok(&["netns", "rm", "a"]);
    // The CNI network went with its last attachment.
    s.assert_clean();
}

#[test]
fn wrapped_refusals_state_their_cause_once() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "a"]);
    s.ok(&["netns", "add", "b"]);
    s.ok(&["network", "create", "good", "--subnet", "10.1.0.0/24"]);
    s.ok(&["network", "connect", "good", "a", "--publish", "9001:80"]);
    // Interfaces made by hand: the kernel refuses, nsnet names what exists.
    for args in [
        &["-n", "b", "link", "add", "veth-a", "type", "bridge"][..],
        &["link", "add", "nsbr-taken", "type", "bridge"],
    ] {
        assert_eq!(s.sh("ip", args).code, 0);
    }
    let file = s.state_dir().join("clash.yaml");
    std::fs::write(
        &file,
        "name: clash\nnamespaces: [t1]\nnetworks:\n  good2:\n    subnets: [10.2.0.0/24]\n    endpoints:\n      t1: { publish: [\"9001:80\"] }\n",
    )
    .unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["network", "connect", "good", "a"],
            &[
                "connect netns a to network good: netns a is already connected to network good as eth0",
            ],
        ),
        (
            &["link", "add", "a", "b"],
            &["link netns a with netns b", "already exists"],
        ),
        (
            &["network", "create", "taken", "--subnet", "10.3.0.0/24"],
            &["create network taken", "bridge nsbr-taken already exists"],
        ),
        (
            &["network", "connect", "good", "b", "--publish", "9001:80"],
            &["host port 9001/tcp is already published"],
        ),
        (
            &["apply", "-f", file.to_str().unwrap()],
            &["host port 9001/tcp is already published"],
        ),
    ];
    for (args, needles) in cases {
        let err = s.fails(1, args, needles);
        once(&err);
    }
    s.sh("ip", &["-n", "b", "link", "del", "veth-a"]);
    s.sh("ip", &["link", "del", "nsbr-taken"]);
    s.nsnet(&["destroy", "-f", file.to_str().unwrap()]);
    for ns in s.netns_files() {
        s.ok(&["netns", "rm", &ns]);
    }
    for n in ["good", "good2"] {
        s.nsnet(&["network", "rm", n, "--force"]);
    }
    s.assert_clean();
}

/// The engine says what is in the way; the CLI names the flag that gets past it.
#[test]
fn the_cli_names_its_own_flags() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "a"]);
    s.ok(&["netns", "add", "b"]);
    s.ok(&["network", "create", "lan", "--subnet", "10.6.0.0/24"]);
    s.ok(&["network", "connect", "lan", "a", "--ifname", "eth3"]);
    s.ok(&["network", "create", "wan", "--subnet", "10.7.0.0/24"]);
    s.ok(&["network", "connect", "wan", "b"]);
    assert_eq!(
        s.sh("ip", &["link", "add", "br-mine", "type", "bridge"])
            .code,
        0
    );
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["network", "rm", "lan"],
            &["network lan still has 1 endpoint(s) (a); disconnect them or use --force"],
        ),
        (
            &[
                "network",
                "create",
                "n2",
                "--subnet",
                "10.8.0.0/24",
                "--bridge",
                "br-mine",
            ],
            &["bridge br-mine already exists on the host (choose another with --bridge)"],
        ),
        (
            &["network", "connect", "wan", "a", "--ifname", "eth3"],
            &[
                "interface eth3 in netns a is already used by network lan (choose another with --ifname)",
            ],
        ),
    ];
    for (args, needles) in cases {
        let err = s.fails(1, args, needles);
        once(&err);
    }
    assert_eq!(s.sh("ip", &["link", "del", "br-mine"]).code, 0);
    s.ok(&["netns", "rm", "a", "b"]);
    s.ok(&["network", "rm", "lan"]);
    s.ok(&["network", "rm", "wan"]);
    s.assert_clean();
}

/// `inspect --check` verifies each endpoint of a namespace against what nsnet made and names
/// what differs: the default routes of the primary endpoint only, addresses, the bridge, the
/// firewall elements. Exit 1 when anything does.
#[test]
fn inspect_check_names_what_differs() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "red"]);
    s.ok(&["network", "create", "lan", "--subnet", "10.9.0.0/24"]);
    s.ok(&["network", "create", "wan", "--subnet", "10.10.0.0/24"]);
    s.ok(&["network", "connect", "lan", "red", "--publish", "8080:80"]);
    // Not primary: no default route is expected of it.
    s.ok(&["network", "connect", "wan", "red"]);
    let out = s.ok(&["inspect", "red", "--check"]);
    assert!(out.contains("2 endpoint(s), no problems"), "{out}");
    let checked = |needles: &[&str]| {
        let r = s.nsnet(&["inspect", "red", "--check"]);
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        for n in needles {
            assert!(r.stdout.contains(n), "{n:?} not in {}", r.stdout);
        }
        assert!(r.stderr.contains("problem(s) in netns red"), "{}", r.stderr);
        r.stdout
    };
    assert_eq!(
        s.sh("ip", &["-n", "red", "route", "del", "default"]).code,
        0
    );
    let out = checked(&["lan       eth0        route 0.0.0.0/0 via 10.9.0.1 dev eth0 is missing"]);
    assert!(!out.contains("wan"), "{out}");
    assert_eq!(
        s.sh(
            "ip",
            &["-n", "red", "addr", "del", "10.10.0.2/24", "dev", "eth1"]
        )
        .code,
        0
    );
    checked(&["address 10.10.0.2/24 is missing on eth1"]);
    assert_eq!(s.sh("ip", &["link", "set", "nsbr-lan", "down"]).code, 0);
    checked(&["bridge nsbr-lan is down"]);
    assert_eq!(s.sh("nft", &["flush", "ruleset"]).code, 0);
    let r = s.nsnet(&["inspect", "red", "--check", "--format", "json"]);
    assert_eq!(r.code, 1);
    let found: Value = serde_json::from_str(&r.stdout).unwrap();
    let lan = found
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["network"] == "lan")
        .unwrap();
    let problems: Vec<&str> = lan["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        problems.contains(&"firewall element bridges \"nsbr-lan\" is missing"),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("firewall element pf_any4")),
        "the published port's element: {problems:?}"
    );
    s.ok(&["repair"]);
    assert_eq!(s.sh("ip", &["link", "set", "nsbr-lan", "up"]).code, 0);
    checked(&["route 0.0.0.0/0 via 10.9.0.1 dev eth0 is missing"]);
    // Back as nsnet made it (the primary's default route, wan's address): healthy again.
    assert_eq!(
        s.sh(
            "ip",
            &["-n", "red", "addr", "add", "10.10.0.2/24", "dev", "eth1"]
        )
        .code,
        0
    );
    assert_eq!(
        s.sh(
            "ip",
            &[
                "-n", "red", "route", "add", "default", "via", "10.9.0.1", "dev", "eth0"
            ]
        )
        .code,
        0
    );
    let out = s.ok(&["inspect", "red", "--check"]);
    assert!(out.contains("2 endpoint(s), no problems"), "{out}");
    s.ok(&["netns", "rm", "red"]);
    s.ok(&["network", "rm", "lan"]);
    s.ok(&["network", "rm", "wan"]);
    s.assert_clean();
}
