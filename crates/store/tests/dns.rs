//! What the DNS responder reads: networks with DNS on, ready endpoints, their aliases.

use nsnet_core::model::NetworkSpec;
use nsnet_core::names::{IfName, NetName, host_veth};
use nsnet_store::{NewEndpoint, Store};

fn spec(name: &str, cidr: &str, dns: bool) -> NetworkSpec {
    NetworkSpec::builder(NetName::new(name).unwrap())
        .subnets([cidr.parse().unwrap()])
        .dns(dns)
        .build()
        .unwrap()
}

fn endpoint(net: &NetName, ns: &str, addr: &str) -> NewEndpoint {
    let eth0 = IfName::new("eth0").unwrap();
    NewEndpoint {
        network: net.clone(),
        netns: ns.to_string(),
        host_ifname: host_veth(net, ns, &eth0),
        ifname: eth0,
        mac: None,
        addrs: vec![addr.parse().unwrap()],
        container_id: None,
        no_default_route: false,
        pid: 1,
        boot_id: "b".into(),
    }
}

#[test]
fn dns_rows_follow_networks_endpoints_and_aliases() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let (on, off) = (
        spec("on", "10.1.0.0/24", true),
        spec("off", "10.2.0.0/24", false),
    );
    let ids = store
        .write(|tx| {
            assert!(!tx.dns_needed()?);
            tx.insert_network(&on, 1, "b")?;
            assert!(tx.dns_needed()?, "a network being created needs it already");
            tx.insert_network(&off, 1, "b")?;
            tx.set_network_ready(on.name())?;
            tx.set_network_ready(off.name())?;
            let web = tx.insert_endpoint(&endpoint(on.name(), "web", "10.1.0.2/24"))?;
            tx.set_endpoint_ready(web)?;
            tx.insert_aliases(web, &["www".into(), "api".into(), "www".into()])?;
            let half = tx.insert_endpoint(&endpoint(on.name(), "half", "10.1.0.3/24"))?;
            let other = tx.insert_endpoint(&endpoint(off.name(), "db", "10.2.0.2/24"))?;
            tx.set_endpoint_ready(other)?;
            Ok::<_, nsnet_store::StoreError>((web, half, other))
        })
        .unwrap();
    let (nets, eps) = store.read(|tx| tx.dns_rows()).unwrap();
    assert_eq!(nets.len(), 1);
    assert_eq!(nets[0].name, "on");
    assert_eq!(
        nets[0].gateways,
        ["10.1.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(
        eps.len(),
        1,
        "only ready endpoints of DNS networks: {eps:?}"
    );
    assert_eq!(eps[0].netns, "web");
    assert_eq!(eps[0].aliases, ["api", "www"]);
    // Aliases go with their endpoint; the network stays needed until it goes too.
    store
        .write(|tx| {
            tx.delete_endpoint(ids.0)?;
            tx.delete_endpoint(ids.1)?;
            Ok::<_, nsnet_store::StoreError>(())
        })
        .unwrap();
    let counts = store.read(|tx| tx.row_counts()).unwrap();
    assert!(counts.contains(&("aliases", 0)), "{counts:?}");
    assert!(store.read(|tx| tx.dns_needed()).unwrap());
    store.write(|tx| tx.delete_network(on.name())).unwrap();
    assert!(!store.read(|tx| tx.dns_needed()).unwrap());
    // A reader that never writes sees the same.
    let mut ro = Store::open_read_only(dir.path()).unwrap();
    let v = ro.data_version().unwrap();
    assert!(ro.read(|tx| tx.dns_rows()).unwrap().0.is_empty());
    store
        .write(|tx| {
            tx.delete_endpoint(ids.2)?;
            tx.delete_network(off.name())
        })
        .unwrap();
    assert_ne!(
        ro.data_version().unwrap(),
        v,
        "another connection's commit shows"
    );
}

/// Only a ready endpoint leaving the ready state counts as a removal started: one being
/// created, becoming ready, or rolled back while being created does not, and deleting a row
/// does not count again.
#[test]
fn removals_started_count_ready_endpoints_leaving_ready() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let lan = spec("lan", "10.1.0.0/24", true);
    let started = |store: &mut Store| store.read(|tx| tx.endpoint_removals_started()).unwrap();
    let (a, b) = store
        .write(|tx| {
            tx.insert_network(&lan, 1, "b")?;
            tx.set_network_ready(lan.name())?;
            let a = tx.insert_endpoint(&endpoint(lan.name(), "a", "10.1.0.2/24"))?;
            tx.set_endpoint_ready(a)?;
            let b = tx.insert_endpoint(&endpoint(lan.name(), "b", "10.1.0.3/24"))?;
            Ok::<_, nsnet_store::StoreError>((a, b))
        })
        .unwrap();
    assert_eq!(started(&mut store), 0);
    store
        .write(|tx| tx.mark_endpoint_removing(b, 2, "b"))
        .unwrap();
    assert_eq!(started(&mut store), 0, "b was never ready");
    store
        .write(|tx| tx.mark_endpoint_removing(a, 2, "b"))
        .unwrap();
    assert_eq!(started(&mut store), 1);
    store
        .write(|tx| {
            tx.mark_endpoint_removing(a, 3, "b")?;
            tx.delete_endpoint(a)?;
            tx.delete_endpoint(b)
        })
        .unwrap();
    assert_eq!(started(&mut store), 1, "a's removal started once");
}
