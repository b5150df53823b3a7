//! A CNI vxlan network across two Kubernetes-like nodes, end to end: each "node" is its own
//! sandbox (as in tests/overlay.rs) on an underlay with etcd on the outside; the CNI face is
//! driven as libcni drives it (see `cnidriver`) with each node's own podCIDR as `ipam.ranges`
//! inside the shared `clusterCIDR`. Pods on the two nodes ping and exchange TCP by address;
//! `nsnet overlay cni` brings an earlier node up to date; a podCIDR another node holds and a
//! range outside the cluster CIDR are refused with nothing changed; DEL leaves nothing, and a
//! node whose network went leaves etcd, so the other drops its peer.

mod cnidriver;
mod common;
mod overlaykit;

use cnidriver::{Conflist, Driver, Runtime};
use common::{Sandbox, root};
use overlaykit::{Started, have_etcd, routes_on, start_etcd, underlay};
use serde_json::{Value, json};

/// The README's multi-node conflist (as a Kubernetes admin writes it per node), for node `n`:
/// its podCIDR `range`, registered in etcd as `node` with its underlay address 192.0.2.`n`.
fn conflist(s: &Sandbox, n: usize, node: &str, range: &str) -> Value {
    let readme = include_str!("../../../README.md");
    let mut list: Value = readme
        .split("```json")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains("\"k8s-pod-overlay\""))
        .map(|block| serde_json::from_str(block).expect("README conflist is JSON"))
        .expect("README has the multi-node conflist");
    let p = &mut list["plugins"][0];
    assert_eq!(
        p["clusterCIDR"], "10.244.0.0/16",
        "the README's cluster CIDR"
    );
    p["etcd"]["host"] = json!(node);
    p["etcd"]["underlay"] = json!(format!("192.0.2.{n}"));
    p["etcd"]["ttl"] = json!(5);
    p["ipam"]["ranges"] = json!([[{"subnet": range}]]);
    p["stateDir"] = json!(s.state_dir());
    list
}

fn netns(s: &Sandbox, name: &str) -> String {
    s.ok(&["netns", "add", name]);
    format!("/run/netns/{name}")
}

/// `nsnet overlay cni FILE --once` on node `s`: the peer changes it printed.
fn sync(s: &Sandbox, list: &Value) -> Vec<String> {
    let path = s.state_dir().join("10-pods.conflist");
    std::fs::write(&path, list.to_string()).unwrap();
    let r = s.nsnet(&["overlay", "cni", path.to_str().unwrap(), "--once"]);
    assert_eq!(r.code, 0, "overlay cni: {}", r.stderr);
    r.stdout.lines().map(str::to_string).collect()
}

