//! The decisions of a connect, as pure functions of facts the engine loads from the store:
//! the interface name, whether the endpoint becomes its namespace's primary (and so carries
//! the default routes), which published ports it may take, its firewall elements, and the
//! kernel operations — in the order the engine records and applies them.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::firewall::{self, FwElem};
use crate::model::{Mac, NetworkSpec};
use crate::names::{IfName, NetName, host_veth};
use crate::ops::{KernelOp, NsRef};
use crate::plan::{self, EndpointLayout};
use crate::port::PortMapping;

/// An endpoint a namespace already has, as far as a connect cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsEndpoint {
    pub network: NetName,
    pub ifname: IfName,
    /// Whether its network is internal (an internal endpoint is never primary).
    pub internal: bool,
}

/// A route a runtime asks for instead of the primary rule (CNI's `routes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute {
    pub dest: IpNet,
    pub via: IpAddr,
}

/// Which routes a new endpoint gets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RoutePolicy {
    /// The CLI's rule: the namespace's oldest endpoint on a non-internal network carries the
    /// default routes through its network's gateways.
    #[default]
    Primary,
    /// Exactly these routes, through this endpoint (CNI attachments are independent).
    Explicit(Vec<StaticRoute>),
}

/// Why a connect cannot be made; nothing has changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectConflict {
    #[error("netns {netns} is already connected to network {network} as {ifname}")]
    AlreadyConnected {
        netns: String,
        network: NetName,
        ifname: IfName,
    },
    #[error("interface {ifname} in netns {netns} is already used by network {network}")]
    InterfaceTaken {
        ifname: IfName,
        netns: String,
        network: NetName,
    },
    #[error("network {network} is internal: its endpoints cannot publish ports")]
    InternalPublish { network: NetName },
    #[error(
        "cannot publish {mapping}: the kernel never routes ::1 to another host; use 127.0.0.1, another host address, or every address"
    )]
    Ipv6Loopback { mapping: PortMapping },
    #[error("cannot publish {mapping}: netns {netns} has no {family} address on network {network}")]
    NoAddressOfFamily {
        mapping: PortMapping,
        netns: String,
        network: NetName,
        family: &'static str,
    },
    #[error("host port {mapping} is given twice")]
    PortTwice { mapping: PortMapping },
}

impl ConnectConflict {
    /// Whether the request itself is wrong (whatever else exists), rather than in conflict
    /// with something that exists: faces report the two differently (CNI: 7 vs 101).
    pub fn is_invalid_request(&self) -> bool {
        !matches!(
            self,
            ConnectConflict::AlreadyConnected { .. } | ConnectConflict::InterfaceTaken { .. }
        )
    }
}

/// The interface a new endpoint of `network` gets in namespace `netns`: the requested one,
/// else the lowest `ethN` free. Refuses a second endpoint on one network and a name in use.
pub fn interface(
    netns: &str,
    network: &NetName,
    in_ns: &[NsEndpoint],
    requested: Option<&IfName>,
) -> Result<IfName, ConnectConflict> {
    if let Some(e) = in_ns.iter().find(|e| e.network == *network) {
        return Err(ConnectConflict::AlreadyConnected {
            netns: netns.to_string(),
            network: network.clone(),
            ifname: e.ifname.clone(),
        });
    }
    match requested {
        Some(i) => match in_ns.iter().find(|e| e.ifname == *i) {
            Some(e) => Err(ConnectConflict::InterfaceTaken {
                ifname: i.clone(),
                netns: netns.to_string(),
                network: e.network.clone(),
            }),
            None => Ok(i.clone()),
        },
        None => Ok((0..)
            .map(|i| IfName::new(&format!("eth{i}")).expect("valid"))
            .find(|n| !in_ns.iter().any(|e| e.ifname == *n))
            .expect("a free name exists")),
    }
}

/// Checks the mappings an endpoint with addresses `addrs` on `net` wants to publish, among
/// themselves: what needs no store or kernel (conflicts with other endpoints' ports and the
/// host's listeners are the engine's facts to check).
pub fn check_mappings(
    net: &NetworkSpec,
    netns: &str,
    addrs: &[IpAddr],
    mappings: &[PortMapping],
) -> Result<(), ConnectConflict> {
    if mappings.is_empty() {
        return Ok(());
    }
    if net.internal() {
        return Err(ConnectConflict::InternalPublish {
            network: net.name().clone(),
        });
    }
    let mut seen = BTreeSet::new();
    for m in mappings {
        if let Some(IpAddr::V6(ip)) = m.host_ip
            && ip.is_loopback()
        {
            return Err(ConnectConflict::Ipv6Loopback { mapping: *m });
        }
        if !addrs
            .iter()
            .any(|a| m.host_ip.is_none_or(|h| h.is_ipv4() == a.is_ipv4()))
        {
            return Err(ConnectConflict::NoAddressOfFamily {
                mapping: *m,
                netns: netns.to_string(),
                network: net.name().clone(),
                family: if m.host_ip.is_some_and(|h| h.is_ipv6()) {
                    "IPv6"
                } else {
                    "IPv4"
                },
            });
        }
        if !seen.insert((m.proto, m.host_port, m.host_ip)) {
            return Err(ConnectConflict::PortTwice { mapping: *m });
        }
    }
    Ok(())
}

