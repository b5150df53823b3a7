//! The firewall as data: one nftables table `inet nsnet` whose chains and rules are a fixed
//! skeleton, plus one `bridge nsnet` table for inter-container traffic on one bridge (`icc`),
//! which the inet hooks do not see when br_netfilter is off. Everything per network and port
//! is an element of a set or map, so each change is O(1) and one atomic transaction.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::model::NetworkSpec;
use crate::port::{PortMapping, Proto};

/// Name of both nsnet tables.
pub const TABLE: &str = "nsnet";
/// nf_tables family numbers (NFPROTO_*).
pub const FAMILY_INET: u8 = 1;
pub const FAMILY_BRIDGE: u8 = 7;

/// Conntrack mark bit nsnet sets on every flow it accepts. An admin's default-drop forward
/// chain accepts nsnet's traffic with: `ct mark & 0x01000000 == 0x01000000 accept`.
pub const CT_MARK: u32 = 0x0100_0000;
/// Conntrack mark bit for connections from a container to a host address: when such a
/// connection is DNATed (to a published port) it is masqueraded, so replies return through
/// the host even when br_netfilter bridges the frame (where postrouting has no input interface).
pub const CT_MARK_FROM_BRIDGE: u32 = 0x0200_0000;

/// Every nsnet bridge.
pub const SET_BRIDGES: &str = "bridges";
/// `bridge . bridge` for each bridge: traffic that stays inside one network.
pub const SET_SAME_BRIDGE: &str = "same_bridge";
/// Bridges whose networks masquerade towards the outside.
pub const SET_MASQ: &str = "masq_bridges";
/// Bridges of internal networks: nothing leaves, nothing enters.
pub const SET_INTERNAL: &str = "internal_bridges";
/// Bridges of `routed` networks: traffic routed from outside to their endpoints' addresses is
/// accepted. Every other bridge takes forwarded traffic only from itself, through a published
/// port (DNAT) or as a reply: a machine with a route to the subnet via the host reaches nothing.
pub const SET_ROUTED: &str = "routed_bridges";
/// Host veth ends of endpoints on networks with inter-container communication off (in the
/// bridge table: `meta ibrname` needs nft_meta_bridge, which not every kernel has).
pub const SET_NOICC: &str = "noicc_ports";
/// Bridges of networks with DNS on: DNS from them to their own gateway (where nsnet's
/// responder listens) is marked like the flows nsnet accepts, so an admin's default-drop input
/// chain that accepts `ct mark & 0x01000000` lets it through, on internal and `icc=false`
/// networks too.
pub const SET_DNS: &str = "dns_bridges";
/// DNAT maps: `proto . port` (any host address) and `addr . proto . port` (one address).
pub const MAP_ANY4: &str = "pf_any4";
pub const MAP_IP4: &str = "pf_ip4";
pub const MAP_ANY6: &str = "pf_any6";
pub const MAP_IP6: &str = "pf_ip6";

