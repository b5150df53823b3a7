//! Rate limits on an attachment with a recording fake kernel: where each direction is
//! shaped, refusals before any kernel work, a failure half-way taken back, and the records
//! `repair` restores from, which go with their endpoint or link.

mod common;

use common::{fixture, spec};

use nsnet_core::endpoint::{RoutePolicy, StaticRoute};
use nsnet_core::names::{IfName, NetName};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::shaping::Shaping;
use nsnet_engine::views::EndpointView;
use nsnet_engine::{AttachRequest, Engine, EngineError, LinkRequest, OwnerKey};
use nsnet_sys::fake::FakeKernel;
use nsnet_sys::kernel::Net;

fn rate(bps: u64, burst: u64) -> Shaping {
    Shaping {
        rate_bps: Some(bps),
        burst_bits: Some(burst),
        ..Shaping::default()
    }
}

fn shapes(log: &[KernelOp]) -> Vec<String> {
    log.iter()
        .filter(|op| matches!(op, KernelOp::Shape { .. }))
        .map(|op| op.to_string())
        .collect()
}

/// A pod attached to network `pods` (in namespace /run/netns/pod) with a default route.
fn attached_pod(e: &mut Engine<FakeKernel>) -> (NetName, OwnerKey, EndpointView, String) {
    let s = spec("pods", "10.244.1.0/24");
    let path = "/run/netns/pod".to_string();
    e.kernel().create_netns(&path).unwrap();
    let key = OwnerKey {
        owner_id: "pod".into(),
        ifname: IfName::new("eth0").unwrap(),
    };
    let ep = e
        .attach(&AttachRequest {
            key: key.clone(),
            network: s.clone(),
            netns: NsRef::Named(path.clone()),
            ips: vec![],
            mac: None,
            publish: vec![],
            ranges: vec![],
            no_default_route: false,
            routes: RoutePolicy::Explicit(vec![StaticRoute {
                dest: "0.0.0.0/0".parse().unwrap(),
                via: s.subnets()[0].gateway,
            }]),
            aliases: vec![],
        })
        .unwrap();
    (NetName::new("pods").unwrap(), key, ep, path)
}

#[test]
fn each_direction_on_its_veth_end_and_a_half_failure_undone() {
    let mut f = fixture();
    let e = &mut f.engine;
    let (name, key, ep, path) = attached_pod(e);
    e.attachment_shape(
        &name,
        &key,
        rate(20_000_000, 204_800),
        rate(10_000_000, 102_400),
    )
    .unwrap();
    assert_eq!(
        shapes(&e.kernel().log),
        [
            format!(
                "shape {} in netns host: rate 20mbit burst 204800bit",
                ep.host_ifname
            ),
            format!("shape eth0 in netns {path}: rate 10mbit burst 102400bit"),
        ]
    );
    // One direction alone touches one end.
    e.kernel().log.clear();
    e.attachment_shape(&name, &key, Shaping::default(), rate(8_000, 800))
        .unwrap();
    assert_eq!(shapes(&e.kernel().log).len(), 1);

    // Refused before any kernel work: a burst with a delay, an attachment that is not there.
    e.kernel().log.clear();
    let bad = Shaping {
        delay_us: Some(1000),
        ..rate(8_000, 800)
    };
    let err = e
        .attachment_shape(&name, &key, bad, Shaping::default())
        .unwrap_err();
    assert!(err.to_string().contains("burst"), "{err}");
    let other = OwnerKey {
        owner_id: "nobody".into(),
        ifname: IfName::new("eth0").unwrap(),
    };
    let err = e
        .attachment_shape(&name, &other, rate(8_000, 800), Shaping::default())
        .unwrap_err();
    assert!(matches!(err, EngineError::NotFound { .. }), "{err}");
    assert!(e.kernel().log.is_empty());

    // The pod's end fails: the host end's limit is taken off again.
    e.kernel().fail_on = Some("shape eth0".into());
    assert!(
        e.attachment_shape(
            &name,
            &key,
            rate(20_000_000, 204_800),
            rate(10_000_000, 102_400)
        )
        .is_err()
    );
    assert_eq!(
        shapes(&e.kernel().log),
        [
            format!(
                "shape {} in netns host: rate 20mbit burst 204800bit",
                ep.host_ifname
            ),
            format!("shape {} in netns host: none", ep.host_ifname),
        ]
    );
}

