//! Topology files: observe what exists (store, checked against the kernel for drift), diff it
//! with what the file asks for (pure, in core), and apply the changes through the same
//! operations the CLI uses, recording which objects the topology created.

use std::collections::{BTreeMap, BTreeSet};

use nsnet_core::names::{IfName, NsName};
use nsnet_core::ops::NsRef;
use nsnet_core::port::PortSpec;
use nsnet_core::shaping::Shaping;
use nsnet_core::topology::{
    Change, Desired, Kind, LinkEndDef, Observed, ObservedContainer, ObservedEndpoint, ObservedLink,
    ObservedNetwork, ObservedRoute, RouteDef, diff,
};
use nsnet_sys::kernel::{Kernel, NsView};

use crate::network::ns_ref;
use crate::{ConnectRequest, Engine, EngineError, LinkRequest, NetworkRequest};

fn single(m: &nsnet_core::port::PortMapping) -> PortSpec {
    PortSpec {
        host_ip: m.host_ip,
        host_port: m.host_port,
        container_port: m.container_port,
        count: 1,
        proto: m.proto,
    }
}

fn has_iface(view: Option<&NsView>, ifname: &str) -> bool {
    view.is_some_and(|v| v.interfaces.iter().any(|i| i.name == ifname))
}

fn shaping_in(view: Option<&NsView>, ifname: &str) -> Shaping {
    view.and_then(|v| v.interfaces.iter().find(|i| i.name == ifname))
        .and_then(|i| i.shaping)
        .unwrap_or_default()
}

/// Ignores "not found": the object is already gone, which is what was wanted.
fn gone_ok(r: Result<(), EngineError>) -> Result<(), EngineError> {
    match r {
        Err(EngineError::NotFound { .. }) => Ok(()),
        Err(EngineError::Context { cause, .. })
            if matches!(*cause, EngineError::NotFound { .. }) =>
        {
            Ok(())
        }
        other => other,
    }
}

impl<K: Kernel> Engine<K> {
    /// Live views of the namespaces in `names` that exist (and of the host).
    fn views(&mut self, names: &BTreeSet<String>) -> Result<BTreeMap<String, NsView>, EngineError> {
        let mut out = BTreeMap::new();
        out.insert("host".to_string(), self.kernel.view(&NsRef::Host)?);
        for n in names {
            let ns = ns_ref(n);
            if self.kernel.netns_exists(&ns)
                && let Ok(v) = self.kernel.view(&ns)
            {
                out.insert(n.clone(), v);
            }
        }
        Ok(out)
    }

    /// What exists for topology `name`: nsnet's objects, their drift, and what it owns.
    pub fn topology_observe(&mut self, name: &str) -> Result<Observed, EngineError> {
        let (networks, endpoints, links, owned) = self.store.read(|tx| {
            Ok::<_, EngineError>((
                tx.networks()?,
                tx.endpoints()?,
                tx.links()?,
                tx.owned(name)?,
            ))
        })?;
        let mut routes = Vec::new();
        let mut spaces: BTreeSet<String> = self.kernel.list_netns()?.into_iter().collect();
        let existing = spaces.clone();
        for e in &endpoints {
            spaces.insert(e.netns.clone());
        }
        for l in &links {
            spaces.insert(l.a.netns.clone());
            spaces.insert(l.b.netns.clone());
        }
        let mut route_rows = Vec::new();
        for ns in &spaces {
            route_rows.extend(self.store.read(|tx| tx.routes_in_netns(ns))?);
        }
        let views = self.views(&spaces)?;
        let host = views.get("host");
        let mut obs = Observed {
            namespaces: existing,
            owned: owned.into_iter().collect(),
            ..Observed::default()
        };
        for n in networks {
            let drift = (!has_iface(host, n.spec.bridge.as_str()))
                .then(|| format!("bridge {} is missing", n.spec.bridge));
            obs.networks.push(ObservedNetwork {
                spec: n.spec,
                drift,
            });
        }
        for e in endpoints {
            let ports = self.store.read(|tx| tx.ports(Some(e.id)))?;
            let view = views.get(&e.netns);
            let drift = if view.is_none() {
                Some(format!("netns {} is gone", e.netns))
            } else if !has_iface(host, e.host_ifname.as_str()) {
                Some(format!("host veth {} is missing", e.host_ifname))
            } else if !has_iface(view, e.ifname.as_str()) {
                Some(format!("{} is missing in netns {}", e.ifname, e.netns))
            } else {
                None
            };
            obs.endpoints.push(ObservedEndpoint {
                network: e.network.clone(),
                netns: e.netns.clone(),
                ifname: e.ifname.clone(),
                ips: e.ips().collect(),
                mac: e.mac,
                ports: ports.into_iter().map(|p| p.mapping).collect(),
                drift,
            });
        }
        for l in links {
            let end = |r: &nsnet_store::LinkEndRow| LinkEndDef {
                netns: r.netns.clone(),
                ifname: r.ifname.clone(),
                addr: r.addr,
                shaping: shaping_in(views.get(&r.netns), r.ifname.as_str()),
            };
            let (a, b) = (end(&l.a), end(&l.b));
            let drift = [&a, &b].into_iter().find_map(|x| {
                (!has_iface(views.get(&x.netns), x.ifname.as_str()))
                    .then(|| format!("{} is missing in netns {}", x.ifname, x.netns))
            });
            obs.links.push(ObservedLink { a, b, drift });
        }
        for r in route_rows {
            let present = views.get(&r.netns).is_some_and(|v| {
                v.routes
                    .iter()
                    .any(|k| k.dest == r.dest && k.via == Some(r.via))
            });
            routes.push(ObservedRoute {
                route: RouteDef {
                    netns: r.netns,
                    dest: r.dest,
                    via: r.via,
                },
                present,
            });
        }
        obs.routes = routes;
        for c in self.container_ls(true)? {
            let env = self.container_exec_target(&c.name).ok().map(|t| t.env);
            let networks = c
                .networks
                .iter()
                .filter_map(|n| {
                    let name = nsnet_core::names::NetName::new(&n.network).ok()?;
                    Some((name, n.addrs.iter().map(|a| a.addr()).collect()))
                })
                .collect();
            obs.containers.push(ObservedContainer {
                running: c.state == "running",
                command: c.command,
                hostname: c.hostname,
                env,
                rootfs: c.rootfs,
                networks,
                ports: c.ports,
                name: c.name,
            });
        }
        Ok(obs)
    }

