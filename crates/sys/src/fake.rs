//! A kernel that records operations, keeps a tiny model of interfaces, and fails on demand:
//! the engine's locking, planning and rollback are tested with it, without root. It keeps the
//! contract written on `Net` and `Firewall` (proven against the live kernel by
//! `tests/kernel_contract.rs`).

use std::collections::{BTreeMap, BTreeSet};

use nsnet_core::firewall::{FwChange, FwElem};
use nsnet_core::model::overlaps;
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::port::PortMapping;

use ipnet::IpNet;

use crate::kernel::{FailKind, Firewall, IfaceView, KernelError, Net, NsView, RouteView};

/// Recording fake of `Kernel`.
#[derive(Debug, Default)]
pub struct FakeKernel {
    /// Every operation applied successfully, in order (including undo operations).
    pub log: Vec<KernelOp>,
    /// Named namespaces that exist.
    pub netns: BTreeSet<String>,
    /// Interfaces per namespace (host is "host").
    pub links: BTreeMap<String, BTreeSet<String>>,
    /// Fail the operation whose rendering contains this text (once per match).
    pub fail_on: Option<String>,
    /// Processes that count as dead for `process_alive`.
    pub dead_pids: BTreeSet<u32>,
    /// Firewall elements present, rendered (`set key : data`).
    pub fw: BTreeSet<String>,
    /// Whether the firewall tables are installed.
    pub fw_installed: bool,
    /// Host ports that count as busy for `port_busy` (`proto/port`).
    pub busy_ports: BTreeSet<String>,
    /// Addresses the host holds for `host_holds`, besides those added to host interfaces.
    pub host_addrs: BTreeSet<std::net::IpAddr>,
    /// Container processes and files (see `process::fake`).
    pub procs: crate::process::fake::FakeProcesses,
    /// Addresses per namespace: (interface, address).
    pub addrs: BTreeMap<String, BTreeSet<(String, IpNet)>>,
    /// Routes per namespace, as added.
    pub routes: BTreeMap<String, Vec<Route>>,
    /// Veth peers, both ways: (namespace, interface) to the other end.
    peers: BTreeMap<(String, String), (String, String)>,
    /// Open vSwitch bridges: name to (owning network, ports). As live, a port stays on its
    /// bridge when its device goes, until it is deleted.
    pub ovs: BTreeMap<String, (String, BTreeSet<String>)>,
    /// Overlay peers per VXLAN device of the host.
    pub overlay: BTreeMap<String, Vec<nsnet_core::ops::OverlayPeer>>,
    /// Take host link deletions through `Net::start` (as the live kernel does, on a helper
    /// thread) and apply them only at `finish_started`, so tests see what the engine does
    /// while they run. Off by default: ops are applied in plan order.
    pub defer_link_deletes: bool,
    /// Deletions `start` took, not yet applied.
    deferred: Vec<KernelOp>,
    /// Bridge ports: (namespace, interface) to its master. A port whose master is gone shows
    /// none (as live: deleting a bridge detaches its ports).
    pub masters: BTreeMap<(String, String), String>,
    /// Interfaces set down behind nsnet's back, (namespace, interface); `LinkUp` brings one up.
    pub down: BTreeSet<(String, String)>,
}

/// A route the fake holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dest: IpNet,
    pub via: Option<std::net::IpAddr>,
    pub dev: Option<String>,
}

impl Route {
    /// Whether a delete naming `dest`, `via` and `dev` removes this route: as the kernel
    /// matches, on the destination and whatever else the delete names.
    fn matches(&self, dest: &IpNet, via: &Option<std::net::IpAddr>, dev: &Option<String>) -> bool {
        self.dest == *dest
            && (via.is_none() || self.via == *via)
            && (dev.is_none() || self.dev == *dev)
    }
}