fn recorded(e: &mut Engine<FakeKernel>) -> Vec<String> {
    e.store()
        .read(|tx| tx.shapings())
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {} {:?}", r.netns, r.ifname, r.shaping.rate_bps))
        .collect()
}

#[test]
fn limits_are_recorded_for_repair_and_go_with_their_attachment() {
    let mut f = fixture();
    let e = &mut f.engine;
    let (name, key, ep, path) = attached_pod(e);
    e.attachment_shape(&name, &key, rate(20_000_000, 204_800), Shaping::default())
        .unwrap();
    // A failed change keeps the records of the last one that took.
    e.kernel().fail_on = Some("shape eth0".into());
    assert!(
        e.attachment_shape(&name, &key, rate(1_000_000, 8_000), rate(8_000, 800))
            .is_err()
    );
    e.kernel().fail_on = None;
    assert_eq!(
        recorded(e),
        [format!("host {} Some(20000000)", ep.host_ifname)]
    );
    e.attachment_shape(&name, &key, Shaping::default(), rate(10_000_000, 102_400))
        .unwrap();

    e.kernel().log.clear();
    let report = e.repair().unwrap();
    assert_eq!(report.shapings, 2);
    let mut again = shapes(&e.kernel().log);
    again.sort();
    assert_eq!(
        again,
        [
            format!("shape eth0 in netns {path}: rate 10mbit burst 102400bit"),
            format!(
                "shape {} in netns host: rate 20mbit burst 204800bit",
                ep.host_ifname
            ),
        ]
    );

    assert!(e.detach(&name, &key).unwrap());
    assert!(recorded(e).is_empty());
    assert_eq!(e.repair().unwrap().shapings, 0);
}

#[test]
fn link_shaping_is_recorded_cleared_and_goes_with_the_link() {
    let mut f = fixture();
    let e = &mut f.engine;
    for ns in ["a", "b"] {
        e.kernel().create_netns(ns).unwrap();
    }
    let (a, b) = (NsRef::Named("a".into()), NsRef::Named("b".into()));
    let link = e
        .link_add(LinkRequest {
            a: a.clone(),
            b: b.clone(),
            ifname_a: None,
            ifname_b: None,
            addr_a: None,
            addr_b: None,
            mtu: None,
        })
        .unwrap();
    let ifa = IfName::new(&link.ifname_a).unwrap();
    let ifb = IfName::new(&link.ifname_b).unwrap();
    e.link_shape(&a, &ifa, rate(1_000_000, 8_000)).unwrap();
    e.link_shape(&b, &ifb, rate(2_000_000, 8_000)).unwrap();
    assert_eq!(
        recorded(e),
        [
            format!("a {ifa} Some(1000000)"),
            format!("b {ifb} Some(2000000)")
        ]
    );
    // Empty shaping takes the limit off and its record with it.
    e.link_shape(&a, &ifa, Shaping::default()).unwrap();
    assert_eq!(recorded(e), [format!("b {ifb} Some(2000000)")]);
    // A kernel failure leaves the record as it was.
    e.kernel().fail_on = Some(format!("shape {ifb}"));
    assert!(e.link_shape(&b, &ifb, rate(3_000_000, 8_000)).is_err());
    e.kernel().fail_on = None;
    assert_eq!(recorded(e), [format!("b {ifb} Some(2000000)")]);
    e.link_rm(&a, &b, None).unwrap();
    assert!(recorded(e).is_empty());
}
