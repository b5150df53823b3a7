//! NAT masquerade, published ports, isolation and living with the host's firewall, each proven
//! with real TCP/UDP traffic inside a sandbox. "Outside" is a namespace joined to the sandbox
//! by a veth with documentation addresses (203.0.113.0/24, 2001:db8::/64).

mod common;

use common::{Sandbox, root};

/// A sandbox with an uplink to "outside" (host 203.0.113.1, outside 203.0.113.2) and a
/// second host address towards "side" (198.51.100.1 / .2).
fn world() -> Sandbox {
    let s = Sandbox::new();
    s.add_outside();
    s.ok(&["netns", "add", "side"]);
    s.ok(&[
        "link",
        "add",
        "host",
        "side",
        "--ifname-a",
        "side0",
        "--ifname-b",
        "eth0",
        "--addr",
        "198.51.100.1/24",
        "--addr",
        "198.51.100.2/24",
    ]);
    // IPv6 on the uplink, for dual-stack publishing.
    s.add_outside_v6();
    s
}

fn teardown(s: &Sandbox, nets: &[&str]) {
    for ns in s.netns_files() {
        s.ok(&["netns", "rm", &ns]);
    }
    for n in nets {
        s.ok(&["network", "rm", n, "--force"]);
    }
    let tables = s.sh("nft", &["list", "tables"]);
    assert!(
        !tables.stdout.contains("nsnet"),
        "tables left: {}",
        tables.stdout
    );
    s.assert_clean();
}

#[test]
fn masquerade_hides_containers_behind_the_uplink() {
    if !root() {
        return;
    }
    for brnf in [true, false] {
        let s = world();
        s.br_netfilter(brnf);
        s.ok(&["netns", "add", "web"]);
        s.ok(&["network", "create", "lan", "--subnet", "10.88.0.0/24"]);
        s.ok(&["network", "connect", "lan", "web"]);
        let server = s.tcp_server("outside", "203.0.113.2:9000");
        assert!(
            s.tcp_hello("web", "203.0.113.2:9000"),
            "egress failed (br_netfilter {brnf})"
        );
        assert_eq!(
            server.peer().unwrap().to_string(),
            "203.0.113.1",
            "not masqueraded"
        );
        let server = s.udp_server("outside", "203.0.113.2:9001");
        assert!(s.udp_hello("web", "203.0.113.2:9001"));
        assert_eq!(server.peer().unwrap().to_string(), "203.0.113.1");
        // --no-masquerade: the outside sees the container's own address (given a route back).
        s.ok(&["netns", "add", "plain"]);
        s.ok(&[
            "network",
            "create",
            "direct",
            "--subnet",
            "10.89.0.0/24",
            "--no-masquerade",
        ]);
        s.ok(&["network", "connect", "direct", "plain"]);
        s.ok(&[
            "route",
            "add",
            "outside",
            "10.89.0.0/24",
            "via",
            "203.0.113.1",
        ]);
        let server = s.tcp_server("outside", "203.0.113.2:9002");
        assert!(s.tcp_hello("plain", "203.0.113.2:9002"));
        assert_eq!(server.peer().unwrap().to_string(), "10.89.0.2");
        teardown(&s, &["lan", "direct"]);
    }
}

