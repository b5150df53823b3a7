//! The model of the machine a plan is played on: each change applied with the checks the
//! engine's operation makes, against the store's objects and the kernel's interfaces,
//! addresses and routes as the changes before it left them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::model::{Mac, NetworkSpec};
use crate::names::{HOST, IfName, NetName};
use crate::port::PortMapping;
use crate::topology::{
    Change, Desired, Kind, LinkEndDef, LiveNs, Observed, Owned, endpoint_key, link_key, route_key,
};

mod endpoints;
mod objects;

use super::{Outcome, requested};

/// An endpoint in the model.
#[derive(Debug, Clone)]
struct Ep {
    network: NetName,
    netns: String,
    ifname: String,
    ips: Vec<IpAddr>,
    mac: Option<Mac>,
    ports: Vec<PortMapping>,
    container: Option<String>,
}

/// What a connect asks for.
struct Attach<'a> {
    who: &'a str,
    network: &'a NetName,
    netns: &'a str,
    ips: &'a [IpAddr],
    mac: Option<Mac>,
    ifname: Option<&'a IfName>,
    publish: &'a [PortMapping],
    container: Option<&'a str>,
}

/// The machine as the plan changes it.
pub(super) struct World<'a> {
    topology: &'a str,
    owned: BTreeSet<Owned>,
    namespaces: BTreeSet<String>,
    containers: BTreeSet<String>,
    networks: Vec<NetworkSpec>,
    /// Oldest first (the oldest non-internal one of a namespace is its primary).
    endpoints: Vec<Ep>,
    links: Vec<(LinkEndDef, LinkEndDef)>,
    routes: BTreeSet<(String, IpNet)>,
    live: BTreeMap<String, LiveNs>,
    busy: &'a BTreeSet<PortMapping>,
    /// Addresses changes later in the plan ask for, per network: dynamic ones avoid them.
    reserved: BTreeMap<NetName, BTreeSet<IpAddr>>,
    outcome: Outcome,
}

fn is_drift(reason: &str) -> bool {
    reason.starts_with("drift")
}

impl<'a> World<'a> {
    pub(super) fn new(
        desired: &'a Desired,
        observed: &Observed,
        busy: &'a BTreeSet<PortMapping>,
    ) -> Self {
        let mut live = observed.live.clone();
        live.entry(HOST.to_string()).or_default();
        World {
            topology: &desired.name,
            owned: observed.owned.clone(),
            namespaces: observed.namespaces.clone(),
            containers: observed.containers.iter().map(|c| c.name.clone()).collect(),
            networks: observed.networks.iter().map(|n| n.spec.clone()).collect(),
            endpoints: observed
                .endpoints
                .iter()
                .map(|e| Ep {
                    network: e.network.clone(),
                    netns: e.netns.clone(),
                    ifname: e.ifname.to_string(),
                    ips: e.ips.clone(),
                    mac: e.mac,
                    ports: e.ports.clone(),
                    container: e.container.clone(),
                })
                .collect(),
            links: observed
                .links
                .iter()
                .map(|l| (l.a.clone(), l.b.clone()))
                .collect(),
            routes: observed
                .routes
                .iter()
                .map(|r| (r.route.netns.clone(), r.route.dest))
                .collect(),
            live,
            busy,
            reserved: BTreeMap::new(),
            outcome: Outcome::default(),
        }
    }

    pub(super) fn run(mut self, order: &[Change]) -> Result<Outcome, String> {
        for c in order {
            for (net, ip) in requested(c) {
                self.reserved.entry(net).or_default().insert(ip);
            }
        }
        for c in order {
            for (net, ip) in requested(c) {
                if let Some(r) = self.reserved.get_mut(&net) {
                    r.remove(&ip);
                }
            }
            self.change(c)?;
            let (own, disown) = c.ownership();
            if let Some(o) = disown {
                self.owned.remove(&o);
            }
            if let Some(o) = own {
                self.owned.insert(o);
            }
        }
        Ok(self.outcome)
    }

    fn owns(&self, kind: Kind, key: &str) -> bool {
        self.owned.contains(&Owned::new(kind, key))
    }

    /// Refuses to replace an object someone else made because the file describes it
    /// differently (repairing drift is fine: the object is broken either way).
    fn not_theirs(&self, kind: Kind, key: &str, what: &str, reason: &str) -> Result<(), String> {
        if self.owns(kind, key) || is_drift(reason) {
            return Ok(());
        }
        Err(format!(
            "{what}: it exists and was not made by topology {}, and the file asks for it \
             differently ({reason}); remove it or change the file",
            self.topology
        ))
    }

    fn iface(&mut self, ns: &str) -> &mut LiveNs {
        self.live.entry(ns.to_string()).or_default()
    }

    fn has_iface(&self, ns: &str, ifname: &str) -> bool {
        self.live
            .get(ns)
            .is_some_and(|l| l.interfaces.contains(ifname))
    }

    /// An interface goes, and the routes through it with it.
    fn drop_iface(&mut self, ns: &str, ifname: &str) {
        if let Some(l) = self.live.get_mut(ns) {
            l.interfaces.remove(ifname);
            l.addrs.retain(|(i, _)| i != ifname);
            l.routes.retain(|r| r.dev.as_deref() != Some(ifname));
        }
    }

