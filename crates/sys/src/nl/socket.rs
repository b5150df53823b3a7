//! The one netlink socket type: open (here or in another namespace), number the messages of a
//! request datagram, send it in one `sendmsg`, and read until every message that asked for an
//! answer has one. rtnetlink ([`crate::netlink::Rtnl`]) and nf_tables
//! ([`crate::nft::NftSocket`]) only build requests and read answers on top of it.

use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use netlink_packet_core::{NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, NLMSG_OVERRUN};
use netlink_sys::{Socket, SocketAddr, protocols};
use nix::sys::socket::{GetSockOpt, SetSockOpt, getsockopt, setsockopt, sockopt};
use nix::sys::time::TimeVal;

use super::wire::{self, Ack};

/// Receive buffer: room for any datagram the kernel sends (dumps come in ≤32 KiB pieces). Zeroed
/// memory this large is mapped lazily: only the pages a datagram fills are ever touched.
const RECV_BUF: usize = 1024 * 1024;
/// A kernel that never answers would otherwise hang the engine forever.
const RECV_TIMEOUT: Duration = Duration::from_secs(60);

/// A netlink protocol family: which socket to open, and how big its buffers start.
pub trait Family {
    /// `NETLINK_ROUTE`, `NETLINK_NETFILTER`, ...
    const PROTOCOL: isize;
    /// Its name in errors, e.g. `rtnetlink`.
    const NAME: &'static str;
    /// Socket buffers requested at open: room for the answers of a whole request datagram.
    const SOCK_BUF: usize;
}

/// rtnetlink: links, addresses, routes, qdiscs.
#[derive(Debug)]
pub struct Route;

impl Family for Route {
    const PROTOCOL: isize = protocols::NETLINK_ROUTE;
    const NAME: &'static str = "rtnetlink";
    const SOCK_BUF: usize = 1024 * 1024;
}

/// nfnetlink: nf_tables.
#[derive(Debug)]
pub struct Netfilter;

impl Family for Netfilter {
    const PROTOCOL: isize = protocols::NETLINK_NETFILTER;
    const NAME: &'static str = "nfnetlink";
    // Element batches of thousands of messages are one datagram, with one ACK each.
    const SOCK_BUF: usize = 4 * 1024 * 1024;
}

/// A data message received for a request: its type and its payload after the netlink header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reply {
    pub kind: u16,
    pub payload: Vec<u8>,
}

/// The data the kernel answered to one request before its ACK or NLMSG_DONE.
#[derive(Debug, Default)]
pub(crate) struct Replies {
    pub msgs: Vec<Reply>,
    /// The dump was inconsistent (NLM_F_DUMP_INTR) and should be retried.
    pub interrupted: bool,
}

/// How the kernel answered one message of a request datagram.
#[derive(Debug)]
pub(crate) enum Answer {
    /// An ACK, or the end of a dump, with the data that came before it.
    Done(Replies),
    /// NLMSG_ERROR with an errno (or a failed NLMSG_DONE).
    Refused(Ack),
    /// No answer: the message asked for none (nfnetlink's batch framing), or the kernel
    /// stopped after refusing such a message (a whole nf_tables batch).
    Silent,
}

/// Why an exchange failed as a whole (the kernel's per-message answers are [`Answer`]s).
#[derive(Debug)]
pub(crate) enum Failure {
    /// The socket failed: send, receive, timeout.
    Io(io::Error),
    /// The datagram we built, or the kernel's reply, is malformed.
    Decode(String),
}

/// Where the bytes go: the kernel, or (in tests) a recorder that answers like one.
enum Io {
    Kernel(Socket),
    #[cfg(any(test, feature = "testkit"))]
    Record(super::record::Endpoint),
}

/// A netlink socket of family `F`, bound to the network namespace it was opened in.
pub struct NlSocket<F: Family> {
    io: Io,
    seq: u32,
    buf: Vec<u8>,
    sndbuf: usize,
    rcvbuf: usize,
    // fn() -> F: the socket is Send whatever the marker type is.
    family: PhantomData<fn() -> F>,
}

