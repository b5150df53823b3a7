//! The live kernel's translation, op -> netlink messages, checked without root: the recording
//! transport stands in for the kernel and answers like it (links from a small table the ops
//! fill), and every datagram it receives is one round trip.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;
use netlink_packet_core::{Emitable, NLM_F_CREATE, Parseable};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{
    InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkInfo as NlLinkInfo, LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use nsnet_core::endpoint::{ConnectFacts, RoutePolicy, plan_connect};
use nsnet_core::model::NetworkSpec;
use nsnet_core::names::{IfName, NetName};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::port::{PortMapping, Proto};

use super::LiveKernel;
use crate::kernel::{FailKind, Firewall, Kernel, Net};
use crate::nl::record::{Datagram, Message, Reaction, Recorder};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;

/// The links the fake kernel knows, by (namespace, name); a veth's peer is known by name in
/// every namespace (its namespace is an fd in the request).
#[derive(Default)]
struct Links {
    by_name: HashMap<(String, String), u32>,
    next: u32,
}

impl Links {
    fn find(&self, ns: &str, name: &str) -> Option<u32> {
        self.by_name
            .get(&(ns.to_owned(), name.to_owned()))
            .or_else(|| self.by_name.get(&("*".to_owned(), name.to_owned())))
            .copied()
    }

    fn add(&mut self, ns: &str, name: &str) -> u32 {
        self.next += 1;
        self.by_name
            .insert((ns.to_owned(), name.to_owned()), self.next);
        self.next
    }
}

fn ifname(msg: &LinkMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

fn link_reply(index: u32, name: &str) -> Vec<u8> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf);
    buf
}

/// What a kernel with the bridge `nsbr-lan` (index 3) and each namespace's `lo` answers;
/// `refuse` may fail any message with an errno first.
fn fake_kernel(
    refuse: impl Fn(&Datagram, &Message) -> Option<i32> + Send + 'static,
) -> (LiveKernel, Recorder, Arc<Mutex<Links>>) {
    let links = Arc::new(Mutex::new(Links {
        next: 10,
        ..Links::default()
    }));
    {
        let mut l = links.lock().unwrap();
        l.by_name.insert(("host".into(), "nsbr-lan".into()), 3);
        l.by_name.insert(("*".into(), "lo".into()), 1);
    }
    let rec = Recorder::new();
    let state = links.clone();
    rec.respond(move |d, m| {
        if let Some(errno) = refuse(d, m) {
            return Reaction {
                errno,
                ..Reaction::default()
            };
        }
        if d.family != "rtnetlink" || !(RTM_NEWLINK..=RTM_SETLINK).contains(&m.kind) {
            return Reaction::default();
        }
        let msg = LinkMessage::parse(&m.payload[..]).unwrap();
        let name = ifname(&msg);
        let mut links = state.lock().unwrap();
        let known = name.as_deref().and_then(|n| links.find(&d.ns, n));
        let enodev = Reaction {
            errno: libc::ENODEV,
            ..Reaction::default()
        };
        match (m.kind, name) {
            (RTM_NEWLINK, Some(name)) if m.flags & NLM_F_CREATE != 0 => {
                if known.is_some() {
                    return Reaction {
                        errno: libc::EEXIST,
                        ..Reaction::default()
                    };
                }
                links.add(&d.ns, &name);
                if let Some(peer) = veth_peer(&msg) {
                    links.add("*", &peer);
                }
                Reaction::default()
            }
            (RTM_GETLINK, Some(name)) => match known {
                Some(index) => Reaction {
                    data: vec![(RTM_NEWLINK, link_reply(index, &name))],
                    errno: 0,
                },
                None => enodev,
            },
            (RTM_DELLINK, Some(name)) if known.is_some() => {
                links.by_name.remove(&(d.ns.clone(), name.clone()));
                Reaction::default()
            }
            (_, Some(_)) if known.is_none() => enodev,
            _ => Reaction::default(),
        }
    });
    (LiveKernel::recording(rec.clone()), rec, links)
}

fn veth_peer(msg: &LinkMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            NlLinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) => ifname(p),
            _ => None,
        }),
        _ => None,
    })
}

/// One line per datagram: `family ns: message; message; ...`.
fn describe(sent: &[Datagram]) -> Vec<String> {
    sent.iter()
        .map(|d| {
            let msgs: Vec<String> = d
                .messages
                .iter()
                .map(|m| match d.family {
                    "rtnetlink" => rtnetlink(m),
                    _ => nfnetlink(m),
                })
                .collect();
            format!("{} {}: {}", d.family, d.ns, msgs.join("; "))
        })
        .collect()
}

