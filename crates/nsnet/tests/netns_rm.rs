//! `netns rm` of a namespace on three networks (its endpoints removed together, see the
//! engine's `bulk`): its veths, firewall elements (published ports, isolation), link and rows
//! go, the namespace it shared the networks with keeps working, and nothing is left.

mod common;

use common::{Sandbox, root};

#[test]
fn netns_on_three_networks_is_removed_with_nothing_left() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["network", "create", "n1", "--subnet", "10.50.0.0/24"]);
    s.ok(&["network", "create", "n2", "--subnet", "10.51.0.0/24"]);
    s.ok(&[
        "network",
        "create",
        "n3",
        "--subnet",
        "10.52.0.0/24",
        "--icc",
        "false",
    ]);
    for ns in ["a", "b"] {
        s.ok(&["netns", "add", ns]);
    }
    s.ok(&[
        "network",
        "connect",
        "n1",
        "a",
        "--ip",
        "10.50.0.2",
        "--publish",
        "9002:80",
    ]);
    s.ok(&[
        "network",
        "connect",
        "n2",
        "a",
        "--ip",
        "10.51.0.2",
        "--publish",
        "9003:80",
    ]);
    s.ok(&["network", "connect", "n3", "a", "--ip", "10.52.0.2"]);
    s.ok(&[
        "network",
        "connect",
        "n1",
        "b",
        "--ip",
        "10.50.0.3",
        "--publish",
        "9001:80",
    ]);
    s.ok(&["network", "connect", "n2", "b", "--ip", "10.51.0.3"]);
    s.ok(&[
        "link",
        "add",
        "a",
        "b",
        "--ifname-b",
        "pb",
        "--addr",
        "10.99.0.1/30",
        "--addr",
        "10.99.0.2/30",
    ]);
    let links_before = s.host_links().len();
    assert_eq!(links_before, 1 + 3 + 5, "lo, three bridges, five host ends");
    assert!(
        s.ping("b", "10.50.0.2") && s.ping("b", "10.51.0.2"),
        "b -> a"
    );
    assert!(s.ping("b", "10.99.0.1"), "b -> a over the link");
    let srv = s.tcp_server("a", "0.0.0.0:80");
    assert!(s.tcp_hello("host", "10.51.0.1:9003"), "a's published port");
    assert!(srv.peer().is_some());
    let ruleset = s.sh("nft", &["list", "ruleset"]).stdout;
    assert!(
        ruleset.contains("9002") && ruleset.contains("9003"),
        "{ruleset}"
    );

    let b_links = || {
        s.sh("ip", &["netns", "exec", "b", "ip", "-o", "link"])
            .stdout
    };
    assert!(b_links().contains(": pb@"), "{}", b_links());

    s.ok(&["netns", "rm", "a"]);
    assert_eq!(s.netns_files(), ["b"]);
    assert_eq!(
        s.host_links().len(),
        links_before - 3,
        "a's three host ends are gone: {:?}",
        s.host_links()
    );
    let ruleset = s.sh("nft", &["list", "ruleset"]).stdout;
    for gone in ["9002", "9003", "10.50.0.2", "10.51.0.2", "10.52.0.2"] {
        assert!(!ruleset.contains(gone), "{gone} left in {ruleset}");
    }
    let rows = s.json(&["netns", "ls"]);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows:#}");
    assert!(
        !b_links().contains(": pb@"),
        "the link went with a: {}",
        b_links()
    );
    // b, which shared two of the networks, keeps its addresses, routes and published port.
    let srv = s.tcp_server("b", "0.0.0.0:80");
    assert!(s.tcp_hello("host", "10.50.0.1:9001"), "b's published port");
    assert!(srv.peer().is_some());
    assert!(s.ping("b", "10.51.0.1"), "b on n2");
    assert!(!s.ping("b", "10.50.0.2"), "a's address answers no more");
    s.fails(1, &["netns", "rm", "a"], &["netns", "a"]);

    s.ok(&["netns", "rm", "b"]);
    for n in ["n1", "n2", "n3"] {
        s.ok(&["network", "rm", n]);
    }
    s.assert_clean();
}
