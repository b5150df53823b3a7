//! The contract written on `Net` and `Firewall`, as one scenario run against both kernels:
//! `FakeKernel` always, `LiveKernel` as root inside a throwaway sandbox (own network and mount
//! namespaces, private /run/netns). Where the two disagree, the engine's fake tests prove
//! nothing about the real thing, so any difference fails here.

use ipnet::IpNet;
use nsnet_core::firewall::{FAMILY_INET, FwChange, FwElem, FwKey, SET_BRIDGES, SET_MASQ};
use nsnet_core::ops::{KernelOp, NsRef, VethEnd};
use nsnet_sys::fake::FakeKernel;
use nsnet_sys::kernel::{FailKind, Kernel, KernelError};
use nsnet_sys::live::LiveKernel;

fn ns(name: &str) -> NsRef {
    NsRef::Named(name.to_string())
}

fn net(s: &str) -> IpNet {
    s.parse().expect("test network")
}

/// The kind of the error `res` must be, naming the step when it is not one.
#[track_caller]
fn kind_of<T: std::fmt::Debug>(step: &str, res: Result<T, KernelError>) -> FailKind {
    match res {
        Ok(v) => panic!("{step}: succeeded ({v:?}), expected a failure"),
        Err(e) => e.kind,
    }
}

#[track_caller]
fn ok<T>(step: &str, res: Result<T, KernelError>) -> T {
    res.unwrap_or_else(|e| panic!("{step}: {e}"))
}

fn veth() -> KernelOp {
    let end = |n: &str, i: &str| VethEnd {
        ns: ns(n),
        name: i.to_string(),
        mac: None,
        master: None,
        ipv6: false,
    };
    KernelOp::CreateVeth {
        a: end("ca", "va"),
        b: end("cb", "vb"),
        mtu: None,
    }
}

fn addr(op: &str, ifname: &str, cidr: &str) -> KernelOp {
    let (ns, ifname, addr) = (
        ns(if ifname == "va" { "ca" } else { "cb" }),
        ifname.into(),
        net(cidr),
    );
    match op {
        "add" => KernelOp::AddAddr { ns, ifname, addr },
        _ => KernelOp::DelAddr { ns, ifname, addr },
    }
}

fn route(op: &str, dest: &str, via: Option<&str>, dev: &str) -> KernelOp {
    let (ns, dest) = (ns("ca"), net(dest));
    let via = via.map(|v| v.parse().expect("test gateway"));
    let dev = Some(dev.to_string());
    match op {
        "add" => KernelOp::AddRoute { ns, dest, via, dev },
        _ => KernelOp::DelRoute { ns, dest, via, dev },
    }
}

fn elem(set: &str, ifname: &str) -> FwElem {
    FwElem {
        family: FAMILY_INET,
        set: set.to_string(),
        key: FwKey::Ifname(ifname.to_string()),
        data: None,
    }
}

fn fw(changes: &[FwChange]) -> KernelOp {
    KernelOp::Firewall(changes.to_vec())
}

/// Interface names of `ns` as `view` shows them.
fn names<K: Kernel>(k: &mut K, n: &str) -> Vec<String> {
    let view = ok(&format!("view {n}"), k.view(&ns(n)));
    view.interfaces.into_iter().map(|i| i.name).collect()
}