fn rtnetlink(m: &Message) -> String {
    match m.kind {
        RTM_NEWLINK..=RTM_SETLINK => {
            let msg = LinkMessage::parse(&m.payload[..]).unwrap();
            let verb = ["NEWLINK", "DELLINK", "GETLINK", "SETLINK"][usize::from(m.kind - 16)];
            let mut s = verb.to_string();
            if msg.header.index != 0 {
                s += &format!(" #{}", msg.header.index);
            }
            for attr in &msg.attributes {
                match attr {
                    LinkAttribute::IfName(n) => s += &format!(" {n}"),
                    LinkAttribute::Controller(i) => s += &format!(" master #{i}"),
                    LinkAttribute::IfAlias(a) => s += &format!(" alias {a}"),
                    LinkAttribute::AfSpecUnspec(_) => s += " addrgen-none",
                    LinkAttribute::ProtoInfoBridge(_) => s += " hairpin",
                    LinkAttribute::LinkInfo(_) => {
                        s += &format!(" veth peer {}", veth_peer(&msg).unwrap_or_default())
                    }
                    _ => {}
                }
            }
            if msg.header.flags.contains(LinkFlags::Up) {
                s += " up";
            }
            s
        }
        20 | 21 => {
            let msg = AddressMessage::parse(&m.payload[..]).unwrap();
            let ip = msg.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            let verb = if m.kind == 20 { "NEWADDR" } else { "DELADDR" };
            format!(
                "{verb} {}/{} #{}",
                ip.unwrap(),
                msg.header.prefix_len,
                msg.header.index
            )
        }
        24 | 25 => {
            let msg = RouteMessage::parse(&m.payload[..]).unwrap();
            let verb = if m.kind == 24 { "NEWROUTE" } else { "DELROUTE" };
            let mut s = format!("{verb} /{}", msg.header.destination_prefix_length);
            for attr in &msg.attributes {
                match attr {
                    RouteAttribute::Gateway(RouteAddress::Inet(ip)) => s += &format!(" via {ip}"),
                    RouteAttribute::Gateway(RouteAddress::Inet6(ip)) => s += &format!(" via {ip}"),
                    RouteAttribute::Oif(i) => s += &format!(" dev #{i}"),
                    _ => {}
                }
            }
            s
        }
        k => format!("type {k}"),
    }
}

/// nf_tables messages: the command and, for element messages, the family and set.
fn nfnetlink(m: &Message) -> String {
    let verb = match m.kind {
        0x10 => return "BEGIN".into(),
        0x11 => return "END".into(),
        0x0a0c => "NEWSETELEM",
        0x0a0e => "DELSETELEM",
        0x0a0d => "GETSETELEM",
        0x0a01 => return "GETTABLE".into(),
        0x0a0a => return "GETSET".into(),
        k => return format!("type {k:#x}"),
    };
    let family = nft_family(m.payload[0]);
    // The set's name: NFTA_SET_ELEM_LIST_SET (2) among the attributes after nfgenmsg.
    let mut attrs = &m.payload[4..];
    let mut set = String::new();
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        if u16::from_ne_bytes([attrs[2], attrs[3]]) == 2 {
            set = String::from_utf8_lossy(&attrs[4..len - 1]).into_owned();
        }
        attrs = &attrs[crate::nl::wire::align4(len).min(attrs.len())..];
    }
    format!("{verb} {family} {set}")
}

fn nft_family(f: u8) -> &'static str {
    match f {
        1 => "inet",
        7 => "bridge",
        _ => "other",
    }
}

fn lan(subnets: &[&str], icc: bool) -> NetworkSpec {
    NetworkSpec::builder(NetName::new("lan").unwrap())
        .subnets(subnets.iter().map(|s| s.parse().unwrap()))
        .icc(icc)
        .build()
        .unwrap()
}

/// The operations of `nsnet network connect lan red --publish 8080:80` as the engine plans
/// them: red's first endpoint, so it carries the default routes.
fn connect_ops(net: &NetworkSpec) -> Vec<KernelOp> {
    let addrs: Vec<IpNet> = net
        .subnets()
        .iter()
        .map(|s| IpNet::new(s.cidr.hosts().nth(1).unwrap(), s.cidr.prefix_len()).unwrap())
        .collect();
    let publish = [PortMapping {
        host_ip: None,
        host_port: 8080,
        container_port: 80,
        proto: Proto::Tcp,
    }];
    plan_connect(&ConnectFacts {
        net,
        ns: NsRef::Named("red".into()),
        in_ns: &[],
        ifname: IfName::new("eth0").unwrap(),
        addrs,
        mac: None,
        routes: &RoutePolicy::Primary,
        publish: &publish,
    })
    .ops
}

