//! IPv4/IPv6 interface addresses.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, Parseable};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{NetlinkError, Req, Rtnl};

/// `RTM_NEWADDR`, the reply type of address dumps.
const RTM_NEWADDR: u16 = 20;

/// An address assigned to an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrInfo {
    /// Interface index.
    pub index: u32,
    /// Local address with its prefix length.
    pub addr: IpNet,
}

impl Rtnl {
    /// Adds `addr` to link `index`; EEXIST if already present. `nodad` skips IPv6 DAD so the
    /// address is usable immediately instead of staying tentative for about a second.
    pub fn add_addr(&mut self, index: u32, addr: IpNet, nodad: bool) -> Result<(), NetlinkError> {
        self.ack(add_addr_req(index, addr, nodad))
    }

    /// Removes `addr` from link `index`; `Ok(false)` when it was not there.
    pub fn del_addr(&mut self, index: u32, addr: IpNet) -> Result<bool, NetlinkError> {
        let msg = addr_message(index, addr);
        let req = Req::new(
            format!("delete address {addr} from ifindex {index}"),
            0,
            RouteNetlinkMessage::DelAddress(msg),
        );
        match self.ack(req) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// All IPv4 and IPv6 addresses of the namespace.
    pub fn addrs(&mut self) -> Result<Vec<AddrInfo>, NetlinkError> {
        let op = "dump addresses";
        let replies = self.dump(|| {
            Req::new(
                op.into(),
                0,
                RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            )
        })?;
        let mut out = Vec::new();
        for reply in replies.iter().filter(|r| r.kind == RTM_NEWADDR) {
            let msg =
                AddressMessage::parse(&reply.payload).map_err(|e| NetlinkError::decode(op, e))?;
            if let Some(info) = addr_info(msg).map_err(|e| NetlinkError::decode(op, e))? {
                out.push(info);
            }
        }
        Ok(out)
    }
}

pub(super) fn add_addr_req(index: u32, addr: IpNet, nodad: bool) -> Req {
    let mut msg = addr_message(index, addr);
    if let IpNet::V4(net) = addr {
        if net.prefix_len() < 31 {
            msg.attributes
                .push(AddressAttribute::Broadcast(net.broadcast()));
        }
    } else if nodad {
        msg.header.flags |= AddressHeaderFlags::Nodad;
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    Req::new(
        format!("add address {addr} to ifindex {index}"),
        NLM_F_CREATE | NLM_F_EXCL,
        RouteNetlinkMessage::NewAddress(msg),
    )
}

/// The identifying part of an address request, shared by add and delete.
fn addr_message(index: u32, addr: IpNet) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = addr.prefix_len();
    let ip = addr.addr();
    match ip {
        IpAddr::V4(_) => {
            msg.header.family = AddressFamily::Inet;
            // IFA_LOCAL is the interface's own address; IFA_ADDRESS the peer on point-to-point
            // links. Without a peer both are the same, as iproute2 sends them.
            msg.attributes.push(AddressAttribute::Local(ip));
            msg.attributes.push(AddressAttribute::Address(ip));
        }
        IpAddr::V6(_) => {
            msg.header.family = AddressFamily::Inet6;
            msg.attributes.push(AddressAttribute::Address(ip));
        }
    }
    // Match iproute2: loopback addresses get host scope so they are never used off-box.
    if ip.is_loopback() {
        msg.header.scope = AddressScope::Host;
    }
    msg
}

fn addr_info(msg: AddressMessage) -> Result<Option<AddrInfo>, String> {
    if !matches!(
        msg.header.family,
        AddressFamily::Inet | AddressFamily::Inet6
    ) {
        return Ok(None);
    }
    let mut local = None;
    let mut address = None;
    for attr in msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(ip),
            AddressAttribute::Address(ip) => address = Some(ip),
            _ => {}
        }
    }
    // IFA_LOCAL, when present, is ours; IFA_ADDRESS is then the point-to-point peer.
    let Some(ip) = local.or(address) else {
        return Ok(None);
    };
    let addr = IpNet::new(ip, msg.header.prefix_len).map_err(|e| e.to_string())?;
    Ok(Some(AddrInfo {
        index: msg.header.index,
        addr,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::BridgeSpec;
    use super::*;
    use crate::testkit::in_fresh_netns;

    #[test]
    fn addresses_v4_v6_nodad() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            let br = rtnl
                .add_bridge(&BridgeSpec {
                    name: "br-addr".into(),
                    mtu: None,
                    mac: None,
                    alias: None,
                    up: true,
                })
                .unwrap();
            let v4: IpNet = "172.30.0.1/16".parse().unwrap();
            let v4_31: IpNet = "172.31.0.0/31".parse().unwrap();
            let v6: IpNet = "fd00:dead:beef::1/64".parse().unwrap();
            rtnl.add_addr(br, v4, false).unwrap();
            rtnl.add_addr(br, v4_31, false).unwrap();
            rtnl.add_addr(br, v6, true).unwrap();

            let err = rtnl.add_addr(br, v4, false).unwrap_err();
            assert!(err.is_exists(), "{err:?}");
            assert!(
                err.to_string()
                    .starts_with(&format!("add address 172.30.0.1/16 to ifindex {br}")),
                "{err}"
            );

            let addrs = rtnl.addrs().unwrap();
            for want in [v4, v4_31, v6] {
                assert!(
                    addrs.contains(&AddrInfo {
                        index: br,
                        addr: want
                    }),
                    "{want} missing from {addrs:?}"
                );
            }

            // nodad: the v6 address is not tentative, so it can be bound right away.
            let sock = std::net::UdpSocket::bind("[fd00:dead:beef::1]:0");
            assert!(sock.is_ok(), "v6 address still tentative: {sock:?}");

            assert!(rtnl.del_addr(br, v4).unwrap());
            assert!(!rtnl.del_addr(br, v4).unwrap());
            assert!(rtnl.del_addr(br, v6).unwrap());
            let addrs = rtnl.addrs().unwrap();
            assert!(
                !addrs.iter().any(|a| a.addr == v4 || a.addr == v6),
                "{addrs:?}"
            );
        });
    }

    #[test]
    fn loopback_addresses_after_up() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            let lo = rtnl.link_index("lo").unwrap().unwrap();
            rtnl.set_up(lo).unwrap();
            let addrs = rtnl.addrs().unwrap();
            assert!(addrs.contains(&AddrInfo {
                index: lo,
                addr: "127.0.0.1/8".parse().unwrap()
            }));
            assert!(addrs.contains(&AddrInfo {
                index: lo,
                addr: "::1/128".parse().unwrap()
            }));
        });
    }
}
