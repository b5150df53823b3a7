//! nftables backend: set/map element batches over NETLINK_NETFILTER, and an `nft` executor.
//!
//! nsnet owns one table (`inet nsnet`). Its chains, rules and (empty) sets are a fixed skeleton
//! installed once with `nft -f -` text ([`run_script`]); everything per network, endpoint or port
//! is an element of a set or map, changed with [`NftSocket::apply`]: one nf_tables transaction
//! (`NFNL_MSG_BATCH_BEGIN` ... `NFNL_MSG_BATCH_END`) in one `sendmsg`, all or nothing, without
//! spawning a process.
//!
//! Semantics worth knowing (kernel behaviour, checked by the root tests):
//! - A non-exclusive add of an element that already exists succeeds only if its data is
//!   identical; a different data value for the same key fails with EEXIST. To change a mapping,
//!   put a `Del` and an `Add` of the key in the same batch.
//! - Deleting an element that does not exist fails with ENOENT (and so the whole batch fails).

pub mod encode;
mod msg;
mod script;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_NETFILTER};

pub use script::{list_table_json, nft_binary, run_script};

use msg::{Culprit, MsgHeader, NLMSG_HDRLEN};

/// `NFPROTO_INET`: the family of nsnet's table.
pub const NFPROTO_INET: u8 = 1;

/// Initial receive buffer (grown on demand for larger datagrams).
const RECV_BUF: usize = 64 * 1024;
/// Socket buffers requested at open; grown per batch when needed.
const SOCK_BUF: usize = 4 * 1024 * 1024;
/// Receive-buffer charge we budget per queued ACK (an skb's truesize, rounded up generously).
const ACK_BUDGET: usize = 2048;
/// A kernel that never answers would otherwise hang the engine forever. nfnetlink processes a
/// batch synchronously inside `sendmsg`, so all answers are queued by the time it returns.
const RECV_TIMEOUT: Duration = Duration::from_secs(30);

/// One element change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElemOp {
    /// NFT_MSG_NEWSETELEM; `exclusive` adds NLM_F_EXCL so an existing key fails with EEXIST
    /// (host-port conflict detection). `data` is the mapped value for maps, `None` for sets.
    Add {
        /// Set or map name.
        set: String,
        /// Key bytes (see [`encode`]).
        key: Vec<u8>,
        /// Data bytes for maps.
        data: Option<Vec<u8>>,
        /// Fail with EEXIST if the key is already present.
        exclusive: bool,
    },
    /// NFT_MSG_DELSETELEM; fails with ENOENT if the key is absent.
    Del {
        /// Set or map name.
        set: String,
        /// Key bytes (see [`encode`]).
        key: Vec<u8>,
    },
}

impl ElemOp {
    /// The set or map this op changes.
    pub fn set(&self) -> &str {
        match self {
            Self::Add { set, .. } | Self::Del { set, .. } => set,
        }
    }

    /// Human-readable description used in errors, e.g.
    /// `add element to set pf_any4 [06000000 1f900000 : 0a000002 00500000]`.
    pub fn describe(&self) -> String {
        match self {
            Self::Add {
                set,
                key,
                data,
                exclusive,
            } => format!(
                "add element to set {set}{} [{}{}]",
                if *exclusive { " (exclusive)" } else { "" },
                hex_words(key),
                data.as_deref()
                    .map(|d| format!(" : {}", hex_words(d)))
                    .unwrap_or_default()
            ),
            Self::Del { set, key } => {
                format!("delete element from set {set} [{}]", hex_words(key))
            }
        }
    }
}

