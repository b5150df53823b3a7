//! Networks (bridges with subnets) and endpoints (a namespace attached to a network).

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::endpoint::{self, ConnectFacts, ConnectPlan, NsEndpoint, RoutePolicy};
use nsnet_core::firewall::{self, FwChange};
use nsnet_core::model::{Mac, NetworkSpec, overlaps};
use nsnet_core::names::{IfName, NetName};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::plan;
use nsnet_core::port::{PortMapping, PortSpec};
use nsnet_core::{CoreError, ipam};
use nsnet_store::{EndpointRow, NetworkRow, NewEndpoint, RowState, StoreError, Tx};
use nsnet_sys::kernel::{FailKind, Kernel};

use crate::apply::{apply_all, apply_ops};
use crate::conflict::Conflict;
use crate::primary::primary;
use crate::views::{EndpointView, NetworkDetail, NetworkSummary};
use crate::{Engine, EngineError};

/// A connect recorded in the store, to apply.
pub(crate) struct Recorded {
    pub(crate) id: i64,
    pub(crate) plan: ConnectPlan,
    pub(crate) primary: bool,
    /// The network answers names over DNS.
    pub(crate) dns: bool,
}

/// How a connect differs from the CLI's; the default is the CLI's behaviour.
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnectPolicy {
    /// The routes the endpoint gets.
    pub routes: RoutePolicy,
    /// Allocation windows, at most one per subnet.
    pub ranges: Vec<ipam::Range>,
    /// The owner wants no default routes through this endpoint (netavark's
    /// `no_default_route`): it never becomes its namespace's primary endpoint.
    pub no_default_route: bool,
}

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
    /// Names the endpoint answers to over DNS besides its namespace's (`--alias`).
    pub aliases: Vec<String>,
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

/// What `network inspect` shows of a network.
fn detail(
    spec: &NetworkSpec,
    state: RowState,
    endpoints: Vec<EndpointView>,
    usage: Vec<ipam::Usage>,
) -> NetworkDetail {
    NetworkDetail {
        name: spec.name().to_string(),
        driver: spec.driver().to_string(),
        bridge: spec.bridge().to_string(),
        subnets: spec.subnets().to_vec(),
        mtu: spec.mtu(),
        internal: spec.internal(),
        masquerade: spec.masquerade(),
        icc: spec.icc(),
        routed: spec.routed(),
        dns: spec.dns(),
        vni: spec.vni(),
        state: state.name().to_string(),
        endpoints,
        usage,
    }
}

/// The names an endpoint answers to over DNS: its namespace's, then its aliases.
fn dns_names(netns: &str, aliases: &[String]) -> Vec<String> {
    let mut names = vec![netns.to_string()];
    names.extend(aliases.iter().filter(|a| *a != netns).cloned());
    names
}