impl FakeKernel {
    /// Interfaces currently in `ns` ("host" for the host).
    pub fn links_in(&self, ns: &str) -> Vec<String> {
        self.links
            .get(ns)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn key(ns: &NsRef) -> String {
        ns.to_string()
    }

    fn check_ns(&self, ns: &NsRef, what: &str) -> Result<(), KernelError> {
        match ns {
            NsRef::Named(n) if !self.netns.contains(n) => Err(KernelError::new(
                what,
                FailKind::NotFound,
                format!("netns {n} not found"),
            )),
            _ => Ok(()),
        }
    }

    /// Whether `ifname` exists in `ns`; `lo` exists in every namespace, as live.
    fn has_link(&self, ns: &NsRef, ifname: &str) -> bool {
        ifname == "lo"
            || self
                .links
                .get(&Self::key(ns))
                .is_some_and(|s| s.contains(ifname))
    }

    /// The namespace exists and holds `ifname`, else NotFound (as live).
    fn check_link(&self, ns: &NsRef, ifname: &str, what: &str) -> Result<(), KernelError> {
        self.check_ns(ns, what)?;
        if !self.has_link(ns, ifname) {
            return Err(KernelError::new(
                what,
                FailKind::NotFound,
                format!("no interface {ifname} in netns {ns}"),
            ));
        }
        Ok(())
    }

    fn add_link(&mut self, ns: &NsRef, name: &str, what: &str) -> Result<(), KernelError> {
        self.check_ns(ns, what)?;
        let set = self.links.entry(Self::key(ns)).or_default();
        if !set.insert(name.to_string()) {
            return Err(KernelError::new(what, FailKind::Exists, "File exists"));
        }
        Ok(())
    }

    /// Removes a link with its addresses and routes, and its veth peer likewise.
    fn remove_link(&mut self, ns: &str, ifname: &str) {
        if ns == "host" {
            self.overlay.remove(ifname);
        }
        // A bridge's ports are detached when it goes.
        self.masters.retain(|(n, _), m| !(n == ns && m == ifname));
        for (ns, ifname) in [(ns.to_string(), ifname.to_string())]
            .into_iter()
            .chain(self.peers.remove(&(ns.to_string(), ifname.to_string())))
        {
            self.peers.remove(&(ns.clone(), ifname.clone()));
            self.masters.remove(&(ns.clone(), ifname.clone()));
            self.down.remove(&(ns.clone(), ifname.clone()));
            if let Some(set) = self.links.get_mut(&ns) {
                set.remove(&ifname);
            }
            if let Some(set) = self.addrs.get_mut(&ns) {
                set.retain(|(i, _)| *i != ifname);
            }
            if let Some(routes) = self.routes.get_mut(&ns) {
                routes.retain(|r| r.dev.as_deref() != Some(ifname.as_str()));
            }
        }
    }

    fn not_found(what: &str, cause: &str) -> KernelError {
        KernelError::new(what, FailKind::NotFound, cause)
    }

    fn apply_net_op(&mut self, op: &KernelOp, what: &str) -> Result<(), KernelError> {
        match op {
            KernelOp::CreateBridge { name, .. } | KernelOp::CreateVxlan { name, .. } => {
                self.add_link(&NsRef::Host, name, what)?
            }
            KernelOp::AddOverlayPeer(p) => {
                self.check_link(&NsRef::Host, &p.dev, what)?;
                let peers = self.overlay.entry(p.dev.clone()).or_default();
                peers.retain(|q| q.slice != p.slice);
                peers.push(p.clone());
            }
            KernelOp::DelOverlayPeer(p) => {
                self.check_link(&NsRef::Host, &p.dev, what)?;
                if let Some(peers) = self.overlay.get_mut(&p.dev) {
                    peers.retain(|q| q.slice != p.slice);
                }
            }
            KernelOp::CreateVeth { a, b, .. } => {
                self.check_ns(&a.ns, what)?;
                self.check_ns(&b.ns, what)?;
                if self.has_link(&a.ns, &a.name) || self.has_link(&b.ns, &b.name) {
                    return Err(KernelError::new(what, FailKind::Exists, "File exists"));
                }
                if let Some(m) = &a.master {
                    self.check_link(&a.ns, m, what)?;
                }
                self.add_link(&a.ns, &a.name, what)?;
                self.add_link(&b.ns, &b.name, what)?;
                let (ea, eb) = (
                    (Self::key(&a.ns), a.name.clone()),
                    (Self::key(&b.ns), b.name.clone()),
                );
                if let Some(m) = &a.master {
                    self.masters.insert(ea.clone(), m.clone());
                }
                self.peers.insert(ea.clone(), eb.clone());
                self.peers.insert(eb, ea);
            }
            KernelOp::DeleteLink { ns, ifname } => {
                self.check_link(ns, ifname, what)?;
                self.remove_link(&Self::key(ns), ifname);
            }
            KernelOp::AddAddr { ns, ifname, addr } => {
                self.check_link(ns, ifname, what)?;
                let set = self.addrs.entry(Self::key(ns)).or_default();
                if !set.insert((ifname.clone(), *addr)) {
                    return Err(KernelError::new(what, FailKind::Exists, "File exists"));
                }
            }
            KernelOp::DelAddr { ns, ifname, addr } => {
                self.check_link(ns, ifname, what)?;
                let removed = self
                    .addrs
                    .get_mut(&Self::key(ns))
                    .is_some_and(|s| s.remove(&(ifname.clone(), *addr)));
                if !removed {
                    return Err(Self::not_found(what, "no such address"));
                }
            }
            KernelOp::AddRoute { ns, dest, via, dev } => {
                self.check_ns(ns, what)?;
                if let Some(d) = dev {
                    self.check_link(ns, d, what)?;
                }
                let routes = self.routes.entry(Self::key(ns)).or_default();
                // The kernel keys a route of the main table on its destination (and metric).
                if routes.iter().any(|r| r.dest == *dest) {
                    return Err(KernelError::new(what, FailKind::Exists, "File exists"));
                }
                routes.push(Route {
                    dest: *dest,
                    via: *via,
                    dev: dev.clone(),
                });
            }
            KernelOp::DelRoute { ns, dest, via, dev } => {
                self.check_ns(ns, what)?;
                if let Some(d) = dev {
                    self.check_link(ns, d, what)?;
                }
                let routes = self.routes.entry(Self::key(ns)).or_default();
                let Some(i) = routes.iter().position(|r| r.matches(dest, via, dev)) else {
                    return Err(Self::not_found(what, "no such route"));
                };
                routes.remove(i);
            }
            KernelOp::LinkUp { ns, ifname } => {
                self.check_link(ns, ifname, what)?;
                self.down.remove(&(Self::key(ns), ifname.clone()));
            }
            KernelOp::Sysctl { ns, .. } => self.check_ns(ns, what)?,
            KernelOp::Hairpin { ifname } => self.check_link(&NsRef::Host, ifname, what)?,
            KernelOp::SetMaster { ifname, master } => {
                self.check_link(&NsRef::Host, master, what)?;
                self.check_link(&NsRef::Host, ifname, what)?;
                self.masters
                    .insert((Self::key(&NsRef::Host), ifname.clone()), master.clone());
            }
            KernelOp::Shape { ns, ifname, .. } => self.check_link(ns, ifname, what)?,
            KernelOp::OvsAddBridge { name, network, .. } => {
                if self.ovs.contains_key(name) {
                    return Err(KernelError::new(what, FailKind::Exists, "bridge exists"));
                }
                // Its local port, named as the bridge.
                self.add_link(&NsRef::Host, name, what)?;
                self.ovs
                    .insert(name.clone(), (network.clone(), BTreeSet::new()));
            }
            KernelOp::OvsDelBridge { name } => {
                if self.ovs.remove(name).is_none() {
                    return Err(Self::not_found(what, "no such bridge"));
                }
                self.remove_link("host", name);
            }
            KernelOp::OvsAddPort { bridge, port, .. } => {
                if !self.ovs.contains_key(bridge) {
                    return Err(Self::not_found(what, "no such bridge"));
                }
                self.check_link(&NsRef::Host, port, what)?;
                if self.ovs.values().any(|(_, ports)| ports.contains(port)) {
                    return Err(KernelError::new(what, FailKind::Exists, "port exists"));
                }
                self.ovs
                    .get_mut(bridge)
                    .expect("checked")
                    .1
                    .insert(port.clone());
            }
            KernelOp::OvsDelPort { bridge, port } => {
                let removed = self
                    .ovs
                    .get_mut(bridge)
                    .is_some_and(|(_, ports)| ports.remove(port));
                if !removed {
                    return Err(Self::not_found(what, "no such port"));
                }
            }
            KernelOp::Firewall(_) => {
                return Err(KernelError::new(
                    what,
                    FailKind::Other,
                    "firewall changes go through Firewall::apply_fw",
                ));
            }
        }
        Ok(())
    }

    /// Fails the operation named `what` if `fail_on` matches it (once).
    fn injected(&mut self, what: &str) -> Result<(), KernelError> {
        if let Some(f) = &self.fail_on
            && what.contains(f.as_str())
        {
            self.fail_on = None;
            return Err(KernelError::new(what, FailKind::Other, "injected failure"));
        }
        Ok(())
    }
}

impl Net for FakeKernel {
    fn apply_net(&mut self, op: &KernelOp) -> Result<(), KernelError> {
        let what = op.to_string();
        self.injected(&what)?;
        self.apply_net_op(op, &what)?;
        self.log.push(op.clone());
        Ok(())
    }