/// Bytes as hex, grouped in 4-byte words like the fields of a concatenation.
fn hex_words(b: &[u8]) -> String {
    b.chunks(4)
        .map(|w| w.iter().map(|x| format!("{x:02x}")).collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Element changes to one table, applied as one nf_tables transaction
/// (NFNL_MSG_BATCH_BEGIN ... NFNL_MSG_BATCH_END, res_id NFNL_SUBSYS_NFTABLES) in one sendmsg;
/// all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElemBatch {
    /// Table family, e.g. [`NFPROTO_INET`].
    pub family: u8,
    /// Table name.
    pub table: String,
    /// Changes, applied in order.
    pub ops: Vec<ElemOp>,
}

impl ElemBatch {
    /// Empty batch for table `family`/`table`.
    pub fn new(family: u8, table: impl Into<String>) -> Self {
        Self {
            family,
            table: table.into(),
            ops: Vec::new(),
        }
    }

    /// `inet nsnet`-style description of the table.
    pub fn table_desc(&self) -> String {
        format!("{} {}", family_name(self.family), self.table)
    }
}

/// nft's name of an nf_tables family number.
pub fn family_name(family: u8) -> String {
    match family {
        1 => "inet".into(),
        2 => "ip".into(),
        3 => "arp".into(),
        5 => "netdev".into(),
        7 => "bridge".into(),
        10 => "ip6".into(),
        n => format!("family{n}"),
    }
}

/// What an ENOENT of an element op was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The table does not exist (e.g. someone flushed the ruleset).
    Table(String),
    /// The set or map does not exist in the table.
    Set(String),
    /// The element to delete is not in the set.
    Element,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Table(t) => write!(f, "table {t} is missing"),
            Self::Set(s) => write!(f, "set {s} is missing"),
            Self::Element => f.write_str("element is not in the set"),
        }
    }
}

/// Errors of the nftables backend; every message names the op or object involved.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// The kernel rejected one op of an element batch; nothing of the batch was applied.
    #[error(
        "op {index} ({op}) on table {table} failed: {}{source}{}; no change of the batch was applied",
        .missing.as_ref().map(|m| format!("{m}: ")).unwrap_or_default(),
        .ext_ack.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
    )]
    Op {
        /// Index of the failing op in the batch.
        index: usize,
        /// Description of the op (see [`ElemOp::describe`]).
        op: String,
        /// Table, e.g. `inet nsnet`.
        table: String,
        /// The errno.
        source: io::Error,
        /// For ENOENT: whether the table, the set or the element is missing (when known).
        missing: Option<Missing>,
        /// Extended ACK message, when the kernel gave one.
        ext_ack: Option<String>,
    },
    /// The kernel rejected the batch as a whole (e.g. EPERM, or the commit failed).
    #[error(
        "nf_tables transaction of {ops} element ops on table {table} failed: {source}{}; nothing was applied",
        .ext_ack.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
    )]
    Batch {
        /// Number of ops in the batch.
        ops: usize,
        /// Table, e.g. `inet nsnet`.
        table: String,
        /// The errno.
        source: io::Error,
        /// Extended ACK message, when the kernel gave one.
        ext_ack: Option<String>,
    },
    /// A request outside a batch (e.g. GETTABLE) failed.
    #[error("{op}: {source}{}", .ext_ack.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kernel {
        /// Operation and object.
        op: String,
        /// The errno.
        source: io::Error,
        /// Extended ACK message, when the kernel gave one.
        ext_ack: Option<String>,
    },
    /// Socket-level failure (open, send, receive, netns switch).
    #[error("{op}: {source}")]
    Socket {
        /// What we were doing.
        op: String,
        /// The OS error.
        source: io::Error,
    },
    /// A reply from the kernel could not be parsed.
    #[error("{op}: cannot decode kernel reply: {msg}")]
    Decode {
        /// Operation whose reply was malformed.
        op: String,
        /// What was wrong.
        msg: String,
    },
    /// The request itself is invalid (bad name, oversized key).
    #[error("{op}: {msg}")]
    Invalid {
        /// The op or object.
        op: String,
        /// What is wrong with it.
        msg: String,
    },
    /// The `nft` process could not be run.
    #[error("{cmd}: cannot run {}: {source}", .binary)]
    Spawn {
        /// Command line, e.g. `nft -f -`.
        cmd: String,
        /// Binary we tried to run.
        binary: String,
        /// The OS error.
        source: io::Error,
    },
    /// `nft` ran and failed.
    #[error(
        "{cmd} failed ({status}): {}{}",
        if .stderr.trim().is_empty() { "nft printed no error message" } else { .stderr.trim_end() },
        if .script_head.is_empty() { String::new() } else { format!("\nscript begins with:\n{}", .script_head) }
    )]
    Nft {
        /// Command line, e.g. `nft -f -`.
        cmd: String,
        /// Exit status.
        status: std::process::ExitStatus,
        /// nft's stderr.
        stderr: String,
        /// First lines of the script (empty for commands without a script).
        script_head: String,
    },
    /// `nft -j` printed something that is not JSON.
    #[error("{cmd}: cannot parse JSON output: {source}")]
    Json {
        /// Command line.
        cmd: String,
        /// Parser error.
        source: serde_json::Error,
    },
}

