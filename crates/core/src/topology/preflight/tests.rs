use std::collections::BTreeSet;
use std::net::IpAddr;

use super::*;
use crate::model::NetworkSpec;
use crate::names::{IfName, NsName};
use crate::topology::{
    DesiredEndpoint, DesiredNetwork, Kind, LiveNs, LiveRoute, ObservedContainer, ObservedEndpoint,
    ObservedNetwork, Owned, diff, endpoint_key, undo,
};

fn spec(name: &str, cidr: &str) -> NetworkSpec {
    let n = NetName::new(name).unwrap();
    NetworkSpec::builder(n)
        .subnets([cidr.parse().unwrap()])
        .build()
        .unwrap()
}

fn ep(net: &str, ns: &str, ips: &[&str]) -> DesiredEndpoint {
    DesiredEndpoint {
        network: NetName::new(net).unwrap(),
        netns: NsName::new(ns).unwrap(),
        ips: ips.iter().map(|i| i.parse().unwrap()).collect(),
        mac: None,
        ifname: None,
        publish: vec![],
    }
}

fn port(spec: &str) -> PortMapping {
    spec.parse::<crate::port::PortSpec>().unwrap().mappings()[0]
}

fn desired(namespaces: &[&str], networks: Vec<(NetworkSpec, Vec<DesiredEndpoint>)>) -> Desired {
    Desired {
        name: "t".into(),
        namespaces: namespaces.iter().map(|n| NsName::new(n).unwrap()).collect(),
        networks: networks
            .into_iter()
            .map(|(spec, endpoints)| DesiredNetwork { spec, endpoints })
            .collect(),
        links: vec![],
        routes: vec![],
        containers: vec![],
    }
}

/// What exists: namespaces, networks (with their bridges live on the host) and endpoints;
/// `owned` lists the kinds and keys topology t made.
struct World {
    o: Observed,
}

impl World {
    fn new(namespaces: &[&str]) -> Self {
        let mut o = Observed::default();
        o.live.insert("host".into(), LiveNs::default());
        for n in namespaces {
            o.namespaces.insert(n.to_string());
            o.live.insert(
                n.to_string(),
                LiveNs {
                    interfaces: ["lo".to_string()].into(),
                    ..LiveNs::default()
                },
            );
        }
        World { o }
    }

    fn network(mut self, spec: NetworkSpec, owned: bool) -> Self {
        let host = self.o.live.get_mut("host").unwrap();
        host.interfaces.insert(spec.bridge().to_string());
        host.routes.push(LiveRoute {
            dest: spec.subnets()[0].cidr,
            dev: Some(spec.bridge().to_string()),
        });
        if owned {
            self.o
                .owned
                .insert(Owned::new(Kind::Network, spec.name().to_string()));
        }
        self.o.networks.push(ObservedNetwork { spec, drift: None });
        self
    }

    fn endpoint(mut self, net: &str, ns: &str, ip: &str, ports: &[&str], owned: bool) -> Self {
        self.o.endpoints.push(ObservedEndpoint {
            network: NetName::new(net).unwrap(),
            netns: ns.into(),
            ifname: IfName::new("eth0").unwrap(),
            ips: vec![ip.parse().unwrap()],
            mac: None,
            ports: ports.iter().map(|p| port(p)).collect(),
            container: None,
            drift: None,
        });
        self.o
            .live
            .get_mut(ns)
            .unwrap()
            .interfaces
            .insert("eth0".into());
        if owned {
            self.o
                .owned
                .insert(Owned::new(Kind::Endpoint, endpoint_key(net, ns)));
        }
        self
    }
}

fn check(d: &Desired, o: &Observed) -> Result<Prepared, String> {
    preflight(d, o, diff(d, o), &BTreeSet::new())
}

fn render(p: &Prepared) -> Vec<String> {
    p.changes.iter().map(ToString::to_string).collect()
}

#[test]
fn removals_come_last_when_nothing_created_needs_what_they_free() {
    let o = World::new(&["red", "blue"])
        .network(spec("old", "10.1.0.0/24"), true)
        .endpoint("old", "blue", "10.1.0.2", &[], true)
        .o;
    let d = desired(
        &["red", "blue"],
        vec![(spec("new", "10.2.0.0/24"), vec![ep("new", "red", &[])])],
    );
    assert_eq!(
        render(&check(&d, &o).unwrap()),
        [
            "+ network new (10.2.0.0/24 gw 10.2.0.1, bridge nsbr-new)",
            "+ endpoint red on new",
            "- network old",
        ]
    );
}

