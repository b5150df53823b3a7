//! Open vSwitch as a network's switch: a bridge in OVSDB whose local port holds the gateway
//! addresses, and each endpoint's host end one of its ports. Inter-container communication
//! off is OVS's own `protected` ports (frames switched inside OVS never reach the bridge
//! netfilter table that enforces it on a Linux bridge); isolation between networks, published
//! ports and masquerade stay in the host's inet table, which sees the local port as the
//! bridge's interface.

use super::{Switch, gateway_device};
use crate::model::NetworkSpec;
use crate::ops::{KernelOp, NsRef};

/// The Open vSwitch driver.
pub struct OpenVSwitch;

impl Switch for OpenVSwitch {
    fn kind(&self) -> &'static str {
        "ovs"
    }

    /// The bridge (which returns once its local port exists), then the local port set up as
    /// a Linux bridge's device is.
    fn create(&self, spec: &NetworkSpec) -> Vec<KernelOp> {
        let mut ops = vec![KernelOp::OvsAddBridge {
            name: spec.bridge().to_string(),
            network: spec.name().to_string(),
            mtu: spec.mtu(),
            mac: spec.bridge_mac(),
        }];
        ops.extend(gateway_device(spec));
        ops
    }

    fn remove(&self, spec: &NetworkSpec) -> Vec<KernelOp> {
        vec![KernelOp::OvsDelBridge {
            name: spec.bridge().to_string(),
        }]
    }

    /// None: OVS takes a port over OVSDB once the veth exists.
    fn port_master(&self, _spec: &NetworkSpec) -> Option<String> {
        None
    }

    /// The host end as a port, answering no ARP itself; hairpin needs nothing (a frame the
    /// host sends back comes in on the local port, so OVS may switch it out of the
    /// container's own port).
    fn attach(&self, spec: &NetworkSpec, port: &str) -> Vec<KernelOp> {
        vec![
            // The userspace datapath reads a port through a packet socket, so the host's IP
            // stack sees the frames too: it would answer a container's ARP for the gateway
            // with the veth's own MAC, and traffic to the host (published ports above all)
            // would then come in on the veth, not the local port the firewall knows.
            KernelOp::Sysctl {
                ns: NsRef::Host,
                key: format!("net/ipv4/conf/{port}/arp_ignore"),
                value: "8".to_string(),
            },
            KernelOp::OvsAddPort {
                bridge: spec.bridge().to_string(),
                port: port.to_string(),
                network: spec.name().to_string(),
                protected: !spec.icc(),
            },
        ]
    }

    /// The port off the bridge before its veth goes (a port row left behind would name a
    /// device that no longer exists).
    fn detach(&self, spec: &NetworkSpec, port: &str) -> Vec<KernelOp> {
        vec![KernelOp::OvsDelPort {
            bridge: spec.bridge().to_string(),
            port: port.to_string(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Driver;
    use crate::names::NetName;
    use crate::plan;

    fn spec(icc: bool) -> NetworkSpec {
        NetworkSpec::builder(NetName::new("lan").unwrap())
            .subnets(["10.9.0.0/24".parse().unwrap()])
            .driver(Driver::Ovs)
            .icc(icc)
            .mtu(1400)
            .build()
            .unwrap()
    }

    #[test]
    fn network_is_an_ovs_bridge_with_the_gateway_on_its_local_port() {
        let s = spec(true);
        let ops: Vec<String> = plan::create_network(&s)
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(ops[0], "create ovs bridge nsbr-lan");
        assert!(ops.contains(&"add address 10.9.0.1/24 to nsbr-lan in netns host".to_string()));
        assert!(ops.contains(&"set nsbr-lan up in netns host".to_string()));
        assert!(!ops.iter().any(|o| o.starts_with("create bridge")));
        assert!(matches!(
            &plan::create_network(&s)[0],
            KernelOp::OvsAddBridge { mtu: Some(1400), network, .. } if network == "lan"
        ));
        let rm: Vec<String> = plan::remove_network(&s)
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(rm.last().unwrap(), "delete ovs bridge nsbr-lan");
    }

    #[test]
    fn ports_are_added_after_the_veth_and_protected_without_icc() {
        for icc in [true, false] {
            let s = spec(icc);
            let ep = plan::EndpointLayout {
                ns: crate::ops::NsRef::Named("web".into()),
                ifname: crate::names::IfName::new("eth0").unwrap(),
                host_ifname: crate::names::IfName::new("nsv1").unwrap(),
                mac: None,
                addrs: vec!["10.9.0.2/24".parse().unwrap()],
                default_via: vec![],
            };
            let ops = plan::connect(&s, &ep, vec![]);
            let veth = ops
                .iter()
                .position(|o| matches!(o, KernelOp::CreateVeth { a, .. } if a.master.is_none()))
                .expect("veth without a master");
            let port = ops
                .iter()
                .position(|o| {
                    *o == KernelOp::OvsAddPort {
                        bridge: "nsbr-lan".into(),
                        port: "nsv1".into(),
                        network: "lan".into(),
                        protected: !icc,
                    }
                })
                .expect("port");
            assert!(veth < port);
            assert!(!ops.iter().any(|o| matches!(o, KernelOp::Hairpin { .. })));
            let inv = ops[port].inverse().unwrap();
            assert_eq!(inv.to_string(), "delete port nsv1 from ovs bridge nsbr-lan");
            let d = plan::disconnect(&s, &ep.host_ifname, vec![], None);
            assert_eq!(d.release[0], inv);
            assert!(matches!(d.release[1], KernelOp::DeleteLink { .. }));
        }
    }
}
