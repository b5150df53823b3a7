//! The answer to one query: local names (A, AAAA, PTR, NODATA, NXDOMAIN under the search
//! domain), or "forward it", or a refusal.

use std::net::IpAddr;

use simple_dns::rdata::{A, AAAA, PTR, RData};
use simple_dns::{
    CLASS, Name, OPCODE, Packet, PacketFlag, QCLASS, QTYPE, RCODE, ResourceRecord, TYPE,
};

use crate::{SEARCH_DOMAIN, TTL, Table};

/// Largest UDP answer without EDNS (RFC 1035).
const UDP_PLAIN: usize = 512;

/// What to do with a query.
#[derive(Debug, PartialEq, Eq)]
pub enum Reply {
    /// Send these bytes back.
    Local(Vec<u8>),
    /// Not a name of ours: relay the query to the upstream servers.
    Forward,
    /// Unparseable beyond its header: say nothing (a FORMERR needs an id to answer to).
    Drop,
}

/// The answer to `query` from `client`, received on `local` (a gateway address), over UDP
/// when `udp` (answers then fit the client's buffer or come truncated, to be asked again
/// over TCP).
pub fn respond(table: &Table, query: &[u8], client: IpAddr, local: IpAddr, udp: bool) -> Reply {
    let Ok(q) = Packet::parse(query) else {
        return error_from_header(query, RCODE::FormatError);
    };
    if q.has_flags(PacketFlag::RESPONSE) {
        return Reply::Drop;
    }
    let mut r = Packet::new_reply(q.id());
    if q.has_flags(PacketFlag::RECURSION_DESIRED) {
        r.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    r.set_flags(PacketFlag::RECURSION_AVAILABLE);
    if q.opcode() != OPCODE::StandardQuery {
        *r.rcode_mut() = RCODE::NotImplemented;
        return build(r, udp, UDP_PLAIN);
    }
    let [question] = q.questions.as_slice() else {
        *r.rcode_mut() = RCODE::FormatError;
        return build(r, udp, UDP_PLAIN);
    };
    r.questions.push(question.clone());
    let limit = q
        .opt()
        .map_or(UDP_PLAIN, |o| usize::from(o.udp_packet_size).max(UDP_PLAIN));
    if q.opt().is_some() {
        *r.opt_mut() = Some(simple_dns::rdata::OPT {
            opt_codes: Vec::new(),
            udp_packet_size: 1232,
            version: 0,
        });
    }
    let full = question.qname.to_string().to_ascii_lowercase();
    let full = full.trim_end_matches('.');
    let (name, ours) = match full.strip_suffix(SEARCH_DOMAIN) {
        Some("") => ("", true),
        Some(rest) if rest.ends_with('.') => (&rest[..rest.len() - 1], true),
        _ => (full, false),
    };
    let scope = table.scope(client, local);
    if scope.is_empty() {
        *r.rcode_mut() = RCODE::Refused;
        return build(r, udp, limit);
    }
    let in_class = matches!(question.qclass, QCLASS::CLASS(CLASS::IN) | QCLASS::ANY);
    if in_class && let Some(addrs) = table.lookup(&scope, name) {
        r.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
        let (want4, want6) = match question.qtype {
            QTYPE::TYPE(TYPE::A) => (true, false),
            QTYPE::TYPE(TYPE::AAAA) => (false, true),
            QTYPE::ANY => (true, true),
            // The name exists without records of that type: NODATA, never forwarded.
            _ => (false, false),
        };
        for ip in addrs {
            let rdata = match ip {
                IpAddr::V4(v4) if want4 => RData::A(A { address: v4.into() }),
                IpAddr::V6(v6) if want6 => RData::AAAA(AAAA { address: v6.into() }),
                _ => continue,
            };
            r.answers.push(ResourceRecord::new(
                question.qname.clone(),
                CLASS::IN,
                TTL,
                rdata,
            ));
        }
        return build(r, udp, limit);
    }
    if in_class
        && matches!(question.qtype, QTYPE::TYPE(TYPE::PTR))
        && let Some(ip) = reverse_ip(full)
        && let Some(host) = table.reverse(&scope, ip)
    {
        r.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
        let target = format!("{host}.{SEARCH_DOMAIN}");
        let Ok(target) = Name::new(&target) else {
            *r.rcode_mut() = RCODE::ServerFailure;
            return build(r, udp, limit);
        };
        r.answers.push(ResourceRecord::new(
            question.qname.clone(),
            CLASS::IN,
            TTL,
            RData::PTR(PTR(target)),
        ));
        return build(r, udp, limit);
    }
    if ours || !table.may_forward(&scope) {
        r.set_flags(PacketFlag::AUTHORITATIVE_ANSWER);
        *r.rcode_mut() = RCODE::NameError;
        return build(r, udp, limit);
    }
    Reply::Forward
}

/// The bytes of `r`; over UDP, when they exceed `limit`, the header alone with TC set.
fn build(mut r: Packet<'_>, udp: bool, limit: usize) -> Reply {
    let Ok(bytes) = r.build_bytes_vec_compressed() else {
        return Reply::Drop;
    };
    if !udp || bytes.len() <= limit {
        return Reply::Local(bytes);
    }
    r.answers.clear();
    r.set_flags(PacketFlag::TRUNCATION);
    r.build_bytes_vec_compressed()
        .map_or(Reply::Drop, Reply::Local)
}

/// SERVFAIL for a query no upstream answered in time (the client then tries its next
/// server at once instead of waiting out its own timeout).
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    match Packet::parse(query) {
        Ok(q) => {
            let mut r = Packet::new_reply(q.id());
            if q.has_flags(PacketFlag::RECURSION_DESIRED) {
                r.set_flags(PacketFlag::RECURSION_DESIRED);
            }
            r.set_flags(PacketFlag::RECURSION_AVAILABLE);
            r.questions = q.questions.clone();
            *r.rcode_mut() = RCODE::ServerFailure;
            r.build_bytes_vec().ok()
        }
        Err(_) => match error_from_header(query, RCODE::ServerFailure) {
            Reply::Local(b) => Some(b),
            _ => None,
        },
    }
}

