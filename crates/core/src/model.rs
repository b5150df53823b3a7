//! The object model: networks with subnets and gateways, endpoints, links, routes, MACs.
//! Constructors validate; a value of these types is always well-formed.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::names::{IfName, NetName};

/// Largest MTU accepted for a network (jumbo frames on a virtual switch).
pub const MTU_MAX: u32 = 65_535;
/// Smallest MTU accepted: IPv4's minimum; IPv6 networks need 1280.
pub const MTU_MIN: u32 = 576;

/// Parses `ADDR/PREFIX`, naming `what` in the error; a bare address is refused with a hint.
pub fn parse_cidr(what: &'static str, s: &str) -> Result<IpNet, CoreError> {
    if !s.contains('/') && s.parse::<IpAddr>().is_ok() {
        return Err(CoreError::InvalidValue {
            what,
            value: s.to_string(),
            reason: format!("give a prefix length, e.g. {s}/24 or {s}/64"),
        });
    }
    s.parse::<IpNet>().map_err(|_| CoreError::InvalidValue {
        what,
        value: s.to_string(),
        reason: "expected an IPv4 or IPv6 CIDR such as 192.168.15.0/24 or fd00:15::/64".to_string(),
    })
}

/// Parses a plain IPv4 or IPv6 address, naming `what` in the error.
pub fn parse_ip(what: &'static str, s: &str) -> Result<IpAddr, CoreError> {
    s.parse::<IpAddr>().map_err(|_| CoreError::InvalidValue {
        what,
        value: s.to_string(),
        reason: "expected an IPv4 or IPv6 address such as 192.168.15.5".to_string(),
    })
}

/// One subnet of a network and its gateway (the bridge's address in it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub cidr: IpNet,
    pub gateway: IpAddr,
}

impl Subnet {
    /// The gateway as an interface address with the subnet's prefix (what the bridge gets).
    pub fn gateway_cidr(&self) -> IpNet {
        IpNet::new(self.gateway, self.cidr.prefix_len()).expect("prefix comes from a valid net")
    }

    /// Whether `ip` may be given to an endpoint: inside, not the network, broadcast or gateway.
    pub fn check_host(&self, network: &NetName, ip: IpAddr) -> Result<(), CoreError> {
        let reason = if !self.cidr.contains(&ip) {
            format!("outside subnet {}", self.cidr)
        } else if ip == self.cidr.network() {
            format!("is the network address of {}", self.cidr)
        } else if matches!(self.cidr, IpNet::V4(_)) && ip == self.cidr.broadcast() {
            format!("is the broadcast address of {}", self.cidr)
        } else if ip == self.gateway {
            "is the gateway".to_string()
        } else {
            return Ok(());
        };
        Err(CoreError::Address {
            network: network.to_string(),
            ip,
            reason,
        })
    }
}

/// A validated network definition (what `network create` asks for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSpec {
    pub name: NetName,
    pub bridge: IfName,
    pub subnets: Vec<Subnet>,
    pub mtu: Option<u32>,
    pub internal: bool,
    /// Masquerade traffic leaving for anything outside nsnet's networks (default on).
    pub masquerade: bool,
    /// Inter-container communication on this network's bridge (default on).
    pub icc: bool,
    /// Accept traffic routed straight to the endpoints' addresses from outside the host (default
    /// off: only published ports, the same network and the host itself reach them).
    #[serde(default)]
    pub routed: bool,
}

impl NetworkSpec {
    /// Validates subnets (host bits clear, room for hosts, no overlap between them), assigns
    /// gateways (each `--gateway` to the subnet containing it, else the first host) and the MTU.
    pub fn new(
        name: NetName,
        bridge: IfName,
        subnets: &[IpNet],
        gateways: &[IpAddr],
        mtu: Option<u32>,
        internal: bool,
    ) -> Result<Self, CoreError> {
        if subnets.is_empty() {
            return Err(CoreError::InvalidValue {
                what: "network",
                value: name.to_string(),
                reason: "needs at least one --subnet (IPv4 and/or IPv6 CIDR)".to_string(),
            });
        }
        let subnet_err = |subnet: IpNet, reason: String| CoreError::Subnet {
            network: name.to_string(),
            subnet,
            reason,
        };
        for (i, s) in subnets.iter().enumerate() {
            if s.trunc() != *s {
                return Err(subnet_err(
                    *s,
                    format!("host bits are set; did you mean {}?", s.trunc()),
                ));
            }
            let max = match s {
                IpNet::V4(_) => 30,
                IpNet::V6(_) => 126,
            };
            if s.prefix_len() > max {
                return Err(subnet_err(
                    *s,
                    format!("prefix is too long to hold a gateway and endpoints (at most /{max})"),
                ));
            }
            if let Some(o) = subnets[..i].iter().find(|o| overlaps(o, s)) {
                return Err(subnet_err(
                    *s,
                    format!("overlaps subnet {o} of the same network"),
                ));
            }
        }
        for g in gateways {
            if !subnets.iter().any(|s| s.contains(g)) {
                return Err(CoreError::GatewayOutside {
                    network: name.to_string(),
                    gateway: *g,
                    subnets: join(subnets),
                });
            }
        }
        let mut out = Vec::with_capacity(subnets.len());
        for s in subnets {
            let mut mine = gateways.iter().filter(|g| s.contains(*g));
            let gateway = match (mine.next(), mine.next()) {
                (Some(_), Some(_)) => {
                    return Err(subnet_err(*s, "has more than one --gateway".to_string()));
                }
                (Some(g), None) => *g,
                (None, _) => first_host(s),
            };
            let subnet = Subnet { cidr: *s, gateway };
            if gateway == s.network()
                || (s.prefix_len() < s.max_prefix_len()
                    && s.addr().is_ipv4()
                    && gateway == s.broadcast())
            {
                return Err(subnet_err(
                    *s,
                    format!("gateway {gateway} is the network or broadcast address"),
                ));
            }
            out.push(subnet);
        }
        if let Some(m) = mtu {
            let min = if subnets.iter().any(|s| s.addr().is_ipv6()) {
                1280
            } else {
                MTU_MIN
            };
            if !(min..=MTU_MAX).contains(&m) {
                return Err(CoreError::InvalidValue {
                    what: "mtu",
                    value: m.to_string(),
                    reason: format!("allowed: {min}-{MTU_MAX}"),
                });
            }
        }
        Ok(Self {
            name,
            bridge,
            subnets: out,
            mtu,
            internal,
            masquerade: true,
            icc: true,
            routed: false,
        })
    }

