//! The engine with a recording fake kernel: allocation, rollback, primary selection and gc,
//! without root.

mod common;

use common::{connect, fixture};

use nsnet_core::model::{Mac, NetworkSpec};
use nsnet_core::names::{IfName, NetName, NsName};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::port::PortSpec;
use nsnet_engine::{Engine, EngineError, LinkRequest, NetworkRequest};
use nsnet_store::Store;
use nsnet_sys::fake::FakeKernel;

fn net(name: &str, cidr: &str, internal: bool) -> NetworkRequest {
    let n = NetName::new(name).unwrap();
    NetworkRequest {
        spec: NetworkSpec::builder(n)
            .subnets([cidr.parse().unwrap()])
            .internal(internal)
            .build()
            .unwrap(),
    }
}

fn rows(e: &mut Engine<FakeKernel>) -> Vec<(&'static str, i64)> {
    e.store().read(|tx| tx.row_counts()).unwrap()
}

fn count(e: &mut Engine<FakeKernel>, table: &str) -> i64 {
    rows(e).into_iter().find(|(t, _)| *t == table).unwrap().1
}

#[test]
fn connect_allocates_lowest_free_and_sets_default_route() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("red").unwrap()).unwrap();
    e.netns_add(&NsName::new("blue").unwrap()).unwrap();
    e.network_create(net("lan", "192.168.15.0/24", false))
        .unwrap();
    let red = e.connect(connect("lan", "red")).unwrap();
    let blue = e.connect(connect("lan", "blue")).unwrap();
    assert_eq!(red.addrs[0].to_string(), "192.168.15.2/24");
    assert_eq!(blue.addrs[0].to_string(), "192.168.15.3/24");
    assert!(red.primary && blue.primary);
    assert_eq!(red.ifname, "eth0");
    assert!(
        e.kernel().log.iter().any(
            |op| op.to_string() == "add route 0.0.0.0/0 via 192.168.15.1 dev eth0 in netns red"
        )
    );
    let detail = e.network_inspect(&NetName::new("lan").unwrap()).unwrap();
    assert_eq!(detail.usage[0].used, 2);
    assert_eq!(detail.usage[0].free, 251);
    // Release and reuse.
    e.disconnect(&NetName::new("lan").unwrap(), &NsRef::Named("red".into()))
        .unwrap();
    e.netns_add(&NsName::new("green").unwrap()).unwrap();
    let green = e.connect(connect("lan", "green")).unwrap();
    assert_eq!(green.addrs[0].to_string(), "192.168.15.2/24");
}

#[test]
fn failed_connect_leaves_nothing() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("red").unwrap()).unwrap();
    e.network_create(net("lan", "10.1.0.0/24", false)).unwrap();
    let before = rows(e);
    for step in [
        "add address 10.1.0.2/24",
        "add route 0.0.0.0/0",
        "set lo up",
    ] {
        e.kernel().fail_on = Some(step.into());
        let err = e.connect(connect("lan", "red")).unwrap_err().to_string();
        assert!(
            err.contains("connect netns red to network lan") && err.contains("injected"),
            "{err}"
        );
        assert_eq!(rows(e), before, "rows left after failing at {step}");
        assert!(
            e.kernel().links_in("red").is_empty(),
            "veth left after failing at {step}"
        );
        assert_eq!(e.kernel().links_in("host"), vec!["nsbr-lan".to_string()]);
    }
    // The address was released: the next connect gets .2 again.
    let ok = e.connect(connect("lan", "red")).unwrap();
    assert_eq!(ok.addrs[0].to_string(), "10.1.0.2/24");
}