    /// The changes `apply` would make (nothing is changed).
    pub fn topology_plan(&mut self, desired: &Desired) -> Result<Vec<Change>, EngineError> {
        let observed = self.topology_observe(&desired.name)?;
        Ok(diff(desired, &observed))
    }

    /// Converges to `desired`; `progress(i, n, change)` is called before each change. Stops at
    /// the first failure (applying again continues from there).
    pub fn topology_apply(
        &mut self,
        desired: &Desired,
        mut progress: impl FnMut(usize, usize, &Change),
    ) -> Result<Vec<Change>, EngineError> {
        let changes = self.topology_plan(desired)?;
        for (i, c) in changes.iter().enumerate() {
            progress(i + 1, changes.len(), c);
            self.apply_change(c).map_err(|e| e.during(c.to_string()))?;
            let (own, disown) = c.ownership();
            self.store.write(|tx| {
                if let Some(o) = &own {
                    tx.own(&desired.name, o)?;
                }
                if let Some(o) = &disown {
                    tx.disown(&desired.name, o)?;
                }
                Ok::<_, EngineError>(())
            })?;
        }
        self.prune_owned(&desired.name)?;
        Ok(changes)
    }

    /// Forgets owned objects that no longer exist: endpoints go with their network or
    /// namespace, links and routes with their namespace, without a change of their own.
    fn prune_owned(&mut self, name: &str) -> Result<(), EngineError> {
        let spaces: BTreeSet<String> = self.kernel.list_netns()?.into_iter().collect();
        let containers: BTreeSet<String> = self
            .container_ls(true)?
            .into_iter()
            .map(|c| c.name)
            .collect();
        self.store.write(|tx| {
            let networks: BTreeSet<String> = tx
                .networks()?
                .into_iter()
                .map(|n| n.spec.name.to_string())
                .collect();
            let endpoints: BTreeSet<String> = tx
                .endpoints()?
                .into_iter()
                .map(|e| nsnet_core::topology::endpoint_key(e.network.as_str(), &e.netns))
                .collect();
            let links: BTreeSet<String> = tx
                .links()?
                .into_iter()
                .map(|l| format!("{}:{}", l.a.netns, l.a.ifname))
                .collect();
            for o in tx.owned(name)? {
                let exists = match o.kind {
                    Kind::Netns => spaces.contains(&o.key),
                    Kind::Network => networks.contains(&o.key),
                    Kind::Endpoint => endpoints.contains(&o.key),
                    Kind::Link => links.contains(&o.key),
                    Kind::Container => containers.contains(&o.key),
                    Kind::Route => {
                        let (ns, dest) = o.key.split_once(' ').unwrap_or((&o.key, ""));
                        tx.routes_in_netns(ns)?
                            .iter()
                            .any(|r| r.dest.to_string() == dest)
                    }
                };
                if !exists {
                    tx.disown(name, &o)?;
                }
            }
            Ok::<_, EngineError>(())
        })
    }

