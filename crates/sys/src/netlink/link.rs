//! Links: lookup, dump, bridge and veth creation, up/master/hairpin, deletion.

use std::os::fd::RawFd;

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_EXCL, Parseable};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVeth, InfoVxlan,
    LinkAttribute, LinkExtentMask, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
    LinkProtoInfoBridge,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{NetlinkError, Replies, Req, Rtnl};
use crate::nl;

/// `IFLA_BRPORT_MODE` (hairpin) inside a bridge port's IFLA_PROTINFO.
const IFLA_BRPORT_MODE: u16 = 4;
/// `RTM_NEWLINK`, the reply type for link GETs and dumps.
const RTM_NEWLINK: u16 = 16;
/// What a link dump is called in its errors.
pub(super) const LINK_DUMP: &str = "dump links";

/// A Linux bridge to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    /// Interface name.
    pub name: String,
    /// MTU; kernel default when `None`.
    pub mtu: Option<u32>,
    /// The bridge's MAC (IFLA_ADDRESS). Given at create, the kernel keeps it; `None` leaves it
    /// to the kernel, which then takes the lowest port MAC and changes it as ports come and go.
    pub mac: Option<[u8; 6]>,
    /// IFLA_IFALIAS, handy for tagging what created the device.
    pub alias: Option<String>,
    /// Bring it up in the same request.
    pub up: bool,
}

/// A veth pair to create in one request: host end here, peer possibly in another netns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethSpec {
    /// Host-side interface name.
    pub name: String,
    /// Host-side IFLA_IFALIAS.
    pub alias: Option<String>,
    /// MTU for both ends.
    pub mtu: Option<u32>,
    /// Bridge (ifindex) to enslave the host end to.
    pub master: Option<u32>,
    /// Bring the host end up.
    pub up: bool,
    /// With `up`: let the kernel give the host end its IPv6 link-local address; without it,
    /// the end goes up with no IPv6 address generated (no DAD, no MLD reports).
    pub ipv6: bool,
    /// Peer interface name (inside `peer_netns`).
    pub peer_name: String,
    /// Namespace to create the peer in directly; same netns as the socket when `None`.
    pub peer_netns: Option<RawFd>,
    /// Peer MAC address; random when `None`.
    pub peer_mac: Option<[u8; 6]>,
}

/// A VXLAN device to create (no lower device, no local address: the kernel picks the source
/// address by route, and one UDP socket per port serves every VNI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    /// UDP destination (and listening) port.
    pub port: u16,
    pub mtu: Option<u32>,
    pub mac: [u8; 6],
    pub alias: Option<String>,
}

/// A link as reported by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// IFLA_INFO_KIND (`bridge`, `veth`, ...); `None` for physical/loopback devices.
    pub kind: Option<String>,
    /// Master device index (e.g. the bridge a port belongs to).
    pub master: Option<u32>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Hardware address, when it is an Ethernet-style 6-byte one.
    pub mac: Option<[u8; 6]>,
    /// MTU.
    pub mtu: Option<u32>,
    /// IFLA_IFALIAS.
    pub alias: Option<String>,
}

impl Rtnl {
    /// Interface index of `name`, `None` when it does not exist.
    pub fn link_index(&mut self, name: &str) -> Result<Option<u32>, NetlinkError> {
        Ok(self.link_indexes(&[name])?[0])
    }

    /// Interface indexes of the links called `names` (`None` for a missing one), in one
    /// round trip.
    pub fn link_indexes(&mut self, names: &[&str]) -> Result<Vec<Option<u32>>, NetlinkError> {
        let reqs = names.iter().map(|n| get_link_req(n)).collect();
        self.exchange(reqs)?
            .into_iter()
            .zip(names)
            .map(|(result, name)| match result {
                Ok(replies) => {
                    first_link(&format!("get link {name}"), replies).map(|l| Some(l.index))
                }
                Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
                Err(e) => Err(e),
            })
            .collect()
    }