#[test]
fn bad_requests_change_nothing() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("red").unwrap()).unwrap();
    e.network_create(net("lan", "10.1.0.0/29", false)).unwrap();
    let before = rows(e);
    let log_len = e.kernel().log.len();
    let mut req = connect("lan", "red");
    req.ips = vec!["10.2.0.5".parse().unwrap()];
    assert!(e.connect(req).unwrap_err().to_string().contains("outside"));
    let mut req = connect("lan", "red");
    req.ips = vec!["10.1.0.1".parse().unwrap()];
    assert!(e.connect(req).unwrap_err().to_string().contains("gateway"));
    let err = e.connect(connect("lan", "nope")).unwrap_err().to_string();
    assert!(err.contains("netns nope not found"), "{err}");
    let err = e.connect(connect("nonet", "red")).unwrap_err().to_string();
    assert!(err.contains("network nonet not found"), "{err}");
    let err = e
        .network_create(net("lan", "10.9.0.0/24", false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    let err = e
        .network_create(net("other", "10.1.0.0/16", false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("overlaps subnet 10.1.0.0/29 of network lan"),
        "{err}"
    );
    assert_eq!(rows(e), before);
    assert_eq!(e.kernel().log.len(), log_len);
}

#[test]
fn subnet_full_is_reported() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.network_create(net("tiny", "10.3.0.0/30", false)).unwrap();
    e.netns_add(&NsName::new("a").unwrap()).unwrap();
    e.netns_add(&NsName::new("b").unwrap()).unwrap();
    e.connect(connect("tiny", "a")).unwrap();
    let err = e.connect(connect("tiny", "b")).unwrap_err().to_string();
    assert!(err.contains("no free address left in 10.3.0.0/30"), "{err}");
    assert_eq!(count(e, "endpoints"), 1);
}

#[test]
fn primary_moves_when_it_disconnects() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("red").unwrap()).unwrap();
    e.network_create(net("internal", "10.5.0.0/24", true))
        .unwrap();
    e.network_create(net("lan", "10.6.0.0/24", false)).unwrap();
    e.network_create(net("wan", "10.7.0.0/24", false)).unwrap();
    let i = e.connect(connect("internal", "red")).unwrap();
    let lan = e.connect(connect("lan", "red")).unwrap();
    let wan = e.connect(connect("wan", "red")).unwrap();
    assert!(!i.primary && lan.primary && !wan.primary);
    assert_eq!(
        (i.ifname.as_str(), lan.ifname.as_str(), wan.ifname.as_str()),
        ("eth0", "eth1", "eth2")
    );
    e.disconnect(&NetName::new("lan").unwrap(), &NsRef::Named("red".into()))
        .unwrap();
    assert_eq!(
        e.kernel().log.last().unwrap().to_string(),
        "add route 0.0.0.0/0 via 10.7.0.1 dev eth2 in netns red"
    );
    let detail = e.inspect_netns(&NsRef::Named("red".into())).unwrap();
    let wan = detail.networks.iter().find(|n| n.network == "wan").unwrap();
    assert!(wan.primary);
}

#[test]
fn network_rm_refuses_with_endpoints_unless_forced() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("red").unwrap()).unwrap();
    e.network_create(net("lan", "10.1.0.0/24", false)).unwrap();
    e.connect(connect("lan", "red")).unwrap();
    let lan = NetName::new("lan").unwrap();
    let err = e.network_rm(&lan, false).unwrap_err().to_string();
    assert!(err.contains("still has 1 endpoint(s) (red)"), "{err}");
    e.network_rm(&lan, true).unwrap();
    assert!(rows(e).iter().all(|(_, n)| *n == 0), "{:?}", rows(e));
    assert!(e.kernel().links_in("host").is_empty());
}

#[test]
fn netns_rm_removes_endpoints_and_links_first() {
    let mut f = fixture();
    let e = &mut f.engine;
    for n in ["red", "blue"] {
        e.netns_add(&NsName::new(n).unwrap()).unwrap();
    }
    e.network_create(net("lan", "10.1.0.0/24", false)).unwrap();
    e.connect(connect("lan", "red")).unwrap();
    e.link_add(LinkRequest {
        a: NsRef::Named("red".into()),
        b: NsRef::Named("blue".into()),
        ifname_a: None,
        ifname_b: None,
        addr_a: Some("192.168.15.1/24".parse().unwrap()),
        addr_b: Some("192.168.15.2/24".parse().unwrap()),
        mtu: None,
    })
    .unwrap();
    assert_eq!(e.kernel().links_in("blue"), vec!["veth-red".to_string()]);
    e.netns_rm(&NsName::new("red").unwrap()).unwrap();
    assert_eq!(
        (
            count(e, "endpoints"),
            count(e, "links"),
            count(e, "addresses")
        ),
        (0, 0, 0)
    );
    assert!(e.kernel().links_in("blue").is_empty());
    let err = e.netns_rm(&NsName::new("red").unwrap()).unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }));
}