/// The skeleton, installed once (`nft -f`). Golden-tested.
///
/// The forward chain ends by dropping what goes to a bridge unaccepted: from outside, neither
/// published (DNAT) nor a reply, to a network that is not routed. A rule reading `ct mark`
/// does not match packets conntrack leaves untracked (IPv6 neighbour discovery and MLD, which
/// br_netfilter passes through here): the plain accepts after them let those through.
pub fn skeleton() -> String {
    format!(
        r#"table inet {TABLE} {{
	set {SET_BRIDGES} {{ type ifname; }}
	set {SET_SAME_BRIDGE} {{ type ifname . ifname; }}
	set {SET_MASQ} {{ type ifname; }}
	set {SET_INTERNAL} {{ type ifname; }}
	set {SET_ROUTED} {{ type ifname; }}
	set {SET_DNS} {{ type ifname; }}
	map {MAP_ANY4} {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
	map {MAP_IP4} {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}
	map {MAP_ANY6} {{ type inet_proto . inet_service : ipv6_addr . inet_service; }}
	map {MAP_IP6} {{ type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; }}

	chain prerouting {{
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local jump publish
	}}

	chain output {{
		type nat hook output priority -100; policy accept;
		fib daddr type local jump publish
	}}

	chain publish {{
		iifname @{SET_BRIDGES} ct mark set ct mark | {CT_MARK_FROM_BRIDGE:#010x}
		dnat ip to ip daddr . meta l4proto . th dport map @{MAP_IP4}
		dnat ip to meta l4proto . th dport map @{MAP_ANY4}
		dnat ip6 to ip6 daddr . meta l4proto . th dport map @{MAP_IP6}
		dnat ip6 to meta l4proto . th dport map @{MAP_ANY6}
	}}

	chain postrouting {{
		type nat hook postrouting priority srcnat; policy accept;
		ct status dnat ct mark & {CT_MARK_FROM_BRIDGE:#010x} == {CT_MARK_FROM_BRIDGE:#010x} masquerade
		ip saddr 127.0.0.0/8 oifname @{SET_BRIDGES} masquerade
		iifname @{SET_MASQ} oifname != @{SET_BRIDGES} masquerade
	}}

	chain forward {{
		type filter hook forward priority filter - 10; policy accept;
		ct state established,related accept
		iifname @{SET_INTERNAL} iifname . oifname != @{SET_SAME_BRIDGE} drop
		oifname @{SET_INTERNAL} iifname . oifname != @{SET_SAME_BRIDGE} drop
		ct status dnat oifname @{SET_BRIDGES} ct mark set ct mark | {CT_MARK:#010x} accept
		iifname @{SET_BRIDGES} oifname @{SET_BRIDGES} iifname . oifname != @{SET_SAME_BRIDGE} drop
		iifname @{SET_BRIDGES} ct mark set ct mark | {CT_MARK:#010x} accept
		oifname @{SET_ROUTED} ct mark set ct mark | {CT_MARK:#010x} accept
		iifname @{SET_BRIDGES} accept
		oifname @{SET_ROUTED} accept
		oifname @{SET_BRIDGES} drop
	}}

	chain input {{
		{INPUT_HOOK}
		iifname @{SET_DNS} meta l4proto {{ tcp, udp }} th dport 53 fib daddr . iif type local ct mark set ct mark | {CT_MARK:#010x} accept
	}}
}}
table bridge {TABLE} {{
	set {SET_NOICC} {{ type ifname; }}

	chain forward {{
		type filter hook forward priority -10; policy accept;
		iifname @{SET_NOICC} oifname @{SET_NOICC} ether type {{ ip, ip6 }} drop
	}}
}}
"#
    )
}

/// Every chain of the skeleton, as `family table chain`.
pub const CHAINS: &[&str] = &[
    "inet nsnet prerouting",
    "inet nsnet output",
    "inet nsnet publish",
    "inet nsnet postrouting",
    "inet nsnet forward",
    "inet nsnet input",
    "bridge nsnet forward",
];

/// The input chain's hook (it came with DNS: tables of older nsnets lack the chain, so the
/// upgrade declares it before flushing every chain).
const INPUT_HOOK: &str = "type filter hook input priority filter - 10; policy accept;";

/// The newest object of the skeleton: tables without it were installed by an older nsnet.
pub const NEWEST_SET: &str = SET_DNS;

/// Script that brings tables installed by an older nsnet to this skeleton in one transaction,
/// keeping every element: each chain's rules are replaced, and the skeleton's declarations
/// add the sets it lacked (declaring an existing set or chain changes nothing). Every chain
/// must exist in every released skeleton (a flush of a missing chain fails the script).
pub fn upgrade_script() -> String {
    let mut s = format!("add chain inet {TABLE} input {{ {INPUT_HOOK} }}\n");
    s += &CHAINS
        .iter()
        .map(|c| format!("flush chain {c}\n"))
        .collect::<String>();
    s.push_str(&skeleton());
    s
}

/// Script that removes both tables (the last network is gone, or before a repair).
pub fn remove_script() -> String {
    format!(
        "table inet {TABLE} {{}}\ndelete table inet {TABLE}\ntable bridge {TABLE} {{}}\ndelete table bridge {TABLE}\n"
    )
}

/// An element key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FwKey {
    Ifname(String),
    IfnamePair(String, String),
    ProtoPort(Proto, u16),
    AddrProtoPort(IpAddr, Proto, u16),
}

/// A map element's value: DNAT target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwTarget {
    pub addr: IpAddr,
    pub port: u16,
}

/// One element of one set or map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwElem {
    pub family: u8,
    pub set: String,
    pub key: FwKey,
    pub data: Option<FwTarget>,
}

/// Adding (exclusively: an existing key is a conflict) or deleting one element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FwChange {
    Add(FwElem),
    Del(FwElem),
}

impl FwChange {
    /// The change that undoes this one.
    pub fn inverse(&self) -> FwChange {
        match self {
            FwChange::Add(e) => FwChange::Del(e.clone()),
            FwChange::Del(e) => FwChange::Add(e.clone()),
        }
    }
}

impl fmt::Display for FwKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FwKey::Ifname(n) => write!(f, "\"{n}\""),
            FwKey::IfnamePair(a, b) => write!(f, "\"{a}\" . \"{b}\""),
            FwKey::ProtoPort(p, port) => write!(f, "{p} . {port}"),
            FwKey::AddrProtoPort(a, p, port) => write!(f, "{a} . {p} . {port}"),
        }
    }
}

