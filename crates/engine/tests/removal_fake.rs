//! Removals whose link deletions run beside the rest (`Net::start`), on the fake kernel that
//! applies them only when the engine joins them: the rest of the removal happens meanwhile,
//! the rows go only after, and a failed deletion leaves the intent for `gc`.

mod common;

use common::{connect, fixture, spec};

use nsnet_core::names::{NetName, NsName};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_engine::{Engine, NetworkRequest};
use nsnet_sys::fake::FakeKernel;

fn count(e: &mut Engine<FakeKernel>, table: &str) -> i64 {
    let rows = e.store().read(|tx| tx.row_counts()).unwrap();
    rows.into_iter().find(|(t, _)| *t == table).unwrap().1
}

/// Position in the kernel's log of the first op whose rendering starts with `prefix`.
fn at(e: &mut Engine<FakeKernel>, prefix: &str) -> usize {
    let log = &e.kernel().log;
    log.iter()
        .position(|op| op.to_string().starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {log:?}"))
}

fn setup(e: &mut Engine<FakeKernel>) {
    e.kernel().defer_link_deletes = true;
    for ns in ["red", "blue"] {
        e.netns_add(&NsName::new(ns).unwrap()).unwrap();
    }
    for (n, cidr) in [("lan", "10.1.0.0/24"), ("wan", "10.2.0.0/24")] {
        e.network_create(NetworkRequest {
            spec: spec(n, cidr),
        })
        .unwrap();
    }
    let mut red = connect("lan", "red");
    red.publish = vec!["8080:80".parse().unwrap()];
    e.connect(red).unwrap();
    e.connect(connect("wan", "red")).unwrap();
    e.connect(connect("lan", "blue")).unwrap();
}

#[test]
fn disconnect_runs_the_firewall_beside_the_veth_and_routes_after_it() {
    let mut f = fixture();
    let e = &mut f.engine;
    setup(e);
    let before = e.kernel().log.len();
    e.disconnect(&NetName::new("lan").unwrap(), &NsRef::Named("red".into()))
        .unwrap();
    let fw = at(e, "firewall: delete");
    let veth = at(e, "delete nsv");
    // The firewall went while the veth's deletion was under way (applied at the join); the
    // new primary's default route comes after the old veth is gone.
    assert!(before <= fw && fw < veth, "{:?}", e.kernel().log);
    let route = at(e, "add route 0.0.0.0/0 via 10.2.0.1 dev eth1 in netns red");
    assert!(route > veth, "{:?}", e.kernel().log);
    assert_eq!(count(e, "endpoints"), 2);
}

#[test]
fn a_failed_deletion_keeps_the_intent_for_gc() {
    let mut f = fixture();
    let e = &mut f.engine;
    setup(e);
    let blue = e
        .store()
        .read(|tx| tx.endpoint(&NetName::new("lan").unwrap(), "blue"))
        .unwrap()
        .unwrap();
    e.kernel().fail_on = Some(format!("delete {}", blue.host_ifname));
    let err = e
        .disconnect(&NetName::new("lan").unwrap(), &NsRef::Named("blue".into()))
        .unwrap_err()
        .to_string();
    assert!(err.contains("injected"), "{err}");
    // Its row stays, marked `removing`: the finish record comes only after the deletion.
    let row = e
        .store()
        .read(|tx| tx.endpoint_by_id(blue.id))
        .unwrap()
        .unwrap();
    assert_eq!(row.state.name(), "removing");
    // This process's own leftover: `gc` treats it as its creator's, so a new remover (as
    // after a crash) finishes it.
    let mut e2 = Engine::new(
        nsnet_store::Store::open(&f_dir(e)).unwrap(),
        std::mem::take(e.kernel()),
        4243,
        "boot-a".into(),
    );
    e2.kernel().dead_pids.insert(4242);
    e2.gc().unwrap();
    assert!(
        e2.store()
            .read(|tx| tx.endpoint_by_id(blue.id))
            .unwrap()
            .is_none()
    );
    assert!(
        !e2.kernel()
            .links_in("host")
            .contains(&blue.host_ifname.to_string())
    );
}

/// The state directory of an engine's store.
fn f_dir(e: &mut Engine<FakeKernel>) -> std::path::PathBuf {
    e.store().path().parent().unwrap().to_path_buf()
}

#[test]
fn last_network_rm_drops_the_tables_and_deletes_veths_with_the_bridge() {
    let mut f = fixture();
    let e = &mut f.engine;
    setup(e);
    e.network_rm(&NetName::new("wan").unwrap(), true).unwrap();
    assert!(e.kernel().fw_installed, "tables stay while lan exists");
    let before = e.kernel().log.len();
    e.network_rm(&NetName::new("lan").unwrap(), true).unwrap();
    assert!(
        !e.kernel().fw_installed,
        "the last network takes the tables"
    );
    // Both endpoints' veths and the bridge were deleted together, at the one join, after
    // everything else of the removal.
    let log: Vec<String> = e.kernel().log[before..]
        .iter()
        .map(KernelOp::to_string)
        .collect();
    let n = log.len();
    assert!(
        log[n - 3..].iter().all(|op| op.starts_with("delete ns")),
        "{log:?}"
    );
    assert!(e.kernel().links_in("host").is_empty());
    for table in ["networks", "endpoints"] {
        assert_eq!(count(e, table), 0, "{table}");
    }
}
