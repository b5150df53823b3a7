//! Overlay networks on the fake kernel: the device comes and goes with the network, and the
//! peers converge by diff (added, kept, repaired, removed), each change one operation.

mod common;

use common::fixture;
use nsnet_core::model::{Driver, NetworkSpec};
use nsnet_core::names::NetName;
use nsnet_core::ops::KernelOp;
use nsnet_core::overlay::{Host, LocalOverlay, PeerChange, peer, slice_of};
use nsnet_engine::NetworkRequest;
use nsnet_sys::kernel::Kernel;

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

/// `repair` puts back the peers the last convergence recorded, whatever went: the entries,
/// or the device with them; `overlay_peer_drift` names what is missing, and removes nothing
/// the store does not know.
#[test]
fn repair_restores_recorded_peers_and_device() {
    let mut f = fixture();
    let spec = sliced(1);
    f.engine
        .network_create(NetworkRequest { spec: spec.clone() })
        .unwrap();
    assert_eq!(
        f.engine
            .overlay_apply(&wanted(&spec, &[2, 3]))
            .unwrap()
            .len(),
        2
    );
    assert!(f.engine.overlay_peer_drift(&spec).unwrap().is_empty());
    assert_eq!(f.engine.repair().unwrap().overlay_peers, 0);

    f.engine
        .kernel()
        .overlay
        .get_mut("nsvx42")
        .unwrap()
        .remove(0);
    let drift = f.engine.overlay_peer_drift(&spec).unwrap();
    assert_eq!(drift.len(), 1, "{drift:?}");
    assert!(
        drift[0].starts_with("10.200.2.0/24 via 10.200.2.0")
            && drift[0].ends_with("at 192.0.2.2 on nsvx42: its entries are missing"),
        "{drift:?}"
    );
    assert_eq!(f.engine.repair().unwrap().overlay_peers, 1);
    assert_eq!(f.engine.kernel().overlay["nsvx42"].len(), 2);
    assert!(f.engine.overlay_peer_drift(&spec).unwrap().is_empty());

    // The device deleted by hand: repair makes it again, then its peers.
    f.engine
        .kernel()
        .apply(&KernelOp::DeleteLink {
            ns: nsnet_core::ops::NsRef::Host,
            ifname: "nsvx42".into(),
        })
        .unwrap();
    assert!(
        f.engine.overlay_peer_drift(&spec).unwrap().is_empty(),
        "a missing device is reported on its own"
    );
    assert_eq!(f.engine.repair().unwrap().overlay_peers, 2);
    assert!(
        f.engine
            .kernel()
            .links_in("host")
            .contains(&"nsvx42".to_string())
    );
    assert_eq!(f.engine.kernel().overlay["nsvx42"].len(), 2);

    // The store records what the last convergence wanted: host 3 gone, repair keeps it gone.
    f.engine.overlay_apply(&wanted(&spec, &[2])).unwrap();
    f.engine.kernel().overlay.get_mut("nsvx42").unwrap().clear();
    assert_eq!(f.engine.repair().unwrap().overlay_peers, 1);
    let left: Vec<String> = f.engine.kernel().overlay["nsvx42"]
        .iter()
        .map(|p| p.slice.to_string())
        .collect();
    assert_eq!(left, ["10.200.2.0/24"]);
}