/// Namespaces, links, addresses and routes.
fn net_scenario<K: Kernel>(k: &mut K) {
    use FailKind::{Exists, NotFound};
    ok("create ca", k.create_netns("ca"));
    ok("create cb", k.create_netns("cb"));
    assert_eq!(kind_of("create ca again", k.create_netns("ca")), Exists);
    let listed = ok("list", k.list_netns());
    assert!(
        listed.contains(&"ca".into()) && listed.contains(&"cb".into()),
        "{listed:?}"
    );
    assert!(k.netns_exists(&ns("ca")) && k.netns_exists(&NsRef::Host));
    assert!(!k.netns_exists(&ns("nope")));
    assert_eq!(kind_of("view nope", k.view(&ns("nope"))), NotFound);

    // Links: a veth across the two namespaces.
    ok("veth", k.apply(&veth()));
    assert!(names(k, "ca").contains(&"va".into()));
    assert!(names(k, "cb").contains(&"vb".into()));
    assert_eq!(kind_of("veth again", k.apply(&veth())), Exists);
    let up = |ifname: &str| KernelOp::LinkUp {
        ns: ns("ca"),
        ifname: ifname.into(),
    };
    ok("lo up", k.apply(&up("lo")));
    ok("va up", k.apply(&up("va")));
    assert_eq!(kind_of("missing up", k.apply(&up("nope0"))), NotFound);

    // Addresses.
    ok("add va addr", k.apply(&addr("add", "va", "10.77.0.1/24")));
    ok("add vb addr", k.apply(&addr("add", "vb", "10.77.0.2/24")));
    let again = k.apply(&addr("add", "va", "10.77.0.1/24"));
    assert_eq!(kind_of("add va addr again", again), Exists);
    let missing_if = k.apply(&addr("add", "nope0", "10.77.0.9/24"));
    assert_eq!(
        kind_of("add addr to missing interface", missing_if),
        NotFound
    );
    let view = ok("view ca", k.view(&ns("ca")));
    let va = view
        .interfaces
        .iter()
        .find(|i| i.name == "va")
        .expect("va in view");
    assert!(va.addrs.contains(&net("10.77.0.1/24")), "{va:?}");

    // Routes: through a gateway and on-link.
    ok(
        "add route via",
        k.apply(&route("add", "10.88.0.0/24", Some("10.77.0.2"), "va")),
    );
    ok(
        "add route dev",
        k.apply(&route("add", "10.99.0.0/24", None, "va")),
    );
    let again = k.apply(&route("add", "10.88.0.0/24", Some("10.77.0.2"), "va"));
    assert_eq!(kind_of("add route again", again), Exists);
    let missing_dev = k.apply(&route("add", "10.66.0.0/24", None, "nope0"));
    assert_eq!(
        kind_of("add route on missing interface", missing_dev),
        NotFound
    );
    let view = ok("view ca", k.view(&ns("ca")));
    let via = view.routes.iter().find(|r| r.dest == net("10.88.0.0/24"));
    let via = via.unwrap_or_else(|| panic!("route 10.88.0.0/24 in {:?}", view.routes));
    assert_eq!(via.via, Some("10.77.0.2".parse().unwrap()));
    assert_eq!(via.dev.as_deref(), Some("va"));
    assert!(view.routes.iter().any(|r| r.dest == net("10.99.0.0/24")));

    // Overlapping routes: a wider query, a narrower one inside a route, and none; the device is
    // named as in `view`.
    let found = ok(
        "routes overlapping 10.88.0.0/16",
        k.routes_overlapping(&ns("ca"), &[net("10.88.0.0/16"), net("fd00::/8")]),
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].dest, net("10.88.0.0/24"));
    assert_eq!(found[0].via, Some("10.77.0.2".parse().unwrap()));
    assert_eq!(found[0].dev.as_deref(), Some("va"));
    let found = ok(
        "routes overlapping 10.99.0.128/25",
        k.routes_overlapping(&ns("ca"), &[net("10.99.0.128/25")]),
    );
    let dests: Vec<IpNet> = found.iter().map(|r| r.dest).collect();
    assert_eq!(dests, vec![net("10.99.0.0/24")]);
    let found = ok(
        "routes overlapping 10.55.0.0/24",
        k.routes_overlapping(&ns("ca"), &[net("10.55.0.0/24"), net("fd00::/8")]),
    );
    assert!(found.is_empty(), "{found:?}");
    assert_eq!(
        kind_of(
            "routes overlapping in a missing netns",
            k.routes_overlapping(&ns("nope"), &[net("10.88.0.0/16")])
        ),
        NotFound
    );

    // Deleting, then deleting again: missing is NotFound for each kind.
    for op in [
        route("del", "10.88.0.0/24", Some("10.77.0.2"), "va"),
        route("del", "10.99.0.0/24", None, "va"),
        addr("del", "va", "10.77.0.1/24"),
    ] {
        ok(&op.to_string(), k.apply(&op));
        assert_eq!(kind_of(&format!("{op} again"), k.apply(&op)), NotFound);
    }
    let view = ok("view ca", k.view(&ns("ca")));
    assert!(!view.routes.iter().any(|r| r.dest == net("10.88.0.0/24")));
    let del = |n: &str, ifname: &str| KernelOp::DeleteLink {
        ns: ns(n),
        ifname: ifname.into(),
    };
    ok("delete va", k.apply(&del("ca", "va")));
    assert!(!names(k, "ca").contains(&"va".into()));
    assert!(
        !names(k, "cb").contains(&"vb".into()),
        "the peer goes with its veth"
    );
    assert_eq!(
        kind_of("delete va again", k.apply(&del("ca", "va"))),
        NotFound
    );
    assert_eq!(
        kind_of("delete vb (peer)", k.apply(&del("cb", "vb"))),
        NotFound
    );
    let gone = k.apply(&addr("del", "vb", "10.77.0.2/24"));
    assert_eq!(
        kind_of("delete address of a deleted interface", gone),
        NotFound
    );
    assert_eq!(
        kind_of("delete in missing netns", k.apply(&del("nope", "x"))),
        NotFound
    );

    // Namespaces: deleting takes what is inside; missing is Ok(false).
    ok("veth 2", k.apply(&veth()));
    assert!(ok("delete cb", k.delete_netns("cb")));
    // The kernel frees a namespace (and so its veths' peers) asynchronously, after the last
    // reference is gone: give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while names(k, "ca").contains(&"va".into()) {
        assert!(
            std::time::Instant::now() < deadline,
            "a veth dies with its peer's netns"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!ok("delete cb again", k.delete_netns("cb")));
    assert!(ok("delete ca", k.delete_netns("ca")));
    assert!(!k.netns_exists(&ns("ca")));
}

