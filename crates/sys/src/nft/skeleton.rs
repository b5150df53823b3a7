//! The skeleton of `nsnet_core::firewall::skeleton()` as nf_tables messages: both tables, their
//! sets, chains and rules in ONE transaction over netlink, without spawning `nft` (which costs
//! a process start, libnftables' start and a full ruleset cache dump: most of a cold
//! `network create`).
//!
//! The expressions are the ones nft 1.0.6 compiles the skeleton's text to (`nft --debug=netlink
//! -f`), register for register, and each set carries the same user data nft attaches (its
//! notes on key and data byte order, which `nft list` reads to print elements). The root test
//! `netlink_skeleton_lists_like_nft` checks that the tables listed after installing this equal
//! those `nft -f` makes of the text: change both together.

use netlink_packet_core::{NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST};
use nsnet_core::firewall::{
    CT_MARK, CT_MARK_FROM_BRIDGE, FAMILY_BRIDGE, FAMILY_INET, MAP_ANY4, MAP_ANY6, MAP_IP4, MAP_IP6,
    SET_BRIDGES, SET_DNS, SET_INTERNAL, SET_MASQ, SET_NOICC, SET_ROUTED, SET_SAME_BRIDGE, TABLE,
};

use super::msg::{self, Writer};

const NFT_MSG_NEWTABLE: u8 = 0;
const NFT_MSG_DELTABLE: u8 = 2;
const NFT_MSG_NEWCHAIN: u8 = 3;
const NFT_MSG_NEWRULE: u8 = 6;
const NFT_MSG_NEWSET: u8 = 9;
const NFT_MSG_NEWSETELEM: u8 = 12;

/// An attribute tree; numbers go big-endian (netlink attributes of nf_tables are).
enum A {
    U32(u16, u32),
    Bytes(u16, Vec<u8>),
    Str(u16, String),
    Nest(u16, Vec<A>),
}

fn put(w: &mut Writer, a: &A) {
    match a {
        A::U32(k, v) => {
            w.attr(*k, &v.to_be_bytes());
        }
        A::Bytes(k, b) => {
            w.attr(*k, b);
        }
        A::Str(k, s) => {
            w.str_attr(*k, s);
        }
        A::Nest(k, inner) => {
            let n = w.begin_nest(*k);
            inner.iter().for_each(|a| put(w, a));
            w.end_nest(n);
        }
    }
}

/// One message of the transaction, and what it makes (for errors).
pub(crate) struct Msg {
    cmd: u8,
    flags: u16,
    family: u8,
    attrs: Vec<A>,
    pub(crate) what: String,
}

fn s(k: u16, v: &str) -> A {
    A::Str(k, v.to_owned())
}

// --- expressions (NFTA_EXPR_NAME / NFTA_EXPR_DATA), attribute numbers of nf_tables.h ---

/// Registers: NFT_REG_VERDICT, NFT_REG_1 (16 bytes) and the 4-byte NFT_REG32_xx (8 + xx).
const VERDICT: u32 = 0;
const R1: u32 = 1;
const R2: u32 = 2;
const R32_01: u32 = 9;
const R32_02: u32 = 10;
const R32_05: u32 = 13;

fn expr(name: &str, data: Vec<A>) -> A {
    A::Nest(1, vec![s(1, name), A::Nest(2, data)])
}

/// NFT_META_*: the keys the skeleton reads.
const META_IIFNAME: u32 = 6;
const META_OIFNAME: u32 = 7;
const META_NFPROTO: u32 = 15;
const META_L4PROTO: u32 = 16;

fn meta(key: u32, dreg: u32) -> A {
    expr("meta", vec![A::U32(2, key), A::U32(1, dreg)])
}

const CMP_EQ: u32 = 0;
const CMP_NEQ: u32 = 1;

fn cmp(op: u32, value: &[u8]) -> A {
    expr(
        "cmp",
        vec![
            A::U32(1, R1),
            A::U32(2, op),
            A::Nest(3, vec![A::Bytes(1, value.to_vec())]),
        ],
    )
}

