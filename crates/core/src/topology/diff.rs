//! The fewest changes from what exists to what a topology file asks for.

use std::fmt;

use crate::model::NetworkSpec;
use crate::names::NetName;
use crate::port::PortMapping;
use crate::shaping::Shaping;

use super::{
    Desired, DesiredContainer, DesiredEndpoint, DesiredLink, Kind, LinkEndDef, Observed,
    ObservedContainer, ObservedEndpoint, Owned, RouteDef, endpoint_key, link_key, route_key,
};

/// Why an existing container does not satisfy the file, if it does not.
fn container_mismatch(d: &DesiredContainer, o: &ObservedContainer) -> Option<String> {
    if !o.running {
        return Some("drift: it is not running".into());
    }
    if d.command != o.command {
        return Some("command changed".into());
    }
    if d.hostname.as_deref().unwrap_or(d.name.as_str()) != o.hostname {
        return Some("hostname changed".into());
    }
    if d.rootfs != o.rootfs {
        return Some("rootfs changed".into());
    }
    let hostname = d.hostname.as_deref().unwrap_or(d.name.as_str());
    if o.env
        .as_ref()
        .is_some_and(|env| *env != crate::container::environment(hostname, &d.env))
    {
        return Some("environment changed".into());
    }
    let nets: Vec<&NetName> = o.networks.iter().map(|(n, _)| n).collect();
    let wanted: Vec<&NetName> = d.networks.iter().map(|(n, _)| n).collect();
    if nets != wanted {
        return Some("networks changed".into());
    }
    for ((_, ip), (net, have)) in d.networks.iter().zip(&o.networks) {
        if let Some(ip) = ip
            && !have.contains(ip)
        {
            return Some(format!("address {ip} on {net} requested"));
        }
    }
    let mut want = d.publish.clone();
    let mut have = o.ports.clone();
    want.sort();
    have.sort();
    if want != have {
        return Some("published ports changed".into());
    }
    None
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    RemoveRoute(RouteDef),
    RemoveLink {
        a: LinkEndDef,
        b: LinkEndDef,
    },
    RemovePorts {
        network: NetName,
        netns: String,
        ports: Vec<PortMapping>,
    },
    Disconnect {
        network: NetName,
        netns: String,
    },
    RemoveNetwork(NetName),
    RemoveNetns(String),
    CreateNetns(String),
    CreateNetwork(NetworkSpec),
    /// The definition changed, or the bridge is gone: remove (disconnecting) and create.
    ReplaceNetwork {
        spec: NetworkSpec,
        reason: String,
    },
    /// Connect; with `reason`, the endpoint exists but differs or drifted: disconnect first.
    Connect {
        endpoint: DesiredEndpoint,
        reason: Option<String>,
    },
    AddPorts {
        network: NetName,
        netns: String,
        ports: Vec<PortMapping>,
    },
    /// Create; with `reason`, the link exists but differs or drifted: remove first.
    AddLink {
        link: DesiredLink,
        reason: Option<String>,
    },
    Shape {
        netns: String,
        ifname: String,
        from: Shaping,
        to: Shaping,
    },
    /// Add; with `reason`, the route was recorded but is missing or differs: re-add.
    AddRoute {
        route: RouteDef,
        reason: Option<String>,
    },
    /// Run; with `reason`, the container exists but differs or exited: remove first.
    RunContainer {
        container: DesiredContainer,
        reason: Option<String>,
    },
    RemoveContainer(String),
}

