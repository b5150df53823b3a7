//! CNI networks that come and go, driven like libcni drives plugins (see `cnidriver`): a
//! network a configuration created goes with its last attachment, ADDs racing with that
//! removal recreate it, a new network may take an unused one's subnet, and the state
//! directory comes from the configuration, never from an environment some calls lack.

mod cnidriver;
mod common;

use cnidriver::{Conflist, Driver, Runtime};
use common::{Sandbox, root};
use serde_json::{Value, json};

fn plugin(name: &str, subnet: &str) -> Value {
    json!({
        "type": "nsnet",
        "name": name,
        "bridge": format!("cni-{name}"),
        "isGateway": true,
        "ipMasq": true,
        "capabilities": {"portMappings": true},
        "ipam": {
            "type": "host-local",
            "routes": [{"dst": "0.0.0.0/0"}],
            "ranges": [[{"subnet": subnet}]]
        }
    })
}

fn netns(s: &Sandbox, name: &str) -> String {
    s.ok(&["netns", "add", name]);
    format!("/run/netns/{name}")
}

fn count(s: &Sandbox, table: &str) -> i64 {
    s.rows().into_iter().find(|(t, _)| *t == table).unwrap().1
}

/// Elements in nsnet's firewall sets and maps (the skeleton itself may stay).
fn fw_elements(s: &Sandbox) -> Vec<String> {
    let r = s.sh("nft", &["list", "ruleset"]);
    r.stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("elements"))
        .map(|l| l.trim().to_string())
        .collect()
}

fn assert_nothing_left(s: &Sandbox) {
    for ns in s.netns_files() {
        s.ok(&["netns", "rm", &ns]);
    }
    assert_eq!(
        fw_elements(s),
        Vec::<String>::new(),
        "firewall elements left"
    );
    s.assert_clean();
}

#[test]
fn adds_racing_with_the_networks_removal_recreate_it() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let list = Conflist::single("1.0.0", plugin("race", "10.77.0.0/24"));
    let (workers, rounds) = (3, 40);
    for w in 0..workers {
        netns(&s, &format!("w{w}"));
    }
    // Each worker attaches and detaches its own containers; whenever the last one leaves,
    // its DEL removes the network while the others' ADDs are on their way. Few workers, so
    // the network is often empty (without the ADD's retry, both of two runs failed with
    // "network race is still being created").
    let failures: Vec<String> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (d, list, s) = (&d, &list, &s);
                sc.spawn(move || {
                    let mut failures = Vec::new();
                    for r in 0..rounds {
                        let rt = Runtime::new(&format!("w{w}-{r}"), &format!("/run/netns/w{w}"));
                        match d.add(list, &rt) {
                            Ok(res) => {
                                if r % 8 == 0 && !s.ping(&format!("w{w}"), "10.77.0.1") {
                                    failures.push(format!("w{w}-{r}: gateway unreachable"));
                                }
                                if let Err(e) = d.del(list, &rt, Some(&res)) {
                                    failures.push(format!("w{w}-{r} DEL: {e}"));
                                }
                            }
                            Err(e) => failures.push(format!("w{w}-{r} ADD: {e}")),
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(count(&s, "networks"), 0);
    assert_nothing_left(&s);
}

#[test]
fn a_network_removed_and_defined_anew_with_its_subnet() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    s.add_outside();
    let d = Driver::new(&s);
    let ns = netns(&s, "c1");
    // `podman network rm a; podman network create b --subnet <a's>`, then the same name
    // with another subnet and bridge (a conflist edited in place).
    for (port, (name, subnet, bridge)) in (18080..).zip([
        ("a", "10.231.0.0/24", "cni-a"),
        ("b", "10.231.0.0/24", "cni-b"),
        ("b", "10.232.0.0/24", "cni-b2"),
    ]) {
        let mut p = plugin(name, subnet);
        p["bridge"] = json!(bridge);
        let list = Conflist::single("1.0.0", p);
        let rt = Runtime::new(&format!("ctr-{name}-{bridge}"), &ns).cap(
            "portMappings",
            json!([{"hostPort": port, "containerPort": 80, "protocol": "tcp"}]),
        );
        let res = d
            .add(&list, &rt)
            .unwrap_or_else(|e| panic!("{name} {subnet}: {e}"));
        let gw = subnet.replace(".0/24", ".1");
        assert_eq!(res["ips"][0]["gateway"], gw.as_str(), "{res}");
        assert!(s.host_links().contains(&bridge.to_string()));
        let server = s.tcp_server("c1", "0.0.0.0:80");
        assert!(
            s.tcp_hello("outside", &format!("203.0.113.1:{port}")),
            "{name}: published port unreachable"
        );
        assert!(server.peer().is_some());
        d.del(&list, &rt, Some(&res)).unwrap();
        // The network went with its attachment: bridge, row, elements.
        assert!(
            !s.host_links().contains(&bridge.to_string()),
            "{bridge} left"
        );
        assert_eq!(count(&s, "networks"), 0);
        assert_eq!(fw_elements(&s), Vec::<String>::new());
    }
    assert_nothing_left(&s);
}

#[test]
fn the_state_directory_comes_from_the_configuration_not_the_environment() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let ns = netns(&s, "c1");
    let state = s.state_dir().display().to_string();
    let mut conf = plugin("lan", "10.60.0.0/24");
    conf["cniVersion"] = json!("1.0.0");
    let env = |cmd: &'static str| {
        vec![
            ("CNI_COMMAND", cmd),
            ("CNI_CONTAINERID", "ctr1"),
            ("CNI_NETNS", ns.as_str()),
            ("CNI_IFNAME", "eth0"),
        ]
    };
    // Only NSNET_STATE_DIR (the sandbox sets it for every command) names the directory: a
    // DEL run without it (as podman's cleanup process runs it) would look elsewhere.
    let raw = d.raw("nsnet", &env("ADD"), conf.to_string().as_bytes());
    let (code, msg) = raw.error();
    assert_eq!(code, 4, "{msg}");
    assert!(
        msg.contains(&format!("NSNET_STATE_DIR={state} differs from the state directory of the network configuration (/var/lib/nsnet, the default)"))
            && msg.contains("\"stateDir\""),
        "{msg}"
    );
    assert_eq!(count(&s, "networks"), 0);
    assert_eq!(s.host_links(), ["lo"]);
    // With stateDir, an ADD made with the variable is deleted by a DEL made without it.
    conf["stateDir"] = json!(state);
    let raw = d.raw("nsnet", &env("ADD"), conf.to_string().as_bytes());
    assert_eq!(raw.exit, 0, "{}{}", raw.stdout, raw.stderr);
    assert_eq!(count(&s, "endpoints"), 1);
    let mut del = d.command("nsnet");
    del.env_remove("NSNET_STATE_DIR");
    for (k, v) in env("DEL") {
        del.env(k, v);
    }
    let raw = d.run(del, conf.to_string().as_bytes());
    assert_eq!(raw.exit, 0, "{}{}", raw.stdout, raw.stderr);
    assert_eq!(count(&s, "endpoints"), 0);
    assert_eq!(count(&s, "networks"), 0);
    // A relative stateDir would depend on each caller's working directory.
    conf["stateDir"] = json!("state");
    let (code, msg) = d
        .raw("nsnet", &env("ADD"), conf.to_string().as_bytes())
        .error();
    assert_eq!(code, 7, "{msg}");
    assert!(msg.contains("give an absolute path"), "{msg}");
    // A DEL whose directory holds no store succeeds and creates none.
    let empty = tempfile::tempdir().unwrap();
    conf["stateDir"] = json!(empty.path());
    let raw = d.raw("nsnet", &env("DEL"), conf.to_string().as_bytes());
    assert_eq!(raw.exit, 0, "{}{}", raw.stdout, raw.stderr);
    assert!(
        std::fs::read_dir(empty.path()).unwrap().next().is_none(),
        "DEL created a store"
    );
    assert_nothing_left(&s);
}

