//! The free extents of each subnet follow its addresses exactly, through allocations,
//! requested addresses and releases in any order, for IPv4 and IPv6.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use nsnet_core::ipam;
use nsnet_core::model::{NetworkSpec, Subnet};
use nsnet_core::names::{IfName, NetName, host_veth};
use nsnet_store::{NewEndpoint, Store, StoreError, Tx};

fn dual_stack(name: &str) -> NetworkSpec {
    // The IPv4 gateway in the middle of the subnet splits its free addresses in two.
    NetworkSpec::builder(NetName::new(name).unwrap())
        .subnets([
            "10.7.0.0/26".parse().unwrap(),
            "fd00:7::/64".parse().unwrap(),
        ])
        .gateways(["10.7.0.30".parse().unwrap()])
        .build()
        .unwrap()
}

fn endpoint(net: &NetName, ns: &str, addrs: Vec<ipnet::IpNet>) -> NewEndpoint {
    let eth0 = IfName::new("eth0").unwrap();
    NewEndpoint {
        network: net.clone(),
        netns: ns.to_string(),
        host_ifname: host_veth(net, ns, &eth0),
        ifname: eth0,
        mac: None,
        addrs,
        container_id: None,
        no_default_route: false,
        pid: 1,
        boot_id: "b".into(),
    }
}

/// What the engine does: the requested address, else the lowest free one (or None when full).
fn allocate(tx: &Tx<'_>, spec: &NetworkSpec, s: &Subnet, want: Option<IpAddr>) -> Option<IpAddr> {
    match want {
        Some(ip) => {
            let in_use = tx.addr_in_use(spec.name(), ip).unwrap();
            ipam::request_in(spec.name(), s, ip, None, in_use).ok()
        }
        None => {
            let from = ipam::search_start(spec.name(), s, None).unwrap();
            let free = tx.lowest_free(spec.name(), &s.cidr, from).unwrap();
            ipam::allocated(spec.name(), s, None, free).ok()
        }
    }
}

/// A small deterministic generator (no dependency needed for a test's dice).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn extents_follow_allocations_requests_and_releases() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let spec = dual_stack("lan");
    store.write(|tx| tx.insert_network(&spec, 1, "b")).unwrap();
    let mut live: BTreeMap<i64, Vec<IpAddr>> = BTreeMap::new();
    let mut dice = Dice(7);
    for step in 0..600 {
        let release = !live.is_empty() && (dice.roll(5) < 2 || live.len() >= 58);
        if release {
            let id = *live
                .keys()
                .nth(dice.roll(live.len() as u64) as usize)
                .unwrap();
            store.write(|tx| tx.delete_endpoint(id)).unwrap();
            live.remove(&id);
        } else {
            // Now and then an address asked for by name, free or not, anywhere in the subnet.
            let want4 = (dice.roll(4) == 0).then(|| {
                ipam::offset(&spec.subnets()[0].cidr, 1 + u128::from(dice.roll(62))).unwrap()
            });
            let want6 = (dice.roll(4) == 0).then(|| {
                ipam::offset(&spec.subnets()[1].cidr, 2 + u128::from(dice.roll(80))).unwrap()
            });
            let got = store
                .write(|tx| {
                    let v4 = allocate(tx, &spec, &spec.subnets()[0], want4);
                    let v6 = allocate(tx, &spec, &spec.subnets()[1], want6);
                    let (Some(v4), Some(v6)) = (v4, v6) else {
                        return Ok::<_, StoreError>(None);
                    };
                    let addrs = vec![
                        ipnet::IpNet::new(v4, 26).unwrap(),
                        ipnet::IpNet::new(v6, 64).unwrap(),
                    ];
                    let id =
                        tx.insert_endpoint(&endpoint(spec.name(), &format!("n{step}"), addrs))?;
                    Ok(Some((id, vec![v4, v6])))
                })
                .unwrap();
            if let Some((id, ips)) = got {
                live.insert(id, ips);
            }
        }
        for s in spec.subnets() {
            let used: BTreeSet<u64> = live
                .values()
                .flatten()
                .filter_map(|ip| ipam::ordinal(&s.cidr, *ip))
                .collect();
            let stored = store
                .read(|tx| tx.free_extents(spec.name(), &s.cidr))
                .unwrap();
            assert_eq!(
                stored,
                ipam::free_extents(s, &used),
                "step {step}, subnet {}",
                s.cidr
            );
        }
    }
    // Requests and allocations never handed out the same address twice.
    let all: Vec<IpAddr> = live.values().flatten().copied().collect();
    let distinct: BTreeSet<IpAddr> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len());
}

#[test]
fn lowest_free_starts_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let spec = dual_stack("lan");
    let v4 = &spec.subnets()[0];
    store.write(|tx| tx.insert_network(&spec, 1, "b")).unwrap();
    let free = |store: &mut Store, from| {
        store
            .read(|tx| tx.lowest_free(spec.name(), &v4.cidr, from))
            .unwrap()
    };
    // Free: 1-29 and 31-62 (30 is the gateway, 63 the broadcast).
    assert_eq!(free(&mut store, 1), Some(1));
    assert_eq!(free(&mut store, 29), Some(29));
    assert_eq!(free(&mut store, 30), Some(31));
    assert_eq!(free(&mut store, 62), Some(62));
    assert_eq!(free(&mut store, 63), None);
    assert_eq!(free(&mut store, u64::MAX), None);
}

#[test]
fn extents_go_with_their_network() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let spec = dual_stack("lan");
    store.write(|tx| tx.insert_network(&spec, 1, "b")).unwrap();
    let id = store
        .write(|tx| {
            tx.insert_endpoint(&endpoint(
                spec.name(),
                "a",
                vec!["10.7.0.1/26".parse().unwrap()],
            ))
        })
        .unwrap();
    store
        .write(|tx| {
            tx.delete_endpoint(id)?;
            tx.delete_network(spec.name())
        })
        .unwrap();
    let counts = store.read(|tx| tx.row_counts()).unwrap();
    assert!(counts.contains(&("ipam_free", 0)), "{counts:?}");
}