impl Change {
    /// What this change makes the topology own (`Some`), or stop owning (`None` in the
    /// second slot), for the ownership records.
    pub fn ownership(&self) -> (Option<Owned>, Option<Owned>) {
        match self {
            Change::CreateNetns(n) => (Some(Owned::new(Kind::Netns, n.clone())), None),
            Change::RemoveNetns(n) => (None, Some(Owned::new(Kind::Netns, n.clone()))),
            Change::CreateNetwork(s) | Change::ReplaceNetwork { spec: s, .. } => {
                (Some(Owned::new(Kind::Network, s.name().to_string())), None)
            }
            Change::RemoveNetwork(n) => (None, Some(Owned::new(Kind::Network, n.to_string()))),
            Change::Connect { endpoint: e, .. } => (
                Some(Owned::new(
                    Kind::Endpoint,
                    endpoint_key(e.network.as_str(), e.netns.as_str()),
                )),
                None,
            ),
            Change::Disconnect { network, netns } => (
                None,
                Some(Owned::new(
                    Kind::Endpoint,
                    endpoint_key(network.as_str(), netns),
                )),
            ),
            Change::AddLink { link, .. } => (Some(Owned::new(Kind::Link, link_key(&link.a))), None),
            Change::RemoveLink { a, .. } => (None, Some(Owned::new(Kind::Link, link_key(a)))),
            Change::AddRoute { route, .. } => {
                (Some(Owned::new(Kind::Route, route_key(route))), None)
            }
            Change::RemoveRoute(r) => (None, Some(Owned::new(Kind::Route, route_key(r)))),
            Change::RunContainer { container, .. } => (
                Some(Owned::new(Kind::Container, container.name.to_string())),
                None,
            ),
            Change::RemoveContainer(n) => (None, Some(Owned::new(Kind::Container, n.clone()))),
            Change::RemovePorts { .. } | Change::AddPorts { .. } | Change::Shape { .. } => {
                (None, None)
            }
        }
    }
}

fn ports(list: &[PortMapping]) -> String {
    list.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn end(e: &LinkEndDef) -> String {
    match e.addr {
        Some(a) => format!("{}:{} ({a})", e.netns, e.ifname),
        None => format!("{}:{}", e.netns, e.ifname),
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::RemoveRoute(r) => write!(f, "- route {} {} via {}", r.netns, r.dest, r.via),
            Change::RemoveLink { a, b } => write!(f, "- link {} <-> {}", end(a), end(b)),
            Change::RemovePorts {
                netns, ports: p, ..
            } => write!(f, "- ports of {netns}: {}", ports(p)),
            Change::Disconnect { network, netns } => write!(f, "- endpoint {netns} on {network}"),
            Change::RemoveNetwork(n) => write!(f, "- network {n}"),
            Change::RemoveNetns(n) => write!(f, "- netns {n}"),
            Change::CreateNetns(n) => write!(f, "+ netns {n}"),
            Change::CreateNetwork(s) => write!(f, "+ network {} ({})", s.name(), describe(s)),
            Change::ReplaceNetwork { spec, reason } => {
                write!(
                    f,
                    "~ network {} ({}): replace, {reason}",
                    spec.name(),
                    describe(spec)
                )
            }
            Change::Connect {
                endpoint: e,
                reason,
            } => {
                let sign = if reason.is_some() { '~' } else { '+' };
                write!(f, "{sign} endpoint {} on {}", e.netns, e.network)?;
                if !e.ips.is_empty() {
                    let ips: Vec<String> = e.ips.iter().map(ToString::to_string).collect();
                    write!(f, " ip {}", ips.join(", "))?;
                }
                if !e.publish.is_empty() {
                    write!(f, " publish {}", ports(&e.publish))?;
                }
                if let Some(r) = reason {
                    write!(f, ": reconnect, {r}")?;
                }
                Ok(())
            }
            Change::AddPorts {
                netns, ports: p, ..
            } => write!(f, "+ ports of {netns}: {}", ports(p)),
            Change::AddLink { link, reason } => {
                let sign = if reason.is_some() { '~' } else { '+' };
                write!(f, "{sign} link {} <-> {}", end(&link.a), end(&link.b))?;
                if let Some(r) = reason {
                    write!(f, ": recreate, {r}")?;
                }
                Ok(())
            }
            Change::Shape {
                netns,
                ifname,
                from,
                to,
            } => write!(f, "~ shaping {netns}:{ifname}: {from} -> {to}"),
            Change::RunContainer {
                container: c,
                reason,
            } => {
                let sign = if reason.is_some() { '~' } else { '+' };
                write!(f, "{sign} container {} ({})", c.name, c.command.join(" "))?;
                if let Some(r) = reason {
                    write!(f, ": replace, {r}")?;
                }
                Ok(())
            }
            Change::RemoveContainer(n) => write!(f, "- container {n}"),
            Change::AddRoute { route: r, reason } => {
                let sign = if reason.is_some() { '~' } else { '+' };
                write!(f, "{sign} route {} {} via {}", r.netns, r.dest, r.via)?;
                if let Some(why) = reason {
                    write!(f, ": re-add, {why}")?;
                }
                Ok(())
            }
        }
    }
}

fn describe(s: &NetworkSpec) -> String {
    let subnets: Vec<String> = s
        .subnets()
        .iter()
        .map(|x| format!("{} gw {}", x.cidr, x.gateway))
        .collect();
    format!("{}, bridge {}", subnets.join(", "), s.bridge())
}