#[test]
fn an_unused_network_no_del_removed_gives_way_to_a_new_one() {
    if !root() {
        return;
    }
    let s = Sandbox::new();
    let d = Driver::new(&s);
    let a = Conflist::single("1.0.0", plugin("a", "10.233.0.0/24"));
    let ns = netns(&s, "c1");
    d.add(&a, &Runtime::new("ctr1", &ns)).unwrap();
    // The namespace went behind nsnet's back and `nsnet gc` collected the attachment: no
    // DEL will come, and network a went with its last attachment, as after a DEL.
    assert_eq!(s.sh("ip", &["netns", "del", "c1"]).code, 0);
    let report = s.json(&["gc"]);
    assert_eq!(report["networks"][0], "a", "{report}");
    assert_eq!((count(&s, "endpoints"), count(&s, "networks")), (0, 0));
    // A new network with a's subnet takes its place; one made with the CLI would not.
    let b = Conflist::single("1.0.0", plugin("b", "10.233.0.0/24"));
    let ns = netns(&s, "c2");
    let rt = Runtime::new("ctr2", &ns);
    let res = d.add(&b, &rt).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(res["ips"][0]["address"], "10.233.0.2/24");
    assert!(!s.host_links().contains(&"cni-a".to_string()), "cni-a left");
    assert!(s.ping("c2", "10.233.0.1"));
    s.ok(&["network", "create", "cli", "--subnet", "10.234.0.0/24"]);
    let c = Conflist::single("1.0.0", plugin("c", "10.234.0.0/24"));
    let ns3 = netns(&s, "c3");
    let e = d.add(&c, &Runtime::new("ctr3", &ns3)).unwrap_err();
    assert!(
        e.msg
            .contains("overlaps subnet 10.234.0.0/24 of network cli"),
        "{e}"
    );
    d.del(&b, &rt, Some(&res)).unwrap();
    s.ok(&["network", "rm", "cli"]);
    assert_nothing_left(&s);
}