/// An endpoint of network `lan` (eth0, 10.1.0.9/24) in `netns`, as a connect by `pid`
/// records it before its kernel work (`creating`): for rows a test puts in the store by hand.
fn recorded_endpoint(
    netns: &str,
    pid: u32,
    container_id: Option<&str>,
) -> nsnet_store::NewEndpoint {
    let lan = NetName::new("lan").unwrap();
    let eth0 = IfName::new("eth0").unwrap();
    nsnet_store::NewEndpoint {
        host_ifname: nsnet_core::names::host_veth(&lan, netns, &eth0),
        network: lan,
        netns: netns.into(),
        ifname: eth0,
        mac: None,
        addrs: vec!["10.1.0.9/24".parse().unwrap()],
        container_id: container_id.map(Into::into),
        no_default_route: false,
        pid,
        boot_id: "boot-a".into(),
    }
}

#[test]
fn gc_rolls_back_rows_of_dead_processes() {
    let dir = tempfile::tempdir().unwrap();
    let mut dead = Engine::new(
        Store::open(dir.path()).unwrap(),
        FakeKernel::default(),
        999,
        "boot-a".into(),
    );
    dead.netns_add(&NsName::new("red").unwrap()).unwrap();
    dead.network_create(net("lan", "10.1.0.0/24", false))
        .unwrap();
    // Simulate a process killed after recording intent and creating the veth.
    dead.kernel().fail_on = Some("add route".into());
    let _ = dead.connect(connect("lan", "red"));
    // ...a crash would have left the row `creating`: record one by hand through the store.
    dead.store()
        .write(|tx| tx.insert_endpoint(&recorded_endpoint("red", 999, None)))
        .unwrap();
    let mut kernel = std::mem::take(dead.kernel());
    kernel.dead_pids.insert(999);
    let mut e = Engine::new(
        Store::open(dir.path()).unwrap(),
        kernel,
        4242,
        "boot-a".into(),
    );
    let report = e.gc().unwrap();
    assert_eq!(report.endpoints, vec!["red on network lan".to_string()]);
    assert_eq!(count(&mut e, "addresses"), 0);
    assert!(matches!(
        e.kernel().log.last(),
        Some(KernelOp::DeleteLink { .. })
    ));
}