    fn create_netns(&mut self, name: &str) -> Result<(), KernelError> {
        if !self.netns.insert(name.to_string()) {
            return Err(KernelError::new(
                format!("create netns {name}"),
                FailKind::Exists,
                "already exists",
            ));
        }
        Ok(())
    }

    fn delete_netns(&mut self, name: &str) -> Result<bool, KernelError> {
        // The namespace's veths go with it, and so do their peers elsewhere.
        for ifname in self.links_in(name) {
            self.remove_link(name, &ifname);
        }
        self.links.remove(name);
        self.addrs.remove(name);
        self.routes.remove(name);
        Ok(self.netns.remove(name))
    }

    fn list_netns(&mut self) -> Result<Vec<String>, KernelError> {
        Ok(self.netns.iter().cloned().collect())
    }

    fn netns_exists(&mut self, ns: &NsRef) -> bool {
        match ns {
            NsRef::Host => true,
            NsRef::Named(n) => self.netns.contains(n),
        }
    }

    fn port_busy(&mut self, m: &PortMapping) -> bool {
        self.busy_ports
            .contains(&format!("{}/{}", m.proto, m.host_port))
    }

    fn overlay_entries(
        &mut self,
        dev: &str,
    ) -> Result<nsnet_core::overlay::LiveEntries, KernelError> {
        self.check_link(&NsRef::Host, dev, &format!("inspect overlay device {dev}"))?;
        let peers = self.overlay.get(dev).cloned().unwrap_or_default();
        Ok(nsnet_core::overlay::LiveEntries {
            routes: peers.iter().map(|p| (p.slice, Some(p.vtep))).collect(),
            neighbours: peers.iter().map(|p| (p.vtep, p.mac)).collect(),
            fdb: peers.iter().map(|p| (p.mac, p.underlay)).collect(),
        })
    }

