//! The CNI operations with a recording fake kernel: network on first use, definitions that
//! must match, ranges, configured routes instead of primary default routes, idempotent DEL
//! without promotion, GC by valid list, CHECK and STATUS findings.

use nsnet_core::ipam::Range;
use nsnet_core::model::NetworkSpec;
use nsnet_core::names::{IfName, NetName, NsName};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_engine::{CniAdd, CniKey, CniRoute, CniStatus, ConnectRequest, Engine, EngineError};
use nsnet_store::Store;
use nsnet_sys::fake::FakeKernel;
use nsnet_sys::kernel::Kernel;

struct Fixture {
    engine: Engine<FakeKernel>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    Fixture {
        engine: Engine::new(store, FakeKernel::default(), 4242, "boot-a".into()),
        _dir: dir,
    }
}

fn spec(name: &str, cidr: &str) -> NetworkSpec {
    let n = NetName::new(name).unwrap();
    NetworkSpec::builder(n)
        .subnets([cidr.parse().unwrap()])
        .build()
        .unwrap()
}

fn add(e: &mut Engine<FakeKernel>, s: &NetworkSpec, id: &str) -> CniAdd {
    let path = format!("/run/netns/{id}");
    // Already there when the same container is added twice.
    let _ = e.kernel().create_netns(&path);
    let gw = s.subnets()[0].gateway;
    CniAdd {
        spec: s.clone(),
        container_id: id.to_string(),
        netns: NsRef::Named(path),
        ifname: IfName::new("eth0").unwrap(),
        ips: vec![],
        mac: None,
        publish: vec![],
        ranges: vec![],
        routes: vec![CniRoute {
            dest: "0.0.0.0/0".parse().unwrap(),
            via: gw,
        }],
    }
}

fn attach(
    e: &mut Engine<FakeKernel>,
    s: &NetworkSpec,
    id: &str,
) -> Result<nsnet_engine::views::EndpointView, EngineError> {
    let req = add(e, s, id);
    e.cni_add(&req)
}

fn key(net: &str, id: &str) -> CniKey {
    CniKey {
        network: NetName::new(net).unwrap(),
        container_id: id.to_string(),
        ifname: IfName::new("eth0").unwrap(),
    }
}

fn count(e: &mut Engine<FakeKernel>, table: &str) -> i64 {
    e.store()
        .read(|tx| tx.row_counts())
        .unwrap()
        .into_iter()
        .find(|(t, _)| *t == table)
        .unwrap()
        .1
}

#[test]
fn first_add_creates_the_network_and_later_ones_must_match_it() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    let a = attach(e, &lan, "a").unwrap();
    assert_eq!(a.addrs[0].to_string(), "10.8.0.2/24");
    assert_eq!(a.container_id.as_deref(), Some("a"));
    assert_eq!(count(e, "networks"), 1);
    let b = attach(e, &lan, "b").unwrap();
    assert_eq!(b.addrs[0].to_string(), "10.8.0.3/24");
    let other = NetworkSpec::builder(lan.name().clone())
        .subnets(lan.subnets().iter().map(|s| s.cidr))
        .masquerade(false)
        .mtu(1400)
        .build()
        .unwrap();
    let err = attach(e, &other, "c").unwrap_err();
    assert!(matches!(
        err,
        EngineError::Context { ref cause, .. } if matches!(**cause, EngineError::Invalid(_))
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("network lan already exists with mtu default (configuration: 1400), ipMasq true (configuration: false)"),
        "{msg}"
    );
    assert!(
        msg.contains("it takes the new definition once nothing is attached to it"),
        "{msg}"
    );
    // The same attachment twice.
    let err = attach(e, &lan, "a").unwrap_err().to_string();
    assert!(
        err.contains("container a interface eth0 on network lan is already attached"),
        "{err}"
    );
    assert_eq!(count(e, "endpoints"), 2);
}

