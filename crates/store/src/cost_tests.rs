//! The store's cost per command does not depend on history: the WAL that every new process
//! replays stays short, the files stay small, and the queries of the per-container path touch
//! as many pages with thousands of rows as with a few.

use std::collections::VecDeque;
use std::path::Path;

use ipnet::IpNet;
use nsnet_core::ipam;
use nsnet_core::model::NetworkSpec;
use nsnet_core::names::{IfName, NetName, host_veth};
use nsnet_core::port::{PortMapping, Proto};
use rusqlite::ffi;

use crate::{LinkEndRow, NewEndpoint, NewLink, Store, StoreError, Tx};

fn network(name: &str, cidr: &str) -> NetworkSpec {
    NetworkSpec::builder(NetName::new(name).unwrap())
        .subnets([cidr.parse().unwrap()])
        .build()
        .unwrap()
}

fn endpoint(net: &NetName, ns: &str, addr: IpNet) -> NewEndpoint {
    let eth0 = IfName::new("eth0").unwrap();
    NewEndpoint {
        network: net.clone(),
        netns: ns.to_string(),
        host_ifname: host_veth(net, ns, &eth0),
        ifname: eth0,
        mac: None,
        addrs: vec![addr],
        container_id: None,
        no_default_route: false,
        pid: 1,
        boot_id: "b".into(),
    }
}

fn tcp(host_port: u16) -> PortMapping {
    PortMapping {
        host_ip: None,
        host_port,
        container_port: 80,
        proto: Proto::Tcp,
    }
}