fn specs(list: &[&str]) -> Vec<PortSpec> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn published_ports_are_elements_with_conflicts_refused() {
    let mut f = fixture();
    let e = &mut f.engine;
    for n in ["red", "blue"] {
        e.netns_add(&NsName::new(n).unwrap()).unwrap();
    }
    e.network_create(net("lan", "10.1.0.0/24", false)).unwrap();
    assert!(e.kernel().fw.contains("bridges \"nsbr-lan\""));
    let mut req = connect("lan", "red");
    req.publish = specs(&["8080:80", "127.0.0.1:5353:53/udp"]);
    let red = e.connect(req).unwrap();
    assert_eq!(red.ports.len(), 2);
    assert!(e.kernel().fw.contains("pf_any4 tcp . 8080 : 10.1.0.2 . 80"));
    assert!(
        e.kernel()
            .fw
            .contains("pf_ip4 127.0.0.1 . udp . 5353 : 10.1.0.2 . 53")
    );
    e.connect(connect("lan", "blue")).unwrap();
    let blue = NsRef::Named("blue".into());
    let before = (rows(e), e.kernel().fw.clone());
    // Taken by red: on any address, or on one address against an any-address mapping.
    for spec in [
        "8080:81",
        "10.0.0.9:8080:80",
        "5353:53/udp",
        "9000-9001:90-91,8080",
    ] {
        let Ok(parsed) = spec.split(',').next().unwrap().parse::<PortSpec>() else {
            continue;
        };
        let mut list = vec![parsed];
        if spec.contains(',') {
            list.push("8080:80".parse().unwrap());
        }
        let err = e.port_add(&blue, &list).unwrap_err().to_string();
        assert!(err.contains("already published"), "{spec}: {err}");
        assert_eq!(
            (rows(e), e.kernel().fw.clone()),
            before,
            "{spec} changed state"
        );
    }
    // Busy on the host.
    e.kernel().busy_ports.insert("tcp/2222".into());
    let err = e
        .port_add(&blue, &specs(&["2222:22"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("in use on the host"), "{err}");
    // IPv6 loopback is refused with the reason.
    let err = e
        .port_add(&blue, &specs(&["[::1]:7000:70"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("::1"), "{err}");
    // A range on a running endpoint, then removal.
    let added = e.port_add(&blue, &specs(&["9000-9002:90-92"])).unwrap();
    assert_eq!(added.len(), 3);
    assert!(e.kernel().fw.contains("pf_any4 tcp . 9002 : 10.1.0.3 . 92"));
    e.port_rm(&blue, &specs(&["9000-9002:90-92"])).unwrap();
    assert!(!e.kernel().fw.iter().any(|x| x.contains("9001")));
    let err = e
        .port_rm(&blue, &specs(&["9000:90"]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("published port 9000:90/tcp of netns blue not found"),
        "{err}"
    );
    // Disconnect takes the ports' elements and rows with it.
    e.disconnect(&NetName::new("lan").unwrap(), &NsRef::Named("red".into()))
        .unwrap();
    assert!(
        !e.kernel().fw.iter().any(|x| x.starts_with("pf_")),
        "{:?}",
        e.kernel().fw
    );
    assert_eq!(count(e, "ports"), 0);
}

#[test]
fn connect_with_publish_rolls_back_everything_on_failure() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("red").unwrap()).unwrap();
    e.network_create(net("lan", "10.1.0.0/24", false)).unwrap();
    let before = (rows(e), e.kernel().fw.clone());
    e.kernel().fail_on = Some("firewall: add pf_any4".into());
    let mut req = connect("lan", "red");
    req.publish = specs(&["8080:80"]);
    let err = e.connect(req).unwrap_err().to_string();
    assert!(err.contains("injected"), "{err}");
    assert_eq!((rows(e), e.kernel().fw.clone()), before);
    assert!(e.kernel().links_in("red").is_empty());
}

#[test]
fn internal_networks_cannot_publish_and_icc_off_adds_port_elements() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("red").unwrap()).unwrap();
    e.network_create(net("int", "10.1.0.0/24", true)).unwrap();
    let mut req = connect("int", "red");
    req.publish = specs(&["8080:80"]);
    assert!(e.connect(req).unwrap_err().to_string().contains("internal"));
    let quiet = NetworkRequest {
        spec: NetworkSpec::builder(NetName::new("quiet").unwrap())
            .subnets(["10.2.0.0/24".parse().unwrap()])
            .icc(false)
            .build()
            .unwrap(),
    };
    e.network_create(quiet).unwrap();
    let ep = e.connect(connect("quiet", "red")).unwrap();
    assert!(
        e.kernel()
            .fw
            .contains(&format!("noicc_ports \"{}\"", ep.host_ifname))
    );
    assert!(e.kernel().fw.contains("internal_bridges \"nsbr-int\""));
}

#[test]
fn repair_restores_every_element_and_last_network_removes_tables() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("red").unwrap()).unwrap();
    e.network_create(net("lan", "10.1.0.0/24", false)).unwrap();
    let mut req = connect("lan", "red");
    req.publish = specs(&["8080:80"]);
    e.connect(req).unwrap();
    let full = e.kernel().fw.clone();
    // `nft flush ruleset` by someone else:
    e.kernel().fw_installed = false;
    e.kernel().fw.clear();
    let report = e.repair().unwrap();
    assert_eq!((report.networks, report.endpoints, report.ports), (1, 1, 1));
    assert_eq!(e.kernel().fw, full);
    e.network_rm(&NetName::new("lan").unwrap(), true).unwrap();
    assert!(!e.kernel().fw_installed && e.kernel().fw.is_empty());
}