    fn host_holds(&mut self, ip: std::net::IpAddr) -> bool {
        // As live: any address of a host interface, nsnet's bridges included.
        self.host_addrs.contains(&ip)
            || self
                .addrs
                .get("host")
                .is_some_and(|s| s.iter().any(|(_, a)| a.addr() == ip))
    }

    fn start(&mut self, op: &KernelOp) -> bool {
        let host_link = matches!(
            op,
            KernelOp::DeleteLink {
                ns: NsRef::Host,
                ..
            }
        );
        if self.defer_link_deletes && host_link {
            self.deferred.push(op.clone());
        }
        self.defer_link_deletes && host_link
    }

    fn finish_started(&mut self) -> Vec<Result<(), KernelError>> {
        let ops: Vec<KernelOp> = self.deferred.drain(..).collect();
        ops.iter().map(|op| self.apply_net(op)).collect()
    }

    fn routes_overlapping(
        &mut self,
        ns: &NsRef,
        nets: &[IpNet],
    ) -> Result<Vec<RouteView>, KernelError> {
        let routes = self.view(ns)?.routes;
        Ok(routes
            .into_iter()
            .filter(|r| r.dest.prefix_len() > 0 && nets.iter().any(|n| overlaps(n, &r.dest)))
            .collect())
    }