#[test]
fn routes_come_from_the_configuration_and_ranges_bound_allocation() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    let mut req = add(e, &lan, "a");
    req.routes.push(CniRoute {
        dest: "192.168.0.0/16".parse().unwrap(),
        via: "10.8.0.1".parse().unwrap(),
    });
    req.ranges = vec![
        Range::new(
            lan.name(),
            &lan.subnets()[0],
            "10.8.0.100".parse().unwrap(),
            "10.8.0.101".parse().unwrap(),
        )
        .unwrap(),
    ];
    let a = e.cni_add(&req).unwrap();
    assert_eq!(a.addrs[0].to_string(), "10.8.0.100/24");
    let routes: Vec<String> = e
        .kernel()
        .log
        .iter()
        .filter(|op| matches!(op, KernelOp::AddRoute { .. }))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        routes,
        [
            "add route 0.0.0.0/0 via 10.8.0.1 dev eth0 in netns /run/netns/a",
            "add route 192.168.0.0/16 via 10.8.0.1 dev eth0 in netns /run/netns/a"
        ]
    );
    // No routes asked for: none installed, even though the endpoint is its namespace's only one.
    let mut b = add(e, &lan, "b");
    b.routes.clear();
    b.ranges = req.ranges.clone();
    let before = e.kernel().log.len();
    let ep = e.cni_add(&b).unwrap();
    assert_eq!(ep.addrs[0].to_string(), "10.8.0.101/24");
    assert!(
        !e.kernel().log[before..]
            .iter()
            .any(|op| matches!(op, KernelOp::AddRoute { .. }))
    );
    let mut c = add(e, &lan, "c");
    c.ranges = req.ranges.clone();
    let err = e.cni_add(&c).unwrap_err().to_string();
    assert!(err.contains("range 10.8.0.100-10.8.0.101"), "{err}");
    // A failed route rolls the whole attachment back.
    let mut d = add(e, &lan, "d");
    d.routes.push(CniRoute {
        dest: "172.16.0.0/12".parse().unwrap(),
        via: "10.8.0.1".parse().unwrap(),
    });
    e.kernel().fail_on = Some("add route 172.16.0.0/12".into());
    assert!(e.cni_add(&d).unwrap_err().to_string().contains("injected"));
    assert!(e.kernel().links_in("/run/netns/d").is_empty());
    assert_eq!(count(e, "endpoints"), 2);
}

#[test]
fn del_is_idempotent_and_promotes_nobody() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    let wan = spec("wan", "10.9.0.0/24");
    let a = add(e, &lan, "a");
    e.cni_add(&a).unwrap();
    // A second network in the same namespace, without routes.
    let mut b = a.clone();
    b.spec = wan.clone();
    b.ifname = IfName::new("eth1").unwrap();
    b.routes.clear();
    e.cni_add(&b).unwrap();
    let before = e.kernel().log.len();
    assert!(e.cni_del(&key("lan", "a")).unwrap());
    let ops: Vec<String> = e.kernel().log[before..]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(ops.iter().all(|o| !o.starts_with("add route")), "{ops:?}");
    assert!(!e.cni_del(&key("lan", "a")).unwrap());
    // The namespace is gone: DEL still cleans up from the store.
    e.kernel().delete_netns("/run/netns/a").unwrap();
    let mut b_key = key("wan", "a");
    b_key.ifname = IfName::new("eth1").unwrap();
    assert!(e.cni_del(&b_key).unwrap());
    assert_eq!(count(e, "endpoints"), 0);
    assert_eq!(count(e, "addresses"), 0);
    assert_eq!(
        e.kernel().links_in("host").len(),
        2,
        "only the bridges stay"
    );
}

#[test]
fn gc_keeps_valid_attachments_and_cli_endpoints() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    for id in ["a", "b", "c"] {
        attach(e, &lan, id).unwrap();
    }
    e.netns_add(&NsName::new("cli").unwrap()).unwrap();
    e.connect(ConnectRequest {
        network: lan.name().clone(),
        netns: NsRef::Named("cli".into()),
        ips: vec![],
        mac: None,
        ifname: None,
        container_id: None,
        publish: vec![],
    })
    .unwrap();
    let report = e
        .cni_gc(
            lan.name(),
            &[("a".into(), "eth0".into()), ("c".into(), "eth0".into())],
        )
        .unwrap();
    assert_eq!(report.removed, ["container b interface eth0 (10.8.0.3/24)"]);
    assert!(report.errors.is_empty());
    assert!(e.cni_endpoint(&key("lan", "b")).unwrap().is_none());
    assert!(e.cni_endpoint(&key("lan", "a")).unwrap().is_some());
    assert_eq!(count(e, "endpoints"), 3);
    let report = e.cni_gc(lan.name(), &[]).unwrap();
    assert_eq!(report.removed.len(), 2);
    assert_eq!(count(e, "endpoints"), 1, "the CLI's endpoint stays");
    assert!(e.cni_endpoints("a").unwrap().is_empty());
}