/// The firewall elements of `mappings` published towards `addrs`.
pub fn port_elements(mappings: &[PortMapping], addrs: &[IpAddr]) -> Vec<FwElem> {
    mappings
        .iter()
        .flat_map(|m| firewall::port_elements(m, addrs))
        .collect()
}

/// What the engine loaded for a connect.
#[derive(Debug, Clone)]
pub struct ConnectFacts<'a> {
    pub net: &'a NetworkSpec,
    pub ns: NsRef,
    /// The namespace's endpoints, oldest first.
    pub in_ns: &'a [NsEndpoint],
    /// From `interface`.
    pub ifname: IfName,
    /// Allocated by IPAM, one per subnet.
    pub addrs: Vec<IpNet>,
    pub mac: Option<Mac>,
    pub routes: &'a RoutePolicy,
    pub publish: &'a [PortMapping],
}

/// A connect, decided: the endpoint to record and the operations that make it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectPlan {
    pub layout: EndpointLayout,
    /// The endpoint's own elements and its published ports'.
    pub fw: Vec<FwElem>,
    /// Everything to apply, in order, after the endpoint is recorded.
    pub ops: Vec<KernelOp>,
}

/// The gateways a primary endpoint with addresses `addrs` routes by default through: those
/// of the subnets its addresses are in.
pub fn default_gateways(net: &NetworkSpec, addrs: &[IpNet]) -> Vec<IpAddr> {
    net.subnets()
        .iter()
        .filter(|s| addrs.iter().any(|a| s.cidr.contains(&a.addr())))
        .map(|s| s.gateway)
        .collect()
}

