//! Bad input and failures halfway: a clear one-line error, exit code 1 (2 for usage), and
//! nothing changed — no veth, no address, no row.

mod common;

use common::{Sandbox, root};

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
                "100",
            ],
            &["invalid mtu", "576-65535"],
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
        assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
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
