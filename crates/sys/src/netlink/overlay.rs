//! A remote host's entries on an overlay's VXLAN device — route (onlink via its VTEP),
//! permanent neighbour entry, forwarding-database entry — added and removed together in one
//! datagram, and read back for drift.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE, Parseable};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::route::{RouteFlags, RouteProtocol, RouteScope, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::route::{RouteSpec, route_message};
use super::{NetlinkError, Req, Rtnl};

/// `RTM_NEWNEIGH`, the reply type of neighbour dumps.
const RTM_NEWNEIGH: u16 = 28;

/// One remote host on the VXLAN device `oif`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    pub oif: u32,
    pub slice: IpNet,
    pub vtep: IpAddr,
    pub mac: [u8; 6],
    pub underlay: IpAddr,
}

/// The entries on one VXLAN device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OverlayEntries {
    /// IPv4 routes through the device: destination and gateway.
    pub routes: Vec<(IpNet, Option<IpAddr>)>,
    /// Permanent IPv4 neighbour entries: address and MAC.
    pub neighbours: Vec<(IpAddr, [u8; 6])>,
    /// FDB entries with a remote destination: MAC and underlay address.
    pub fdb: Vec<([u8; 6], IpAddr)>,
}

impl Rtnl {
    /// Adds (or replaces) a peer's three entries, in one round trip.
    pub fn add_overlay_peer(&mut self, p: &PeerSpec) -> Result<(), NetlinkError> {
        let reqs = vec![neigh_req(p, true), fdb_req(p, true), route_req(p, true)];
        self.exchange(reqs)?
            .into_iter()
            .try_for_each(|r| r.map(drop))
    }

    /// Deletes a peer's three entries, in one round trip; missing ones count as deleted.
    pub fn del_overlay_peer(&mut self, p: &PeerSpec) -> Result<(), NetlinkError> {
        let reqs = vec![route_req(p, false), neigh_req(p, false), fdb_req(p, false)];
        for r in self.exchange(reqs)? {
            match r {
                Err(e) if matches!(e.errno(), Some(libc::ENOENT | libc::ESRCH)) => {}
                r => drop(r?),
            }
        }
        Ok(())
    }

    /// The routes, permanent neighbour entries and remote FDB entries of device `oif`.
    pub fn overlay_entries(&mut self, oif: u32) -> Result<OverlayEntries, NetlinkError> {
        let routes = self
            .routes()?
            .into_iter()
            // The overlay is IPv4: the kernel's own fe80::/64 is none of its entries.
            .filter(|r| r.oif == Some(oif) && r.dest.addr().is_ipv4())
            .map(|r| (r.dest, r.gateway))
            .collect();
        let mut out = OverlayEntries {
            routes,
            ..OverlayEntries::default()
        };
        for family in [AddressFamily::Inet, AddressFamily::Bridge] {
            let op = format!("dump {family} neighbours");
            let replies = self.dump(|| {
                // The kernel filters on the device itself: for FDB dumps by the header's
                // index, for neighbour dumps (which refuse it there) by NDA_IFINDEX.
                let mut msg = NeighbourMessage::default();
                msg.header.family = family;
                if family == AddressFamily::Bridge {
                    msg.header.ifindex = oif;
                } else {
                    msg.attributes.push(NeighbourAttribute::IfIndex(oif));
                }
                Req::new(op.clone(), 0, RouteNetlinkMessage::GetNeighbour(msg))
            })?;
            for reply in replies.iter().filter(|r| r.kind == RTM_NEWNEIGH) {
                let msg = NeighbourMessage::parse(&reply.payload)
                    .map_err(|e| NetlinkError::decode(&op, e))?;
                if msg.header.ifindex != oif {
                    continue;
                }
                let mut dst = None;
                let mut mac = None;
                for a in &msg.attributes {
                    match a {
                        NeighbourAttribute::Destination(d) => dst = ip_of(d),
                        NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
                            mac = Some([l[0], l[1], l[2], l[3], l[4], l[5]]);
                        }
                        _ => {}
                    }
                }
                let (Some(dst), Some(mac)) = (dst, mac) else {
                    continue;
                };
                if family == AddressFamily::Bridge {
                    out.fdb.push((mac, dst));
                } else if msg.header.state == NeighbourState::Permanent {
                    out.neighbours.push((dst, mac));
                }
            }
        }
        Ok(out)
    }
}

fn ip_of(d: &NeighbourAddress) -> Option<IpAddr> {
    match d {
        NeighbourAddress::Inet(a) => Some(IpAddr::V4(*a)),
        NeighbourAddress::Inet6(a) => Some(IpAddr::V6(*a)),
        // AF_BRIDGE entries carry the remote address raw.
        NeighbourAddress::Other(b) if b.len() == 4 => {
            Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])))
        }
        _ => None,
    }
}