/// Why an observed endpoint does not satisfy a desired one, if it does not.
fn endpoint_mismatch(d: &DesiredEndpoint, o: &ObservedEndpoint) -> Option<String> {
    if let Some(why) = &o.drift {
        return Some(format!("drift: {why}"));
    }
    if let Some(ip) = d.ips.iter().find(|ip| !o.ips.contains(ip)) {
        return Some(format!("address {ip} requested"));
    }
    if d.mac.is_some() && d.mac != o.mac {
        return Some("mac changed".into());
    }
    if let Some(i) = &d.ifname
        && *i != o.ifname
    {
        return Some(format!("interface name {} -> {i}", o.ifname));
    }
    None
}

/// Why an observed link does not satisfy a desired one (same A end), if it does not.
fn link_mismatch(
    d: &DesiredLink,
    a: &LinkEndDef,
    b: &LinkEndDef,
    drift: &Option<String>,
) -> Option<String> {
    if let Some(why) = drift {
        return Some(format!("drift: {why}"));
    }
    if d.b.netns != b.netns || d.b.ifname != b.ifname {
        return Some(format!(
            "peer {}:{} -> {}:{}",
            b.netns, b.ifname, d.b.netns, d.b.ifname
        ));
    }
    if d.a.addr != a.addr || d.b.addr != b.addr {
        return Some("addresses changed".into());
    }
    None
}

