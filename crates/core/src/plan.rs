//! The planner: which kernel operations realise a request. Pure functions over model values;
//! the engine decides addresses and names (with the store) and applies the result.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::firewall::{self, FwChange, FwElem};
use crate::model::{Mac, NetworkSpec};
use crate::names::IfName;
use crate::ops::{KernelOp, NsRef, VethEnd};
use crate::switch;

/// The loopback interface every namespace gets up.
pub const LOOPBACK: &str = "lo";

/// The default route of the address family of `gateway`.
pub fn default_dest(gateway: IpAddr) -> IpNet {
    match gateway {
        IpAddr::V4(_) => "0.0.0.0/0".parse().expect("valid"),
        IpAddr::V6(_) => "::/0".parse().expect("valid"),
    }
}

/// A firewall op adding `elems`, or nothing when there are none.
fn fw_add(elems: Vec<FwElem>) -> Option<KernelOp> {
    (!elems.is_empty()).then(|| KernelOp::Firewall(elems.into_iter().map(FwChange::Add).collect()))
}

/// A firewall op deleting `elems`, or nothing when there are none.
fn fw_del(elems: Vec<FwElem>) -> Option<KernelOp> {
    (!elems.is_empty()).then(|| KernelOp::Firewall(elems.into_iter().map(FwChange::Del).collect()))
}

/// The network's switch (see `switch`); forwarding on for networks that route beyond
/// themselves; the network's firewall elements.
pub fn create_network(spec: &NetworkSpec) -> Vec<KernelOp> {
    let mut ops = switch::of(spec).create(spec);
    if !spec.internal() {
        if spec.subnets().iter().any(|s| s.cidr.addr().is_ipv4()) {
            ops.push(sysctl("net.ipv4.ip_forward", "1"));
        }
        if spec.subnets().iter().any(|s| s.cidr.addr().is_ipv6()) {
            ops.push(sysctl("net.ipv6.conf.all.forwarding", "1"));
        }
    }
    ops.extend(fw_add(firewall::network_elements(spec)));
    ops
}

fn has_ipv6(spec: &NetworkSpec) -> bool {
    spec.subnets().iter().any(|s| s.cidr.addr().is_ipv6())
}

fn sysctl(key: &str, value: &str) -> KernelOp {
    KernelOp::Sysctl {
        ns: NsRef::Host,
        key: key.to_string(),
        value: value.to_string(),
    }
}

/// Firewall elements out, then the switch (which takes its addresses and ports with it).
pub fn remove_network(spec: &NetworkSpec) -> Vec<KernelOp> {
    let mut ops: Vec<KernelOp> = fw_del(firewall::network_elements(spec))
        .into_iter()
        .collect();
    ops.extend(switch::of(spec).remove(spec));
    ops
}

/// What identifies one endpoint's kernel objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointLayout {
    pub ns: NsRef,
    pub ifname: IfName,
    pub host_ifname: IfName,
    pub mac: Option<Mac>,
    pub addrs: Vec<IpNet>,
    /// Gateways to install default routes through (empty when not the primary endpoint).
    pub default_via: Vec<IpAddr>,
}

/// A veth with its host end a port of the network's switch and its peer made directly
/// in the namespace, then loopback up, the addresses, the default routes, and the firewall
/// elements (`fw`: the endpoint's own and its published ports') in one transaction.
pub fn connect(net: &NetworkSpec, ep: &EndpointLayout, fw: Vec<FwElem>) -> Vec<KernelOp> {
    let mut ops = endpoint_veth(net, ep);
    ops.extend(fw_add(fw));
    ops
}

/// `endpoint_veth` for a pair someone deleted, to make it again as recorded: first what the
/// switch keeps of the dead host end (Open vSwitch keeps its port row, and does not switch a
/// new device of the same name through it), then the pair as `connect` makes it.
pub fn remake_endpoint_veth(net: &NetworkSpec, ep: &EndpointLayout) -> Vec<KernelOp> {
    let mut ops = switch::of(net).detach(net, ep.host_ifname.as_str());
    ops.extend(endpoint_veth(net, ep));
    ops
}