fn neigh_addr(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

fn mac_text(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `ip neigh replace VTEP lladdr MAC dev DEV nud permanent`.
fn neigh_req(p: &PeerSpec, add: bool) -> Req {
    let mut msg = NeighbourMessage::default();
    msg.header.family = match p.vtep {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.ifindex = p.oif;
    msg.header.state = NeighbourState::Permanent;
    msg.attributes
        .push(NeighbourAttribute::Destination(neigh_addr(p.vtep)));
    if add {
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(p.mac.to_vec()));
        Req::new(
            format!(
                "add neighbour {} lladdr {} dev ifindex {}",
                p.vtep,
                mac_text(&p.mac),
                p.oif
            ),
            NLM_F_CREATE | NLM_F_REPLACE,
            RouteNetlinkMessage::NewNeighbour(msg),
        )
    } else {
        Req::new(
            format!("delete neighbour {} dev ifindex {}", p.vtep, p.oif),
            0,
            RouteNetlinkMessage::DelNeighbour(msg),
        )
    }
}

/// `bridge fdb replace MAC dev DEV dst UNDERLAY self permanent`.
fn fdb_req(p: &PeerSpec, add: bool) -> Req {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = p.oif;
    msg.header.state = NeighbourState::Permanent;
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(p.mac.to_vec()));
    msg.attributes
        .push(NeighbourAttribute::Destination(neigh_addr(p.underlay)));
    let what = format!(
        "fdb entry {} dst {} dev ifindex {}",
        mac_text(&p.mac),
        p.underlay,
        p.oif
    );
    if add {
        Req::new(
            format!("add {what}"),
            NLM_F_CREATE | NLM_F_REPLACE,
            RouteNetlinkMessage::NewNeighbour(msg),
        )
    } else {
        Req::new(
            format!("delete {what}"),
            0,
            RouteNetlinkMessage::DelNeighbour(msg),
        )
    }
}

/// `ip route replace SLICE via VTEP dev DEV onlink`: the VTEP address is on no local subnet,
/// the neighbour entry resolves it.
fn route_req(p: &PeerSpec, add: bool) -> Req {
    let spec = RouteSpec {
        dest: p.slice,
        gateway: Some(p.vtep),
        oif: Some(p.oif),
    };
    let mut msg = route_message(&spec);
    if add {
        msg.header.protocol = RouteProtocol::Static;
        msg.header.kind = RouteType::Unicast;
        msg.header.scope = RouteScope::Universe;
        msg.header.flags |= RouteFlags::Onlink;
        Req::new(
            format!(
                "add route {} via {} dev ifindex {} onlink",
                p.slice, p.vtep, p.oif
            ),
            NLM_F_CREATE | NLM_F_REPLACE,
            RouteNetlinkMessage::NewRoute(msg),
        )
    } else {
        msg.header.scope = RouteScope::NoWhere;
        Req::new(
            format!(
                "delete route {} via {} dev ifindex {}",
                p.slice, p.vtep, p.oif
            ),
            0,
            RouteNetlinkMessage::DelRoute(msg),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::VxlanSpec;
    use super::*;
    use crate::testkit::in_fresh_netns;

    #[test]
    fn a_peer_is_three_entries_added_replaced_and_deleted_together() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            let mac = [0x02, 0, 0, 0, 0, 1];
            let dev = rtnl
                .add_vxlan(&VxlanSpec {
                    name: "nsvx7".into(),
                    vni: 7,
                    port: 4789,
                    mtu: Some(1450),
                    mac,
                    alias: None,
                })
                .unwrap();
            // The device's own VTEP address: without any address the kernel has no table to
            // judge an onlink gateway in ("Nexthop has invalid gateway").
            rtnl.add_addr(dev, "10.200.1.0/32".parse().unwrap(), false)
                .unwrap();
            rtnl.set_up(dev).unwrap();
            let link = rtnl.link("nsvx7").unwrap().unwrap();
            assert_eq!(
                (link.kind.as_deref(), link.mtu, link.mac),
                (Some("vxlan"), Some(1450), Some(mac))
            );
            let peer = PeerSpec {
                oif: dev,
                slice: "10.200.2.0/24".parse().unwrap(),
                vtep: "10.200.2.0".parse().unwrap(),
                mac: [0x02, 0, 0, 0, 0, 2],
                underlay: "192.0.2.2".parse().unwrap(),
            };
            rtnl.add_overlay_peer(&peer).unwrap();
            let want = OverlayEntries {
                routes: vec![(peer.slice, Some(peer.vtep))],
                neighbours: vec![(peer.vtep, peer.mac)],
                fdb: vec![(peer.mac, peer.underlay)],
            };
            assert_eq!(rtnl.overlay_entries(dev).unwrap(), want);
            // Adding again replaces: the same entries, and a moved host's new address.
            let moved = PeerSpec {
                underlay: "192.0.2.9".parse().unwrap(),
                ..peer.clone()
            };
            rtnl.add_overlay_peer(&moved).unwrap();
            assert_eq!(
                rtnl.overlay_entries(dev).unwrap().fdb,
                vec![(peer.mac, moved.underlay)]
            );
            rtnl.del_overlay_peer(&moved).unwrap();
            assert_eq!(
                rtnl.overlay_entries(dev).unwrap(),
                OverlayEntries::default()
            );
            // Deleting what is gone is done.
            rtnl.del_overlay_peer(&moved).unwrap();
        });
    }
}