    /// The link called `name`, `None` when it does not exist.
    pub fn link(&mut self, name: &str) -> Result<Option<LinkInfo>, NetlinkError> {
        let req = get_link_req(name);
        let op = req.op.clone();
        match self.call(req) {
            Ok(replies) => first_link(&op, replies).map(Some),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The link with interface index `index`, `None` when it does not exist.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<LinkInfo>, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
        let op = format!("get link with index {index}");
        match self.call(Req::new(op.clone(), 0, RouteNetlinkMessage::GetLink(msg))) {
            Ok(replies) => first_link(&op, replies).map(Some),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// All links of the namespace.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>, NetlinkError> {
        self.link_dump()?
            .iter()
            .map(|r| parse_link(&r.payload).map_err(|e| NetlinkError::decode(LINK_DUMP, e)))
            .collect()
    }

    /// The link messages of a dump of every link of the namespace (no statistics), for the
    /// caller to decode (an error decoding one names the operation `LINK_DUMP`).
    pub(super) fn link_dump(&mut self) -> Result<Vec<nl::Reply>, NetlinkError> {
        let replies = self.dump(|| {
            let mut msg = LinkMessage::default();
            msg.attributes
                .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
            Req::new(LINK_DUMP.into(), 0, RouteNetlinkMessage::GetLink(msg))
        })?;
        Ok(replies
            .into_iter()
            .filter(|r| r.kind == RTM_NEWLINK)
            .collect())
    }

    /// Creates a bridge and returns its ifindex; fails with EEXIST if the name is taken.
    ///
    /// The create and a GETLINK for its index share one datagram: one round trip, plus one
    /// more when an alias is set (the kernel ignores IFLA_IFALIAS on create).
    pub fn add_bridge(&mut self, b: &BridgeSpec) -> Result<u32, NetlinkError> {
        let mut msg = LinkMessage::default();
        set_up_flag(&mut msg, b.up);
        msg.attributes.push(LinkAttribute::IfName(b.name.clone()));
        if let Some(mtu) = b.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(mac) = b.mac {
            msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        msg.attributes
            .push(LinkAttribute::LinkInfo(vec![NlLinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let create = Req::new(
            format!("create bridge {}", b.name),
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewLink(msg),
        );
        let get = get_link_req(&b.name);
        let get_op = get.op.clone();
        let mut results = self.exchange(vec![create, get])?.into_iter();
        let (created, got) = (results.next(), results.next());
        created.expect("create result")?;
        let index = first_link(&get_op, got.expect("get result")?)?.index;
        if let Some(alias) = &b.alias {
            self.ack(set_alias_req(&b.name, alias))
                .inspect_err(|_| self.rollback(&b.name))?;
        }
        Ok(index)
    }

    /// Creates a VXLAN device with learning off (its remote entries are programmed, never
    /// learnt) and returns its ifindex; fails with EEXIST if the name or the VNI is taken.
    pub fn add_vxlan(&mut self, v: &VxlanSpec) -> Result<u32, NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(v.name.clone()));
        if let Some(mtu) = v.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        msg.attributes.push(LinkAttribute::Address(v.mac.to_vec()));
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            NlLinkInfo::Kind(InfoKind::Vxlan),
            NlLinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::Id(v.vni),
                InfoVxlan::Port(v.port),
                InfoVxlan::Learning(false),
            ])),
        ]));
        let create = Req::new(
            format!("create vxlan {} (vni {})", v.name, v.vni),
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewLink(msg),
        );
        let get = get_link_req(&v.name);
        let get_op = get.op.clone();
        let mut results = self.exchange(vec![create, get])?.into_iter();
        let (created, got) = (results.next(), results.next());
        created.expect("create result")?;
        let index = first_link(&get_op, got.expect("get result")?)?.index;
        if let Some(alias) = &v.alias {
            self.ack(set_alias_req(&v.name, alias))
                .inspect_err(|_| self.rollback(&v.name))?;
        }
        Ok(index)
    }

    /// Creates a veth pair with ONE RTM_NEWLINK: host end (name, MTU, master) here and the
    /// peer (name, MAC, MTU) directly in `peer_netns`, so the peer never shows up in our netns;
    /// returns the host end's ifindex.
    ///
    /// What the kernel does not take in the create message follows in the same datagram (one
    /// round trip): IFLA_IFALIAS (ignored on create), and, for a host end without IPv6, no
    /// address generation before it goes up. The peer is left down: veth cannot set it up
    /// before the two ends are tied together (ENOTCONN), so the caller does that in the peer's
    /// namespace ([`Rtnl::set_up_by_name`]). If a follow-up fails, the pair is deleted again so
    /// a retry starts clean.
    ///
    /// The follow-ups name the host end: the caller makes sure that name is free (if the
    /// create failed because it is taken, they would change the link that holds it).
    pub fn add_veth(&mut self, v: &VethSpec) -> Result<u32, NetlinkError> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(v.peer_name.clone()));
        if let Some(mac) = v.peer_mac {
            peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
        }
        if let Some(mtu) = v.mtu {
            peer.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(fd) = v.peer_netns {
            peer.attributes.push(LinkAttribute::NetNsFd(fd));
        }
        one_queue(&mut peer);

        let mut msg = LinkMessage::default();
        set_up_flag(&mut msg, v.up && v.ipv6);
        msg.attributes.push(LinkAttribute::IfName(v.name.clone()));
        one_queue(&mut msg);
        if let Some(mtu) = v.mtu {
            msg.attributes.push(LinkAttribute::Mtu(mtu));
        }
        if let Some(master) = v.master {
            msg.attributes.push(LinkAttribute::Controller(master));
        }
        msg.attributes.push(LinkAttribute::LinkInfo(vec![
            NlLinkInfo::Kind(InfoKind::Veth),
            NlLinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        let mut reqs = vec![Req::new(
            format!("create veth {} (peer {})", v.name, v.peer_name),
            NLM_F_CREATE | NLM_F_EXCL,
            RouteNetlinkMessage::NewLink(msg),
        )];
        if let Some(alias) = &v.alias {
            reqs.push(set_alias_req(&v.name, alias));
        }
        let addrgen = (v.up && !v.ipv6).then_some(reqs.len());
        if addrgen.is_some() {
            reqs.extend(up_without_ipv6_reqs(&v.name));
        }
        reqs.push(get_link_req(&v.name));
        let mut results = self.exchange(reqs)?;
        let followups = results.split_off(1);
        results.pop().expect("create result")?;
        finish(&v.name, followups, addrgen.map(|i| i - 1)).inspect_err(|_| self.rollback(&v.name))
    }

    /// Best-effort removal of a link we just created, after its configuration failed.
    fn rollback(&mut self, name: &str) {
        if let Err(e) = self.del_link(name) {
            tracing::warn!("rolling back {name}: {e}");
        }
    }

    /// Deletes the link called `name`; `Ok(false)` when it did not exist.
    pub fn del_link(&mut self, name: &str) -> Result<bool, NetlinkError> {
        match self.ack(del_link_req(name)) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets the link called `name` administratively up and returns its ifindex, in one round
    /// trip; without `ipv6`, first (while it is still down) no IPv6 address is to be generated
    /// for it (addr_gen_mode none). A kernel without IPv6 refuses that part: the link goes up
    /// without it.
    pub fn set_up_by_name(&mut self, name: &str, ipv6: bool) -> Result<u32, NetlinkError> {
        let mut reqs = if ipv6 {
            vec![set_up_by_name_req(name)]
        } else {
            up_without_ipv6_reqs(name)
        };
        reqs.push(get_link_req(name));
        finish(name, self.exchange(reqs)?, (!ipv6).then_some(0))
    }

    /// [`Rtnl::set_up_by_name`] with the GETLINK first, while the link is still down: for a
    /// veth's peer going up before its other end, so without carrier. A GETLINK makes the
    /// kernel apply the link's pending carrier change there and then, and for a running link
    /// without carrier that deactivates its queues behind an expedited RCU grace period, the
    /// longest wait of a connect after the veth's creation. Asked while the link is down,
    /// nothing waits; the carrier comes on with the other end.
    pub fn index_then_up(&mut self, name: &str, ipv6: bool) -> Result<u32, NetlinkError> {
        let mut reqs = vec![get_link_req(name)];
        if ipv6 {
            reqs.push(set_up_by_name_req(name));
        } else {
            reqs.extend(up_without_ipv6_reqs(name));
        }
        let mut results = self.exchange(reqs)?;
        let got = results.remove(0);
        results.push(got);
        finish(name, results, (!ipv6).then_some(0))
    }

    /// Sets the link administratively up.
    pub fn set_up(&mut self, index: u32) -> Result<(), NetlinkError> {
        self.ack(set_up_req(index))
    }

    /// Makes the link a port of the bridge `master` (a port of it already stays one).
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Controller(master));
        self.ack(Req::new(
            format!("set master ifindex {master} of ifindex {index}"),
            0,
            RouteNetlinkMessage::SetLink(msg),
        ))
    }

    /// Turns hairpin mode on a bridge port on or off, so traffic may leave through the port it
    /// came in on (needed for hairpin NAT: a container reaching itself via a published port).
    pub fn set_bridge_port_hairpin(&mut self, index: u32, on: bool) -> Result<(), NetlinkError> {
        let mut msg = LinkMessage::default();
        msg.header.interface_family = AddressFamily::Bridge;
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
            LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_MODE, vec![u8::from(on)])),
        ]));
        self.ack(Req::new(
            format!(
                "set hairpin {} on bridge port ifindex {index}",
                if on { "on" } else { "off" }
            ),
            0,
            RouteNetlinkMessage::SetLink(msg),
        ))
    }
}