/// A bridge deleted by hand is made again with its ports; a host end whose namespace went
/// without nsnet (gc's to collect) does not stop the repair of the rest.
#[test]
fn repair_makes_a_deleted_bridge_again_and_skips_vanished_host_ends() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("red").unwrap()).unwrap();
    e.netns_add(&NsName::new("blue").unwrap()).unwrap();
    e.network_create(net("lan", "10.1.0.0/24", false)).unwrap();
    let red = e.connect(connect("lan", "red")).unwrap();
    let blue = e.connect(connect("lan", "blue")).unwrap();
    let host = NsRef::Host.to_string();
    let links = e.kernel().links.get_mut(&host).unwrap();
    assert!(links.remove("nsbr-lan"), "{links:?}");
    assert!(links.remove(blue.host_ifname.as_str()), "{links:?}");
    e.kernel().log.clear();

    let report = e.repair().unwrap();
    assert_eq!((report.networks, report.endpoints), (1, 2));
    assert!(e.kernel().links_in(&host).contains(&"nsbr-lan".to_string()));
    let log = &e.kernel().log;
    assert!(
        log.iter()
            .any(|op| matches!(op, KernelOp::CreateBridge { name, .. } if name == "nsbr-lan")),
        "{log:?}"
    );
    assert!(
        log.contains(&KernelOp::SetMaster {
            ifname: red.host_ifname.to_string(),
            master: "nsbr-lan".into(),
        }),
        "{log:?}"
    );
}

/// A connect still being made (its row `creating`, its veth made down, not yet up) brings its
/// own host end up with IPv6 off first: repair, running meanwhile, must not bring it up or
/// attach it in another order; it keeps the endpoint's firewall elements.
#[test]
fn repair_leaves_the_links_of_a_connect_being_made_alone() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("red").unwrap()).unwrap();
    e.network_create(net("lan", "10.1.0.0/24", false)).unwrap();
    let row = recorded_endpoint("red", std::process::id(), None);
    let host_ifname = row.host_ifname.clone();
    e.store().write(|tx| tx.insert_endpoint(&row)).unwrap();
    // Its veth made, down, not a port yet: where the connect is between its kernel steps.
    let host = NsRef::Host.to_string();
    e.kernel()
        .links
        .entry(host)
        .or_default()
        .insert(host_ifname.to_string());
    e.kernel().log.clear();

    let report = e.repair().unwrap();
    assert_eq!((report.networks, report.endpoints), (1, 1));
    let log = &e.kernel().log;
    let touched = |op: &KernelOp| match op {
        KernelOp::SetMaster { ifname, .. }
        | KernelOp::Hairpin { ifname, .. }
        | KernelOp::LinkUp { ifname, .. } => ifname == host_ifname.as_str(),
        _ => false,
    };
    assert!(!log.iter().any(touched), "{log:?}");
}

/// A runtime's attachment (recorded by its namespace's path) whose veth pair is gone is
/// named by repair, not made again: its routes came with the runtime's request and are not
/// recorded, so a pair made with nsnet's own rule could route the pod wrongly.
#[test]
fn repair_names_a_runtimes_attachment_whose_veth_is_gone_and_makes_nothing() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.network_create(net("lan", "10.1.0.0/24", false)).unwrap();
    let path = "/var/run/netns/cni-1234";
    e.kernel().netns.insert(path.into());
    e.store()
        .write(|tx| {
            let id =
                tx.insert_endpoint(&recorded_endpoint(path, std::process::id(), Some("c0ffee")))?;
            tx.set_endpoint_ready(id)
        })
        .unwrap();
    e.kernel().log.clear();

    let report = e.repair().unwrap();
    assert_eq!(report.veths, 0);
    assert_eq!(report.veths_left.len(), 1, "{:?}", report.veths_left);
    assert!(
        report.veths_left[0].starts_with(&format!(
            "endpoint {path} on network lan: attached by a container runtime"
        )),
        "{:?}",
        report.veths_left
    );
    let log = &e.kernel().log;
    assert!(
        !log.iter()
            .any(|op| matches!(op, KernelOp::CreateVeth { .. })),
        "{log:?}"
    );
}

