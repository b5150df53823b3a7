//! `netns rm` of a namespace on several networks removes its endpoints together (see
//! `bulk`): one firewall transaction for all of them, nothing left in the store or kernel.

mod common;

use common::{connect, fixture};

use nsnet_core::firewall::FwChange;
use nsnet_core::model::NetworkSpec;
use nsnet_core::names::{NetName, NsName};
use nsnet_core::ops::KernelOp;
use nsnet_engine::NetworkRequest;

#[test]
fn netns_rm_removes_its_endpoints_in_one_firewall_transaction() {
    let mut f = fixture();
    let e = &mut f.engine;
    for (n, cidr) in [
        ("n1", "10.1.0.0/24"),
        ("n2", "10.2.0.0/24"),
        ("n3", "10.3.0.0/24"),
    ] {
        // Without inter-container traffic, each endpoint owns a firewall element.
        let spec = NetworkSpec::builder(NetName::new(n).unwrap())
            .subnets([cidr.parse().unwrap()])
            .icc(false)
            .build()
            .unwrap();
        e.network_create(NetworkRequest { spec }).unwrap();
    }
    for ns in ["red", "blue"] {
        e.netns_add(&NsName::new(ns).unwrap()).unwrap();
    }
    for n in ["n1", "n2", "n3"] {
        e.connect(connect(n, "red")).unwrap();
    }
    e.connect(connect("n1", "blue")).unwrap();
    let veths: Vec<String> = e
        .store()
        .read(|tx| tx.endpoints_in_netns("red"))
        .unwrap()
        .iter()
        .map(|r| r.host_ifname.to_string())
        .collect();
    assert_eq!(veths.len(), 3);
    let before = e.kernel().log.len();
    e.netns_rm(&NsName::new("red").unwrap()).unwrap();

    let fw: Vec<&Vec<FwChange>> = e.kernel().log[before..]
        .iter()
        .filter_map(|op| match op {
            KernelOp::Firewall(c) if !c.is_empty() => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(fw.len(), 1, "one firewall transaction: {fw:?}");
    assert!(fw[0].iter().all(|c| matches!(c, FwChange::Del(_))));
    let deleted: Vec<String> = fw[0].iter().map(|c| format!("{c:?}")).collect();
    for v in &veths {
        assert!(
            deleted.iter().any(|d| d.contains(v.as_str())),
            "{v}'s element in the batch: {deleted:?}"
        );
    }
    let rows = e.store().read(|tx| tx.endpoints()).unwrap();
    assert_eq!(rows.len(), 1, "only blue's endpoint is left: {rows:?}");
    assert_eq!(rows[0].netns, "blue");
    assert!(e.kernel().links_in("red").is_empty());
    assert!(!e.kernel().netns.contains("red"));
}