impl fmt::Display for FwElem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.set, self.key)?;
        if let Some(t) = self.data {
            write!(f, " : {} . {}", t.addr, t.port)?;
        }
        Ok(())
    }
}

impl fmt::Display for FwChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FwChange::Add(e) => write!(f, "add {e}"),
            FwChange::Del(e) => write!(f, "delete {e}"),
        }
    }
}

fn ifname(family: u8, set: &str, name: &str) -> FwElem {
    FwElem {
        family,
        set: set.to_string(),
        key: FwKey::Ifname(name.to_string()),
        data: None,
    }
}

/// Elements a network contributes: its bridge in every set its options call for.
pub fn network_elements(spec: &NetworkSpec) -> Vec<FwElem> {
    let br = spec.bridge().as_str();
    let mut out = vec![
        ifname(FAMILY_INET, SET_BRIDGES, br),
        FwElem {
            family: FAMILY_INET,
            set: SET_SAME_BRIDGE.to_string(),
            key: FwKey::IfnamePair(br.to_string(), br.to_string()),
            data: None,
        },
    ];
    if spec.masquerade() && !spec.internal() {
        out.push(ifname(FAMILY_INET, SET_MASQ, br));
    }
    if spec.internal() {
        out.push(ifname(FAMILY_INET, SET_INTERNAL, br));
    }
    if let Some(dev) = spec.overlay_dev() {
        // An overlay's VXLAN device counts as one of nsnet's bridges, paired with the
        // network's own: traffic to the other hosts' slices is never masqueraded (postrouting
        // skips output to a bridge), forwarding between the slice and the device is traffic
        // inside one network (accepted both ways), and any other network's bridge to or from
        // the device is isolated like two bridges.
        out.push(ifname(FAMILY_INET, SET_BRIDGES, &dev));
        for (a, b) in [(br, dev.as_str()), (dev.as_str(), br)] {
            out.push(FwElem {
                family: FAMILY_INET,
                set: SET_SAME_BRIDGE.to_string(),
                key: FwKey::IfnamePair(a.to_string(), b.to_string()),
                data: None,
            });
        }
        if spec.internal() {
            out.push(ifname(FAMILY_INET, SET_INTERNAL, &dev));
        }
    }
    if spec.routed() && !spec.internal() {
        out.push(ifname(FAMILY_INET, SET_ROUTED, br));
    }
    if spec.dns() {
        out.push(ifname(FAMILY_INET, SET_DNS, br));
    }
    out
}

/// Elements an endpoint contributes: its host port in `noicc_ports` when icc is off.
pub fn endpoint_elements(spec: &NetworkSpec, host_ifname: &str) -> Vec<FwElem> {
    if spec.icc() {
        Vec::new()
    } else {
        vec![ifname(FAMILY_BRIDGE, SET_NOICC, host_ifname)]
    }
}

/// The DNAT element of one published port towards `target` (the endpoint's address of the
/// same family as the host address, or of the map's family for any-address mappings).
pub fn port_element(m: &PortMapping, target: IpAddr) -> FwElem {
    let data = Some(FwTarget {
        addr: target,
        port: m.container_port,
    });
    let (set, key) = match m.host_ip {
        Some(ip) => (
            if ip.is_ipv4() { MAP_IP4 } else { MAP_IP6 },
            FwKey::AddrProtoPort(ip, m.proto, m.host_port),
        ),
        None => (
            if target.is_ipv4() { MAP_ANY4 } else { MAP_ANY6 },
            FwKey::ProtoPort(m.proto, m.host_port),
        ),
    };
    FwElem {
        family: FAMILY_INET,
        set: set.to_string(),
        key,
        data,
    }
}

