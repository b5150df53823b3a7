//! Attachments (what the CNI face uses) with a recording fake kernel: network on first use,
//! definitions that must match, ranges, the owner's routes instead of primary default routes,
//! idempotent detach without promotion, gc by the owner's list, verify and firewall health.

mod common;

use common::{fixture, spec};

use nsnet_core::endpoint::{RoutePolicy, StaticRoute};
use nsnet_core::ipam::Range;
use nsnet_core::model::NetworkSpec;
use nsnet_core::names::{IfName, NetName, NsName};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_engine::{
    AttachRequest, Conflict, ConnectRequest, Detached, Engine, EngineError, Ensured,
    FirewallHealth, OwnerKey, Problem, Property, VerifyRequest, Which,
};
use nsnet_store::Store;
use nsnet_sys::fake::FakeKernel;
use nsnet_sys::kernel::{Firewall, Net};

fn route(dest: &str, via: &str) -> StaticRoute {
    StaticRoute {
        dest: dest.parse().unwrap(),
        via: via.parse().unwrap(),
    }
}

/// The routes of a request (always explicit for attachments).
fn routes_of(req: &mut AttachRequest) -> &mut Vec<StaticRoute> {
    match &mut req.routes {
        RoutePolicy::Explicit(r) => r,
        RoutePolicy::Primary => unreachable!("attachments give their routes"),
    }
}

fn add(e: &mut Engine<FakeKernel>, s: &NetworkSpec, id: &str) -> AttachRequest {
    let path = format!("/run/netns/{id}");
    // Already there when the same owner attaches twice.
    let _ = e.kernel().create_netns(&path);
    let gw = s.subnets()[0].gateway;
    AttachRequest {
        key: owner(id),
        network: s.clone(),
        netns: NsRef::Named(path),
        ips: vec![],
        mac: None,
        publish: vec![],
        ranges: vec![],
        no_default_route: false,
        routes: RoutePolicy::Explicit(vec![StaticRoute {
            dest: "0.0.0.0/0".parse().unwrap(),
            via: gw,
        }]),
        aliases: vec![],
    }
}

fn attach(
    e: &mut Engine<FakeKernel>,
    s: &NetworkSpec,
    id: &str,
) -> Result<nsnet_engine::views::EndpointView, EngineError> {
    let req = add(e, s, id);
    e.attach(&req)
}

fn owner(id: &str) -> OwnerKey {
    OwnerKey {
        owner_id: id.to_string(),
        ifname: IfName::new("eth0").unwrap(),
    }
}

fn net(name: &str) -> NetName {
    NetName::new(name).unwrap()
}

/// Detaches owner `id`'s eth0 from `network`.
fn detach(e: &mut Engine<FakeKernel>, network: &str, id: &str) -> bool {
    e.detach(&net(network), &owner(id)).unwrap()
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
    let EngineError::Conflict(Conflict::DefinitionDiffers(m)) = &err else {
        panic!("{err}");
    };
    let differing: Vec<Property> = m.differences.iter().map(|d| d.property).collect();
    assert_eq!(differing, [Property::Mtu, Property::Masquerade]);
    assert!(m.replaceable);
    let msg = err.to_string();
    assert!(
        msg.contains("network lan already exists with mtu default (configuration: 1400), masquerade true (configuration: false)"),
        "{msg}"
    );
    assert!(
        msg.contains("it takes the new definition once nothing is attached to it"),
        "{msg}"
    );
    assert_eq!(
        e.ensure_network(&other, true).unwrap(),
        Ensured::Differs(m.clone())
    );
    assert_eq!(e.ensure_network(&lan, true).unwrap(), Ensured::Matches);
    // The same attachment twice.
    let err = attach(e, &lan, "a").unwrap_err();
    assert!(
        matches!(err, EngineError::Conflict(Conflict::AlreadyAttached { ref key, .. }) if *key == owner("a")),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("owner a interface eth0 is already attached to network lan"),
        "{err}"
    );
    assert!(!err.to_string().contains("DEL"), "{err}");
    assert_eq!(count(e, "endpoints"), 2);
}

#[test]
fn routes_come_from_the_configuration_and_ranges_bound_allocation() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    let mut req = add(e, &lan, "a");
    routes_of(&mut req).push(route("192.168.0.0/16", "10.8.0.1"));
    req.ranges = vec![
        Range::new(
            lan.name(),
            &lan.subnets()[0],
            "10.8.0.100".parse().unwrap(),
            "10.8.0.101".parse().unwrap(),
        )
        .unwrap(),
    ];
    let a = e.attach(&req).unwrap();
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
    routes_of(&mut b).clear();
    b.ranges = req.ranges.clone();
    let before = e.kernel().log.len();
    let ep = e.attach(&b).unwrap();
    assert_eq!(ep.addrs[0].to_string(), "10.8.0.101/24");
    assert!(
        !e.kernel().log[before..]
            .iter()
            .any(|op| matches!(op, KernelOp::AddRoute { .. }))
    );
    let mut c = add(e, &lan, "c");
    c.ranges = req.ranges.clone();
    let err = e.attach(&c).unwrap_err().to_string();
    assert!(err.contains("range 10.8.0.100-10.8.0.101"), "{err}");
    // A failed route rolls the whole attachment back.
    let mut d = add(e, &lan, "d");
    routes_of(&mut d).push(route("172.16.0.0/12", "10.8.0.1"));
    e.kernel().fail_on = Some("add route 172.16.0.0/12".into());
    assert!(e.attach(&d).unwrap_err().to_string().contains("injected"));
    assert!(e.kernel().links_in("/run/netns/d").is_empty());
    assert_eq!(count(e, "endpoints"), 2);
}