/// The kernel part of `connect` that dies with the veth pair: the namespace's sysctls, the
/// veth (names, MAC, MTU), its host end a port of the switch, loopback up, the addresses and
/// default routes. `repair` plans it alone to make a deleted pair again as recorded (its
/// firewall elements key on names and addresses, so they survive the pair).
pub fn endpoint_veth(net: &NetworkSpec, ep: &EndpointLayout) -> Vec<KernelOp> {
    let ifname = ep.ifname.to_string();
    let switch = switch::of(net);
    let mut ops = Vec::new();
    if has_ipv6(net) {
        // Interfaces created from now on in the namespace skip DAD and router advertisements:
        // addresses come from nsnet's IPAM and routes from the plan.
        for key in ["accept_dad", "accept_ra"] {
            ops.push(KernelOp::Sysctl {
                ns: ep.ns.clone(),
                key: format!("net/ipv6/conf/default/{key}"),
                value: "0".to_string(),
            });
        }
    }
    ops.push(KernelOp::CreateVeth {
        a: VethEnd {
            ns: NsRef::Host,
            name: ep.host_ifname.to_string(),
            mac: None,
            master: switch.port_master(net),
            // A switch port is L2-only: IPv6 on it would only add per-port routes that the
            // kernel walks on every link event of the host.
            ipv6: false,
        },
        b: VethEnd {
            ns: ep.ns.clone(),
            name: ifname.clone(),
            mac: ep.mac,
            master: None,
            // On an IPv4-only network the container's end has no IPv6 (Docker does the
            // same): else its link-local address's DAD, MLD reports and router
            // solicitations are flooded by the switch to every other container, and setup
            // grows with the number of endpoints on the network (about 3x at 1000).
            ipv6: has_ipv6(net),
        },
        mtu: net.mtu(),
    });
    ops.extend(switch.attach(net, ep.host_ifname.as_str()));
    ops.push(KernelOp::LinkUp {
        ns: ep.ns.clone(),
        ifname: LOOPBACK.to_string(),
    });
    ops.extend(ep.addrs.iter().map(|a| KernelOp::AddAddr {
        ns: ep.ns.clone(),
        ifname: ifname.clone(),
        addr: *a,
    }));
    ops.extend(ep.default_via.iter().map(|gw| KernelOp::AddRoute {
        ns: ep.ns.clone(),
        dest: default_dest(*gw),
        via: Some(*gw),
        dev: Some(ifname.clone()),
    }));
    ops
}

/// A disconnect in two phases. `release` takes the firewall elements out first, then deletes
/// the host end (which takes the peer with its addresses and routes): it must be done before
/// the endpoint's row may go. `promote` then gives the namespace's next primary endpoint the
/// default routes; a resumed disconnect may find them there already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisconnectPlan {
    pub release: Vec<KernelOp>,
    pub promote: Vec<KernelOp>,
}

/// Plans a disconnect from `net`; `promote` names the endpoint that becomes primary and its
/// gateways.
pub fn disconnect(
    net: &NetworkSpec,
    host_ifname: &IfName,
    fw: Vec<FwElem>,
    promote: Option<(&NsRef, &IfName, &[IpAddr])>,
) -> DisconnectPlan {
    let mut release: Vec<KernelOp> = fw_del(fw).into_iter().collect();
    release.extend(switch::of(net).detach(net, host_ifname.as_str()));
    release.push(KernelOp::DeleteLink {
        ns: NsRef::Host,
        ifname: host_ifname.to_string(),
    });
    let promote = promote
        .map(|(ns, ifname, gws)| {
            gws.iter()
                .map(|gw| KernelOp::AddRoute {
                    ns: ns.clone(),
                    dest: default_dest(*gw),
                    via: Some(*gw),
                    dev: Some(ifname.to_string()),
                })
                .collect()
        })
        .unwrap_or_default();
    DisconnectPlan { release, promote }
}

/// One end of a point-to-point link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkEnd {
    pub ns: NsRef,
    pub ifname: IfName,
    pub addr: Option<IpNet>,
}

/// The seed's "connect two interfaces": one veth, one end in each namespace, addresses, up.
pub fn add_link(a: &LinkEnd, b: &LinkEnd, mtu: Option<u32>) -> Vec<KernelOp> {
    let mut ops = vec![KernelOp::CreateVeth {
        a: VethEnd {
            ns: a.ns.clone(),
            name: a.ifname.to_string(),
            mac: None,
            master: None,
            ipv6: true,
        },
        b: VethEnd {
            ns: b.ns.clone(),
            name: b.ifname.to_string(),
            mac: None,
            master: None,
            ipv6: true,
        },
        mtu,
    }];
    for end in [a, b] {
        if end.ns != NsRef::Host {
            ops.push(KernelOp::LinkUp {
                ns: end.ns.clone(),
                ifname: LOOPBACK.to_string(),
            });
        }
        if let Some(addr) = end.addr {
            ops.push(KernelOp::AddAddr {
                ns: end.ns.clone(),
                ifname: end.ifname.to_string(),
                addr,
            });
        }
    }
    ops
}

