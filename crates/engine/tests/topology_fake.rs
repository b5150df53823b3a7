//! Topology apply on the recording fake kernel: a failure injected at every kernel step of an
//! apply that removes, replaces and creates objects ends with exactly the state before it.

mod common;

use common::{Fixture, fixture, spec};

use std::collections::BTreeMap;

use nsnet_core::names::{IfName, NetName, NsName};
use nsnet_core::port::{PortMapping, PortSpec};
use nsnet_core::shaping::Shaping;
use nsnet_core::topology::{
    Desired, DesiredContainer, DesiredEndpoint, DesiredLink, DesiredNetwork, LinkEndDef,
};
use nsnet_engine::Engine;
use nsnet_sys::fake::FakeKernel;

fn port(p: &str) -> PortMapping {
    p.parse::<PortSpec>().unwrap().mappings()[0]
}

fn ep(net: &str, ns: &str, ip: Option<&str>, ports: &[&str]) -> DesiredEndpoint {
    DesiredEndpoint {
        network: NetName::new(net).unwrap(),
        netns: NsName::new(ns).unwrap(),
        ips: ip.iter().map(|i| i.parse().unwrap()).collect(),
        mac: None,
        ifname: None,
        publish: ports.iter().map(|p| port(p)).collect(),
    }
}

fn link(a: (&str, &str, &str), b: (&str, &str, &str)) -> DesiredLink {
    let end = |(ns, ifname, addr): (&str, &str, &str)| LinkEndDef {
        netns: ns.into(),
        ifname: IfName::new(ifname).unwrap(),
        addr: Some(addr.parse().unwrap()),
        shaping: Shaping::default(),
    };
    DesiredLink {
        a: end(a),
        b: end(b),
        mtu: None,
    }
}

fn container(name: &str, net: &str, ip: &str) -> DesiredContainer {
    DesiredContainer {
        name: NsName::new(name).unwrap(),
        command: vec!["sleep".into(), "infinity".into()],
        hostname: None,
        env: vec![],
        rootfs: None,
        networks: vec![(NetName::new(net).unwrap(), Some(ip.parse().unwrap()))],
        publish: vec![],
    }
}

fn names(list: &[&str]) -> Vec<NsName> {
    list.iter().map(|n| NsName::new(n).unwrap()).collect()
}

/// Three networks, a published port, a link and a container.
fn before() -> Desired {
    Desired {
        name: "t".into(),
        namespaces: names(&["a", "b", "c"]),
        networks: vec![
            DesiredNetwork {
                spec: spec("n1", "10.71.0.0/24"),
                endpoints: vec![
                    ep("n1", "a", Some("10.71.0.10"), &["8080:80"]),
                    ep("n1", "b", Some("10.71.0.11"), &[]),
                ],
            },
            DesiredNetwork {
                spec: spec("n2", "10.72.0.0/24"),
                endpoints: vec![ep("n2", "c", Some("10.72.0.10"), &[])],
            },
            DesiredNetwork {
                spec: spec("n4", "10.76.0.0/24"),
                endpoints: vec![ep("n4", "b", None, &[])],
            },
        ],
        links: vec![link(
            ("a", "to-c", "10.73.0.1/30"),
            ("c", "to-a", "10.73.0.2/30"),
        )],
        // The fake kernel keeps no routes (they would all look missing): the end-to-end test
        // covers them.
        routes: vec![],
        containers: vec![container("old", "n1", "10.71.0.20")],
    }
}

/// Removes c (its endpoint and link), n2 and the container old; replaces n4 with another
/// subnet; moves the port from a to b; adds d on n1 and n3, a link, and a container at old's
/// address (so the removals must come first).
fn after() -> Desired {
    Desired {
        name: "t".into(),
        namespaces: names(&["a", "b", "d"]),
        networks: vec![
            DesiredNetwork {
                spec: spec("n1", "10.71.0.0/24"),
                endpoints: vec![
                    ep("n1", "a", Some("10.71.0.10"), &[]),
                    ep("n1", "b", Some("10.71.0.11"), &["8080:80"]),
                    ep("n1", "d", None, &[]),
                ],
            },
            DesiredNetwork {
                spec: spec("n3", "10.74.0.0/24"),
                endpoints: vec![ep("n3", "d", None, &[])],
            },
            DesiredNetwork {
                spec: spec("n4", "10.86.0.0/24"),
                endpoints: vec![ep("n4", "b", None, &[])],
            },
        ],
        links: vec![link(
            ("a", "to-b", "10.75.0.1/30"),
            ("b", "to-a", "10.75.0.2/30"),
        )],
        routes: vec![],
        containers: vec![container("new", "n1", "10.71.0.20")],
    }
}

