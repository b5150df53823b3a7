//! Kernel operations as data. The planner produces them, the engine applies them through a
//! backend and keeps the inverse of each applied one for rollback.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::firewall::FwChange;
use crate::model::Mac;
use crate::shaping::Shaping;

/// A network namespace an operation runs in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NsRef {
    /// The namespace nsnet itself runs in (the machine, or a sandbox's root).
    Host,
    /// A namespace file: a name under /run/netns, or an absolute path (CNI).
    Named(String),
}

impl fmt::Display for NsRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NsRef::Host => f.write_str("host"),
            NsRef::Named(n) => f.write_str(n),
        }
    }
}

/// One end of a veth pair to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VethEnd {
    pub ns: NsRef,
    pub name: String,
    pub mac: Option<Mac>,
    /// Bridge to enslave this end to (in the same namespace).
    pub master: Option<String>,
    /// Whether this end gets IPv6 (a link-local address). Off, it goes up with no IPv6 address
    /// generated (addr_gen_mode none): no DAD, MLD or router solicitation from it.
    #[serde(default = "ipv6_default")]
    pub ipv6: bool,
}

fn ipv6_default() -> bool {
    true
}

/// A remote host's slice of an overlay network, as the entries on the local VXLAN device
/// name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayPeer {
    /// The local VXLAN device.
    pub dev: String,
    /// The remote host's slice of the network's subnet.
    pub slice: IpNet,
    /// The remote VXLAN device's address (the slice's network address).
    pub vtep: IpAddr,
    /// The remote VXLAN device's MAC.
    pub mac: Mac,
    /// The remote host's underlay address, where the encapsulated frames go.
    pub underlay: IpAddr,
}

impl fmt::Display for OverlayPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} via {} ({}) at {} on {}",
            self.slice, self.vtep, self.mac, self.underlay, self.dev
        )
    }
}

/// An operation on the kernel, fully specified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum KernelOp {
    /// Create a bridge (down; `LinkUp` follows) with its own MAC, which the kernel then keeps
    /// whatever ports come and go.
    CreateBridge {
        name: String,
        mtu: Option<u32>,
        mac: Mac,
    },
    /// Create a veth pair with both ends up, each in its namespace, in one request.
    CreateVeth {
        a: VethEnd,
        b: VethEnd,
        mtu: Option<u32>,
    },
    AddAddr {
        ns: NsRef,
        ifname: String,
        addr: IpNet,
    },
    DelAddr {
        ns: NsRef,
        ifname: String,
        addr: IpNet,
    },
    AddRoute {
        ns: NsRef,
        dest: IpNet,
        via: Option<IpAddr>,
        dev: Option<String>,
    },
    DelRoute {
        ns: NsRef,
        dest: IpNet,
        via: Option<IpAddr>,
        dev: Option<String>,
    },
    LinkUp {
        ns: NsRef,
        ifname: String,
    },
    /// Delete an interface; deleting one end of a veth deletes both. A missing one is a
    /// `NotFound` failure, which teardown counts as done.
    DeleteLink {
        ns: NsRef,
        ifname: String,
    },
    /// Write a sysctl (e.g. `net.ipv4.ip_forward`) in a namespace. Never undone: other
    /// networks may rely on it, as with Docker.
    Sysctl {
        ns: NsRef,
        key: String,
        value: String,
    },
    /// Hairpin mode on a bridge port (in the host namespace), so a container reaches its own
    /// published port when br_netfilter bridges the DNATed frame back out of its port.
    Hairpin {
        ifname: String,
    },
    /// Make a host interface a port of a bridge (both in the host namespace): what `repair`
    /// does for the host ends of a bridge someone deleted and nsnet made again. A port of
    /// that bridge already is left as it is.
    SetMaster {
        ifname: String,
        master: String,
    },
    /// Create a VXLAN device (down; `LinkUp` follows) in the host namespace: learning off,
    /// its own MAC (the one the other hosts' entries name), UDP `port`.
    CreateVxlan {
        name: String,
        vni: u32,
        port: u16,
        mtu: Option<u32>,
        mac: Mac,
    },
    /// The three entries that make a remote host's slice of an overlay reachable through
    /// `dev`: a route to `slice` via `vtep` onlink, a permanent neighbour entry `vtep` ->
    /// `mac`, and a forwarding-database entry `mac` -> `underlay`. Each replaces what is
    /// there, so the same operation repairs a peer one of whose entries drifted.
    AddOverlayPeer(OverlayPeer),
    /// Deletes those three entries (each missing one counts as done).
    DelOverlayPeer(OverlayPeer),
    /// Firewall element changes, applied as one atomic nf_tables transaction.
    Firewall(Vec<FwChange>),
    /// Shape the egress of an interface (netem root qdisc); empty shaping removes it.
    Shape {
        ns: NsRef,
        ifname: String,
        shaping: Shaping,
    },
    /// An Open vSwitch bridge owned by nsnet's `network`, with its local port (named as the
    /// bridge: the device that holds the gateway addresses) at `mtu`, the bridge at `mac`.
    /// Returns once the switch has it. One with that name is `Exists`.
    OvsAddBridge {
        name: String,
        network: String,
        mtu: Option<u32>,
        mac: Mac,
    },
    /// The Open vSwitch bridge gone, with its ports and local port; missing is `NotFound`.
    OvsDelBridge {
        name: String,
    },
    /// The host interface `port` made a port of the Open vSwitch `bridge`, owned by
    /// `network`; protected ports exchange no frame with each other (icc off). Returns once
    /// the switch has it.
    OvsAddPort {
        bridge: String,
        port: String,
        network: String,
        protected: bool,
    },
    /// The port `port` off the Open vSwitch `bridge`; missing is `NotFound`.
    OvsDelPort {
        bridge: String,
        port: String,
    },
}

