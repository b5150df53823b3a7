//! The seed walkthrough, step by step, each step proven with real traffic inside a sandbox.

mod common;

use common::{Sandbox, root};

#[test]
fn namespaces_are_isolated_and_iproute2_compatible() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "red"]);
    // Only lo inside, and it is up.
    let detail = s.json(&["inspect", "red"]);
    let ifaces = detail["interfaces"].as_array().unwrap();
    assert_eq!(ifaces.len(), 1);
    assert_eq!(ifaces[0]["name"], "lo");
    assert_eq!(ifaces[0]["up"], true);
    // `ip netns` sees nsnet's namespace and nsnet sees iproute2's.
    assert!(s.sh("ip", &["netns", "list"]).stdout.contains("red"));
    assert_eq!(s.sh("ip", &["netns", "add", "green"]).code, 0);
    let list = s.json(&["netns", "ls"]);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["green", "red"]);
    // `ip netns exec` works on nsnet's namespace; nsnet's exec applies /etc/netns/NAME.
    let r = s.sh("ip", &["netns", "exec", "red", "ip", "-o", "link"]);
    assert_eq!(r.stdout.lines().count(), 1, "{}", r.stdout);
    s.sh("mkdir", &["-p", "/etc/netns/red"]);
    s.sh(
        "sh",
        &[
            "-c",
            "echo 'nameserver 198.51.100.53' > /etc/netns/red/resolv.conf",
        ],
    );
    let r = s.nsnet(&["netns", "exec", "red", "--", "cat", "/etc/resolv.conf"]);
    assert_eq!(r.stdout.trim(), "nameserver 198.51.100.53");
    s.fails(1, &["netns", "add", "red"], &["netns red already exists"]);
    s.ok(&["netns", "rm", "red", "green"]);
    s.fails(1, &["netns", "rm", "red"], &["netns red not found"]);
    s.assert_clean();
}

#[test]
fn direct_veth_joins_red_and_blue() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "red"]);
    s.ok(&["netns", "add", "blue"]);
    assert!(!s.ping("red", "192.168.15.2"));
    s.ok(&[
        "link",
        "add",
        "red",
        "blue",
        "--ifname-a",
        "veth-red",
        "--ifname-b",
        "veth-blue",
        "--addr",
        "192.168.15.1/24",
        "--addr",
        "192.168.15.2/24",
    ]);
    assert!(s.ping("red", "192.168.15.2"));
    assert!(s.ping("blue", "192.168.15.1"));
    let links = s.json(&["link", "ls"]);
    assert_eq!(links[0]["ifname_a"], "veth-red");
    assert_eq!(links[0]["addr_b"], "192.168.15.2/24");
    s.ok(&["link", "rm", "blue", "red"]);
    assert!(!s.ping("red", "192.168.15.2"));
    assert!(s.json(&["link", "ls"]).as_array().unwrap().is_empty());
    // Default names: veth-PEER.
    s.ok(&["link", "add", "red", "blue"]);
    assert!(
        s.json(&["inspect", "red"])["interfaces"]
            .to_string()
            .contains("veth-blue")
    );
    s.ok(&["netns", "rm", "red", "blue"]);
    s.assert_clean();
}

#[test]
fn bridge_network_with_gateway_reaches_host() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "red"]);
    s.ok(&["netns", "add", "blue"]);
    s.ok(&[
        "network",
        "create",
        "v-net-0",
        "--subnet",
        "192.168.15.0/24",
        "--gateway",
        "192.168.15.5",
        "--bridge",
        "v-net-0",
    ]);
    let red = s.json(&["network", "connect", "v-net-0", "red"]);
    let blue = s.json(&["network", "connect", "v-net-0", "blue"]);
    assert_eq!(red["addrs"][0], "192.168.15.1/24");
    assert_eq!(blue["addrs"][0], "192.168.15.2/24");
    assert!(s.ping("red", "192.168.15.2"));
    assert!(s.ping("blue", "192.168.15.1"));
    // The gateway address on the bridge is what lets the host reach them (seed:
    // `ip addr add 192.168.15.5/24 dev v-net-0`): without it, no; with it, yes.
    assert!(s.ping("host", "192.168.15.1"));
    assert_eq!(
        s.sh("ip", &["addr", "del", "192.168.15.5/24", "dev", "v-net-0"])
            .code,
        0
    );
    assert!(!s.ping("host", "192.168.15.1"));
    assert_eq!(
        s.sh("ip", &["addr", "add", "192.168.15.5/24", "dev", "v-net-0"])
            .code,
        0
    );
    assert!(s.ping("host", "192.168.15.1"));
    // Endpoints have their default route via the gateway.
    let routes = s.json(&["route", "ls", "red"]);
    let default = routes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["dest"] == "0.0.0.0/0")
        .unwrap();
    assert_eq!(default["via"], "192.168.15.5");
    // inspect: subnets, gateway, endpoints, usage.
    let net = s.json(&["network", "inspect", "v-net-0"]);
    assert_eq!(net["subnets"][0]["gateway"], "192.168.15.5");
    assert_eq!(net["endpoints"].as_array().unwrap().len(), 2);
    assert_eq!(net["usage"][0]["used"], 2);
    assert_eq!(net["usage"][0]["free"], 251);
    s.fails(
        1,
        &["network", "rm", "v-net-0"],
        &["still has 2 endpoint(s)"],
    );
    s.ok(&["network", "disconnect", "v-net-0", "red"]);
    assert!(!s.ping("blue", "192.168.15.1"));
    s.ok(&["network", "rm", "v-net-0", "--force"]);
    s.ok(&["netns", "rm", "red", "blue"]);
    s.assert_clean();
}

