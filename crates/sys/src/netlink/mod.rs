//! Synchronous rtnetlink client: requests and their answers on the shared netlink transport.
//!
//! Everything the engine needs (links, addresses, routes, qdiscs) goes through [`Rtnl`].
//! Requests are built with `netlink-packet-route` types; replies are parsed with the same
//! crate. Sending, sequence numbers, ACKs and timeouts are `crate::nl::NlSocket`'s. Requests
//! that belong together share one datagram, one round trip: the kernel handles its messages in
//! order and answers each.

mod addr;
mod group;
mod link;
mod overlay;
mod qdisc;
mod route;

use std::io;
use std::os::fd::BorrowedFd;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;

use crate::nl::{self, Answer, NlSocket, Replies, Route};

pub use addr::AddrInfo;
pub use link::{BridgeSpec, LinkInfo, VethSpec, VxlanSpec};
pub use overlay::{OverlayEntries, PeerSpec};
pub use qdisc::{Netem, Shaper};
pub use route::{RouteInfo, RouteSpec};

/// How often a dump is retried when the kernel flags it inconsistent (NLM_F_DUMP_INTR).
const DUMP_RETRIES: usize = 8;

/// Errors from the rtnetlink client; every variant names the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel rejected a request (NLMSG_ERROR / failed NLMSG_DONE).
    #[error("{op}: {source}{}", .ext_ack.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kernel {
        /// Operation and object, e.g. `create veth nsv1a2b3c4 (peer eth0)`.
        op: String,
        /// The errno reported by the kernel.
        source: io::Error,
        /// Extended ACK message (NETLINK_EXT_ACK), when the kernel gave one.
        ext_ack: Option<String>,
    },
    /// Socket-level failure (open/bind/send/recv/setns).
    #[error("{op}: {source}")]
    Socket {
        /// What we were doing with the socket.
        op: String,
        /// The underlying OS error.
        source: io::Error,
    },
    /// The kernel's reply could not be parsed.
    #[error("{op}: cannot decode kernel reply: {msg}")]
    Decode {
        /// Operation whose reply was malformed.
        op: String,
        /// What was wrong with it.
        msg: String,
    },
}

impl NetlinkError {
    /// The OS errno behind this error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Kernel { source, .. } | Self::Socket { source, .. } => source.raw_os_error(),
            Self::Decode { .. } => None,
        }
    }

    /// True when the object already existed (EEXIST).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// True when the object (or the device it refers to) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL)
        )
    }

    fn kernel(op: &str, errno: i32, ext_ack: Option<String>) -> Self {
        Self::Kernel {
            op: op.to_owned(),
            source: io::Error::from_raw_os_error(errno),
            ext_ack,
        }
    }

    fn socket(op: impl Into<String>, source: io::Error) -> Self {
        Self::Socket {
            op: op.into(),
            source,
        }
    }

    fn decode(op: &str, msg: impl std::fmt::Display) -> Self {
        Self::Decode {
            op: op.to_owned(),
            msg: msg.to_string(),
        }
    }
}

/// An encoded request: the message, its extra NLM_F_* flags and a description for errors.
struct Req {
    msg: RouteNetlinkMessage,
    flags: u16,
    op: String,
}

impl Req {
    fn new(op: String, flags: u16, msg: RouteNetlinkMessage) -> Self {
        Self { msg, flags, op }
    }
}

/// A NETLINK_ROUTE socket, bound to the network namespace it was opened in.
#[derive(Debug)]
pub struct Rtnl {
    sock: NlSocket<Route>,
}

impl Rtnl {
    /// Socket in the calling thread's current network namespace.
    pub fn open() -> Result<Rtnl, NetlinkError> {
        let sock =
            NlSocket::open().map_err(|e| NetlinkError::socket("open rtnetlink socket", e))?;
        Ok(Rtnl { sock })
    }

    /// Socket inside the namespace given by `netns`, opened on a short-lived thread so the
    /// caller's thread never changes namespace (a netlink socket stays bound to the netns where
    /// it was created).
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Rtnl, NetlinkError> {
        use std::os::fd::AsRawFd;
        let sock = NlSocket::open_in(netns).map_err(|e| {
            NetlinkError::socket(
                format!("open rtnetlink socket in netns fd {}", netns.as_raw_fd()),
                e,
            )
        })?;
        Ok(Rtnl { sock })
    }

    /// A socket whose requests go to `recorder` (tests without root), in namespace `ns`.
    #[cfg(any(test, feature = "testkit"))]
    pub fn recording(recorder: &nl::record::Recorder, ns: &str) -> Rtnl {
        Rtnl {
            sock: NlSocket::recording(recorder, ns),
        }
    }

    /// Sends one request that only needs an ACK.
    fn ack(&mut self, req: Req) -> Result<(), NetlinkError> {
        self.call(req).map(drop)
    }

    /// Sends one non-dump request and returns its data replies (e.g. a GETLINK answer).
    fn call(&mut self, req: Req) -> Result<Replies, NetlinkError> {
        self.exchange(vec![req])?
            .pop()
            .expect("exchange returns one result per request")
    }

    /// Runs a dump, retrying while the kernel reports it inconsistent.
    fn dump(&mut self, make: impl Fn() -> Req) -> Result<Vec<nl::Reply>, NetlinkError> {
        for _ in 0..DUMP_RETRIES {
            let mut req = make();
            req.flags |= NLM_F_DUMP;
            let replies = self.call(req)?;
            if !replies.interrupted {
                return Ok(replies.msgs);
            }
            tracing::debug!("netlink dump interrupted by a concurrent change, retrying");
        }
        Err(NetlinkError::Kernel {
            op: make().op,
            source: io::Error::from_raw_os_error(libc::EINTR),
            ext_ack: Some("dump kept changing while being read (NLM_F_DUMP_INTR)".into()),
        })
    }

