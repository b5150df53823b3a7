//! A network's virtual switch, as kernel operations: the seam a second switch (Open vSwitch)
//! or an overlay port plugs into. Everything a switch does for a network — exist with the
//! gateway addresses, take an endpoint's host end as a port, let it go, disappear — is asked
//! of a `Switch`; the rest of a plan (namespaces, addresses in containers, routes, sysctls of
//! the host, firewall elements) is the same whichever switch carries the frames.

mod ovs;

use crate::model::{Driver, NetworkSpec};
use crate::ops::{KernelOp, NsRef};

pub use ovs::OpenVSwitch;

/// A switch driver: pure, it only says which kernel operations do its work.
pub trait Switch {
    /// What `inspect` calls it ("bridge").
    fn kind(&self) -> &'static str;
    /// The switch with its gateway addresses, up, ready for ports.
    fn create(&self, spec: &NetworkSpec) -> Vec<KernelOp>;
    /// The switch gone (its addresses and ports with it).
    fn remove(&self, spec: &NetworkSpec) -> Vec<KernelOp>;
    /// The device an endpoint's host end is enslaved to when it is created, if the switch
    /// takes ports that way (a Linux bridge does; one message, no extra round trip).
    fn port_master(&self, spec: &NetworkSpec) -> Option<String>;
    /// Operations once the host end `port` exists.
    fn attach(&self, spec: &NetworkSpec, port: &str) -> Vec<KernelOp>;
    /// Operations before the host end `port` is deleted.
    fn detach(&self, spec: &NetworkSpec, port: &str) -> Vec<KernelOp>;
}

/// The switch of a network, by its driver.
pub fn of(spec: &NetworkSpec) -> &'static dyn Switch {
    match spec.driver() {
        Driver::Bridge => &LinuxBridge,
        Driver::Ovs => &OpenVSwitch,
        Driver::Vxlan => &VxlanOverlay,
    }
}

/// The Linux bridge: the seed's `ip link add v-net-0 type bridge`.
pub struct LinuxBridge;

fn host_sysctl(key: String, value: &str) -> KernelOp {
    KernelOp::Sysctl {
        ns: NsRef::Host,
        key,
        value: value.to_string(),
    }
}

/// The device that holds a switch's gateway addresses (the Linux bridge itself, or Open
/// vSwitch's local port, named as the bridge): IPv6 set up before it goes up, the gateway
/// addresses, up, and `route_localnet` so the host's 127.0.0.1 reaches published ports.
fn gateway_device(spec: &NetworkSpec) -> Vec<KernelOp> {
    let bridge = spec.bridge().to_string();
    let mut ops = Vec::new();
    if spec.subnets().iter().any(|s| s.cidr.addr().is_ipv6()) {
        // Before the bridge goes up: a tentative link-local address would hold back
        // neighbour solicitations, and so the first packets to every endpoint, for a second.
        ops.push(host_sysctl(
            format!("net/ipv6/conf/{bridge}/accept_dad"),
            "0",
        ));
    } else {
        // No IPv6 on an IPv4-only network's bridge: every port added or removed is a link
        // change on which the kernel resends the bridge's MLD reports and reruns DAD,
        // flooded to every port (through br_netfilter): setup would grow with the number
        // of endpoints.
        ops.push(host_sysctl(
            format!("net/ipv6/conf/{bridge}/disable_ipv6"),
            "1",
        ));
    }
    ops.extend(spec.subnets().iter().map(|s| KernelOp::AddAddr {
        ns: NsRef::Host,
        ifname: bridge.clone(),
        addr: s.gateway_cidr(),
    }));
    ops.push(KernelOp::LinkUp {
        ns: NsRef::Host,
        ifname: bridge.clone(),
    });
    if spec.subnets().iter().any(|s| s.cidr.addr().is_ipv4()) {
        // Slash form: bridge names may contain dots.
        ops.push(host_sysctl(
            format!("net/ipv4/conf/{bridge}/route_localnet"),
            "1",
        ));
    }
    ops
}