#[test]
fn after_a_reboot_networks_are_recreated_and_stale_endpoints_released() {
    let dir = tempfile::tempdir().unwrap();
    let mut before = Engine::new(
        Store::open(dir.path()).unwrap(),
        FakeKernel::default(),
        1,
        "boot-a".into(),
    );
    before.netns_add(&NsName::new("red").unwrap()).unwrap();
    before
        .network_create(net("lan", "10.1.0.0/24", false))
        .unwrap();
    before.connect(connect("lan", "red")).unwrap();
    // Reboot: the kernel forgot everything; namespaces are recreated by their owners.
    let mut kernel = FakeKernel::default();
    kernel.netns.insert("red".into());
    let mut after = Engine::new(Store::open(dir.path()).unwrap(), kernel, 2, "boot-b".into());
    let ep = after.connect(connect("lan", "red")).unwrap();
    assert_eq!(
        ep.addrs[0].to_string(),
        "10.1.0.2/24",
        "stale endpoint kept its address"
    );
    assert!(
        after
            .kernel()
            .links_in("host")
            .contains(&"nsbr-lan".to_string())
    );
    assert!(after.kernel().fw.contains("bridges \"nsbr-lan\""));
    assert_eq!(count(&mut after, "endpoints"), 1);
    // The same bridge MAC both times (none is stored: a network from before pinning gets it too).
    let bridge_macs = |k: &FakeKernel| -> Vec<Mac> {
        k.log
            .iter()
            .filter_map(|op| match op {
                KernelOp::CreateBridge { mac, .. } => Some(*mac),
                _ => None,
            })
            .collect()
    };
    let lan = Mac::for_bridge(&NetName::new("lan").unwrap());
    assert_eq!(bridge_macs(before.kernel()), [lan]);
    assert_eq!(bridge_macs(after.kernel()), [lan]);
}

#[test]
fn a_mac_is_unique_on_its_network() {
    let mut f = fixture();
    let e = &mut f.engine;
    for ns in ["a", "b", "c", "d"] {
        e.netns_add(&NsName::new(ns).unwrap()).unwrap();
    }
    e.network_create(net("lan", "10.1.0.0/24", false)).unwrap();
    e.network_create(net("other", "10.2.0.0/24", false))
        .unwrap();
    let a = e.connect(connect("lan", "a")).unwrap();
    let taken = a.mac.clone().unwrap();
    let before = rows(e);
    let log_len = e.kernel().log.len();
    let mut req = connect("lan", "b");
    req.mac = Some(taken.parse().unwrap());
    let err = e.connect(req.clone()).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "connect netns b to network lan: MAC {taken} is already used by netns a on network lan (a switch cannot deliver to two interfaces with one MAC); choose another, or let nsnet derive one"
        )
    );
    assert_eq!(rows(e), before);
    assert_eq!(e.kernel().log.len(), log_len, "kernel touched");
    // Another network is another switch.
    req.network = NetName::new("other").unwrap();
    assert_eq!(e.connect(req).unwrap().mac.unwrap(), taken);
    // The MAC nsnet would derive for the next address (.4) was asked for by c: d gets
    // another stable, locally administered one.
    let mut req = connect("lan", "c");
    req.mac = Some("0a:58:0a:01:00:04".parse().unwrap());
    let c = e.connect(req).unwrap();
    assert_eq!(c.addrs[0].to_string(), "10.1.0.3/24");
    let d = e.connect(connect("lan", "d")).unwrap();
    assert_eq!(d.addrs[0].to_string(), "10.1.0.4/24");
    let mac = d.mac.unwrap();
    assert_ne!(Some(mac.clone()), c.mac);
    assert!(mac.starts_with("02:"), "{mac}");
}