#[test]
fn detach_is_idempotent_and_promotes_nobody() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    let wan = spec("wan", "10.9.0.0/24");
    let a = add(e, &lan, "a");
    e.attach(&a).unwrap();
    // A second network in the same namespace, without routes.
    let mut b = a.clone();
    b.network = wan.clone();
    b.key.ifname = IfName::new("eth1").unwrap();
    routes_of(&mut b).clear();
    e.attach(&b).unwrap();
    let before = e.kernel().log.len();
    assert!(detach(e, "lan", "a"));
    let ops: Vec<String> = e.kernel().log[before..]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(ops.iter().all(|o| !o.starts_with("add route")), "{ops:?}");
    assert!(!detach(e, "lan", "a"));
    // The namespace is gone: detach still cleans up from the store.
    e.kernel().delete_netns("/run/netns/a").unwrap();
    assert!(e.detach(wan.name(), &b.key).unwrap());
    assert_eq!(count(e, "endpoints"), 0);
    assert_eq!(count(e, "addresses"), 0);
    assert_eq!(
        e.kernel().links_in("host").len(),
        2,
        "only the bridges stay"
    );
}

#[test]
fn gc_keeps_listed_attachments_and_cli_endpoints() {
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
        aliases: vec![],
    })
    .unwrap();
    let report = e
        .gc_attachments(lan.name(), &[owner("a"), owner("c")])
        .unwrap();
    assert_eq!(
        report.removed,
        [Detached {
            key: owner("b"),
            addrs: vec!["10.8.0.3/24".parse().unwrap()],
        }]
    );
    assert!(report.failed.is_empty());
    assert!(e.attachment(lan.name(), &owner("b")).unwrap().is_none());
    assert!(e.attachment(lan.name(), &owner("a")).unwrap().is_some());
    assert_eq!(e.owner_attachments("a").unwrap().len(), 1);
    assert_eq!(count(e, "endpoints"), 3);
    let report = e.gc_attachments(lan.name(), &[]).unwrap();
    assert_eq!(report.removed.len(), 2);
    assert_eq!(count(e, "endpoints"), 1, "the CLI's endpoint stays");
    assert!(e.owner_attachments("a").unwrap().is_empty());
}