impl NftError {
    /// The OS errno behind this error, if any.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Op { source, .. }
            | Self::Batch { source, .. }
            | Self::Kernel { source, .. }
            | Self::Socket { source, .. }
            | Self::Spawn { source, .. } => source.raw_os_error(),
            Self::Decode { .. } | Self::Invalid { .. } | Self::Nft { .. } | Self::Json { .. } => {
                None
            }
        }
    }

    /// True for EEXIST (e.g. an exclusive add of a key that is already present).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// True for ENOENT: a missing table, set or element.
    pub fn is_not_found(&self) -> bool {
        self.errno() == Some(libc::ENOENT)
    }

    /// For a failed element op with ENOENT: what was missing, when known.
    pub fn missing(&self) -> Option<&Missing> {
        match self {
            Self::Op { missing, .. } => missing.as_ref(),
            _ => None,
        }
    }

    /// True when the table or one of its sets is missing: the skeleton needs re-installing
    /// (`nsnet repair`).
    pub fn is_table_or_set_missing(&self) -> bool {
        matches!(self.missing(), Some(Missing::Table(_) | Missing::Set(_)))
    }

    /// Index of the failing op of an element batch.
    pub fn op_index(&self) -> Option<usize> {
        match self {
            Self::Op { index, .. } => Some(*index),
            _ => None,
        }
    }

    fn socket(op: impl Into<String>, source: io::Error) -> Self {
        Self::Socket {
            op: op.into(),
            source,
        }
    }

    fn decode(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Self::Decode {
            op: op.into(),
            msg: msg.into(),
        }
    }
}

/// A NETLINK_NETFILTER socket, bound to the network namespace it was opened in.
pub struct NftSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
    sndbuf: usize,
    rcvbuf: usize,
}

impl std::fmt::Debug for NftSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NftSocket")
            .field("fd", &self.sock.as_raw_fd())
            .field("seq", &self.seq)
            .finish()
    }
}

impl NftSocket {
    /// Socket in the calling thread's current network namespace.
    pub fn open() -> Result<NftSocket, NftError> {
        let op = "open nfnetlink socket";
        let mut sock = Socket::new(NETLINK_NETFILTER).map_err(|e| NftError::socket(op, e))?;
        // Optional features: without them errors are less precise, but everything works.
        if let Err(e) = sock.set_ext_ack(true) {
            tracing::debug!("NETLINK_EXT_ACK unavailable: {e}");
        }
        if let Err(e) = sock.set_cap_ack(true) {
            tracing::debug!("NETLINK_CAP_ACK unavailable: {e}");
        }
        set_timeout(&sock, RECV_TIMEOUT).map_err(|e| NftError::socket(op, e))?;
        sock.bind_auto().map_err(|e| NftError::socket(op, e))?;
        sock.connect(&SocketAddr::new(0, 0))
            .map_err(|e| NftError::socket(op, e))?;
        let mut s = NftSocket {
            sock,
            seq: initial_seq(),
            buf: vec![0; RECV_BUF],
            sndbuf: 0,
            rcvbuf: 0,
        };
        s.ensure_buffers(SOCK_BUF, SOCK_BUF);
        Ok(s)
    }

