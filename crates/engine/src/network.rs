//! Networks (bridges with subnets) and endpoints (a namespace attached to a network).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::firewall;
use nsnet_core::model::{Mac, NetworkSpec, overlaps};
use nsnet_core::names::{IfName, NetName, host_veth};
use nsnet_core::ops::NsRef;
use nsnet_core::plan::{self, EndpointLayout};
use nsnet_core::port::PortSpec;
use nsnet_core::{CoreError, ipam};
use nsnet_store::{EndpointRow, NetworkRow, NewEndpoint, RowState, StoreError, Tx};
use nsnet_sys::kernel::{FailKind, Kernel};

use crate::apply::{apply_all, teardown};
use crate::cni::ConnectPolicy;
use crate::primary::primary;
use crate::views::{EndpointView, NetworkDetail, NetworkSummary};
use crate::{Engine, EngineError};

/// `network create`, validated.
#[derive(Debug, Clone)]
pub struct NetworkRequest {
    pub spec: NetworkSpec,
}

/// `network connect`, validated.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub network: NetName,
    pub netns: NsRef,
    pub ips: Vec<IpAddr>,
    pub mac: Option<Mac>,
    pub ifname: Option<IfName>,
    pub container_id: Option<String>,
    /// Ports to publish as part of the connect (`--publish`).
    pub publish: Vec<PortSpec>,
}

pub(crate) fn ns_key(ns: &NsRef) -> String {
    ns.to_string()
}

pub(crate) fn ns_ref(key: &str) -> NsRef {
    if key == nsnet_core::names::HOST {
        NsRef::Host
    } else {
        NsRef::Named(key.to_string())
    }
}

fn load_network(tx: &Tx<'_>, name: &NetName) -> Result<NetworkRow, EngineError> {
    tx.network(name)?
        .ok_or_else(|| EngineError::not_found("network", name))
}

pub(crate) fn endpoint_view(
    tx: &Tx<'_>,
    e: &EndpointRow,
    primary_id: Option<i64>,
) -> Result<EndpointView, StoreError> {
    Ok(EndpointView {
        network: e.network.to_string(),
        netns: e.netns.clone(),
        ifname: e.ifname.to_string(),
        host_ifname: e.host_ifname.to_string(),
        mac: e.mac.map(|m| m.to_string()),
        addrs: e.addrs.clone(),
        primary: primary_id == Some(e.id),
        state: e.state.name().to_string(),
        container_id: e.container_id.clone(),
        ports: tx
            .ports(Some(e.id))?
            .into_iter()
            .map(|p| p.mapping)
            .collect(),
    })
}

/// The primary endpoint id of a namespace, reading each endpoint's network.
pub(crate) fn primary_in(
    tx: &Tx<'_>,
    endpoints: &[EndpointRow],
) -> Result<Option<i64>, StoreError> {
    let mut internal = BTreeSet::new();
    for e in endpoints {
        if tx.network(&e.network)?.is_some_and(|n| n.spec.internal) {
            internal.insert(e.id);
        }
    }
    Ok(primary(endpoints, |e| internal.contains(&e.id)))
}