#[test]
fn verify_and_firewall_health_report_missing_firewall_elements() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("lan", "10.8.0.0/24");
    assert_eq!(
        e.firewall_health(lan.name()).unwrap(),
        FirewallHealth::Ready
    );
    let req = add(e, &lan, "a");
    e.attach(&req).unwrap();
    assert_eq!(
        e.firewall_health(lan.name()).unwrap(),
        FirewallHealth::Ready
    );
    let verify = |id: &str, network: &str| VerifyRequest {
        network: net(network),
        endpoint: Which::Owner {
            key: owner(id),
            netns: req.netns.clone(),
        },
        routes: req.routes.clone(),
    };
    let report = e.verify_endpoint(&verify("a", "lan")).unwrap();
    assert_eq!(report.endpoint.container_id.as_deref(), Some("a"));
    let firewall = |p: &Problem| matches!(p, Problem::FirewallElementMissing(_));
    assert!(
        !report.problems.iter().any(firewall),
        "{:?}",
        report.problems
    );
    e.kernel().fw_remove().unwrap();
    let report = e.verify_endpoint(&verify("a", "lan")).unwrap();
    assert!(
        report.problems.contains(&Problem::FirewallElementMissing(
            "bridges \"nsbr-lan\"".into()
        )),
        "{:?}",
        report.problems
    );
    assert!(matches!(
        e.firewall_health(lan.name()).unwrap(),
        FirewallHealth::Degraded { missing } if missing == "bridges \"nsbr-lan\""
    ));
    let err = e.verify_endpoint(&verify("zzz", "lan")).unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
    let err = e.verify_endpoint(&verify("a", "nope")).unwrap_err();
    assert!(err.to_string().contains("network nope not found"), "{err}");
    let err = e
        .compare_network(&spec("nope", "10.99.0.0/24"))
        .unwrap_err();
    assert!(err.to_string().contains("network nope not found"), "{err}");
    assert_eq!(e.compare_network(&lan).unwrap(), None);
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
    e.attach(&a).unwrap();
    attach(e, &lan, "b").unwrap();
    assert!(detach(e, "lan", "a"));
    assert!(
        !e.release_if_unused(lan.name()).unwrap(),
        "b is still attached"
    );
    assert!(detach(e, "lan", "b"));
    assert!(e.release_if_unused(lan.name()).unwrap());
    assert!(networks(e).is_empty());
    assert!(e.kernel().links_in("host").is_empty(), "bridge left");
    assert!(e.kernel().fw.is_empty(), "{:?}", e.kernel().fw);
    // Nothing left to release; the next ADD creates it again.
    assert!(!e.release_if_unused(lan.name()).unwrap());
    e.attach(&a).unwrap();
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
        aliases: vec![],
    })
    .unwrap();
    detach(e, "lan", "a");
    assert!(!e.release_if_unused(lan.name()).unwrap());
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
    detach(e, "lan", "a");
    assert!(!e.release_if_unused(lan.name()).unwrap());
    assert_eq!(networks(e), ["lan"]);
    // Nor replaced by another definition, nor cleared out of another network's way.
    let err = attach(e, &spec("lan", "10.9.0.0/24"), "b").unwrap_err();
    assert!(
        matches!(err, EngineError::Conflict(Conflict::DefinitionDiffers(ref m)) if !m.replaceable),
        "{err}"
    );
    assert!(
        !err.to_string().contains("once nothing is attached"),
        "{err}"
    );
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
    detach(e, "a", "x");
    let b = spec("b", "10.231.0.0/24");
    let ep = attach(e, &b, "y").unwrap();
    assert_eq!(ep.addrs[0].to_string(), "10.231.0.2/24");
    assert_eq!(networks(e), ["b"]);
    assert_eq!(e.kernel().links_in("host").len(), 2, "nsbr-b and y's veth");
    // Same bridge name, other subnet.
    detach(e, "b", "y");
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
    detach(e, "lan", "a");
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
    detach(e, "lan", "a");
    // A DEL that claimed the network and died before removing it.
    e.store()
        .write(|tx| tx.mark_network_removing(lan.name(), 777, "boot-a"))
        .unwrap();
    // While its remover lives, the network is not ours to release.
    assert!(!e.release_if_unused(lan.name()).unwrap());
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
    detach(e, "lan", "b");
    e.kernel().fail_on = Some("delete nsbr-lan".into());
    let err = e.release_if_unused(lan.name()).unwrap_err().to_string();
    assert!(
        err.contains("remove network lan after its last attachment"),
        "{err}"
    );
    assert!(e.release_if_unused(lan.name()).unwrap());
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
    assert!(e.attachment(lan.name(), &owner("a")).unwrap().is_none());
    assert_eq!(count(&mut e, "endpoints"), 1);
}

/// An attachment whose namespace was deleted behind nsnet's back is collected by `gc`, and the
/// network its configuration owns goes with it, as after a DEL.
#[test]
fn gc_releases_a_configuration_owned_network_it_empties() {
    let mut f = fixture();
    let e = &mut f.engine;
    let lan = spec("gcnet", "10.9.0.0/24");
    attach(e, &lan, "a").unwrap();
    assert_eq!(networks(e), ["gcnet"]);
    e.kernel().delete_netns("/run/netns/a").unwrap();
    let report = e.gc().unwrap();
    assert_eq!(report.endpoints.len(), 1, "{report:?}");
    assert_eq!(report.networks, ["gcnet"], "{report:?}");
    assert!(networks(e).is_empty());
}

/// An attachment made with `no_default_route` is never its namespace's primary: when the
/// attachment that carried the default routes goes, it is not handed them.
#[test]
fn an_attachment_without_default_route_is_not_handed_them() {
    let mut f = fixture();
    let e = &mut f.engine;
    let (p, r) = (spec("pnet", "10.89.5.0/24"), spec("rnet", "10.89.7.0/24"));
    let first = add(e, &p, "c1");
    let mut second = add(e, &r, "c1");
    second.key.ifname = IfName::new("eth1").unwrap();
    second.no_default_route = true;
    routes_of(&mut second).clear();
    assert!(e.attach(&first).unwrap().primary);
    let view = e.attach(&second).unwrap();
    assert!(!view.primary && view.no_default_route, "{view:?}");
    let views = e.owner_attachments("c1").unwrap();
    assert!(
        views
            .iter()
            .any(|v| v.network == "rnet" && v.no_default_route && !v.primary),
        "{views:?}"
    );
    let before = e.kernel().log.len();
    assert!(e.detach_handing_over(&net("pnet"), &first.key).unwrap());
    let handed: Vec<&KernelOp> = e.kernel().log[before..]
        .iter()
        .filter(|op| matches!(op, KernelOp::AddRoute { .. }))
        .collect();
    assert!(handed.is_empty(), "{handed:?}");
    let left = e.owner_attachments("c1").unwrap();
    assert_eq!(left.len(), 1);
    assert!(!left[0].primary, "{left:?}");
}
