//! The netlink framing every family shares: message headers, alignment, and the kernel's
//! answers (NLMSG_ERROR with its extended ACK, NLMSG_DONE). Pure, so it is tested on bytes.

use netlink_packet_core::{NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP};

/// Size of `struct nlmsghdr`.
pub(crate) const NLMSG_HDRLEN: usize = 16;
/// `NLMSGERR_ATTR_MSG` / `NLMSGERR_ATTR_OFFS` from linux/netlink.h.
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLMSGERR_ATTR_OFFS: u16 = 2;

/// Netlink messages (and attributes) start 4-byte aligned.
pub(crate) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Fixed part of a netlink message header, with `len` validated against the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MsgHeader {
    pub len: usize,
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
}

impl MsgHeader {
    pub(crate) fn parse(data: &[u8]) -> Option<MsgHeader> {
        let len = u32::from_ne_bytes(data.get(0..4)?.try_into().ok()?) as usize;
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

    /// Whether the kernel answers this request: with an ACK (NLM_F_ACK), or with NLMSG_DONE
    /// after a dump. Anything else is answered only when it fails (nfnetlink batch framing).
    pub(crate) fn wants_answer(&self) -> bool {
        self.flags & NLM_F_ACK != 0 || self.flags & NLM_F_DUMP == NLM_F_DUMP
    }
}

/// The messages of a datagram as (header, payload after the header); `Err` at the first
/// malformed header.
pub(crate) fn messages(mut data: &[u8]) -> impl Iterator<Item = Result<(MsgHeader, &[u8]), ()>> {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        let Some(hdr) = MsgHeader::parse(data) else {
            data = &[];
            return Some(Err(()));
        };
        let payload = &data[NLMSG_HDRLEN..hdr.len];
        data = &data[align4(hdr.len).min(data.len())..];
        Some(Ok((hdr, payload)))
    })
}

/// Numbers the messages of an encoded datagram in place, from `first`; returns the headers.
pub(crate) fn stamp(datagram: &mut [u8], first: u32) -> Result<Vec<MsgHeader>, ()> {
    let mut headers = Vec::new();
    let mut at = 0;
    while at < datagram.len() {
        let mut hdr = MsgHeader::parse(&datagram[at..]).ok_or(())?;
        hdr.seq = first.wrapping_add(headers.len() as u32);
        datagram[at + 8..at + 12].copy_from_slice(&hdr.seq.to_ne_bytes());
        headers.push(hdr);
        at += align4(hdr.len);
    }
    Ok(headers)
}

/// A decoded NLMSG_ERROR (or NLMSG_DONE): `code` is 0 (ACK) or a negative errno.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Ack {
    pub code: i32,
    /// NLMSGERR_ATTR_MSG, the extended ACK text.
    pub msg: Option<String>,
    /// NLMSGERR_ATTR_OFFS: offset of the offending attribute from the start of our message.
    pub offset: Option<usize>,
}

impl Ack {
    /// The errno of a refusal (positive), 0 for an ACK.
    pub(crate) fn errno(&self) -> i32 {
        -self.code
    }
}

/// Parses an NLMSG_ERROR payload (after the netlink header).
pub(crate) fn parse_error(flags: u16, payload: &[u8]) -> Option<Ack> {
    let code = i32::from_ne_bytes(payload.get(0..4)?.try_into().ok()?);
    let mut ack = Ack {
        code,
        ..Ack::default()
    };
    if flags & NLM_F_ACK_TLVS != 0 {
        // TLVs follow the echoed request: just its header when capped, else the whole message.
        let echoed = payload.get(4..)?;
        let skip = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            align4(u32::from_ne_bytes(echoed.get(0..4)?.try_into().ok()?) as usize)
        };
        ext_ack(echoed.get(skip..).unwrap_or_default(), &mut ack);
    }
    Some(ack)
}

