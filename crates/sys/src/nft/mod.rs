//! nftables backend: set/map element batches over NETLINK_NETFILTER, and an `nft` executor.
//!
//! nsnet owns one table (`inet nsnet`). Its chains, rules and (empty) sets are a fixed skeleton
//! installed once, as one netlink transaction ([`NftSocket::install_skeleton`]; `nft -f -` text
//! only upgrades tables an older nsnet made, [`run_script`]); everything per network, endpoint or port
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
mod skeleton;
#[cfg(test)]
mod tests;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST};

pub use script::{nft_binary, run_script};

use crate::nl::{self, Answer, Netfilter, NlSocket};
use msg::Culprit;

/// Receive-buffer charge we budget per queued ACK (an skb's truesize, rounded up generously),
/// and room for one more datagram.
const ACK_BUDGET: usize = 2048;
const RECV_ROOM: usize = 64 * 1024;

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

/// Element changes to one table. Applied ([`NftSocket::apply`], alone or with batches of other
/// tables) as one nf_tables transaction (NFNL_MSG_BATCH_BEGIN ... NFNL_MSG_BATCH_END, res_id
/// NFNL_SUBSYS_NFTABLES) in one sendmsg: all or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElemBatch {
    /// Table family, e.g. `nsnet_core::firewall::FAMILY_INET`.
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
            Self::Decode { .. } | Self::Invalid { .. } | Self::Nft { .. } => None,
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
#[derive(Debug)]
pub struct NftSocket {
    sock: NlSocket<Netfilter>,
}

impl NftSocket {
    /// Socket in the calling thread's current network namespace.
    pub fn open() -> Result<NftSocket, NftError> {
        let sock = NlSocket::open().map_err(|e| NftError::socket("open nfnetlink socket", e))?;
        Ok(NftSocket { sock })
    }

    /// Socket inside the namespace `netns`, opened on a short-lived helper thread so the
    /// caller's thread never changes namespace (the socket stays bound to that netns).
    pub fn open_in(netns: BorrowedFd<'_>) -> Result<NftSocket, NftError> {
        let sock = NlSocket::open_in(netns).map_err(|e| {
            NftError::socket(
                format!("open nfnetlink socket in netns fd {}", netns.as_raw_fd()),
                e,
            )
        })?;
        Ok(NftSocket { sock })
    }

    /// A socket whose requests go to `recorder` (tests without root), in namespace `ns`.
    #[cfg(any(test, feature = "testkit"))]
    pub fn recording(recorder: &nl::record::Recorder, ns: &str) -> NftSocket {
        NftSocket {
            sock: NlSocket::recording(recorder, ns),
        }
    }

    /// Applies the batch atomically as one nf_tables transaction; see [`NftSocket::apply_all`].
    pub fn apply(&mut self, batch: &ElemBatch) -> Result<(), NftError> {
        self.apply_all(&[batch])
    }

    /// Applies batches on several tables as ONE nf_tables transaction, in one round trip: all
    /// of it or nothing. Empty batches are left out, and nothing at all is sent without ops.
    /// On failure the error says which op of which table failed ([`NftError::Op`]), or that the
    /// transaction as a whole failed ([`NftError::Batch`]).
    pub fn apply_all(&mut self, batches: &[&ElemBatch]) -> Result<(), NftError> {
        let batches: Vec<&ElemBatch> = batches
            .iter()
            .copied()
            .filter(|b| !b.ops.is_empty())
            .collect();
        if batches.is_empty() {
            return Ok(());
        }
        let mut enc = msg::encode_transaction(&batches)?;
        let ops: usize = batches.iter().map(|b| b.ops.len()).sum();
        let table = batches
            .iter()
            .map(|b| b.table_desc())
            .collect::<Vec<_>>()
            .join(" and ");
        let what = || format!("nf_tables transaction of {ops} element ops on table {table}");
        self.sock.ensure_buffers(
            enc.bytes.len() + 4096,
            enc.msgs.len() * ACK_BUDGET + RECV_ROOM,
        );
        let answers = self.sock.exchange(&mut enc.bytes).map_err(|e| match e {
            nl::Failure::Io(e) => NftError::socket(what(), e),
            nl::Failure::Decode(msg) => NftError::decode(what(), msg),
        })?;

        // The first failing op (in batch order) is the cause; later failures may be follow-ups.
        for m in &enc.msgs {
            if let Answer::Refused(ack) = &answers[m.index] {
                return Err(self.op_error(batches[m.batch], m, ack.clone()));
            }
        }
        // Otherwise the kernel refused the transaction itself (against its framing).
        if let Some(ack) = answers.iter().find_map(|a| match a {
            Answer::Refused(ack) => Some(ack),
            _ => None,
        }) {
            return Err(NftError::Batch {
                ops,
                table,
                source: io::Error::from_raw_os_error(ack.errno()),
                ext_ack: ack.msg.clone(),
            });
        }
        let unanswered = enc
            .msgs
            .iter()
            .filter(|m| matches!(answers[m.index], Answer::Silent))
            .count();
        if unanswered > 0 {
            return Err(NftError::decode(
                what(),
                format!(
                    "kernel answered only {} of {} messages; outcome unknown",
                    enc.msgs.len() - unanswered,
                    enc.msgs.len()
                ),
            ));
        }
        Ok(())
    }

    /// Installs the skeleton of `nsnet_core::firewall::skeleton()` in ONE transaction, without
    /// an `nft` process; with `replace`, whatever tables named nsnet were there go first
    /// (elements included), in the same transaction.
    pub fn install_skeleton(&mut self, replace: bool) -> Result<(), NftError> {
        self.run_objects(
            &skeleton::install_msgs(replace),
            "install nsnet firewall tables",
        )
    }