/// The changes that turn `observed` into `desired`: removals of what this topology owns but
/// no longer asks for (newest objects first), then creations and repairs (oldest first).
pub fn diff(desired: &Desired, observed: &Observed) -> Vec<Change> {
    let owns = |kind: Kind, key: &str| observed.owned.contains(&Owned::new(kind, key));
    let mut removals = Vec::new();
    let mut creations = Vec::new();

    // Routes.
    let mut route_removals = Vec::new();
    for o in &observed.routes {
        let wanted = desired
            .routes
            .iter()
            .find(|d| d.netns == o.route.netns && d.dest == o.route.dest);
        if wanted.is_none() && owns(Kind::Route, &route_key(&o.route)) {
            route_removals.push(Change::RemoveRoute(o.route.clone()));
        }
    }
    // Links.
    let mut link_removals = Vec::new();
    for o in &observed.links {
        let wanted = desired
            .links
            .iter()
            .any(|d| link_key(&d.a) == link_key(&o.a));
        if !wanted && owns(Kind::Link, &link_key(&o.a)) {
            link_removals.push(Change::RemoveLink {
                a: o.a.clone(),
                b: o.b.clone(),
            });
        }
    }
    // Networks: which are replaced or removed (their endpoints go with them).
    let mut replaced: Vec<&NetName> = Vec::new();
    let mut network_changes = Vec::new();
    for d in &desired.networks {
        match observed
            .networks
            .iter()
            .find(|o| o.spec.name() == d.spec.name())
        {
            None => network_changes.push(Change::CreateNetwork(d.spec.clone())),
            Some(o) => {
                let reason = if let Some(why) = &o.drift {
                    Some(format!("drift: {why}"))
                } else if o.spec != d.spec {
                    Some("definition changed".to_string())
                } else {
                    None
                };
                if let Some(reason) = reason {
                    replaced.push(d.spec.name());
                    network_changes.push(Change::ReplaceNetwork {
                        spec: d.spec.clone(),
                        reason,
                    });
                }
            }
        }
    }
    let mut network_removals = Vec::new();
    for o in &observed.networks {
        let wanted = desired
            .networks
            .iter()
            .any(|d| d.spec.name() == o.spec.name());
        if !wanted && owns(Kind::Network, o.spec.name().as_str()) {
            network_removals.push(Change::RemoveNetwork(o.spec.name().clone()));
        }
    }
    let network_goes = |n: &NetName| {
        replaced.contains(&n)
            || network_removals
                .iter()
                .any(|c| matches!(c, Change::RemoveNetwork(r) if r == n))
            || !observed.networks.iter().any(|o| *o.spec.name() == *n)
    };
    // Endpoints and their ports.
    let mut endpoint_removals = Vec::new();
    let mut port_removals = Vec::new();
    let mut connects = Vec::new();
    let mut port_adds = Vec::new();
    for o in &observed.endpoints {
        let wanted = desired
            .networks
            .iter()
            .flat_map(|n| &n.endpoints)
            .any(|d| d.network == o.network && d.netns.as_str() == o.netns);
        if !wanted
            && !network_goes(&o.network)
            && owns(Kind::Endpoint, &endpoint_key(o.network.as_str(), &o.netns))
        {
            endpoint_removals.push(Change::Disconnect {
                network: o.network.clone(),
                netns: o.netns.clone(),
            });
        }
    }
    for d in desired.networks.iter().flat_map(|n| &n.endpoints) {
        let existing = observed
            .endpoints
            .iter()
            .find(|o| o.network == d.network && o.netns == d.netns.as_str());
        match existing {
            Some(o) if !network_goes(&d.network) => match endpoint_mismatch(d, o) {
                Some(reason) => connects.push(Change::Connect {
                    endpoint: d.clone(),
                    reason: Some(reason),
                }),
                None => {
                    let add: Vec<PortMapping> = d
                        .publish
                        .iter()
                        .filter(|p| !o.ports.contains(p))
                        .copied()
                        .collect();
                    let extra: Vec<PortMapping> = o
                        .ports
                        .iter()
                        .filter(|p| !d.publish.contains(p))
                        .copied()
                        .collect();
                    if !extra.is_empty()
                        && owns(Kind::Endpoint, &endpoint_key(o.network.as_str(), &o.netns))
                    {
                        port_removals.push(Change::RemovePorts {
                            network: o.network.clone(),
                            netns: o.netns.clone(),
                            ports: extra,
                        });
                    }
                    if !add.is_empty() {
                        port_adds.push(Change::AddPorts {
                            network: d.network.clone(),
                            netns: o.netns.clone(),
                            ports: add,
                        });
                    }
                }
            },
            _ => connects.push(Change::Connect {
                endpoint: d.clone(),
                reason: None,
            }),
        }
    }
    // Namespaces.
    let mut ns_removals = Vec::new();
    let mut ns_creations = Vec::new();
    for n in &observed.owned {
        if n.kind == Kind::Netns
            && !desired.namespaces.iter().any(|d| d.as_str() == n.key)
            && observed.namespaces.contains(&n.key)
        {
            ns_removals.push(Change::RemoveNetns(n.key.clone()));
        }
    }
    for d in &desired.namespaces {
        if !observed.namespaces.contains(d.as_str()) {
            ns_creations.push(Change::CreateNetns(d.to_string()));
        }
    }
    // Links to create, repair or reshape.
    let mut link_adds = Vec::new();
    let mut shapes = Vec::new();
    for d in &desired.links {
        match observed
            .links
            .iter()
            .find(|o| link_key(&o.a) == link_key(&d.a))
        {
            None => link_adds.push(Change::AddLink {
                link: d.clone(),
                reason: None,
            }),
            Some(o) => match link_mismatch(d, &o.a, &o.b, &o.drift) {
                Some(reason) => link_adds.push(Change::AddLink {
                    link: d.clone(),
                    reason: Some(reason),
                }),
                None => {
                    for (want, have) in [(&d.a, &o.a), (&d.b, &o.b)] {
                        if want.shaping != have.shaping {
                            shapes.push(Change::Shape {
                                netns: want.netns.clone(),
                                ifname: want.ifname.to_string(),
                                from: have.shaping,
                                to: want.shaping,
                            });
                        }
                    }
                }
            },
        }
    }
    // Routes to add or repair.
    let mut route_adds = Vec::new();
    for d in &desired.routes {
        match observed
            .routes
            .iter()
            .find(|o| o.route.netns == d.netns && o.route.dest == d.dest)
        {
            None => route_adds.push(Change::AddRoute {
                route: d.clone(),
                reason: None,
            }),
            Some(o) if o.route.via != d.via => route_adds.push(Change::AddRoute {
                route: d.clone(),
                reason: Some(format!("gateway {} -> {}", o.route.via, d.via)),
            }),
            Some(o) if !o.present => route_adds.push(Change::AddRoute {
                route: d.clone(),
                reason: Some("drift: missing from the kernel".into()),
            }),
            Some(_) => {}
        }
    }
    // Containers: replaced as a whole (their process restarts), removed if owned.
    let mut container_removals = Vec::new();
    let mut container_runs = Vec::new();
    for o in &observed.containers {
        if !desired.containers.iter().any(|d| d.name.as_str() == o.name)
            && owns(Kind::Container, &o.name)
        {
            container_removals.push(Change::RemoveContainer(o.name.clone()));
        }
    }
    for d in &desired.containers {
        match observed
            .containers
            .iter()
            .find(|o| o.name == d.name.as_str())
        {
            None => container_runs.push(Change::RunContainer {
                container: d.clone(),
                reason: None,
            }),
            Some(o) => {
                let via_replaced = d
                    .networks
                    .iter()
                    .find(|(n, _)| replaced.contains(&n))
                    .map(|(n, _)| format!("network {n} is replaced"));
                if let Some(reason) = via_replaced.or_else(|| container_mismatch(d, o)) {
                    container_runs.push(Change::RunContainer {
                        container: d.clone(),
                        reason: Some(reason),
                    });
                }
            }
        }
    }
    removals.extend(container_removals);
    removals.extend(route_removals);
    removals.extend(link_removals);
    removals.extend(port_removals);
    removals.extend(endpoint_removals);
    removals.extend(network_removals);
    removals.extend(ns_removals);
    creations.extend(ns_creations);
    creations.extend(network_changes);
    creations.extend(connects);
    creations.extend(port_adds);
    creations.extend(link_adds);
    creations.extend(shapes);
    creations.extend(route_adds);
    creations.extend(container_runs);
    removals.extend(creations);
    removals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::{IfName, NsName};
    use crate::topology::{DesiredNetwork, ObservedLink, ObservedNetwork, ObservedRoute};

    fn spec(name: &str, cidr: &str) -> NetworkSpec {
        let n = NetName::new(name).unwrap();
        NetworkSpec::builder(n)
            .subnets([cidr.parse().unwrap()])
            .build()
            .unwrap()
    }

    fn ep(net: &str, ns: &str) -> DesiredEndpoint {
        DesiredEndpoint {
            network: NetName::new(net).unwrap(),
            netns: NsName::new(ns).unwrap(),
            ips: vec![],
            mac: None,
            ifname: None,
            publish: vec![],
        }
    }

    fn end(ns: &str, ifname: &str, delay: Option<u64>) -> LinkEndDef {
        LinkEndDef {
            netns: ns.into(),
            ifname: IfName::new(ifname).unwrap(),
            addr: None,
            shaping: Shaping {
                delay_us: delay,
                ..Default::default()
            },
        }
    }

    fn desired() -> Desired {
        Desired {
            name: "t".into(),
            namespaces: vec![NsName::new("red").unwrap(), NsName::new("blue").unwrap()],
            networks: vec![DesiredNetwork {
                spec: spec("lan", "10.0.0.0/24"),
                endpoints: vec![ep("lan", "red"), ep("lan", "blue")],
            }],
            links: vec![DesiredLink {
                a: end("red", "veth-blue", Some(50_000)),
                b: end("blue", "veth-red", None),
                mtu: None,
            }],
            containers: vec![],
            routes: vec![RouteDef {
                netns: "blue".into(),
                dest: "192.168.1.0/24".parse().unwrap(),
                via: "10.0.0.1".parse().unwrap(),
            }],
        }
    }

    fn render(changes: &[Change]) -> Vec<String> {
        changes.iter().map(ToString::to_string).collect()
    }

    /// What exists after applying `desired()`, owned by the topology.
    fn applied() -> Observed {
        let d = desired();
        let mut o = Observed::default();
        for c in diff(&d, &Observed::default()) {
            if let (Some(own), _) = c.ownership() {
                o.owned.insert(own);
            }
        }
        o.namespaces = ["red".to_string(), "blue".to_string()].into();
        o.networks = vec![ObservedNetwork {
            spec: spec("lan", "10.0.0.0/24"),
            drift: None,
        }];
        o.endpoints = ["red", "blue"]
            .iter()
            .enumerate()
            .map(|(i, ns)| ObservedEndpoint {
                network: NetName::new("lan").unwrap(),
                netns: ns.to_string(),
                ifname: IfName::new("eth0").unwrap(),
                ips: vec![format!("10.0.0.{}", i + 2).parse().unwrap()],
                mac: None,
                ports: vec![],
                container: None,
                drift: None,
            })
            .collect();
        o.links = vec![ObservedLink {
            a: end("red", "veth-blue", Some(50_000)),
            b: end("blue", "veth-red", None),
            mtu: None,
            drift: None,
        }];
        o.routes = vec![ObservedRoute {
            route: d.routes[0].clone(),
            present: true,
        }];
        o
    }

    #[test]
    fn from_nothing_everything_is_created_in_order() {
        assert_eq!(
            render(&diff(&desired(), &Observed::default())),
            [
                "+ netns red",
                "+ netns blue",
                "+ network lan (10.0.0.0/24 gw 10.0.0.1, bridge nsbr-lan)",
                "+ endpoint red on lan",
                "+ endpoint blue on lan",
                "+ link red:veth-blue <-> blue:veth-red",
                "+ route blue 192.168.1.0/24 via 10.0.0.1",
            ]
        );
    }

    #[test]
    fn applied_twice_changes_nothing() {
        assert!(diff(&desired(), &applied()).is_empty());
    }

    #[test]
    fn an_edit_changes_only_that() {
        let mut d = desired();
        d.links[0].a.shaping.delay_us = Some(100_000);
        d.networks[0].endpoints[1].publish = vec![
            "8080:80"
                .parse::<crate::port::PortSpec>()
                .unwrap()
                .mappings()[0],
        ];
        d.namespaces.push(NsName::new("green").unwrap());
        assert_eq!(
            render(&diff(&d, &applied())),
            [
                "+ netns green",
                "+ ports of blue: 8080:80/tcp",
                "~ shaping red:veth-blue: delay 50ms -> delay 100ms",
            ]
        );
    }

    #[test]
    fn removed_from_the_file_means_removed_if_owned() {
        let mut d = desired();
        d.routes.clear();
        d.links.clear();
        d.networks[0].endpoints.pop();
        d.namespaces.pop();
        let mut o = applied();
        // Not created by this topology: never removed.
        o.namespaces.insert("handmade".into());
        assert_eq!(
            render(&diff(&d, &o)),
            [
                "- route blue 192.168.1.0/24 via 10.0.0.1",
                "- link red:veth-blue <-> blue:veth-red",
                "- endpoint blue on lan",
                "- netns blue",
            ]
        );
    }

    #[test]
    fn drift_is_repaired() {
        let mut o = applied();
        o.endpoints[0].drift = Some("host veth nsv1 is missing".into());
        o.routes[0].present = false;
        o.links[0].drift = Some("veth-blue is missing in netns red".into());
        assert_eq!(
            render(&diff(&desired(), &o)),
            [
                "~ endpoint red on lan: reconnect, drift: host veth nsv1 is missing",
                "~ link red:veth-blue <-> blue:veth-red: recreate, drift: veth-blue is missing in netns red",
                "~ route blue 192.168.1.0/24 via 10.0.0.1: re-add, drift: missing from the kernel",
            ]
        );
    }

    #[test]
    fn a_changed_network_is_replaced_and_its_endpoints_reconnected() {
        let mut d = desired();
        d.networks[0].spec = spec("lan", "10.9.0.0/24");
        let changes = render(&diff(&d, &applied()));
        assert_eq!(
            changes[0],
            "~ network lan (10.9.0.0/24 gw 10.9.0.1, bridge nsbr-lan): replace, definition changed"
        );
        assert_eq!(
            &changes[1..],
            ["+ endpoint red on lan", "+ endpoint blue on lan"]
        );
    }

    #[test]
    fn containers_run_replace_and_go() {
        let c = DesiredContainer {
            name: NsName::new("api").unwrap(),
            command: vec!["sleep".into(), "infinity".into()],
            hostname: None,
            env: vec!["ROLE=api".into()],
            rootfs: None,
            networks: vec![(NetName::new("lan").unwrap(), None)],
            publish: vec![],
        };
        let mut d = desired();
        d.containers.push(c.clone());
        let mut o = applied();
        assert_eq!(render(&diff(&d, &o)), ["+ container api (sleep infinity)"]);
        o.owned.insert(Owned::new(Kind::Container, "api"));
        o.containers.push(ObservedContainer {
            name: "api".into(),
            running: true,
            command: c.command.clone(),
            hostname: "api".into(),
            env: Some(crate::container::environment("api", &c.env)),
            rootfs: None,
            networks: vec![(
                NetName::new("lan").unwrap(),
                vec!["10.0.0.9".parse().unwrap()],
            )],
            ports: vec![],
        });
        assert!(diff(&d, &o).is_empty());
        d.containers[0].env = vec!["ROLE=gateway".into()];
        assert_eq!(
            render(&diff(&d, &o)),
            ["~ container api (sleep infinity): replace, environment changed"]
        );
        d.containers.clear();
        assert_eq!(render(&diff(&d, &o)), ["- container api"]);
    }
}
