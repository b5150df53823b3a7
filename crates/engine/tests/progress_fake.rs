//! Long operations report progress through a callback: counters that only go up, a total
//! known from the start, the object each step is about. (The CLI draws it; see nsnet's
//! src/progress.rs.)

mod common;

use common::{connect, fixture, spec};
use nsnet_core::names::NsName;
use nsnet_engine::NetworkRequest;

/// Steps as (done, total, what).
type Steps = Vec<(usize, usize, String)>;

fn assert_counts_up(steps: &Steps) {
    assert!(!steps.is_empty());
    let total = steps[0].1;
    for (i, (done, t, _)) in steps.iter().enumerate() {
        assert_eq!(*t, total, "{steps:?}");
        assert!(*done >= 1 && *done <= total, "{steps:?}");
        if i > 0 {
            assert!(*done > steps[i - 1].0, "{steps:?}");
        }
    }
}

#[test]
fn gc_and_repair_report_each_object() {
    let mut f = fixture();
    let e = &mut f.engine;
    e.network_create(NetworkRequest {
        spec: spec("lan", "10.1.0.0/24"),
    })
    .unwrap();
    for ns in ["a", "b", "c"] {
        e.netns_add(&NsName::new(ns).unwrap()).unwrap();
        e.connect(connect("lan", ns)).unwrap();
    }

    let mut steps = Steps::new();
    let report = e
        .gc_observed(|done, total, what| steps.push((done, total, what.to_string())))
        .unwrap();
    assert!(report.errors.is_empty());
    assert_counts_up(&steps);
    // One network and three endpoints, each examined once; nothing to collect.
    assert_eq!(steps.last().unwrap().0, 4, "{steps:?}");
    let whats: Vec<&str> = steps.iter().map(|s| s.2.as_str()).collect();
    assert_eq!(
        whats,
        [
            "endpoint a on network lan",
            "endpoint b on network lan",
            "endpoint c on network lan",
            "network lan"
        ]
    );

    let mut steps = Steps::new();
    let report = e
        .repair_observed(|done, total, what| steps.push((done, total, what.to_string())))
        .unwrap();
    assert_counts_up(&steps);
    assert_eq!(steps[0], (1, 2, "network lan".to_string()));
    assert_eq!(
        steps[1],
        (
            2,
            2,
            format!("installing {} firewall element(s)", report.elements)
        )
    );
}

#[test]
fn gc_on_an_empty_store_reports_nothing() {
    let mut f = fixture();
    let mut calls = 0;
    f.engine.gc_observed(|_, _, _| calls += 1).unwrap();
    assert_eq!(calls, 0);
}
