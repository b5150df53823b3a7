//! Networks, namespaces, links, routes and containers in the model.

use std::net::IpAddr;

use crate::model::{NetworkSpec, overlaps};
use crate::names::{HOST, NetName};
use crate::topology::{DesiredContainer, DesiredLink, LiveRoute, RouteDef, link_key};

use super::{Attach, World};

impl World<'_> {
    pub(super) fn create_network(&mut self, spec: &NetworkSpec) -> Result<(), String> {
        let who = format!("network {}", spec.name());
        if self.networks.iter().any(|n| n.name() == spec.name()) {
            return Err(format!("{who}: it already exists"));
        }
        for other in &self.networks {
            if other.bridge() == spec.bridge() {
                return Err(format!(
                    "{who}: bridge {} is already used by network {}",
                    spec.bridge(),
                    other.name()
                ));
            }
            if let Some((s, o)) = spec.overlap(other) {
                return Err(format!(
                    "{who}: subnet {} overlaps subnet {} of network {}",
                    s.cidr,
                    o.cidr,
                    other.name()
                ));
            }
        }
        let host = self.iface(HOST);
        for s in spec.subnets() {
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
        if host.interfaces.contains(spec.bridge().as_str()) {
            return Err(format!(
                "{who}: bridge {} already exists on the host (choose another `bridge`)",
                spec.bridge()
            ));
        }
        host.interfaces.insert(spec.bridge().to_string());
        for s in spec.subnets() {
            host.addrs.insert((spec.bridge().to_string(), s.gateway));
            host.routes.push(LiveRoute {
                dest: s.cidr,
                dev: Some(spec.bridge().to_string()),
            });
        }
        self.networks.push(spec.clone());
        Ok(())
    }

    pub(super) fn drop_network(&mut self, name: &NetName) {
        let on: Vec<String> = self
            .endpoints
            .iter()
            .filter(|e| e.network == *name)
            .map(|e| e.netns.clone())
            .collect();
        for ns in on {
            self.drop_endpoint(name, &ns);
        }
        if let Some(i) = self.networks.iter().position(|n| *n.name() == *name) {
            let spec = self.networks.remove(i);
            self.drop_iface(HOST, spec.bridge().as_str());
        }
    }

    pub(super) fn drop_netns(&mut self, ns: &str) {
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

    pub(super) fn add_link(&mut self, link: &DesiredLink) -> Result<(), String> {
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

    pub(super) fn drop_link(&mut self, key: &str) {
        let Some(i) = self.links.iter().position(|(a, _)| link_key(a) == key) else {
            return;
        };
        let (a, b) = self.links.remove(i);
        self.drop_iface(&a.netns, a.ifname.as_str());
        self.drop_iface(&b.netns, b.ifname.as_str());
    }

    pub(super) fn add_route(&mut self, r: &RouteDef) -> Result<(), String> {
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

    pub(super) fn drop_route(&mut self, r: &RouteDef) {
        self.routes.remove(&(r.netns.clone(), r.dest));
        if let Some(l) = self.live.get_mut(&r.netns)
            && let Some(i) = l.routes.iter().position(|k| k.dest == r.dest)
        {
            l.routes.remove(i);
        }
    }

    pub(super) fn run_container(&mut self, c: &DesiredContainer) -> Result<(), String> {
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
            if !self.networks.iter().any(|s| *s.name() == *n) {
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

    pub(super) fn drop_container(&mut self, name: &str) {
        self.drop_netns(name);
        self.containers.remove(name);
    }
}
