//! Rate limits on an attachment with a recording fake kernel: where each direction is
//! shaped, refusals before any kernel work, and a failure half-way taken back.

mod common;

use common::{fixture, spec};

use nsnet_core::endpoint::{RoutePolicy, StaticRoute};
use nsnet_core::names::{IfName, NetName};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::shaping::Shaping;
use nsnet_engine::{AttachRequest, EngineError, OwnerKey};
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

#[test]
fn each_direction_on_its_veth_end_and_a_half_failure_undone() {
    let mut f = fixture();
    let e = &mut f.engine;
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
            routes: RoutePolicy::Explicit(vec![StaticRoute {
                dest: "0.0.0.0/0".parse().unwrap(),
                via: s.subnets()[0].gateway,
            }]),
            aliases: vec![],
        })
        .unwrap();
    let name = NetName::new("pods").unwrap();
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