pub(super) fn set_up_req(index: u32) -> Req {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    set_up_flag(&mut msg, true);
    Req::new(
        format!("set link ifindex {index} up"),
        0,
        RouteNetlinkMessage::SetLink(msg),
    )
}

fn del_link_req(name: &str) -> Req {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    Req::new(
        format!("delete link {name}"),
        0,
        RouteNetlinkMessage::DelLink(msg),
    )
}

fn set_up_by_name_req(name: &str) -> Req {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    set_up_flag(&mut msg, true);
    Req::new(
        format!("set link {name} up"),
        0,
        RouteNetlinkMessage::SetLink(msg),
    )
}

/// No IPv6 address generation for link `name`, then up: two messages, since in one the kernel
/// applies the flags first and the link-local address would already be there.
fn up_without_ipv6_reqs(name: &str) -> Vec<Req> {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg.attributes
        .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
            vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
        )]));
    vec![
        Req::new(
            format!("generate no IPv6 address for link {name}"),
            0,
            RouteNetlinkMessage::SetLink(msg),
        ),
        set_up_by_name_req(name),
    ]
}

/// The results of requests on link `name` ending with its GETLINK: the first failure, else the
/// link's index. The addr_gen_mode request at `addrgen` may fail with EAFNOSUPPORT: a kernel
/// without IPv6 generates no IPv6 address anyway.
fn finish(
    name: &str,
    mut results: Vec<Result<Replies, NetlinkError>>,
    addrgen: Option<usize>,
) -> Result<u32, NetlinkError> {
    let got = results
        .pop()
        .ok_or_else(|| NetlinkError::decode(name, "no answer to GETLINK"))?;
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Err(e) if Some(i) == addrgen && e.errno() == Some(libc::EAFNOSUPPORT) => {}
            result => drop(result?),
        }
    }
    Ok(first_link(&format!("get link {name}"), got?)?.index)
}