pub(crate) fn endpoint_view(
    tx: &Tx<'_>,
    e: &EndpointRow,
    primary_id: Option<i64>,
) -> Result<EndpointView, StoreError> {
    let dns = tx.network(&e.network)?.is_some_and(|n| n.spec.dns());
    Ok(EndpointView {
        names: if dns {
            dns_names(&e.netns, &tx.aliases(e.id)?)
        } else {
            Vec::new()
        },
        network: e.network.to_string(),
        netns: e.netns.clone(),
        ifname: e.ifname.to_string(),
        host_ifname: e.host_ifname.to_string(),
        mac: e.mac.map(|m| m.to_string()),
        addrs: e.addrs.clone(),
        primary: primary_id == Some(e.id),
        no_default_route: e.no_default_route,
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
    // An endpoint attached without default routes is skipped like an internal one.
    let mut internal = BTreeSet::new();
    for e in endpoints {
        if e.no_default_route || tx.network(&e.network)?.is_some_and(|n| n.spec.internal()) {
            internal.insert(e.id);
        }
    }
    Ok(primary(endpoints, |e| internal.contains(&e.id)))
}

impl<K: Kernel> Engine<K> {
    /// Creates a network: bridge, gateway addresses, up. Refuses names, bridges and subnets
    /// that clash with another nsnet network or a route already on the host.
    pub fn network_create(&mut self, req: NetworkRequest) -> Result<NetworkDetail, EngineError> {
        self.create_network(req.spec, false)
    }

    /// `network_create`, recording whether a configuration owns the network (see `ensure`).
    pub(crate) fn create_network(
        &mut self,
        spec: NetworkSpec,
        owned_by_config: bool,
    ) -> Result<NetworkDetail, EngineError> {
        let what = format!("create network {}", spec.name());
        // Only the routes that overlap the new subnets: a full view would dump every link,
        // address and qdisc of the host, which grows with its containers.
        let cidrs: Vec<IpNet> = spec.subnets().iter().map(|s| s.cidr).collect();
        let host_routes = self.kernel.routes_overlapping(&NsRef::Host, &cidrs)?;
        let (pid, boot) = (self.pid, self.boot_id.clone());
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            if tx.network(spec.name())?.is_some() {
                return Err(EngineError::Exists {
                    kind: "network",
                    name: spec.name().to_string(),
                });
            }
            for other in tx.networks()? {
                if other.spec.bridge() == spec.bridge() {
                    return Err(Conflict::BridgeUsed {
                        bridge: spec.bridge().clone(),
                        network: other.spec.name().clone(),
                    }
                    .into());
                }
                if let Some((s, o)) = spec.overlap(&other.spec) {
                    return Err(CoreError::Subnet {
                        network: spec.name().to_string(),
                        subnet: s.cidr,
                        reason: format!(
                            "overlaps subnet {} of network {}",
                            o.cidr,
                            other.spec.name()
                        ),
                    }
                    .into());
                }
            }
            for s in spec.subnets() {
                if let Some(r) = host_routes.iter().find(|r| overlaps(&r.dest, &s.cidr)) {
                    return Err(CoreError::Subnet {
                        network: spec.name().to_string(),
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
            if owned_by_config {
                tx.set_network_cni_owned(spec.name())?;
            }
            // Under the write lock: two processes never install the skeleton twice.
            kernel.fw_ensure()?;
            Ok(())
        })?;
        if let Err(err) = apply_all(&mut self.kernel, &plan::create_network(&spec)) {
            let _ = self.store.write(|tx| tx.delete_network(spec.name()));
            let err: EngineError = if err.kind == FailKind::Exists {
                Conflict::BridgeOnHost {
                    bridge: spec.bridge().clone(),
                }
                .into()
            } else {
                err.into()
            };
            return Err(err.during(what));
        }
        self.store.write(|tx| tx.set_network_ready(spec.name()))?;
        // Built from the spec just recorded rather than read back: a new network has no
        // endpoints, and the read would compile and run the inspect's statements for nothing.
        let usage = spec.subnets().iter().map(|s| ipam::usage(s, 0)).collect();
        Ok(detail(&spec, RowState::Ready, Vec::new(), usage))
    }

    /// All networks.
    pub fn network_ls(&mut self) -> Result<Vec<NetworkSummary>, EngineError> {
        self.store.read(|tx| {
            tx.networks()?
                .into_iter()
                .map(|n| {
                    Ok(NetworkSummary {
                        endpoints: tx.endpoints_of_network(n.spec.name())?.len(),
                        name: n.spec.name().to_string(),
                        driver: n.spec.driver().to_string(),
                        bridge: n.spec.bridge().to_string(),
                        subnets: n.spec.subnets().iter().map(|s| s.cidr).collect(),
                        internal: n.spec.internal(),
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
                .subnets()
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
            Ok(detail(&n.spec, n.state, views, usage))
        })
    }

    /// Removes a network; refuses while endpoints exist unless `force`, which disconnects them.
    pub fn network_rm(&mut self, name: &NetName, force: bool) -> Result<(), EngineError> {
        self.remove_network(name, force)
    }

    /// Attaches a namespace to a network: veth with the peer made inside the namespace, host end
    /// on the bridge, addresses from IPAM (or the requested ones), default route when primary.
    pub fn connect(&mut self, req: ConnectRequest) -> Result<EndpointView, EngineError> {
        let what = format!("connect netns {} to network {}", req.netns, req.network);
        self.connect_with(&req, &ConnectPolicy::default())
            .map_err(|e| e.during(what))
    }

    /// `connect` with the allocation ranges and routes an attachment asks for. One write
    /// transaction records the endpoint (decided by the pure planner from the facts it
    /// loads), the kernel work follows, and a second marks it ready.
    pub(crate) fn connect_with(
        &mut self,
        req: &ConnectRequest,
        policy: &ConnectPolicy,
    ) -> Result<EndpointView, EngineError> {
        let mappings = crate::ports::expand(&req.publish);
        let Recorded {
            id,
            plan,
            primary,
            dns,
        } = self.record_and_make(req, policy, &mappings, None)?;
        self.store.write(|tx| tx.set_endpoint_ready(id))?;
        let l = plan.layout;
        Ok(EndpointView {
            network: req.network.to_string(),
            netns: ns_key(&req.netns),
            ifname: l.ifname.to_string(),
            host_ifname: l.host_ifname.to_string(),
            mac: l.mac.map(|m| m.to_string()),
            addrs: l.addrs,
            primary,
            no_default_route: policy.no_default_route,
            state: RowState::Ready.name().to_string(),
            container_id: req.container_id.clone(),
            ports: mappings,
            names: if dns {
                dns_names(&ns_key(&req.netns), &req.aliases)
            } else {
                Vec::new()
            },
        })
    }

    /// A connect up to its ready mark: the checks, the record (remaking the network first when
    /// its kernel objects died with an earlier boot), then the kernel work; a failure deletes
    /// the row again. With `fw`, the plan's firewall changes are left there for the caller's
    /// one transaction (a batch) instead of applied.
    pub(crate) fn record_and_make(
        &mut self,
        req: &ConnectRequest,
        policy: &ConnectPolicy,
        mappings: &[PortMapping],
        fw: Option<&mut Vec<FwChange>>,
    ) -> Result<Recorded, EngineError> {
        for alias in &req.aliases {
            nsnet_core::dnsname::check_alias(alias)?;
        }
        if !self.kernel.netns_exists(&req.netns) {
            return Err(EngineError::not_found("netns", &req.netns));
        }
        let mut recorded = match self.record_connect(req, policy, mappings)? {
            Some(recorded) => recorded,
            None => {
                self.revive_network(&req.network)?;
                self.record_connect(req, policy, mappings)?.ok_or_else(|| {
                    Conflict::NetworkRevived {
                        network: req.network.clone(),
                    }
                })?
            }
        };
        if let Some(fw) = fw {
            let ops = std::mem::take(&mut recorded.plan.ops);
            for op in ops {
                match op {
                    KernelOp::Firewall(changes) => fw.extend(changes),
                    op => recorded.plan.ops.push(op),
                }
            }
        }
        if let Err(failed) = apply_ops(&mut self.kernel, &recorded.plan.ops) {
            self.store.write(|tx| tx.delete_endpoint(recorded.id))?;
            let veth = matches!(recorded.plan.ops[failed.op], KernelOp::CreateVeth { .. });
            if veth && failed.err.kind == FailKind::Exists {
                let l = recorded.plan.layout;
                return Err(Conflict::InterfaceExists {
                    ifname: l.ifname,
                    netns: ns_key(&req.netns),
                    host_ifname: l.host_ifname,
                }
                .into());
            }
            return Err(failed.err.into());
        }
        Ok(recorded)
    }

    /// The one write transaction of a connect: loads the facts, asks the planner, records the
    /// endpoint (`creating`) and its ports. None when the network is from an earlier boot.
    pub(crate) fn record_connect(
        &mut self,
        req: &ConnectRequest,
        policy: &ConnectPolicy,
        mappings: &[PortMapping],
    ) -> Result<Option<Recorded>, EngineError> {
        let netns = ns_key(&req.netns);
        let (pid, boot) = (self.pid, self.boot_id.clone());
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            let net = load_network(tx, &req.network)?;
            if net.state != RowState::Ready {
                return Err(Conflict::NetworkInFlux {
                    network: req.network.clone(),
                    removing: net.state == RowState::Removing,
                }
                .into());
            }
            if net.boot_id != boot {
                return Ok(None);
            }
            let mut in_ns = Vec::new();
            for e in tx.endpoints_in_netns(&netns)? {
                // An endpoint without default routes counts as internal: it carries none.
                let internal = e.no_default_route
                    || tx.network(&e.network)?.is_some_and(|n| n.spec.internal());
                in_ns.push(NsEndpoint {
                    network: e.network,
                    ifname: e.ifname,
                    internal,
                });
            }
            let ifname = endpoint::interface(&netns, &req.network, &in_ns, req.ifname.as_ref())?;
            let addrs = allocate(tx, &net.spec, &req.ips, &policy.ranges)?;
            let mac = crate::mac::endpoint_mac(tx, net.spec.name(), req.mac, &addrs)?;
            let ips: Vec<IpAddr> = addrs.iter().map(IpNet::addr).collect();
            crate::ports::check_new(tx, kernel, &net.spec, &ips, &netns, mappings)?;
            let plan = endpoint::plan_connect(&ConnectFacts {
                net: &net.spec,
                ns: req.netns.clone(),
                in_ns: &in_ns,
                ifname,
                addrs,
                mac,
                routes: &policy.routes,
                publish: mappings,
            });
            let new = NewEndpoint {
                network: req.network.clone(),
                netns: netns.clone(),
                host_ifname: plan.layout.host_ifname.clone(),
                ifname: plan.layout.ifname.clone(),
                mac: plan.layout.mac,
                addrs: plan.layout.addrs.clone(),
                container_id: req.container_id.clone(),
                no_default_route: policy.no_default_route,
                pid,
                boot_id: boot.clone(),
            };
            let id = tx.insert_endpoint(&new).map_err(|e| {
                if e.is_conflict() {
                    EngineError::from(Conflict::TakenConcurrently {
                        ifname: new.ifname.clone(),
                        cause: e.to_string(),
                    })
                } else {
                    e.into()
                }
            })?;
            tx.insert_ports(id, mappings)?;
            tx.insert_aliases(id, &req.aliases)?;
            // The primary rule as `inspect` applies it, whatever routes the face asked for.
            let primary = !net.spec.internal()
                && !policy.no_default_route
                && !in_ns.iter().any(|e| !e.internal);
            Ok(Some(Recorded {
                id,
                plan,
                primary,
                dns: net.spec.dns(),
            }))
        })
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
        let ep = self
            .store
            .read(|tx| tx.endpoint(network, &key))?
            .ok_or_else(|| EngineError::NotFound {
                kind: "endpoint",
                name: format!("of netns {key} on network {network}"),
            })?;
        self.remove_endpoint(ep.id, true)
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
                network: spec.name().to_string(),
                ip: *ip,
                reason: format!(
                    "is outside the network's subnets ({})",
                    spec.subnets()
                        .iter()
                        .map(|s| s.cidr.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
            .into());
        }
    }
    let mut out = Vec::with_capacity(spec.subnets().len());
    for s in spec.subnets() {
        let range = ranges.iter().find(|r| s.cidr.contains(&r.start));
        let mut mine = requested.iter().filter(|ip| s.cidr.contains(*ip));
        // Index lookups only: the cost does not grow with the addresses the network holds.
        let ip = match (mine.next(), mine.next()) {
            (Some(_), Some(_)) => {
                return Err(Conflict::AddressesInOneSubnet {
                    subnet: s.cidr,
                    network: spec.name().clone(),
                }
                .into());
            }
            (Some(ip), None) => {
                let in_use = tx.addr_in_use(spec.name(), *ip)?;
                ipam::request_in(spec.name(), s, *ip, range, in_use)?
            }
            (None, _) => {
                let from = ipam::search_start(spec.name(), s, range)?;
                let free = tx.lowest_free(spec.name(), &s.cidr, from)?;
                ipam::allocated(spec.name(), s, range, free)?
            }
        };
        out.push(IpNet::new(ip, s.cidr.prefix_len()).expect("prefix of a valid subnet"));
    }
    Ok(out)
}