/// NFT_PAYLOAD_*_HEADER.
const LINK: u32 = 0;
const NETWORK: u32 = 1;
const TRANSPORT: u32 = 2;

fn payload(base: u32, offset: u32, len: u32, dreg: u32) -> A {
    expr(
        "payload",
        vec![
            A::U32(1, dreg),
            A::U32(2, base),
            A::U32(3, offset),
            A::U32(4, len),
        ],
    )
}

/// Sets by name (and id, for sets made in the same transaction).
struct SetRef {
    name: &'static str,
    id: u32,
}

fn lookup(set: &SetRef, dreg: Option<u32>, invert: bool) -> A {
    let mut d = vec![A::U32(2, R1)];
    d.extend(dreg.map(|r| A::U32(3, r)));
    d.push(s(1, set.name));
    d.push(A::U32(4, set.id));
    if invert {
        d.push(A::U32(5, 1)); // NFT_LOOKUP_F_INV
    }
    expr("lookup", d)
}

/// NFT_CT_*.
const CT_STATE: u32 = 0;
const CT_STATUS: u32 = 2;
const CT_MARK_KEY: u32 = 3;

fn ct_load(key: u32) -> A {
    expr("ct", vec![A::U32(2, key), A::U32(1, R1)])
}

/// `reg1 = (reg1 & mask) ^ xor` on 4 host-order bytes (ct fields are host order).
fn bitwise(mask: u32, xor: u32) -> A {
    expr(
        "bitwise",
        vec![
            A::U32(1, R1),
            A::U32(2, R1),
            A::U32(6, 0), // NFT_BITWISE_BOOL
            A::U32(3, 4),
            A::Nest(4, vec![A::Bytes(1, mask.to_ne_bytes().to_vec())]),
            A::Nest(5, vec![A::Bytes(1, xor.to_ne_bytes().to_vec())]),
        ],
    )
}

/// `ct mark set ct mark | bit`.
fn ct_mark_or(bit: u32) -> Vec<A> {
    vec![
        ct_load(CT_MARK_KEY),
        bitwise(!bit, bit),
        expr("ct", vec![A::U32(2, CT_MARK_KEY), A::U32(4, R1)]),
    ]
}

/// `ct <key> & bits != 0` (ct state / ct status flags).
fn ct_any(key: u32, bits: u32) -> Vec<A> {
    vec![
        ct_load(key),
        bitwise(bits, 0),
        cmp(CMP_NEQ, &0u32.to_ne_bytes()),
    ]
}

/// Verdict codes (NF_DROP, NF_ACCEPT, NFT_JUMP).
const DROP: i32 = 0;
const ACCEPT: i32 = 1;
const JUMP: i32 = -3;

fn verdict(code: i32, chain: Option<&str>) -> A {
    let mut v = vec![A::U32(1, code as u32)];
    v.extend(chain.map(|c| s(2, c)));
    expr(
        "immediate",
        vec![A::U32(1, VERDICT), A::Nest(2, vec![A::Nest(2, v)])],
    )
}

/// `fib daddr type local`.
fn daddr_is_local() -> Vec<A> {
    vec![
        // NFTA_FIB_F_DADDR, NFT_FIB_RESULT_ADDRTYPE, into reg 1.
        expr("fib", vec![A::U32(3, 2), A::U32(2, 3), A::U32(1, R1)]),
        cmp(CMP_EQ, &2u32.to_ne_bytes()), // RTN_LOCAL
    ]
}

/// `fib daddr . iif type local`: a local address of the interface the packet came in on.
fn daddr_is_local_on_iif() -> Vec<A> {
    vec![
        // NFTA_FIB_F_DADDR | NFTA_FIB_F_IIF, NFT_FIB_RESULT_ADDRTYPE, into reg 1.
        expr("fib", vec![A::U32(3, 2 | 8), A::U32(2, 3), A::U32(1, R1)]),
        cmp(CMP_EQ, &2u32.to_ne_bytes()), // RTN_LOCAL
    ]
}