/// Removing one end removes the pair.
pub fn remove_link(a: &LinkEnd) -> Vec<KernelOp> {
    vec![KernelOp::DeleteLink {
        ns: a.ns.clone(),
        ifname: a.ifname.to_string(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::NetName;

    fn net(internal: bool) -> NetworkSpec {
        NetworkSpec::builder(NetName::new("vnet").unwrap())
            .bridge(IfName::new("v-net-0").unwrap())
            .subnets([
                "192.168.15.0/24".parse().unwrap(),
                "fd00:15::/64".parse().unwrap(),
            ])
            .gateways(["192.168.15.5".parse().unwrap()])
            .internal(internal)
            .build()
            .unwrap()
    }

    fn render(ops: &[KernelOp]) -> Vec<String> {
        ops.iter().map(ToString::to_string).collect()
    }

    /// The pair made again is the connect's, without its firewall elements (they key on
    /// names and addresses that come back the same); Open vSwitch's stale port row goes first.
    #[test]
    fn remade_veth_is_the_connect_plan_without_its_firewall() {
        let ep = EndpointLayout {
            ns: NsRef::Named("red".into()),
            ifname: IfName::new("eth0").unwrap(),
            host_ifname: IfName::new("nsv0123").unwrap(),
            mac: Some("0a:58:c0:a8:0f:02".parse().unwrap()),
            addrs: vec!["192.168.15.2/24".parse().unwrap()],
            default_via: vec!["192.168.15.5".parse().unwrap()],
        };
        let bridge = net(false);
        let fw = vec![FwElem {
            family: firewall::FAMILY_INET,
            set: firewall::SET_BRIDGES.to_string(),
            key: firewall::FwKey::Ifname("nsv0123".into()),
            data: None,
        }];
        let mut connected = connect(&bridge, &ep, fw);
        assert!(matches!(connected.pop(), Some(KernelOp::Firewall(_))));
        assert_eq!(remake_endpoint_veth(&bridge, &ep), connected);
        let ovs = NetworkSpec::builder(NetName::new("vnet").unwrap())
            .driver(crate::model::Driver::Ovs)
            .subnets(["192.168.15.0/24".parse().unwrap()])
            .build()
            .unwrap();
        let remade = remake_endpoint_veth(&ovs, &ep);
        assert_eq!(
            remade[0],
            KernelOp::OvsDelPort {
                bridge: ovs.bridge().to_string(),
                port: "nsv0123".into(),
            }
        );
        assert_eq!(remade[1..], endpoint_veth(&ovs, &ep)[..]);
        assert!(
            remade
                .iter()
                .any(|op| matches!(op, KernelOp::OvsAddPort { port, .. } if port == "nsv0123"))
        );
    }

    #[test]
    fn network_plan_is_the_seed_bridge() {
        assert_eq!(
            render(&create_network(&net(false))),
            [
                "create bridge v-net-0",
                "set net/ipv6/conf/v-net-0/accept_dad=0 in netns host",
                "add address 192.168.15.5/24 to v-net-0 in netns host",
                "add address fd00:15::1/64 to v-net-0 in netns host",
                "set v-net-0 up in netns host",
                "set net/ipv4/conf/v-net-0/route_localnet=1 in netns host",
                "set net.ipv4.ip_forward=1 in netns host",
                "set net.ipv6.conf.all.forwarding=1 in netns host",
                "firewall: add bridges \"v-net-0\", add same_bridge \"v-net-0\" . \"v-net-0\", add masq_bridges \"v-net-0\"",
            ]
        );
        let internal = render(&create_network(&net(true)));
        assert!(!internal.iter().any(|o| o.contains("forward")));
        assert_eq!(
            render(&remove_network(&net(false))),
            [
                "firewall: delete bridges \"v-net-0\", delete same_bridge \"v-net-0\" . \"v-net-0\", delete masq_bridges \"v-net-0\"",
                "delete v-net-0 in netns host"
            ]
        );
    }

    #[test]
    fn connect_plan() {
        let ep = EndpointLayout {
            ns: NsRef::Named("red".into()),
            ifname: IfName::new("eth0").unwrap(),
            host_ifname: IfName::new("nsv0123").unwrap(),
            mac: None,
            addrs: vec!["192.168.15.2/24".parse().unwrap()],
            default_via: vec!["192.168.15.5".parse().unwrap()],
        };
        assert_eq!(
            render(&connect(&net(false), &ep, vec![])),
            [
                "set net/ipv6/conf/default/accept_dad=0 in netns red",
                "set net/ipv6/conf/default/accept_ra=0 in netns red",
                "create veth nsv0123 in netns host (peer eth0 in netns red)",
                "set hairpin on bridge port nsv0123",
                "set lo up in netns red",
                "add address 192.168.15.2/24 to eth0 in netns red",
                "add route 0.0.0.0/0 via 192.168.15.5 dev eth0 in netns red",
            ]
        );
        let undo: Vec<_> = connect(&net(false), &ep, vec![])
            .iter()
            .filter_map(KernelOp::inverse)
            .collect();
        assert_eq!(undo[0].to_string(), "delete nsv0123 in netns host");
    }

    #[test]
    fn ipv4_only_bridge_has_no_ipv6() {
        let v4 = NetworkSpec::builder(NetName::new("v4").unwrap())
            .bridge(IfName::new("nsbr-v4").unwrap())
            .subnets(["192.168.15.0/24".parse().unwrap()])
            .build()
            .unwrap();
        let ops = render(&create_network(&v4));
        assert_eq!(ops[0], "create bridge nsbr-v4");
        assert_eq!(
            ops[1],
            "set net/ipv6/conf/nsbr-v4/disable_ipv6=1 in netns host"
        );
        assert!(!ops.iter().any(|o| o.contains("accept_dad")), "{ops:?}");
    }

    #[test]
    fn container_end_has_ipv6_only_on_ipv6_networks() {
        let ep = EndpointLayout {
            ns: NsRef::Named("red".into()),
            ifname: IfName::new("eth0").unwrap(),
            host_ifname: IfName::new("nsv0123").unwrap(),
            mac: None,
            addrs: vec!["192.168.15.2/24".parse().unwrap()],
            default_via: vec![],
        };
        let v4 = NetworkSpec::builder(NetName::new("v4").unwrap())
            .bridge(IfName::new("nsbr-v4").unwrap())
            .subnets(["192.168.15.0/24".parse().unwrap()])
            .build()
            .unwrap();
        for (net, want) in [(v4, false), (net(false), true)] {
            let ops = connect(&net, &ep, vec![]);
            let Some(KernelOp::CreateVeth { a, b, .. }) = ops
                .iter()
                .find(|op| matches!(op, KernelOp::CreateVeth { .. }))
            else {
                panic!("no veth in {ops:?}");
            };
            assert!(!a.ipv6, "the host end is a bridge port");
            assert_eq!(b.ipv6, want, "container end on {}", net.name());
        }
    }

    #[test]
    fn disconnect_promotes_next_primary() {
        let ns = NsRef::Named("red".into());
        let eth1 = IfName::new("eth1").unwrap();
        let gws = ["10.1.0.1".parse().unwrap()];
        let net = NetworkSpec::builder(crate::names::NetName::new("lan").unwrap())
            .bridge(IfName::new("nsbr-lan").unwrap())
            .subnets(["10.1.0.0/24".parse().unwrap()])
            .build()
            .unwrap();
        let plan = disconnect(
            &net,
            &IfName::new("nsv0123").unwrap(),
            vec![],
            Some((&ns, &eth1, &gws)),
        );
        assert_eq!(render(&plan.release), ["delete nsv0123 in netns host"]);
        assert_eq!(
            render(&plan.promote),
            ["add route 0.0.0.0/0 via 10.1.0.1 dev eth1 in netns red"]
        );
    }

    #[test]
    fn link_plan_is_the_seed_veth() {
        let a = LinkEnd {
            ns: NsRef::Named("red".into()),
            ifname: IfName::new("veth-red").unwrap(),
            addr: Some("192.168.15.1/24".parse().unwrap()),
        };
        let b = LinkEnd {
            ns: NsRef::Named("blue".into()),
            ifname: IfName::new("veth-blue").unwrap(),
            addr: Some("192.168.15.2/24".parse().unwrap()),
        };
        assert_eq!(
            render(&add_link(&a, &b, None)),
            [
                "create veth veth-red in netns red (peer veth-blue in netns blue)",
                "set lo up in netns red",
                "add address 192.168.15.1/24 to veth-red in netns red",
                "set lo up in netns blue",
                "add address 192.168.15.2/24 to veth-blue in netns blue",
            ]
        );
        assert_eq!(render(&remove_link(&a)), ["delete veth-red in netns red"]);
    }
}