impl Switch for LinuxBridge {
    fn kind(&self) -> &'static str {
        "bridge"
    }

    /// The bridge with its pinned MAC, then its gateway device's setup.
    fn create(&self, spec: &NetworkSpec) -> Vec<KernelOp> {
        let mut ops = vec![KernelOp::CreateBridge {
            name: spec.bridge().to_string(),
            mtu: spec.mtu(),
            mac: spec.bridge_mac(),
        }];
        ops.extend(gateway_device(spec));
        ops
    }

    fn remove(&self, spec: &NetworkSpec) -> Vec<KernelOp> {
        vec![KernelOp::DeleteLink {
            ns: NsRef::Host,
            ifname: spec.bridge().to_string(),
        }]
    }

    fn port_master(&self, spec: &NetworkSpec) -> Option<String> {
        Some(spec.bridge().to_string())
    }

    /// Hairpin mode, so a container reaches its own published ports through the host.
    fn attach(&self, _spec: &NetworkSpec, port: &str) -> Vec<KernelOp> {
        vec![KernelOp::Hairpin {
            ifname: port.to_string(),
        }]
    }

    /// Nothing: deleting the veth takes the port off the bridge.
    fn detach(&self, _spec: &NetworkSpec, _port: &str) -> Vec<KernelOp> {
        Vec::new()
    }
}

/// An overlay network's switch on this host: the Linux bridge of the host's slice, plus the
/// network's VXLAN device (learning off: the other hosts' entries are programmed, see
/// `crate::overlay`) holding this host's VTEP address. Routing, not bridging, joins the two,
/// so the device is no bridge port.
pub struct VxlanOverlay;

impl Switch for VxlanOverlay {
    fn kind(&self) -> &'static str {
        "vxlan"
    }

    fn create(&self, spec: &NetworkSpec) -> Vec<KernelOp> {
        let mut ops = LinuxBridge.create(spec);
        let (Some(dev), Some(vni), Some(slice)) =
            (spec.overlay_dev(), spec.vni(), spec.overlay_slice())
        else {
            return ops;
        };
        ops.push(KernelOp::CreateVxlan {
            name: dev.clone(),
            vni,
            port: crate::overlay::VXLAN_PORT,
            mtu: spec.mtu(),
            mac: crate::model::Mac::for_vtep(vni, ipnet::IpNet::V4(slice)),
        });
        // No IPv6 on the device: the overlay is IPv4, and link-local chatter would be
        // flooded to nobody (learning is off, there is no default destination).
        ops.push(host_sysctl(
            format!("net/ipv6/conf/{dev}/disable_ipv6"),
            "1",
        ));
        ops.push(KernelOp::AddAddr {
            ns: NsRef::Host,
            ifname: dev.clone(),
            addr: ipnet::IpNet::V4(
                ipnet::Ipv4Net::new(crate::overlay::vtep_ip(slice), 32).expect("/32"),
            ),
        });
        ops.push(KernelOp::LinkUp {
            ns: NsRef::Host,
            ifname: dev,
        });
        ops
    }

    /// The device first: it takes its routes, neighbour and FDB entries with it.
    fn remove(&self, spec: &NetworkSpec) -> Vec<KernelOp> {
        let mut ops: Vec<KernelOp> = spec
            .overlay_dev()
            .map(|dev| KernelOp::DeleteLink {
                ns: NsRef::Host,
                ifname: dev,
            })
            .into_iter()
            .collect();
        ops.extend(LinuxBridge.remove(spec));
        ops
    }

    fn port_master(&self, spec: &NetworkSpec) -> Option<String> {
        LinuxBridge.port_master(spec)
    }

    fn attach(&self, spec: &NetworkSpec, port: &str) -> Vec<KernelOp> {
        LinuxBridge.attach(spec, port)
    }

    fn detach(&self, spec: &NetworkSpec, port: &str) -> Vec<KernelOp> {
        LinuxBridge.detach(spec, port)
    }
}
