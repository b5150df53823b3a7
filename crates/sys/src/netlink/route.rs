//! Unicast routes in the main table.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, Parseable};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{NetlinkError, Req, Rtnl};

/// `RTM_NEWROUTE`, the reply type of route dumps.
const RTM_NEWROUTE: u16 = 24;

/// A route to add or delete (main table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    /// Destination prefix; `0.0.0.0/0` / `::/0` for a default route.
    pub dest: IpNet,
    /// Next hop; `None` for an on-link route.
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
}

/// A main-table unicast route as reported by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteInfo {
    /// Destination prefix.
    pub dest: IpNet,
    /// Next hop, if any (multipath routes report none).
    pub gateway: Option<IpAddr>,
    /// Output interface index.
    pub oif: Option<u32>,
    /// RTPROT_* (2 kernel, 3 boot, 4 static, ...).
    pub protocol: u8,
    /// RT_SCOPE_* (0 universe, 253 link, 254 host).
    pub scope: u8,
}

impl Rtnl {
    /// Adds a static route to the main table; EEXIST if an identical one exists.
    pub fn add_route(&mut self, r: &RouteSpec) -> Result<(), NetlinkError> {
        self.ack(add_route_req(r))
    }

    /// Deletes a main-table route matching `r`; `Ok(false)` when there was none.
    pub fn del_route(&mut self, r: &RouteSpec) -> Result<bool, NetlinkError> {
        let mut msg = route_message(r);
        // NOWHERE and an unspecified protocol/type act as wildcards when the kernel looks up the
        // route to delete, so routes added by others (or with another scope) still match.
        msg.header.scope = RouteScope::NoWhere;
        let req = Req::new(
            format!("delete route {}", describe(r)),
            0,
            RouteNetlinkMessage::DelRoute(msg),
        );
        match self.ack(req) {
            Ok(()) => Ok(true),
            Err(e) if matches!(e.errno(), Some(libc::ESRCH | libc::ENOENT)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// IPv4 and IPv6 unicast routes of the main table.
    pub fn routes(&mut self) -> Result<Vec<RouteInfo>, NetlinkError> {
        self.routes_of(None)
    }

    /// Unicast routes of the main table of one family (`v6`), or of both with `None`: a dump of
    /// one family never walks the other's table.
    pub fn routes_of(&mut self, v6: Option<bool>) -> Result<Vec<RouteInfo>, NetlinkError> {
        let op = "dump routes";
        let replies = self.dump(|| {
            // With NETLINK_GET_STRICT_CHK the kernel filters on table and type itself; we filter
            // again below for kernels that ignore it.
            let mut msg = RouteMessage::default();
            msg.header.address_family = match v6 {
                None => AddressFamily::Unspec,
                Some(false) => AddressFamily::Inet,
                Some(true) => AddressFamily::Inet6,
            };
            msg.header.table = RouteHeader::RT_TABLE_MAIN;
            msg.header.kind = RouteType::Unicast;
            Req::new(op.into(), 0, RouteNetlinkMessage::GetRoute(msg))
        });
        let replies = match replies {
            // IPv4 creates the main table with its first route: a dump of one family filtered
            // on a table that does not exist yet is ENOENT ("FIB table does not exist"), which
            // means no routes.
            Err(e) if v6.is_some() && e.errno() == Some(libc::ENOENT) => return Ok(Vec::new()),
            r => r?,
        };
        let mut out = Vec::new();
        for reply in replies.iter().filter(|r| r.kind == RTM_NEWROUTE) {
            let msg =
                RouteMessage::parse(&reply.payload).map_err(|e| NetlinkError::decode(op, e))?;
            if let Some(info) = route_info(msg).map_err(|e| NetlinkError::decode(op, e))? {
                out.push(info);
            }
        }
        Ok(out)
    }
}

pub(super) fn add_route_req(r: &RouteSpec) -> Req {
    let mut msg = route_message(r);
    msg.header.protocol = RouteProtocol::Static;
    msg.header.kind = RouteType::Unicast;
    msg.header.scope = if r.gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    Req::new(
        format!("add route {}", describe(r)),
        NLM_F_CREATE | NLM_F_EXCL,
        RouteNetlinkMessage::NewRoute(msg),
    )
}

/// The identifying part of a route request, shared by add and delete.
pub(super) fn route_message(r: &RouteSpec) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match r.dest {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    msg.header.destination_prefix_length = r.dest.prefix_len();
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    if r.dest.prefix_len() > 0 {
        // Host bits would make the kernel reject the prefix ("Invalid prefix for given prefix
        // length"), so send the network address.
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(
                r.dest.network(),
            )));
    }
    if let Some(gw) = r.gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
    }
    if let Some(oif) = r.oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    msg
}

fn describe(r: &RouteSpec) -> String {
    let mut s = r.dest.to_string();
    if let Some(gw) = r.gateway {
        s.push_str(&format!(" via {gw}"));
    }
    if let Some(oif) = r.oif {
        s.push_str(&format!(" dev ifindex {oif}"));
    }
    s
}

