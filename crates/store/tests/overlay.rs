//! The peers recorded for an overlay network: replaced as a whole, unchanged sets not
//! rewritten, gone with their network.

use nsnet_core::model::NetworkSpec;
use nsnet_core::names::NetName;
use nsnet_store::{OverlayPeerRow, Store, StoreError};

fn peer(slice: &str, underlay: &str) -> OverlayPeerRow {
    OverlayPeerRow {
        slice: slice.parse().unwrap(),
        underlay: underlay.parse().unwrap(),
    }
}

#[test]
fn peers_are_replaced_whole_and_go_with_their_network() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let spec = NetworkSpec::builder(NetName::new("ov").unwrap())
        .subnets(["10.200.1.0/24".parse().unwrap()])
        .build()
        .unwrap();
    let name = spec.name().clone();
    let (two, three) = (
        peer("10.200.2.0/24", "192.0.2.2"),
        peer("10.200.3.0/24", "192.0.2.3"),
    );
    store
        .write(|tx| {
            tx.insert_network(&spec, 1, "b")?;
            assert!(tx.set_overlay_peers(&name, &[three, two, two])?);
            assert_eq!(tx.overlay_peers(&name)?, [two, three]);
            assert!(
                !tx.set_overlay_peers(&name, &[two, three])?,
                "the same set is not written again"
            );
            assert!(tx.set_overlay_peers(&name, &[two])?);
            assert_eq!(tx.overlay_peers(&name)?, [two]);
            tx.delete_network(&name)?;
            assert!(tx.overlay_peers(&name)?.is_empty(), "gone with the network");
            Ok::<_, StoreError>(())
        })
        .unwrap();
    // A network that does not exist cannot hold peers.
    let orphan = store.write(|tx| tx.set_overlay_peers(&name, &[two]));
    assert!(orphan.is_err());
}
