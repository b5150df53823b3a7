//! The crash harness: every command killed (SIGKILL, through the `NSNET_CRASH_AT` hook) at
//! every point between two kernel changes, then `nsnet gc`, then an audit of the store against
//! the kernel. The audit allows the old state or the new, never a half: no row in a transient
//! state, no row without its kernel objects, no kernel object without its row, no port row
//! without its firewall element. Then the command runs again (or turns out done already), and
//! the result is proven with traffic and torn down to nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::Stdio;

use common::{NSNET, Run, Sandbox, root};
use nsnet_core::firewall;
use nsnet_store::{RowState, Store, StoreError};

/// One command to kill at each of its crash points.
struct Scenario {
    name: &'static str,
    /// Brings a fresh sandbox to the state before the command.
    setup: &'static [&'static [&'static str]],
    /// The command (nsnet arguments, or a CNI call).
    cmd: Cmd,
    /// A namespace whose published port 9001 on the gateway 10.50.0.1 must answer after the
    /// command, when it has one.
    serves: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Cmd {
    Cli(&'static [&'static str]),
    Cni(&'static str),
}

const BASE: &[&[&str]] = &[
    &["network", "create", "n1", "--subnet", "10.50.0.0/24"],
    &["network", "create", "n2", "--subnet", "10.51.0.0/24"],
    &["netns", "add", "a"],
    &["netns", "add", "b"],
];

/// Namespace `a` on both networks (primary on n1) with a published port, `b` on n1, and a
/// point-to-point link between them.
const CONNECTED: &[&[&str]] = &[
    &["network", "create", "n1", "--subnet", "10.50.0.0/24"],
    &["network", "create", "n2", "--subnet", "10.51.0.0/24"],
    &["netns", "add", "a"],
    &["netns", "add", "b"],
    &["network", "connect", "n1", "a", "--publish", "9001:80"],
    &["network", "connect", "n2", "a"],
    &["network", "connect", "n1", "b"],
    &[
        "link",
        "add",
        "a",
        "b",
        "--ifname-a",
        "pa",
        "--ifname-b",
        "pb",
        "--addr",
        "10.99.0.1/30",
        "--addr",
        "10.99.0.2/30",
    ],
];

const CNI_CONF: &str = r#"{
  "cniVersion": "1.0.0",
  "name": "cninet",
  "type": "nsnet",
  "bridge": "cni0",
  "isGateway": true,
  "ipMasq": true,
  "capabilities": { "portMappings": true },
  "ipam": {
    "type": "host-local",
    "ranges": [[{ "subnet": "10.60.0.0/24" }]],
    "routes": [{ "dst": "0.0.0.0/0" }]
  },
  "runtimeConfig": {
    "portMappings": [{ "hostPort": 9100, "containerPort": 80, "protocol": "tcp" }]
  }
}"#;

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "network connect --publish",
            setup: BASE,
            cmd: Cmd::Cli(&["network", "connect", "n1", "a", "--publish", "9001:80"]),
            serves: Some("a"),
        },
        Scenario {
            name: "network disconnect (primary: n2 takes the default route)",
            setup: CONNECTED,
            cmd: Cmd::Cli(&["network", "disconnect", "n1", "a"]),
            serves: None,
        },
        Scenario {
            name: "port add",
            setup: &[
                &["network", "create", "n1", "--subnet", "10.50.0.0/24"],
                &["netns", "add", "a"],
                &["network", "connect", "n1", "a"],
            ],
            cmd: Cmd::Cli(&["port", "add", "a", "9001:80"]),
            serves: Some("a"),
        },
        Scenario {
            name: "port rm",
            setup: CONNECTED,
            cmd: Cmd::Cli(&["port", "rm", "a", "9001:80"]),
            serves: None,
        },
        Scenario {
            name: "netns rm",
            setup: CONNECTED,
            cmd: Cmd::Cli(&["netns", "rm", "a"]),
            serves: None,
        },
        Scenario {
            name: "network create",
            setup: &[],
            cmd: Cmd::Cli(&["network", "create", "n1", "--subnet", "10.50.0.0/24"]),
            serves: None,
        },
        Scenario {
            name: "network rm --force",
            setup: CONNECTED,
            cmd: Cmd::Cli(&["network", "rm", "n1", "--force"]),
            serves: None,
        },
        Scenario {
            // The tables go before the row, while the bridge is deleted on a helper thread.
            name: "last network rm --force",
            setup: &[
                &["network", "create", "n1", "--subnet", "10.50.0.0/24"],
                &["netns", "add", "a"],
                &["network", "connect", "n1", "a", "--publish", "9001:80"],
            ],
            cmd: Cmd::Cli(&["network", "rm", "n1", "--force"]),
            serves: None,
        },
        Scenario {
            name: "link rm",
            setup: CONNECTED,
            cmd: Cmd::Cli(&["link", "rm", "a", "b"]),
            serves: None,
        },
        Scenario {
            name: "CNI ADD",
            setup: &[&["netns", "add", "a"]],
            cmd: Cmd::Cni("ADD"),
            serves: None,
        },
        Scenario {
            name: "CNI DEL",
            setup: &[&["netns", "add", "a"]],
            cmd: Cmd::Cni("DEL"),
            serves: None,
        },
        Scenario {
            // Its three endpoints go together (one claim, one firewall transaction, one
            // unregister batch, one row deletion); `b`, left on n1, keeps its published port.
            name: "batched netns rm (3 networks)",
            setup: &[
                &["network", "create", "n1", "--subnet", "10.50.0.0/24"],
                &["network", "create", "n2", "--subnet", "10.51.0.0/24"],
                &[
                    "network",
                    "create",
                    "n3",
                    "--subnet",
                    "10.52.0.0/24",
                    "--icc",
                    "false",
                ],
                &["netns", "add", "a"],
                &["netns", "add", "b"],
                &["network", "connect", "n1", "a", "--publish", "9002:80"],
                &["network", "connect", "n2", "a", "--publish", "9003:80"],
                &["network", "connect", "n3", "a"],
                &["network", "connect", "n1", "b", "--publish", "9001:80"],
                &[
                    "link",
                    "add",
                    "a",
                    "b",
                    "--ifname-a",
                    "pa",
                    "--ifname-b",
                    "pb",
                    "--addr",
                    "10.99.0.1/30",
                    "--addr",
                    "10.99.0.2/30",
                ],
            ],
            cmd: Cmd::Cli(&["netns", "rm", "a"]),
            serves: Some("b"),
        },
    ]
}