impl<K: Kernel> Engine<K> {
    /// Creates a network: bridge, gateway addresses, up. Refuses names, bridges and subnets
    /// that clash with another nsnet network or a route already on the host.
    pub fn network_create(&mut self, req: NetworkRequest) -> Result<NetworkDetail, EngineError> {
        let spec = req.spec;
        let what = format!("create network {}", spec.name);
        let host_routes = self.kernel.view(&NsRef::Host)?.routes;
        let (pid, boot) = (self.pid, self.boot_id.clone());
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            if tx.network(&spec.name)?.is_some() {
                return Err(EngineError::Exists {
                    kind: "network",
                    name: spec.name.to_string(),
                });
            }
            for other in tx.networks()? {
                if other.spec.bridge == spec.bridge {
                    return Err(EngineError::Conflict(format!(
                        "bridge {} is already used by network {}",
                        spec.bridge, other.spec.name
                    )));
                }
                for s in &spec.subnets {
                    if let Some(o) = other
                        .spec
                        .subnets
                        .iter()
                        .find(|o| overlaps(&o.cidr, &s.cidr))
                    {
                        return Err(CoreError::Subnet {
                            network: spec.name.to_string(),
                            subnet: s.cidr,
                            reason: format!(
                                "overlaps subnet {} of network {}",
                                o.cidr, other.spec.name
                            ),
                        }
                        .into());
                    }
                }
            }
            for s in &spec.subnets {
                if let Some(r) = host_routes
                    .iter()
                    .find(|r| r.dest.prefix_len() > 0 && overlaps(&r.dest, &s.cidr))
                {
                    return Err(CoreError::Subnet {
                        network: spec.name.to_string(),
                        subnet: s.cidr,
                        reason: format!(
                            "overlaps route {} already on the host{}",
                            r.dest,
                            r.dev
                                .as_ref()
                                .map(|d| format!(" (dev {d})"))
                                .unwrap_or_default()
                        ),
                    }
                    .into());
                }
            }
            tx.insert_network(&spec, pid, &boot)?;
            // Under the write lock: two processes never install the skeleton twice.
            kernel.fw_ensure()?;
            Ok(())
        })?;
        if let Err(err) = apply_all(&mut self.kernel, &plan::create_network(&spec)) {
            let _ = self.store.write(|tx| tx.delete_network(&spec.name));
            let err = if err.kind == FailKind::Exists {
                EngineError::Conflict(format!(
                    "bridge {} already exists on the host (choose another with --bridge)",
                    spec.bridge
                ))
            } else {
                err.into()
            };
            return Err(err.during(what));
        }
        self.store.write(|tx| tx.set_network_ready(&spec.name))?;
        self.network_inspect(&spec.name)
    }

    /// All networks.
    pub fn network_ls(&mut self) -> Result<Vec<NetworkSummary>, EngineError> {
        self.store.read(|tx| {
            tx.networks()?
                .into_iter()
                .map(|n| {
                    Ok(NetworkSummary {
                        endpoints: tx.endpoints_of_network(&n.spec.name)?.len(),
                        name: n.spec.name.to_string(),
                        bridge: n.spec.bridge.to_string(),
                        subnets: n.spec.subnets.iter().map(|s| s.cidr).collect(),
                        internal: n.spec.internal,
                    })
                })
                .collect()
        })
    }

    /// A network with its endpoints and address usage.
    pub fn network_inspect(&mut self, name: &NetName) -> Result<NetworkDetail, EngineError> {
        self.store.read(|tx| {
            let n = load_network(tx, name)?;
            let endpoints = tx.endpoints_of_network(name)?;
            let mut views = Vec::with_capacity(endpoints.len());
            for e in &endpoints {
                let in_ns = tx.endpoints_in_netns(&e.netns)?;
                views.push(endpoint_view(tx, e, primary_in(tx, &in_ns)?)?);
            }
            let usage = n
                .spec
                .subnets
                .iter()
                .map(|s| {
                    let used = endpoints
                        .iter()
                        .flat_map(EndpointRow::ips)
                        .filter(|ip| s.cidr.contains(ip))
                        .count();
                    ipam::usage(s, used as u64)
                })
                .collect();
            Ok(NetworkDetail {
                name: n.spec.name.to_string(),
                bridge: n.spec.bridge.to_string(),
                subnets: n.spec.subnets.clone(),
                mtu: n.spec.mtu,
                internal: n.spec.internal,
                masquerade: n.spec.masquerade,
                icc: n.spec.icc,
                state: n.state.name().to_string(),
                endpoints: views,
                usage,
            })
        })
    }

    /// Removes a network; refuses while endpoints exist unless `force`, which disconnects them.
    pub fn network_rm(&mut self, name: &NetName, force: bool) -> Result<(), EngineError> {
        let (n, endpoints) = self.store.read(|tx| {
            Ok::<_, EngineError>((load_network(tx, name)?, tx.endpoints_of_network(name)?))
        })?;
        if !endpoints.is_empty() && !force {
            let list: Vec<String> = endpoints.iter().map(|e| e.netns.clone()).collect();
            return Err(EngineError::Conflict(format!(
                "network {name} still has {} endpoint(s) ({}); disconnect them or use --force",
                endpoints.len(),
                list.join(", ")
            )));
        }
        for e in &endpoints {
            self.disconnect(name, &ns_ref(&e.netns))?;
        }
        let errors = teardown(&mut self.kernel, &plan::remove_network(&n.spec));
        if !errors.is_empty() {
            return Err(EngineError::Teardown {
                op: format!("remove network {name}"),
                errors,
            });
        }
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            tx.delete_network(name)?;
            if tx.networks()?.is_empty() {
                // The tables go with the last network.
                kernel.fw_remove()?;
            }
            Ok::<_, EngineError>(())
        })
    }

    /// Attaches a namespace to a network: veth with the peer made inside the namespace, host end
    /// on the bridge, addresses from IPAM (or the requested ones), default route when primary.
    pub fn connect(&mut self, req: ConnectRequest) -> Result<EndpointView, EngineError> {
        let what = format!("connect netns {} to network {}", req.netns, req.network);
        self.connect_with(&req, &ConnectPolicy::default())
            .map_err(|e| e.during(what))
    }

    /// `connect` with the allocation ranges and routes a face asks for (CNI).
    pub(crate) fn connect_with(
        &mut self,
        req: &ConnectRequest,
        policy: &ConnectPolicy,
    ) -> Result<EndpointView, EngineError> {
        if !self.kernel.netns_exists(&req.netns) {
            return Err(EngineError::not_found("netns", &req.netns));
        }
        self.revive_network(&req.network)?;
        let netns = ns_key(&req.netns);
        let (pid, boot) = (self.pid, self.boot_id.clone());
        let mappings = crate::ports::expand(&req.publish);
        let kernel = &mut self.kernel;
        let (net, row, id, default_via) = self.store.write(|tx| {
            let net = load_network(tx, &req.network)?;
            if net.state != RowState::Ready {
                return Err(EngineError::Conflict(format!(
                    "network {} is still being created",
                    req.network
                )));
            }
            let in_ns = tx.endpoints_in_netns(&netns)?;
            if let Some(e) = in_ns.iter().find(|e| e.network == req.network) {
                return Err(EngineError::Conflict(format!(
                    "netns {netns} is already connected to network {} as {}",
                    req.network, e.ifname
                )));
            }
            let ifname = match &req.ifname {
                Some(i) => {
                    if let Some(e) = in_ns.iter().find(|e| e.ifname == *i) {
                        return Err(EngineError::Conflict(format!(
                            "interface {i} in netns {netns} is already used by network {}",
                            e.network
                        )));
                    }
                    i.clone()
                }
                None => next_ifname(&in_ns),
            };
            let addrs = allocate(tx, &net.spec, &req.ips, &policy.ranges)?;
            let mac = req.mac.or_else(|| {
                addrs.iter().find_map(|a| match a.addr() {
                    IpAddr::V4(v4) => Some(Mac::from_ipv4(v4)),
                    IpAddr::V6(_) => None,
                })
            });
            let becomes_primary =
                policy.routes.is_none() && !net.spec.internal && primary_in(tx, &in_ns)?.is_none();
            let default_via: Vec<IpAddr> = if becomes_primary {
                net.spec
                    .subnets
                    .iter()
                    .filter(|s| addrs.iter().any(|a| s.cidr.contains(&a.addr())))
                    .map(|s| s.gateway)
                    .collect()
            } else {
                Vec::new()
            };
            let new = NewEndpoint {
                network: req.network.clone(),
                netns: netns.clone(),
                host_ifname: host_veth(&req.network, &netns, &ifname),
                ifname,
                mac,
                addrs,
                container_id: req.container_id.clone(),
                pid,
                boot_id: boot.clone(),
            };
            let ips: Vec<IpAddr> = new.addrs.iter().map(IpNet::addr).collect();
            crate::ports::check_new(tx, kernel, &net.spec, &ips, &netns, &mappings)?;
            let id = tx.insert_endpoint(&new).map_err(|e| {
                if e.is_conflict() {
                    EngineError::Conflict(format!(
                        "another endpoint took interface {} or an address concurrently: {e}",
                        new.ifname
                    ))
                } else {
                    e.into()
                }
            })?;
            tx.insert_ports(id, &mappings)?;
            Ok((net, new, id, default_via))
        })?;
        let layout = EndpointLayout {
            ns: req.netns.clone(),
            ifname: row.ifname.clone(),
            host_ifname: row.host_ifname.clone(),
            mac: row.mac,
            addrs: row.addrs.clone(),
            default_via,
        };
        let stored = EndpointRow {
            id,
            network: row.network.clone(),
            netns: netns.clone(),
            ifname: row.ifname.clone(),
            host_ifname: row.host_ifname.clone(),
            mac: row.mac,
            addrs: row.addrs.clone(),
            container_id: row.container_id.clone(),
            state: RowState::Creating,
            pid,
            boot_id: boot.clone(),
            created_at: 0,
        };
        let mut fw = firewall::endpoint_elements(&net.spec, row.host_ifname.as_str());
        fw.extend(crate::ports::elements(&stored, &mappings));
        let mut ops = plan::connect(&net.spec, &layout, fw);
        ops.extend(policy.route_ops(&layout));
        if let Err(err) = apply_all(&mut self.kernel, &ops) {
            self.store.write(|tx| tx.delete_endpoint(id))?;
            if err.kind == FailKind::Exists && err.what.starts_with("create veth") {
                return Err(EngineError::Conflict(format!(
                    "interface {} already exists in netns {} (choose another with --ifname), or host interface {} exists (run `nsnet gc`)",
                    row.ifname, netns, row.host_ifname
                )));
            }
            return Err(err.into());
        }
        self.store.write(|tx| tx.set_endpoint_ready(id))?;
        let view = self.store.read(|tx| {
            let in_ns = tx.endpoints_in_netns(&netns)?;
            let e = in_ns
                .iter()
                .find(|e| e.id == id)
                .ok_or_else(|| EngineError::not_found("endpoint", &netns))?;
            Ok::<_, EngineError>(endpoint_view(tx, e, primary_in(tx, &in_ns)?)?)
        })?;
        Ok(view)
    }

    /// After a reboot a network's bridge and firewall elements are gone while its definition
    /// persists, and its endpoints' rows describe veths that died with the old kernel: recreate
    /// the network's kernel objects and release those endpoints, on first use.
    pub(crate) fn revive_network(&mut self, name: &NetName) -> Result<(), EngineError> {
        let boot = self.boot_id.clone();
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            let net = load_network(tx, name)?;
            if net.state != RowState::Ready || net.boot_id == boot {
                return Ok(());
            }
            for e in tx.endpoints_of_network(name)? {
                if e.boot_id != boot {
                    tx.delete_endpoint(e.id)?;
                }
            }
            kernel.fw_ensure()?;
            apply_all(kernel, &plan::create_network(&net.spec)).map_err(|e| {
                EngineError::from(e).during(format!("recreate network {name} after a reboot"))
            })?;
            tx.set_network_boot(name, &boot)?;
            Ok::<_, EngineError>(())
        })
    }

    /// Detaches a namespace from a network; idempotent for the kernel side (a namespace deleted
    /// by hand took its veth with it). When the primary endpoint leaves, the next one gets the
    /// default routes.
    pub fn disconnect(&mut self, network: &NetName, netns: &NsRef) -> Result<(), EngineError> {
        let key = ns_key(netns);
        let (ep, promote, fw) = self.store.read(|tx| {
            let in_ns = tx.endpoints_in_netns(&key)?;
            let ep = in_ns
                .iter()
                .find(|e| e.network == *network)
                .cloned()
                .ok_or_else(|| EngineError::NotFound {
                    kind: "endpoint",
                    name: format!("of netns {key} on network {network}"),
                })?;
            let mut promote = None;
            if primary_in(tx, &in_ns)? == Some(ep.id) {
                let rest: Vec<EndpointRow> = in_ns.into_iter().filter(|e| e.id != ep.id).collect();
                if let Some(next) =
                    primary_in(tx, &rest)?.and_then(|id| rest.into_iter().find(|e| e.id == id))
                {
                    let net = load_network(tx, &next.network)?;
                    let gws: Vec<IpAddr> = net
                        .spec
                        .subnets
                        .iter()
                        .filter(|s| next.ips().any(|ip| s.cidr.contains(&ip)))
                        .map(|s| s.gateway)
                        .collect();
                    promote = Some((next.ifname.clone(), gws));
                }
            }
            let fw = endpoint_firewall(tx, &ep)?;
            Ok::<_, EngineError>((ep, promote, fw))
        })?;
        let ops = plan::disconnect(
            &ep.host_ifname,
            fw,
            promote.as_ref().map(|(i, g)| (netns, i, g.as_slice())),
        );
        // Firewall elements and the veth first; then the row; then the new primary's routes.
        let split = ops
            .iter()
            .position(|op| matches!(op, nsnet_core::ops::KernelOp::DeleteLink { .. }))
            .map_or(ops.len(), |i| i + 1);
        let mut errors = teardown(&mut self.kernel, &ops[..split]);
        if errors.is_empty() {
            self.store.write(|tx| tx.delete_endpoint(ep.id))?;
            // The default routes of a new primary are best-effort: the namespace may be gone.
            if self.kernel.netns_exists(netns) {
                errors.extend(teardown(&mut self.kernel, &ops[split..]));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Teardown {
                op: format!("disconnect netns {key} from network {network}"),
                errors,
            })
        }
    }
}