/// Every element for a mapping on an endpoint with `addrs`: one per family that applies.
/// A mapping bound to one host address targets the endpoint address of that family.
pub fn port_elements(m: &PortMapping, addrs: &[IpAddr]) -> Vec<FwElem> {
    addrs
        .iter()
        .filter(|a| m.host_ip.is_none_or(|h| h.is_ipv4() == a.is_ipv4()))
        .map(|a| port_element(m, *a))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NetworkSpecBuilder;
    use crate::names::{IfName, NetName};

    #[test]
    fn skeleton_matches_golden() {
        let golden = include_str!("../tests/golden/skeleton.nft");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/skeleton.nft");
            std::fs::write(path, skeleton()).unwrap();
            return;
        }
        assert_eq!(
            skeleton(),
            golden,
            "update crates/core/tests/golden/skeleton.nft after review"
        );
    }

    #[test]
    fn upgrade_replaces_the_rules_of_every_chain() {
        let sk = skeleton();
        let mut declared = Vec::new();
        let mut family = "";
        for line in sk.lines() {
            if let Some(rest) = line.strip_prefix("table ") {
                family = rest.split_whitespace().next().unwrap();
            } else if let Some(rest) = line.trim().strip_prefix("chain ") {
                let name = rest.split_whitespace().next().unwrap();
                declared.push(format!("{family} {TABLE} {name}"));
            }
        }
        assert_eq!(declared, CHAINS);
        let up = upgrade_script();
        assert!(up.starts_with("add chain inet nsnet input {"));
        assert!(up.contains("\nflush chain inet nsnet prerouting\n"));
        assert!(up.ends_with(&sk));
        assert!(sk.contains(&format!("set {NEWEST_SET} ")));
    }

    fn spec() -> NetworkSpec {
        lan().icc(false).build().unwrap()
    }

    fn lan() -> NetworkSpecBuilder {
        NetworkSpec::builder(NetName::new("lan").unwrap())
            .bridge(IfName::new("nsbr-lan").unwrap())
            .subnets(["10.0.0.0/24".parse().unwrap()])
    }

    #[test]
    fn dns_networks_mark_their_bridge() {
        let on = lan().dns(true).build().unwrap();
        let els: Vec<String> = network_elements(&on)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            els.contains(&"dns_bridges \"nsbr-lan\"".to_string()),
            "{els:?}"
        );
        let off = lan().build().unwrap();
        assert!(network_elements(&off).iter().all(|e| e.set != SET_DNS));
    }

    #[test]
    fn network_elements_follow_options() {
        let els: Vec<String> = network_elements(&spec())
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            els,
            [
                "bridges \"nsbr-lan\"",
                "same_bridge \"nsbr-lan\" . \"nsbr-lan\"",
                "masq_bridges \"nsbr-lan\"",
            ]
        );
        let ep: Vec<String> = endpoint_elements(&spec(), "nsv1")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(ep, ["noicc_ports \"nsv1\""]);
        let internal = lan().icc(false).internal(true).build().unwrap();
        let els: Vec<String> = network_elements(&internal)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(els.contains(&"internal_bridges \"nsbr-lan\"".to_string()));
        assert!(!els.iter().any(|e| e.starts_with("masq")));
        let routed = lan().icc(false).routed(true).build().unwrap();
        let els: Vec<String> = network_elements(&routed)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(els.last().unwrap(), "routed_bridges \"nsbr-lan\"");
    }

    #[test]
    fn port_elements_per_family() {
        let any: PortMapping = "8080:80"
            .parse::<crate::port::PortSpec>()
            .unwrap()
            .mappings()[0];
        let addrs: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap()];
        let els: Vec<String> = port_elements(&any, &addrs)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            els,
            [
                "pf_any4 tcp . 8080 : 10.0.0.2 . 80",
                "pf_any6 tcp . 8080 : fd00::2 . 80"
            ]
        );
        let bound: PortMapping = "127.0.0.1:53:53/udp"
            .parse::<crate::port::PortSpec>()
            .unwrap()
            .mappings()[0];
        let els: Vec<String> = port_elements(&bound, &addrs)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(els, ["pf_ip4 127.0.0.1 . udp . 53 : 10.0.0.2 . 53"]);
    }
}