    /// Removes both nsnet tables in one transaction; missing ones are fine.
    pub fn remove_tables(&mut self) -> Result<(), NftError> {
        self.run_objects(&skeleton::remove_msgs(), "remove nsnet firewall tables")
    }

    /// Sends table/set/chain/rule messages as one transaction; the first refused message names
    /// the object in the error (nothing of the transaction is applied then).
    fn run_objects(&mut self, msgs: &[skeleton::Msg], what: &str) -> Result<(), NftError> {
        let mut bytes = skeleton::encode(msgs);
        self.sock.ensure_buffers(
            bytes.len() + 4096,
            (msgs.len() + 2) * ACK_BUDGET + RECV_ROOM,
        );
        let answers = self.sock.exchange(&mut bytes).map_err(|e| match e {
            nl::Failure::Io(e) => NftError::socket(what, e),
            nl::Failure::Decode(msg) => NftError::decode(what, msg),
        })?;
        // answers[0] is BATCH_BEGIN's; message k has answer k + 1.
        let refused = msgs
            .iter()
            .zip(answers.iter().skip(1))
            .find_map(|(m, a)| match a {
                Answer::Refused(ack) => Some((format!("{what}: {}", m.what), ack)),
                _ => None,
            })
            .or_else(|| {
                answers.iter().find_map(|a| match a {
                    Answer::Refused(ack) => Some((what.to_owned(), ack)),
                    _ => None,
                })
            });
        if let Some((op, ack)) = refused {
            return Err(NftError::Kernel {
                op: format!("{op} (nothing was applied)"),
                source: io::Error::from_raw_os_error(ack.errno()),
                ext_ack: ack.msg.clone(),
            });
        }
        let silent = answers
            .iter()
            .skip(1)
            .take(msgs.len())
            .filter(|a| matches!(a, Answer::Silent))
            .count();
        if silent > 0 {
            return Err(NftError::decode(
                what,
                format!(
                    "kernel answered only {} of {} messages; outcome unknown",
                    msgs.len() - silent,
                    msgs.len()
                ),
            ));
        }
        Ok(())
    }

    /// Builds the error for a failed element message, pinning down the op and what is missing.
    fn op_error(&mut self, batch: &ElemBatch, m: &msg::ElemMsg, ack: nl::wire::Ack) -> NftError {
        let errno = ack.errno();
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

    /// Whether tables `inet`/`table` and `bridge`/`table` exist, and set `set` in the first,
    /// in one round trip (what a network's create asks before anything else).
    pub fn skeleton_parts_exist(
        &mut self,
        inet: u8,
        bridge: u8,
        table: &str,
        set: &str,
    ) -> Result<[bool; 3], NftError> {
        let op = format!("look up tables {table} and set {set}");
        if [table, set]
            .iter()
            .any(|v| v.is_empty() || v.contains('\0'))
        {
            return Err(NftError::Invalid {
                op,
                msg: "invalid name".into(),
            });
        }
        let mut w = msg::Writer::default();
        for family in [inet, bridge] {
            let m = w.begin_msg(
                msg::msg_type(msg::NFT_MSG_GETTABLE),
                NLM_F_REQUEST | NLM_F_ACK,
                family,
                0,
            );
            w.str_attr(msg::NFTA_TABLE_NAME, table);
            w.end_msg(m);
        }
        let m = w.begin_msg(
            msg::msg_type(msg::NFT_MSG_GETSET),
            NLM_F_REQUEST | NLM_F_ACK,
            inet,
            0,
        );
        w.str_attr(msg::NFTA_SET_TABLE, table);
        w.str_attr(msg::NFTA_SET_NAME, set);
        w.end_msg(m);
        let mut request = w.buf;
        let answers = self.sock.exchange(&mut request).map_err(|e| match e {
            nl::Failure::Io(e) => NftError::socket(&op, e),
            nl::Failure::Decode(msg) => NftError::decode(&op, msg),
        })?;
        let mut found = [false; 3];
        for (i, slot) in found.iter_mut().enumerate() {
            *slot = exists(&op, answers.get(i))?;
        }
        Ok(found)
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
        let mut w = msg::Writer::default();
        let m = w.begin_msg(msg::msg_type(cmd), NLM_F_REQUEST | NLM_F_ACK, family, 0);
        for (kind, value) in attrs {
            w.str_attr(*kind, value);
        }
        w.end_msg(m);
        self.ask_exists(op, w.buf)
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
        let request = msg::encode_get_elem(family, table, set, key)?;
        self.ask_exists(&op, request)
    }

    /// Sends one GET request: true when the kernel acknowledges it (after sending the object),
    /// false on ENOENT.
    fn ask_exists(&mut self, op: &str, mut request: Vec<u8>) -> Result<bool, NftError> {
        let answer = self.sock.exchange(&mut request).map_err(|e| match e {
            nl::Failure::Io(e) => NftError::socket(op, e),
            nl::Failure::Decode(msg) => NftError::decode(op, msg),
        })?;
        exists(op, answer.first())
    }
}

/// A GET's answer as existence: true on an answer, false on ENOENT.
fn exists(op: &str, answer: Option<&Answer>) -> Result<bool, NftError> {
    match answer {
        Some(Answer::Done(_)) => Ok(true),
        Some(Answer::Refused(ack)) if ack.errno() == libc::ENOENT => Ok(false),
        Some(Answer::Refused(ack)) => Err(NftError::Kernel {
            op: op.to_owned(),
            source: io::Error::from_raw_os_error(ack.errno()),
            ext_ack: ack.msg.clone(),
        }),
        _ => Err(NftError::decode(op, "the kernel did not answer")),
    }
}