#[test]
fn check_and_status_report_missing_firewall_elements() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    assert_eq!(e.cni_status(lan.name()).unwrap(), CniStatus::Ready);
    let req = add(e, &lan, "a");
    e.cni_add(&req).unwrap();
    assert_eq!(e.cni_status(lan.name()).unwrap(), CniStatus::Ready);
    let report = e
        .cni_check(&lan, &key("lan", "a"), &req.netns, &req.routes)
        .unwrap();
    assert_eq!(report.endpoint.container_id.as_deref(), Some("a"));
    assert!(
        !report.problems.iter().any(|p| p.contains("firewall")),
        "{:?}",
        report.problems
    );
    e.kernel().fw_remove().unwrap();
    let report = e
        .cni_check(&lan, &key("lan", "a"), &req.netns, &req.routes)
        .unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("firewall element bridges \"nsbr-lan\" is missing")),
        "{:?}",
        report.problems
    );
    assert!(matches!(
        e.cni_status(lan.name()).unwrap(),
        CniStatus::Degraded(m) if m.contains("nsnet repair")
    ));
    let err = e
        .cni_check(&lan, &key("lan", "zzz"), &req.netns, &[])
        .unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
    let err = e
        .cni_check(
            &spec("nope", "10.99.0.0/24"),
            &key("nope", "a"),
            &req.netns,
            &[],
        )
        .unwrap_err();
    assert!(err.to_string().contains("network nope not found"), "{err}");
}

#[test]
fn a_network_left_half_created_by_a_dead_process_is_redone() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    e.store()
        .write(|tx| tx.insert_network(&lan, 777, "boot-a"))
        .unwrap();
    e.kernel().dead_pids.insert(777);
    attach(e, &lan, "a").unwrap();
    let row = e
        .store()
        .read(|tx| tx.network(lan.name()))
        .unwrap()
        .unwrap();
    assert_eq!(row.pid, 4242);
}

fn networks(e: &mut Engine<FakeKernel>) -> Vec<String> {
    e.store()
        .read(|tx| tx.networks())
        .unwrap()
        .into_iter()
        .map(|n| n.spec.name().to_string())
        .collect()
}

#[test]
fn a_network_the_configuration_created_goes_with_its_last_attachment() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    let a = add(e, &lan, "a");
    e.cni_add(&a).unwrap();
    attach(e, &lan, "b").unwrap();
    assert!(e.cni_del(&key("lan", "a")).unwrap());
    assert!(!e.cni_release(lan.name()).unwrap(), "b is still attached");
    assert!(e.cni_del(&key("lan", "b")).unwrap());
    assert!(e.cni_release(lan.name()).unwrap());
    assert!(networks(e).is_empty());
    assert!(e.kernel().links_in("host").is_empty(), "bridge left");
    assert!(e.kernel().fw.is_empty(), "{:?}", e.kernel().fw);
    // Nothing left to release; the next ADD creates it again.
    assert!(!e.cni_release(lan.name()).unwrap());
    e.cni_add(&a).unwrap();
    assert_eq!(networks(e), ["lan"]);
    // A CLI endpoint on it keeps it.
    e.netns_add(&NsName::new("cli").unwrap()).unwrap();
    e.connect(ConnectRequest {
        network: lan.name().clone(),
        netns: NsRef::Named("cli".into()),
        ips: vec![],
        mac: None,
        ifname: None,
        container_id: None,
        publish: vec![],
    })
    .unwrap();
    e.cni_del(&key("lan", "a")).unwrap();
    assert!(!e.cni_release(lan.name()).unwrap());
    assert_eq!(networks(e), ["lan"]);
}

#[test]
fn networks_made_with_the_cli_are_never_released() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    e.network_create(nsnet_engine::NetworkRequest { spec: lan.clone() })
        .unwrap();
    attach(e, &lan, "a").unwrap();
    e.cni_del(&key("lan", "a")).unwrap();
    assert!(!e.cni_release(lan.name()).unwrap());
    assert_eq!(networks(e), ["lan"]);
    // Nor replaced by another definition, nor cleared out of another network's way.
    let err = attach(e, &spec("lan", "10.9.0.0/24"), "b")
        .unwrap_err()
        .to_string();
    assert!(err.contains("nsnet network rm lan"), "{err}");
    let err = attach(e, &spec("other", "10.8.0.0/25"), "c")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("overlaps subnet 10.8.0.0/24 of network lan"),
        "{err}"
    );
    assert_eq!(networks(e), ["lan"]);
}