    /// Socket inside the namespace `netns`, opened on a short-lived helper thread so the
    /// caller's thread never changes namespace (the socket stays bound to that netns).
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<NftSocket, NftError> {
        crate::netns::run_in(netns, NftSocket::open).map_err(|e| {
            NftError::socket(
                format!("open nfnetlink socket in netns fd {}", netns.as_raw_fd()),
                io::Error::other(e),
            )
        })?
    }

    /// Applies the batch atomically as one nf_tables transaction. An empty batch is Ok without
    /// any syscall. On failure nothing of the batch is applied and the error says which op failed
    /// ([`NftError::Op`]), or that the transaction as a whole failed ([`NftError::Batch`]).
    pub fn apply(&mut self, batch: &ElemBatch) -> Result<(), NftError> {
        if batch.ops.is_empty() {
            return Ok(());
        }
        let enc = msg::encode_batch(batch, self.seq)?;
        self.seq = enc.end_seq.wrapping_add(1);
        let table = batch.table_desc();
        let what = || {
            format!(
                "nf_tables transaction of {} element ops on table {table}",
                batch.ops.len()
            )
        };
        self.ensure_buffers(
            enc.bytes.len() + 4096,
            enc.msgs.len() * ACK_BUDGET + RECV_BUF,
        );
        self.send(&enc.bytes)
            .map_err(|e| NftError::socket(what(), e))?;

        let first = enc.msgs[0].seq;
        let mut acks: Vec<Option<msg::Ack>> = vec![None; enc.msgs.len()];
        let mut remaining = acks.len();
        let mut batch_err: Option<msg::Ack> = None;
        // Read until every element message is answered; then drain what else is queued without
        // blocking, in case the kernel also reported a failed commit against BATCH_BEGIN.
        let mut blocking = true;
        loop {
            if remaining == 0 || batch_err.is_some() {
                blocking = false;
            }
            let len = match self.recv(blocking) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => {
                    return Err(NftError::socket(
                        format!("{}: read kernel acknowledgements", what()),
                        e,
                    ));
                }
            };
            let mut data = &self.buf[..len];
            while !data.is_empty() {
                let hdr = MsgHeader::parse(data)
                    .ok_or_else(|| NftError::decode(what(), "truncated netlink header"))?;
                let payload = &data[NLMSG_HDRLEN..hdr.len];
                data = &data[msg::align4(hdr.len).min(data.len())..];
                if hdr.kind != NLMSG_ERROR {
                    // Nothing but ACKs is expected; NLMSG_DONE or events are harmless.
                    if hdr.kind != NLMSG_DONE {
                        tracing::debug!(
                            seq = hdr.seq,
                            kind = hdr.kind,
                            "ignoring nfnetlink message"
                        );
                    }
                    continue;
                }
                let ack = msg::parse_ack(hdr.flags, payload)
                    .ok_or_else(|| NftError::decode(what(), "short NLMSG_ERROR"))?;
                if hdr.seq == enc.begin_seq || hdr.seq == enc.end_seq {
                    if ack.code != 0 && batch_err.is_none() {
                        batch_err = Some(ack);
                    }
                    continue;
                }
                let idx = hdr.seq.wrapping_sub(first) as usize;
                match acks.get_mut(idx) {
                    Some(slot @ None) => {
                        *slot = Some(ack);
                        remaining -= 1;
                    }
                    _ => tracing::debug!(seq = hdr.seq, "ignoring stale nfnetlink ack"),
                }
            }
        }