/// `dnat <family> to` the address in reg 1 and the port in `proto_reg` (NFT_NAT_DNAT).
fn dnat(family: u32, proto_reg: u32) -> A {
    expr(
        "nat",
        vec![
            A::U32(1, 1),
            A::U32(2, family),
            A::U32(3, R1),
            A::U32(5, proto_reg),
        ],
    )
}

fn masq() -> A {
    expr("masq", vec![])
}

const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;

/// `meta nfproto <p>` (what `ip ...` / `ip6 ...` match on in an inet table).
fn nfproto(p: u8) -> Vec<A> {
    vec![meta(META_NFPROTO, R1), cmp(CMP_EQ, &[p])]
}

/// `<iifname|oifname> @set`, optionally negated.
fn ifname_in(key: u32, set: &SetRef, invert: bool) -> Vec<A> {
    vec![meta(key, R1), lookup(set, None, invert)]
}

/// `iifname . oifname != @same_bridge`.
fn crosses_bridges() -> Vec<A> {
    vec![
        meta(META_IIFNAME, R1),
        meta(META_OIFNAME, R2),
        lookup(&SAME_BRIDGE, None, true),
    ]
}

// --- the objects ---

const BRIDGES: SetRef = SetRef {
    name: SET_BRIDGES,
    id: 1,
};
const SAME_BRIDGE: SetRef = SetRef {
    name: SET_SAME_BRIDGE,
    id: 2,
};
const MASQ: SetRef = SetRef {
    name: SET_MASQ,
    id: 3,
};
const INTERNAL: SetRef = SetRef {
    name: SET_INTERNAL,
    id: 4,
};
const ROUTED: SetRef = SetRef {
    name: SET_ROUTED,
    id: 5,
};
const ANY4: SetRef = SetRef {
    name: MAP_ANY4,
    id: 6,
};
const IP4: SetRef = SetRef {
    name: MAP_IP4,
    id: 7,
};
const ANY6: SetRef = SetRef {
    name: MAP_ANY6,
    id: 8,
};
const IP6: SetRef = SetRef {
    name: MAP_IP6,
    id: 9,
};
const NOICC: SetRef = SetRef {
    name: SET_NOICC,
    id: 10,
};
const DNS: SetRef = SetRef {
    name: SET_DNS,
    id: 12,
};
/// The anonymous `{ tcp, udp }` of the inet table's input chain.
const TCP_UDP: SetRef = SetRef {
    name: "__set%d",
    id: 13,
};
/// The anonymous `{ ip, ip6 }` of the bridge table (the kernel names it `__set0`).
const ETHER_TYPES: SetRef = SetRef {
    name: "__set%d",
    id: 11,
};

/// nft's set user data (NFTNL_UDATA_SET_*): the key's byte order (host order for ifnames)...
const UDATA_IFNAME: &str = "000401000000";
/// ...and for `ifname . ifname` and the DNAT maps, the byte order of key and data and the
/// types of their fields, so `nft list` prints `"br0" . "br1"` and `10.0.0.2 . 80`.
const UDATA_IFNAME_PAIR: &str = "000400000000030800040d0000000100";
const UDATA_DNAT_MAP: &str =
    "000400000000010400000000030800040d0000000100040800040d0000000100060400000000";
/// ...and for the anonymous `{ tcp, udp }`, host-order keys typed as `meta l4proto`...
const UDATA_L4PROTOS: &str = "000401000000030e0004090000000106000410000000";
/// ...and for the anonymous `{ ip, ip6 }`, big-endian keys of the ethertype expression.
const UDATA_ETHER_TYPES: &str = "0004020000000314000407000000010c000411000000010403000000";

fn unhex(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).expect("hex constant"))
        .collect()
}

struct SetDef {
    set: SetRef,
    flags: u32,
    key_type: u32,
    key_len: u32,
    /// Map data type and length.
    data: Option<(u32, u32)>,
    udata: Vec<u8>,
}

