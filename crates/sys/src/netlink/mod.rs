//! Synchronous rtnetlink client: one NETLINK_ROUTE socket, blocking request/ACK and dump loops.
//!
//! Everything the engine needs (links, addresses, routes) goes through [`Rtnl`]. Requests are
//! built with `netlink-packet-route` types; replies are parsed with the same crate. Several
//! requests can share one `sendmsg` ([`Rtnl::batch`]) because the kernel processes the messages of
//! a datagram in order and ACKs each one.

mod addr;
mod link;
mod qdisc;
mod route;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST,
    NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN, NetlinkHeader, NetlinkMessage,
    NetlinkPayload, NlasIterator,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

pub use addr::AddrInfo;
pub use link::{BridgeSpec, LinkInfo, VethSpec};
pub use qdisc::{Netem, Shaper};
pub use route::{RouteInfo, RouteSpec};

/// Initial receive buffer; the kernel caps dump datagrams at 32 KiB, so this rarely grows.
const RECV_BUF: usize = 64 * 1024;
/// Requests per `sendmsg` in a batch: every ACK is queued before we read any of them, so an
/// unbounded batch could overflow the socket receive buffer and lose ACKs (ENOBUFS).
const BATCH_CHUNK: usize = 64;
/// A kernel that never answers would otherwise hang the engine forever.
const RECV_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a dump is retried when the kernel flags it inconsistent (NLM_F_DUMP_INTR).
const DUMP_RETRIES: usize = 8;
/// `NLMSGERR_ATTR_MSG` from linux/netlink.h: human-readable extended ACK message.
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSG_HDRLEN: usize = 16;

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

/// One write request for [`Rtnl::batch`]; each maps to exactly one netlink message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Set the link administratively up.
    SetUp {
        /// Interface index.
        index: u32,
    },
    /// Enslave a link to a bridge (master 0 releases it).
    SetMaster {
        /// Interface index of the port.
        index: u32,
        /// Interface index of the master.
        master: u32,
    },
    /// Add an address (same semantics as [`Rtnl::add_addr`]).
    AddAddr {
        /// Interface index.
        index: u32,
        /// Address with prefix length.
        addr: ipnet::IpNet,
        /// Skip IPv6 duplicate address detection.
        nodad: bool,
    },
    /// Add a route (same semantics as [`Rtnl::add_route`]).
    AddRoute(RouteSpec),
    /// Delete a link by name (ENODEV is reported as a failure here).
    DelLink {
        /// Interface name.
        name: String,
    },
}