#[test]
fn route_through_host_reaches_second_network() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    for ns in ["blue", "lan"] {
        s.ok(&["netns", "add", ns]);
    }
    s.ok(&[
        "network",
        "create",
        "v-net-0",
        "--subnet",
        "192.168.15.0/24",
        "--gateway",
        "192.168.15.5",
    ]);
    // The connect gives blue a default route; remove it to see the seed's explicit route work.
    s.ok(&["network", "connect", "v-net-0", "blue"]);
    s.ok(&["route", "rm", "blue", "0.0.0.0/0"]);
    // The host's LAN: a namespace joined to the host by a veth.
    s.ok(&[
        "link",
        "add",
        "host",
        "lan",
        "--ifname-a",
        "eth-lan",
        "--ifname-b",
        "eth0",
        "--addr",
        "192.168.1.1/24",
        "--addr",
        "192.168.1.2/24",
    ]);
    s.ok(&[
        "route",
        "add",
        "lan",
        "192.168.15.0/24",
        "via",
        "192.168.1.1",
    ]);
    assert!(!s.ping("blue", "192.168.1.2"), "reachable without a route");
    s.ok(&[
        "route",
        "add",
        "blue",
        "192.168.1.0/24",
        "via",
        "192.168.15.5",
    ]);
    assert!(s.ping("blue", "192.168.1.2"));
    // `default via` works too (the seed's `ip route add default via 192.168.15.5`).
    s.ok(&["route", "rm", "blue", "192.168.1.0/24"]);
    assert!(!s.ping("blue", "192.168.1.2"));
    s.ok(&["route", "add", "blue", "default", "via", "192.168.15.5"]);
    assert!(s.ping("blue", "192.168.1.2"));
    let routes = s.json(&["route", "ls", "blue"]);
    assert!(
        routes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["dest"] == "0.0.0.0/0" && r["managed_by"] == "route")
    );
    s.fails(
        1,
        &["route", "add", "blue", "default", "via", "192.168.15.5"],
        &["already exists"],
    );
    s.fails(
        1,
        &["route", "rm", "blue", "10.99.0.0/16"],
        &["route 10.99.0.0/16 in netns blue not found"],
    );
    // Removing a namespace removes its endpoints, links and routes first.
    s.ok(&["netns", "rm", "lan", "blue"]);
    s.ok(&["network", "rm", "v-net-0"]);
    s.assert_clean();
}

#[test]
fn dual_stack_network() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.ok(&["netns", "add", "a"]);
    s.ok(&["netns", "add", "b"]);
    s.ok(&[
        "network",
        "create",
        "ds",
        "--subnet",
        "10.20.0.0/24",
        "--subnet",
        "fd00:20::/64",
    ]);
    let a = s.json(&["network", "connect", "ds", "a"]);
    s.json(&["network", "connect", "ds", "b"]);
    assert_eq!(a["addrs"][1], "fd00:20::2/64");
    // No DAD delay: usable at once.
    assert!(s.ping("a", "fd00:20::3"));
    assert!(s.ping("b", "10.20.0.2"));
    assert!(s.ping("host", "fd00:20::2"));
    let routes = s.json(&["route", "ls", "a"]);
    assert!(
        routes
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["dest"] == "::/0" && r["via"] == "fd00:20::1")
    );
    s.ok(&["netns", "rm", "a", "b"]);
    s.ok(&["network", "rm", "ds"]);
    s.assert_clean();
}

#[test]
fn second_network_and_primary_takeover() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    for ns in ["red", "peer"] {
        s.ok(&["netns", "add", ns]);
    }
    s.ok(&["network", "create", "one", "--subnet", "10.1.0.0/24"]);
    s.ok(&["network", "create", "two", "--subnet", "10.2.0.0/24"]);
    let one = s.json(&["network", "connect", "one", "red"]);
    let two = s.json(&["network", "connect", "two", "red"]);
    assert_eq!(
        (one["ifname"].as_str(), one["primary"].as_bool()),
        (Some("eth0"), Some(true))
    );
    assert_eq!(
        (two["ifname"].as_str(), two["primary"].as_bool()),
        (Some("eth1"), Some(false))
    );
    s.ok(&["network", "connect", "two", "peer"]);
    assert!(s.ping("red", "10.2.0.3"));
    s.ok(&["network", "disconnect", "one", "red"]);
    let routes = s.json(&["route", "ls", "red"]);
    let default = routes
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["dest"] == "0.0.0.0/0")
        .unwrap();
    assert_eq!(
        (default["via"].as_str(), default["dev"].as_str()),
        (Some("10.2.0.1"), Some("eth1"))
    );
    let inspect = s.json(&["inspect", "red"]);
    assert_eq!(inspect["networks"][0]["primary"], true);
    s.ok(&["network", "rm", "one"]);
    s.ok(&["network", "rm", "two", "--force"]);
    s.ok(&["netns", "rm", "red", "peer"]);
    s.assert_clean();
}
