//! Pure encoding of nfnetlink / nf_tables messages and decoding of the kernel's answers.
//!
//! Constants are from linux/netfilter/nfnetlink.h and linux/netfilter/nf_tables.h; the layout of
//! an element message matches what nft 1.0.6 sends (checked with strace of `nft add element`).

use netlink_packet_core::{NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};

use super::{ElemBatch, ElemOp, NftError};
pub(crate) use crate::nl::wire::align4;
const NFNETLINK_V0: u8 = 0;
pub(crate) const NFNL_SUBSYS_NFTABLES: u8 = 10;
pub(crate) const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
pub(crate) const NFNL_MSG_BATCH_END: u16 = 0x11;

pub(crate) const NFT_MSG_GETTABLE: u8 = 1;
pub(crate) const NFT_MSG_GETSET: u8 = 10;
pub(crate) const NFT_MSG_NEWSETELEM: u8 = 12;
pub(crate) const NFT_MSG_GETSETELEM: u8 = 13;
pub(crate) const NFT_MSG_DELSETELEM: u8 = 14;

pub(crate) const NFTA_TABLE_NAME: u16 = 1;
pub(crate) const NFTA_SET_TABLE: u16 = 1;
pub(crate) const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;

/// `NFT_DATA_VALUE_MAXLEN`: longest key or data value the kernel accepts.
pub(crate) const NFT_DATA_VALUE_MAXLEN: usize = 64;
/// `NFT_TABLE_MAXNAMELEN` / `NFT_SET_MAXNAMELEN`, including the NUL.
const NFT_NAME_MAXLEN: usize = 256;
/// Cap on the nested element list of one message; its length field is 16 bits.
const MAX_ELEMS_NEST: usize = 60 * 1024;

/// Netlink message type of an nf_tables command.
pub(crate) fn msg_type(cmd: u8) -> u16 {
    (u16::from(NFNL_SUBSYS_NFTABLES) << 8) | u16::from(cmd)
}

/// Appends netlink messages and attributes to a buffer, keeping everything 4-byte aligned.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    /// Starts a message (netlink header + nfgenmsg); returns its offset for [`Writer::end_msg`].
    /// Its sequence number is left 0: the socket numbers the messages it sends.
    pub(crate) fn begin_msg(&mut self, kind: u16, flags: u16, family: u8, res_id: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched by end_msg
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // sequence number
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: 0 = kernel fills it in
        self.buf.push(family);
        self.buf.push(NFNETLINK_V0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        start
    }

    pub(crate) fn end_msg(&mut self, start: usize) {
        self.pad();
        let len = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    /// Appends one attribute (length excludes the trailing padding); returns its offset.
    pub(crate) fn attr(&mut self, kind: u16, data: &[u8]) -> usize {
        let start = self.buf.len();
        let len = u16::try_from(4 + data.len()).expect("attribute fits in 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        start
    }

    /// A NUL-terminated string attribute (NLA_STRING).
    pub(crate) fn str_attr(&mut self, kind: u16, s: &str) -> usize {
        let mut data = Vec::with_capacity(s.len() + 1);
        data.extend_from_slice(s.as_bytes());
        data.push(0);
        self.attr(kind, &data)
    }

    /// Opens a nested attribute (NLA_F_NESTED set, like libnftnl); close with `end_nest`.
    pub(crate) fn begin_nest(&mut self, kind: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        start
    }

    pub(crate) fn end_nest(&mut self, start: usize) {
        let len = u16::try_from(self.buf.len() - start).expect("nested attribute fits in 64 KiB");
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        self.buf.resize(align4(self.buf.len()), 0);
    }
}

/// Where one element sits inside its message, to map the kernel's error offset back to an op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElemSpan {
    /// Byte range relative to the start of the message's netlink header.
    pub start: usize,
    pub end: usize,
    /// Index of the op in the batch.
    pub op: usize,
}

/// One NEWSETELEM/DELSETELEM message of an encoded transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElemMsg {
    /// Position of the message in the datagram (0 is BATCH_BEGIN).
    pub index: usize,
    /// Which of the transaction's batches (tables) its elements belong to.
    pub batch: usize,
    /// Offsets of the table and set name attributes, relative to the message start.
    pub table_off: usize,
    pub set_off: usize,
    pub elems: Vec<ElemSpan>,
}