#[test]
fn removals_stay_first_when_a_creation_reuses_what_they_free() {
    // The subnet moves to a network of another name: the old one must go first.
    let o = World::new(&["red"])
        .network(spec("old", "10.1.0.0/24"), true)
        .o;
    let d = desired(&["red"], vec![(spec("new", "10.1.0.0/24"), vec![])]);
    assert_eq!(
        render(&check(&d, &o).unwrap()),
        [
            "- network old",
            "+ network new (10.1.0.0/24 gw 10.1.0.1, bridge nsbr-new)"
        ]
    );
    // A namespace leaving one network for another keeps eth0: the order may not change what
    // the endpoints get, only what a failure would disturb.
    let o = World::new(&["red"])
        .network(spec("old", "10.1.0.0/24"), true)
        .endpoint("old", "red", "10.1.0.2", &[], true)
        .o;
    let d = desired(
        &["red"],
        vec![(spec("new", "10.2.0.0/24"), vec![ep("new", "red", &[])])],
    );
    let p = check(&d, &o).unwrap();
    assert_eq!(render(&p)[0], "- network old");
}

#[test]
fn a_moved_port_is_freed_before_it_is_published_again() {
    let o = World::new(&["red", "blue"])
        .network(spec("lan", "10.1.0.0/24"), true)
        .endpoint("lan", "red", "10.1.0.2", &["8080:80"], true)
        .endpoint("lan", "blue", "10.1.0.3", &[], true)
        .o;
    let mut blue = ep("lan", "blue", &["10.1.0.3"]);
    blue.publish = vec![port("8080:80")];
    let d = desired(
        &["red", "blue"],
        vec![(
            spec("lan", "10.1.0.0/24"),
            vec![ep("lan", "red", &["10.1.0.2"]), blue],
        )],
    );
    assert_eq!(
        render(&check(&d, &o).unwrap()),
        [
            "- ports of red: 8080:80/tcp",
            "+ ports of blue: 8080:80/tcp"
        ]
    );
}

#[test]
fn a_dynamic_address_avoids_one_asked_for_later() {
    // `a` connects first and would take 10.1.0.2, which `b` asks for.
    let d = desired(
        &["a", "b"],
        vec![(
            spec("lan", "10.1.0.0/24"),
            vec![ep("lan", "a", &[]), ep("lan", "b", &["10.1.0.2"])],
        )],
    );
    let o = World::new(&["a", "b"]).o;
    let p = check(&d, &o).unwrap();
    let at = |ns: &str| p.addresses[&(NetName::new("lan").unwrap(), ns.to_string())].clone();
    assert_eq!(at("a"), ["10.1.0.3".parse::<IpAddr>().unwrap()]);
    assert_eq!(at("b"), ["10.1.0.2".parse::<IpAddr>().unwrap()]);
}