/// The lowest free address of the network's only subnet, as the engine allocates it.
fn allocate(tx: &Tx<'_>, spec: &NetworkSpec) -> Result<IpNet, StoreError> {
    let s = &spec.subnets()[0];
    let from = ipam::search_start(spec.name(), s, None).unwrap();
    let free = tx.lowest_free(spec.name(), &s.cidr, from)?;
    let ip = ipam::allocated(spec.name(), s, None, free).unwrap();
    Ok(IpNet::new(ip, s.cidr.prefix_len()).unwrap())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// 5,000 commits, each through a connection opened for it and closed after (as every nsnet
/// command does), while another connection stays open for stretches: connects with a published
/// port, port adds and removals, disconnects. Before the WAL hook the WAL grew by every commit
/// of a process that wrote once (about 12 KiB each) and every new connection read all of it.
#[test]
fn wal_and_database_stay_bounded_over_5000_short_lived_writes() {
    const WAL_BOUND: u64 = 512 << 10;
    const DB_BOUND: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let spec = network("lan", "10.50.0.0/16");
    let web = Store::open(dir.path())
        .unwrap()
        .write(|tx| {
            tx.insert_network(&spec, 1, "b")?;
            let addr = allocate(tx, &spec)?;
            tx.insert_endpoint(&endpoint(spec.name(), "web", addr))
        })
        .unwrap();
    let wal = dir.path().join("state.db-wal");
    let db = dir.path().join(crate::DB_FILE);
    let mut elsewhere: Option<Store> = None;
    let mut live: VecDeque<i64> = VecDeque::new();
    let (mut wal_max, mut db_max) = (0, 0);
    for i in 0..5000u32 {
        match i % 1500 {
            0 => elsewhere = Some(Store::open(dir.path()).unwrap()),
            500 => elsewhere = None,
            _ => {}
        }
        let mut store = Store::open(dir.path()).unwrap();
        let port = 20_000 + (i % 10_000) as u16;
        store
            .write(|tx| match i % 4 {
                0 => {
                    let addr = allocate(tx, &spec)?;
                    let id = tx.insert_endpoint(&endpoint(spec.name(), &format!("c{i}"), addr))?;
                    tx.set_endpoint_ready(id)?;
                    tx.insert_ports(id, &[tcp(port)])?;
                    live.push_back(id);
                    Ok::<_, StoreError>(())
                }
                1 => tx.insert_ports(web, &[tcp(port)]),
                2 => tx.delete_ports(web, &[tcp(port - 1)]),
                _ => {
                    if live.len() > 10 {
                        tx.delete_endpoint(live.pop_front().unwrap())?;
                    }
                    Ok(())
                }
            })
            .unwrap();
        drop(store);
        wal_max = wal_max.max(file_len(&wal));
        db_max = db_max.max(file_len(&db));
        assert!(
            wal_max <= WAL_BOUND,
            "after {} writes the WAL is {wal_max} bytes (bound {WAL_BOUND})",
            i + 1
        );
        assert!(
            db_max <= DB_BOUND,
            "after {} writes the database is {db_max} bytes (bound {DB_BOUND})",
            i + 1
        );
    }
    drop(elsewhere);
}

/// Pages a connection fetched so far (page cache hits and misses): a measure of a query's
/// work that does not depend on the machine's speed.
fn pages(store: &Store) -> i64 {
    let mut total = 0;
    for op in [
        ffi::SQLITE_DBSTATUS_CACHE_HIT,
        ffi::SQLITE_DBSTATUS_CACHE_MISS,
    ] {
        let (mut current, mut highwater) = (0, 0);
        // SAFETY: the handle belongs to a live connection and is used on this thread only.
        let rc = unsafe {
            ffi::sqlite3_db_status(store.conn.handle(), op, &mut current, &mut highwater, 0)
        };
        assert_eq!(rc, ffi::SQLITE_OK);
        total += i64::from(current);
    }
    total
}

/// A store with `n` endpoints on one network, each with a published port, and `n` links;
/// returns the pages each operation of the per-container path fetched (its second run, so
/// statements are prepared and the schema is loaded).
fn pages_per_operation(n: u16) -> Vec<(&'static str, i64)> {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let spec = network("lan", "10.60.0.0/16");
    let ids = store
        .write(|tx| {
            tx.insert_network(&spec, 1, "b")?;
            let mut ids = Vec::new();
            for i in 0..n {
                let addr = allocate(tx, &spec)?;
                let id = tx.insert_endpoint(&endpoint(spec.name(), &format!("ns{i}"), addr))?;
                tx.insert_ports(id, &[tcp(10_000 + i)])?;
                let end = |ns: String| LinkEndRow {
                    netns: ns,
                    ifname: IfName::new("p0").unwrap(),
                    addr: None,
                };
                tx.insert_link(&NewLink {
                    a: end(format!("la{i}")),
                    b: end(format!("lb{i}")),
                    pid: 1,
                    boot_id: "b".into(),
                })?;
                ids.push(id);
            }
            Ok::<_, StoreError>(ids)
        })
        .unwrap();
    let (mid, mid_id) = (n / 2, ids[usize::from(n / 2)]);
    type Op = Box<dyn Fn(&Tx<'_>) -> Result<(), StoreError>>;
    let spec2 = spec.clone();
    let ops: Vec<(&'static str, Op)> = vec![
        (
            "allocate the lowest free address",
            Box::new(move |tx| allocate(tx, &spec2).map(drop)),
        ),
        (
            "check a requested address",
            Box::new(move |tx| {
                tx.addr_in_use(&NetName::new("lan").unwrap(), "10.60.0.9".parse().unwrap())
                    .map(drop)
            }),
        ),
        (
            "host port conflict",
            Box::new(move |tx| tx.port_conflict(&tcp(10_000 + mid)).map(drop)),
        ),
        (
            "ports of an endpoint",
            Box::new(move |tx| tx.ports(Some(mid_id)).map(drop)),
        ),
        (
            "endpoints of a netns",
            Box::new(move |tx| tx.endpoints_in_netns(&format!("ns{mid}")).map(drop)),
        ),
        (
            "links of a netns",
            Box::new(move |tx| tx.links_in_netns(&format!("la{mid}")).map(drop)),
        ),
        (
            "connect with a port, then disconnect",
            Box::new(move |tx| {
                let addr = allocate(tx, &spec)?;
                let id = tx.insert_endpoint(&endpoint(spec.name(), "probe", addr))?;
                tx.insert_ports(id, &[tcp(40_000)])?;
                tx.delete_endpoint(id).map(drop)
            }),
        ),
    ];
    ops.into_iter()
        .map(|(name, op)| {
            store.write(|tx| op(tx)).unwrap();
            let before = pages(&store);
            store.write(|tx| op(tx)).unwrap();
            (name, pages(&store) - before)
        })
        .collect()
}

/// Each operation fetches at most a quarter more pages with 10,000 endpoints than with 300:
/// one more B-tree level per index it walks, never a scan. (Before: the ports of one endpoint
/// scanned every port, the links of a netns read every link, and allocation read every
/// address of the network.)
#[test]
fn hot_operations_touch_as_many_pages_with_10000_endpoints_as_with_300() {
    let small = pages_per_operation(300);
    let big = pages_per_operation(10_000);
    for ((op, few), (_, many)) in small.iter().zip(&big) {
        assert!(
            *many <= few + few / 4 + 2,
            "{op}: {few} pages with 300 endpoints, {many} with 10,000"
        );
    }
}

/// A run of writes in one process (a topology's apply) checkpoints rarely, and its end leaves
/// an empty WAL for the next process; everything written is in the database.
#[test]
fn a_batch_checkpoints_once_at_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("state.db-wal");
    let spec = network("lan", "10.50.0.0/16");
    let mut store = Store::open(dir.path()).unwrap();
    store.write(|tx| tx.insert_network(&spec, 1, "b")).unwrap();
    store.set_batching(true).unwrap();
    let mut grew = 0;
    for i in 0..200 {
        store
            .write(|tx| {
                let addr = allocate(tx, &spec)?;
                tx.insert_endpoint(&endpoint(spec.name(), &format!("c{i}"), addr))
            })
            .unwrap();
        grew = grew.max(file_len(&wal));
    }
    // Outside a batch the WAL is truncated once it passes 64 frames (~270 KiB at most).
    assert!(grew > 256 * 4096, "the WAL stayed at {grew} bytes");
    store.set_batching(false).unwrap();
    assert_eq!(file_len(&wal), 0, "the end of the batch truncates the WAL");
    drop(store);
    let mut again = Store::open(dir.path()).unwrap();
    let n = again
        .read(|tx| tx.endpoints_of_network(spec.name()))
        .unwrap()
        .len();
    assert_eq!(n, 200);
}