    /// Sets `routed`; an internal network accepts nothing from outside, so it cannot be routed.
    pub fn set_routed(&mut self, routed: bool) -> Result<(), CoreError> {
        if routed && self.internal {
            return Err(CoreError::InvalidValue {
                what: "network",
                value: self.name.to_string(),
                reason:
                    "internal and routed exclude each other: nothing enters an internal network"
                        .to_string(),
            });
        }
        self.routed = routed;
        Ok(())
    }

    /// The bridge's own MAC (see [`Mac::for_bridge`]).
    pub fn bridge_mac(&self) -> Mac {
        Mac::for_bridge(&self.name)
    }

    /// The subnet that contains `ip`, if any.
    pub fn subnet_of(&self, ip: IpAddr) -> Option<&Subnet> {
        self.subnets.iter().find(|s| s.cidr.contains(&ip))
    }
}

/// Whether two networks share any address.
pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn join(nets: &[IpNet]) -> String {
    nets.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first usable host of a subnet: `.1` in IPv4, `::1` in IPv6.
pub fn first_host(net: &IpNet) -> IpAddr {
    crate::ipam::offset(net, 1).expect("validated subnets hold at least one host")
}

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A stable, locally administered unicast MAC derived from an IPv4 address (0a:58:a.b.c.d,
    /// the convention of Kubernetes CNI plugins), so a reused address keeps its neighbours' caches valid.
    pub fn from_ipv4(ip: std::net::Ipv4Addr) -> Self {
        let o = ip.octets();
        Mac([0x0a, 0x58, o[0], o[1], o[2], o[3]])
    }

    /// A network's bridge MAC: locally administered unicast (`02:` then 40 bits of FNV-1a of
    /// the network name). Pinned at create, it never follows the ports (unpinned, the kernel
    /// gives a bridge its lowest port's MAC and changes it when that port leaves, so every
    /// neighbour's cache entry for the gateway goes stale), and a re-create after a reboot
    /// yields the same one. Bridges are separate segments: two networks sharing one is harmless.
    pub fn for_bridge(network: &NetName) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in network.as_str().bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // The high bytes: FNV's multiply carries every input bit upwards.
        let b = h.to_be_bytes();
        Mac([0x02, b[0], b[1], b[2], b[3], b[4]])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for Mac {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let err = |reason: &str| CoreError::InvalidValue {
            what: "mac",
            value: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(err("expected six hex bytes such as 02:42:c0:a8:0f:02"));
        }
        let mut b = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            if p.len() != 2 {
                return Err(err("expected six hex bytes such as 02:42:c0:a8:0f:02"));
            }
            b[i] = u8::from_str_radix(p, 16)
                .map_err(|_| err("expected six hex bytes such as 02:42:c0:a8:0f:02"))?;
        }
        if b[0] & 1 == 1 {
            return Err(err("is a multicast address; the first byte must be even"));
        }
        if b == [0; 6] {
            return Err(err("the all-zero address is not allowed"));
        }
        Ok(Mac(b))
    }
}

