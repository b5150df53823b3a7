//! Checks of the kernel against the store: whether an endpoint is as nsnet made it (switch,
//! host end, interface, addresses, MAC, routes, firewall elements), and whether a network's
//! firewall can take new endpoints. Read-only: they report, `repair` and `gc` fix.

use nsnet_core::endpoint::{RoutePolicy, StaticRoute};
use nsnet_core::firewall::{self, FwElem, FwKey};
use nsnet_core::model::NetworkSpec;
use nsnet_core::names::NetName;
use nsnet_core::ops::NsRef;
use nsnet_core::plan::default_dest;
use nsnet_core::shaping::Shaping;
use nsnet_store::{EndpointRow, RowState};
use nsnet_sys::kernel::{IfaceView, Kernel, NsView};

use crate::attachment::OwnerKey;
use crate::network::{endpoint_firewall, endpoint_view, ns_key, primary_in};
use crate::views::EndpointView;
use crate::{Engine, EngineError};

/// Which endpoint of a network to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// The endpoint of this namespace.
    Netns(NsRef),
    /// The attachment `key`, expected in namespace `netns` (checked there).
    Owner { key: OwnerKey, netns: NsRef },
}

/// An endpoint to verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyRequest {
    pub network: NetName,
    pub endpoint: Which,
    /// The routes it should have: `Primary`, the default routes when it is its namespace's
    /// primary endpoint; `Explicit`, these (the owner's configuration holds them, the store
    /// does not).
    pub routes: RoutePolicy,
}

/// Something about an endpoint that differs from what nsnet made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("the attachment is in netns {stored}, not in {expected}")]
    OtherNetns { stored: String, expected: NsRef },
    #[error("the attachment is still being created")]
    NotReady,
    #[error("bridge {0} is missing")]
    BridgeMissing(String),
    #[error("bridge {0} is down")]
    BridgeDown(String),
    #[error("vxlan device {0} of the overlay is missing")]
    OverlayDeviceMissing(String),
    /// A remote host of the overlay whose entries are missing or wrong on the device;
    /// `repair` restores it.
    #[error("network {network}: overlay peer {peer}; `nsnet repair` restores it")]
    OverlayPeerMissing { network: String, peer: String },
    #[error("bridge {bridge} lacks gateway address {addr}")]
    GatewayMissing { bridge: String, addr: ipnet::IpNet },
    #[error("host interface {0} is missing")]
    HostEndMissing(String),
    #[error("host interface {ifname} is not a port of {bridge}")]
    NotAPort { ifname: String, bridge: String },
    #[error("host interface {0} is down")]
    HostEndDown(String),
    /// The endpoint's veth pair deleted by hand (either end takes the other) while its
    /// namespace stays; `repair` makes it again as recorded.
    #[error(
        "veth {host_ifname} / {ifname} in netns {netns} is gone; `nsnet repair` makes it again"
    )]
    VethGone {
        host_ifname: String,
        ifname: String,
        netns: String,
    },
    #[error("interface {ifname} is missing in netns {netns}")]
    InterfaceMissing { ifname: String, netns: NsRef },
    #[error("address {addr} is missing on {ifname}")]
    AddressMissing { addr: ipnet::IpNet, ifname: String },
    #[error("{ifname} has MAC {}, nsnet assigned {assigned}", .have.as_deref().unwrap_or("none"))]
    MacDiffers {
        ifname: String,
        have: Option<String>,
        assigned: String,
    },
    #[error("route {} via {} dev {ifname} is missing", .route.dest, .route.via)]
    RouteMissing { route: StaticRoute, ifname: String },
    #[error("netns {0} does not exist")]
    NetnsMissing(NsRef),
    /// A rate limit (or other shaping) nsnet recorded is not on the interface; `repair`
    /// restores it.
    #[error("{ifname} in netns {netns} is shaped {}, nsnet set {want}", .have.map_or("none".to_string(), |h| h.to_string()))]
    ShapingDiffers {
        ifname: String,
        netns: String,
        want: Shaping,
        have: Option<Shaping>,
    },
    /// A firewall element (rendered) of the network or the endpoint; `repair` restores it.
    #[error("firewall element {0} is missing")]
    FirewallElementMissing(String),
}

