//! The model of the machine a plan is played on: each change applied with the checks the
//! engine's operation makes, against the store's objects and the kernel's interfaces,
//! addresses and routes as the changes before it left them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ipam;
use crate::model::{Mac, NetworkSpec, overlaps};
use crate::names::{HOST, IfName, NetName, host_veth};
use crate::port::PortMapping;
use crate::topology::{
    Change, Desired, DesiredContainer, DesiredLink, Kind, LinkEndDef, LiveNs, LiveRoute, Observed,
    Owned, RouteDef, endpoint_key, link_key, route_key,
};

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
                let what = format!("network {}", spec.name);
                self.not_theirs(Kind::Network, spec.name.as_str(), &what, reason)?;
                self.foreign_on_network(&spec.name)?;
                self.drop_network(&spec.name);
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

    fn create_network(&mut self, spec: &NetworkSpec) -> Result<(), String> {
        let who = format!("network {}", spec.name);
        if self.networks.iter().any(|n| n.name == spec.name) {
            return Err(format!("{who}: it already exists"));
        }
        for other in &self.networks {
            if other.bridge == spec.bridge {
                return Err(format!(
                    "{who}: bridge {} is already used by network {}",
                    spec.bridge, other.name
                ));
            }
            for s in &spec.subnets {
                if let Some(o) = other.subnets.iter().find(|o| overlaps(&o.cidr, &s.cidr)) {
                    return Err(format!(
                        "{who}: subnet {} overlaps subnet {} of network {}",
                        s.cidr, o.cidr, other.name
                    ));
                }
            }
        }
        let host = self.iface(HOST);
        for s in &spec.subnets {
            if let Some(r) = host
                .routes
                .iter()
                .find(|r| r.dest.prefix_len() > 0 && overlaps(&r.dest, &s.cidr))
            {
                return Err(format!(
                    "{who}: subnet {} overlaps route {} already on the host{}",
                    s.cidr,
                    r.dest,
                    r.dev
                        .as_ref()
                        .map(|d| format!(" (dev {d})"))
                        .unwrap_or_default()
                ));
            }
        }
        if host.interfaces.contains(spec.bridge.as_str()) {
            return Err(format!(
                "{who}: bridge {} already exists on the host (choose another `bridge`)",
                spec.bridge
            ));
        }
        host.interfaces.insert(spec.bridge.to_string());
        for s in &spec.subnets {
            host.addrs.insert((spec.bridge.to_string(), s.gateway));
            host.routes.push(LiveRoute {
                dest: s.cidr,
                dev: Some(spec.bridge.to_string()),
            });
        }
        self.networks.push(spec.clone());
        Ok(())
    }

    fn drop_network(&mut self, name: &NetName) {
        let on: Vec<String> = self
            .endpoints
            .iter()
            .filter(|e| e.network == *name)
            .map(|e| e.netns.clone())
            .collect();
        for ns in on {
            self.drop_endpoint(name, &ns);
        }
        if let Some(i) = self.networks.iter().position(|n| n.name == *name) {
            let spec = self.networks.remove(i);
            self.drop_iface(HOST, spec.bridge.as_str());
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

    fn drop_netns(&mut self, ns: &str) {
        let eps: Vec<NetName> = self
            .endpoints
            .iter()
            .filter(|e| e.netns == ns)
            .map(|e| e.network.clone())
            .collect();
        for n in eps {
            self.drop_endpoint(&n, ns);
        }
        let links: Vec<String> = self
            .links
            .iter()
            .filter(|(a, b)| a.netns == ns || b.netns == ns)
            .map(|(a, _)| link_key(a))
            .collect();
        for k in links {
            self.drop_link(&k);
        }
        self.routes.retain(|(n, _)| n != ns);
        self.namespaces.remove(ns);
        self.live.remove(ns);
    }

    fn primary_of(&self, ns: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| {
            e.netns == ns
                && self
                    .networks
                    .iter()
                    .any(|n| n.name == e.network && !n.internal)
        })
    }

    /// Default routes of a namespace's primary endpoint (what `connect` installs).
    fn default_routes(&mut self, i: usize) {
        let e = self.endpoints[i].clone();
        let Some(spec) = self.networks.iter().find(|n| n.name == e.network) else {
            return;
        };
        let dests: Vec<IpNet> = spec
            .subnets
            .iter()
            .filter(|s| e.ips.iter().any(|ip| s.cidr.contains(ip)))
            .map(|s| crate::plan::default_dest(s.gateway))
            .collect();
        let live = self.iface(&e.netns);
        for dest in dests {
            live.routes.push(LiveRoute {
                dest,
                dev: Some(e.ifname.clone()),
            });
        }
    }

    fn drop_endpoint(&mut self, network: &NetName, ns: &str) {
        let Some(i) = self
            .endpoints
            .iter()
            .position(|e| e.network == *network && e.netns == ns)
        else {
            return;
        };
        let was_primary = self.primary_of(ns) == Some(i);
        let e = self.endpoints.remove(i);
        self.drop_iface(ns, &e.ifname);
        if let Ok(ifname) = IfName::new(&e.ifname) {
            self.drop_iface(HOST, host_veth(network, ns, &ifname).as_str());
        }
        if was_primary && let Some(next) = self.primary_of(ns) {
            self.default_routes(next);
        }
    }

    /// What the engine's `connect` checks and allocates; returns the endpoint's addresses.
    fn connect(&mut self, a: &Attach<'_>) -> Result<Vec<IpAddr>, String> {
        let who = a.who;
        if !self.namespaces.contains(a.netns) {
            return Err(format!("{who}: netns {} does not exist", a.netns));
        }
        let Some(spec) = self.networks.iter().find(|n| n.name == *a.network).cloned() else {
            return Err(format!("{who}: network {} does not exist", a.network));
        };
        let in_ns: Vec<&Ep> = self
            .endpoints
            .iter()
            .filter(|e| e.netns == a.netns)
            .collect();
        if in_ns.iter().any(|e| e.network == *a.network) {
            return Err(format!(
                "{who}: netns {} is already connected to network {}",
                a.netns, a.network
            ));
        }
        let ifname = match a.ifname {
            Some(i) => {
                if let Some(e) = in_ns.iter().find(|e| e.ifname == i.as_str()) {
                    return Err(format!(
                        "{who}: interface {i} in netns {} is already used by network {}",
                        a.netns, e.network
                    ));
                }
                i.to_string()
            }
            None => (0..)
                .map(|k| format!("eth{k}"))
                .find(|n| !in_ns.iter().any(|e| e.ifname == *n))
                .expect("a free name exists"),
        };
        self.free_ifname(who, a.netns, &ifname)?;
        let host_ifname = host_veth(
            a.network,
            a.netns,
            &IfName::new(&ifname).map_err(|e| format!("{who}: {e}"))?,
        );
        if self.has_iface(HOST, host_ifname.as_str()) {
            return Err(format!(
                "{who}: host interface {host_ifname} already exists (run `nsnet gc`)"
            ));
        }
        if let Some(ip) = a.ips.iter().find(|ip| spec.subnet_of(**ip).is_none()) {
            return Err(format!(
                "{who}: address {ip} is outside the subnets of network {}",
                spec.name
            ));
        }
        // Addresses: the requested ones, then one per remaining subnet around every address
        // the plan asks for later.
        let users: BTreeMap<IpAddr, &str> = self
            .endpoints
            .iter()
            .filter(|e| e.network == *a.network)
            .flat_map(|e| e.ips.iter().map(move |ip| (*ip, e.netns.as_str())))
            .collect();
        let mut ips = Vec::new();
        for s in &spec.subnets {
            let mut mine = a.ips.iter().filter(|ip| s.cidr.contains(*ip));
            let ip = match (mine.next(), mine.next()) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{who}: more than one address requested in subnet {}",
                        s.cidr
                    ));
                }
                (Some(ip), None) => {
                    s.check_host(&spec.name, *ip)
                        .map_err(|e| format!("{who}: {e}"))?;
                    if let Some(user) = users.get(ip) {
                        return Err(format!(
                            "{who}: address {ip} is already used by netns {user} on network {}",
                            spec.name
                        ));
                    }
                    *ip
                }
                (None, _) => {
                    let mut taken: BTreeSet<IpAddr> = users.keys().copied().collect();
                    taken.extend(self.reserved.get(a.network).into_iter().flatten());
                    ipam::allocate(&spec.name, s, &taken).map_err(|e| format!("{who}: {e}"))?
                }
            };
            ips.push(ip);
        }
        let mac = a.mac.or_else(|| {
            ips.iter().find_map(|ip| match ip {
                IpAddr::V4(v4) => Some(Mac::from_ipv4(*v4)),
                IpAddr::V6(_) => None,
            })
        });
        if let Some(m) = a.mac
            && let Some(e) = self
                .endpoints
                .iter()
                .find(|e| e.network == *a.network && e.mac == Some(m))
        {
            return Err(format!(
                "{who}: mac {m} is already used by netns {} on network {}",
                e.netns, spec.name
            ));
        }
        self.check_ports(who, &spec, &ips, a.publish)?;
        self.outcome
            .ifnames
            .insert((a.network.clone(), a.netns.to_string()), ifname.clone());
        let becomes_primary = !spec.internal && self.primary_of(a.netns).is_none();
        self.endpoints.push(Ep {
            network: a.network.clone(),
            netns: a.netns.to_string(),
            ifname: ifname.clone(),
            ips: ips.clone(),
            mac,
            ports: a.publish.to_vec(),
            container: a.container.map(str::to_string),
        });
        self.iface(HOST).interfaces.insert(host_ifname.to_string());
        let live = self.iface(a.netns);
        live.interfaces.insert(ifname.clone());
        for s in &spec.subnets {
            live.routes.push(LiveRoute {
                dest: s.cidr,
                dev: Some(ifname.clone()),
            });
        }
        if becomes_primary {
            self.default_routes(self.endpoints.len() - 1);
        }
        Ok(ips)
    }

    /// An interface name nobody uses in `ns`: no endpoint or link of nsnet, nothing live.
    fn free_ifname(&self, who: &str, ns: &str, ifname: &str) -> Result<(), String> {
        let link = self
            .links
            .iter()
            .flat_map(|(a, b)| [a, b])
            .any(|e| e.netns == ns && e.ifname.as_str() == ifname);
        let endpoint = self
            .endpoints
            .iter()
            .any(|e| e.netns == ns && e.ifname == ifname);
        if link || endpoint {
            return Err(format!(
                "{who}: interface {ifname} in netns {ns} is already used by nsnet"
            ));
        }
        if self.has_iface(ns, ifname) {
            return Err(format!(
                "{who}: interface {ifname} already exists in netns {ns} (made outside nsnet; \
                 remove it or choose another name)"
            ));
        }
        Ok(())
    }

    /// What publishing `ports` on an endpoint with `ips` on `spec` needs.
    fn check_ports(
        &self,
        who: &str,
        spec: &NetworkSpec,
        ips: &[IpAddr],
        ports: &[PortMapping],
    ) -> Result<(), String> {
        if ports.is_empty() {
            return Ok(());
        }
        if spec.internal {
            return Err(format!(
                "{who}: network {} is internal: its endpoints cannot publish ports",
                spec.name
            ));
        }
        let mut seen = BTreeSet::new();
        for m in ports {
            if let Some(IpAddr::V6(ip)) = m.host_ip
                && ip.is_loopback()
            {
                return Err(format!(
                    "{who}: cannot publish {m}: the kernel never routes ::1 to another host"
                ));
            }
            if !ips
                .iter()
                .any(|a| m.host_ip.is_none_or(|h| h.is_ipv4() == a.is_ipv4()))
            {
                return Err(format!(
                    "{who}: cannot publish {m}: no address of that family on network {}",
                    spec.name
                ));
            }
            // Traffic to an address the host does not hold never arrives.
            if let Some(ip) = m.host_ip
                && !ip.is_loopback()
                && !self
                    .live
                    .get(HOST)
                    .is_some_and(|l| l.addrs.iter().any(|(_, a)| *a == ip))
            {
                return Err(format!(
                    "{who}: cannot publish {m}: the host holds no address {ip}; assign it to a \
                     host interface first, or publish on every address"
                ));
            }
            if !seen.insert((m.proto, m.host_port, m.host_ip)) {
                return Err(format!("{who}: host port {m} is given twice"));
            }
            for e in &self.endpoints {
                if let Some(p) = e.ports.iter().find(|p| {
                    p.proto == m.proto
                        && p.host_port == m.host_port
                        && (p.host_ip.is_none() || m.host_ip.is_none() || p.host_ip == m.host_ip)
                }) {
                    return Err(format!(
                        "{who}: host port {}/{} is already published ({p}, netns {} on network {})",
                        m.host_port, m.proto, e.netns, e.network
                    ));
                }
            }
            if self.busy.contains(m) {
                return Err(format!(
                    "{who}: host port {}/{} is already in use on the host (a server listens on it)",
                    m.host_port, m.proto
                ));
            }
        }
        Ok(())
    }

    fn add_ports(&mut self, ns: &str, ports: &[PortMapping]) -> Result<(), String> {
        let who = format!("ports of netns {ns}");
        let i = self
            .primary_of(ns)
            .or_else(|| self.endpoints.iter().position(|e| e.netns == ns))
            .ok_or_else(|| format!("{who}: netns {ns} is not connected to any network"))?;
        let e = self.endpoints[i].clone();
        let spec = self
            .networks
            .iter()
            .find(|n| n.name == e.network)
            .cloned()
            .ok_or_else(|| format!("{who}: network {} does not exist", e.network))?;
        self.check_ports(&who, &spec, &e.ips, ports)?;
        self.endpoints[i].ports.extend_from_slice(ports);
        Ok(())
    }

    fn add_link(&mut self, link: &DesiredLink) -> Result<(), String> {
        let who = format!(
            "link {}:{} <-> {}:{}",
            link.a.netns, link.a.ifname, link.b.netns, link.b.ifname
        );
        for end in [&link.a, &link.b] {
            if end.netns != HOST && !self.namespaces.contains(&end.netns) {
                return Err(format!("{who}: netns {} does not exist", end.netns));
            }
            self.free_ifname(&who, &end.netns, end.ifname.as_str())?;
        }
        for end in [&link.a, &link.b] {
            let live = self.iface(&end.netns);
            live.interfaces.insert(end.ifname.to_string());
            if let Some(addr) = end.addr {
                live.addrs.insert((end.ifname.to_string(), addr.addr()));
                live.routes.push(LiveRoute {
                    dest: addr.trunc(),
                    dev: Some(end.ifname.to_string()),
                });
            }
        }
        self.links.push((link.a.clone(), link.b.clone()));
        Ok(())
    }

    fn drop_link(&mut self, key: &str) {
        let Some(i) = self.links.iter().position(|(a, _)| link_key(a) == key) else {
            return;
        };
        let (a, b) = self.links.remove(i);
        self.drop_iface(&a.netns, a.ifname.as_str());
        self.drop_iface(&b.netns, b.ifname.as_str());
    }

    fn add_route(&mut self, r: &RouteDef) -> Result<(), String> {
        let who = format!("route {} via {} in netns {}", r.dest, r.via, r.netns);
        if !self.namespaces.contains(&r.netns) {
            return Err(format!("{who}: netns {} does not exist", r.netns));
        }
        if self.routes.contains(&(r.netns.clone(), r.dest)) {
            return Err(format!(
                "{who}: nsnet already has a route to {} there",
                r.dest
            ));
        }
        // IPv4 only: the kernel refuses a second IPv4 route to the same destination, while
        // IPv6 routes of different metrics may coexist.
        if r.dest.addr().is_ipv4()
            && self
                .live
                .get(&r.netns)
                .is_some_and(|l| l.routes.iter().any(|k| k.dest == r.dest))
        {
            return Err(format!(
                "{who}: a route to {} already exists there (remove it first)",
                r.dest
            ));
        }
        self.routes.insert((r.netns.clone(), r.dest));
        self.iface(&r.netns).routes.push(LiveRoute {
            dest: r.dest,
            dev: None,
        });
        Ok(())
    }

    fn drop_route(&mut self, r: &RouteDef) {
        self.routes.remove(&(r.netns.clone(), r.dest));
        if let Some(l) = self.live.get_mut(&r.netns)
            && let Some(i) = l.routes.iter().position(|k| k.dest == r.dest)
        {
            l.routes.remove(i);
        }
    }

    fn run_container(&mut self, c: &DesiredContainer) -> Result<(), String> {
        let name = c.name.as_str();
        let who = format!("container {name}");
        if self.containers.contains(name) {
            return Err(format!("{who}: it already exists"));
        }
        if self.namespaces.contains(name) {
            return Err(format!(
                "{who}: netns {name} already exists: a container's network namespace takes its \
                 name; rename the container"
            ));
        }
        for (n, _) in &c.networks {
            if !self.networks.iter().any(|s| s.name == *n) {
                return Err(format!("{who}: network {n} does not exist"));
            }
        }
        self.containers.insert(name.to_string());
        self.namespaces.insert(name.to_string());
        self.iface(name).interfaces.insert("lo".into());
        for (i, (n, ip)) in c.networks.iter().enumerate() {
            let ips: Vec<IpAddr> = ip.iter().copied().collect();
            let got = self.connect(&Attach {
                who: &format!("{who} on network {n}"),
                network: n,
                netns: name,
                ips: &ips,
                mac: None,
                ifname: None,
                publish: if i == 0 { &c.publish } else { &[] },
                container: Some(name),
            })?;
            self.outcome
                .addresses
                .insert((n.clone(), name.to_string()), got);
        }
        Ok(())
    }

    fn drop_container(&mut self, name: &str) {
        self.drop_netns(name);
        self.containers.remove(name);
    }
}