fn apply_all(kernel: &mut LiveKernel, ops: &[KernelOp]) {
    for op in ops {
        kernel.apply(op).unwrap_or_else(|e| panic!("{op}: {e}"));
    }
}

#[test]
fn connect_with_a_published_port_is_nine_round_trips() {
    let net = lan(&["10.1.0.0/24"], true);
    assert_eq!(net.bridge().as_str(), "nsbr-lan");
    let ops = connect_ops(&net);
    let (mut kernel, rec, _) = fake_kernel(|_, _| None);
    apply_all(&mut kernel, &ops);
    let host = nsnet_core::names::host_veth(net.name(), "red", &IfName::new("eth0").unwrap());
    let expected = [
        format!("rtnetlink host: GETLINK {host}; GETLINK nsbr-lan"),
        format!(
            "rtnetlink host: NEWLINK {host} master #3 veth peer eth0; SETLINK {host} alias nsnet; \
             GETLINK {host}"
        ),
        "rtnetlink red: GETLINK eth0; SETLINK eth0 addrgen-none; SETLINK eth0 up".to_string(),
        // The host end up after its peer: the bridge enables the port once (see create_veth).
        format!("rtnetlink host: SETLINK {host} addrgen-none; SETLINK {host} up; GETLINK {host}"),
        "rtnetlink host: SETLINK #11 hairpin".to_string(),
        "rtnetlink red: SETLINK lo up; GETLINK lo".to_string(),
        "rtnetlink red: NEWADDR 10.1.0.2/24 #12".to_string(),
        "rtnetlink red: NEWROUTE /0 via 10.1.0.1 dev #12".to_string(),
        "nfnetlink host: BEGIN; NEWSETELEM inet pf_any4; END".to_string(),
    ];
    assert_eq!(describe(&rec.sent()), expected);
    assert!(rec.sysctls().is_empty(), "{:?}", rec.sysctls());
}

#[test]
fn dual_stack_isolated_connect_is_one_firewall_transaction() {
    let net = lan(&["10.1.0.0/24", "fd00:1::/64"], false);
    let ops = connect_ops(&net);
    let (mut kernel, rec, _) = fake_kernel(|_, _| None);
    apply_all(&mut kernel, &ops);
    let sent = describe(&rec.sent());
    // Per address and per default route one more round trip; both tables in one transaction.
    assert_eq!(sent.len(), 11, "{sent:#?}");
    assert_eq!(
        sent.last().unwrap(),
        "nfnetlink host: BEGIN; NEWSETELEM inet pf_any4; NEWSETELEM inet pf_any6; \
         NEWSETELEM bridge noicc_ports; END"
    );
    // With IPv6 the peer keeps address generation; the sysctls went to the recorder only.
    assert_eq!(
        sent[2], "rtnetlink red: GETLINK eth0; SETLINK eth0 up",
        "{sent:#?}"
    );
    assert_eq!(
        rec.sysctls(),
        [
            "red: net/ipv6/conf/default/accept_dad=0",
            "red: net/ipv6/conf/default/accept_ra=0"
        ]
    );
}

#[test]
fn a_taken_host_name_is_refused_before_anything_is_created() {
    let net = lan(&["10.1.0.0/24"], true);
    let ops = connect_ops(&net);
    let (mut kernel, rec, links) = fake_kernel(|_, _| None);
    let KernelOp::CreateVeth { a, .. } = &ops[0] else {
        panic!("connect starts with its veth: {ops:?}");
    };
    links.lock().unwrap().add("host", &a.name);
    let err = kernel.apply(&ops[0]).unwrap_err();
    assert_eq!(err.kind, FailKind::Exists, "{err}");
    assert!(err.what.starts_with("create veth"), "{err}");
    // Only the lookup: no create, and no follow-up that would change the link holding the name.
    assert_eq!(rec.sent().len(), 1, "{:#?}", describe(&rec.sent()));
}

#[test]
fn a_peer_that_cannot_go_up_takes_the_new_veth_with_it() {
    let net = lan(&["10.1.0.0/24"], true);
    let ops = connect_ops(&net);
    let (mut kernel, rec, links) =
        fake_kernel(|d, m| (d.ns == "red" && m.kind == RTM_SETLINK).then_some(libc::EPERM));
    let err = kernel.apply(&ops[0]).unwrap_err();
    assert!(err.what.ends_with("set peer up"), "{err}");
    assert_eq!(err.kind, FailKind::Other);
    let sent = describe(&rec.sent());
    let host = match &ops[0] {
        KernelOp::CreateVeth { a, .. } => a.name.clone(),
        _ => unreachable!(),
    };
    assert_eq!(
        sent.last().unwrap(),
        &format!("rtnetlink host: DELLINK {host}")
    );
    assert_eq!(links.lock().unwrap().find("host", &host), None);
}