impl KernelOp {
    /// The operation that undoes this one, if any.
    pub fn inverse(&self) -> Option<KernelOp> {
        Some(match self {
            KernelOp::CreateBridge { name, .. } => KernelOp::DeleteLink {
                ns: NsRef::Host,
                ifname: name.clone(),
            },
            KernelOp::CreateVeth { a, .. } => KernelOp::DeleteLink {
                ns: a.ns.clone(),
                ifname: a.name.clone(),
            },
            KernelOp::AddAddr { ns, ifname, addr } => KernelOp::DelAddr {
                ns: ns.clone(),
                ifname: ifname.clone(),
                addr: *addr,
            },
            KernelOp::AddRoute { ns, dest, via, dev } => KernelOp::DelRoute {
                ns: ns.clone(),
                dest: *dest,
                via: *via,
                dev: dev.clone(),
            },
            KernelOp::DelAddr { ns, ifname, addr } => KernelOp::AddAddr {
                ns: ns.clone(),
                ifname: ifname.clone(),
                addr: *addr,
            },
            KernelOp::DelRoute { ns, dest, via, dev } => KernelOp::AddRoute {
                ns: ns.clone(),
                dest: *dest,
                via: *via,
                dev: dev.clone(),
            },
            KernelOp::Firewall(changes) => {
                KernelOp::Firewall(changes.iter().rev().map(FwChange::inverse).collect())
            }
            KernelOp::OvsAddBridge { name, .. } => KernelOp::OvsDelBridge { name: name.clone() },
            KernelOp::OvsAddPort { bridge, port, .. } => KernelOp::OvsDelPort {
                bridge: bridge.clone(),
                port: port.clone(),
            },
            KernelOp::OvsDelBridge { .. } | KernelOp::OvsDelPort { .. } => return None,
            KernelOp::CreateVxlan { name, .. } => KernelOp::DeleteLink {
                ns: NsRef::Host,
                ifname: name.clone(),
            },
            KernelOp::AddOverlayPeer(p) => KernelOp::DelOverlayPeer(p.clone()),
            KernelOp::DelOverlayPeer(p) => KernelOp::AddOverlayPeer(p.clone()),
            KernelOp::LinkUp { .. }
            | KernelOp::DeleteLink { .. }
            | KernelOp::Sysctl { .. }
            | KernelOp::Hairpin { .. }
            | KernelOp::SetMaster { .. }
            | KernelOp::Shape { .. } => {
                return None;
            }
        })
    }
}