impl<F: Family> std::fmt::Debug for NlSocket<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("NlSocket");
        d.field("family", &F::NAME);
        match &self.io {
            Io::Kernel(sock) => d.field("fd", &sock.as_raw_fd()),
            #[cfg(any(test, feature = "testkit"))]
            Io::Record(_) => d.field("fd", &"recording"),
        };
        d.field("seq", &self.seq).finish()
    }
}

impl<F: Family> NlSocket<F> {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Self> {
        let mut sock = Socket::new(F::PROTOCOL)?;
        // Optional features: old kernels lack them and we still work, with less detail.
        if let Err(e) = sock.set_ext_ack(true) {
            tracing::debug!("{}: NETLINK_EXT_ACK unavailable: {e}", F::NAME);
        }
        // Failed requests would otherwise be echoed back in full inside the error.
        if let Err(e) = sock.set_cap_ack(true) {
            tracing::debug!("{}: NETLINK_CAP_ACK unavailable: {e}", F::NAME);
        }
        // Dumps filtered by the kernel (e.g. routes of the main table only).
        if let Err(e) = sock.set_netlink_get_strict_chk(true) {
            tracing::debug!("{}: NETLINK_GET_STRICT_CHK unavailable: {e}", F::NAME);
        }
        let timeout = TimeVal::new(RECV_TIMEOUT.as_secs() as _, 0);
        setsockopt(&sock, sockopt::ReceiveTimeout, &timeout)?;
        sock.bind_auto()?;
        // Connected to the kernel, so nothing but kernel replies can reach this socket.
        sock.connect(&SocketAddr::new(0, 0))?;
        let mut s = Self::with(Io::Kernel(sock));
        s.ensure_buffers(F::SOCK_BUF, F::SOCK_BUF);
        Ok(s)
    }

    /// A socket inside the namespace `netns` (it stays bound to that namespace), opened with
    /// the calling thread switched there for the moment it takes.
    pub fn open_in(netns: BorrowedFd<'_>) -> io::Result<Self> {
        match crate::netns::briefly_in(netns, Self::open) {
            Ok(opened) => opened,
            Err(
                crate::netns::NsError::Sys { source, .. }
                | crate::netns::NsError::Io { source, .. },
            ) => Err(source),
            Err(other) => Err(io::Error::other(other.to_string())),
        }
    }

    /// A socket whose datagrams go to `recorder`, labelled with namespace `ns`.
    #[cfg(any(test, feature = "testkit"))]
    pub fn recording(recorder: &super::record::Recorder, ns: &str) -> Self {
        Self::with(Io::Record(recorder.endpoint(F::NAME, ns)))
    }

    fn with(io: Io) -> Self {
        NlSocket {
            io,
            seq: initial_seq(),
            buf: vec![0; RECV_BUF],
            sndbuf: 0,
            rcvbuf: 0,
            family: PhantomData,
        }
    }

