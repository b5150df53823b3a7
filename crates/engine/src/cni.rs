//! What the CNI face needs beyond the CLI's operations. CNI names an attachment by container id
//! and interface name (the namespace path may be empty on DEL), brings the network's definition
//! with every call, may bound allocation to ranges, and takes the container's routes from its
//! configuration instead of nsnet's primary-endpoint rule. Rows, kernel plans and firewall
//! elements are the CLI's own, so `nsnet network inspect` shows CNI attachments like any other.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipnet::IpNet;
use nsnet_core::CoreError;
use nsnet_core::firewall::{self, FwElem, FwKey};
use nsnet_core::ipam::Range;
use nsnet_core::model::{Mac, NetworkSpec, overlaps};
use nsnet_core::names::{IfName, NetName};
use nsnet_core::ops::NsRef;
use nsnet_core::port::PortSpec;
use nsnet_store::{EndpointRow, NetworkRow, RowState};
use nsnet_sys::kernel::{IfaceView, Kernel};
use serde::Serialize;

use crate::apply::teardown;
use crate::network::{endpoint_firewall, endpoint_view, ns_key, primary_in};
use crate::views::EndpointView;
use crate::{ConnectRequest, Engine, EngineError};

/// How long an ADD waits for another process that is creating the same network.
const NETWORK_WAIT: Duration = Duration::from_secs(30);
/// Pause between looks at a network another process is creating.
const NETWORK_POLL: Duration = Duration::from_millis(2);

/// A route to install in the container: a destination through a gateway, on the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CniRoute {
    pub dest: IpNet,
    pub via: IpAddr,
}

/// How a connect differs from the CLI's; the default is the CLI's behaviour.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectPolicy {
    /// Routes to install instead of the primary endpoint's default routes (None: the CLI rule).
    pub routes: Option<Vec<CniRoute>>,
    /// Allocation windows, at most one per subnet.
    pub ranges: Vec<Range>,
}

/// Which attachment: CNI's key is the container id and the interface name, on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniKey {
    pub network: NetName,
    pub container_id: String,
    pub ifname: IfName,
}

impl std::fmt::Display for CniKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "container {} interface {} on network {}",
            self.container_id, self.ifname, self.network
        )
    }
}

/// A CNI ADD, validated by the face.
#[derive(Debug, Clone)]
pub struct CniAdd {
    /// The network as the configuration defines it; created on first use.
    pub spec: NetworkSpec,
    pub container_id: String,
    /// The container's namespace (CNI_NETNS, a path).
    pub netns: NsRef,
    pub ifname: IfName,
    /// Requested addresses (at most one per subnet).
    pub ips: Vec<IpAddr>,
    pub mac: Option<Mac>,
    pub publish: Vec<PortSpec>,
    pub ranges: Vec<Range>,
    /// Routes in the container (default routes included when the configuration asks).
    pub routes: Vec<CniRoute>,
}

impl CniAdd {
    /// The attachment this ADD makes.
    pub fn key(&self) -> CniKey {
        CniKey {
            network: self.spec.name().clone(),
            container_id: self.container_id.clone(),
            ifname: self.ifname.clone(),
        }
    }
}

/// What CHECK found: the attachment, and what is missing or different (empty when healthy).
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub endpoint: EndpointView,
    pub problems: Vec<String>,
}

/// Readiness of a network for new attachments (CNI STATUS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CniStatus {
    Ready,
    /// Nothing can be attached (e.g. nf_tables cannot be used).
    Unavailable(String),
    /// Attachments may have limited connectivity (e.g. someone flushed nsnet's tables).
    Degraded(String),
}

/// What a CNI GC removed, and what it could not.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CniGcReport {
    pub removed: Vec<String>,
    pub errors: Vec<String>,
}