#[test]
fn a_new_network_takes_the_subnet_or_bridge_of_an_unused_one() {
    let mut f = fixture();
    let e = &mut f.engine;
    // `podman network rm a; podman network create b --subnet <a's>`: no DEL ever comes for
    // a network whose attachments went without one (or before nsnet released networks).
    let a = spec("a", "10.231.0.0/24");
    attach(e, &a, "x").unwrap();
    e.cni_del(&key("a", "x")).unwrap();
    let b = spec("b", "10.231.0.0/24");
    let ep = attach(e, &b, "y").unwrap();
    assert_eq!(ep.addrs[0].to_string(), "10.231.0.2/24");
    assert_eq!(networks(e), ["b"]);
    assert_eq!(e.kernel().links_in("host").len(), 2, "nsbr-b and y's veth");
    // Same bridge name, other subnet.
    e.cni_del(&key("b", "y")).unwrap();
    let c = NetworkSpec::builder(NetName::new("c").unwrap())
        .subnets(["10.232.0.0/24".parse().unwrap()])
        .bridge(b.bridge().clone())
        .build()
        .unwrap();
    attach(e, &c, "z").unwrap();
    assert_eq!(networks(e), ["c"]);
    // One that still has an attachment stays, and the clash is named.
    let d = spec("d", "10.232.0.0/16");
    let err = attach(e, &d, "w").unwrap_err().to_string();
    assert!(
        err.contains("overlaps subnet 10.232.0.0/24 of network c"),
        "{err}"
    );
    assert_eq!(networks(e), ["c"]);
}

#[test]
fn a_changed_definition_replaces_the_network_once_nothing_is_attached() {
    let mut f = fixture();
    let e = &mut f.engine;
    let old = spec("lan", "10.8.0.0/24");
    attach(e, &old, "a").unwrap();
    let new = spec("lan", "10.9.0.0/24");
    let err = attach(e, &new, "b").unwrap_err().to_string();
    assert!(
        err.contains(
            "subnets 10.8.0.0/24 (gateway 10.8.0.1) (configuration: 10.9.0.0/24 (gateway 10.9.0.1))"
        ) && err.contains("it takes the new definition once nothing is attached to it"),
        "{err}"
    );
    e.cni_del(&key("lan", "a")).unwrap();
    let ep = attach(e, &new, "b").unwrap();
    assert_eq!(ep.addrs[0].to_string(), "10.9.0.2/24");
    let row = e
        .store()
        .read(|tx| tx.network(new.name()))
        .unwrap()
        .unwrap();
    assert_eq!(row.spec, new);
    assert!(row.cni_owned);
    let ops: Vec<String> = e.kernel().log.iter().map(ToString::to_string).collect();
    assert!(
        ops.iter()
            .any(|o| o == "add address 10.9.0.1/24 to nsbr-lan in netns host"),
        "{ops:?}"
    );
}

#[test]
fn a_removal_cut_short_is_finished_by_the_next_add() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    attach(e, &lan, "a").unwrap();
    e.cni_del(&key("lan", "a")).unwrap();
    // A DEL that claimed the network and died before removing it.
    e.store()
        .write(|tx| tx.mark_network_removing(lan.name(), 777, "boot-a"))
        .unwrap();
    // While its remover lives, the network is not ours to release.
    assert!(!e.cni_release(lan.name()).unwrap());
    e.kernel().dead_pids.insert(777);
    let ep = attach(e, &lan, "b").unwrap();
    assert_eq!(ep.addrs[0].to_string(), "10.8.0.2/24");
    let row = e
        .store()
        .read(|tx| tx.network(lan.name()))
        .unwrap()
        .unwrap();
    assert_eq!((row.pid, row.cni_owned), (4242, true));
    // A release whose teardown fails leaves the claim for the next one.
    e.cni_del(&key("lan", "b")).unwrap();
    e.kernel().fail_on = Some("delete nsbr-lan".into());
    let err = e.cni_release(lan.name()).unwrap_err().to_string();
    assert!(
        err.contains("remove network lan after its last attachment"),
        "{err}"
    );
    assert!(e.cni_release(lan.name()).unwrap());
    assert!(networks(e).is_empty());
}

#[test]
fn after_a_reboot_dead_attachments_do_not_keep_a_network() {
    let dir = tempfile::tempdir().unwrap();
    let lan = spec("lan", "10.8.0.0/24");
    {
        let store = Store::open(dir.path()).unwrap();
        let mut before = Engine::new(store, FakeKernel::default(), 4242, "boot-a".into());
        attach(&mut before, &lan, "a").unwrap();
    }
    // Rebooted: the veth and the bridge are gone, the rows stay; the configuration changed.
    let store = Store::open(dir.path()).unwrap();
    let mut e = Engine::new(store, FakeKernel::default(), 4343, "boot-b".into());
    let new = spec("lan", "10.9.0.0/24");
    let ep = attach(&mut e, &new, "b").unwrap();
    assert_eq!(ep.addrs[0].to_string(), "10.9.0.2/24");
    assert!(e.cni_endpoint(&key("lan", "a")).unwrap().is_none());
    assert_eq!(count(&mut e, "endpoints"), 1);
}