/// An endpoint and what differs from what nsnet made (empty when healthy).
#[derive(Debug, Clone)]
pub struct Verified {
    pub endpoint: EndpointView,
    pub problems: Vec<Problem>,
}

/// Whether a network's firewall can take new endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirewallHealth {
    Ready,
    /// Nothing can be attached: the firewall cannot be used (e.g. no nf_tables).
    Unusable {
        cause: String,
    },
    /// Endpoints may have limited connectivity: an element of the network is missing (e.g.
    /// someone flushed the ruleset); `repair` restores it.
    Degraded {
        missing: String,
    },
}

fn iface<'a>(ifaces: &'a [IfaceView], name: &str) -> Option<&'a IfaceView> {
    ifaces.iter().find(|i| i.name == name)
}

/// A network's switch in the host's interfaces against its spec: the bridge present, up and
/// holding its gateways; an overlay's device present (its peers are compared apart, and only
/// when it is). What `inspect --check` says of every endpoint and `doctor` of every network.
pub(crate) fn switch_problems(spec: &NetworkSpec, host: &[IfaceView]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let bridge = spec.bridge().to_string();
    match iface(host, &bridge) {
        None => problems.push(Problem::BridgeMissing(bridge)),
        Some(b) => {
            if !b.up {
                problems.push(Problem::BridgeDown(bridge.clone()));
            }
            for s in spec.subnets() {
                if !b.addrs.contains(&s.gateway_cidr()) {
                    problems.push(Problem::GatewayMissing {
                        bridge: bridge.clone(),
                        addr: s.gateway_cidr(),
                    });
                }
            }
        }
    }
    if let Some(dev) = spec.overlay_dev()
        && iface(host, &dev).is_none()
    {
        problems.push(Problem::OverlayDeviceMissing(dev));
    }
    problems
}

/// An endpoint's host end `veth` (the host's interface of that name, if any) against its
/// network's switch: present, a port of the bridge, up. What `inspect --check` says of every
/// endpoint and `doctor` of every ready one.
pub(crate) fn port_problems(
    spec: &NetworkSpec,
    veth: &str,
    have: Option<&IfaceView>,
) -> Vec<Problem> {
    let Some(v) = have else {
        return vec![Problem::HostEndMissing(veth.to_string())];
    };
    let mut problems = Vec::new();
    // A switch that makes its ports the kernel's slaves says which master they have; an
    // Open vSwitch port has none on the userspace datapath.
    if let Some(master) = nsnet_core::switch::of(spec).port_master(spec)
        && v.master.as_deref() != Some(master.as_str())
    {
        problems.push(Problem::NotAPort {
            ifname: veth.to_string(),
            bridge: spec.bridge().to_string(),
        });
    }
    if !v.up {
        problems.push(Problem::HostEndDown(veth.to_string()));
    }
    problems
}

/// Whether endpoint `ep`'s veth pair is gone while its namespace stays: no host end
/// (`host_end`: whether the host has it) and no interface of its name among the namespace's
/// (`inside`: their names, None when the namespace is gone: then the endpoint is `gc`'s).
/// What `inspect --check` says of an endpoint, `doctor` of every ready one and `repair`
/// makes again.
pub(crate) fn veth_gone(
    ep: &EndpointRow,
    host_end: bool,
    inside: Option<&[String]>,
) -> Option<Problem> {
    let inside = inside?;
    (!host_end && !inside.iter().any(|i| i == ep.ifname.as_str())).then(|| Problem::VethGone {
        host_ifname: ep.host_ifname.to_string(),
        ifname: ep.ifname.to_string(),
        netns: ep.netns.clone(),
    })
}