    /// Sends the messages of `datagram` (encoded with sequence 0; numbered here) in one
    /// `sendmsg` and returns one [`Answer`] per message, in order.
    ///
    /// The kernel handles the messages of a datagram in order and keeps going after a failed
    /// one. Reading stops when every message that asked for an answer has one; when some did
    /// not (nfnetlink batch framing), what else is queued is read without blocking, since the
    /// kernel reports a failed batch against those, and a refused one means no more answers.
    pub(crate) fn exchange(&mut self, datagram: &mut [u8]) -> Result<Vec<Answer>, Failure> {
        let first = self.seq;
        let headers = wire::stamp(datagram, first)
            .map_err(|()| Failure::Decode("malformed request datagram".into()))?;
        self.seq = first.wrapping_add(headers.len() as u32);
        self.send(datagram).map_err(Failure::Io)?;

        let mut answers: Vec<Option<Answer>> = headers.iter().map(|_| None).collect();
        let mut partial: Vec<Replies> = headers.iter().map(|_| Replies::default()).collect();
        let mut awaited = headers.iter().filter(|h| h.wants_answer()).count();
        let framed = awaited < headers.len();
        let mut aborted = false;
        loop {
            let blocking = awaited > 0 && !aborted;
            if !blocking && !framed {
                break;
            }
            let Some(len) = self.recv(blocking).map_err(Failure::Io)? else {
                break;
            };
            for msg in wire::messages(&self.buf[..len]) {
                let (hdr, payload) =
                    msg.map_err(|()| Failure::Decode("truncated netlink header".into()))?;
                let idx = hdr.seq.wrapping_sub(first) as usize;
                if idx >= headers.len() || answers[idx].is_some() {
                    // Leftover from an exchange abandoned earlier (e.g. after a timeout).
                    tracing::debug!(
                        seq = hdr.seq,
                        kind = hdr.kind,
                        "ignoring stale netlink message"
                    );
                    continue;
                }
                partial[idx].interrupted |= hdr.flags & NLM_F_DUMP_INTR != 0;
                let ack = match hdr.kind {
                    NLMSG_NOOP => continue,
                    NLMSG_OVERRUN => {
                        return Err(Failure::Decode("kernel reported NLMSG_OVERRUN".into()));
                    }
                    NLMSG_ERROR => wire::parse_error(hdr.flags, payload)
                        .ok_or_else(|| Failure::Decode("short NLMSG_ERROR".into()))?,
                    NLMSG_DONE => wire::parse_done(hdr.flags, payload),
                    kind => {
                        partial[idx].msgs.push(Reply {
                            kind,
                            payload: payload.to_vec(),
                        });
                        continue;
                    }
                };
                if headers[idx].wants_answer() {
                    awaited -= 1;
                } else if ack.code != 0 {
                    aborted = true;
                } else {
                    continue;
                }
                answers[idx] = Some(if ack.code == 0 {
                    Answer::Done(std::mem::take(&mut partial[idx]))
                } else {
                    Answer::Refused(ack)
                });
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or(Answer::Silent))
            .collect())
    }

    /// Grows the socket buffers to at least `snd` and `rcv` bytes, so a whole request fits in
    /// one datagram and all its answers can be queued. Uses the FORCE variants (root) and falls
    /// back to the capped ones.
    pub(crate) fn ensure_buffers(&mut self, snd: usize, rcv: usize) {
        let sock = match &self.io {
            Io::Kernel(sock) => sock,
            #[cfg(any(test, feature = "testkit"))]
            Io::Record(_) => return,
        };
        if snd > self.sndbuf {
            self.sndbuf = grow(sock, sockopt::SndBufForce, sockopt::SndBuf, snd);
        }
        if rcv > self.rcvbuf {
            self.rcvbuf = grow(sock, sockopt::RcvBufForce, sockopt::RcvBuf, rcv);
        }
    }