/// nsnet's firewall tables and their elements.
fn firewall_scenario<K: Kernel>(k: &mut K) {
    use FailKind::{Exists, NotFound};
    let (br, masq, other) = (
        elem(SET_BRIDGES, "nsbr-c"),
        elem(SET_MASQ, "nsbr-c"),
        elem(SET_BRIDGES, "nsbr-x"),
    );
    ok("remove missing tables", k.fw_remove());
    assert!(!ok("has without tables", k.fw_has(&br)));
    let add = k.apply(&fw(&[FwChange::Add(br.clone())]));
    assert_eq!(kind_of("add without tables", add), NotFound);
    ok("empty batch", k.apply(&fw(&[])));

    ok("ensure", k.fw_ensure());
    ok("ensure again", k.fw_ensure());
    assert!(!ok("has before add", k.fw_has(&br)));
    ok(
        "add",
        k.apply(&fw(&[
            FwChange::Add(br.clone()),
            FwChange::Add(masq.clone()),
        ])),
    );
    assert!(ok("has after add", k.fw_has(&br)));
    assert!(ok("has masq", k.fw_has(&masq)));
    let dup = k.apply(&fw(&[FwChange::Add(br.clone())]));
    assert_eq!(kind_of("duplicate add", dup), Exists);
    // All or nothing: a batch with a failing step changes nothing.
    let mixed = k.apply(&fw(&[
        FwChange::Add(other.clone()),
        FwChange::Del(elem(SET_MASQ, "nsbr-x")),
    ]));
    assert_eq!(kind_of("add with a missing delete", mixed), NotFound);
    assert!(!ok("has other after failed batch", k.fw_has(&other)));
    ok("empty batch with tables", k.apply(&fw(&[])));
    // Deletions alone remove what is there, even when some elements are gone already.
    ok(
        "delete",
        k.apply(&fw(&[
            FwChange::Del(br.clone()),
            FwChange::Del(other.clone()),
        ])),
    );
    assert!(!ok("has after delete", k.fw_has(&br)));
    assert!(ok("masq kept", k.fw_has(&masq)));
    ok("delete again", k.apply(&fw(&[FwChange::Del(br.clone())])));
    ok("ensure keeps elements", k.fw_ensure());
    assert!(ok("masq kept by ensure", k.fw_has(&masq)));
    ok("remove", k.fw_remove());
    assert!(!ok("has after remove", k.fw_has(&masq)));
    ok("remove again", k.fw_remove());
}

fn scenario<K: Kernel>(k: &mut K) {
    net_scenario(k);
    firewall_scenario(k);
}

#[test]
fn fake_kernel_keeps_the_contract() {
    scenario(&mut FakeKernel::default());
}

#[test]
fn live_kernel_keeps_the_contract() {
    nsnet_sys::require_root!();
    nsnet_sys::testkit::in_sandbox(|| scenario(&mut LiveKernel::new()));
}