/// The firewall elements an endpoint owns: its own and its published ports'.
pub(crate) fn endpoint_firewall(
    tx: &Tx<'_>,
    ep: &EndpointRow,
) -> Result<Vec<nsnet_core::firewall::FwElem>, EngineError> {
    let net = load_network(tx, &ep.network)?;
    let mut fw = firewall::endpoint_elements(&net.spec, ep.host_ifname.as_str());
    let ports: Vec<_> = tx
        .ports(Some(ep.id))?
        .into_iter()
        .map(|p| p.mapping)
        .collect();
    fw.extend(crate::ports::elements(ep, &ports));
    Ok(fw)
}

/// `eth0`, `eth1`, ...: the lowest not used by another endpoint of the namespace.
fn next_ifname(in_ns: &[EndpointRow]) -> IfName {
    (0..)
        .map(|i| IfName::new(&format!("eth{i}")).expect("valid"))
        .find(|n| !in_ns.iter().any(|e| e.ifname == *n))
        .expect("a free name exists")
}

/// One address per subnet: the requested one in that subnet, else the lowest free.
fn allocate(
    tx: &Tx<'_>,
    spec: &NetworkSpec,
    requested: &[IpAddr],
    ranges: &[ipam::Range],
) -> Result<Vec<IpNet>, EngineError> {
    for ip in requested {
        if spec.subnet_of(*ip).is_none() {
            return Err(CoreError::Address {
                network: spec.name.to_string(),
                ip: *ip,
                reason: format!(
                    "is outside the network's subnets ({})",
                    spec.subnets
                        .iter()
                        .map(|s| s.cidr.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
            .into());
        }
    }
    let mut out = Vec::with_capacity(spec.subnets.len());
    for s in &spec.subnets {
        let range = ranges.iter().find(|r| s.cidr.contains(&r.start));
        let mut mine = requested.iter().filter(|ip| s.cidr.contains(*ip));
        // Index lookups only: the cost does not grow with the addresses the network holds.
        let ip = match (mine.next(), mine.next()) {
            (Some(_), Some(_)) => {
                return Err(EngineError::Conflict(format!(
                    "more than one --ip requested in subnet {} of network {}",
                    s.cidr, spec.name
                )));
            }
            (Some(ip), None) => {
                let in_use = tx.addr_in_use(&spec.name, *ip)?;
                ipam::request_in(&spec.name, s, *ip, range, in_use)?
            }
            (None, _) => {
                let from = ipam::search_start(&spec.name, s, range)?;
                let free = tx.lowest_free(&spec.name, &s.cidr, from)?;
                ipam::allocated(&spec.name, s, range, free)?
            }
        };
        out.push(IpNet::new(ip, s.cidr.prefix_len()).expect("prefix of a valid subnet"));
    }
    Ok(out)
}
