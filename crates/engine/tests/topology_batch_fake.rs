//! The batched paths of a topology (namespaces made at once, endpoints connected at once,
//! endpoints and namespaces removed at once) on the recording fake kernel: a failure injected
//! at every kernel step of an apply from nothing leaves nothing, and one injected at every
//! step of the destroy leaves the topology as it was applied.

mod common;

use common::{fixture, spec};

use nsnet_core::names::{NetName, NsName};
use nsnet_core::port::PortSpec;
use nsnet_core::topology::{Desired, DesiredEndpoint, DesiredNetwork};
use nsnet_engine::Engine;
use nsnet_sys::fake::FakeKernel;

/// Enough for every batched path (`network rm --force` batches from 16 endpoints on).
const N: usize = 20;

fn desired() -> Desired {
    let ns = |i: usize| NsName::new(&format!("b{i}")).unwrap();
    Desired {
        name: "t".into(),
        namespaces: (0..N).map(ns).collect(),
        networks: vec![DesiredNetwork {
            spec: spec("wide", "10.81.0.0/24"),
            endpoints: (0..N)
                .map(|i| DesiredEndpoint {
                    network: NetName::new("wide").unwrap(),
                    netns: ns(i),
                    ips: vec![],
                    mac: None,
                    ifname: None,
                    publish: format!("{}:80", 9000 + i)
                        .parse::<PortSpec>()
                        .unwrap()
                        .mappings(),
                })
                .collect(),
        }],
        links: vec![],
        routes: vec![],
        containers: vec![],
    }
}

/// What the fake kernel and the store hold, as text.
fn snapshot(e: &mut Engine<FakeKernel>) -> Vec<String> {
    let k = e.kernel();
    let links: Vec<_> = k.links.iter().filter(|(_, s)| !s.is_empty()).collect();
    let mut out = vec![
        format!("netns {:?}", k.netns),
        format!("links {links:?}"),
        format!("fw {:?}", k.fw),
        format!("rows {:?}", e.store().read(|tx| tx.row_counts()).unwrap()),
    ];
    out.push(format!("{:?}", e.port_ls(None).unwrap()));
    out.push(format!(
        "owned {:?}",
        e.topology_observe("t").unwrap().owned
    ));
    out
}

#[test]
fn a_failure_at_any_step_of_a_batched_apply_leaves_nothing() {
    let mut f = fixture();
    let want = snapshot(&mut f.engine);
    f.engine.topology_apply(&desired(), |_, _, _| {}).unwrap();
    assert!(f.engine.topology_plan(&desired()).unwrap().is_empty());
    let steps: Vec<String> = f
        .engine
        .kernel()
        .log
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(steps.len() > 3 * N, "{steps:?}");
    for (i, step) in steps.iter().enumerate() {
        let mut f = fixture();
        f.engine.kernel().fail_on = Some(step.clone());
        let err = f
            .engine
            .topology_apply(&desired(), |_, _, _| {})
            .expect_err(step)
            .to_string();
        assert!(err.contains("injected failure"), "step {i} {step}: {err}");
        assert!(err.contains("rolled back"), "step {i} {step}: {err}");
        assert_eq!(snapshot(&mut f.engine), want, "step {i}: {step}");
    }
}

#[test]
fn a_failure_at_any_step_of_a_batched_destroy_keeps_the_topology() {
    let applied = || {
        let mut f = fixture();
        f.engine.topology_apply(&desired(), |_, _, _| {}).unwrap();
        f
    };
    let mut f = applied();
    let start = f.engine.kernel().log.len();
    f.engine.topology_destroy("t", |_, _, _| {}).unwrap();
    let steps: Vec<String> = f.engine.kernel().log[start..]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(!steps.is_empty());
    for (i, step) in steps.iter().enumerate() {
        let mut f = applied();
        f.engine.kernel().fail_on = Some(step.clone());
        let err = f
            .engine
            .topology_destroy("t", |_, _, _| {})
            .expect_err(step)
            .to_string();
        assert!(err.contains("injected failure"), "step {i} {step}: {err}");
        // Rolled back: applying the file again finds nothing to do, or only the namespaces
        // the destroy had removed for good (what ran in them is gone) to make again.
        let plan = f.engine.topology_plan(&desired()).unwrap();
        assert!(
            plan.iter().all(|c| c.to_string().starts_with("+ netns")),
            "step {i} {step}: {plan:?}"
        );
        f.engine.topology_apply(&desired(), |_, _, _| {}).unwrap();
        f.engine.topology_destroy("t", |_, _, _| {}).unwrap();
        assert_eq!(
            snapshot(&mut f.engine),
            snapshot(&mut fixture().engine),
            "step {i}"
        );
    }
}