/// nft's datatype numbers: ifname 41, ipv4_addr 7, ipv6_addr 8, inet_proto 12,
/// inet_service 13; a concatenation's type is its fields' types, 6 bits each.
const T_IFNAME: u32 = 41;
const T_IFNAME_PAIR: u32 = (T_IFNAME << 6) | T_IFNAME;
const T_PROTO_PORT: u32 = (12 << 6) | 13;
const T_IP4_PROTO_PORT: u32 = (7 << 12) | T_PROTO_PORT;
const T_IP6_PROTO_PORT: u32 = (8 << 12) | T_PROTO_PORT;
const T_IP4_PORT: u32 = (7 << 6) | 13;
const T_IP6_PORT: u32 = (8 << 6) | 13;
const T_ETHERTYPE: u32 = 10;
const T_INET_PROTO: u32 = 12;
const NFT_SET_ANONYMOUS: u32 = 1;
const NFT_SET_CONSTANT: u32 = 2;
const NFT_SET_MAP: u32 = 8;
/// IFNAMSIZ, and the 4-byte slots concatenated fields take.
const IFNAME_LEN: u32 = 16;

fn ifname_set(set: SetRef) -> SetDef {
    SetDef {
        set,
        flags: 0,
        key_type: T_IFNAME,
        key_len: IFNAME_LEN,
        data: None,
        udata: unhex(UDATA_IFNAME),
    }
}

fn dnat_map(set: SetRef, key_type: u32, key_len: u32, data: (u32, u32)) -> SetDef {
    SetDef {
        set,
        flags: NFT_SET_MAP,
        key_type,
        key_len,
        data: Some(data),
        udata: unhex(UDATA_DNAT_MAP),
    }
}

fn new_set(family: u8, d: SetDef, size: Option<u32>) -> Msg {
    let mut attrs = vec![
        s(1, TABLE),
        s(2, d.set.name),
        A::U32(3, d.flags),
        A::U32(4, d.key_type),
        A::U32(5, d.key_len),
    ];
    if let Some((t, l)) = d.data {
        attrs.push(A::U32(6, t));
        attrs.push(A::U32(7, l));
    }
    attrs.push(A::U32(0xa, d.set.id));
    if let Some(n) = size {
        attrs.push(A::Nest(9, vec![A::U32(1, n)])); // NFTA_SET_DESC_SIZE
    }
    attrs.push(A::Bytes(0xd, d.udata));
    Msg {
        cmd: NFT_MSG_NEWSET,
        flags: NLM_F_CREATE,
        family,
        attrs,
        what: format!("set {}", d.set.name),
    }
}

fn new_table(family: u8) -> Msg {
    Msg {
        cmd: NFT_MSG_NEWTABLE,
        flags: 0,
        family,
        attrs: vec![s(1, TABLE), A::U32(2, 0)],
        what: format!("table {} {TABLE}", super::family_name(family)),
    }
}

fn del_table(family: u8) -> Msg {
    Msg {
        cmd: NFT_MSG_DELTABLE,
        flags: 0,
        family,
        attrs: vec![s(1, TABLE)],
        what: format!("delete table {} {TABLE}", super::family_name(family)),
    }
}

/// NF_INET_* hooks.
const PREROUTING: u32 = 0;
const FORWARD: u32 = 2;
const OUTPUT: u32 = 3;
const POSTROUTING: u32 = 4;
const INPUT: u32 = 1;

fn base_chain(family: u8, name: &str, kind: &str, hook: u32, prio: i32) -> Msg {
    Msg {
        cmd: NFT_MSG_NEWCHAIN,
        flags: NLM_F_CREATE,
        family,
        attrs: vec![
            s(1, TABLE),
            s(3, name),
            s(7, kind),
            A::U32(5, ACCEPT as u32), // policy
            A::Nest(4, vec![A::U32(1, hook), A::U32(2, prio as u32)]),
        ],
        what: format!("chain {name}"),
    }
}

fn rule(family: u8, chain: &str, exprs: Vec<A>) -> Msg {
    Msg {
        cmd: NFT_MSG_NEWRULE,
        flags: NLM_F_CREATE | NLM_F_APPEND,
        family,
        attrs: vec![s(1, TABLE), s(2, chain), A::Nest(4, exprs)],
        what: format!("a rule of chain {chain}"),
    }
}