fn set_alias_req(name: &str, alias: &str) -> Req {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg.attributes
        .push(LinkAttribute::IfAlias(alias.to_owned()));
    Req::new(
        format!("set alias of {name} to {alias:?}"),
        0,
        RouteNetlinkMessage::SetLink(msg),
    )
}

fn get_link_req(name: &str) -> Req {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    // Counters are the bulk of a link message and we never read them.
    msg.attributes
        .push(LinkAttribute::ExtMask(vec![LinkExtentMask::SkipStats]));
    Req::new(
        format!("get link {name}"),
        0,
        RouteNetlinkMessage::GetLink(msg),
    )
}

/// One transmit and one receive queue, asked for at creation. Without them the kernel makes a
/// veth end with a queue per possible CPU, then cuts the queues in use to one, which waits for
/// an expedited RCU grace period: two per veth, the longest waits of a connect (1 queue is what
/// a veth uses either way; only raising it later with `ethtool -L`, for XDP, is given up).
fn one_queue(msg: &mut LinkMessage) {
    msg.attributes.push(LinkAttribute::NumTxQueues(1));
    msg.attributes.push(LinkAttribute::NumRxQueues(1));
}

fn set_up_flag(msg: &mut LinkMessage, up: bool) {
    if up {
        msg.header.flags |= LinkFlags::Up;
        msg.header.change_mask |= LinkFlags::Up;
    }
}