    /// Removes everything topology `name` created, and nothing else.
    pub fn topology_destroy(
        &mut self,
        name: &str,
        progress: impl FnMut(usize, usize, &Change),
    ) -> Result<Vec<Change>, EngineError> {
        self.topology_apply(&Desired::empty(name), progress)
    }

    fn apply_change(&mut self, c: &Change) -> Result<(), EngineError> {
        match c {
            Change::CreateNetns(n) => self.netns_add(&NsName::new(n)?),
            Change::RemoveNetns(n) => gone_ok(self.netns_rm(&NsName::existing(n)?)),
            Change::CreateNetwork(spec) => self
                .network_create(NetworkRequest { spec: spec.clone() })
                .map(drop),
            Change::ReplaceNetwork { spec, .. } => {
                gone_ok(self.network_rm(&spec.name, true))?;
                self.network_create(NetworkRequest { spec: spec.clone() })
                    .map(drop)
            }
            Change::RemoveNetwork(n) => gone_ok(self.network_rm(n, true)),
            Change::Connect {
                endpoint: e,
                reason,
            } => {
                let ns = NsRef::Named(e.netns.to_string());
                if reason.is_some() {
                    gone_ok(self.disconnect(&e.network, &ns))?;
                }
                self.connect(ConnectRequest {
                    network: e.network.clone(),
                    netns: ns,
                    ips: e.ips.clone(),
                    mac: e.mac,
                    ifname: e.ifname.clone(),
                    container_id: None,
                    publish: e.publish.iter().map(single).collect(),
                })
                .map(drop)
            }
            Change::Disconnect { network, netns } => {
                gone_ok(self.disconnect(network, &ns_ref(netns)))
            }
            Change::AddPorts { netns, ports, .. } => self
                .port_add(
                    &ns_ref(netns),
                    &ports.iter().map(single).collect::<Vec<_>>(),
                )
                .map(drop),
            Change::RemovePorts { netns, ports, .. } => gone_ok(self.port_rm(
                &ns_ref(netns),
                &ports.iter().map(single).collect::<Vec<_>>(),
            )),
            Change::AddLink { link, reason } => {
                let (a, b) = (ns_ref(&link.a.netns), ns_ref(&link.b.netns));
                if reason.is_some() {
                    gone_ok(self.link_rm(&a, &b, Some(&link.a.ifname)))?;
                }
                self.link_add(LinkRequest {
                    a: a.clone(),
                    b: b.clone(),
                    ifname_a: Some(link.a.ifname.clone()),
                    ifname_b: Some(link.b.ifname.clone()),
                    addr_a: link.a.addr,
                    addr_b: link.b.addr,
                    mtu: link.mtu,
                })?;
                for (ns, end) in [(&a, &link.a), (&b, &link.b)] {
                    if !end.shaping.is_empty() {
                        self.link_shape(ns, &end.ifname, end.shaping)?;
                    }
                }
                Ok(())
            }
            Change::RemoveLink { a, b } => {
                gone_ok(self.link_rm(&ns_ref(&a.netns), &ns_ref(&b.netns), Some(&a.ifname)))
            }
            Change::Shape {
                netns, ifname, to, ..
            } => self.link_shape(&ns_ref(netns), &IfName::new(ifname)?, *to),
            Change::AddRoute { route, reason } => {
                let ns = ns_ref(&route.netns);
                if reason.is_some() {
                    gone_ok(self.route_rm(&ns, route.dest))?;
                }
                self.route_add(&ns, route.dest, route.via).map(drop)
            }
            Change::RemoveRoute(r) => gone_ok(self.route_rm(&ns_ref(&r.netns), r.dest)),
            Change::RunContainer {
                container: c,
                reason,
            } => {
                if reason.is_some() {
                    gone_ok(self.container_rm(c.name.as_str(), true))?;
                }
                self.container_run(crate::RunRequest {
                    name: c.name.clone(),
                    hostname: c.hostname.clone(),
                    networks: c
                        .networks
                        .iter()
                        .map(|(network, ip)| nsnet_core::container::NetworkArg {
                            network: network.clone(),
                            ip: *ip,
                        })
                        .collect(),
                    publish: c.publish.iter().map(single).collect(),
                    env: c.env.clone(),
                    rootfs: c.rootfs.as_ref().map(std::path::PathBuf::from),
                    detach: true,
                    command: c.command.clone(),
                })
                .map(drop)
            }
            Change::RemoveContainer(n) => gone_ok(self.container_rm(n, true)),
        }
    }
}