#[test]
fn links_and_ports_are_checked_before_any_change() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.netns_add(&NsName::new("a").unwrap()).unwrap();
    e.netns_add(&NsName::new("b").unwrap()).unwrap();
    e.network_create(net("lan", "10.1.0.0/24", false)).unwrap();
    e.connect(connect("lan", "a")).unwrap();
    let before = rows(e);
    let log_len = e.kernel().log.len();
    let link = |mtu: Option<u32>, a: &str, b: &str| LinkRequest {
        a: NsRef::Named("a".into()),
        b: NsRef::Named("b".into()),
        ifname_a: None,
        ifname_b: None,
        addr_a: Some(a.parse().unwrap()),
        addr_b: Some(b.parse().unwrap()),
        mtu,
    };
    for (req, want) in [
        (
            link(Some(10), "10.9.0.1/24", "10.9.0.2/24"),
            "link netns a with netns b: invalid mtu \"10\": allowed: 68-65535",
        ),
        (
            link(Some(1000), "fd00::1/64", "fd00::2/64"),
            "link netns a with netns b: invalid mtu \"1000\": allowed: 1280-65535 (IPv6 needs at least 1280)",
        ),
        (
            link(None, "10.9.0.1/24", "10.9.0.1/24"),
            "link netns a with netns b: invalid link address \"10.9.0.1\": is given to both ends; each end needs its own address",
        ),
    ] {
        assert_eq!(e.link_add(req).unwrap_err().to_string(), want);
    }
    // The fake host holds only the bridge's address (as live, the view shows it): 192.0.2.1
    // cannot be published on.
    let err = e
        .port_add(&NsRef::Named("a".into()), &specs(&["192.0.2.1:8080:80"]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "cannot publish 192.0.2.1:8080:80/tcp: the host holds no address 192.0.2.1 (it holds 10.1.0.1); assign it to a host interface first, or publish on every address"
    );
    let err = e
        .port_add(&NsRef::Named("nope".into()), &specs(&["8080:80"]))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "netns nope not found");
    assert_eq!(rows(e), before);
    assert_eq!(e.kernel().log.len(), log_len, "kernel touched");
    e.kernel().host_addrs.insert("192.0.2.1".parse().unwrap());
    e.port_add(
        &NsRef::Named("a".into()),
        &specs(&["127.0.0.1:8080:80", "8081:80", "192.0.2.1:8082:80"]),
    )
    .unwrap();
}