impl Request {
    fn encode(&self) -> Req {
        match self {
            Self::SetUp { index } => link::set_up_req(*index),
            Self::SetMaster { index, master } => link::set_master_req(*index, *master),
            Self::AddAddr { index, addr, nodad } => addr::add_addr_req(*index, *addr, *nodad),
            Self::AddRoute(r) => route::add_route_req(r),
            Self::DelLink { name } => link::del_link_req(name),
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

/// A data message received for a request (message type and payload after the netlink header).
struct Reply {
    kind: u16,
    payload: Vec<u8>,
}

/// Everything the kernel answered to one request.
#[derive(Default)]
struct Replies {
    msgs: Vec<Reply>,
    /// The dump was inconsistent (NLM_F_DUMP_INTR) and should be retried.
    interrupted: bool,
}

/// A NETLINK_ROUTE socket, bound to the network namespace it was opened in.
pub struct Rtnl {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Rtnl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtnl")
            .field("fd", &self.sock.as_raw_fd())
            .field("seq", &self.seq)
            .finish()
    }
}

impl Rtnl {
    /// Socket in the calling thread's current network namespace.
    pub fn open() -> Result<Rtnl, NetlinkError> {
        let op = "open rtnetlink socket";
        let mut sock = Socket::new(NETLINK_ROUTE).map_err(|e| NetlinkError::socket(op, e))?;
        // Optional features: old kernels lack them and we still work, just with less detail.
        if let Err(e) = sock.set_ext_ack(true) {
            tracing::debug!("NETLINK_EXT_ACK unavailable: {e}");
        }
        // Failed requests would otherwise be echoed back in full inside the error.
        if let Err(e) = sock.set_cap_ack(true) {
            tracing::debug!("NETLINK_CAP_ACK unavailable: {e}");
        }
        if let Err(e) = sock.set_netlink_get_strict_chk(true) {
            tracing::debug!("NETLINK_GET_STRICT_CHK unavailable: {e}");
        }
        // Room for the ACKs of a whole batch chunk plus a dump datagram; best effort.
        let _ = sock.set_rx_buf_sz(1024 * 1024_i32);
        set_recv_timeout(&sock, RECV_TIMEOUT).map_err(|e| NetlinkError::socket(op, e))?;
        sock.bind_auto().map_err(|e| NetlinkError::socket(op, e))?;
        // Connected to the kernel, so nothing but kernel replies can reach this socket.
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| NetlinkError::socket(op, e))?;
        Ok(Rtnl {
            sock,
            seq: initial_seq(),
            buf: vec![0; RECV_BUF],
        })
    }

    /// Socket inside the namespace given by `netns`, opened on a short-lived thread so the
    /// caller's thread never changes namespace (a netlink socket stays bound to the netns where
    /// it was created).
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<Rtnl, NetlinkError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                    NetlinkError::socket(
                        format!("enter network namespace fd {}", netns.as_raw_fd()),
                        e.into(),
                    )
                })?;
                Rtnl::open()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Several requests sent in one `sendmsg` (the kernel handles them in order); returns the
    /// first failure. The kernel keeps going after a failed message inside a datagram, so later
    /// requests of the same chunk (64 requests) may still have been applied; later chunks are
    /// not sent once one fails.
    pub fn batch(&mut self, reqs: Vec<Request>) -> Result<(), NetlinkError> {
        for chunk in reqs.chunks(BATCH_CHUNK) {
            let encoded = chunk.iter().map(Request::encode).collect();
            for result in self.exchange(encoded)? {
                result?;
            }
        }
        Ok(())
    }

    /// Like [`Rtnl::batch`] but reports every request's own result (outer error: socket failure).
    /// All chunks are sent even when some requests fail, e.g. for best-effort teardown.
    pub fn batch_each(
        &mut self,
        reqs: Vec<Request>,
    ) -> Result<Vec<Result<(), NetlinkError>>, NetlinkError> {
        let mut out = Vec::with_capacity(reqs.len());
        for chunk in reqs.chunks(BATCH_CHUNK) {
            let encoded = chunk.iter().map(Request::encode).collect();
            out.extend(self.exchange(encoded)?.into_iter().map(|r| r.map(drop)));
        }
        Ok(out)
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
    fn dump(&mut self, make: impl Fn() -> Req) -> Result<Vec<Reply>, NetlinkError> {
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

    /// Sends all requests in one datagram, then reads until every one is answered.
    ///
    /// Non-dump requests always carry NLM_F_ACK, so each ends with exactly one NLMSG_ERROR;
    /// dumps end with NLMSG_DONE (or an NLMSG_ERROR if the kernel refused to start them).
    fn exchange(
        &mut self,
        reqs: Vec<Req>,
    ) -> Result<Vec<Result<Replies, NetlinkError>>, NetlinkError> {
        let first_seq = self.seq;
        let mut out = Vec::new();
        let mut ops = Vec::with_capacity(reqs.len());
        for req in reqs {
            let flags = if req.flags & NLM_F_DUMP == NLM_F_DUMP {
                req.flags
            } else {
                req.flags | NLM_F_ACK
            };
            let seq = self.next_seq();
            encode(&mut out, req.msg, flags, seq);
            ops.push(req.op);
        }
        let describe = || {
            if ops.len() == 1 {
                ops[0].clone()
            } else {
                format!("batch of {} requests starting with {}", ops.len(), ops[0])
            }
        };
        self.send(&out)
            .map_err(|e| NetlinkError::socket(describe(), e))?;

        let mut results: Vec<Option<Result<Replies, NetlinkError>>> =
            (0..ops.len()).map(|_| None).collect();
        let mut partial: Vec<Replies> = (0..ops.len()).map(|_| Replies::default()).collect();
        let mut remaining = ops.len();
        while remaining > 0 {
            let len = self.recv().map_err(|e| {
                NetlinkError::socket(format!("{}: read kernel reply", describe()), e)
            })?;
            let mut data = &self.buf[..len];
            while !data.is_empty() {
                let Some(hdr) = MsgHeader::parse(data) else {
                    return Err(NetlinkError::decode(
                        &describe(),
                        "truncated netlink header",
                    ));
                };
                let payload = &data[NLMSG_HDRLEN..hdr.len];
                data = &data[align4(hdr.len).min(data.len())..];

                let idx = hdr.seq.wrapping_sub(first_seq) as usize;
                if idx >= ops.len() || results[idx].is_some() {
                    // Leftover from an exchange abandoned earlier (e.g. after a timeout).
                    tracing::debug!(
                        seq = hdr.seq,
                        kind = hdr.kind,
                        "ignoring stale netlink message"
                    );
                    continue;
                }
                let op = &ops[idx];
                let done = match hdr.kind {
                    NLMSG_NOOP => None,
                    NLMSG_ERROR => {
                        let (code, ext) = parse_error(hdr.flags, payload)
                            .ok_or_else(|| NetlinkError::decode(op, "short NLMSG_ERROR"))?;
                        Some(if code == 0 {
                            Ok(std::mem::take(&mut partial[idx]))
                        } else {
                            Err(NetlinkError::kernel(op, -code, ext))
                        })
                    }
                    NLMSG_DONE => {
                        let (code, ext) = parse_done(hdr.flags, payload);
                        partial[idx].interrupted |= hdr.flags & NLM_F_DUMP_INTR != 0;
                        Some(if code == 0 {
                            Ok(std::mem::take(&mut partial[idx]))
                        } else {
                            Err(NetlinkError::kernel(op, -code, ext))
                        })
                    }
                    NLMSG_OVERRUN => {
                        return Err(NetlinkError::decode(op, "kernel reported NLMSG_OVERRUN"));
                    }
                    kind => {
                        partial[idx].interrupted |= hdr.flags & NLM_F_DUMP_INTR != 0;
                        partial[idx].msgs.push(Reply {
                            kind,
                            payload: payload.to_vec(),
                        });
                        None
                    }
                };
                if let Some(result) = done {
                    results[idx] = Some(result);
                    remaining -= 1;
                }
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.expect("every request answered"))
            .collect())
    }

    fn next_seq(&mut self) -> u32 {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        seq
    }

    fn send(&self, data: &[u8]) -> io::Result<()> {
        loop {
            match self.sock.send(data, 0) {
                Ok(n) if n == data.len() => return Ok(()),
                Ok(n) => {
                    return Err(io::Error::other(format!(
                        "short netlink send: {n} of {} bytes",
                        data.len()
                    )));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Receives one datagram into `self.buf`, growing it first if the datagram would not fit.
    fn recv(&mut self) -> io::Result<usize> {
        loop {
            let mut slice = &mut self.buf[..];
            let size = match self.sock.recv(&mut slice, libc::MSG_PEEK | libc::MSG_TRUNC) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "timed out waiting for the kernel",
                    ));
                }
                Err(e) => return Err(e),
            };
            if size > self.buf.len() {
                self.buf.resize(size.next_power_of_two(), 0);
            }
            let mut slice = &mut self.buf[..];
            match self.sock.recv(&mut slice, 0) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Fixed part of a netlink message header, with `len` validated against the datagram.
struct MsgHeader {
    len: usize,
    kind: u16,
    flags: u16,
    seq: u32,
}

impl MsgHeader {
    fn parse(data: &[u8]) -> Option<MsgHeader> {
        if data.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes(data[0..4].try_into().ok()?) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            return None;
        }
        Some(MsgHeader {
            len,
            kind: u16::from_ne_bytes(data[4..6].try_into().ok()?),
            flags: u16::from_ne_bytes(data[6..8].try_into().ok()?),
            seq: u32::from_ne_bytes(data[8..12].try_into().ok()?),
        })
    }
}

fn encode(out: &mut Vec<u8>, msg: RouteNetlinkMessage, flags: u16, seq: u32) {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | flags;
    header.sequence_number = seq;
    let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
    packet.finalize();
    let start = out.len();
    out.resize(start + packet.buffer_len(), 0);
    packet.serialize(&mut out[start..]);
    // The next message in the datagram must start 4-byte aligned.
    out.resize(align4(out.len()), 0);
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Parses an NLMSG_ERROR payload into (negative errno or 0, extended ACK message).
fn parse_error(flags: u16, payload: &[u8]) -> Option<(i32, Option<String>)> {
    let code = i32::from_ne_bytes(payload.get(0..4)?.try_into().ok()?);
    let mut ext = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // TLVs follow the echoed request: just its header when capped, else the whole message.
        let echoed = payload.get(4..)?;
        let skip = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            align4(u32::from_ne_bytes(echoed.get(0..4)?.try_into().ok()?) as usize)
        };
        ext = echoed.get(skip..).and_then(ext_ack_message);
    }
    Some((code, ext))
}

/// Parses an NLMSG_DONE payload; the kernel may send it empty, which means success.
fn parse_done(flags: u16, payload: &[u8]) -> (i32, Option<String>) {
    let Some(code) = payload
        .get(0..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
    else {
        return (0, None);
    };
    let ext = if flags & NLM_F_ACK_TLVS != 0 {
        payload.get(4..).and_then(ext_ack_message)
    } else {
        None
    };
    (code, ext)
}

fn ext_ack_message(tlvs: &[u8]) -> Option<String> {
    NlasIterator::new(tlvs)
        .map_while(Result::ok)
        .find(|nla| nla.kind() == NLMSGERR_ATTR_MSG)
        .map(|nla| {
            let value = nla.value();
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            String::from_utf8_lossy(&value[..end]).into_owned()
        })
        .filter(|m| !m.is_empty())
}

/// Starts sequence numbers somewhere unpredictable-ish so replies meant for a previous socket
/// with the same fd number can never be mistaken for ours.
fn initial_seq() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(1);
    nanos | 1
}

fn set_recv_timeout(sock: &Socket, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: valid fd owned by `sock`, and a pointer/length pair describing a live timeval.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
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

    #[test]
    fn parses_extended_ack() {
        // nlmsgerr: error, capped echoed header, then NLMSGERR_ATTR_MSG "boom\0".
        let mut p = Vec::new();
        p.extend_from_slice(&(-22i32).to_ne_bytes());
        p.extend_from_slice(&[0u8; NLMSG_HDRLEN]);
        p.extend_from_slice(&9u16.to_ne_bytes());
        p.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        p.extend_from_slice(b"boom\0\0\0\0");
        let (code, ext) = parse_error(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p).unwrap();
        assert_eq!(code, -22);
        assert_eq!(ext.as_deref(), Some("boom"));
        assert_eq!(parse_error(0, &p).unwrap().1, None);
        assert_eq!(parse_done(0, &[]), (0, None));
    }

    #[test]
    fn batch_ordering_addr_then_route() {
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
            let lo = rtnl.link_index("lo").unwrap().unwrap();
            // The route needs the address (and the up link) to exist: only works in order.
            rtnl.batch(vec![
                Request::SetUp { index: lo },
                Request::SetUp { index: br },
                Request::AddAddr {
                    index: br,
                    addr: "10.77.0.1/24".parse().unwrap(),
                    nodad: false,
                },
                Request::AddRoute(RouteSpec {
                    dest: "10.88.0.0/16".parse().unwrap(),
                    gateway: Some("10.77.0.254".parse().unwrap()),
                    oif: Some(br),
                }),
            ])
            .unwrap();
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

            // Reversed order fails on the route; the error names it.
            let err = rtnl
                .batch(vec![
                    Request::AddRoute(RouteSpec {
                        dest: "10.99.0.0/16".parse().unwrap(),
                        gateway: Some("10.66.0.254".parse().unwrap()),
                        oif: None,
                    }),
                    Request::AddAddr {
                        index: br,
                        addr: "10.66.0.1/24".parse().unwrap(),
                        nodad: false,
                    },
                ])
                .unwrap_err();
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

            // Per-request results, and a failed DelLink in the middle does not stop the rest.
            let results = rtnl
                .batch_each(vec![
                    Request::DelLink {
                        name: "nope0".into(),
                    },
                    Request::DelLink {
                        name: "br-batch".into(),
                    },
                ])
                .unwrap();
            assert!(results[0].as_ref().unwrap_err().is_not_found());
            assert!(results[1].is_ok());
            assert_eq!(rtnl.link_index("br-batch").unwrap(), None);
        });
    }

    #[test]
    fn large_batch_is_chunked() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            let br = rtnl
                .add_bridge(&BridgeSpec {
                    name: "br-many".into(),
                    mtu: None,
                    mac: None,
                    alias: None,
                    up: true,
                })
                .unwrap();
            let reqs = (0..300u32)
                .map(|i| Request::AddAddr {
                    index: br,
                    addr: format!("10.{}.{}.1/32", 100 + i / 250, i % 250)
                        .parse()
                        .unwrap(),
                    nodad: false,
                })
                .collect();
            rtnl.batch(reqs).unwrap();
            let n = rtnl
                .addrs()
                .unwrap()
                .into_iter()
                .filter(|a| a.index == br && a.addr.addr().is_ipv4())
                .count();
            assert_eq!(n, 300);
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