fn route_info(msg: RouteMessage) -> Result<Option<RouteInfo>, String> {
    let h = &msg.header;
    if h.kind != RouteType::Unicast {
        return Ok(None);
    }
    let mut table = u32::from(h.table);
    let mut dest = None;
    let mut gateway = None;
    let mut oif = None;
    for attr in &msg.attributes {
        match attr {
            // Authoritative over the 8-bit header field (tables above 255 only appear here).
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(a) => dest = ip_of(a),
            RouteAttribute::Gateway(a) => gateway = ip_of(a),
            RouteAttribute::Oif(i) => oif = Some(*i),
            _ => {}
        }
    }
    if table != u32::from(RouteHeader::RT_TABLE_MAIN) {
        return Ok(None);
    }
    let dest = match (h.address_family, dest) {
        (_, Some(ip)) => ip,
        (AddressFamily::Inet, None) => IpAddr::from([0u8; 4]),
        (AddressFamily::Inet6, None) => IpAddr::from([0u16; 8]),
        _ => return Ok(None),
    };
    Ok(Some(RouteInfo {
        dest: IpNet::new(dest, h.destination_prefix_length).map_err(|e| e.to_string())?,
        gateway,
        oif,
        protocol: h.protocol.into(),
        scope: h.scope.into(),
    }))
}

fn ip_of(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(ip) => Some(IpAddr::V4(*ip)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::BridgeSpec;
    use super::*;
    use crate::testkit::in_fresh_netns;

    #[test]
    fn dumps_of_one_family() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            // A fresh namespace has no IPv4 main table yet: no routes, not an error.
            assert_eq!(rtnl.routes_of(Some(false)).unwrap(), vec![]);
            let br = rtnl
                .add_bridge(&BridgeSpec {
                    name: "br-fam".into(),
                    mtu: None,
                    mac: None,
                    alias: None,
                    up: true,
                })
                .unwrap();
            rtnl.add_addr(br, "10.51.0.1/24".parse().unwrap(), false)
                .unwrap();
            rtnl.add_addr(br, "fd51::1/64".parse().unwrap(), true)
                .unwrap();
            let v4 = rtnl.routes_of(Some(false)).unwrap();
            let v6 = rtnl.routes_of(Some(true)).unwrap();
            assert!(v4.iter().all(|r| r.dest.addr().is_ipv4()), "{v4:?}");
            assert!(v6.iter().all(|r| r.dest.addr().is_ipv6()), "{v6:?}");
            assert!(v4.iter().any(|r| r.dest == "10.51.0.0/24".parse().unwrap()));
            assert!(v6.iter().any(|r| r.dest == "fd51::/64".parse().unwrap()));
            assert_eq!(rtnl.routes().unwrap().len(), v4.len() + v6.len());
            let link = rtnl.link_by_index(br).unwrap().expect("bridge by index");
            assert_eq!((link.name.as_str(), link.index), ("br-fam", br));
            assert_eq!(rtnl.link_by_index(br + 1000).unwrap(), None);
        });
    }

    #[test]
    fn routes_with_gateway_and_dump() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            let br = rtnl
                .add_bridge(&BridgeSpec {
                    name: "br-rt".into(),
                    mtu: None,
                    mac: None,
                    alias: None,
                    up: true,
                })
                .unwrap();
            rtnl.add_addr(br, "10.50.0.1/24".parse().unwrap(), false)
                .unwrap();
            rtnl.add_addr(br, "fd50::1/64".parse().unwrap(), true)
                .unwrap();

            let default_v4 = RouteSpec {
                dest: "0.0.0.0/0".parse().unwrap(),
                gateway: Some("10.50.0.254".parse().unwrap()),
                oif: Some(br),
            };
            let via_v6 = RouteSpec {
                dest: "fd99::/48".parse().unwrap(),
                gateway: Some("fd50::fe".parse().unwrap()),
                oif: Some(br),
            };
            let onlink = RouteSpec {
                dest: "10.60.0.0/16".parse().unwrap(),
                gateway: None,
                oif: Some(br),
            };
            for r in [&default_v4, &via_v6, &onlink] {
                rtnl.add_route(r).unwrap();
            }
            let err = rtnl.add_route(&default_v4).unwrap_err();
            assert!(err.is_exists(), "{err:?}");
            assert!(
                err.to_string().starts_with(&format!(
                    "add route 0.0.0.0/0 via 10.50.0.254 dev ifindex {br}"
                )),
                "{err}"
            );

            let routes = rtnl.routes().unwrap();
            let find = |dest: &str| {
                let dest: IpNet = dest.parse().unwrap();
                routes.iter().find(|r| r.dest == dest).cloned()
            };
            let d = find("0.0.0.0/0").expect("default route");
            assert_eq!(d.gateway, default_v4.gateway);
            assert_eq!(d.oif, Some(br));
            assert_eq!(d.protocol, 4);
            assert_eq!(d.scope, 0);
            let v6 = find("fd99::/48").expect("v6 route");
            assert_eq!(v6.gateway, via_v6.gateway);
            assert_eq!(v6.protocol, 4);
            let o = find("10.60.0.0/16").expect("on-link route");
            assert_eq!(o.gateway, None);
            assert_eq!(o.scope, 253);
            // Kernel-made prefix route of the address, and nothing from the local table.
            let k = find("10.50.0.0/24").expect("prefix route");
            assert_eq!(k.protocol, 2);
            assert!(
                find("10.50.0.1/32").is_none(),
                "local table leaked: {routes:?}"
            );
            assert!(routes.iter().all(|r| !r.dest.addr().is_multicast()));

            assert!(rtnl.del_route(&default_v4).unwrap());
            assert!(!rtnl.del_route(&default_v4).unwrap());
            assert!(rtnl.del_route(&via_v6).unwrap());
            assert!(!rtnl.del_route(&via_v6).unwrap());
            let routes = rtnl.routes().unwrap();
            assert!(
                !routes.iter().any(|r| r.dest.prefix_len() == 0),
                "{routes:?}"
            );
        });
    }
}