impl From<Mac> for String {
    fn from(m: Mac) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for Mac {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, CoreError> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn spec(subnets: &[&str], gws: &[&str]) -> Result<NetworkSpec, CoreError> {
        let name = NetName::new("n1").unwrap();
        let subnets: Vec<IpNet> = subnets.iter().map(|s| net(s)).collect();
        let gws: Vec<IpAddr> = gws.iter().map(|g| g.parse().unwrap()).collect();
        NetworkSpec::new(
            name,
            IfName::new("br0").unwrap(),
            &subnets,
            &gws,
            None,
            false,
        )
    }

    #[test]
    fn default_gateways_are_first_hosts() {
        let s = spec(&["192.168.15.0/24", "fd00:15::/64"], &[]).unwrap();
        assert_eq!(s.subnets[0].gateway.to_string(), "192.168.15.1");
        assert_eq!(s.subnets[1].gateway.to_string(), "fd00:15::1");
        assert_eq!(s.subnets[0].gateway_cidr().to_string(), "192.168.15.1/24");
    }

    #[test]
    fn explicit_gateway_goes_to_its_subnet() {
        let s = spec(&["192.168.15.0/24"], &["192.168.15.5"]).unwrap();
        assert_eq!(s.subnets[0].gateway.to_string(), "192.168.15.5");
    }

    #[test]
    fn bad_networks_are_refused_with_reasons() {
        let e = spec(&["192.168.15.0/24"], &["10.0.0.1"])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("10.0.0.1") && e.contains("192.168.15.0/24"),
            "{e}"
        );
        let e = spec(&["192.168.15.7/24"], &[]).unwrap_err().to_string();
        assert!(e.contains("did you mean 192.168.15.0/24"), "{e}");
        let e = spec(&["10.0.0.0/8", "10.1.0.0/16"], &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("overlaps"), "{e}");
        assert!(spec(&["10.0.0.0/31"], &[]).is_err());
        assert!(spec(&[], &[]).is_err());
        assert!(spec(&["192.168.15.0/24"], &["192.168.15.255"]).is_err());
        assert!(spec(&["192.168.15.0/24"], &["192.168.15.2", "192.168.15.3"]).is_err());
    }

    #[test]
    fn internal_networks_cannot_be_routed() {
        let mut s = spec(&["10.0.0.0/24"], &[]).unwrap();
        s.set_routed(true).unwrap();
        assert!(s.routed);
        let mut internal = NetworkSpec::new(
            NetName::new("in").unwrap(),
            IfName::new("br0").unwrap(),
            &[net("10.0.0.0/24")],
            &[],
            None,
            true,
        )
        .unwrap();
        let e = internal.set_routed(true).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid network \"in\": internal and routed exclude each other: nothing enters an internal network"
        );
        assert!(!internal.routed);
        internal.set_routed(false).unwrap();
    }

    #[test]
    fn mtu_bounds() {
        let name = NetName::new("n1").unwrap();
        let br = IfName::new("br0").unwrap();
        let v4 = [net("10.0.0.0/24")];
        assert!(NetworkSpec::new(name.clone(), br.clone(), &v4, &[], Some(9000), false).is_ok());
        assert!(NetworkSpec::new(name.clone(), br.clone(), &v4, &[], Some(100), false).is_err());
        let v6 = [net("fd00::/64")];
        assert!(NetworkSpec::new(name, br, &v6, &[], Some(1000), false).is_err());
    }

    #[test]
    fn host_checks() {
        let s = spec(&["192.168.15.0/24"], &[]).unwrap();
        let n = NetName::new("n1").unwrap();
        let sub = &s.subnets[0];
        assert!(sub.check_host(&n, "192.168.15.2".parse().unwrap()).is_ok());
        for bad in ["192.168.15.0", "192.168.15.255", "192.168.15.1", "10.0.0.1"] {
            assert!(sub.check_host(&n, bad.parse().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_parsing_hints() {
        let e = parse_cidr("address", "192.168.15.1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("192.168.15.1/24"), "{e}");
        assert!(parse_cidr("subnet", "10.0.0.0/33").is_err());
        assert!(parse_cidr("subnet", "nope").is_err());
        assert_eq!(
            parse_cidr("subnet", "10.0.0.0/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
    }

    #[test]
    fn macs() {
        let m: Mac = "02:42:c0:a8:0f:02".parse().unwrap();
        assert_eq!(m.to_string(), "02:42:c0:a8:0f:02");
        assert!("01:00:00:00:00:01".parse::<Mac>().is_err());
        assert!("00:00:00:00:00:00".parse::<Mac>().is_err());
        assert!("zz:00:00:00:00:01".parse::<Mac>().is_err());
        let d = Mac::from_ipv4("192.168.15.2".parse().unwrap());
        assert_eq!(d.to_string(), "0a:58:c0:a8:0f:02");
    }

    #[test]
    fn bridge_macs_are_stable_local_unicast_and_differ_by_network() {
        let mac = |n: &str| Mac::for_bridge(&NetName::new(n).unwrap());
        // Fixed forever: a reboot's re-create (possibly by a newer nsnet) must give the same.
        assert_eq!(mac("lan").to_string(), "02:12:65:8a:19:1d");
        let names = ["lan", "lan2", "a", "b", "podman", "n1", "n2"];
        let macs: std::collections::HashSet<Mac> = names.iter().map(|n| mac(n)).collect();
        assert_eq!(macs.len(), names.len(), "{macs:?}");
        for m in &macs {
            assert_eq!(
                m.0[0] & 0b11,
                0b10,
                "{m} is not locally administered unicast"
            );
            assert_eq!(m.to_string().parse::<Mac>().unwrap(), *m);
        }
        assert_eq!(spec(&["10.0.0.0/24"], &[]).unwrap().bridge_mac(), mac("n1"));
    }
}