#[test]
fn published_ports_answer_on_every_path() {
    if !root() {
        return;
    }
    for brnf in [true, false] {
        let s = world();
        s.br_netfilter(brnf);
        for ns in ["web", "peer"] {
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
        s.ok(&[
            "network",
            "connect",
            "lan",
            "web",
            "--publish",
            "8080:80",
            "--publish",
            "5353:53/udp",
        ]);
        s.ok(&["network", "connect", "lan", "peer"]);
        let ctx = format!("br_netfilter {brnf}");
        // From a client on the uplink: the container sees the client's own address.
        let srv = s.tcp_server("web", "0.0.0.0:80");
        assert!(
            s.tcp_hello("outside", "203.0.113.1:8080"),
            "{ctx}: outside tcp"
        );
        assert_eq!(
            srv.peer().unwrap().to_string(),
            "203.0.113.2",
            "{ctx}: source not preserved"
        );
        let srv = s.udp_server("web", "0.0.0.0:53");
        assert!(
            s.udp_hello("outside", "203.0.113.1:5353"),
            "{ctx}: outside udp"
        );
        assert_eq!(srv.peer().unwrap().to_string(), "203.0.113.2");
        // From the host itself: its uplink address, its second address, and 127.0.0.1.
        for dst in ["203.0.113.1:8080", "198.51.100.1:8080", "127.0.0.1:8080"] {
            let srv = s.tcp_server("web", "0.0.0.0:80");
            assert!(s.tcp_hello("host", dst), "{ctx}: host -> {dst}");
            assert!(srv.peer().is_some());
        }
        let srv = s.udp_server("web", "0.0.0.0:53");
        assert!(
            s.udp_hello("host", "127.0.0.1:5353"),
            "{ctx}: host udp -> 127.0.0.1"
        );
        assert!(srv.peer().is_some());
        // From another container via the host's address, and hairpin: from itself.
        for client in ["peer", "web"] {
            let srv = s.tcp_server("web", "0.0.0.0:80");
            assert!(
                s.tcp_hello(client, "203.0.113.1:8080"),
                "{ctx}: {client} -> published port"
            );
            assert!(srv.peer().is_some());
            let srv = s.udp_server("web", "0.0.0.0:53");
            assert!(
                s.udp_hello(client, "203.0.113.1:5353"),
                "{ctx}: {client} -> published udp port"
            );
            assert!(srv.peer().is_some());
        }
        // IPv6 on the dual-stack network: any-address mappings cover the host's IPv6 too.
        let srv = s.tcp_server("web", "[::]:80");
        assert!(
            s.tcp_hello("outside", "[2001:db8::1]:8080"),
            "{ctx}: outside tcp6"
        );
        assert_eq!(srv.peer().unwrap().to_string(), "2001:db8::2");
        s.fails(1, &["port", "add", "web", "[::1]:8443:443"], &["::1"]);
        teardown(&s, &["lan"]);
    }
}

#[test]
fn bound_ports_ranges_and_live_publishing() {
    if !root() {
        return;
    }
    let s = world();
    s.ok(&["netns", "add", "web"]);
    s.ok(&["network", "create", "lan", "--subnet", "10.88.0.0/24"]);
    s.ok(&["network", "connect", "lan", "web"]);
    // Published on a running endpoint, without reconnecting it; bound to one host address.
    s.ok(&["port", "add", "web", "203.0.113.1:8081:80"]);
    let srv = s.tcp_server("web", "0.0.0.0:80");
    assert!(s.tcp_hello("outside", "203.0.113.1:8081"));
    assert!(srv.peer().is_some());
    let srv = s.tcp_server("web", "0.0.0.0:80");
    assert!(
        !s.tcp_hello("side", "198.51.100.1:8081"),
        "reachable through another host address"
    );
    assert!(srv.peer().is_none());
    // A range maps port to port.
    s.ok(&["port", "add", "web", "9000-9002:7000-7002"]);
    for (host, cont) in [(9000, 7000), (9002, 7002)] {
        let srv = s.tcp_server("web", &format!("0.0.0.0:{cont}"));
        assert!(s.tcp_hello("outside", &format!("203.0.113.1:{host}")));
        assert!(srv.peer().is_some());
    }
    let ls = s.json(&["port", "ls", "web"]);
    assert_eq!(ls.as_array().unwrap().len(), 4);
    assert!(s.ok(&["inspect", "web"]).contains("9001:7001/tcp"));
    // Conflicts: published already, or a server already listens on the host.
    s.fails(
        1,
        &["port", "add", "web", "9001:80"],
        &["host port 9001/tcp is already published"],
    );
    let _listener = s
        .in_ns("host", || {
            std::net::TcpListener::bind("0.0.0.0:7777").unwrap()
        })
        .join()
        .unwrap();
    s.fails(
        1,
        &["port", "add", "web", "7777:80"],
        &["host port 7777/tcp is already in use on the host"],
    );
    // Removal stops the forwarding.
    s.ok(&["port", "rm", "web", "203.0.113.1:8081:80"]);
    let srv = s.tcp_server("web", "0.0.0.0:80");
    assert!(!s.tcp_hello("outside", "203.0.113.1:8081"));
    assert!(srv.peer().is_none());
    teardown(&s, &["lan"]);
}

#[test]
fn networks_are_isolated_except_published_ports() {
    if !root() {
        return;
    }
    for brnf in [true, false] {
        let s = world();
        s.br_netfilter(brnf);
        for ns in ["a1", "a2", "b1", "q1", "q2", "i1", "i2"] {
            s.ok(&["netns", "add", ns]);
        }
        s.ok(&[
            "network",
            "create",
            "neta",
            "--subnet",
            "10.91.0.0/24",
            "--subnet",
            "fd00:91::/64",
        ]);
        s.ok(&[
            "network",
            "create",
            "netb",
            "--subnet",
            "10.92.0.0/24",
            "--subnet",
            "fd00:92::/64",
        ]);
        s.ok(&[
            "network",
            "create",
            "quiet",
            "--subnet",
            "10.93.0.0/24",
            "--icc=false",
        ]);
        s.ok(&[
            "network",
            "create",
            "inner",
            "--subnet",
            "10.94.0.0/24",
            "--internal",
        ]);
        s.ok(&["network", "connect", "neta", "a1"]);
        s.ok(&["network", "connect", "neta", "a2"]);
        s.ok(&["network", "connect", "netb", "b1", "--publish", "8090:80"]);
        s.ok(&["network", "connect", "quiet", "q1"]);
        s.ok(&["network", "connect", "quiet", "q2"]);
        s.ok(&["network", "connect", "inner", "i1"]);
        s.ok(&["network", "connect", "inner", "i2"]);
        let ctx = format!("br_netfilter {brnf}");
        // Same network: allowed. Across networks, v4 and v6: dropped. Published port: allowed.
        assert!(s.ping("a1", "10.91.0.3"), "{ctx}");
        assert!(!s.ping("a1", "10.92.0.2"), "{ctx}: a1 reached b1 directly");
        assert!(
            !s.ping("a1", "fd00:92::2"),
            "{ctx}: a1 reached b1 over IPv6"
        );
        let srv = s.tcp_server("b1", "0.0.0.0:80");
        assert!(
            !s.tcp_hello("a1", "10.92.0.2:80"),
            "{ctx}: direct tcp across networks"
        );
        assert!(srv.peer().is_none());
        let srv = s.tcp_server("b1", "0.0.0.0:80");
        assert!(
            s.tcp_hello("a1", "203.0.113.1:8090"),
            "{ctx}: published port across networks"
        );
        assert!(srv.peer().is_some());
        // icc=false: endpoints of one network cannot talk, but still reach the gateway and out.
        assert!(
            !s.ping("q1", "10.93.0.3"),
            "{ctx}: icc=false let q1 reach q2"
        );
        assert!(s.ping("q1", "10.93.0.1"), "{ctx}: gateway");
        assert!(
            s.ping("q1", "203.0.113.2"),
            "{ctx}: egress from icc=false network"
        );
        // Internal: talk inside, nothing outside.
        assert!(s.ping("i1", "10.94.0.3"), "{ctx}: internal peers");
        assert!(
            !s.ping("i1", "203.0.113.2"),
            "{ctx}: internal reached outside"
        );
        assert!(
            !s.ping("i1", "10.91.0.2"),
            "{ctx}: internal reached another network"
        );
        assert!(
            !s.ping("a1", "10.94.0.2"),
            "{ctx}: another network reached internal"
        );
        teardown(&s, &["neta", "netb", "quiet", "inner"]);
    }
}

#[test]
fn admin_default_drop_table_and_repair() {
    if !root() {
        return;
    }
    let s = world();
    s.ok(&["netns", "add", "web"]);
    s.ok(&["network", "create", "lan", "--subnet", "10.88.0.0/24"]);
    s.ok(&["network", "connect", "lan", "web", "--publish", "8080:80"]);
    // An admin's own default-drop forward chain, with the documented accept rule.
    let admin = "table inet admin {\n chain forward {\n  type filter hook forward priority 0; policy drop;\n  ct mark & 0x01000000 == 0x01000000 accept\n }\n}\n";
    let file = s.state_dir().join("admin.nft");
    std::fs::write(&file, admin).unwrap();
    let r = s.sh("nft", &["-f", file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        s.ping("web", "203.0.113.2"),
        "egress blocked by the admin table"
    );
    let srv = s.tcp_server("web", "0.0.0.0:80");
    assert!(
        s.tcp_hello("outside", "203.0.113.1:8080"),
        "published port blocked by the admin table"
    );
    assert!(srv.peer().is_some());
    // Without the accept rule the admin table drops nsnet's traffic: the rule is what matters.
    assert_eq!(
        s.sh("nft", &["flush", "chain", "inet", "admin", "forward"])
            .code,
        0
    );
    assert!(!s.ping("web", "203.0.113.2"));
    assert_eq!(s.sh("nft", &["delete", "table", "inet", "admin"]).code, 0);
    // Someone flushes the whole ruleset: forwarding stops; repair brings everything back.
    assert_eq!(s.sh("nft", &["flush", "ruleset"]).code, 0);
    let srv = s.tcp_server("web", "0.0.0.0:80");
    assert!(!s.tcp_hello("outside", "203.0.113.1:8080"));
    assert!(srv.peer().is_none());
    let report = s.json(&["repair"]);
    assert_eq!(report["ports"], 1);
    let srv = s.tcp_server("web", "0.0.0.0:80");
    assert!(
        s.tcp_hello("outside", "203.0.113.1:8080"),
        "repair did not restore the published port"
    );
    assert!(srv.peer().is_some());
    let srv = s.tcp_server("outside", "203.0.113.2:9000");
    assert!(s.tcp_hello("web", "203.0.113.2:9000"));
    assert_eq!(
        srv.peer().unwrap().to_string(),
        "203.0.113.1",
        "repair did not restore masquerade"
    );
    teardown(&s, &["lan"]);
}

#[test]
fn teardown_removes_what_is_left_when_an_element_was_deleted_by_hand() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "web"]);
    s.ok(&[
        "network",
        "create",
        "lan",
        "--subnet",
        "10.88.0.0/24",
        "--icc=false",
    ]);
    s.ok(&[
        "network",
        "connect",
        "lan",
        "web",
        "--publish",
        "8080:80",
        "--publish",
        "8081:81",
    ]);
    let r = s.sh(
        "nft",
        &[
            "delete",
            "element",
            "inet",
            "nsnet",
            "pf_any4",
            "{ tcp . 8080 }",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    s.ok(&["network", "disconnect", "lan", "web"]);
    let maps = s.sh("nft", &["list", "table", "inet", "nsnet"]).stdout;
    assert!(!maps.contains("8081"), "element left behind: {maps}");
    let bridge = s.sh("nft", &["list", "table", "bridge", "nsnet"]).stdout;
    assert!(
        !bridge.contains("nsv"),
        "noicc element left behind: {bridge}"
    );
    s.ok(&["network", "rm", "lan"]);
    s.ok(&["netns", "rm", "web"]);
    s.assert_clean();
}
