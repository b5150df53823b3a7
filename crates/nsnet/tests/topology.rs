//! Topology files end to end: apply -> plan shows nothing -> edit -> plan shows exactly the
//! edit -> apply -> traffic proves it -> drift by hand -> plan shows it -> apply repairs ->
//! destroy leaves nothing (and nothing else is touched).

mod common;

use common::{Sandbox, root};

const SEED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/seed.yaml");

fn write(s: &Sandbox, name: &str, text: &str) -> String {
    let p = s.state_dir().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn plan(s: &Sandbox, file: &str) -> Vec<String> {
    s.json(&["plan", "-f", file])
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn seed_topology_lifecycle_with_drift_repair() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    // Something the file does not own: it must survive destroy.
    s.ok(&["netns", "add", "bystander"]);
    let applied = s.json(&["apply", "-f", SEED]);
    assert!(applied.as_array().unwrap().len() >= 8, "{applied}");
    assert!(
        plan(&s, SEED).is_empty(),
        "second plan not empty: {:?}",
        plan(&s, SEED)
    );
    assert!(s.ok(&["apply", "-f", SEED]).contains("no changes"));
    // The seed's end state, with traffic.
    assert!(s.ping("red", "10.15.0.2"), "direct veth");
    assert!(s.ping("red", "192.168.15.2"), "bridge");
    assert!(s.ping("host", "192.168.15.1"), "host via the gateway");
    assert!(
        s.ping("blue", "192.168.1.2"),
        "route through the host to the LAN"
    );
    let srv = s.tcp_server("blue", "0.0.0.0:80");
    assert!(s.tcp_hello("lan", "192.168.1.1:80"), "published port 80");
    assert_eq!(srv.peer().unwrap().to_string(), "192.168.1.2");

    // Edit: publish a port on red, shape the direct link, add a namespace.
    let seed = std::fs::read_to_string(SEED).unwrap();
    let edited = seed
        .replace(
            "red: { ip: [192.168.15.1] }",
            "red: { ip: [192.168.15.1], publish: [\"8080:80\"] }",
        )
        .replace(
            "- a: { netns: red, ifname: veth-red, addr: 10.15.0.1/24 }",
            "- a: { netns: red, ifname: veth-red, addr: 10.15.0.1/24, rate: 10mbit }",
        )
        .replace(
            "namespaces: [red, blue, lan]",
            "namespaces: [red, blue, lan, extra]",
        );
    let edited_file = write(&s, "edited.yaml", &edited);
    assert_eq!(
        plan(&s, &edited_file),
        [
            "+ netns extra",
            "+ ports of red: 8080:80/tcp",
            "~ shaping red:veth-red: none -> rate 10mbit",
        ]
    );
    s.ok(&["apply", "-f", &edited_file]);
    assert!(plan(&s, &edited_file).is_empty());
    let srv = s.tcp_server("red", "0.0.0.0:80");
    assert!(s.tcp_hello("lan", "192.168.1.1:8080"), "new published port");
    assert!(srv.peer().is_some());
    let red = s.json(&["inspect", "red"]);
    let veth = red["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "veth-red")
        .unwrap();
    assert_eq!(veth["shaping"]["rate_bps"], 10_000_000);

    // Drift by hand: blue's veth and a route disappear; plan shows it, apply repairs it.
    let net = s.json(&["network", "inspect", "v-net-0"]);
    let blue_veth = net["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["netns"] == "blue")
        .unwrap()["host_ifname"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.sh("ip", &["-n", "blue", "route", "del", "192.168.1.0/24"])
            .code,
        0
    );
    assert_eq!(s.sh("ip", &["link", "del", &blue_veth]).code, 0);
    assert!(!s.ping("red", "192.168.15.2"));
    let drift = plan(&s, &edited_file);
    assert_eq!(drift.len(), 2, "{drift:?}");
    assert!(
        drift[0].starts_with("~ endpoint blue on v-net-0") && drift[0].contains("drift: host veth"),
        "{drift:?}"
    );
    assert!(
        drift[1].starts_with("~ route blue 192.168.1.0/24 via 192.168.15.5: re-add, drift"),
        "{drift:?}"
    );
    s.ok(&["apply", "-f", &edited_file]);
    assert!(plan(&s, &edited_file).is_empty());
    assert!(s.ping("red", "192.168.15.2"), "endpoint not repaired");
    assert!(s.ping("blue", "192.168.1.2"), "route not repaired");
    let srv = s.tcp_server("blue", "0.0.0.0:80");
    assert!(
        s.tcp_hello("lan", "192.168.1.1:80"),
        "published port after repair"
    );
    assert!(srv.peer().is_some());

    // Removing a namespace from the file removes it and what hangs on it.
    let smaller = edited
        .replace("namespaces: [red, blue, lan, extra]", "namespaces: [red, blue, extra]")
        .replace("  - a: { netns: host, ifname: eth-lan, addr: 192.168.1.1/24 }\n    b: { netns: lan, ifname: eth0, addr: 192.168.1.2/24 }\n", "");
    let smaller_file = write(&s, "smaller.yaml", &smaller);
    let p = plan(&s, &smaller_file);
    assert_eq!(
        p,
        [
            "- link host:eth-lan (192.168.1.1/24) <-> lan:eth0 (192.168.1.2/24)",
            "- netns lan"
        ]
    );
    s.ok(&["apply", "-f", &smaller_file]);
    assert!(!s.netns_files().contains(&"lan".to_string()));

    // An invalid file points at its line and applies nothing.
    let before = s.rows();
    let bad = write(
        &s,
        "bad.yaml",
        &smaller.replace("subnets: [192.168.15.0/24]", "subnets: [192.168.15.0/33]"),
    );
    s.fails(
        1,
        &["apply", "-f", &bad],
        &["bad.yaml:11: networks.v-net-0.subnets[0]: invalid subnet"],
    );
    assert_eq!(s.rows(), before);

    // Destroy: everything the file created goes, the bystander stays.
    s.ok(&["destroy", "-f", &smaller_file]);
    assert_eq!(s.netns_files(), ["bystander"]);
    s.ok(&["netns", "rm", "bystander"]);
    s.assert_clean();
    let tables = s.sh("nft", &["list", "tables"]).stdout;
    assert!(!tables.contains("nsnet"), "{tables}");
}

#[test]
fn three_tier_example_and_graph() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/three-tier.yaml"
    );
    s.ok(&["apply", "-f", file]);
    // app reaches db on the internal network; web cannot reach db; db reaches nothing outside.
    let db = s.json(&["network", "inspect", "back"]);
    let db_ip = db["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["netns"] == "db")
        .unwrap()["addrs"][0]
        .as_str()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(s.ping("app", &db_ip));
    assert!(!s.ping("web", &db_ip));
    let srv = s.tcp_server("web", "0.0.0.0:80");
    assert!(
        s.tcp_hello("host", "127.0.0.1:8080"),
        "web's published port"
    );
    assert!(srv.peer().is_some());
    let dot = s.ok(&["graph", "-f", file]);
    assert!(dot.starts_with("graph nsnet {"));
    for needle in [
        "\"net:front\"",
        "\"net:back\"",
        "\"ns:web\"",
        "8080:80/tcp",
        "internal",
    ] {
        assert!(dot.contains(needle), "{needle} not in {dot}");
    }
    s.ok(&["destroy", "-f", file]);
    s.assert_clean();
}

#[test]
fn generated_200_namespace_topology() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let mut yaml = String::from("name: big\nnamespaces:\n");
    for i in 0..200 {
        yaml.push_str(&format!("  - n{i}\n"));
    }
    yaml.push_str("networks:\n  east:\n    subnets: [10.60.0.0/24]\n    endpoints:\n");
    for i in 0..100 {
        yaml.push_str(&format!("      n{i}: {{}}\n"));
    }
    yaml.push_str("  west:\n    subnets: [10.61.0.0/24]\n    endpoints:\n");
    for i in 100..200 {
        yaml.push_str(&format!("      n{i}: {{}}\n"));
    }
    yaml.push_str("links:\n");
    for i in (0..200).step_by(4) {
        yaml.push_str(&format!("  - a: {{ netns: n{i}, addr: 10.62.{}.1/30 }}\n    b: {{ netns: n{}, addr: 10.62.{}.2/30 }}\n", i / 4, i + 1, i / 4));
    }
    let file = write(&s, "big.yaml", &yaml);
    let start = std::time::Instant::now();
    s.ok(&["apply", "-f", &file]);
    let took = start.elapsed();
    eprintln!(
        "apply of a generated 200-namespace topology (200 netns, 2 networks, 200 endpoints, 50 links): {:.2}s",
        took.as_secs_f64()
    );
    let start = std::time::Instant::now();
    assert!(plan(&s, &file).is_empty());
    eprintln!(
        "plan of the same, converged: {:.2}s",
        start.elapsed().as_secs_f64()
    );
    assert!(s.ping("n0", "10.60.0.101"));
    assert!(s.ping("n0", "10.62.0.2"));
    s.ok(&["destroy", "-f", &file]);
    s.assert_clean();
}

#[test]
fn containers_in_a_topology_file() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/containers.yaml"
    );
    s.ok(&["apply", "-f", file]);
    assert!(plan(&s, file).is_empty(), "{:?}", plan(&s, file));
    let ps = s.json(&["ps"]);
    assert_eq!(ps.as_array().unwrap().len(), 2, "{ps}");
    // By name, through the hosts files nsnet writes.
    let r = s.nsnet(&["exec", "api", "--", "ping", "-c", "1", "-W", "1", "worker"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("10.20.0.50"), "{}", r.stdout);
    // An edit replaces only that container.
    let text = std::fs::read_to_string(file)
        .unwrap()
        .replace("env: [ROLE=api]", "env: [ROLE=gateway]");
    let edited = write(&s, "pair.yaml", &text);
    assert_eq!(
        plan(&s, &edited),
        ["~ container api (sleep infinity): replace, environment changed"]
    );
    s.ok(&["apply", "-f", &edited]);
    assert!(plan(&s, &edited).is_empty());
    // A container killed behind nsnet's back is drift: apply brings it back.
    let pid = s
        .json(&["ps"])
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "worker")
        .unwrap()["pid"]
        .as_u64()
        .unwrap();
    assert_eq!(s.sh("kill", &["-9", &pid.to_string()]).code, 0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        plan(&s, &edited),
        ["~ container worker (sleep infinity): replace, drift: it is not running"]
    );
    s.ok(&["apply", "-f", &edited]);
    assert!(plan(&s, &edited).is_empty());
    s.ok(&["destroy", "-f", &edited]);
    s.assert_clean();
}