    fn send(&mut self, data: &[u8]) -> io::Result<()> {
        let sock = match &mut self.io {
            Io::Kernel(sock) => sock,
            #[cfg(any(test, feature = "testkit"))]
            Io::Record(rec) => {
                rec.send(data);
                return Ok(());
            }
        };
        loop {
            match sock.send(data, 0) {
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

    /// Receives one datagram into `self.buf`, in one syscall (a peek for its size first doubled
    /// the syscalls of every round trip: an nf_tables batch's acks come one per datagram). The
    /// buffer is far larger than any datagram the kernel sends (dumps come in ≤32 KiB pieces,
    /// single answers are a few KiB); one that would not fit is reported, never cut short.
    /// Without `blocking`, `None` when nothing is queued.
    fn recv(&mut self, blocking: bool) -> io::Result<Option<usize>> {
        let sock = match &mut self.io {
            Io::Kernel(sock) => sock,
            #[cfg(any(test, feature = "testkit"))]
            Io::Record(rec) => return rec.recv(blocking, &mut self.buf),
        };
        let nb = if blocking { 0 } else { libc::MSG_DONTWAIT };
        loop {
            let mut slice = &mut self.buf[..];
            return match sock.recv(&mut slice, libc::MSG_TRUNC | nb) {
                Ok(n) if n > self.buf.len() => Err(io::Error::other(format!(
                    "a netlink datagram of {n} bytes exceeds the {} byte receive buffer",
                    self.buf.len()
                ))),
                Ok(n) => Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && blocking => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "timed out waiting for the kernel",
                )),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(e),
            };
        }
    }
}

/// Sets a socket buffer to `size` with the uncapped FORCE option, else the capped one; returns
/// the size obtained (the kernel reports double what it was asked, for its bookkeeping).
fn grow<Force, Plain>(sock: &Socket, force: Force, plain: Plain, size: usize) -> usize
where
    Force: SetSockOpt<Val = usize>,
    Plain: SetSockOpt<Val = usize> + GetSockOpt<Val = usize> + Copy,
{
    if setsockopt(sock, force, &size).is_ok() {
        return size;
    }
    if let Err(e) = setsockopt(sock, plain, &size) {
        tracing::debug!("setting a netlink socket buffer to {size}: {e}");
    }
    getsockopt(sock, plain).map_or(0, |v| v / 2)
}

/// Starts sequence numbers somewhere unpredictable-ish so replies meant for a previous socket
/// with the same port can never be mistaken for ours.
fn initial_seq() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(1);
    nanos | 1
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};

    use super::super::record::{Reaction, Recorder};
    use super::super::wire::push_msg;
    use super::*;

    fn kinds(answers: &[Answer]) -> Vec<String> {
        answers
            .iter()
            .map(|a| match a {
                Answer::Done(r) => format!("done({})", r.msgs.len()),
                Answer::Refused(ack) => format!("refused({})", ack.errno()),
                Answer::Silent => "silent".into(),
            })
            .collect()
    }

    #[test]
    fn answers_come_back_per_message_in_order() {
        let rec = Recorder::new();
        rec.respond(|_, m| match m.kind {
            30 => Reaction {
                data: vec![(31, vec![1, 2, 3, 4])],
                errno: 0,
            },
            32 => Reaction {
                errno: libc::EEXIST,
                ..Reaction::default()
            },
            _ => Reaction::default(),
        });
        let mut sock = NlSocket::<Route>::recording(&rec, "host");
        let mut d = Vec::new();
        push_msg(&mut d, 30, NLM_F_REQUEST | NLM_F_DUMP, &[]);
        push_msg(&mut d, 32, NLM_F_REQUEST | NLM_F_ACK, &[]);
        push_msg(&mut d, 33, NLM_F_REQUEST | NLM_F_ACK, &[]);
        let answers = sock.exchange(&mut d).unwrap();
        assert_eq!(kinds(&answers), ["done(1)", "refused(17)", "done(0)"]);
        // One datagram, one round trip; the next exchange numbers on.
        assert_eq!(rec.sent().len(), 1);
        let mut again = Vec::new();
        push_msg(&mut again, 33, NLM_F_REQUEST | NLM_F_ACK, &[]);
        assert_eq!(kinds(&sock.exchange(&mut again).unwrap()), ["done(0)"]);
    }

    #[test]
    fn a_refused_batch_leaves_the_rest_unanswered() {
        let rec = Recorder::new();
        rec.respond(|_, m| Reaction {
            errno: if m.kind == 0x10 { libc::EPERM } else { 0 },
            ..Reaction::default()
        });
        let mut sock = NlSocket::<Netfilter>::recording(&rec, "host");
        let mut d = Vec::new();
        push_msg(&mut d, 0x10, NLM_F_REQUEST, &[0; 4]);
        push_msg(&mut d, 0x0a0c, NLM_F_REQUEST | NLM_F_ACK, &[0; 4]);
        push_msg(&mut d, 0x11, NLM_F_REQUEST, &[0; 4]);
        let answers = sock.exchange(&mut d).unwrap();
        assert_eq!(kinds(&answers), ["refused(1)", "silent", "silent"]);
    }
}