#[test]
fn conflicts_with_what_exists_are_refused_naming_the_object() {
    let base = World::new(&["red", "z"])
        .network(spec("other", "10.9.0.0/16"), false)
        .endpoint("other", "z", "10.9.0.2", &["9090:80"], false);
    let o = base.o;
    let cases: Vec<(Desired, &str)> = vec![
        (
            desired(&["red"], vec![(spec("lan", "10.9.1.0/24"), vec![])]),
            "network lan: subnet 10.9.1.0/24 overlaps subnet 10.9.0.0/16 of network other",
        ),
        (
            desired(
                &["red"],
                vec![(
                    spec("lan", "10.1.0.0/24"),
                    vec![DesiredEndpoint {
                        publish: vec![port("9090:81")],
                        ..ep("lan", "red", &[])
                    }],
                )],
            ),
            "endpoint red on network lan: host port 9090/tcp is already published (9090:80/tcp, netns z on network other)",
        ),
        (
            desired(
                &["red"],
                vec![(
                    spec("other", "10.9.0.0/16"),
                    vec![ep("other", "red", &["10.9.0.2"])],
                )],
            ),
            "endpoint red on network other: address 10.9.0.2 is already used by netns z on network other",
        ),
        (
            desired(&["red"], vec![(spec("other", "10.8.0.0/16"), vec![])]),
            "network other: it exists and was not made by topology t",
        ),
    ];
    for (d, needle) in cases {
        let e = check(&d, &o).unwrap_err();
        assert!(e.starts_with(needle), "{e}");
    }
    // A host port a listener holds.
    let d = desired(
        &["red"],
        vec![(
            spec("lan", "10.1.0.0/24"),
            vec![DesiredEndpoint {
                publish: vec![port("7070:80")],
                ..ep("lan", "red", &[])
            }],
        )],
    );
    let busy = [port("7070:80")].into();
    let e = preflight(&d, &o, diff(&d, &o), &busy).unwrap_err();
    assert!(
        e.contains("host port 7070/tcp is already in use on the host"),
        "{e}"
    );
    // A bridge name or an interface name someone made by hand.
    let mut o2 = o.clone();
    o2.live
        .get_mut("host")
        .unwrap()
        .interfaces
        .insert("nsbr-lan".into());
    o2.live
        .get_mut("red")
        .unwrap()
        .interfaces
        .insert("eth0".into());
    let d = desired(&["red"], vec![(spec("lan", "10.1.0.0/24"), vec![])]);
    assert!(
        check(&d, &o2)
            .unwrap_err()
            .starts_with("network lan: bridge nsbr-lan already exists on the host")
    );
    let d = desired(
        &["red"],
        vec![(spec("lan2", "10.2.0.0/24"), vec![ep("lan2", "red", &[])])],
    );
    assert!(
        check(&d, &o2).unwrap_err().starts_with(
            "endpoint red on network lan2: interface eth0 already exists in netns red"
        )
    );
}

#[test]
fn what_others_made_is_never_removed_with_a_topology_object() {
    // Topology t made network lan; z was connected to it by hand.
    let o = World::new(&["red", "z"])
        .network(spec("lan", "10.1.0.0/24"), true)
        .endpoint("lan", "red", "10.1.0.2", &[], true)
        .endpoint("lan", "z", "10.1.0.3", &[], false)
        .o;
    let e = check(&Desired::empty("t"), &o).unwrap_err();
    assert!(
        e.starts_with(
            "network lan: netns z is connected to it and was not connected by topology t"
        ),
        "{e}"
    );
    // A namespace the file declares is a container's.
    let mut o = World::new(&["web"]).o;
    o.containers.push(ObservedContainer {
        name: "web".into(),
        running: true,
        command: vec!["sleep".into()],
        hostname: "web".into(),
        env: None,
        rootfs: None,
        networks: vec![],
        ports: vec![],
    });
    let e = check(&desired(&["web"], vec![]), &o).unwrap_err();
    assert!(e.starts_with("namespace web: container web"), "{e}");
}

#[test]
fn undo_remakes_what_was_removed_and_removes_what_was_made() {
    let before = World::new(&["red"])
        .network(spec("old", "10.1.0.0/24"), true)
        .endpoint("old", "red", "10.1.0.5", &["8080:80"], true)
        .o;
    // The apply removed old and made new, then failed.
    let mut now = World::new(&["red"])
        .network(spec("new", "10.1.0.0/24"), true)
        .endpoint("new", "red", "10.1.0.2", &[], true)
        .o;
    now.owned = now
        .owned
        .iter()
        .cloned()
        .chain(before.owned.iter().cloned())
        .filter(|o| !o.key.starts_with("old"))
        .collect();
    let failed = Change::CreateNetns("x".into());
    let changes: Vec<String> = undo(&before, &now, &failed)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        changes,
        [
            "- network new",
            "+ network old (10.1.0.0/24 gw 10.1.0.1, bridge nsbr-old)",
            "+ endpoint red on old ip 10.1.0.5 publish 8080:80/tcp",
        ]
    );
    // Nothing changed: nothing to undo, drift that was there before included.
    let mut broken = before.clone();
    broken.endpoints[0].drift = Some("host veth nsv1 is missing".into());
    assert!(undo(&broken, &broken, &failed).is_empty());
}