/// The routes an endpoint should have: a primary endpoint's default routes through the
/// gateways of its subnets, or the ones given.
fn expected_routes(
    policy: &RoutePolicy,
    net: &NetworkSpec,
    endpoint: &EndpointView,
) -> Vec<StaticRoute> {
    match policy {
        RoutePolicy::Explicit(routes) => routes.clone(),
        RoutePolicy::Primary if !endpoint.primary => Vec::new(),
        RoutePolicy::Primary => net
            .subnets()
            .iter()
            .filter(|s| endpoint.addrs.iter().any(|a| s.cidr.contains(&a.addr())))
            .map(|s| StaticRoute {
                dest: default_dest(s.gateway),
                via: s.gateway,
            })
            .collect(),
    }
}

impl<K: Kernel> Engine<K> {
    /// Compares the kernel (bridge, host end, interface, addresses, MAC, routes, firewall
    /// elements) with what the store says of one endpoint. Errors when the network or the
    /// endpoint is unknown.
    pub fn verify_endpoint(&mut self, req: &VerifyRequest) -> Result<Verified, EngineError> {
        let net = self
            .store
            .read(|tx| tx.network(&req.network))?
            .ok_or_else(|| EngineError::not_found("network", &req.network))?;
        let (ep, netns) = self.endpoint_to_verify(req)?;
        let mut problems = Vec::new();
        if ep.netns != ns_key(&netns) {
            problems.push(Problem::OtherNetns {
                stored: ep.netns.clone(),
                expected: netns.clone(),
            });
        }
        if ep.state != RowState::Ready {
            problems.push(Problem::NotReady);
        }
        let host = self.kernel.view(&NsRef::Host)?;
        problems.extend(switch_problems(&net.spec, &host.interfaces));
        if let Some(dev) = net.spec.overlay_dev()
            && iface(&host.interfaces, &dev).is_some()
        {
            problems.extend(self.overlay_peer_drift(&net.spec)?.into_iter().map(|peer| {
                Problem::OverlayPeerMissing {
                    network: net.spec.name().to_string(),
                    peer,
                }
            }));
        }
        let veth = iface(&host.interfaces, ep.host_ifname.as_str());
        // One view of the namespace, for both the pair's presence and what is inside it.
        let inside_view = match self.kernel.netns_exists(&netns) {
            true => Some(self.kernel.view(&netns)?),
            false => None,
        };
        let inside = inside_view.as_ref().map(|v| {
            v.interfaces
                .iter()
                .map(|i| i.name.clone())
                .collect::<Vec<_>>()
        });
        // A pair gone is one line saying what makes it again, not a line per missing part.
        let gone = veth_gone(&ep, veth.is_some(), inside.as_deref());
        match &gone {
            Some(p) => problems.push(p.clone()),
            None => problems.extend(port_problems(&net.spec, ep.host_ifname.as_str(), veth)),
        }
        if let Some(v) = veth {
            problems.extend(self.verify_shaping(&NsRef::Host, v)?);
        }
        let endpoint = self.store.read(|tx| {
            let in_ns = tx.endpoints_in_netns(&ep.netns)?;
            Ok::<_, EngineError>(endpoint_view(tx, &ep, primary_in(tx, &in_ns)?)?)
        })?;
        if let Some(view) = &inside_view {
            let routes = expected_routes(&req.routes, &net.spec, &endpoint);
            let found = self.verify_inside(&ep, &netns, view, &routes)?;
            problems.extend(found.into_iter().filter(|p| {
                gone.is_none()
                    || !matches!(
                        p,
                        Problem::InterfaceMissing { .. } | Problem::RouteMissing { .. }
                    )
            }));
        } else {
            problems.push(Problem::NetnsMissing(netns));
        }
        let mut elems = firewall::network_elements(&net.spec);
        elems.extend(self.store.read(|tx| endpoint_firewall(tx, &ep))?);
        for e in &elems {
            if !self.kernel.fw_has(e)? {
                problems.push(Problem::FirewallElementMissing(e.to_string()));
            }
        }
        Ok(Verified { endpoint, problems })
    }