/// Parses an NLMSG_DONE payload; the kernel may send it empty, which means success.
pub(crate) fn parse_done(flags: u16, payload: &[u8]) -> Ack {
    let Some(code) = payload
        .get(0..4)
        .and_then(|b| b.try_into().ok())
        .map(i32::from_ne_bytes)
    else {
        return Ack::default();
    };
    let mut ack = Ack {
        code,
        ..Ack::default()
    };
    if flags & NLM_F_ACK_TLVS != 0 {
        ext_ack(payload.get(4..).unwrap_or_default(), &mut ack);
    }
    ack
}

fn ext_ack(mut tlvs: &[u8], ack: &mut Ack) {
    while tlvs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([tlvs[0], tlvs[1]]));
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            break;
        }
        let value = &tlvs[4..len];
        match kind {
            NLMSGERR_ATTR_MSG => {
                let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                let text = String::from_utf8_lossy(&value[..end]).into_owned();
                ack.msg = Some(text).filter(|m| !m.is_empty());
            }
            NLMSGERR_ATTR_OFFS => {
                ack.offset = value
                    .get(0..4)
                    .and_then(|b| b.try_into().ok())
                    .map(|b| u32::from_ne_bytes(b) as usize);
            }
            _ => {}
        }
        tlvs = tlvs.get(align4(len)..).unwrap_or_default();
    }
}

/// Appends one message (header, then `payload`) to `out`, 4-byte aligned; sequence 0, the
/// socket numbers it.
#[cfg(any(test, feature = "testkit"))]
pub(crate) fn push_msg(out: &mut Vec<u8>, kind: u16, flags: u16, payload: &[u8]) {
    let len = NLMSG_HDRLEN + payload.len();
    out.extend_from_slice(&(len as u32).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(align4(out.len()), 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_core::NLM_F_REQUEST;

    #[test]
    fn parses_error_with_offset_and_message() {
        let mut p = Vec::new();
        p.extend_from_slice(&(-2i32).to_ne_bytes());
        p.extend_from_slice(&[0u8; NLMSG_HDRLEN]); // capped echo
        p.extend_from_slice(&8u16.to_ne_bytes());
        p.extend_from_slice(&NLMSGERR_ATTR_OFFS.to_ne_bytes());
        p.extend_from_slice(&32u32.to_ne_bytes());
        p.extend_from_slice(&9u16.to_ne_bytes());
        p.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        p.extend_from_slice(b"boom\0\0\0\0");
        let ack = parse_error(NLM_F_CAPPED | NLM_F_ACK_TLVS, &p).unwrap();
        assert_eq!(
            ack,
            Ack {
                code: -2,
                msg: Some("boom".into()),
                offset: Some(32)
            }
        );
        assert_eq!(ack.errno(), 2);
        assert_eq!(parse_error(0, &p).unwrap().offset, None);
        assert!(parse_error(0, &[1, 2]).is_none());
        assert_eq!(parse_done(0, &[]), Ack::default());
        assert_eq!(parse_done(0, &(-4i32).to_ne_bytes()).code, -4);
    }

    #[test]
    fn stamps_consecutive_sequence_numbers() {
        let mut d = Vec::new();
        push_msg(&mut d, 18, NLM_F_REQUEST | NLM_F_ACK, &[1, 2, 3]);
        push_msg(&mut d, 19, NLM_F_REQUEST, &[]);
        let hdrs = stamp(&mut d, 41).unwrap();
        assert_eq!(hdrs.iter().map(|h| h.seq).collect::<Vec<_>>(), [41, 42]);
        assert_eq!((hdrs[0].len, hdrs[1].len), (19, 16));
        assert!(hdrs[0].wants_answer() && !hdrs[1].wants_answer());
        let parsed: Vec<_> = messages(&d).map(|m| m.unwrap()).collect();
        assert_eq!(parsed[0].0, hdrs[0]);
        assert_eq!(parsed[0].1, &[1, 2, 3]);
        assert_eq!(parsed[1].0.seq, 42);
        assert!(stamp(&mut [0u8; 8], 1).is_err());
    }
}