impl fmt::Display for KernelOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelOp::CreateBridge { name, .. } => write!(f, "create bridge {name}"),
            KernelOp::CreateVxlan { name, vni, .. } => {
                write!(f, "create vxlan {name} (vni {vni})")
            }
            KernelOp::AddOverlayPeer(p) => write!(f, "add overlay peer {p}"),
            KernelOp::DelOverlayPeer(p) => write!(f, "delete overlay peer {p}"),
            KernelOp::CreateVeth { a, b, .. } => write!(
                f,
                "create veth {} in netns {} (peer {} in netns {})",
                a.name, a.ns, b.name, b.ns
            ),
            KernelOp::AddAddr { ns, ifname, addr } => {
                write!(f, "add address {addr} to {ifname} in netns {ns}")
            }
            KernelOp::DelAddr { ns, ifname, addr } => {
                write!(f, "delete address {addr} from {ifname} in netns {ns}")
            }
            KernelOp::AddRoute { ns, dest, via, dev } => {
                write!(f, "add route {dest}")?;
                route_tail(f, ns, via, dev)
            }
            KernelOp::DelRoute { ns, dest, via, dev } => {
                write!(f, "delete route {dest}")?;
                route_tail(f, ns, via, dev)
            }
            KernelOp::LinkUp { ns, ifname } => write!(f, "set {ifname} up in netns {ns}"),
            KernelOp::DeleteLink { ns, ifname } => write!(f, "delete {ifname} in netns {ns}"),
            KernelOp::Sysctl { ns, key, value } => write!(f, "set {key}={value} in netns {ns}"),
            KernelOp::Hairpin { ifname } => write!(f, "set hairpin on bridge port {ifname}"),
            KernelOp::SetMaster { ifname, master } => write!(f, "make {ifname} a port of {master}"),
            KernelOp::Shape {
                ns,
                ifname,
                shaping,
            } => write!(f, "shape {ifname} in netns {ns}: {shaping}"),
            KernelOp::OvsAddBridge { name, .. } => write!(f, "create ovs bridge {name}"),
            KernelOp::OvsDelBridge { name } => write!(f, "delete ovs bridge {name}"),
            KernelOp::OvsAddPort { bridge, port, .. } => {
                write!(f, "add port {port} to ovs bridge {bridge}")
            }
            KernelOp::OvsDelPort { bridge, port } => {
                write!(f, "delete port {port} from ovs bridge {bridge}")
            }
            KernelOp::Firewall(changes) => {
                write!(f, "firewall: ")?;
                for (i, c) in changes.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    if i == 3 {
                        return write!(f, "... ({} changes)", changes.len());
                    }
                    write!(f, "{c}")?;
                }
                Ok(())
            }
        }
    }
}

fn route_tail(
    f: &mut fmt::Formatter<'_>,
    ns: &NsRef,
    via: &Option<IpAddr>,
    dev: &Option<String>,
) -> fmt::Result {
    if let Some(v) = via {
        write!(f, " via {v}")?;
    }
    if let Some(d) = dev {
        write!(f, " dev {d}")?;
    }
    write!(f, " in netns {ns}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverses_round_trip() {
        let add = KernelOp::AddRoute {
            ns: NsRef::Named("blue".into()),
            dest: "192.168.1.0/24".parse().unwrap(),
            via: Some("192.168.15.5".parse().unwrap()),
            dev: None,
        };
        let inv = add.inverse().unwrap();
        assert_eq!(inv.inverse().unwrap(), add);
        assert_eq!(
            add.to_string(),
            "add route 192.168.1.0/24 via 192.168.15.5 in netns blue"
        );
        assert!(
            KernelOp::Sysctl {
                ns: NsRef::Host,
                key: "net.ipv4.ip_forward".into(),
                value: "1".into()
            }
            .inverse()
            .is_none()
        );
    }
}