#[test]
fn a_host_end_that_cannot_go_up_takes_the_new_veth_with_it() {
    let net = lan(&["10.1.0.0/24"], true);
    let ops = connect_ops(&net);
    // The host end's SETLINKs are refused once its peer is up (the alias before it passes).
    let peer_up = Arc::new(Mutex::new(false));
    let seen = peer_up.clone();
    let (mut kernel, rec, links) = fake_kernel(move |d, m| {
        if m.kind != RTM_SETLINK {
            return None;
        }
        let mut seen = seen.lock().unwrap();
        if d.ns == "red" {
            *seen = true;
            return None;
        }
        seen.then_some(libc::EPERM)
    });
    let err = kernel.apply(&ops[0]).unwrap_err();
    assert!(err.what.ends_with("set up"), "{err}");
    assert!(*peer_up.lock().unwrap(), "the peer went up first");
    let sent = describe(&rec.sent());
    let host = match &ops[0] {
        KernelOp::CreateVeth { a, .. } => a.name.clone(),
        _ => unreachable!(),
    };
    assert_eq!(
        sent.last().unwrap(),
        &format!("rtnetlink host: DELLINK {host}")
    );
    assert_eq!(links.lock().unwrap().find("host", &host), None);
}

#[test]
fn a_stale_index_is_looked_up_again() {
    let net = lan(&["10.1.0.0/24"], true);
    let ops = connect_ops(&net);
    let stale = Arc::new(Mutex::new(false));
    let refuse_once = stale.clone();
    let (mut kernel, rec, links) = fake_kernel(move |_, m| {
        (m.kind == 20 && std::mem::take(&mut *refuse_once.lock().unwrap())).then_some(libc::ENODEV)
    });
    apply_all(&mut kernel, &ops[..1]);
    // eth0 was made again behind nsnet's back: the index nsnet learnt is gone.
    links.lock().unwrap().add("red", "eth0");
    *stale.lock().unwrap() = true;
    rec.clear();
    let add = ops
        .iter()
        .find(|op| matches!(op, KernelOp::AddAddr { .. }))
        .unwrap();
    kernel.apply(add).unwrap();
    assert_eq!(
        describe(&rec.sent()),
        [
            "rtnetlink red: NEWADDR 10.1.0.2/24 #12",
            "rtnetlink red: GETLINK eth0",
            "rtnetlink red: NEWADDR 10.1.0.2/24 #13",
        ]
    );
}

#[test]
fn teardown_of_elements_already_gone_removes_the_rest_one_by_one() {
    let net = lan(&["10.1.0.0/24"], false);
    let fw: Vec<_> = connect_ops(&net)
        .into_iter()
        .find_map(|op| match op {
            KernelOp::Firewall(changes) => Some(changes),
            _ => None,
        })
        .unwrap();
    let release = KernelOp::Firewall(fw.iter().map(|c| c.inverse()).collect());
    // The whole transaction fails on the (missing) inet element; alone, it still fails. The
    // kernel's answer names no attribute here, so what is missing is asked (table, then set).
    let (mut kernel, rec, _) = fake_kernel(|d, m| {
        (d.family == "nfnetlink" && m.kind == 0x0a0e && m.payload[0] == 1).then_some(libc::ENOENT)
    });
    kernel.apply(&release).unwrap();
    assert_eq!(
        describe(&rec.sent()),
        [
            "nfnetlink host: BEGIN; DELSETELEM inet pf_any4; DELSETELEM bridge noicc_ports; END",
            "nfnetlink host: GETTABLE",
            "nfnetlink host: GETSET",
            "nfnetlink host: BEGIN; DELSETELEM inet pf_any4; END",
            "nfnetlink host: GETTABLE",
            "nfnetlink host: GETSET",
            "nfnetlink host: BEGIN; DELSETELEM bridge noicc_ports; END",
        ]
    );
}

#[test]
fn recording_kernel_never_touches_the_machine() {
    let (mut kernel, rec, _) = fake_kernel(|_, _| None);
    for err in [
        kernel.create_netns("red").unwrap_err(),
        kernel.fw_ensure().unwrap_err(),
        kernel.fw_remove().unwrap_err(),
    ] {
        assert!(err.cause.contains("recording"), "{err}");
    }
    kernel
        .apply(&KernelOp::Sysctl {
            ns: NsRef::Host,
            key: "net.ipv4.ip_forward".into(),
            value: "1".into(),
        })
        .unwrap();
    assert_eq!(rec.sysctls(), ["host: net.ipv4.ip_forward=1"]);
    assert!(rec.sent().is_empty());
}