fn cat(parts: Vec<Vec<A>>) -> Vec<A> {
    parts.into_iter().flatten().collect()
}

/// The messages that remove both tables; missing ones are fine: each is declared (a no-op
/// when it exists) before it is deleted, as `table inet nsnet {}; delete table inet nsnet`.
pub(crate) fn remove_msgs() -> Vec<Msg> {
    [FAMILY_INET, FAMILY_BRIDGE]
        .into_iter()
        .flat_map(|f| [new_table(f), del_table(f)])
        .collect()
}

/// The whole skeleton, after the messages of `remove_msgs` when `replace`.
pub(crate) fn install_msgs(replace: bool) -> Vec<Msg> {
    let (i, b) = (FAMILY_INET, FAMILY_BRIDGE);
    let mut m = if replace { remove_msgs() } else { Vec::new() };
    m.push(new_table(i));
    m.push(base_chain(i, "prerouting", "nat", PREROUTING, -100));
    m.push(base_chain(i, "output", "nat", OUTPUT, -100));
    m.push(Msg {
        cmd: NFT_MSG_NEWCHAIN,
        flags: NLM_F_CREATE,
        family: i,
        attrs: vec![s(1, TABLE), s(3, "publish")],
        what: "chain publish".into(),
    });
    m.push(base_chain(i, "postrouting", "nat", POSTROUTING, 100));
    m.push(base_chain(i, "forward", "filter", FORWARD, -10));
    m.push(base_chain(i, "input", "filter", INPUT, -10));
    m.push(new_set(i, ifname_set(BRIDGES), None));
    m.push(new_set(
        i,
        SetDef {
            set: SAME_BRIDGE,
            flags: 0,
            key_type: T_IFNAME_PAIR,
            key_len: 2 * IFNAME_LEN,
            data: None,
            udata: unhex(UDATA_IFNAME_PAIR),
        },
        None,
    ));
    for set in [MASQ, INTERNAL, ROUTED, DNS] {
        m.push(new_set(i, ifname_set(set), None));
    }
    // Keys and data of concatenations take 4-byte slots: proto 4, port 4, IPv4 4, IPv6 16.
    m.push(new_set(
        i,
        dnat_map(ANY4, T_PROTO_PORT, 8, (T_IP4_PORT, 8)),
        None,
    ));
    m.push(new_set(
        i,
        dnat_map(IP4, T_IP4_PROTO_PORT, 12, (T_IP4_PORT, 8)),
        None,
    ));
    m.push(new_set(
        i,
        dnat_map(ANY6, T_PROTO_PORT, 8, (T_IP6_PORT, 20)),
        None,
    ));
    m.push(new_set(
        i,
        dnat_map(IP6, T_IP6_PROTO_PORT, 24, (T_IP6_PORT, 20)),
        None,
    ));

    let dport = |dreg| payload(TRANSPORT, 2, 2, dreg);
    let rules: Vec<(&str, Vec<A>)> = vec![
        (
            "prerouting",
            cat(vec![daddr_is_local(), vec![verdict(JUMP, Some("publish"))]]),
        ),
        (
            "output",
            cat(vec![daddr_is_local(), vec![verdict(JUMP, Some("publish"))]]),
        ),
        // iifname @bridges ct mark set ct mark | CT_MARK_FROM_BRIDGE
        (
            "publish",
            cat(vec![
                ifname_in(META_IIFNAME, &BRIDGES, false),
                ct_mark_or(CT_MARK_FROM_BRIDGE),
            ]),
        ),
        // dnat ip to ip daddr . meta l4proto . th dport map @pf_ip4
        (
            "publish",
            cat(vec![
                nfproto(NFPROTO_IPV4),
                vec![
                    payload(NETWORK, 16, 4, R1),
                    meta(META_L4PROTO, R32_01),
                    dport(R32_02),
                    lookup(&IP4, Some(R1), false),
                    dnat(u32::from(NFPROTO_IPV4), R32_01),
                ],
            ]),
        ),
        // dnat ip to meta l4proto . th dport map @pf_any4
        (
            "publish",
            vec![
                meta(META_L4PROTO, R1),
                dport(R32_01),
                lookup(&ANY4, Some(R1), false),
                dnat(u32::from(NFPROTO_IPV4), R32_01),
            ],
        ),
        // dnat ip6 to ip6 daddr . meta l4proto . th dport map @pf_ip6
        (
            "publish",
            cat(vec![
                nfproto(NFPROTO_IPV6),
                vec![
                    payload(NETWORK, 24, 16, R1),
                    meta(META_L4PROTO, R2),
                    dport(R32_05),
                    lookup(&IP6, Some(R1), false),
                    dnat(u32::from(NFPROTO_IPV6), R2),
                ],
            ]),
        ),
        // dnat ip6 to meta l4proto . th dport map @pf_any6
        (
            "publish",
            vec![
                meta(META_L4PROTO, R1),
                dport(R32_01),
                lookup(&ANY6, Some(R1), false),
                dnat(u32::from(NFPROTO_IPV6), R2),
            ],
        ),
        // ct status dnat ct mark & FROM_BRIDGE == FROM_BRIDGE masquerade
        (
            "postrouting",
            cat(vec![
                ct_any(CT_STATUS, IPS_DST_NAT),
                vec![
                    ct_load(CT_MARK_KEY),
                    bitwise(CT_MARK_FROM_BRIDGE, 0),
                    cmp(CMP_EQ, &CT_MARK_FROM_BRIDGE.to_ne_bytes()),
                    masq(),
                ],
            ]),
        ),
        // ip saddr 127.0.0.0/8 oifname @bridges masquerade
        (
            "postrouting",
            cat(vec![
                nfproto(NFPROTO_IPV4),
                vec![payload(NETWORK, 12, 1, R1), cmp(CMP_EQ, &[127])],
                ifname_in(META_OIFNAME, &BRIDGES, false),
                vec![masq()],
            ]),
        ),
        // iifname @masq_bridges oifname != @bridges masquerade
        (
            "postrouting",
            cat(vec![
                ifname_in(META_IIFNAME, &MASQ, false),
                ifname_in(META_OIFNAME, &BRIDGES, true),
                vec![masq()],
            ]),
        ),
        // ct state established,related accept
        (
            "forward",
            cat(vec![
                ct_any(CT_STATE, CT_ESTABLISHED | CT_RELATED),
                vec![verdict(ACCEPT, None)],
            ]),
        ),
        // iifname @internal_bridges iifname . oifname != @same_bridge drop
        (
            "forward",
            cat(vec![
                ifname_in(META_IIFNAME, &INTERNAL, false),
                crosses_bridges(),
                vec![verdict(DROP, None)],
            ]),
        ),
        // oifname @internal_bridges iifname . oifname != @same_bridge drop
        (
            "forward",
            cat(vec![
                ifname_in(META_OIFNAME, &INTERNAL, false),
                crosses_bridges(),
                vec![verdict(DROP, None)],
            ]),
        ),
        // ct status dnat oifname @bridges ct mark set ct mark | CT_MARK accept
        (
            "forward",
            cat(vec![
                ct_any(CT_STATUS, IPS_DST_NAT),
                ifname_in(META_OIFNAME, &BRIDGES, false),
                ct_mark_or(CT_MARK),
                vec![verdict(ACCEPT, None)],
            ]),
        ),
        // iifname @bridges oifname @bridges iifname . oifname != @same_bridge drop
        (
            "forward",
            cat(vec![
                ifname_in(META_IIFNAME, &BRIDGES, false),
                ifname_in(META_OIFNAME, &BRIDGES, false),
                crosses_bridges(),
                vec![verdict(DROP, None)],
            ]),
        ),
        // iifname @bridges ct mark set ct mark | CT_MARK accept
        (
            "forward",
            cat(vec![
                ifname_in(META_IIFNAME, &BRIDGES, false),
                ct_mark_or(CT_MARK),
                vec![verdict(ACCEPT, None)],
            ]),
        ),
        // oifname @routed_bridges ct mark set ct mark | CT_MARK accept
        (
            "forward",
            cat(vec![
                ifname_in(META_OIFNAME, &ROUTED, false),
                ct_mark_or(CT_MARK),
                vec![verdict(ACCEPT, None)],
            ]),
        ),
        (
            "forward",
            cat(vec![
                ifname_in(META_IIFNAME, &BRIDGES, false),
                vec![verdict(ACCEPT, None)],
            ]),
        ),
        (
            "forward",
            cat(vec![
                ifname_in(META_OIFNAME, &ROUTED, false),
                vec![verdict(ACCEPT, None)],
            ]),
        ),
        (
            "forward",
            cat(vec![
                ifname_in(META_OIFNAME, &BRIDGES, false),
                vec![verdict(DROP, None)],
            ]),
        ),
    ];
    m.extend(rules.into_iter().map(|(c, e)| rule(i, c, e)));

    // iifname @dns_bridges meta l4proto { tcp, udp } th dport 53 fib daddr . iif type local
    //   ct mark set ct mark | CT_MARK accept
    // Its anonymous `{ tcp, udp }` just before the rule, where nft makes it (so the handles
    // of both ways of installing agree).
    m.push(new_set(
        i,
        SetDef {
            set: TCP_UDP,
            flags: NFT_SET_ANONYMOUS | NFT_SET_CONSTANT,
            key_type: T_INET_PROTO,
            key_len: 1,
            data: None,
            udata: unhex(UDATA_L4PROTOS),
        },
        Some(2),
    ));
    m.push(anon_elements(
        i,
        &TCP_UDP,
        &[&[libc::IPPROTO_TCP as u8], &[libc::IPPROTO_UDP as u8]],
        "the elements of set { tcp, udp }",
    ));
    m.push(rule(
        i,
        "input",
        cat(vec![
            ifname_in(META_IIFNAME, &DNS, false),
            vec![
                meta(META_L4PROTO, R1),
                lookup(&TCP_UDP, None, false),
                dport(R1),
                cmp(CMP_EQ, &53u16.to_be_bytes()),
            ],
            daddr_is_local_on_iif(),
            ct_mark_or(CT_MARK),
            vec![verdict(ACCEPT, None)],
        ]),
    ));

    // table bridge nsnet: iifname @noicc_ports oifname @noicc_ports ether type { ip, ip6 } drop
    m.push(new_table(b));
    m.push(base_chain(b, "forward", "filter", FORWARD, -10));
    m.push(new_set(b, ifname_set(NOICC), None));
    let udata = unhex(UDATA_ETHER_TYPES);
    m.push(new_set(
        b,
        SetDef {
            set: ETHER_TYPES,
            flags: NFT_SET_ANONYMOUS | NFT_SET_CONSTANT,
            key_type: T_ETHERTYPE,
            key_len: 2,
            data: None,
            udata,
        },
        Some(2),
    ));
    m.push(anon_elements(
        b,
        &ETHER_TYPES,
        &[&0x0800u16.to_be_bytes(), &0x86ddu16.to_be_bytes()],
        "the elements of set { ip, ip6 }",
    ));
    m.push(rule(
        b,
        "forward",
        cat(vec![
            ifname_in(META_IIFNAME, &NOICC, false),
            ifname_in(META_OIFNAME, &NOICC, false),
            vec![
                payload(LINK, 12, 2, R1),
                lookup(&ETHER_TYPES, None, false),
                verdict(DROP, None),
            ],
        ]),
    ));
    m
}