/// Decides the rest of a connect: the host end's name, the primary rule (or the runtime's
/// routes), the firewall elements and the kernel operations.
pub fn plan_connect(f: &ConnectFacts<'_>) -> ConnectPlan {
    let netns = f.ns.to_string();
    let primary_taken = f.in_ns.iter().any(|e| !e.internal);
    let default_via: Vec<IpAddr> = match f.routes {
        RoutePolicy::Primary if !f.net.internal() && !primary_taken => {
            default_gateways(f.net, &f.addrs)
        }
        _ => Vec::new(),
    };
    let layout = EndpointLayout {
        ns: f.ns.clone(),
        host_ifname: host_veth(f.net.name(), &netns, &f.ifname),
        ifname: f.ifname.clone(),
        mac: f.mac,
        addrs: f.addrs.clone(),
        default_via,
    };
    let ips: Vec<IpAddr> = f.addrs.iter().map(IpNet::addr).collect();
    let mut fw = firewall::endpoint_elements(f.net, layout.host_ifname.as_str());
    fw.extend(port_elements(f.publish, &ips));
    let mut ops = plan::connect(f.net, &layout, fw.clone());
    if let RoutePolicy::Explicit(routes) = f.routes {
        ops.extend(routes.iter().map(|r| KernelOp::AddRoute {
            ns: f.ns.clone(),
            dest: r.dest,
            via: Some(r.via),
            dev: Some(f.ifname.to_string()),
        }));
    }
    ConnectPlan { layout, fw, ops }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::Proto;

    fn net(name: &str, subnets: &[&str], internal: bool) -> NetworkSpec {
        let n = NetName::new(name).unwrap();
        let subnets: Vec<IpNet> = subnets.iter().map(|s| s.parse().unwrap()).collect();
        NetworkSpec::builder(n)
            .subnets(subnets)
            .internal(internal)
            .build()
            .unwrap()
    }

    fn have(network: &str, ifname: &str, internal: bool) -> NsEndpoint {
        NsEndpoint {
            network: NetName::new(network).unwrap(),
            ifname: IfName::new(ifname).unwrap(),
            internal,
        }
    }

    fn tcp(host_port: u16) -> PortMapping {
        PortMapping {
            host_ip: None,
            host_port,
            container_port: 80,
            proto: Proto::Tcp,
        }
    }

    #[test]
    fn interface_is_the_lowest_free_or_the_requested_one() {
        let lan = NetName::new("lan").unwrap();
        let in_ns = [have("a", "eth0", false), have("b", "eth2", false)];
        assert_eq!(
            interface("red", &lan, &in_ns, None).unwrap().as_str(),
            "eth1"
        );
        let want = IfName::new("web0").unwrap();
        assert_eq!(interface("red", &lan, &in_ns, Some(&want)).unwrap(), want);
        let taken = IfName::new("eth2").unwrap();
        assert_eq!(
            interface("red", &lan, &in_ns, Some(&taken))
                .unwrap_err()
                .to_string(),
            "interface eth2 in netns red is already used by network b"
        );
        let again = [have("lan", "eth0", false)];
        assert_eq!(
            interface("red", &lan, &again, None)
                .unwrap_err()
                .to_string(),
            "netns red is already connected to network lan as eth0"
        );
    }

    fn plan_for(n: &NetworkSpec, in_ns: &[NsEndpoint], routes: &RoutePolicy) -> ConnectPlan {
        plan_connect(&ConnectFacts {
            net: n,
            ns: NsRef::Named("red".into()),
            in_ns,
            ifname: IfName::new("eth0").unwrap(),
            addrs: vec![
                "10.1.0.2/24".parse().unwrap(),
                "fd00:1::2/64".parse().unwrap(),
            ],
            mac: None,
            routes,
            publish: &[],
        })
    }

    #[test]
    fn first_non_internal_endpoint_is_primary_and_gets_default_routes() {
        let n = net("lan", &["10.1.0.0/24", "fd00:1::/64"], false);
        let alone = plan_for(&n, &[], &RoutePolicy::Primary);
        assert_eq!(
            alone.layout.default_via,
            [
                "10.1.0.1".parse::<IpAddr>().unwrap(),
                "fd00:1::1".parse().unwrap()
            ]
        );
        // An internal network's endpoint never carries default routes.
        let internal = net("int", &["10.1.0.0/24", "fd00:1::/64"], true);
        assert!(
            plan_for(&internal, &[], &RoutePolicy::Primary)
                .layout
                .default_via
                .is_empty()
        );
        // A CNI attachment gets exactly its routes, never the primary's.
        let route = StaticRoute {
            dest: "192.0.2.0/24".parse().unwrap(),
            via: "10.1.0.1".parse().unwrap(),
        };
        let cni = plan_for(&n, &[], &RoutePolicy::Explicit(vec![route]));
        assert!(cni.layout.default_via.is_empty());
        let routes: Vec<String> = cni
            .ops
            .iter()
            .filter(|op| matches!(op, KernelOp::AddRoute { .. }))
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            routes,
            ["add route 192.0.2.0/24 via 10.1.0.1 dev eth0 in netns red"]
        );
    }

    #[test]
    fn a_second_endpoint_is_not_primary_unless_the_first_is_internal() {
        let n = net("lan", &["10.1.0.0/24"], false);
        let plan = |in_ns: &[NsEndpoint]| {
            plan_connect(&ConnectFacts {
                net: &n,
                ns: NsRef::Named("red".into()),
                in_ns,
                ifname: IfName::new("eth1").unwrap(),
                addrs: vec!["10.1.0.2/24".parse().unwrap()],
                mac: None,
                routes: &RoutePolicy::Primary,
                publish: &[tcp(8080)],
            })
        };
        assert!(
            plan(&[have("a", "eth0", false)])
                .layout
                .default_via
                .is_empty()
        );
        let behind_internal = plan(&[have("a", "eth0", true)]);
        assert_eq!(behind_internal.layout.default_via.len(), 1);
        // The port's DNAT element is planned with the endpoint's own.
        assert!(
            behind_internal
                .fw
                .iter()
                .any(|e| e.to_string().contains("tcp . 8080 : 10.1.0.2 . 80"))
        );
    }

    #[test]
    fn mappings_are_checked_among_themselves() {
        let n = net("lan", &["10.1.0.0/24"], false);
        let v4 = ["10.1.0.2".parse().unwrap()];
        assert!(check_mappings(&n, "red", &v4, &[tcp(1), tcp(2)]).is_ok());
        assert_eq!(
            check_mappings(&n, "red", &v4, &[tcp(1), tcp(1)])
                .unwrap_err()
                .to_string(),
            "host port 1:80/tcp is given twice"
        );
        let v6 = PortMapping {
            host_ip: Some("2001:db8::1".parse().unwrap()),
            ..tcp(3)
        };
        assert!(matches!(
            check_mappings(&n, "red", &v4, &[v6]),
            Err(ConnectConflict::NoAddressOfFamily { family: "IPv6", .. })
        ));
        let lo6 = PortMapping {
            host_ip: Some("::1".parse().unwrap()),
            ..tcp(4)
        };
        assert!(matches!(
            check_mappings(&n, "red", &v4, &[lo6]),
            Err(ConnectConflict::Ipv6Loopback { .. })
        ));
        let internal = net("int", &["10.2.0.0/24"], true);
        assert!(matches!(
            check_mappings(&internal, "red", &v4, &[tcp(5)]),
            Err(ConnectConflict::InternalPublish { .. })
        ));
    }
}