fn first_link(op: &str, replies: Replies) -> Result<LinkInfo, NetlinkError> {
    let reply = replies
        .msgs
        .iter()
        .find(|r| r.kind == RTM_NEWLINK)
        .ok_or_else(|| NetlinkError::decode(op, "no RTM_NEWLINK in reply"))?;
    parse_link(&reply.payload).map_err(|e| NetlinkError::decode(op, e))
}

fn parse_link(payload: &[u8]) -> Result<LinkInfo, String> {
    let msg = LinkMessage::parse(payload).map_err(|e| e.to_string())?;
    let mut info = LinkInfo {
        index: msg.header.index,
        name: String::new(),
        kind: None,
        master: None,
        up: msg.header.flags.contains(LinkFlags::Up),
        mac: None,
        mtu: None,
        alias: None,
    };
    for attr in msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => info.name = n,
            LinkAttribute::Controller(m) if m != 0 => info.master = Some(m),
            LinkAttribute::Mtu(m) => info.mtu = Some(m),
            LinkAttribute::IfAlias(a) => info.alias = Some(a),
            LinkAttribute::Address(a) => info.mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            LinkAttribute::LinkInfo(infos) => {
                info.kind = infos.into_iter().find_map(|i| match i {
                    NlLinkInfo::Kind(k) => Some(k.to_string()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsFd, AsRawFd};

    use netlink_packet_route::link::{InfoBridgePort, InfoPortData};

    use super::*;
    use crate::testkit::{in_fresh_netns, new_netns_fd};

    fn bridge(name: &str, up: bool) -> BridgeSpec {
        BridgeSpec {
            name: name.into(),
            mtu: Some(1400),
            mac: None,
            alias: Some("nsnet test".into()),
            up,
        }
    }

    /// Hairpin flag of a bridge port, read back from IFLA_INFO_PORT_DATA.
    fn hairpin(rtnl: &mut Rtnl, name: &str) -> Option<bool> {
        let replies = rtnl.call(get_link_req(name)).unwrap();
        let msg = LinkMessage::parse(&replies.msgs[0].payload).unwrap();
        msg.attributes.into_iter().find_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => infos.into_iter().find_map(|i| match i {
                NlLinkInfo::PortData(InfoPortData::BridgePort(attrs)) => {
                    attrs.into_iter().find_map(|p| match p {
                        InfoBridgePort::HairpinMode(on) => Some(on),
                        _ => None,
                    })
                }
                _ => None,
            }),
            _ => None,
        })
    }

    #[test]
    fn bridge_create_and_exists() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            let idx = rtnl.add_bridge(&bridge("br-test0", true)).unwrap();
            let link = rtnl.link("br-test0").unwrap().unwrap();
            assert_eq!(link.index, idx);
            assert_eq!(link.kind.as_deref(), Some("bridge"));
            assert_eq!(link.mtu, Some(1400));
            assert_eq!(link.alias.as_deref(), Some("nsnet test"));
            assert!(link.up);
            assert!(link.mac.is_some());
            assert_eq!(rtnl.link_index("br-test0").unwrap(), Some(idx));

            let err = rtnl.add_bridge(&bridge("br-test0", true)).unwrap_err();
            assert!(err.is_exists(), "{err:?}");
            assert!(
                err.to_string()
                    .starts_with("create bridge br-test0: File exists"),
                "{err}"
            );

            let names: Vec<_> = rtnl.links().unwrap().into_iter().map(|l| l.name).collect();
            assert_eq!(names, ["lo", "br-test0"]);
            let lo = rtnl.link("lo").unwrap().unwrap();
            assert_eq!(lo.kind, None);
            assert!(!lo.up);
        });
    }

    #[test]
    fn failed_follow_up_rolls_back_create() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            // IFALIASZ is 256: the alias follow-up fails after the bridge was created.
            let spec = BridgeSpec {
                alias: Some("x".repeat(300)),
                ..bridge("br-rb", false)
            };
            let err = rtnl.add_bridge(&spec).unwrap_err();
            assert!(err.to_string().starts_with("set alias of br-rb"), "{err}");
            assert_eq!(rtnl.link_index("br-rb").unwrap(), None);

            let err = rtnl
                .add_veth(&VethSpec {
                    name: "vrb0".into(),
                    alias: Some("y".repeat(300)),
                    mtu: None,
                    master: None,
                    up: false,
                    ipv6: true,
                    peer_name: "vrb1".into(),
                    peer_netns: None,
                    peer_mac: None,
                })
                .unwrap_err();
            assert!(err.to_string().starts_with("set alias of vrb0"), "{err}");
            assert_eq!(rtnl.link_index("vrb0").unwrap(), None);
            assert_eq!(rtnl.link_index("vrb1").unwrap(), None);
        });
    }

    /// Whether link `name` has an IPv6 link-local address, waiting up to a second for the
    /// kernel to add it (it does so asynchronously once the link has carrier).
    fn gets_link_local(rtnl: &mut Rtnl, name: &str) -> bool {
        let index = rtnl.link_index(name).unwrap().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        loop {
            let found = rtnl.addrs().unwrap().iter().any(|a| {
                a.index == index && matches!(a.addr.addr(), std::net::IpAddr::V6(v6) if v6.is_unicast_link_local())
            });
            if found || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    #[test]
    fn veth_ends_go_up_with_and_without_ipv6() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            let index = rtnl
                .add_veth(&VethSpec {
                    name: "vs0".into(),
                    alias: Some("tag".into()),
                    mtu: None,
                    master: None,
                    up: true,
                    ipv6: false,
                    peer_name: "vs1".into(),
                    peer_netns: None,
                    peer_mac: None,
                })
                .unwrap();
            let host = rtnl.link("vs0").unwrap().unwrap();
            assert_eq!(host.index, index);
            assert!(host.up);
            assert_eq!(host.alias.as_deref(), Some("tag"));
            assert!(!rtnl.link("vs1").unwrap().unwrap().up);
            let peer = rtnl.set_up_by_name("vs1", true).unwrap();
            assert_eq!(rtnl.link_index("vs1").unwrap(), Some(peer));
            assert!(rtnl.link("vs1").unwrap().unwrap().up);
            assert!(gets_link_local(&mut rtnl, "vs1"));
            assert!(!gets_link_local(&mut rtnl, "vs0"));
            let err = rtnl.set_up_by_name("nope0", false).unwrap_err();
            assert!(err.is_not_found(), "{err:?}");
        });
    }

    #[test]
    fn a_peer_asked_for_its_index_then_up_comes_up_with_its_other_end() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            rtnl.add_veth(&VethSpec {
                name: "vp0".into(),
                alias: None,
                mtu: None,
                master: None,
                up: false,
                ipv6: false,
                peer_name: "vp1".into(),
                peer_netns: None,
                peer_mac: None,
            })
            .unwrap();
            let peer = rtnl.index_then_up("vp1", false).unwrap();
            assert_eq!(rtnl.link_index("vp1").unwrap(), Some(peer));
            assert!(rtnl.link("vp1").unwrap().unwrap().up);
            rtnl.set_up_by_name("vp0", false).unwrap();
            // Both ends up (so with carrier), and the peer generated no IPv6 address.
            assert!(rtnl.link("vp0").unwrap().unwrap().up);
            assert!(!gets_link_local(&mut rtnl, "vp1"));
            // Made with the one queue each end uses (none to cut at creation).
            for end in ["vp0", "vp1"] {
                let replies = rtnl.call(get_link_req(end)).unwrap();
                let msg = LinkMessage::parse(&replies.msgs[0].payload).unwrap();
                let queues: Vec<_> = msg
                    .attributes
                    .into_iter()
                    .filter(|a| {
                        matches!(
                            a,
                            LinkAttribute::NumTxQueues(_) | LinkAttribute::NumRxQueues(_)
                        )
                    })
                    .collect();
                assert_eq!(
                    queues,
                    [LinkAttribute::NumTxQueues(1), LinkAttribute::NumRxQueues(1)],
                    "{end}"
                );
            }
            let err = rtnl.index_then_up("nope0", true).unwrap_err();
            assert!(err.is_not_found(), "{err:?}");
        });
    }

    #[test]
    fn del_link_is_idempotent() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            assert_eq!(rtnl.link_index("br-gone").unwrap(), None);
            assert_eq!(rtnl.link("br-gone").unwrap(), None);
            rtnl.add_bridge(&bridge("br-gone", false)).unwrap();
            assert!(rtnl.del_link("br-gone").unwrap());
            assert!(!rtnl.del_link("br-gone").unwrap());
            assert_eq!(rtnl.link_index("br-gone").unwrap(), None);
        });
    }

    #[test]
    fn bridge_keeps_a_given_mac_as_ports_come_and_go() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            // The highest unicast MAC: every port's is lower, so an unpinned bridge takes it.
            let pinned = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xfe];
            for (name, mac) in [("br-pin", Some(pinned)), ("br-free", None)] {
                let br = rtnl
                    .add_bridge(&BridgeSpec {
                        mac,
                        ..bridge(name, true)
                    })
                    .unwrap();
                let port = format!("{name}-p");
                rtnl.add_veth(&VethSpec {
                    name: port.clone(),
                    alias: None,
                    mtu: None,
                    master: Some(br),
                    up: true,
                    ipv6: true,
                    peer_name: format!("{name}-q"),
                    peer_netns: None,
                    peer_mac: None,
                })
                .unwrap();
                let port_mac = rtnl.link(&port).unwrap().unwrap().mac.unwrap();
                let with_port = rtnl.link(name).unwrap().unwrap().mac.unwrap();
                assert!(rtnl.del_link(&port).unwrap());
                let after = rtnl.link(name).unwrap().unwrap().mac.unwrap();
                match mac {
                    Some(m) => assert_eq!((with_port, after), (m, m), "{name}"),
                    // Unpinned, the kernel follows the port: what nsnet's bridges no longer do.
                    None => assert_eq!(with_port, port_mac, "{name}"),
                }
            }
        });
    }

    #[test]
    fn veth_peer_created_in_other_netns() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            let br = rtnl.add_bridge(&bridge("br-v", true)).unwrap();
            let peer_ns = new_netns_fd();
            let mac = [0x02, 0x42, 0xac, 0x11, 0x00, 0x02];
            rtnl.add_veth(&VethSpec {
                name: "nsv1a2b3c4".into(),
                alias: Some("ctr-1".into()),
                mtu: Some(1400),
                master: Some(br),
                up: true,
                ipv6: true,
                peer_name: "eth0".into(),
                peer_netns: Some(peer_ns.as_raw_fd()),
                peer_mac: Some(mac),
            })
            .unwrap();

            let host = rtnl.link("nsv1a2b3c4").unwrap().unwrap();
            assert_eq!(host.kind.as_deref(), Some("veth"));
            assert_eq!(host.master, Some(br));
            assert_eq!(host.mtu, Some(1400));
            assert_eq!(host.alias.as_deref(), Some("ctr-1"));
            assert!(host.up);
            assert_eq!(rtnl.link_index("eth0").unwrap(), None);

            let mut there = Rtnl::open_in(peer_ns.as_fd()).unwrap();
            let peer = there.link("eth0").unwrap().unwrap();
            assert_eq!(peer.kind.as_deref(), Some("veth"));
            assert_eq!(peer.mac, Some(mac));
            assert_eq!(peer.mtu, Some(1400));
            assert!(!peer.up);
            assert_eq!(there.set_up_by_name("eth0", true).unwrap(), peer.index);
            assert!(there.link("eth0").unwrap().unwrap().up);

            // Same names again: the host end exists, error names the veth and its peer.
            let err = rtnl
                .add_veth(&VethSpec {
                    name: "nsv1a2b3c4".into(),
                    alias: None,
                    mtu: None,
                    master: None,
                    up: false,
                    ipv6: true,
                    peer_name: "eth0".into(),
                    peer_netns: Some(peer_ns.as_raw_fd()),
                    peer_mac: None,
                })
                .unwrap_err();
            assert!(err.is_exists(), "{err:?}");
            assert!(
                err.to_string()
                    .starts_with("create veth nsv1a2b3c4 (peer eth0): File exists"),
                "{err}"
            );

            // Deleting the host end removes the peer too.
            assert!(rtnl.del_link("nsv1a2b3c4").unwrap());
            assert_eq!(there.link_index("eth0").unwrap(), None);
        });
    }

    #[test]
    fn veth_carries_udp_between_namespaces() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            let peer_ns = new_netns_fd();
            rtnl.add_veth(&VethSpec {
                name: "veth-h".into(),
                alias: None,
                mtu: None,
                master: None,
                up: true,
                ipv6: true,
                peer_name: "veth-c".into(),
                peer_netns: Some(peer_ns.as_raw_fd()),
                peer_mac: None,
            })
            .unwrap();
            let host = rtnl.link_index("veth-h").unwrap().unwrap();
            rtnl.add_addr(host, "10.123.0.1/24".parse().unwrap(), false)
                .unwrap();
            let mut there = Rtnl::open_in(peer_ns.as_fd()).unwrap();
            let peer = there.set_up_by_name("veth-c", true).unwrap();
            there
                .add_addr(peer, "10.123.0.2/24".parse().unwrap(), false)
                .unwrap();

            let ns = peer_ns.as_fd();
            let receiver = std::thread::scope(|s| {
                let (tx, rx) = std::sync::mpsc::channel();
                let handle = s.spawn(move || {
                    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                    let sock = std::net::UdpSocket::bind("10.123.0.2:5555").unwrap();
                    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                        .unwrap();
                    tx.send(()).unwrap();
                    let mut buf = [0u8; 64];
                    let (n, from) = sock.recv_from(&mut buf).unwrap();
                    (buf[..n].to_vec(), from)
                });
                rx.recv().unwrap();
                let sock = std::net::UdpSocket::bind("10.123.0.1:0").unwrap();
                sock.send_to(b"hello", "10.123.0.2:5555").unwrap();
                handle.join().unwrap()
            });
            assert_eq!(receiver.0, b"hello");
            assert_eq!(receiver.1.ip().to_string(), "10.123.0.1");
        });
    }

    #[test]
    fn hairpin_on_a_bridge_port() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            let br = rtnl.add_bridge(&bridge("br-h", false)).unwrap();
            let port = rtnl
                .add_veth(&VethSpec {
                    name: "vh0".into(),
                    alias: None,
                    mtu: None,
                    master: Some(br),
                    up: false,
                    ipv6: true,
                    peer_name: "vh1".into(),
                    peer_netns: None,
                    peer_mac: None,
                })
                .unwrap();
            rtnl.set_up(port).unwrap();
            let link = rtnl.link("vh0").unwrap().unwrap();
            assert_eq!(link.master, Some(br));
            assert!(link.up);

            assert_eq!(hairpin(&mut rtnl, "vh0"), Some(false));
            rtnl.set_bridge_port_hairpin(port, true).unwrap();
            assert_eq!(hairpin(&mut rtnl, "vh0"), Some(true));
            rtnl.set_bridge_port_hairpin(port, false).unwrap();
            assert_eq!(hairpin(&mut rtnl, "vh0"), Some(false));

            // The peer is no bridge port.
            let peer = rtnl.link_index("vh1").unwrap().unwrap();
            let err = rtnl.set_bridge_port_hairpin(peer, true).unwrap_err();
            assert!(err.to_string().contains("ifindex"), "{err}");

            let err = rtnl.set_up(9999).unwrap_err();
            assert!(err.is_not_found(), "{err:?}");
        });
    }
}
