//! Overlay networks on the fake kernel: the device comes and goes with the network, and the
//! peers converge by diff (added, kept, repaired, removed), each change one operation.

mod common;

use common::fixture;
use nsnet_core::model::{Driver, NetworkSpec};
use nsnet_core::names::NetName;
use nsnet_core::ops::KernelOp;
use nsnet_core::overlay::{Host, LocalOverlay, PeerChange, peer, slice_of};
use nsnet_engine::NetworkRequest;

fn sliced(n: u32) -> NetworkSpec {
    NetworkSpec::builder(NetName::new("ov").unwrap())
        .subnets([format!("10.200.{n}.0/24").parse().unwrap()])
        .driver(Driver::Vxlan)
        .vni(42)
        .build()
        .unwrap()
}

fn wanted(spec: &NetworkSpec, hosts: &[u32]) -> Vec<LocalOverlay> {
    let peers = hosts
        .iter()
        .map(|&i| {
            let h = Host {
                name: format!("h{i}"),
                underlay: std::net::Ipv4Addr::new(192, 0, 2, i as u8),
                slice: i,
            };
            let slice = slice_of("ov", "10.200.0.0/16".parse().unwrap(), h.slice).unwrap();
            peer(spec, slice, h.underlay).unwrap()
        })
        .collect();
    vec![LocalOverlay {
        network: spec.name().clone(),
        peers,
    }]
}

#[test]
fn peers_converge_on_the_device_and_go_with_the_network() {
    let mut f = fixture();
    let spec = sliced(1);
    // Before the network exists, the plan shows every peer; apply leaves them for later.
    assert_eq!(
        f.engine
            .overlay_plan(&wanted(&spec, &[2, 3]))
            .unwrap()
            .len(),
        2
    );
    assert!(
        f.engine
            .overlay_apply(&wanted(&spec, &[2, 3]))
            .unwrap()
            .is_empty()
    );

    f.engine
        .network_create(NetworkRequest { spec: spec.clone() })
        .unwrap();
    assert!(
        f.engine
            .kernel()
            .links_in("host")
            .contains(&"nsvx42".to_string())
    );
    let added = f.engine.overlay_apply(&wanted(&spec, &[2, 3])).unwrap();
    assert_eq!(added.len(), 2);
    assert!(
        f.engine
            .overlay_plan(&wanted(&spec, &[2, 3]))
            .unwrap()
            .is_empty()
    );

    // Host 3 leaves: one operation, for its entries only.
    let before = f.engine.kernel().log.len();
    let removed = f.engine.overlay_apply(&wanted(&spec, &[2])).unwrap();
    assert!(
        matches!(removed.as_slice(), [PeerChange::Remove(p)] if p.slice.to_string() == "10.200.3.0/24")
    );
    let log = &f.engine.kernel().log[before..];
    assert!(matches!(log, [KernelOp::DelOverlayPeer(_)]), "{log:?}");

    // A peer whose entries are gone is repaired.
    f.engine.kernel().overlay.get_mut("nsvx42").unwrap().clear();
    let repaired = f.engine.overlay_apply(&wanted(&spec, &[2])).unwrap();
    assert_eq!(repaired.len(), 1);
    assert_eq!(f.engine.kernel().overlay["nsvx42"].len(), 1);

    // The network goes, the device with it, and its entries with the device.
    f.engine.network_rm(spec.name(), false).unwrap();
    assert!(
        !f.engine
            .kernel()
            .links_in("host")
            .contains(&"nsvx42".to_string())
    );
    assert!(!f.engine.kernel().overlay.contains_key("nsvx42"));
}