/// A bare error answer echoing the id and opcode of a query whose body did not parse.
fn error_from_header(query: &[u8], rcode: RCODE) -> Reply {
    let Some(head) = query.get(..12) else {
        return Reply::Drop;
    };
    if head[2] & 0x80 != 0 {
        return Reply::Drop;
    }
    let mut out = vec![0u8; 12];
    out[..2].copy_from_slice(&head[..2]);
    // QR set, opcode and RD echoed.
    out[2] = 0x80 | (head[2] & 0x79);
    out[3] = 0x80 | (rcode as u8);
    Reply::Local(out)
}

/// The address a reverse name (`4.3.2.1.in-addr.arpa`, nibbles under `ip6.arpa`) stands for.
pub fn reverse_ip(name: &str) -> Option<IpAddr> {
    if let Some(rest) = name.strip_suffix(".in-addr.arpa") {
        let mut octets = rest
            .split('.')
            .map(|o| o.parse::<u8>().ok())
            .collect::<Option<Vec<u8>>>()?;
        if octets.len() != 4 {
            return None;
        }
        octets.reverse();
        return Some(IpAddr::from([octets[0], octets[1], octets[2], octets[3]]));
    }
    let rest = name.strip_suffix(".ip6.arpa")?;
    let nibbles: Vec<u8> = rest
        .split('.')
        .map(|n| match n.len() {
            1 => u8::from_str_radix(n, 16).ok(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if nibbles.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (i, pair) in nibbles.rchunks(2).enumerate() {
        bytes[i] = (pair[1] << 4) | pair[0];
    }
    Some(IpAddr::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::tests::sample;
    use simple_dns::Question;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn query(name: &str, qtype: TYPE) -> Vec<u8> {
        let mut p = Packet::new_query(0x1234);
        p.set_flags(PacketFlag::RECURSION_DESIRED);
        p.questions.push(Question::new(
            Name::new_unchecked(name),
            QTYPE::TYPE(qtype),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        p.build_bytes_vec().unwrap()
    }

    /// (rcode, answers as text) of the reply to `name`/`qtype` from `client` via `local`.
    fn ask(client: &str, local: &str, name: &str, qtype: TYPE) -> (RCODE, Vec<String>) {
        let t = sample();
        let q = query(name, qtype);
        let Reply::Local(bytes) = respond(&t, &q, ip(client), ip(local), true) else {
            panic!("{name}: not answered locally");
        };
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!(p.id(), 0x1234);
        assert!(p.has_flags(PacketFlag::RESPONSE));
        let answers = p
            .answers
            .iter()
            .map(|a| match &a.rdata {
                RData::A(x) => std::net::Ipv4Addr::from(x.address).to_string(),
                RData::AAAA(x) => std::net::Ipv6Addr::from(x.address).to_string(),
                RData::PTR(x) => x.0.to_string(),
                other => format!("{other:?}"),
            })
            .collect();
        (p.rcode(), answers)
    }

    #[test]
    fn a_aaaa_nodata_and_nxdomain() {
        let solo = ("10.1.0.4", "10.1.0.1");
        assert_eq!(
            ask(solo.0, solo.1, "WWW", TYPE::A),
            (RCODE::NoError, vec!["10.1.0.2".into()])
        );
        assert_eq!(
            ask(solo.0, solo.1, "www", TYPE::AAAA),
            (RCODE::NoError, vec!["fd01::2".into()])
        );
        assert_eq!(
            ask(solo.0, solo.1, "web.dns.nsnet", TYPE::A),
            (RCODE::NoError, vec!["10.1.0.2".into()])
        );
        // solo has no IPv6 address: NODATA, not NXDOMAIN, not forwarded.
        assert_eq!(
            ask(solo.0, solo.1, "solo", TYPE::AAAA),
            (RCODE::NoError, vec![])
        );
        assert_eq!(
            ask(solo.0, solo.1, "solo", TYPE::MX),
            (RCODE::NoError, vec![])
        );
        // Under the search domain and unknown: NXDOMAIN, never forwarded.
        assert_eq!(
            ask(solo.0, solo.1, "db.dns.nsnet", TYPE::A),
            (RCODE::NameError, vec![])
        );
    }

    #[test]
    fn ptr_answers_in_scope() {
        let (code, ans) = ask("10.1.0.4", "10.1.0.1", "2.0.1.10.in-addr.arpa", TYPE::PTR);
        assert_eq!(
            (code, ans),
            (RCODE::NoError, vec!["web.dns.nsnet".to_string()])
        );
        let v6 = "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.d.f.ip6.arpa";
        assert_eq!(reverse_ip(v6), Some(ip("fd01::2")));
        let (code, ans) = ask("10.1.0.4", "10.1.0.1", v6, TYPE::PTR);
        assert_eq!(
            (code, ans),
            (RCODE::NoError, vec!["web.dns.nsnet".to_string()])
        );
        assert_eq!(reverse_ip("1.2.3.in-addr.arpa"), None);
    }

    #[test]
    fn other_names_are_forwarded_except_from_internal_networks() {
        let t = sample();
        let q = query("example.org", TYPE::A);
        assert_eq!(
            respond(&t, &q, ip("10.1.0.4"), ip("10.1.0.1"), true),
            Reply::Forward
        );
        let Reply::Local(b) = respond(&t, &q, ip("10.2.0.3"), ip("10.2.0.1"), true) else {
            panic!("internal: answered locally");
        };
        assert_eq!(Packet::parse(&b).unwrap().rcode(), RCODE::NameError);
        // A query arriving on an address that is no gateway of ours.
        let Reply::Local(b) = respond(&t, &q, ip("192.0.2.9"), ip("192.0.2.1"), true) else {
            panic!("refused locally");
        };
        assert_eq!(Packet::parse(&b).unwrap().rcode(), RCODE::Refused);
    }

    #[test]
    fn oversized_udp_answers_are_truncated() {
        let names: Vec<String> = vec!["big".into()];
        let addrs: Vec<IpAddr> = (0..60u8).map(|i| IpAddr::from([10, 1, 1, i])).collect();
        let t = Table::new(
            vec![crate::Network {
                name: "n".into(),
                gateways: vec![ip("10.1.0.1")],
                internal: false,
            }],
            vec![crate::Entry {
                network: "n".into(),
                netns: "big".into(),
                names,
                addrs,
            }],
        );
        let q = query("big", TYPE::A);
        let Reply::Local(udp) = respond(&t, &q, ip("10.1.1.1"), ip("10.1.0.1"), true) else {
            panic!()
        };
        let p = Packet::parse(&udp).unwrap();
        assert!(p.has_flags(PacketFlag::TRUNCATION) && p.answers.is_empty());
        assert!(udp.len() <= UDP_PLAIN);
        let Reply::Local(tcp) = respond(&t, &q, ip("10.1.1.1"), ip("10.1.0.1"), false) else {
            panic!()
        };
        assert_eq!(Packet::parse(&tcp).unwrap().answers.len(), 60);
    }

    #[test]
    fn servfail_echoes_id_and_question() {
        let q = query("example.org", TYPE::A);
        let bytes = servfail(&q).unwrap();
        let p = Packet::parse(&bytes).unwrap();
        assert_eq!((p.id(), p.rcode()), (0x1234, RCODE::ServerFailure));
        assert_eq!(p.questions[0].qname.to_string(), "example.org");
    }

    #[test]
    fn garbage_gets_formerr_or_nothing() {
        let t = sample();
        let mut bad = query("web", TYPE::A);
        bad.truncate(14);
        let Reply::Local(b) = respond(&t, &bad, ip("10.1.0.4"), ip("10.1.0.1"), true) else {
            panic!()
        };
        assert_eq!(&b[..2], &[0x12, 0x34]);
        assert_eq!(b[3] & 0x0f, RCODE::FormatError as u8);
        assert_eq!(
            respond(&t, &bad[..5], ip("10.1.0.4"), ip("10.1.0.1"), true),
            Reply::Drop
        );
    }
}