        // The first failing op (in batch order) is the cause; later failures may be follow-ups.
        let failed = acks
            .iter()
            .enumerate()
            .find_map(|(i, a)| a.as_ref().filter(|a| a.code != 0).map(|a| (i, a.clone())));
        if let Some((i, ack)) = failed {
            return Err(self.op_error(batch, &enc.msgs[i], ack));
        }
        if let Some(ack) = batch_err {
            return Err(NftError::Batch {
                ops: batch.ops.len(),
                table,
                source: io::Error::from_raw_os_error(-ack.code),
                ext_ack: ack.msg,
            });
        }
        if remaining > 0 {
            return Err(NftError::decode(
                what(),
                format!(
                    "kernel answered only {} of {} messages; outcome unknown",
                    acks.len() - remaining,
                    acks.len()
                ),
            ));
        }
        Ok(())
    }

    /// Builds the error for a failed element message, pinning down the op and what is missing.
    fn op_error(&mut self, batch: &ElemBatch, m: &msg::ElemMsg, ack: msg::Ack) -> NftError {
        let errno = -ack.code;
        let culprit = ack.offset.map_or(Culprit::Unknown, |o| m.locate(o));
        let index = match culprit {
            Culprit::Elem(i) => i,
            _ => m.elems[0].op,
        };
        let op = &batch.ops[index];
        let table = batch.table_desc();
        let missing = if errno == libc::ENOENT {
            match culprit {
                Culprit::Table => Some(Missing::Table(table.clone())),
                Culprit::Set => Some(Missing::Set(op.set().to_owned())),
                Culprit::Elem(_) if matches!(op, ElemOp::Del { .. }) => Some(Missing::Element),
                // No (usable) offset: ask the kernel what exists.
                _ => match self.table_exists(batch.family, &batch.table) {
                    Ok(false) => Some(Missing::Table(table.clone())),
                    Ok(true) => match self.set_exists(batch.family, &batch.table, op.set()) {
                        Ok(false) => Some(Missing::Set(op.set().to_owned())),
                        Ok(true) if matches!(op, ElemOp::Del { .. }) => Some(Missing::Element),
                        _ => None,
                    },
                    Err(_) => None,
                },
            }
        } else {
            None
        };
        NftError::Op {
            index,
            op: op.describe(),
            table,
            source: io::Error::from_raw_os_error(errno),
            missing,
            ext_ack: ack.msg,
        }
    }

    /// Whether table `family`/`name` exists (NFT_MSG_GETTABLE).
    pub fn table_exists(&mut self, family: u8, name: &str) -> Result<bool, NftError> {
        let op = format!("look up table {} {name}", family_name(family));
        self.get_exists(
            &op,
            msg::NFT_MSG_GETTABLE,
            family,
            &[(msg::NFTA_TABLE_NAME, name)],
        )
    }

    /// Whether set or map `set` exists in table `family`/`table` (NFT_MSG_GETSET).
    pub fn set_exists(&mut self, family: u8, table: &str, set: &str) -> Result<bool, NftError> {
        let op = format!("look up set {set} in table {} {table}", family_name(family));
        self.get_exists(
            &op,
            msg::NFT_MSG_GETSET,
            family,
            &[(msg::NFTA_SET_TABLE, table), (msg::NFTA_SET_NAME, set)],
        )
    }

    /// Sends a non-dump GET with NLM_F_ACK; true on an ACK, false on ENOENT.
    fn get_exists(
        &mut self,
        op: &str,
        cmd: u8,
        family: u8,
        attrs: &[(u16, &str)],
    ) -> Result<bool, NftError> {
        if attrs.iter().any(|(_, v)| v.is_empty() || v.contains('\0')) {
            return Err(NftError::Invalid {
                op: op.to_owned(),
                msg: "invalid name".into(),
            });
        }
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let mut w = msg::Writer::default();
        let m = w.begin_msg(
            msg::msg_type(cmd),
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
            family,
            0,
        );
        for (kind, value) in attrs {
            w.str_attr(*kind, value);
        }
        w.end_msg(m);
        self.ask_exists(op, seq, &w.buf)
    }

    /// Whether set or map `set` of table `family`/`table` holds an element with `key`
    /// (NFT_MSG_GETSETELEM for that one key); a missing table or set counts as absent.
    pub fn elem_exists(
        &mut self,
        family: u8,
        table: &str,
        set: &str,
        key: &[u8],
    ) -> Result<bool, NftError> {
        let op = format!(
            "look up element [{}] in set {set} of table {} {table}",
            hex_words(key),
            family_name(family)
        );
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        let bytes = msg::encode_get_elem(family, table, set, key, seq)?;
        self.ask_exists(&op, seq, &bytes)
    }

    /// Sends one GET request and waits for its ACK: true on success, false on ENOENT.
    fn ask_exists(&mut self, op: &str, seq: u32, request: &[u8]) -> Result<bool, NftError> {
        self.send(request).map_err(|e| NftError::socket(op, e))?;
        loop {
            let len = self
                .recv(true)
                .map_err(|e| NftError::socket(format!("{op}: read kernel reply"), e))?
                .unwrap_or(0);
            let mut data = &self.buf[..len];
            while !data.is_empty() {
                let hdr = MsgHeader::parse(data)
                    .ok_or_else(|| NftError::decode(op, "truncated netlink header"))?;
                let payload = &data[NLMSG_HDRLEN..hdr.len];
                data = &data[msg::align4(hdr.len).min(data.len())..];
                if hdr.seq != seq || hdr.kind != NLMSG_ERROR {
                    continue; // the object itself (NEWTABLE/NEWSET/NEWSETELEM) or stale messages
                }
                let ack = msg::parse_ack(hdr.flags, payload)
                    .ok_or_else(|| NftError::decode(op, "short NLMSG_ERROR"))?;
                return match -ack.code {
                    0 => Ok(true),
                    libc::ENOENT => Ok(false),
                    errno => Err(NftError::Kernel {
                        op: op.to_owned(),
                        source: io::Error::from_raw_os_error(errno),
                        ext_ack: ack.msg,
                    }),
                };
            }
        }
    }

    /// Grows the socket buffers so a whole batch fits in one datagram and all its ACKs can be
    /// queued. Uses the FORCE variants (root) and falls back to the capped ones.
    fn ensure_buffers(&mut self, snd: usize, rcv: usize) {
        if snd > self.sndbuf {
            self.sndbuf = set_buf(&self.sock, libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, snd);
        }
        if rcv > self.rcvbuf {
            self.rcvbuf = set_buf(&self.sock, libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, rcv);
        }
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

    /// Receives one datagram into `self.buf` (grown first if needed). Non-blocking mode returns
    /// `None` when nothing is queued.
    fn recv(&mut self, blocking: bool) -> io::Result<Option<usize>> {
        let nb = if blocking { 0 } else { libc::MSG_DONTWAIT };
        loop {
            let mut slice = &mut self.buf[..];
            let size = match self
                .sock
                .recv(&mut slice, libc::MSG_PEEK | libc::MSG_TRUNC | nb)
            {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if blocking {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "timed out waiting for the kernel",
                        ));
                    }
                    return Ok(None);
                }
                Err(e) => return Err(e),
            };
            if size > self.buf.len() {
                self.buf.resize(size.next_power_of_two(), 0);
            }
            let mut slice = &mut self.buf[..];
            match self.sock.recv(&mut slice, nb) {
                Ok(n) => return Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Sets a socket buffer size, preferring the uncapped FORCE option; returns the size obtained
/// (what we asked for, or what the capped option gave).
fn set_buf(sock: &Socket, force: libc::c_int, plain: libc::c_int, size: usize) -> usize {
    let val = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
    if setsockopt_int(sock, force, val).is_ok() {
        return size;
    }
    if let Err(e) = setsockopt_int(sock, plain, val) {
        tracing::debug!("setting netlink socket buffer to {size}: {e}");
    }
    getsockopt_int(sock, plain).map_or(0, |v| usize::try_from(v / 2).unwrap_or(0))
}

fn setsockopt_int(sock: &Socket, opt: libc::c_int, val: libc::c_int) -> io::Result<()> {
    // SAFETY: valid fd owned by `sock`; pointer/length describe a live c_int.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&val as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn getsockopt_int(sock: &Socket, opt: libc::c_int) -> io::Result<libc::c_int> {
    let mut val: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid fd owned by `sock`; pointer/length describe a live, writable c_int.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            opt,
            (&mut val as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(val)
    }
}

fn set_timeout(sock: &Socket, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: valid fd owned by `sock`; pointer/length describe a live timeval.
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

/// Starts sequence numbers somewhere unpredictable-ish so stale replies to an earlier socket
/// with the same port are not mistaken for ours.
fn initial_seq() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(1);
    nanos | 1
}