    /// Sends all requests in one datagram (one round trip) and returns each one's result, in
    /// order. The kernel handles them in order and keeps going after a failed one. Non-dump
    /// requests carry NLM_F_ACK, so every request is answered; the outer error is a failure of
    /// the exchange as a whole.
    fn exchange(
        &mut self,
        reqs: Vec<Req>,
    ) -> Result<Vec<Result<Replies, NetlinkError>>, NetlinkError> {
        let mut out = Vec::new();
        let mut ops = Vec::with_capacity(reqs.len());
        for req in reqs {
            let flags = if req.flags & NLM_F_DUMP == NLM_F_DUMP {
                req.flags
            } else {
                req.flags | NLM_F_ACK
            };
            encode(&mut out, req.msg, flags);
            ops.push(req.op);
        }
        let describe = || match ops.as_slice() {
            [one] => one.clone(),
            [first, ..] => format!("{} requests starting with {first}", ops.len()),
            [] => "empty request".to_owned(),
        };
        let answers = self.sock.exchange(&mut out).map_err(|e| match e {
            nl::Failure::Io(e) => NetlinkError::socket(describe(), e),
            nl::Failure::Decode(msg) => NetlinkError::decode(&describe(), msg),
        })?;
        Ok(answers
            .into_iter()
            .zip(&ops)
            .map(|(answer, op)| match answer {
                Answer::Done(replies) => Ok(replies),
                Answer::Refused(ack) => Err(NetlinkError::kernel(op, ack.errno(), ack.msg)),
                Answer::Silent => Err(NetlinkError::decode(op, "the kernel did not answer")),
            })
            .collect())
    }
}

/// Appends `msg` to a request datagram (sequence 0: the socket numbers it).
fn encode(out: &mut Vec<u8>, msg: RouteNetlinkMessage, flags: u16) {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let start = out.len();
    out.resize(start + packet.buffer_len(), 0);
    packet.serialize(&mut out[start..]);
    // The next message in the datagram must start 4-byte aligned.
    out.resize(nl::wire::align4(out.len()), 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{in_fresh_netns, new_netns_fd};

    #[test]
    fn kernel_error_display_names_op() {
        let e = NetlinkError::kernel("create veth nsv1a2b3c4 (peer eth0)", libc::EEXIST, None);
        assert_eq!(
            e.to_string(),
            "create veth nsv1a2b3c4 (peer eth0): File exists (os error 17)"
        );
        assert!(e.is_exists());
        assert!(!e.is_not_found());
        let e = NetlinkError::kernel("x", libc::EINVAL, Some("bad thing".into()));
        assert_eq!(
            e.to_string(),
            "x: Invalid argument (os error 22): bad thing"
        );
        assert_eq!(e.errno(), Some(libc::EINVAL));
    }

    /// Results of a multi-request datagram, in order, each failure naming its own request.
    fn all_ok(results: Vec<Result<Replies, NetlinkError>>) -> Result<(), NetlinkError> {
        results.into_iter().try_for_each(|r| r.map(drop))
    }

    #[test]
    fn one_datagram_is_handled_in_order() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            let br = rtnl
                .add_bridge(&BridgeSpec {
                    name: "br-batch".into(),
                    mtu: None,
                    mac: None,
                    alias: None,
                    up: false,
                })
                .unwrap();
            // The route needs the address (and the up link) to exist: only works in order.
            let results = rtnl
                .exchange(vec![
                    link::set_up_req(1),
                    link::set_up_req(br),
                    addr::add_addr_req(br, "10.77.0.1/24".parse().unwrap(), false),
                    route::add_route_req(&RouteSpec {
                        dest: "10.88.0.0/16".parse().unwrap(),
                        gateway: Some("10.77.0.254".parse().unwrap()),
                        oif: Some(br),
                    }),
                ])
                .unwrap();
            all_ok(results).unwrap();
            let routes = rtnl.routes().unwrap();
            assert!(
                routes
                    .iter()
                    .any(|r| r.dest == "10.88.0.0/16".parse().unwrap()
                        && r.gateway == Some("10.77.0.254".parse().unwrap())
                        && r.oif == Some(br)),
                "{routes:?}"
            );
            assert!(rtnl.link("lo").unwrap().unwrap().up);

            // Reversed order fails on the route, and the kernel goes on with the address.
            let results = rtnl
                .exchange(vec![
                    route::add_route_req(&RouteSpec {
                        dest: "10.99.0.0/16".parse().unwrap(),
                        gateway: Some("10.66.0.254".parse().unwrap()),
                        oif: None,
                    }),
                    addr::add_addr_req(br, "10.66.0.1/24".parse().unwrap(), false),
                ])
                .unwrap();
            let err = results[0].as_ref().unwrap_err();
            assert!(
                err.to_string().starts_with("add route 10.99.0.0/16"),
                "{err}"
            );
            assert!(
                matches!(
                    err,
                    NetlinkError::Kernel {
                        ext_ack: Some(_),
                        ..
                    }
                ),
                "{err:?}"
            );
            assert!(results[1].is_ok());
        });
    }

    #[test]
    fn open_in_other_netns() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut here = Rtnl::open().unwrap();
            let other = new_netns_fd();
            let mut there = Rtnl::open_in(std::os::fd::AsFd::as_fd(&other)).unwrap();
            there
                .add_bridge(&BridgeSpec {
                    name: "br-there".into(),
                    mtu: None,
                    mac: None,
                    alias: None,
                    up: false,
                })
                .unwrap();
            assert!(there.link_index("br-there").unwrap().is_some());
            assert_eq!(here.link_index("br-there").unwrap(), None);
        });
    }
}