    fn view(&mut self, ns: &NsRef) -> Result<NsView, KernelError> {
        self.check_ns(ns, &format!("inspect netns {ns}"))?;
        let key = Self::key(ns);
        let addrs = self.addrs.get(&key).cloned().unwrap_or_default();
        let names = self.links_in(&key);
        let interfaces = names
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, name)| IfaceView {
                index: u32::try_from(i).unwrap_or(0) + 1,
                kind: None,
                up: !self.down.contains(&(key.clone(), name.clone())),
                mac: None,
                mtu: None,
                master: self
                    .masters
                    .get(&(key.clone(), name.clone()))
                    .filter(|m| names.contains(m))
                    .cloned(),
                addrs: addrs
                    .iter()
                    .filter(|(n, _)| *n == name)
                    .map(|(_, a)| *a)
                    .collect(),
                shaping: None,
                name,
            })
            .collect();
        let routes = self
            .routes
            .get(&key)
            .map(|rs| {
                rs.iter()
                    .map(|r| RouteView {
                        dest: r.dest,
                        via: r.via,
                        dev: r.dev.clone(),
                        proto: "static".into(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(NsView { interfaces, routes })
    }
}

impl Firewall for FakeKernel {
    fn apply_fw(&mut self, changes: &[FwChange]) -> Result<(), KernelError> {
        let op = KernelOp::Firewall(changes.to_vec());
        let what = op.to_string();
        self.injected(&what)?;
        if changes.is_empty() {
            self.log.push(op);
            return Ok(());
        }
        if !self.fw_installed {
            return Err(KernelError::new(
                what,
                FailKind::NotFound,
                "table inet nsnet is missing (run `nsnet repair`)",
            ));
        }
        // As live: a batch of deletions only removes what is there, and succeeds.
        let only_deletes = changes.iter().all(|c| matches!(c, FwChange::Del(_)));
        let mut next = self.fw.clone();
        for c in changes {
            match c {
                FwChange::Add(e) => {
                    if !next.insert(e.to_string()) {
                        return Err(KernelError::new(
                            what,
                            FailKind::Exists,
                            format!("element {e} exists"),
                        ));
                    }
                }
                FwChange::Del(e) => {
                    if !next.remove(&e.to_string()) && !only_deletes {
                        return Err(Self::not_found(&what, &format!("no element {e}")));
                    }
                }
            }
        }
        self.fw = next;
        self.log.push(op);
        Ok(())
    }

    fn fw_ensure(&mut self) -> Result<(), KernelError> {
        self.fw_installed = true;
        Ok(())
    }

    fn fw_remove(&mut self) -> Result<(), KernelError> {
        self.fw_installed = false;
        self.fw.clear();
        Ok(())
    }

    fn fw_has(&mut self, elem: &FwElem) -> Result<bool, KernelError> {
        Ok(self.fw_installed && self.fw.contains(&elem.to_string()))
    }
}
