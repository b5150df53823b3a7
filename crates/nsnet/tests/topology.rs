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
        &["bad.yaml:11:15: networks.v-net-0.subnets[0]: invalid subnet"],
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

/// The previous apply in the all-or-nothing tests: two networks, a published port, a shaped
/// link, a route and a container.
const BEFORE: &str = "name: t
namespaces: [a, b, c]
networks:
  n1:
    subnets: [10.71.0.0/24]
    endpoints:
      a: { ip: [10.71.0.10], publish: [\"8080:80\"] }
      b: { ip: [10.71.0.11] }
  n2:
    subnets: [10.72.0.0/24]
    endpoints:
      c: { ip: [10.72.0.10] }
links:
  - a: { netns: a, ifname: to-c, addr: 10.73.0.1/30, rate: 100mbit }
    b: { netns: c, ifname: to-a, addr: 10.73.0.2/30 }
routes:
  - { netns: c, dest: 198.51.100.0/24, via: 10.73.0.1 }
containers:
  old:
    command: [sleep, infinity]
    networks: [\"n1:10.71.0.20\"]
";

/// Everything a failed apply must leave as it was: store rows, interfaces, addresses and
/// routes of the sandbox and of every namespace, networks, endpoints, ports, links,
/// containers (live details such as pids and interface indexes left out).
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    rows: Vec<(&'static str, i64)>,
    netns: Vec<String>,
    host: Vec<String>,
    inside: Vec<String>,
    networks: Vec<serde_json::Value>,
    ports: serde_json::Value,
    links: serde_json::Value,
    containers: Vec<String>,
}

/// Lines of `ip -br addr`, `ip route` and `tc qdisc` output, sorted, without what differs
/// for a re-made interface that is the same to its users (its index, its random link-local
/// address) and without the operational state a bridge settles into on its own time.
fn sorted_lines(text: &str) -> Vec<String> {
    const OPER: [&str; 4] = ["UP", "DOWN", "UNKNOWN", "LOWERLAYERDOWN"];
    let mut v: Vec<String> = text
        .lines()
        .map(|l| {
            l.split_whitespace()
                .enumerate()
                .filter(|(i, w)| !(w.starts_with("fe80::") || (*i == 1 && OPER.contains(w))))
                .map(|(_, w)| w.split("@if").next().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    v.sort();
    v
}

fn snapshot(s: &Sandbox) -> Snapshot {
    let mut host = sorted_lines(&s.sh("ip", &["-br", "addr"]).stdout);
    host.extend(sorted_lines(&s.sh("ip", &["route"]).stdout));
    let netns = s.netns_files();
    let mut inside = Vec::new();
    for ns in &netns {
        inside.push(format!("netns {ns}"));
        inside.extend(sorted_lines(&s.sh("ip", &["-n", ns, "-br", "addr"]).stdout));
        inside.extend(sorted_lines(&s.sh("ip", &["-n", ns, "route"]).stdout));
        inside.extend(sorted_lines(&s.sh("tc", &["-n", ns, "qdisc"]).stdout));
    }
    let mut networks = Vec::new();
    for n in s.json(&["network", "ls"]).as_array().unwrap() {
        let mut detail = s.json(&["network", "inspect", n["name"].as_str().unwrap()]);
        for e in detail["endpoints"].as_array_mut().unwrap() {
            e.as_object_mut().unwrap().remove("id");
        }
        networks.push(detail);
    }
    let containers = s
        .json(&["ps", "-a"])
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{} {} {} {} {}",
                c["name"], c["state"], c["command"], c["networks"], c["ports"]
            )
        })
        .collect();
    Snapshot {
        rows: s.rows(),
        netns,
        host,
        inside,
        networks,
        ports: s.json(&["port", "ls"]),
        links: s.json(&["link", "ls"]),
        containers,
    }
}

/// The previous topology works: every path of BEFORE passes traffic.
fn before_works(s: &Sandbox) {
    assert!(s.ping("a", "10.71.0.11"), "a -> b on n1");
    assert!(s.ping("a", "10.73.0.2"), "a -> c over the link");
    assert!(s.ping("host", "10.72.0.10"), "host -> c on n2");
    assert!(s.ping("b", "10.71.0.20"), "b -> container old");
    let srv = s.tcp_server("a", "0.0.0.0:80");
    assert!(
        s.tcp_hello("host", "127.0.0.1:8080"),
        "published port 8080 -> a"
    );
    assert!(srv.peer().is_some());
}

/// A plan the check refuses changes nothing, though the same file also removes objects of
/// the previous apply: every kind of conflict with what exists, and a repeated key.
#[test]
fn an_apply_that_fails_its_checks_changes_nothing() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let v1 = write(&s, "before.yaml", BEFORE);
    s.ok(&["apply", "-f", &v1]);
    // Objects the topology does not own.
    s.ok(&["network", "create", "other", "--subnet", "10.90.0.0/16"]);
    s.ok(&["netns", "add", "z"]);
    s.ok(&["network", "connect", "other", "z", "--publish", "9090:80"]);
    s.ok(&["network", "connect", "n1", "z", "--ip", "10.71.0.30"]);
    s.ok(&["run", "-d", "--name", "web", "--", "sleep", "infinity"]);
    for cmd in [
        "ip link add dummy-x type veth peer name dummy-y",
        "ip addr add 10.91.0.1/24 dev dummy-x",
        "ip link set dummy-y up",
        "ip link set dummy-x up",
        "ip link add br-taken type bridge",
        "ip -n a link add to-d type veth peer name to-d2",
    ] {
        let w: Vec<&str> = cmd.split(' ').collect();
        assert_eq!(s.sh(w[0], &w[1..]).code, 0, "{cmd}");
    }
    // The next file drops c, n2, the link, the route and the container, and adds d on n3.
    let base = "name: t
namespaces: [a, b, d]
networks:
  n1:
    subnets: [10.71.0.0/24]
    endpoints:
      a: { ip: [10.71.0.10], publish: [\"8080:80\"] }
      b: { ip: [10.71.0.11] }
  n3:
    subnets: [10.74.0.0/24]
    endpoints:
      d: {}
";
    let with_b = |b: &str| base.replace("b: { ip: [10.71.0.11] }", b);
    type Setup = Option<(&'static [&'static str], &'static [&'static str])>;
    let cases: Vec<(String, &str, Setup)> = vec![
        (
            base.replace("10.74.0.0/24", "10.90.1.0/24"),
            "network n3: subnet 10.90.1.0/24 overlaps subnet 10.90.0.0/16 of network other",
            None,
        ),
        (
            base.replace("10.74.0.0/24", "10.91.0.0/24"),
            "network n3: subnet 10.91.0.0/24 overlaps route 10.91.0.0/24 already on the host (dev dummy-x)",
            None,
        ),
        (
            base.replace(
                "subnets: [10.74.0.0/24]",
                "subnets: [10.74.0.0/24]\n    bridge: br-taken",
            ),
            "network n3: bridge br-taken already exists on the host",
            None,
        ),
        (
            with_b("b: { ip: [10.71.0.11], publish: [\"9090:80\"] }"),
            "host port 9090/tcp is already published (9090:80/tcp, netns z on network other)",
            None,
        ),
        (
            with_b("b: { ip: [10.71.0.11], publish: [\"9191:80\"] }"),
            "host port 9191/tcp is already in use on the host",
            None,
        ),
        (
            with_b("b: { ip: [10.71.0.11] }\n      d: { ip: [10.71.0.30] }"),
            "endpoint d on network n1: address 10.71.0.30 is already used by netns z on network n1",
            None,
        ),
        (
            base.replace("[a, b, d]", "[a, b, d, web]")
                .replace("      d: {}\n", "      d: {}\n      web: {}\n"),
            "namespace web: container web already has a network namespace of that name",
            None,
        ),
        (
            format!(
                "{base}links:\n  - a: {{ netns: a, ifname: to-d }}\n    b: {{ netns: d, ifname: to-a }}\n"
            ),
            "interface to-d already exists in netns a",
            None,
        ),
        (
            base.to_string(),
            "network n2: netns z is connected to it and was not connected by topology t",
            Some((
                &["network", "connect", "n2", "z"],
                &["network", "disconnect", "n2", "z"],
            )),
        ),
        (
            format!("{base}containers:\n  z:\n    command: [sleep, infinity]\n"),
            "container z: netns z already exists",
            None,
        ),
        (
            format!("{base}  other:\n    subnets: [10.95.0.0/24]\n"),
            "network other: it exists and was not made by topology t",
            None,
        ),
        (
            format!("{base}containers:\n  x:\n    command: [no-such-command-here]\n"),
            "container x: ",
            None,
        ),
        (
            base.replace("  n3:\n", "  n3:\n    subnets: [10.77.0.0/24]\n  n3:\n"),
            "key \"n3\" is given twice",
            None,
        ),
    ];
    let before = snapshot(&s);
    for (i, (text, needle, setup)) in cases.iter().enumerate() {
        let file = write(&s, &format!("v2-{i}.yaml"), text);
        if let Some((up, _)) = setup {
            s.ok(up);
        }
        // A listener on the host holds 9191 while the apply runs.
        let (stop, listening) = std::sync::mpsc::channel::<()>();
        let (ready, is_ready) = std::sync::mpsc::channel();
        let listener = s.in_ns("host", move || {
            let l = std::net::TcpListener::bind("0.0.0.0:9191").unwrap();
            ready.send(()).unwrap();
            let _ = listening.recv();
            drop(l);
        });
        is_ready.recv().unwrap();
        let snap = if setup.is_some() {
            snapshot(&s)
        } else {
            before.clone()
        };
        let err = s.fails(1, &["apply", "-f", &file], &[needle]);
        eprintln!("case {i}: {}", err.trim());
        if !needle.contains("given twice") {
            assert!(err.contains("(nothing was changed)"), "{err}");
            s.fails(1, &["plan", "-f", &file], &[needle]);
        }
        stop.send(()).unwrap();
        listener.join().unwrap();
        assert_eq!(snapshot(&s), snap, "case {i} ({needle}) changed something");
        if let Some((_, down)) = setup {
            s.ok(down);
        }
        assert!(plan(&s, &v1).is_empty(), "case {i}: {:?}", plan(&s, &v1));
    }
    before_works(&s);
    // The same file without the conflicts applies.
    let ok = write(&s, "v2.yaml", base);
    s.ok(&["apply", "-f", &ok]);
    assert!(plan(&s, &ok).is_empty());
    assert!(s.ping("a", "10.71.0.11"));
}

/// A step the kernel refuses part-way (the last: a container whose command cannot be
/// executed), after the apply removed a namespace, a network, a link, a route, a published
/// port and a container of the previous apply and created others: everything is undone and
/// remade, proven by traffic and a plan with no changes against the previous file.
#[test]
fn an_apply_that_fails_part_way_is_rolled_back() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let v1 = write(&s, "before.yaml", BEFORE);
    s.ok(&["apply", "-f", &v1]);
    before_works(&s);
    let before = snapshot(&s);
    // Executable, but its interpreter does not exist: execve fails, only when the container
    // starts.
    let bad = s.state_dir().join("bad.sh");
    std::fs::write(&bad, "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // The port moves from a to b and the new container takes old's address: the removals
    // must come first, so the failure comes after all of them.
    let v2 = format!(
        "name: t
namespaces: [a, b, d]
networks:
  n1:
    subnets: [10.71.0.0/24]
    endpoints:
      a: {{ ip: [10.71.0.10] }}
      b: {{ ip: [10.71.0.11], publish: [\"8080:80\"] }}
      d: {{}}
  n3:
    subnets: [10.74.0.0/24]
    endpoints:
      d: {{}}
links:
  - a: {{ netns: a, ifname: to-b, addr: 10.75.0.1/30 }}
    b: {{ netns: b, ifname: to-a, addr: 10.75.0.2/30 }}
containers:
  bad:
    command: [{}]
    networks: [\"n1:10.71.0.20\"]
",
        bad.display()
    );
    let v2 = write(&s, "after.yaml", &v2);
    let steps = plan(&s, &v2);
    assert_eq!(steps[0], "- container old", "{steps:?}");
    assert!(
        steps.last().unwrap().starts_with("+ container bad"),
        "{steps:?}"
    );
    let err = s.fails(
        1,
        &["apply", "-f", &v2],
        &[
            "+ container bad",
            "the apply was rolled back",
            "bad.sh",
            "No such file",
        ],
    );
    eprintln!("{}", err.trim());
    assert!(!err.contains("failed too"), "{err}");
    assert_eq!(snapshot(&s), before);
    assert!(plan(&s, &v1).is_empty(), "{:?}", plan(&s, &v1));
    before_works(&s);
    // And the previous file still owns what it made: destroy leaves nothing.
    s.ok(&["destroy", "-f", &v1]);
    s.assert_clean();
}