/// A veth pair deleted from inside its namespace (the namespace stays): doctor names the
/// endpoint; repair issues the connect path's veth plan with the recorded names, MAC and
/// addresses (the default route only for the namespace's primary endpoint) and nothing for
/// the healthy ones; a second repair issues none; a step that fails is undone and named.
#[test]
fn repair_makes_a_deleted_veth_pair_again_as_recorded() {
    use nsnet_sys::kernel::Kernel;
    let mut f = fixture();
    let e = &mut f.engine;
    for ns in ["red", "blue", "gone"] {
        e.netns_add(&NsName::new(ns).unwrap()).unwrap();
    }
    e.network_create(net("lan", "10.4.0.0/24", false)).unwrap();
    e.network_create(net("back", "10.5.0.0/24", false)).unwrap();
    let mut req = connect("lan", "red");
    req.publish = vec!["8080:80".parse::<PortSpec>().unwrap()];
    let red = e.connect(req).unwrap();
    let red_back = e.connect(connect("back", "red")).unwrap();
    e.connect(connect("lan", "blue")).unwrap();
    e.connect(connect("lan", "gone")).unwrap();
    assert!(red.primary && !red_back.primary);
    let fw_before = e.kernel().fw.clone();
    // `ip -n red link del eth0` and `ip -n red link del eth1`; namespace gone's deleted.
    for ifname in ["eth0", "eth1"] {
        e.kernel()
            .apply(&KernelOp::DeleteLink {
                ns: NsRef::Named("red".into()),
                ifname: ifname.into(),
            })
            .unwrap();
    }
    e.kernel().netns.remove("gone");
    let sick = e.doctor_store().unwrap();
    assert_eq!(sick.veths, 4);
    let mut gone = sick.gone_veths.clone();
    gone.sort();
    assert_eq!(
        gone,
        [
            format!(
                "endpoint red on network back: veth {} / eth1 in netns red is gone; `nsnet repair` makes it again",
                red_back.host_ifname
            ),
            format!(
                "endpoint red on network lan: veth {} / eth0 in netns red is gone; `nsnet repair` makes it again",
                red.host_ifname
            ),
        ],
        "{sick:?}"
    );
    assert!(
        !e.kernel().links_in("red").contains(&"eth0".to_string()),
        "doctor must not remake"
    );

    // What the connect path plans for the veth part, with what the store recorded.
    let layout = |ifname: &str, host: &str, mac: &Option<String>, addrs: &[ipnet::IpNet], via| {
        nsnet_core::plan::EndpointLayout {
            ns: NsRef::Named("red".into()),
            ifname: IfName::new(ifname).unwrap(),
            host_ifname: IfName::new(host).unwrap(),
            mac: mac.as_deref().map(|m| m.parse::<Mac>().unwrap()),
            addrs: addrs.to_vec(),
            default_via: via,
        }
    };
    let lan = net("lan", "10.4.0.0/24", false).spec;
    let back = net("back", "10.5.0.0/24", false).spec;
    let want_lan = nsnet_core::plan::endpoint_veth(
        &lan,
        &layout(
            "eth0",
            &red.host_ifname,
            &red.mac,
            &red.addrs,
            vec!["10.4.0.1".parse().unwrap()],
        ),
    );
    let want_back = nsnet_core::plan::endpoint_veth(
        &back,
        &layout(
            "eth1",
            &red_back.host_ifname,
            &red_back.mac,
            &red_back.addrs,
            vec![],
        ),
    );
    assert!(
        want_lan
            .iter()
            .any(|op| matches!(op, KernelOp::AddRoute { .. }))
    );

    // A step failing half-way: what was made is undone, the endpoint named, the rest repaired.
    e.kernel().fail_on = Some("add address 10.5.0.2/24".into());
    let failed = e.repair().unwrap();
    assert_eq!(failed.veths, 1, "{failed:?}");
    assert_eq!(failed.veths_left.len(), 1, "{failed:?}");
    assert!(
        failed.veths_left[0].starts_with("endpoint red on network back: ")
            && failed.veths_left[0].contains("injected failure"),
        "{failed:?}"
    );
    assert!(
        !e.kernel()
            .links_in(&NsRef::Host.to_string())
            .contains(&red_back.host_ifname),
        "a half-made pair was left"
    );
    assert!(!e.kernel().links_in("red").contains(&"eth1".to_string()));

    e.kernel().log.clear();
    let report = e.repair().unwrap();
    assert_eq!(
        (report.veths, report.veths_left.len()),
        (1, 0),
        "{report:?}"
    );
    // Only `back`'s pair was missing now (lan's was made by the first repair): its plan, in
    // order, from its veth on.
    let log = &e.kernel().log;
    let at = log
        .iter()
        .position(|op| matches!(op, KernelOp::CreateVeth { .. }))
        .unwrap_or_else(|| panic!("no veth made: {log:?}"));
    let made = &log[at..(at + want_back.len()).min(log.len())];
    assert_eq!(made, want_back, "{log:?}");
    assert!(
        !e.kernel().log.iter().any(|op| matches!(
            op,
            KernelOp::CreateVeth { b, .. } if b.ns != NsRef::Named("red".into())
        )),
        "a healthy endpoint or one whose namespace is gone was touched: {:?}",
        e.kernel().log
    );
    let host = NsRef::Host.to_string();
    assert_eq!(
        e.kernel()
            .masters
            .get(&(host.clone(), red.host_ifname.clone())),
        Some(&"nsbr-lan".to_string())
    );
    let routes = &e.kernel().routes["red"];
    assert!(
        routes
            .iter()
            .any(|r| r.dest.to_string() == "0.0.0.0/0" && r.dev.as_deref() == Some("eth0")),
        "{routes:?}"
    );
    assert!(
        !routes
            .iter()
            .any(|r| r.dest.to_string() == "0.0.0.0/0" && r.dev.as_deref() == Some("eth1")),
        "{routes:?}"
    );
    assert_eq!(e.kernel().fw, fw_before, "firewall elements differ");
    let healthy = e.doctor_store().unwrap();
    assert!(healthy.gone_veths.is_empty(), "{healthy:?}");

    // Idempotent: nothing of a veth the second time.
    e.kernel().log.clear();
    let again = e.repair().unwrap();
    assert_eq!((again.veths, again.veths_left.len()), (0, 0));
    assert!(
        !e.kernel().log.iter().any(|op| matches!(
            op,
            KernelOp::CreateVeth { .. } | KernelOp::AddAddr { .. } | KernelOp::AddRoute { .. }
        )),
        "{:?}",
        e.kernel().log
    );
}