#[test]
fn pods_on_two_nodes_reach_each_other_through_their_pod_cidrs() {
    if !root() || !have_etcd() {
        return;
    }
    let nodes: Vec<Sandbox> = (0..2).map(|_| Sandbox::new()).collect();
    let outside = underlay(&nodes);
    let _etcd = start_etcd(&outside);
    let h = |n: usize| &nodes[n - 1];
    let lists: Vec<Value> = (1..=2)
        .map(|n| conflist(h(n), n, &format!("node-{n}"), &format!("10.244.{n}.0/24")))
        .collect();
    let drivers: Vec<Driver> = nodes.iter().map(Driver::new).collect();
    let mut pods = Vec::new();
    for n in 1..=2 {
        let ns = netns(h(n), &format!("pod{n}"));
        let rt = Runtime::new(&format!("ctr{n}"), &ns);
        let list = Conflist::new(lists[n - 1].clone());
        let res = drivers[n - 1]
            .add(&list, &rt)
            .unwrap_or_else(|e| panic!("ADD on node {n}: {e}"));
        // The pod's address is in its node's podCIDR, the gateway the slice's first host.
        assert_eq!(
            res["ips"][0]["address"],
            format!("10.244.{n}.2/24"),
            "{res}"
        );
        assert_eq!(res["ips"][0]["gateway"], format!("10.244.{n}.1"), "{res}");
        // VXLAN's 50 bytes come off the pod's MTU.
        let eth0 = h(n).sh(
            "ip",
            &[
                "netns",
                "exec",
                &format!("pod{n}"),
                "ip",
                "-o",
                "link",
                "show",
                "eth0",
            ],
        );
        assert!(eth0.stdout.contains("mtu 1450"), "{}", eth0.stdout);
        pods.push((list, rt, res));
    }
    // Node 2 learned node 1 at its ADD; node 1 learns node 2 from the follower, once.
    assert_eq!(routes_on(h(2), "nsvx44"), 1);
    assert_eq!(routes_on(h(1), "nsvx44"), 0);
    sync(h(2), &lists[1]);
    let added = sync(h(1), &lists[0]);
    assert!(
        added.len() == 1
            && added[0].starts_with("+ overlay peer")
            && added[0].contains("10.244.2.0/24"),
        "{added:?}"
    );
    assert!(
        sync(h(1), &lists[0]).is_empty(),
        "a second look changes nothing"
    );
    let route = h(1).sh("ip", &["route", "show", "dev", "nsvx44"]).stdout;
    assert!(
        route.contains("10.244.2.0/24 via 10.244.2.0") && route.contains("onlink"),
        "{route}"
    );

    assert!(h(1).ping("pod1", "10.244.2.2"), "pod1 -> pod2");
    assert!(h(2).ping("pod2", "10.244.1.2"), "pod2 -> pod1");
    let srv = h(2).tcp_server("pod2", "10.244.2.2:7000");
    assert!(
        h(1).tcp_hello("pod1", "10.244.2.2:7000"),
        "tcp pod1 -> pod2"
    );
    // Unmasqueraded between nodes: the server sees the pod's own address.
    assert_eq!(srv.peer().map(|a| a.to_string()), Some("10.244.1.2".into()));

    // The followers keep both leases alive past their TTL (5 s): the nodes stay peers.
    let followers: Vec<Started> = (1..=2)
        .map(|n| {
            let path = h(n).state_dir().join("10-pods.conflist");
            Started(
                h(n).command(
                    common::NSNET,
                    &[
                        "overlay",
                        "cni",
                        path.to_str().unwrap(),
                        "--interval-ms",
                        "200",
                    ],
                )
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("start nsnet overlay cni"),
            )
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(7));
    for n in 1..=2 {
        assert_eq!(routes_on(h(n), "nsvx44"), 1, "node {n} lost its peer");
    }
    assert!(
        h(2).ping("pod2", "10.244.1.2"),
        "pod2 -> pod1 after the TTL"
    );
    // Stopped, as when a node goes down: its registration lives until the lease expires.
    drop(followers);

    // A podCIDR another node holds in etcd: refused before anything is made.
    let links = h(2).host_links();
    let ns = netns(h(2), "pod9");
    let rt = Runtime::new("ctr9", &ns);
    let thief = Conflist::new(conflist(h(2), 2, "node-9", "10.244.1.0/24"));
    let e = drivers[1].add(&thief, &rt).unwrap_err();
    assert!(e.msg.contains("slice 1 is held by host node-1"), "{e}");
    // A range outside the cluster CIDR: one line naming the key.
    let outsider = Conflist::new(conflist(h(2), 2, "node-2", "10.245.2.0/24"));
    let e = drivers[1].add(&outsider, &rt).unwrap_err();
    assert!(
        e.msg.starts_with("ipam.ranges 10.245.2.0/24:") && !e.msg.contains('\n'),
        "{e}"
    );
    assert_eq!(h(2).host_links(), links, "a refused ADD changes nothing");
    h(2).ok(&["netns", "rm", "pod9"]);

    // DEL on node 1 takes its network and its registration; node 2 drops its peer.
    let (list, rt, res) = &pods[0];
    drivers[0].del(list, rt, Some(res)).unwrap();
    drivers[0].del(list, rt, Some(res)).unwrap();
    let removed = sync(h(2), &lists[1]);
    assert!(
        removed.len() == 1 && removed[0].starts_with("- overlay peer"),
        "{removed:?}"
    );
    assert_eq!(routes_on(h(2), "nsvx44"), 0);
    let (list, rt, res) = &pods[1];
    drivers[1].del(list, rt, Some(res)).unwrap();
    for n in 1..=2 {
        h(n).ok(&["netns", "rm", &format!("pod{n}")]);
        // Only the underlay the test made is left.
        assert_eq!(h(n).host_links(), vec!["lo", "underlay0"], "node {n}");
        assert!(h(n).netns_files().is_empty());
        for (table, c) in h(n).rows() {
            assert_eq!(c, 0, "node {n}: {c} rows left in {table}");
        }
    }
}