impl ElemMsg {
    /// What the kernel's bad-attribute offset points at.
    pub(crate) fn locate(&self, offset: usize) -> Culprit {
        if offset == self.table_off {
            Culprit::Table
        } else if offset == self.set_off {
            Culprit::Set
        } else if let Some(e) = self
            .elems
            .iter()
            .find(|e| (e.start..e.end).contains(&offset))
        {
            Culprit::Elem(e.op)
        } else {
            Culprit::Unknown
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Culprit {
    Table,
    Set,
    Elem(usize),
    Unknown,
}

/// A whole transaction, ready for one `sendmsg` (sequence numbers left to the socket).
#[derive(Debug)]
pub(crate) struct EncodedBatch {
    pub bytes: Vec<u8>,
    pub msgs: Vec<ElemMsg>,
}

/// Checks names and values so that encoding cannot overflow a length field and bad input gets
/// a clear error instead of a bare EINVAL.
fn validate(batch: &ElemBatch) -> Result<(), NftError> {
    let bad_name = |n: &str| n.is_empty() || n.len() >= NFT_NAME_MAXLEN || n.contains('\0');
    if bad_name(&batch.table) {
        return Err(NftError::Invalid {
            op: format!("element batch on table {}", batch.table_desc()),
            msg: "invalid table name".into(),
        });
    }
    for (i, op) in batch.ops.iter().enumerate() {
        let problem = if bad_name(op.set()) {
            Some("invalid set name".to_owned())
        } else {
            let (key, data) = match op {
                ElemOp::Add { key, data, .. } => (key, data.as_ref()),
                ElemOp::Del { key, .. } => (key, None),
            };
            let bad_len = |v: &[u8]| v.is_empty() || v.len() > NFT_DATA_VALUE_MAXLEN;
            if bad_len(key) {
                Some(format!(
                    "key of {} bytes (must be 1..={NFT_DATA_VALUE_MAXLEN})",
                    key.len()
                ))
            } else if data.is_some_and(|d| bad_len(d)) {
                Some(format!(
                    "data of {} bytes (must be 1..={NFT_DATA_VALUE_MAXLEN})",
                    data.map_or(0, Vec::len)
                ))
            } else {
                None
            }
        };
        if let Some(msg) = problem {
            return Err(NftError::Invalid {
                op: format!("op {i} ({})", op.describe()),
                msg,
            });
        }
    }
    Ok(())
}

/// Encodes one nf_tables transaction: BATCH_BEGIN, the element messages of every batch (each
/// on its own table), and BATCH_END. The kernel applies all of it or nothing.
///
/// Consecutive ops of the same kind on the same set (and, for adds, the same exclusivity) share
/// one message, up to ~60 KiB of elements; the kernel's bad-attribute offset still identifies the
/// failing element. Every element message carries NLM_F_ACK so each gets an answer.
pub(crate) fn encode_transaction(batches: &[&ElemBatch]) -> Result<EncodedBatch, NftError> {
    batches.iter().try_for_each(|b| validate(b))?;
    let mut w = Writer::default();
    let mut count = 0;
    let m = w.begin_msg(
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        libc::AF_UNSPEC as u8,
        u16::from(NFNL_SUBSYS_NFTABLES),
    );
    w.end_msg(m);
    count += 1;

    struct Open {
        msg_start: usize,
        nest_start: usize,
        group: (bool, bool),
        msg: ElemMsg,
    }
    let mut msgs = Vec::new();
    let close = |w: &mut Writer, o: Open, msgs: &mut Vec<ElemMsg>| {
        w.end_nest(o.nest_start);
        w.end_msg(o.msg_start);
        msgs.push(o.msg);
    };

    for (b, batch) in batches.iter().enumerate() {
        let mut open: Option<Open> = None;
        for (i, op) in batch.ops.iter().enumerate() {
            let (add, exclusive) = match op {
                ElemOp::Add { exclusive, .. } => (true, *exclusive),
                ElemOp::Del { .. } => (false, false),
            };
            let elem_size = encoded_elem_len(op);
            let reuse = open.as_ref().is_some_and(|o| {
                o.group == (add, exclusive)
                    && batch.ops[o.msg.elems[0].op].set() == op.set()
                    && w.buf.len() - o.nest_start + elem_size <= MAX_ELEMS_NEST
            });
            if !reuse {
                if let Some(o) = open.take() {
                    close(&mut w, o, &mut msgs);
                }
                let (cmd, flags) = if add {
                    let excl = if exclusive { NLM_F_EXCL } else { 0 };
                    (NFT_MSG_NEWSETELEM, NLM_F_CREATE | excl)
                } else {
                    (NFT_MSG_DELSETELEM, 0)
                };
                let msg_start = w.begin_msg(
                    msg_type(cmd),
                    NLM_F_REQUEST | NLM_F_ACK | flags,
                    batch.family,
                    0,
                );
                let table_off = w.str_attr(NFTA_SET_ELEM_LIST_TABLE, &batch.table) - msg_start;
                let set_off = w.str_attr(NFTA_SET_ELEM_LIST_SET, op.set()) - msg_start;
                let nest_start = w.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
                open = Some(Open {
                    msg_start,
                    nest_start,
                    group: (add, exclusive),
                    msg: ElemMsg {
                        index: count,
                        batch: b,
                        table_off,
                        set_off,
                        elems: Vec::new(),
                    },
                });
                count += 1;
            }
            let o = open.as_mut().expect("a message is open");
            let start = w.begin_nest(NFTA_LIST_ELEM);
            let (key, data) = match op {
                ElemOp::Add { key, data, .. } => (key, data.as_ref()),
                ElemOp::Del { key, .. } => (key, None),
            };
            let k = w.begin_nest(NFTA_SET_ELEM_KEY);
            w.attr(NFTA_DATA_VALUE, key);
            w.end_nest(k);
            if let Some(data) = data {
                let d = w.begin_nest(NFTA_SET_ELEM_DATA);
                w.attr(NFTA_DATA_VALUE, data);
                w.end_nest(d);
            }
            w.end_nest(start);
            debug_assert_eq!(w.buf.len() - start, elem_size);
            o.msg.elems.push(ElemSpan {
                start: start - o.msg_start,
                end: w.buf.len() - o.msg_start,
                op: i,
            });
        }
        if let Some(o) = open.take() {
            close(&mut w, o, &mut msgs);
        }
    }

    let m = w.begin_msg(
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        libc::AF_UNSPEC as u8,
        u16::from(NFNL_SUBSYS_NFTABLES),
    );
    w.end_msg(m);
    Ok(EncodedBatch { bytes: w.buf, msgs })
}

/// Encodes a non-dump NFT_MSG_GETSETELEM for one key (what `nft get element` sends): the
/// kernel answers with the element and an ACK, or ENOENT when the key (or set, or table) is
/// missing.
pub(crate) fn encode_get_elem(
    family: u8,
    table: &str,
    set: &str,
    key: &[u8],
) -> Result<Vec<u8>, NftError> {
    let probe = ElemBatch {
        family,
        table: table.to_owned(),
        ops: vec![ElemOp::Del {
            set: set.to_owned(),
            key: key.to_vec(),
        }],
    };
    validate(&probe)?;
    let mut w = Writer::default();
    let m = w.begin_msg(
        msg_type(NFT_MSG_GETSETELEM),
        NLM_F_REQUEST | NLM_F_ACK,
        family,
        0,
    );
    w.str_attr(NFTA_SET_ELEM_LIST_TABLE, table);
    w.str_attr(NFTA_SET_ELEM_LIST_SET, set);
    let list = w.begin_nest(NFTA_SET_ELEM_LIST_ELEMENTS);
    let elem = w.begin_nest(NFTA_LIST_ELEM);
    let k = w.begin_nest(NFTA_SET_ELEM_KEY);
    w.attr(NFTA_DATA_VALUE, key);
    w.end_nest(k);
    w.end_nest(elem);
    w.end_nest(list);
    w.end_msg(m);
    Ok(w.buf)
}

/// Bytes of one NFTA_LIST_ELEM as encoded above.
fn encoded_elem_len(op: &ElemOp) -> usize {
    let value = |v: &[u8]| 4 + 4 + align4(v.len()); // nest header + NFTA_DATA_VALUE
    match op {
        ElemOp::Add { key, data, .. } => 4 + value(key) + data.as_deref().map_or(0, value),
        ElemOp::Del { key, .. } => 4 + value(key),
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::super::encode;
    use super::*;
    use crate::nl::wire::{MsgHeader, messages, stamp};

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn pf_any4_add() -> ElemBatch {
        ElemBatch {
            family: nsnet_core::firewall::FAMILY_INET,
            table: "nsnet".into(),
            ops: vec![ElemOp::Add {
                set: "pf_any4".into(),
                key: encode::concat(&[encode::proto(6), encode::port(8080)]),
                data: Some(encode::concat(&[
                    encode::ipv4(Ipv4Addr::new(10, 0, 0, 2)),
                    encode::port(80),
                ])),
                exclusive: false,
            }],
        }
    }

    /// Golden bytes: what nft 1.0.6 sent for
    /// `nft add element inet nsnet pf_any4 { tcp . 8080 : 10.0.0.2 . 80 }` (captured with
    /// strace -xx), minus its NFTA_SET_ELEM_LIST_SET_ID attribute (only needed for sets created in
    /// the same batch), plus NLM_F_ACK, and with our sequence numbers (little-endian host).
    #[test]
    #[cfg(target_endian = "little")]
    fn batch_matches_nft_golden_bytes() {
        let mut enc = encode_transaction(&[&pf_any4_add()]).unwrap();
        // Numbered as the socket numbers them when it sends the datagram.
        stamp(&mut enc.bytes, 0x100).unwrap();
        let expected = unhex(concat!(
            // BATCH_BEGIN: len 20, type 0x10, flags REQUEST, seq 0x100, pid 0, AF_UNSPEC, v0, res_id 10 (BE)
            "14000000 1000 0100 00010000 00000000 00 00 000a",
            // NEWSETELEM: len 84, type 0x0a0c, flags REQUEST|ACK|CREATE (0x405), seq 0x101, inet
            "54000000 0c0a 0504 01010000 00000000 01 00 0000",
            "0a00 0100 6e736e6574000000", // NFTA_SET_ELEM_LIST_TABLE "nsnet"
            "0c00 0200 70665f616e793400", // NFTA_SET_ELEM_LIST_SET "pf_any4"
            // NFTA_SET_ELEM_LIST_ELEMENTS (nested): exactly nft's bytes
            "2800 0380",
            "24000180 10000180 0c000100 06000000 1f900000",
            "10000280 0c000100 0a000002 00500000",
            // BATCH_END: seq 0x102
            "14000000 1100 0100 02010000 00000000 00 00 000a",
        ));
        assert_eq!(hex(&enc.bytes), hex(&expected));
        assert_eq!(
            enc.msgs,
            vec![ElemMsg {
                index: 1,
                batch: 0,
                table_off: 20,
                set_off: 32,
                elems: vec![ElemSpan {
                    start: 48,
                    end: 84,
                    op: 0
                }],
            }]
        );
        assert_eq!(enc.msgs[0].locate(32), Culprit::Set);
        assert_eq!(enc.msgs[0].locate(20), Culprit::Table);
        assert_eq!(enc.msgs[0].locate(52), Culprit::Elem(0));
        assert_eq!(enc.msgs[0].locate(44), Culprit::Unknown);
    }

    #[test]
    fn groups_consecutive_ops_per_set_and_kind() {
        let key = |p: u16| encode::concat(&[encode::proto(6), encode::port(p)]);
        let add = |set: &str, p: u16, exclusive: bool| ElemOp::Add {
            set: set.into(),
            key: key(p),
            data: None,
            exclusive,
        };
        let del = |set: &str, p: u16| ElemOp::Del {
            set: set.into(),
            key: key(p),
        };
        let batch = ElemBatch {
            family: 1,
            table: "t".into(),
            ops: vec![
                add("a", 1, true),
                add("a", 2, true),
                add("a", 3, false), // exclusivity differs: new message
                add("b", 4, false), // set differs
                del("b", 5),        // kind differs
                del("b", 6),
                add("b", 7, false),
            ],
        };
        let enc = encode_transaction(&[&batch]).unwrap();
        let groups: Vec<Vec<usize>> = enc
            .msgs
            .iter()
            .map(|m| m.elems.iter().map(|e| e.op).collect())
            .collect();
        assert_eq!(
            groups,
            vec![vec![0, 1], vec![2], vec![3], vec![4, 5], vec![6]]
        );
        let indexes: Vec<usize> = enc.msgs.iter().map(|m| m.index).collect();
        assert_eq!(indexes, [1, 2, 3, 4, 5]);

        // Walk the datagram: every message well-formed, types and flags as intended.
        let kinds: Vec<(u16, u16)> = messages(&enc.bytes)
            .map(|m| m.map(|(h, _)| (h.kind, h.flags)).unwrap())
            .collect();
        let add_excl = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
        let add = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE;
        let del = NLM_F_REQUEST | NLM_F_ACK;
        assert_eq!(
            kinds,
            vec![
                (NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST),
                (0x0a0c, add_excl),
                (0x0a0c, add),
                (0x0a0c, add),
                (0x0a0e, del),
                (0x0a0c, add),
                (NFNL_MSG_BATCH_END, NLM_F_REQUEST),
            ]
        );
    }

    #[test]
    fn large_groups_are_split_below_64k() {
        let ops: Vec<ElemOp> = (0..5000u32)
            .map(|i| ElemOp::Add {
                set: "s".into(),
                key: encode::concat(&[encode::ipv4(Ipv4Addr::from(i)), encode::port(80)]),
                data: Some(encode::concat(&[
                    encode::ipv4(Ipv4Addr::from(i)),
                    encode::port(1),
                ])),
                exclusive: false,
            })
            .collect();
        let batch = ElemBatch {
            family: 1,
            table: "t".into(),
            ops,
        };
        let enc = encode_transaction(&[&batch]).unwrap();
        assert!(enc.msgs.len() > 1);
        let total: usize = enc.msgs.iter().map(|m| m.elems.len()).sum();
        assert_eq!(total, 5000);
        let mut data = &enc.bytes[..];
        while !data.is_empty() {
            let h = MsgHeader::parse(data).unwrap();
            assert!(h.len < 64 * 1024, "message of {} bytes", h.len);
            data = &data[align4(h.len)..];
        }
    }

    #[test]
    fn rejects_bad_input() {
        let mut b = pf_any4_add();
        if let ElemOp::Add { key, .. } = &mut b.ops[0] {
            *key = vec![0; 65];
        }
        let e = encode_transaction(&[&b]).unwrap_err();
        assert!(e.to_string().contains("key of 65 bytes"), "{e}");
        let mut b = pf_any4_add();
        b.table = String::new();
        assert!(encode_transaction(&[&b]).is_err());
    }

    #[test]
    fn one_transaction_spans_tables() {
        let inet = pf_any4_add();
        let mut bridge = ElemBatch::new(nsnet_core::firewall::FAMILY_BRIDGE, "nsnet");
        bridge.ops.push(ElemOp::Del {
            set: "noicc".into(),
            key: encode::ifname("nsv0"),
        });
        let enc = encode_transaction(&[&inet, &bridge]).unwrap();
        let families: Vec<(u16, u8)> = messages(&enc.bytes)
            .map(|m| m.map(|(h, p)| (h.kind, p[0])).unwrap())
            .collect();
        assert_eq!(
            families,
            [
                (NFNL_MSG_BATCH_BEGIN, 0),
                (0x0a0c, 1),
                (0x0a0e, 7),
                (NFNL_MSG_BATCH_END, 0)
            ]
        );
        let owners: Vec<(usize, usize)> = enc.msgs.iter().map(|m| (m.index, m.batch)).collect();
        assert_eq!(owners, [(1, 0), (2, 1)]);
    }
}