/// How a configuration's definition of a network differs from the stored one, one entry per
/// difference ("mtu default (configuration: 1400)"); empty when they agree.
fn definition_diffs(stored: &NetworkSpec, wanted: &NetworkSpec) -> Vec<String> {
    let subnets = |s: &NetworkSpec| {
        let mut v: Vec<String> = s
            .subnets()
            .iter()
            .map(|s| format!("{} (gateway {})", s.cidr, s.gateway))
            .collect();
        v.sort();
        v.join(", ")
    };
    let mtu = |m: Option<u32>| m.map_or("default".to_string(), |m| m.to_string());
    let mut diffs = Vec::new();
    let mut differ = |what: &str, have: String, want: String| {
        if have != want {
            diffs.push(format!("{what} {have} (configuration: {want})"));
        }
    };
    differ(
        "bridge",
        stored.bridge().to_string(),
        wanted.bridge().to_string(),
    );
    differ("subnets", subnets(stored), subnets(wanted));
    differ("mtu", mtu(stored.mtu()), mtu(wanted.mtu()));
    differ(
        "internal",
        stored.internal().to_string(),
        wanted.internal().to_string(),
    );
    differ(
        "ipMasq",
        stored.masquerade().to_string(),
        wanted.masquerade().to_string(),
    );
    differ("icc", stored.icc().to_string(), wanted.icc().to_string());
    differ(
        "routed",
        stored.routed().to_string(),
        wanted.routed().to_string(),
    );
    diffs
}

/// Refuses a configuration whose definition of an existing network differs from the store's;
/// `remedy` says how the stored one can go.
fn same_definition(
    stored: &NetworkSpec,
    wanted: &NetworkSpec,
    remedy: &str,
) -> Result<(), EngineError> {
    let diffs = definition_diffs(stored, wanted);
    if diffs.is_empty() {
        return Ok(());
    }
    Err(CoreError::InvalidValue {
        what: "network configuration",
        value: wanted.name().to_string(),
        reason: format!(
            "network {} already exists with {}; {remedy}",
            wanted.name(),
            diffs.join(", "),
        ),
    }
    .into())
}

/// The remedy for a definition that differs from the stored network `n`.
fn remedy(n: &NetworkRow) -> String {
    if n.cni_owned {
        format!(
            "it takes the new definition once nothing is attached to it (`nsnet network inspect {}` lists what is)",
            n.spec.name()
        )
    } else {
        format!(
            "make the configuration match, or remove the network once nothing is attached (nsnet network rm {})",
            n.spec.name()
        )
    }
}

/// Whether two networks could not exist side by side (same bridge, or overlapping subnets).
fn clashes(a: &NetworkSpec, b: &NetworkSpec) -> bool {
    a.bridge() == b.bridge()
        || a.subnets()
            .iter()
            .any(|x| b.subnets().iter().any(|y| overlaps(&x.cidr, &y.cidr)))
}

fn iface<'a>(ifaces: &'a [IfaceView], name: &str) -> Option<&'a IfaceView> {
    ifaces.iter().find(|i| i.name == name)
}

impl<K: Kernel> Engine<K> {
    /// Makes sure the network exists as `spec` defines it: creates it on first use (waiting
    /// while another process creates or removes it), replaces a network the configuration owns
    /// whose definition changed while nothing is attached, and removes unused networks the
    /// configurations own that are in the way (same bridge, overlapping subnets). Refuses a
    /// different definition of a network with attachments or created by the CLI.
    pub fn cni_network(&mut self, spec: &NetworkSpec) -> Result<(), EngineError> {
        let deadline = Instant::now() + NETWORK_WAIT;
        let mut collected = false;
        loop {
            match self.store.read(|tx| tx.network(spec.name()))? {
                None => {
                    self.clear_way_for(spec)?;
                    match self.create_network(spec.clone(), true) {
                        Ok(_) => return Ok(()),
                        // Another ADD created it first: look again.
                        Err(EngineError::Exists { .. }) => {}
                        Err(err) => return Err(err),
                    }
                }
                Some(n) if n.state == RowState::Ready => {
                    if definition_diffs(&n.spec, spec).is_empty() {
                        return Ok(());
                    }
                    // The configuration changed: the new definition wins while nothing is
                    // attached (the old network goes, the next round creates the new one).
                    if !(n.cni_owned && self.cni_release(spec.name())?) {
                        return same_definition(&n.spec, spec, &remedy(&n));
                    }
                }
                Some(n) => {
                    let orphaned = n.boot_id != self.boot_id || !self.kernel.process_alive(n.pid);
                    if orphaned && !collected {
                        // Its creator (or remover) died half-way: undo that, then go on.
                        self.gc()?;
                        collected = true;
                        continue;
                    }
                    std::thread::sleep(NETWORK_POLL);
                }
            }
            if Instant::now() > deadline {
                return Err(EngineError::Conflict(format!(
                    "network {} is still being created or removed by another process after {}s; run `nsnet gc` if that process is stuck",
                    spec.name(),
                    NETWORK_WAIT.as_secs()
                )));
            }
        }
    }