/// The elements of an anonymous set made in the same transaction (found by its id).
fn anon_elements(family: u8, set: &SetRef, keys: &[&[u8]], what: &str) -> Msg {
    let elem = |k: &[u8]| A::Nest(1, vec![A::Nest(1, vec![A::Bytes(1, k.to_vec())])]);
    Msg {
        cmd: NFT_MSG_NEWSETELEM,
        flags: NLM_F_CREATE,
        family,
        attrs: vec![
            s(1, TABLE),
            s(2, set.name),
            A::U32(4, set.id), // NFTA_SET_ELEM_LIST_SET_ID
            A::Nest(3, keys.iter().map(|k| elem(k)).collect()),
        ],
        what: what.into(),
    }
}

/// IPS_DST_NAT, and conntrack's established and related state bits.
const IPS_DST_NAT: u32 = 1 << 5;
const CT_ESTABLISHED: u32 = 1 << 1;
const CT_RELATED: u32 = 1 << 2;

/// Encodes `msgs` as one transaction (BATCH_BEGIN ... BATCH_END); every message asks for an
/// acknowledgement, so a failure names the object.
pub(crate) fn encode(msgs: &[Msg]) -> Vec<u8> {
    let mut w = Writer::default();
    let batch = |w: &mut Writer, kind| {
        let m = w.begin_msg(
            kind,
            NLM_F_REQUEST,
            libc::AF_UNSPEC as u8,
            u16::from(msg::NFNL_SUBSYS_NFTABLES),
        );
        w.end_msg(m);
    };
    batch(&mut w, msg::NFNL_MSG_BATCH_BEGIN);
    for m in msgs {
        let start = w.begin_msg(
            msg::msg_type(m.cmd),
            NLM_F_REQUEST | NLM_F_ACK | m.flags,
            m.family,
            0,
        );
        m.attrs.iter().for_each(|a| put(&mut w, a));
        w.end_msg(start);
    }
    batch(&mut w, msg::NFNL_MSG_BATCH_END);
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_transaction_of_every_object() {
        let msgs = install_msgs(true);
        let count = |cmd| msgs.iter().filter(|m| m.cmd == cmd).count();
        assert_eq!(
            count(NFT_MSG_NEWTABLE),
            4,
            "two declared to delete, two made"
        );
        assert_eq!(count(NFT_MSG_DELTABLE), 2);
        assert_eq!(install_msgs(false).len(), msgs.len() - 4);
        assert_eq!(count(NFT_MSG_NEWCHAIN), nsnet_core::firewall::CHAINS.len());
        assert_eq!(count(NFT_MSG_NEWSET), 13);
        assert_eq!(count(NFT_MSG_NEWRULE), 22);
        let bytes = encode(&msgs);
        // BATCH_BEGIN, the messages, BATCH_END, all well framed.
        assert_eq!(crate::nl::wire::messages(&bytes).count(), msgs.len() + 2);
    }

    #[test]
    fn set_ids_are_unique_and_named_sets_precede_rules() {
        let msgs = install_msgs(false);
        let ids: Vec<u32> = msgs
            .iter()
            .filter(|m| m.cmd == NFT_MSG_NEWSET)
            .filter_map(|m| {
                m.attrs.iter().find_map(|a| match a {
                    A::U32(0xa, id) => Some(*id),
                    _ => None,
                })
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), ids.len(), "{ids:?}");
        let first_rule = msgs.iter().position(|m| m.cmd == NFT_MSG_NEWRULE).unwrap();
        // Named sets first; an anonymous one comes just before its rule, as nft makes it.
        let named = |m: &Msg| {
            m.attrs
                .iter()
                .any(|a| matches!(a, A::Str(2, n) if !n.starts_with("__set")))
        };
        let last_inet_set = msgs
            .iter()
            .rposition(|m| m.cmd == NFT_MSG_NEWSET && m.family == FAMILY_INET && named(m))
            .unwrap();
        assert!(last_inet_set < first_rule);
    }

    #[test]
    fn mark_bits_are_or_ed_in_host_order() {
        // reg = (reg & !bit) ^ bit sets `bit` and keeps the others.
        let bit = CT_MARK;
        let (mask, xor) = (!bit, bit);
        for mark in [0u32, 0x0000_00ff, CT_MARK_FROM_BRIDGE, u32::MAX] {
            assert_eq!((mark & mask) ^ xor, mark | bit);
        }
    }
}
