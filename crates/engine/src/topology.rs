//! Topology files: observe what exists (store, checked against the kernel for drift), diff it
//! with what the file asks for and check the plan against everything that exists (pure, in
//! core), and apply the changes through the same operations the CLI uses, recording which
//! objects the topology created. An apply is all or nothing: a conflict found by the check
//! changes nothing, and a step that fails anyway rolls the machine back to where it was.

use std::collections::{BTreeMap, BTreeSet};

use nsnet_core::names::{IfName, NsName};
use nsnet_core::ops::NsRef;
use nsnet_core::port::{PortMapping, PortSpec};
use nsnet_core::shaping::Shaping;
use nsnet_core::topology::{
    Change, Desired, DesiredContainer, DesiredEndpoint, Kind, LinkEndDef, LiveNs, LiveRoute,
    Observed, ObservedContainer, ObservedEndpoint, ObservedLink, ObservedNetwork, ObservedRoute,
    Owned, Prepared, RouteDef, diff, ports_added, preflight, undo,
};
use nsnet_sys::kernel::{Kernel, NsView};

use crate::network::ns_ref;
use crate::{ConnectRequest, Engine, EngineError, LinkRequest, NetworkRequest};

/// Addresses the check allocated, per (network, namespace).
type Addresses = BTreeMap<(nsnet_core::names::NetName, String), Vec<std::net::IpAddr>>;

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
    /// Live views of the namespaces in `names` that exist (and of the host). With `light`,
    /// the views of namespaces outside `full` hold their interfaces' names alone.
    fn views(
        &mut self,
        names: &BTreeSet<String>,
        light: bool,
        full: &BTreeSet<String>,
    ) -> Result<BTreeMap<String, NsView>, EngineError> {
        let mut out = BTreeMap::new();
        out.insert("host".to_string(), self.kernel.view(&NsRef::Host)?);
        let (named, only): (Vec<&String>, Vec<&String>) = names
            .iter()
            .filter(|n| self.kernel.netns_exists(&ns_ref(n)))
            .partition(|n| !light || full.contains(*n));
        let list: Vec<NsRef> = named.iter().map(|n| ns_ref(n)).collect();
        for (n, v) in named.into_iter().zip(self.kernel.views(&list)) {
            if let Ok(v) = v {
                out.insert(n.clone(), v);
            }
        }
        let list: Vec<NsRef> = only.iter().map(|n| ns_ref(n)).collect();
        for (n, v) in only.into_iter().zip(self.kernel.interface_names(&list)) {
            if let Ok(names) = v {
                out.insert(n.clone(), names_only(names));
            }
        }
        Ok(out)
    }

    /// What exists for topology `name`: nsnet's objects, their drift, and what it owns.
    pub fn topology_observe(&mut self, name: &str) -> Result<Observed, EngineError> {
        self.observe(name, false)
    }

    /// `topology_observe`; with `light`, the namespaces that hold neither a link end nor a
    /// route of nsnet's are seen by their interfaces' names alone: enough for `diff` (their
    /// drift is a missing interface), not for `preflight`'s checks of what a change adds.
    fn observe(&mut self, name: &str, light: bool) -> Result<Observed, EngineError> {
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
        // One read for all: a transaction per namespace costs more than the query.
        let (route_rows, mut ports_of) = self.store.read(|tx| {
            let mut rows: Vec<_> = tx
                .routes()?
                .into_iter()
                .filter(|r| spaces.contains(&r.netns))
                .collect();
            // Grouped by namespace, in the namespaces' order, as one query per namespace gave.
            rows.sort_by(|a, b| a.netns.cmp(&b.netns));
            // All ports in one query, each endpoint's in the order `ports(Some(id))` gives.
            let mut by_endpoint: BTreeMap<i64, Vec<nsnet_store::PortRow>> = BTreeMap::new();
            for p in tx.ports(None)? {
                by_endpoint.entry(p.endpoint).or_default().push(p);
            }
            let ports: Vec<_> = endpoints
                .iter()
                .map(|e| by_endpoint.remove(&e.id).unwrap_or_default())
                .collect();
            Ok::<_, EngineError>((rows, ports))
        })?;
        let full: BTreeSet<String> = links
            .iter()
            .flat_map(|l| [l.a.netns.clone(), l.b.netns.clone()])
            .chain(route_rows.iter().map(|r| r.netns.clone()))
            .collect();
        let views = self.views(&spaces, light, &full)?;
        let host = views.get("host");
        let mut obs = Observed {
            namespaces: existing,
            owned: owned.into_iter().collect(),
            live: views
                .iter()
                .map(|(ns, v)| {
                    let live = LiveNs {
                        interfaces: v.interfaces.iter().map(|i| i.name.clone()).collect(),
                        addrs: v
                            .interfaces
                            .iter()
                            .flat_map(|i| i.addrs.iter().map(|a| (i.name.clone(), a.addr())))
                            .collect(),
                        routes: v
                            .routes
                            .iter()
                            .map(|r| LiveRoute {
                                dest: r.dest,
                                dev: r.dev.clone(),
                            })
                            .collect(),
                    };
                    (ns.clone(), live)
                })
                .collect(),
            ..Observed::default()
        };
        for n in networks {
            let drift = if !has_iface(host, n.spec.bridge().as_str()) {
                Some(format!("bridge {} is missing", n.spec.bridge()))
            } else {
                n.spec
                    .overlay_dev()
                    .filter(|dev| !has_iface(host, dev))
                    .map(|dev| format!("vxlan device {dev} is missing"))
            };
            obs.networks.push(ObservedNetwork {
                spec: n.spec,
                drift,
            });
        }
        for (e, ports) in endpoints.into_iter().zip(ports_of.drain(..)) {
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
                container: e.container_id.clone(),
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
            let mtu = views
                .get(&a.netns)
                .and_then(|v| v.interfaces.iter().find(|i| i.name == a.ifname.as_str()))
                .and_then(|i| i.mtu);
            obs.links.push(ObservedLink { a, b, mtu, drift });
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
        let envs: BTreeMap<String, Vec<String>> = self
            .store
            .read(|tx| tx.containers())?
            .into_iter()
            .map(|r| (r.name, r.env))
            .collect();
        for c in self.container_ls(true)? {
            let env = envs.get(&c.name).cloned();
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

    /// The changes `apply` would make, in its order (nothing is changed); a conflict with
    /// what exists is an error, as it would be for `apply`.
    pub fn topology_plan(&mut self, desired: &Desired) -> Result<Vec<Change>, EngineError> {
        if self.converged(desired)? {
            return Ok(Vec::new());
        }
        let observed = self.topology_observe(&desired.name)?;
        Ok(self.prepare(desired, &observed)?.changes)
    }

    /// Whether the machine matches `desired` already, from a light look (see `observe`):
    /// what the common case of `plan` and `apply` of an unchanged file needs. When it finds
    /// something to change, the caller looks again in full before deciding what.
    fn converged(&mut self, desired: &Desired) -> Result<bool, EngineError> {
        let light = self.observe(&desired.name, true)?;
        Ok(matches!(self.prepare(desired, &light), Ok(p) if p.changes.is_empty()))
    }

    /// Diffs, then checks the plan against the store and the kernel before any change: the
    /// pure check in core, fed with what only the kernel can answer (listeners on the host
    /// ports the plan publishes, the commands of the containers it runs).
    fn prepare(&mut self, desired: &Desired, observed: &Observed) -> Result<Prepared, EngineError> {
        let changes = diff(desired, observed);
        let busy: BTreeSet<PortMapping> = ports_added(&changes)
            .into_iter()
            .filter(|m| self.kernel.port_busy(m))
            .collect();
        for c in &changes {
            if let Change::RunContainer { container: c, .. } = c {
                self.check_command(c)
                    .map_err(|e| EngineError::Refused(format!("container {}: {e}", c.name)))?;
            }
        }
        preflight(desired, observed, changes, &busy).map_err(EngineError::Refused)
    }

    /// What `run` checks before it changes anything: the hostname and the command.
    fn check_command(&mut self, c: &DesiredContainer) -> Result<(), EngineError> {
        let hostname = c.hostname.as_deref().unwrap_or(c.name.as_str());
        nsnet_core::container::check_hostname(hostname)?;
        let env = nsnet_core::container::environment(hostname, &c.env);
        let root = c.rootfs.as_deref().unwrap_or("/");
        let program = c.command.first().map(String::as_str).unwrap_or_default();
        self.kernel
            .resolve(
                std::path::Path::new(root),
                program,
                nsnet_core::container::path_of(&env),
            )
            .map_err(|e| EngineError::Refused(e.to_string()))?;
        Ok(())
    }

    /// Converges to `desired`; `progress(i, n, change)` is called before each change. All or
    /// nothing: nothing changes when the plan conflicts with what exists, and when a change
    /// fails anyway (the kernel refused it), the changes made before it are undone and what
    /// it removed is made again, back to the state before the apply.
    pub fn topology_apply(
        &mut self,
        desired: &Desired,
        progress: impl FnMut(usize, usize, &Change),
    ) -> Result<Vec<Change>, EngineError> {
        // Hundreds of operations in one process: checkpoint the store's WAL once, at the end.
        self.store.set_batching(true)?;
        let out = self.apply_topology(desired, progress);
        let restored = self.store.set_batching(false);
        let changes = out?;
        restored?;
        Ok(changes)
    }

    fn apply_topology(
        &mut self,
        desired: &Desired,
        mut progress: impl FnMut(usize, usize, &Change),
    ) -> Result<Vec<Change>, EngineError> {
        if self.converged(desired)? {
            self.prune_owned(&desired.name)?;
            return Ok(Vec::new());
        }
        let before = self.topology_observe(&desired.name)?;
        let prepared = self.prepare(desired, &before).map_err(|e| match e {
            EngineError::Refused(m) => EngineError::Refused(format!("{m} (nothing was changed)")),
            other => other,
        })?;
        let changes = &prepared.changes;
        let n = changes.len();
        // Ownership in two transactions instead of one per change: what the apply makes is
        // owned before it is made, what it removes is disowned once it is gone. A process
        // killed in between leaves the topology owning something missing (made by the next
        // `apply`, or forgotten by its prune, as one removed by hand is), never something it
        // made and does not own (which `destroy` would leave behind). A failed apply's
        // rollback puts the records back as they were.
        let owns: Vec<Owned> = changes.iter().filter_map(|c| c.ownership().0).collect();
        let disowns: Vec<Owned> = changes
            .iter()
            .filter_map(|c| c.ownership().1)
            .filter(|o| !owns.contains(o))
            .collect();
        self.store.write(|tx| {
            for o in &owns {
                tx.own(&desired.name, o)?;
            }
            Ok::<_, EngineError>(())
        })?;
        let mut i = 0;
        while i < n {
            // A run of namespaces to make, or to remove, is handled at once.
            let removals = changes[i..]
                .iter()
                .take_while(|c| matches!(c, Change::RemoveNetns(_)))
                .count();
            let run = changes[i..]
                .iter()
                .take_while(|c| matches!(c, Change::CreateNetns(_)))
                .count();
            let connects = changes[i..]
                .iter()
                .take_while(|c| matches!(c, Change::Connect { reason: None, .. }))
                .count();
            let done = if connects >= 2 {
                for (k, c) in changes[i..i + connects].iter().enumerate() {
                    progress(i + k + 1, n, c);
                }
                let reqs: Vec<ConnectRequest> = changes[i..i + connects]
                    .iter()
                    .filter_map(|c| match c {
                        Change::Connect { endpoint, .. } => {
                            Some(connect_request(endpoint, &prepared.addresses))
                        }
                        _ => None,
                    })
                    .collect();
                let done = self.connect_at_once(&reqs).map_err(|b| (i + b.0, b.1));
                i += connects;
                done
            } else if removals >= 2 {
                for (k, c) in changes[i..i + removals].iter().enumerate() {
                    progress(i + k + 1, n, c);
                }
                let names: Vec<String> = changes[i..i + removals]
                    .iter()
                    .filter_map(|c| match c {
                        Change::RemoveNetns(name) => Some(name.clone()),
                        _ => None,
                    })
                    .collect();
                let done = self
                    .remove_netns_at_once(&names)
                    .map_err(|b| (i + b.0, b.1));
                i += removals;
                done
            } else if run >= 2 {
                for (k, c) in changes[i..i + run].iter().enumerate() {
                    progress(i + k + 1, n, c);
                }
                let names: Vec<String> = changes[i..i + run]
                    .iter()
                    .filter_map(|c| match c {
                        Change::CreateNetns(name) => Some(name.clone()),
                        _ => None,
                    })
                    .collect();
                let done = self
                    .create_netns_at_once(&names)
                    .map_err(|b| (i + b.0, b.1));
                i += run;
                done
            } else {
                progress(i + 1, n, &changes[i]);
                let done = self
                    .apply_change(&changes[i], &prepared.addresses)
                    .map_err(|e| (i, e));
                i += 1;
                done
            };
            if let Err((i, err)) = done {
                let c = &changes[i];
                let what = match self.topology_rollback(&desired.name, &before, c) {
                    Ok(()) => format!("{c} (change {} of {n}; the apply was rolled back)", i + 1),
                    Err(undo) => format!(
                        "{c} (change {} of {n}; rolling the apply back failed too: {undo})",
                        i + 1
                    ),
                };
                return Err(err.during(what));
            }
        }
        self.store.write(|tx| {
            for o in &disowns {
                tx.disown(&desired.name, o)?;
            }
            Ok::<_, EngineError>(())
        })?;
        self.prune_owned(&desired.name)?;
        Ok(prepared.changes)
    }

    /// Makes the namespaces `names` (none exists: the plan says so) at once. On failure: the
    /// index in `names` of the first that failed (those made are undone by the caller's
    /// rollback, which removes what the topology owns).
    fn create_netns_at_once(&mut self, names: &[String]) -> Result<(), Box<(usize, EngineError)>> {
        for (k, n) in names.iter().enumerate() {
            NsName::new(n).map_err(|e| Box::new((k, e.into())))?;
            if self.kernel.netns_exists(&ns_ref(n)) {
                let err = EngineError::Exists {
                    kind: "netns",
                    name: n.clone(),
                };
                return Err(Box::new((k, err)));
            }
        }
        let results = self.kernel.create_netns_many(names);
        match results
            .into_iter()
            .enumerate()
            .find_map(|(k, r)| r.err().map(|e| (k, e)))
        {
            Some((k, err)) => Err(Box::new((k, err.into()))),
            None => Ok(()),
        }
    }

    /// Removes the namespaces `names`, as `netns rm` each: those where nsnet has endpoints
    /// or links one by one, the others (a destroy's, whose endpoints went with their network)
    /// with one store transaction for all their routes' rows, then their files. On failure:
    /// the index in `names` of the first that failed.
    fn remove_netns_at_once(&mut self, names: &[String]) -> Result<(), Box<(usize, EngineError)>> {
        let busy: Vec<bool> = self
            .store
            .read(|tx| {
                names
                    .iter()
                    .map(|n| {
                        Ok::<_, EngineError>(
                            !tx.endpoints_in_netns(n)?.is_empty()
                                || !tx.links_in_netns(n)?.is_empty(),
                        )
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| Box::new((0, e)))?;
        self.store
            .write(|tx| {
                for (n, _) in names.iter().zip(&busy).filter(|(_, b)| !**b) {
                    tx.delete_routes_in_netns(n)?;
                }
                Ok::<_, EngineError>(())
            })
            .map_err(|e| Box::new((0, e)))?;
        for (k, (n, busy)) in names.iter().zip(busy).enumerate() {
            let done = if busy {
                gone_ok(self.netns_rm(&NsName::existing(n).map_err(|e| Box::new((k, e.into())))?))
            } else {
                // Gone already is what was wanted.
                self.kernel
                    .delete_netns(n)
                    .map(drop)
                    .map_err(EngineError::from)
            };
            done.map_err(|e| Box::new((k, e)))?;
        }
        Ok(())
    }

    /// Takes the machine back to `before` after a failed apply, and the ownership records
    /// with it; keeps going past failures and reports them all.
    fn topology_rollback(
        &mut self,
        name: &str,
        before: &Observed,
        failed: &Change,
    ) -> Result<(), EngineError> {
        let now = self.topology_observe(name)?;
        let mut errors = Vec::new();
        for c in undo(before, &now, failed) {
            if let Err(e) = self.apply_change(&c, &Addresses::new()) {
                errors.push(format!("{c}: {e}"));
            }
        }
        self.store.write(|tx| {
            for o in tx.owned(name)? {
                tx.disown(name, &o)?;
            }
            for o in &before.owned {
                tx.own(name, o)?;
            }
            Ok::<_, EngineError>(())
        })?;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Teardown {
                op: "undo".into(),
                errors,
            })
        }
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
                .map(|n| n.spec.name().to_string())
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

    fn apply_change(&mut self, c: &Change, addresses: &Addresses) -> Result<(), EngineError> {
        match c {
            Change::CreateNetns(n) => self.netns_add(&NsName::new(n)?),
            Change::RemoveNetns(n) => gone_ok(self.netns_rm(&NsName::existing(n)?)),
            Change::CreateNetwork(spec) => self
                .network_create(NetworkRequest { spec: spec.clone() })
                .map(drop),
            Change::ReplaceNetwork { spec, .. } => {
                gone_ok(self.network_rm(spec.name(), true))?;
                self.network_create(NetworkRequest { spec: spec.clone() })
                    .map(drop)
            }
            Change::RemoveNetwork(n) => gone_ok(self.network_rm(n, true)),
            Change::Connect {
                endpoint: e,
                reason,
            } => {
                if reason.is_some() {
                    gone_ok(self.disconnect(&e.network, &ns_ref(e.netns.as_str())))?;
                }
                self.connect(connect_request(e, addresses)).map(drop)
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
                            // One address per network can be asked for: the first subnet's.
                            ip: ip.or_else(|| {
                                addresses
                                    .get(&(network.clone(), c.name.to_string()))
                                    .and_then(|a| a.first().copied())
                            }),
                        })
                        .collect(),
                    publish: c.publish.iter().map(single).collect(),
                    env: c.env.clone(),
                    aliases: Vec::new(),
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

/// The connect a topology's endpoint asks for, with the address the check allocated.
fn connect_request(e: &DesiredEndpoint, addresses: &Addresses) -> ConnectRequest {
    let ips = addresses
        .get(&(e.network.clone(), e.netns.to_string()))
        .unwrap_or(&e.ips);
    ConnectRequest {
        network: e.network.clone(),
        netns: ns_ref(e.netns.as_str()),
        ips: ips.clone(),
        mac: e.mac,
        ifname: e.ifname.clone(),
        container_id: None,
        publish: e.publish.iter().map(single).collect(),
        aliases: Vec::new(),
    }
}

/// A view holding interface names alone (see `Engine::observe`).
fn names_only(names: Vec<String>) -> NsView {
    NsView {
        interfaces: names
            .into_iter()
            .map(|name| nsnet_sys::kernel::IfaceView {
                name,
                index: 0,
                kind: None,
                up: false,
                mac: None,
                mtu: None,
                master: None,
                addrs: Vec::new(),
                shaping: None,
            })
            .collect(),
        routes: Vec::new(),
    }
}