    fn change(&mut self, c: &Change) -> Result<(), String> {
        match c {
            Change::CreateNetns(n) => {
                if self.namespaces.contains(n) {
                    return Err(format!("namespace {n}: it already exists"));
                }
                self.namespaces.insert(n.clone());
                self.iface(n).interfaces.insert("lo".into());
                Ok(())
            }
            Change::RemoveNetns(n) => {
                self.foreign_in_netns(n)?;
                self.drop_netns(n);
                Ok(())
            }
            Change::CreateNetwork(spec) => self.create_network(spec),
            Change::ReplaceNetwork { spec, reason } => {
                let what = format!("network {}", spec.name());
                self.not_theirs(Kind::Network, spec.name().as_str(), &what, reason)?;
                self.foreign_on_network(spec.name())?;
                self.drop_network(spec.name());
                self.create_network(spec)
            }
            Change::RemoveNetwork(n) => {
                self.foreign_on_network(n)?;
                self.drop_network(n);
                Ok(())
            }
            Change::Connect {
                endpoint: e,
                reason,
            } => {
                let who = format!("endpoint {} on network {}", e.netns, e.network);
                if let Some(r) = reason {
                    let key = endpoint_key(e.network.as_str(), e.netns.as_str());
                    self.not_theirs(Kind::Endpoint, &key, &who, r)?;
                    self.drop_endpoint(&e.network, e.netns.as_str());
                }
                let ips = self.connect(&Attach {
                    who: &who,
                    network: &e.network,
                    netns: e.netns.as_str(),
                    ips: &e.ips,
                    mac: e.mac,
                    ifname: e.ifname.as_ref(),
                    publish: &e.publish,
                    container: None,
                })?;
                self.outcome
                    .addresses
                    .insert((e.network.clone(), e.netns.to_string()), ips);
                Ok(())
            }
            Change::Disconnect { network, netns } => {
                self.drop_endpoint(network, netns);
                Ok(())
            }
            Change::AddPorts { netns, ports, .. } => self.add_ports(netns, ports),
            Change::RemovePorts { netns, ports, .. } => {
                for e in self.endpoints.iter_mut().filter(|e| e.netns == *netns) {
                    e.ports.retain(|p| !ports.contains(p));
                }
                Ok(())
            }
            Change::AddLink { link, reason } => {
                if let Some(r) = reason {
                    let what = format!("link {}:{}", link.a.netns, link.a.ifname);
                    self.not_theirs(Kind::Link, &link_key(&link.a), &what, r)?;
                    self.drop_link(&link_key(&link.a));
                }
                self.add_link(link)
            }
            Change::RemoveLink { a, .. } => {
                self.drop_link(&link_key(a));
                Ok(())
            }
            Change::Shape { .. } => Ok(()),
            Change::AddRoute { route, reason } => {
                if let Some(r) = reason {
                    let what = format!("route {} in netns {}", route.dest, route.netns);
                    let key = route_key(route);
                    self.not_theirs(Kind::Route, &key, &what, r)?;
                    self.drop_route(route);
                }
                self.add_route(route)
            }
            Change::RemoveRoute(r) => {
                self.drop_route(r);
                Ok(())
            }
            Change::RunContainer { container, reason } => {
                if let Some(r) = reason {
                    let what = format!("container {}", container.name);
                    self.not_theirs(Kind::Container, container.name.as_str(), &what, r)?;
                    self.drop_container(container.name.as_str());
                }
                self.run_container(container)
            }
            Change::RemoveContainer(n) => {
                self.drop_container(n);
                Ok(())
            }
        }
    }

    /// An endpoint is this topology's when it made it, or made the container it belongs to.
    fn mine(&self, e: &Ep) -> bool {
        self.owns(
            Kind::Endpoint,
            &endpoint_key(e.network.as_str(), e.netns.as_str()),
        ) || e
            .container
            .as_deref()
            .is_some_and(|c| self.owns(Kind::Container, c))
    }

    /// Removing a network takes every endpoint on it: refused while others' are there.
    fn foreign_on_network(&self, name: &NetName) -> Result<(), String> {
        let theirs: Vec<&str> = self
            .endpoints
            .iter()
            .filter(|e| e.network == *name && !self.mine(e))
            .map(|e| e.netns.as_str())
            .collect();
        if theirs.is_empty() {
            return Ok(());
        }
        Err(format!(
            "network {name}: netns {} is connected to it and was not connected by topology {}; \
             disconnect it first (the topology removes only what it made)",
            theirs.join(", "),
            self.topology
        ))
    }

    /// Removing a namespace takes everything nsnet made in it: refused while others' are there.
    fn foreign_in_netns(&self, ns: &str) -> Result<(), String> {
        let mut theirs: Vec<String> = self
            .endpoints
            .iter()
            .filter(|e| e.netns == ns && !self.mine(e))
            .map(|e| format!("endpoint on network {}", e.network))
            .collect();
        theirs.extend(
            self.links
                .iter()
                .filter(|(a, b)| {
                    (a.netns == ns || b.netns == ns) && !self.owns(Kind::Link, &link_key(a))
                })
                .map(|(a, b)| {
                    format!("link {}:{} <-> {}:{}", a.netns, a.ifname, b.netns, b.ifname)
                }),
        );
        theirs.extend(
            self.routes
                .iter()
                .filter(|(n, dest)| n == ns && !self.owns(Kind::Route, &format!("{n} {dest}")))
                .map(|(_, dest)| format!("route {dest}")),
        );
        if theirs.is_empty() {
            return Ok(());
        }
        Err(format!(
            "namespace {ns}: it holds {} not made by topology {}; remove them first (the \
             topology removes only what it made)",
            theirs.join(", "),
            self.topology
        ))
    }
}