    /// Removes the networks configurations own that stand in the way of `spec` and have
    /// nothing attached: a runtime that deleted network A and defined B with A's subnet
    /// never sends A another DEL.
    fn clear_way_for(&mut self, spec: &NetworkSpec) -> Result<(), EngineError> {
        let in_way: Vec<NetName> = self.store.read(|tx| {
            Ok::<_, EngineError>(
                tx.networks()?
                    .into_iter()
                    .filter(|n| {
                        n.cni_owned && n.spec.name() != spec.name() && clashes(&n.spec, spec)
                    })
                    .map(|n| n.spec.name().clone())
                    .collect(),
            )
        })?;
        for name in in_way {
            // One with attachments stays, and creation names the clash.
            self.cni_release(&name)?;
        }
        Ok(())
    }

    /// Removes a network a CNI configuration owns once nothing is attached to it: bridge,
    /// firewall elements, row. Ok(false) when it stays (attachments, created by the CLI, or
    /// another live process is creating or removing it). The decision is taken under the
    /// store's write lock and marks the row in flux first, so an ADD racing with the removal
    /// either attached before (and the network stays) or waits and creates it anew; if this
    /// process dies half-way, `gc` (or the next ADD) finishes the removal.
    pub fn cni_release(&mut self, name: &NetName) -> Result<bool, EngineError> {
        let (pid, boot) = (self.pid, self.boot_id.clone());
        let kernel = &mut self.kernel;
        let claimed = self.store.write(|tx| {
            let Some(n) = tx.network(name)? else {
                return Ok::<_, EngineError>(None);
            };
            let busy = n.state != RowState::Ready
                && n.boot_id == boot
                && n.pid != pid
                && kernel.process_alive(n.pid);
            if !n.cni_owned || busy {
                return Ok(None);
            }
            if n.state == RowState::Ready && n.boot_id != boot {
                // Not used since a reboot: its endpoints died with the old kernel (the first
                // connect would drop their rows too), so they do not keep it.
                for e in tx.endpoints_of_network(name)? {
                    tx.delete_endpoint(e.id)?;
                }
            }
            if tx.network_in_use(name)? {
                return Ok(None);
            }
            tx.mark_network_removing(name, pid, &boot)?;
            Ok(Some(n.spec))
        })?;
        let Some(spec) = claimed else {
            return Ok(false);
        };
        // The tables stay when the last network goes (unlike `network rm`): removing and
        // reinstalling them would run `nft` on every container's ADD and DEL.
        let errors = teardown(&mut self.kernel, &nsnet_core::plan::remove_network(&spec));
        if !errors.is_empty() {
            return Err(EngineError::Teardown {
                op: format!("remove network {name} after its last attachment"),
                errors,
            });
        }
        self.store.write(|tx| tx.delete_network(name))?;
        Ok(true)
    }

    /// The attachment `key` names, if any.
    pub fn cni_endpoint(&mut self, key: &CniKey) -> Result<Option<EndpointRow>, EngineError> {
        let rows = self
            .store
            .read(|tx| tx.endpoints_of_container(&key.container_id))?;
        Ok(rows
            .into_iter()
            .find(|e| e.network == key.network && e.ifname == key.ifname))
    }

    /// Every attachment of a container, on any network.
    pub fn cni_endpoints(&mut self, container_id: &str) -> Result<Vec<EndpointView>, EngineError> {
        self.store.read(|tx| {
            tx.endpoints_of_container(container_id)?
                .iter()
                .map(|e| -> Result<EndpointView, EngineError> {
                    let in_ns = tx.endpoints_in_netns(&e.netns)?;
                    Ok(endpoint_view(tx, e, primary_in(tx, &in_ns)?)?)
                })
                .collect()
        })
    }

    /// CNI ADD: the network on first use, then a connect with the configuration's ranges,
    /// routes and published ports. Refuses an attachment that already exists.
    pub fn cni_add(&mut self, req: &CniAdd) -> Result<EndpointView, EngineError> {
        let key = req.key();
        let what = format!("attach {key} (netns {})", req.netns);
        self.cni_add_inner(req, &key).map_err(|e| e.during(what))
    }