fn cni(s: &Sandbox, command: &str, crash_at: Option<u32>) -> Run {
    let mut c = s.command(NSNET, &[]);
    c.env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", "crash0")
        .env("CNI_NETNS", "/run/netns/a")
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(k) = crash_at {
        c.env("NSNET_CRASH_AT", k.to_string());
    }
    // The CNI face takes its store from the configuration only.
    let mut conf: serde_json::Value = serde_json::from_str(CNI_CONF).unwrap();
    conf["stateDir"] = s.state_dir().to_str().unwrap().into();
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(conf.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn run(s: &Sandbox, cmd: Cmd, crash_at: Option<u32>) -> Run {
    match cmd {
        Cmd::Cli(args) => {
            let mut c = s.command(NSNET, args);
            if let Some(k) = crash_at {
                c.env("NSNET_CRASH_AT", k.to_string());
            }
            let out = c.output().unwrap();
            Run {
                code: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        }
        Cmd::Cni(command) => cni(s, command, crash_at),
    }
}

fn json(s: &Sandbox, program: &str, args: &[&str]) -> serde_json::Value {
    let r = s.sh(program, args);
    assert_eq!(r.code, 0, "{program} {args:?}: {}", r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null)
}

/// Interface name -> master, in a namespace of the sandbox ("host" for its own).
fn links(s: &Sandbox, ns: &str) -> BTreeMap<String, Option<String>> {
    let v = if ns == "host" {
        json(s, "ip", &["-j", "link", "show"])
    } else {
        json(s, "ip", &["-n", ns, "-j", "link", "show"])
    };
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|l| {
                    (
                        l["ifname"].as_str().unwrap().to_string(),
                        l["master"].as_str().map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Element counts of nsnet's sets and maps, by (family, name); None when the tables are gone.
fn fw_counts(s: &Sandbox) -> Option<BTreeMap<(String, String), usize>> {
    let v = json(s, "nft", &["-j", "list", "ruleset"]);
    let mut out = BTreeMap::new();
    let mut tables = 0;
    for item in v["nftables"].as_array().into_iter().flatten() {
        if item["table"]["name"] == firewall::TABLE {
            tables += 1;
        }
        for kind in ["set", "map"] {
            let set = &item[kind];
            if set["table"] == firewall::TABLE {
                let n = set["elem"].as_array().map_or(0, Vec::len);
                out.insert(
                    (
                        set["family"].as_str().unwrap().to_string(),
                        set["name"].as_str().unwrap().to_string(),
                    ),
                    n,
                );
            }
        }
    }
    (tables > 0).then_some(out)
}

/// The name of a namespace as a row holds it: CNI endpoints record the path the runtime gave.
fn ns_name(netns: &str) -> String {
    netns.trim_start_matches("/run/netns/").to_string()
}

fn family(f: u8) -> String {
    if f == firewall::FAMILY_BRIDGE {
        "bridge".into()
    } else {
        "inet".into()
    }
}

/// What is wrong between the store and the kernel (empty: a whole state).
fn audit(s: &Sandbox) -> Vec<String> {
    let mut problems = Vec::new();
    let mut store = Store::open(s.state_dir()).unwrap();
    let (networks, endpoints, link_rows, ports) = store
        .read(|tx| {
            Ok::<_, StoreError>((
                tx.networks()?,
                tx.endpoints()?,
                tx.links()?,
                tx.ports(None)?,
            ))
        })
        .unwrap();
    for n in &networks {
        if n.state != RowState::Ready {
            problems.push(format!("network {} is {}", n.spec.name(), n.state.name()));
        }
    }
    for e in &endpoints {
        if e.state != RowState::Ready {
            problems.push(format!("endpoint {} is {}", e.host_ifname, e.state.name()));
        }
    }
    for l in &link_rows {
        if l.state != RowState::Ready {
            problems.push(format!("link {} is {}", l.a.ifname, l.state.name()));
        }
    }

    // Host namespace: exactly lo, the bridges, the endpoints' host ends and link ends.
    let host = links(s, "host");
    let mut expected: BTreeMap<String, Option<String>> = BTreeMap::new();
    expected.insert("lo".into(), None);
    for n in &networks {
        expected.insert(n.spec.bridge().to_string(), None);
    }
    for e in &endpoints {
        let bridge = networks
            .iter()
            .find(|n| *n.spec.name() == e.network)
            .map(|n| n.spec.bridge().to_string());
        expected.insert(e.host_ifname.to_string(), bridge);
    }
    for l in &link_rows {
        for end in [&l.a, &l.b] {
            if end.netns == "host" {
                expected.insert(end.ifname.to_string(), None);
            }
        }
    }
    if host != expected {
        problems.push(format!("host links {host:?}, rows say {expected:?}"));
    }

    // Each namespace: exactly lo, its endpoints' and its link ends' interfaces, with addresses.
    let namespaces = s.netns_files();
    let mut in_ns: BTreeMap<String, BTreeSet<String>> = namespaces
        .iter()
        .map(|n| (n.clone(), BTreeSet::from(["lo".to_string()])))
        .collect();
    for e in &endpoints {
        match in_ns.get_mut(&ns_name(&e.netns)) {
            Some(set) => {
                set.insert(e.ifname.to_string());
            }
            None => problems.push(format!("endpoint row in missing netns {}", e.netns)),
        }
    }
    for l in &link_rows {
        for end in [&l.a, &l.b] {
            if end.netns != "host" {
                match in_ns.get_mut(&end.netns) {
                    Some(set) => {
                        set.insert(end.ifname.to_string());
                    }
                    None => problems.push(format!("link row in missing netns {}", end.netns)),
                }
            }
        }
    }
    for (ns, want) in &in_ns {
        let have: BTreeSet<String> = links(s, ns).into_keys().collect();
        if &have != want {
            problems.push(format!("netns {ns} has {have:?}, rows say {want:?}"));
        }
    }
    for e in &endpoints {
        let ns = ns_name(&e.netns);
        if !in_ns.contains_key(&ns) {
            continue;
        }
        let v = json(
            s,
            "ip",
            &["-n", &ns, "-j", "addr", "show", "dev", e.ifname.as_str()],
        );
        let have: BTreeSet<String> = v[0]["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["scope"] == "global")
            .map(|a| a["local"].as_str().unwrap().to_string())
            .collect();
        let want: BTreeSet<String> = e.ips().map(|ip| ip.to_string()).collect();
        if have != want {
            problems.push(format!(
                "{} in netns {} has {have:?}, row says {want:?}",
                e.ifname, e.netns
            ));
        }
    }
    // The primary endpoint (oldest on a non-internal network, not a CNI attachment, whose
    // routes come from its configuration) carries the namespace's default route.
    for ns in in_ns.keys() {
        let mine: Vec<_> = endpoints
            .iter()
            .filter(|e| &ns_name(&e.netns) == ns)
            .collect();
        let Some(primary) = mine.iter().find(|e| {
            networks
                .iter()
                .any(|n| *n.spec.name() == e.network && !n.spec.internal())
        }) else {
            continue;
        };
        if primary.container_id.is_some() {
            continue;
        }
        let v = json(s, "ip", &["-n", ns, "-j", "route", "show", "default"]);
        let devs: Vec<&str> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["dev"].as_str())
            .collect();
        if devs != [primary.ifname.as_str()] {
            problems.push(format!(
                "netns {ns}: default route via {devs:?}, primary is {}",
                primary.ifname
            ));
        }
    }

    // Firewall: each set holds exactly the elements the rows own.
    let mut want: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut elems = Vec::new();
    for n in &networks {
        elems.extend(firewall::network_elements(&n.spec));
        for e in endpoints.iter().filter(|e| e.network == *n.spec.name()) {
            elems.extend(firewall::endpoint_elements(&n.spec, e.host_ifname.as_str()));
            let ips: Vec<_> = e.ips().collect();
            for p in ports.iter().filter(|p| p.endpoint == e.id) {
                elems.extend(firewall::port_elements(&p.mapping, &ips));
            }
        }
    }
    for el in elems {
        *want.entry((family(el.family), el.set.clone())).or_default() += 1;
    }
    // Empty tables may outlive the last network (a CNI network that goes with its last
    // attachment leaves them, so the next ADD needs no `nft` process); their elements may not.
    match fw_counts(s) {
        None if networks.is_empty() => {}
        None => problems.push("nsnet's firewall tables are gone".into()),
        Some(mut have) => {
            have.retain(|_, n| *n > 0);
            if have != want {
                problems.push(format!("firewall elements {have:?}, rows say {want:?}"));
            }
        }
    }
    problems
}

/// Runs the scenario's command killed at point 1, 2, ... until it completes; after each kill,
/// `gc` and the audit; then the command again; then traffic and a clean teardown.
fn exercise(sc: &Scenario) -> Vec<String> {
    let mut covered = Vec::new();
    for k in 1.. {
        let s = Sandbox::new();
        for args in sc.setup {
            s.ok(args);
        }
        if matches!(sc.cmd, Cmd::Cni("DEL")) {
            let r = cni(&s, "ADD", None);
            assert_eq!(r.code, 0, "CNI ADD: {}{}", r.stdout, r.stderr);
        }
        let r = run(&s, sc.cmd, Some(k));
        let point = r
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("nsnet: crash point "))
            .map(str::to_string);
        let Some(point) = point else {
            // No crash point left: the command ran to its end.
            assert!(
                k > 1,
                "{}: the command reached no crash point: {}{}",
                sc.name,
                r.stdout,
                r.stderr
            );
            assert_eq!(r.code, 0, "{}: {}{}", sc.name, r.stdout, r.stderr);
            break;
        };
        assert_eq!(r.code, -1, "{}: killed by its signal at {point}", sc.name);
        let gc = s.nsnet(&["gc"]);
        assert_eq!(
            gc.code, 0,
            "{} at {point}: gc: {}{}",
            sc.name, gc.stdout, gc.stderr
        );
        let problems = audit(&s);
        assert!(
            problems.is_empty(),
            "{}: killed at {point}, after gc:\n  {}",
            sc.name,
            problems.join("\n  ")
        );
        // Old state or new: running the command again finishes the job (or finds it done).
        let again = run(&s, sc.cmd, None);
        let done_already = again.code == 1
            && ["not found", "already"]
                .iter()
                .any(|w| again.stderr.contains(w) || again.stdout.contains(w));
        assert!(
            again.code == 0 || done_already,
            "{} killed at {point}: the command again: {}{}",
            sc.name,
            again.stdout,
            again.stderr
        );
        let problems = audit(&s);
        assert!(
            problems.is_empty(),
            "{}: killed at {point}, gc, then again:\n  {}",
            sc.name,
            problems.join("\n  ")
        );
        if let Some(ns) = sc.serves {
            let server = s.tcp_server(ns, "0.0.0.0:80");
            assert!(
                s.tcp_hello("host", "10.50.0.1:9001"),
                "{} killed at {point}: published port does not answer",
                sc.name
            );
            assert!(server.peer().is_some());
        }
        teardown(&s);
        covered.push(point);
    }
    covered
}

/// Removes everything, the regular way, and checks nothing is left.
fn teardown(s: &Sandbox) {
    if s.netns_files().iter().any(|n| n == "a") {
        let r = cni(s, "DEL", None);
        assert_eq!(r.code, 0, "CNI DEL: {}{}", r.stdout, r.stderr);
    }
    for ns in s.netns_files() {
        s.ok(&["netns", "rm", &ns]);
    }
    let mut store = Store::open(s.state_dir()).unwrap();
    let networks = store.read(|tx| tx.networks()).unwrap();
    for n in networks {
        s.ok(&["network", "rm", n.spec.name().as_str(), "--force"]);
    }
    s.assert_clean();
    let left: usize = fw_counts(s).unwrap_or_default().values().sum();
    assert_eq!(left, 0, "firewall elements left");
}

fn check(name: &str) {
    if !root() {
        return;
    }
    let sc = scenarios()
        .into_iter()
        .find(|s| s.name.starts_with(name))
        .unwrap();
    let covered = exercise(&sc);
    eprintln!("{}: {} crash points covered", sc.name, covered.len());
    for p in &covered {
        eprintln!("  {p}");
    }
}

#[test]
fn crash_connect() {
    check("network connect");
}

#[test]
fn crash_disconnect() {
    check("network disconnect");
}

#[test]
fn crash_port_add() {
    check("port add");
}

#[test]
fn crash_port_rm() {
    check("port rm");
}

#[test]
fn crash_netns_rm() {
    check("netns rm");
}

#[test]
fn crash_netns_rm_batched() {
    check("batched netns rm");
}

#[test]
fn crash_network_create() {
    check("network create");
}

#[test]
fn crash_network_rm() {
    check("network rm");
}

#[test]
fn crash_last_network_rm() {
    check("last network rm");
}

#[test]
fn crash_link_rm() {
    check("link rm");
}

#[test]
fn crash_cni_add() {
    check("CNI ADD");
}

#[test]
fn crash_cni_del() {
    check("CNI DEL");
}

/// Runtimes call DEL more than once, close together (podman on `stop` and again on `rm`), and
/// users run removals in parallel: concurrent removers of one object leave it whole or gone,
/// and the next ADD or connect of the same port works.
#[test]
fn concurrent_removers_leave_a_whole_state() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    for args in BASE {
        s.ok(args);
    }
    for round in 0..8 {
        let r = cni(&s, "ADD", None);
        assert_eq!(r.code, 0, "round {round}: ADD: {}{}", r.stdout, r.stderr);
        s.ok(&["network", "connect", "n1", "b", "--publish", "9001:80"]);
        std::thread::scope(|scope| {
            let dels: Vec<_> = (0..3)
                .map(|_| scope.spawn(|| cni(&s, "DEL", None)))
                .collect();
            let disconnects: Vec<_> = (0..3)
                .map(|_| scope.spawn(|| s.nsnet(&["network", "disconnect", "n1", "b"])))
                .collect();
            for d in dels {
                let r = d.join().unwrap();
                assert_eq!(r.code, 0, "round {round}: DEL: {}{}", r.stdout, r.stderr);
            }
            let ok = disconnects
                .into_iter()
                .map(|d| d.join().unwrap())
                .filter(|r| {
                    assert!(
                        r.code == 0 || r.stderr.contains("not found"),
                        "round {round}: disconnect: {}{}",
                        r.stdout,
                        r.stderr
                    );
                    r.code == 0
                })
                .count();
            assert!(ok >= 1, "round {round}: no disconnect succeeded");
        });
        let problems = audit(&s);
        assert!(
            problems.is_empty(),
            "round {round}: after concurrent removals:\n  {}",
            problems.join("\n  ")
        );
    }
    teardown(&s);
}