/// Everything the fake kernel and the store hold, as text.
fn snapshot(e: &mut Engine<FakeKernel>) -> Vec<String> {
    let k = e.kernel();
    let links: BTreeMap<_, _> = k.links.iter().filter(|(_, s)| !s.is_empty()).collect();
    let mut out = vec![
        format!("netns {:?}", k.netns),
        format!("links {links:?}"),
        format!("fw {:?} {:?}", k.fw_installed, k.fw),
        format!(
            "procs {:?}",
            k.procs
                .running
                .values()
                .map(|s| (&s.name, &s.argv))
                .collect::<Vec<_>>()
        ),
        // Deleting a namespace removes its /etc/netns directory; the fake keeps the files.
        format!(
            "etc {:?}",
            k.procs
                .etc
                .iter()
                .filter(|((ns, _), _)| k.netns.contains(ns))
                .collect::<Vec<_>>()
        ),
        format!("rows {:?}", e.store().read(|tx| tx.row_counts()).unwrap()),
    ];
    for n in e.network_ls().unwrap() {
        let mut d = e.network_inspect(&NetName::new(&n.name).unwrap()).unwrap();
        for v in &mut d.endpoints {
            v.state = String::new();
        }
        out.push(format!("{d:?}"));
    }
    out.push(format!("{:?}", e.link_ls().unwrap()));
    out.push(format!("{:?}", e.port_ls(None).unwrap()));
    let owned = e.topology_observe("t").unwrap().owned;
    out.push(format!("owned {owned:?}"));
    out
}

fn applied_before() -> Fixture {
    let mut f = fixture();
    f.engine.topology_apply(&before(), |_, _, _| {}).unwrap();
    let plan = f.engine.topology_plan(&before()).unwrap();
    assert!(plan.is_empty(), "{plan:?}");
    f
}

#[test]
fn a_failure_at_any_step_rolls_the_apply_back() {
    // The kernel steps of a successful apply, each one a place to fail.
    let mut f = applied_before();
    let start = f.engine.kernel().log.len();
    let plan: Vec<String> = f
        .engine
        .topology_plan(&after())
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(plan[0], "- container old", "{plan:?}");
    f.engine.topology_apply(&after(), |_, _, _| {}).unwrap();
    assert!(f.engine.topology_plan(&after()).unwrap().is_empty());
    let steps: Vec<String> = f.engine.kernel().log[start..]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(steps.len() > 40, "{steps:?}");

    let mut covered = 0;
    for (i, step) in steps.iter().enumerate() {
        let mut f = applied_before();
        let want = snapshot(&mut f.engine);
        f.engine.kernel().fail_on = Some(step.clone());
        let err = f
            .engine
            .topology_apply(&after(), |_, _, _| {})
            .expect_err(step)
            .to_string();
        assert!(
            err.contains("the apply was rolled back"),
            "step {i} {step}: {err}"
        );
        assert!(err.contains("injected failure"), "step {i} {step}: {err}");
        assert_eq!(snapshot(&mut f.engine), want, "step {i}: {step}");
        assert!(
            f.engine.topology_plan(&before()).unwrap().is_empty(),
            "step {i}: {step}"
        );
        covered += 1;
    }
    // And the container's process failing to start, the apply's last step.
    let mut f = applied_before();
    let want = snapshot(&mut f.engine);
    f.engine.kernel().procs.fail_spawn = true;
    let err = f.engine.topology_apply(&after(), |_, _, _| {}).unwrap_err();
    assert!(err.to_string().contains("fake failure"), "{err}");
    assert_eq!(snapshot(&mut f.engine), want, "{err}");
    eprintln!(
        "rolled back from a failure at each of {covered} kernel steps and at the container's start"
    );
}