    fn cni_add_inner(&mut self, req: &CniAdd, key: &CniKey) -> Result<EndpointView, EngineError> {
        let deadline = Instant::now() + NETWORK_WAIT;
        loop {
            self.cni_network(&req.spec)?;
            match self.attach(req, key) {
                Ok(view) => return Ok(view),
                Err(err) => {
                    // The network's last other attachment left and took the network with it
                    // between our look and the connect: start over (the connect undid itself).
                    let gone = self
                        .store
                        .read(|tx| tx.network(req.spec.name()))?
                        .is_none_or(|n| n.state != RowState::Ready);
                    if !gone || Instant::now() > deadline {
                        return Err(err);
                    }
                }
            }
        }
    }

    fn attach(&mut self, req: &CniAdd, key: &CniKey) -> Result<EndpointView, EngineError> {
        if let Some(e) = self.cni_endpoint(key)? {
            return Err(EngineError::Conflict(format!(
                "{key} is already attached (in netns {}, addresses {}); DEL it first",
                e.netns,
                e.addrs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let connect = ConnectRequest {
            network: req.spec.name().clone(),
            netns: req.netns.clone(),
            ips: req.ips.clone(),
            mac: req.mac,
            ifname: Some(req.ifname.clone()),
            container_id: Some(req.container_id.clone()),
            publish: req.publish.clone(),
        };
        let policy = ConnectPolicy {
            routes: Some(req.routes.clone()),
            ranges: req.ranges.clone(),
        };
        self.connect_with(&connect, &policy)
    }

    /// CNI DEL: removes the attachment whether or not its namespace still exists; Ok(false)
    /// when there was none (DEL is idempotent).
    pub fn cni_del(&mut self, key: &CniKey) -> Result<bool, EngineError> {
        match self.cni_endpoint(key)? {
            Some(ep) => self.detach(&ep).map(|()| true),
            None => Ok(false),
        }
    }

    /// Removes an attachment (recording the intent first, see `removal`). Unlike
    /// `disconnect`, no other endpoint of the namespace gets default routes: CNI attachments
    /// are independent of each other.
    fn detach(&mut self, ep: &EndpointRow) -> Result<(), EngineError> {
        self.remove_endpoint(ep.id, false).map_err(|e| {
            e.during(format!(
                "detach container {} interface {} from network {}",
                ep.container_id.as_deref().unwrap_or("-"),
                ep.ifname,
                ep.network
            ))
        })
    }

    /// CNI GC: removes every attachment to `network` made for a container (endpoints with a
    /// container id) whose (container id, interface) is not in `valid`. Attachments another
    /// live process is still creating are left alone.
    pub fn cni_gc(
        &mut self,
        network: &NetName,
        valid: &[(String, String)],
    ) -> Result<CniGcReport, EngineError> {
        let endpoints = self.store.read(|tx| tx.endpoints_of_network(network))?;
        let mut report = CniGcReport::default();
        for e in endpoints {
            let Some(cid) = e.container_id.as_deref() else {
                continue;
            };
            if valid
                .iter()
                .any(|(c, i)| c == cid && i == e.ifname.as_str())
            {
                continue;
            }
            let in_flight = e.state == RowState::Creating
                && e.boot_id == self.boot_id
                && self.kernel.process_alive(e.pid);
            if in_flight {
                continue;
            }
            match self.detach(&e) {
                Ok(()) => report.removed.push(format!(
                    "container {cid} interface {} ({})",
                    e.ifname,
                    e.addrs
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Err(err) => report.errors.push(err.to_string()),
            }
        }
        Ok(report)
    }

    /// CNI CHECK: compares the kernel (bridge, veth, addresses, MAC, `routes`, firewall
    /// elements) with the store. Errors when the network or the attachment is unknown.
    pub fn cni_check(
        &mut self,
        spec: &NetworkSpec,
        key: &CniKey,
        netns: &NsRef,
        routes: &[CniRoute],
    ) -> Result<CheckReport, EngineError> {
        let net = self
            .store
            .read(|tx| tx.network(spec.name()))?
            .ok_or_else(|| EngineError::not_found("network", spec.name()))?;
        same_definition(&net.spec, spec, &remedy(&net))?;
        let ep = self
            .cni_endpoint(key)?
            .ok_or_else(|| EngineError::not_found("attachment of", key))?;
        let mut problems = Vec::new();
        if ep.netns != ns_key(netns) {
            problems.push(format!(
                "the attachment is in netns {}, not in {netns}",
                ep.netns
            ));
        }
        if ep.state != RowState::Ready {
            problems.push("the attachment is still being created".to_string());
        }
        let host = self.kernel.view(&NsRef::Host)?;
        let bridge = net.spec.bridge().as_str();
        match iface(&host.interfaces, bridge) {
            None => problems.push(format!("bridge {bridge} is missing")),
            Some(b) => {
                if !b.up {
                    problems.push(format!("bridge {bridge} is down"));
                }
                for s in net.spec.subnets() {
                    if !b.addrs.contains(&s.gateway_cidr()) {
                        problems.push(format!(
                            "bridge {bridge} lacks gateway address {}",
                            s.gateway_cidr()
                        ));
                    }
                }
            }
        }
        let veth = ep.host_ifname.as_str();
        match iface(&host.interfaces, veth) {
            None => problems.push(format!("host interface {veth} is missing")),
            Some(v) => {
                if v.master.as_deref() != Some(bridge) {
                    problems.push(format!("host interface {veth} is not a port of {bridge}"));
                }
                if !v.up {
                    problems.push(format!("host interface {veth} is down"));
                }
            }
        }
        if self.kernel.netns_exists(netns) {
            let inside = self.kernel.view(netns)?;
            let ifname = ep.ifname.as_str();
            match iface(&inside.interfaces, ifname) {
                None => problems.push(format!("interface {ifname} is missing in netns {netns}")),
                Some(i) => {
                    for a in &ep.addrs {
                        if !i.addrs.contains(a) {
                            problems.push(format!("address {a} is missing on {ifname}"));
                        }
                    }
                    if let Some(m) = ep.mac
                        && i.mac.as_deref() != Some(m.to_string().as_str())
                    {
                        problems.push(format!(
                            "{ifname} has MAC {}, nsnet assigned {m}",
                            i.mac.as_deref().unwrap_or("none")
                        ));
                    }
                }
            }
            for r in routes {
                let present = inside.routes.iter().any(|have| {
                    have.dest == r.dest
                        && have.via == Some(r.via)
                        && have.dev.as_deref() == Some(ifname)
                });
                if !present {
                    problems.push(format!(
                        "route {} via {} dev {ifname} is missing",
                        r.dest, r.via
                    ));
                }
            }
        } else {
            problems.push(format!("netns {netns} does not exist"));
        }
        let mut elems = firewall::network_elements(&net.spec);
        elems.extend(self.store.read(|tx| endpoint_firewall(tx, &ep))?);
        for e in &elems {
            if !self.kernel.fw_has(e)? {
                problems.push(format!(
                    "firewall element {e} is missing (`nsnet repair` restores it)"
                ));
            }
        }
        let endpoint = self.store.read(|tx| {
            let in_ns = tx.endpoints_in_netns(&ep.netns)?;
            Ok::<_, EngineError>(endpoint_view(tx, &ep, primary_in(tx, &in_ns)?)?)
        })?;
        Ok(CheckReport { endpoint, problems })
    }

    /// CNI STATUS: whether the store answers (the caller opened it) and the firewall can be
    /// read and holds the network's elements.
    pub fn cni_status(&mut self, network: &NetName) -> Result<CniStatus, EngineError> {
        let net = self.store.read(|tx| tx.network(network))?;
        let elems = match &net {
            Some(n) => firewall::network_elements(&n.spec),
            // No network yet (the first ADD creates it): just see that nf_tables answers.
            None => vec![FwElem {
                family: firewall::FAMILY_INET,
                set: firewall::SET_BRIDGES.to_string(),
                key: FwKey::Ifname(network.to_string()),
                data: None,
            }],
        };
        for e in &elems {
            match self.kernel.fw_has(e) {
                Err(err) => {
                    return Ok(CniStatus::Unavailable(format!(
                        "the firewall cannot be used: {err}"
                    )));
                }
                Ok(false) if net.is_some() => {
                    return Ok(CniStatus::Degraded(format!(
                        "firewall element {e} of network {network} is missing: run `nsnet repair`"
                    )));
                }
                Ok(_) => {}
            }
        }
        Ok(CniStatus::Ready)
    }
}