/// Open vSwitch ops: a bridge with its local port as a host interface, ports of existing host
/// interfaces, `Exists` and `NotFound` as for links; a port outlives its device until deleted.
fn ovs_scenario<K: Kernel>(k: &mut K) {
    let bridge = |name: &str| KernelOp::OvsAddBridge {
        name: name.into(),
        network: "c".into(),
        mtu: Some(1400),
        mac: nsnet_core::model::Mac([2, 0, 0, 0, 0, 1]),
    };
    let del_bridge = KernelOp::OvsDelBridge {
        name: "nsbr-c".into(),
    };
    let port = |p: &str| KernelOp::OvsAddPort {
        bridge: "nsbr-c".into(),
        port: p.into(),
        network: "c".into(),
        protected: true,
    };
    let del_port = |p: &str| KernelOp::OvsDelPort {
        bridge: "nsbr-c".into(),
        port: p.into(),
    };
    assert_eq!(
        kind_of("delete missing bridge", k.apply(&del_bridge)),
        FailKind::NotFound
    );
    ok("add bridge", k.apply(&bridge("nsbr-c")));
    ok(
        "local port is a host interface",
        k.apply(&KernelOp::LinkUp {
            ns: NsRef::Host,
            ifname: "nsbr-c".into(),
        }),
    );
    assert_eq!(
        kind_of("add bridge again", k.apply(&bridge("nsbr-c"))),
        FailKind::Exists
    );
    ok("netns", k.create_netns("oc"));
    let end = |n: NsRef, i: &str| VethEnd {
        ns: n,
        name: i.to_string(),
        mac: None,
        master: None,
        ipv6: false,
    };
    ok(
        "veth",
        k.apply(&KernelOp::CreateVeth {
            a: end(NsRef::Host, "pa"),
            b: end(ns("oc"), "pb"),
            mtu: None,
        }),
    );
    ok("add port", k.apply(&port("pa")));
    assert_eq!(
        kind_of("add port again", k.apply(&port("pa"))),
        FailKind::Exists
    );
    assert_eq!(
        kind_of("port of a missing interface", k.apply(&port("nope"))),
        FailKind::NotFound
    );
    let other = KernelOp::OvsAddPort {
        bridge: "nsbr-x".into(),
        port: "pa".into(),
        network: "c".into(),
        protected: false,
    };
    assert_eq!(
        kind_of("port on a missing bridge", k.apply(&other)),
        FailKind::NotFound
    );
    ok(
        "device gone",
        k.apply(&KernelOp::DeleteLink {
            ns: NsRef::Host,
            ifname: "pa".into(),
        }),
    );
    ok("delete port of a gone device", k.apply(&del_port("pa")));
    assert_eq!(
        kind_of("delete port again", k.apply(&del_port("pa"))),
        FailKind::NotFound
    );
    ok("delete bridge", k.apply(&del_bridge));
    assert_eq!(
        kind_of("delete bridge again", k.apply(&del_bridge)),
        FailKind::NotFound
    );
    assert_eq!(
        kind_of(
            "local port gone with the bridge",
            k.apply(&KernelOp::LinkUp {
                ns: NsRef::Host,
                ifname: "nsbr-c".into(),
            })
        ),
        FailKind::NotFound
    );
    ok("netns gone", k.delete_netns("oc"));
}

#[test]
fn fake_kernel_keeps_the_ovs_contract() {
    ovs_scenario(&mut FakeKernel::default());
}

#[test]
fn live_kernel_keeps_the_ovs_contract() {
    nsnet_sys::require_root!();
    if nsnet_sys::ovs::installed().is_err() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v.is_empty()),
            "Open vSwitch is not installed and CI is set: run scripts/deps.sh"
        );
        eprintln!("skipped: Open vSwitch is not installed");
        return;
    }
    let dir = nsnet_sys::testkit::scratch_dir("ovs-contract");
    /// Stops the daemons the scenario started, whatever happens to it, and drops their files.
    struct Stop(nsnet_sys::ovs::daemon::OvsDir);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.stop();
            if let Some(scratch) = self.0.0.parent() {
                let _ = std::fs::remove_dir_all(scratch);
            }
        }
    }
    let _stop = Stop(nsnet_sys::ovs::daemon::OvsDir(dir.join("ovs")));
    nsnet_sys::testkit::in_sandbox(|| {
        ovs_scenario(&mut LiveKernel::new().with_ovs_dir(dir.join("ovs")))
    });
}
