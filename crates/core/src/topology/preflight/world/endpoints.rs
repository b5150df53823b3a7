//! Endpoints in the model: interface names, addresses, MACs and published ports, checked
//! as `connect` and `port add` check them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ipam;
use crate::model::{Mac, NetworkSpec};
use crate::names::{HOST, IfName, NetName, host_veth};
use crate::port::PortMapping;
use crate::topology::LiveRoute;

use super::{Attach, Ep, World};

impl World<'_> {
    pub(super) fn primary_of(&self, ns: &str) -> Option<usize> {
        self.endpoints.iter().position(|e| {
            e.netns == ns
                && self
                    .networks
                    .iter()
                    .any(|n| *n.name() == e.network && !n.internal())
        })
    }

    /// Default routes of a namespace's primary endpoint (what `connect` installs).
    pub(super) fn default_routes(&mut self, i: usize) {
        let e = self.endpoints[i].clone();
        let Some(spec) = self.networks.iter().find(|n| *n.name() == e.network) else {
            return;
        };
        let dests: Vec<IpNet> = spec
            .subnets()
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

    pub(super) fn drop_endpoint(&mut self, network: &NetName, ns: &str) {
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
    pub(super) fn connect(&mut self, a: &Attach<'_>) -> Result<Vec<IpAddr>, String> {
        let who = a.who;
        if !self.namespaces.contains(a.netns) {
            return Err(format!("{who}: netns {} does not exist", a.netns));
        }
        let Some(spec) = self
            .networks
            .iter()
            .find(|n| *n.name() == *a.network)
            .cloned()
        else {
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
                spec.name()
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
        for s in spec.subnets() {
            let mut mine = a.ips.iter().filter(|ip| s.cidr.contains(*ip));
            let ip = match (mine.next(), mine.next()) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{who}: more than one address requested in subnet {}",
                        s.cidr
                    ));
                }
                (Some(ip), None) => {
                    s.check_host(spec.name(), *ip)
                        .map_err(|e| format!("{who}: {e}"))?;
                    if let Some(user) = users.get(ip) {
                        return Err(format!(
                            "{who}: address {ip} is already used by netns {user} on network {}",
                            spec.name()
                        ));
                    }
                    *ip
                }
                (None, _) => {
                    let mut taken: BTreeSet<IpAddr> = users.keys().copied().collect();
                    taken.extend(self.reserved.get(a.network).into_iter().flatten());
                    ipam::lowest_free(spec.name(), s, &taken).map_err(|e| format!("{who}: {e}"))?
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
                e.netns,
                spec.name()
            ));
        }
        self.check_ports(who, &spec, &ips, a.publish)?;
        self.outcome
            .ifnames
            .insert((a.network.clone(), a.netns.to_string()), ifname.clone());
        let becomes_primary = !spec.internal() && self.primary_of(a.netns).is_none();
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
        for s in spec.subnets() {
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
    pub(super) fn free_ifname(&self, who: &str, ns: &str, ifname: &str) -> Result<(), String> {
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
    pub(super) fn check_ports(
        &self,
        who: &str,
        spec: &NetworkSpec,
        ips: &[IpAddr],
        ports: &[PortMapping],
    ) -> Result<(), String> {
        if ports.is_empty() {
            return Ok(());
        }
        if spec.internal() {
            return Err(format!(
                "{who}: network {} is internal: its endpoints cannot publish ports",
                spec.name()
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
                    spec.name()
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

    pub(super) fn add_ports(&mut self, ns: &str, ports: &[PortMapping]) -> Result<(), String> {
        let who = format!("ports of netns {ns}");
        let i = self
            .primary_of(ns)
            .or_else(|| self.endpoints.iter().position(|e| e.netns == ns))
            .ok_or_else(|| format!("{who}: netns {ns} is not connected to any network"))?;
        let e = self.endpoints[i].clone();
        let spec = self
            .networks
            .iter()
            .find(|n| *n.name() == e.network)
            .cloned()
            .ok_or_else(|| format!("{who}: network {} does not exist", e.network))?;
        self.check_ports(&who, &spec, &e.ips, ports)?;
        self.endpoints[i].ports.extend_from_slice(ports);
        Ok(())
    }
}