    /// The endpoint row a request names, and the namespace to look in.
    fn endpoint_to_verify(
        &mut self,
        req: &VerifyRequest,
    ) -> Result<(EndpointRow, NsRef), EngineError> {
        match &req.endpoint {
            Which::Netns(ns) => {
                let key = ns_key(ns);
                let ep = self
                    .store
                    .read(|tx| tx.endpoint(&req.network, &key))?
                    .ok_or_else(|| EngineError::NotFound {
                        kind: "endpoint",
                        name: format!("of netns {key} on network {}", req.network),
                    })?;
                Ok((ep, ns.clone()))
            }
            Which::Owner { key, netns } => {
                let ep = self.attachment_row(&req.network, key)?.ok_or_else(|| {
                    EngineError::not_found(
                        "attachment of",
                        format!("{key} on network {}", req.network),
                    )
                })?;
                Ok((ep, netns.clone()))
            }
        }
    }

    /// The shaping recorded for interface `i` of namespace `ns`, if any, against the kernel's.
    fn verify_shaping(&mut self, ns: &NsRef, i: &IfaceView) -> Result<Vec<Problem>, EngineError> {
        let key = ns_key(ns);
        let Some(want) = self.store.read(|tx| tx.shaping(&key, &i.name))? else {
            return Ok(Vec::new());
        };
        if i.shaping.is_some_and(|have| want.matches(&have)) {
            return Ok(Vec::new());
        }
        Ok(vec![Problem::ShapingDiffers {
            ifname: i.name.clone(),
            netns: key,
            want,
            have: i.shaping,
        }])
    }

    /// Inside the namespace: the interface, its addresses and MAC, the routes, the shaping.
    fn verify_inside(
        &mut self,
        ep: &EndpointRow,
        netns: &NsRef,
        inside: &NsView,
        routes: &[StaticRoute],
    ) -> Result<Vec<Problem>, EngineError> {
        let mut problems = Vec::new();
        let ifname = ep.ifname.to_string();
        match iface(&inside.interfaces, &ifname) {
            None => problems.push(Problem::InterfaceMissing {
                ifname: ifname.clone(),
                netns: netns.clone(),
            }),
            Some(i) => {
                for a in &ep.addrs {
                    if !i.addrs.contains(a) {
                        problems.push(Problem::AddressMissing {
                            addr: *a,
                            ifname: ifname.clone(),
                        });
                    }
                }
                if let Some(m) = ep.mac
                    && i.mac.as_deref() != Some(m.to_string().as_str())
                {
                    problems.push(Problem::MacDiffers {
                        ifname: ifname.clone(),
                        have: i.mac.clone(),
                        assigned: m.to_string(),
                    });
                }
                problems.extend(self.verify_shaping(netns, i)?);
            }
        }
        for r in routes {
            let present = inside.routes.iter().any(|have| {
                have.dest == r.dest
                    && have.via == Some(r.via)
                    && have.dev.as_deref() == Some(ifname.as_str())
            });
            if !present {
                problems.push(Problem::RouteMissing {
                    route: *r,
                    ifname: ifname.clone(),
                });
            }
        }
        Ok(problems)
    }

    /// Whether the firewall can be read and holds the network's elements (a network not
    /// created yet: whether the firewall answers at all).
    pub fn firewall_health(&mut self, network: &NetName) -> Result<FirewallHealth, EngineError> {
        let net = self.store.read(|tx| tx.network(network))?;
        let elems = match &net {
            Some(n) => firewall::network_elements(&n.spec),
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
                    return Ok(FirewallHealth::Unusable {
                        cause: err.to_string(),
                    });
                }
                Ok(false) if net.is_some() => {
                    return Ok(FirewallHealth::Degraded {
                        missing: e.to_string(),
                    });
                }
                Ok(_) => {}
            }
        }
        Ok(FirewallHealth::Ready)
    }
}
