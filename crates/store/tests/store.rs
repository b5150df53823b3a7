//! Store tests: round trips, constraints, and many connections allocating at once.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::ipam;
use nsnet_core::model::NetworkSpec;
use nsnet_core::names::{IfName, NetName, host_veth};
use nsnet_store::{NewEndpoint, RouteRow, RowState, Store, StoreError};

fn spec(name: &str, cidr: &str) -> NetworkSpec {
    let n = NetName::new(name).unwrap();
    NetworkSpec::builder(n)
        .subnets([cidr.parse().unwrap()])
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
fn network_and_endpoint_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("state")).unwrap();
    let s = spec("lan", "192.168.15.0/24");
    store
        .write(|tx| {
            tx.insert_network(&s, 7, "boot")?;
            tx.set_network_ready(s.name())?;
            let id = tx.insert_endpoint(&endpoint(s.name(), "red", "192.168.15.2/24"))?;
            tx.set_endpoint_ready(id)?;
            tx.insert_route(&RouteRow {
                netns: "red".into(),
                dest: "192.168.1.0/24".parse().unwrap(),
                via: "192.168.15.1".parse().unwrap(),
            })?;
            Ok::<_, StoreError>(())
        })
        .unwrap();
    let (net, eps, routes) = store
        .read(|tx| {
            Ok::<_, StoreError>((
                tx.network(s.name())?.unwrap(),
                tx.endpoints_in_netns("red")?,
                tx.routes_in_netns("red")?,
            ))
        })
        .unwrap();
    assert_eq!(net.spec, s);
    assert_eq!(net.state, RowState::Ready);
    assert_eq!(eps.len(), 1);
    assert_eq!(
        eps[0].addrs,
        vec!["192.168.15.2/24".parse::<IpNet>().unwrap()]
    );
    assert_eq!(routes.len(), 1);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("state"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn duplicate_address_is_a_conflict_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let s = spec("lan", "10.0.0.0/24");
    store.write(|tx| tx.insert_network(&s, 1, "b")).unwrap();
    store
        .write(|tx| tx.insert_endpoint(&endpoint(s.name(), "a", "10.0.0.2/24")))
        .unwrap();
    let err = store
        .write(|tx| {
            tx.insert_endpoint(&endpoint(s.name(), "b", "10.0.0.3/24"))?;
            tx.insert_endpoint(&endpoint(s.name(), "c", "10.0.0.2/24"))
        })
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    // The whole transaction rolled back: "b" was not kept either.
    let n = store.read(|tx| tx.endpoints()).unwrap().len();
    assert_eq!(n, 1);
}

#[test]
fn parallel_connections_allocate_distinct_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec("lan", "10.9.0.0/16");
    Store::open(dir.path())
        .unwrap()
        .write(|tx| tx.insert_network(&s, 1, "b"))
        .unwrap();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let path = dir.path().to_path_buf();
            let s = s.clone();
            std::thread::spawn(move || {
                let mut store = Store::open(&path).unwrap();
                for i in 0..25 {
                    store
                        .write(|tx| {
                            let sub = &s.subnets()[0];
                            let from = ipam::search_start(s.name(), sub, None).unwrap();
                            let free = tx.lowest_free(s.name(), &sub.cidr, from)?;
                            let ip = ipam::allocated(s.name(), sub, None, free).unwrap();
                            let addr = format!("{ip}/16");
                            tx.insert_endpoint(&endpoint(s.name(), &format!("w{w}-{i}"), &addr))
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut store = Store::open(dir.path()).unwrap();
    let used: BTreeSet<IpAddr> = store
        .read(|tx| tx.endpoints())
        .unwrap()
        .iter()
        .flat_map(|e| e.ips().collect::<Vec<_>>())
        .collect();
    assert_eq!(used.len(), 200);
    // The free extents are what is left: 10.9.0.202 onwards.
    let free = store
        .read(|tx| tx.free_extents(s.name(), &s.subnets()[0].cidr))
        .unwrap();
    assert_eq!(free.len(), 1);
    assert_eq!((free[0].lo, free[0].hi), (202, 65534));
}

#[test]
fn routed_flag_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let open = NetworkSpec::builder(NetName::new("open").unwrap())
        .subnets(["10.1.0.0/24".parse().unwrap()])
        .routed(true)
        .build()
        .unwrap();
    let closed = spec("closed", "10.2.0.0/24");
    store
        .write(|tx| {
            tx.insert_network(&open, 1, "b")?;
            tx.insert_network(&closed, 1, "b")
        })
        .unwrap();
    let nets = store.read(|tx| tx.networks()).unwrap();
    let routed: Vec<(&str, bool)> = nets
        .iter()
        .map(|n| (n.spec.name().as_str(), n.spec.routed()))
        .collect();
    assert_eq!(routed, [("closed", false), ("open", true)]);
    assert_eq!(nets[1].spec, open);
}

/// An endpoint attached without default routes says so in its row, read by every endpoint
/// query, from the insert on (no statement of its own on connect's path).
#[test]
fn no_default_route_is_written_by_the_insert_and_read_with_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let s = spec("lan", "10.1.0.0/24");
    let (plain, bare) = store
        .write(|tx| {
            tx.insert_network(&s, 1, "b")?;
            let plain = tx.insert_endpoint(&endpoint(s.name(), "red", "10.1.0.2/24"))?;
            let bare = tx.insert_endpoint(&NewEndpoint {
                no_default_route: true,
                ..endpoint(s.name(), "blue", "10.1.0.3/24")
            })?;
            Ok::<_, StoreError>((plain, bare))
        })
        .unwrap();
    let flags = |rows: Vec<nsnet_store::EndpointRow>| -> Vec<(i64, bool)> {
        rows.into_iter()
            .map(|e| (e.id, e.no_default_route))
            .collect()
    };
    store
        .read(|tx| {
            assert_eq!(
                flags(tx.endpoints()?),
                [(plain, false), (bare, true)],
                "all endpoints"
            );
            assert_eq!(flags(tx.endpoints_in_netns("blue")?), [(bare, true)]);
            assert_eq!(flags(tx.endpoints_of_network(s.name())?).len(), 2);
            assert!(tx.endpoint_by_id(bare)?.unwrap().no_default_route);
            assert!(!tx.endpoint(s.name(), "red")?.unwrap().no_default_route);
            Ok::<_, StoreError>(())
        })
        .unwrap();
}
