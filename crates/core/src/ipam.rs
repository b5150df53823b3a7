//! Address allocation inside a subnet: the lowest free host address, or a requested one.
//! Addresses are numbered by their ordinal in the subnet; the store keeps each subnet's free
//! ordinals as extents (starting from [`free_extents`]) and finds the lowest free one with an
//! index lookup, so allocating costs the same in an empty network and in a full one. The
//! engine asks the store inside its write transaction; the arithmetic and checks live here.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::Serialize;

use crate::CoreError;
use crate::model::Subnet;
use crate::names::NetName;

/// The address `n` places after the network address, if it is still inside `net`.
pub fn offset(net: &IpNet, n: u128) -> Option<IpAddr> {
    let ip = match net {
        IpNet::V4(v4) => {
            let base = u128::from(u32::from(v4.network()));
            IpAddr::V4(Ipv4Addr::from(u32::try_from(base.checked_add(n)?).ok()?))
        }
        IpNet::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6.network()).checked_add(n)?)),
    };
    net.contains(&ip).then_some(ip)
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Addresses endpoints can use in a subnet: all but the network address, the IPv4 broadcast
/// and the gateway.
pub fn capacity(subnet: &Subnet) -> u128 {
    let bits = u32::from(subnet.cidr.max_prefix_len() - subnet.cidr.prefix_len());
    let total = if bits >= 128 {
        u128::MAX
    } else {
        1u128 << bits
    };
    let reserved = if subnet.cidr.addr().is_ipv4() { 3 } else { 2 };
    total.saturating_sub(reserved)
}

/// Used and free endpoint addresses of one subnet, for `network inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub subnet: IpNet,
    pub used: u64,
    /// Free addresses; saturates at u64::MAX for huge IPv6 subnets.
    pub free: u64,
}

/// Usage of `subnet` given how many endpoint addresses are allocated in it.
pub fn usage(subnet: &Subnet, used: u64) -> Usage {
    let free = capacity(subnet).saturating_sub(u128::from(used));
    Usage {
        subnet: subnet.cidr,
        used,
        free: u64::try_from(free).unwrap_or(u64::MAX),
    }
}

/// A window of a subnet that allocation is limited to (host-local's `rangeStart`/`rangeEnd`),
/// both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    pub start: IpAddr,
    pub end: IpAddr,
}

impl Range {
    /// Validates a window of `subnet`: both ends usable hosts of it, in order.
    pub fn new(
        network: &NetName,
        subnet: &Subnet,
        start: IpAddr,
        end: IpAddr,
    ) -> Result<Range, CoreError> {
        for ip in [start, end] {
            if !subnet.cidr.contains(&ip)
                || ip == subnet.cidr.network()
                || (subnet.cidr.addr().is_ipv4() && ip == subnet.cidr.broadcast())
            {
                return Err(CoreError::Address {
                    network: network.to_string(),
                    ip,
                    reason: format!(
                        "cannot bound an allocation range: it must be a host address of {}",
                        subnet.cidr
                    ),
                });
            }
        }
        if to_u128(end) < to_u128(start) {
            return Err(CoreError::Address {
                network: network.to_string(),
                ip: end,
                reason: format!("range end comes before range start {start}"),
            });
        }
        Ok(Range { start, end })
    }

    /// Whether `ip` lies in the window.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.start.is_ipv4()
            && (to_u128(self.start)..=to_u128(self.end)).contains(&to_u128(ip))
    }
}

/// The largest ordinal the store tracks: SQLite integers are signed 64-bit. Allocation looks
/// among the first 2^63 addresses of a subnet (all of an IPv6 /65 or longer, half of a /64);
/// an address requested beyond them is still checked for clashes, by its text.
pub const MAX_ORDINAL: u64 = i64::MAX as u64;

/// The ordinal of `ip` in `net`: its distance from the network address, when `ip` is inside
/// and the ordinal is at most [`MAX_ORDINAL`]. The store keys free addresses by ordinal.
pub fn ordinal(net: &IpNet, ip: IpAddr) -> Option<u64> {
    if !net.contains(&ip) {
        return None;
    }
    u64::try_from(to_u128(ip) - to_u128(net.network()))
        .ok()
        .filter(|o| *o <= MAX_ORDINAL)
}

/// A run of free ordinals of one subnet, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub lo: u64,
    pub hi: u64,
}

/// First and last ordinal endpoints may get in `subnet` (the network address and the IPv4
/// broadcast excluded), within `range` when given; the gateway may lie inside.
fn window(subnet: &Subnet, range: Option<&Range>) -> (u128, u128) {
    let net = &subnet.cidr;
    let base = to_u128(net.network());
    let mut last = match net {
        IpNet::V4(_) if net.prefix_len() < 31 => to_u128(net.broadcast()) - 1,
        _ => to_u128(net.broadcast()),
    } - base;
    let mut first = 1;
    if let Some(r) = range {
        first = first.max(to_u128(r.start).saturating_sub(base));
        last = last.min(to_u128(r.end).saturating_sub(base));
    }
    (first, last)
}

/// The free ordinals of a subnet with `used` taken: every endpoint address but the gateway
/// and `used`, up to [`MAX_ORDINAL`], as ascending extents (what a new subnet starts with).
pub fn free_extents(subnet: &Subnet, used: &BTreeSet<u64>) -> Vec<Extent> {
    let (first, last) = window(subnet, None);
    let last = last.min(u128::from(MAX_ORDINAL));
    let gateway = ordinal(&subnet.cidr, subnet.gateway).map(u128::from);
    let taken = gateway
        .into_iter()
        .chain(used.iter().map(|o| u128::from(*o)))
        .filter(|o| (first..=last).contains(o))
        .collect::<BTreeSet<u128>>();
    let mut out = Vec::new();
    let mut lo = first;
    for t in taken.into_iter().chain(std::iter::once(last + 1)) {
        if t > lo {
            // Both ends are at most `last`, itself at most MAX_ORDINAL.
            out.push(Extent {
                lo: lo as u64,
                hi: (t - 1) as u64,
            });
        }
        lo = t + 1;
    }
    out
}

/// The ordinal from which the store looks for the lowest free one: the start of `range`, or
/// the subnet's first endpoint address.
pub fn search_start(
    network: &NetName,
    subnet: &Subnet,
    range: Option<&Range>,
) -> Result<u64, CoreError> {
    let (first, _) = window(subnet, range);
    u64::try_from(first)
        .ok()
        .filter(|f| *f <= MAX_ORDINAL)
        .ok_or_else(|| CoreError::Address {
            network: network.to_string(),
            ip: range.map_or(subnet.cidr.network(), |r| r.start),
            reason: format!(
                "cannot start an allocation range: addresses are allocated among the first 2^63 of {}",
                subnet.cidr
            ),
        })
}

/// The address allocated in `subnet` (within `range`), given `free`: the lowest free ordinal
/// at or above [`search_start`], as the store found it (None: no free ordinal there).
pub fn allocated(
    network: &NetName,
    subnet: &Subnet,
    range: Option<&Range>,
    free: Option<u64>,
) -> Result<IpAddr, CoreError> {
    let (_, last) = window(subnet, range);
    match free.filter(|f| u128::from(*f) <= last) {
        Some(f) => Ok(offset(&subnet.cidr, u128::from(f)).expect("a window ordinal is inside")),
        None => Err(match range {
            Some(r) => CoreError::RangeFull {
                network: network.to_string(),
                subnet: subnet.cidr,
                start: r.start,
                end: r.end,
            },
            None => CoreError::SubnetFull {
                network: network.to_string(),
                subnet: subnet.cidr,
            },
        }),
    }
}

/// The lowest free address of `subnet` with `taken` in use, computed in memory (the topology
/// preflight plays allocations on a model of the store this way).
pub fn lowest_free(
    network: &NetName,
    subnet: &Subnet,
    taken: &BTreeSet<IpAddr>,
) -> Result<IpAddr, CoreError> {
    let start = search_start(network, subnet, None)?;
    let used: BTreeSet<u64> = taken
        .iter()
        .filter_map(|ip| ordinal(&subnet.cidr, *ip))
        .collect();
    let free = free_extents(subnet, &used)
        .into_iter()
        .find(|e| e.hi >= start)
        .map(|e| e.lo.max(start));
    allocated(network, subnet, None, free)
}

/// Checks a requested static address: a usable host of the subnet, inside `range` when one
/// is given, and not `in_use` (as the store says).
pub fn request_in(
    network: &NetName,
    subnet: &Subnet,
    ip: IpAddr,
    range: Option<&Range>,
    in_use: bool,
) -> Result<IpAddr, CoreError> {
    subnet.check_host(network, ip)?;
    if let Some(r) = range.filter(|r| !r.contains(ip)) {
        return Err(CoreError::Address {
            network: network.to_string(),
            ip,
            reason: format!("is outside the allocation range {}-{}", r.start, r.end),
        });
    }
    if in_use {
        return Err(CoreError::AddressTaken {
            network: network.to_string(),
            ip,
        });
    }
    Ok(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnet(cidr: &str, gw: &str) -> Subnet {
        Subnet {
            cidr: cidr.parse().unwrap(),
            gateway: gw.parse().unwrap(),
        }
    }

    fn n() -> NetName {
        NetName::new("n").unwrap()
    }

    fn ord(s: &Subnet, ip: &str) -> u64 {
        ordinal(&s.cidr, ip.parse().unwrap()).unwrap()
    }

    /// What the store does: the free extents of `used`, then the lowest free ordinal at or
    /// above the search start.
    fn alloc_in(s: &Subnet, used: &[&str], range: Option<&Range>) -> Result<IpAddr, CoreError> {
        let used: BTreeSet<u64> = used.iter().map(|ip| ord(s, ip)).collect();
        let from = search_start(&n(), s, range)?;
        let free = free_extents(s, &used)
            .into_iter()
            .find(|e| e.hi >= from)
            .map(|e| e.lo.max(from));
        allocated(&n(), s, range, free)
    }

    fn alloc(s: &Subnet, used: &[&str]) -> String {
        alloc_in(s, used, None).unwrap().to_string()
    }

    fn ext(list: &[(u64, u64)]) -> Vec<Extent> {
        list.iter().map(|&(lo, hi)| Extent { lo, hi }).collect()
    }

    #[test]
    fn ordinals_count_from_the_network_address() {
        let s = subnet("192.168.15.0/24", "192.168.15.1");
        assert_eq!(ord(&s, "192.168.15.0"), 0);
        assert_eq!(ord(&s, "192.168.15.7"), 7);
        assert_eq!(ordinal(&s.cidr, "192.168.16.7".parse().unwrap()), None);
        let v6 = subnet("fd00:15::/64", "fd00:15::1");
        assert_eq!(ord(&v6, "fd00:15::1:0"), 0x1_0000);
        assert_eq!(ord(&v6, "fd00:15::7fff:ffff:ffff:ffff"), MAX_ORDINAL);
        // Beyond what a signed 64-bit column holds: not tracked by ordinal.
        assert_eq!(
            ordinal(&v6.cidr, "fd00:15::8000:0:0:0".parse().unwrap()),
            None
        );
    }

    #[test]
    fn a_new_subnet_is_free_but_for_its_gateway() {
        let s = subnet("192.168.15.0/24", "192.168.15.1");
        assert_eq!(free_extents(&s, &BTreeSet::new()), ext(&[(2, 254)]));
        let mid = subnet("10.0.0.0/29", "10.0.0.3");
        assert_eq!(free_extents(&mid, &BTreeSet::new()), ext(&[(1, 2), (4, 6)]));
        let last = subnet("10.0.0.0/30", "10.0.0.2");
        assert_eq!(free_extents(&last, &BTreeSet::new()), ext(&[(1, 1)]));
        let v6 = subnet("fd00::/64", "fd00::1");
        assert_eq!(
            free_extents(&v6, &BTreeSet::new()),
            ext(&[(2, MAX_ORDINAL)])
        );
        let small6 = subnet("fd00::/126", "fd00::1");
        assert_eq!(free_extents(&small6, &BTreeSet::new()), ext(&[(2, 3)]));
    }

    #[test]
    fn used_ordinals_split_the_extents() {
        let s = subnet("10.0.0.0/28", "10.0.0.1");
        let used: BTreeSet<u64> = [2, 3, 5, 14, 15, 99].into();
        // 14 is the last host; 15 (broadcast) and 99 (outside) change nothing.
        assert_eq!(free_extents(&s, &used), ext(&[(4, 4), (6, 13)]));
        let full: BTreeSet<u64> = (2..=14).collect();
        assert_eq!(free_extents(&s, &full), ext(&[]));
    }

    #[test]
    fn lowest_free_skips_gateway_and_used() {
        let s = subnet("192.168.15.0/24", "192.168.15.1");
        assert_eq!(alloc(&s, &[]), "192.168.15.2");
        assert_eq!(
            alloc(&s, &["192.168.15.2", "192.168.15.3", "192.168.15.5"]),
            "192.168.15.4"
        );
    }

    #[test]
    fn gateway_in_the_middle() {
        let s = subnet("10.0.0.0/29", "10.0.0.3");
        assert_eq!(alloc(&s, &["10.0.0.1", "10.0.0.2"]), "10.0.0.4");
    }

    #[test]
    fn exhaustion_and_reuse_after_release() {
        let s = subnet("10.0.0.0/29", "10.0.0.1");
        let mut used: Vec<String> = Vec::new();
        for _ in 0..5 {
            let refs: Vec<&str> = used.iter().map(String::as_str).collect();
            used.push(alloc(&s, &refs));
        }
        assert_eq!(capacity(&s), 5);
        let refs: Vec<&str> = used.iter().map(String::as_str).collect();
        let e = alloc_in(&s, &refs, None).unwrap_err();
        assert!(matches!(e, CoreError::SubnetFull { .. }));
        assert!(e.to_string().contains("10.0.0.0/29"));
        let without: Vec<&str> = refs.into_iter().filter(|ip| *ip != "10.0.0.4").collect();
        assert_eq!(alloc(&s, &without), "10.0.0.4");
        // A free ordinal the store reports past the window is no address.
        assert!(allocated(&n(), &s, None, Some(7)).is_err());
    }

    #[test]
    fn ipv6() {
        let s = subnet("fd00:15::/64", "fd00:15::1");
        assert_eq!(alloc(&s, &[]), "fd00:15::2");
        assert_eq!(alloc(&s, &["fd00:15::2"]), "fd00:15::3");
        let small = subnet("fd00::/126", "fd00::1");
        assert!(alloc_in(&small, &["fd00::2", "fd00::3"], None).is_err());
        assert_eq!(usage(&s, 3).used, 3);
        assert_eq!(usage(&s, 3).free, u64::MAX - 4);
        let huge = subnet("fd00::/48", "fd00::1");
        assert_eq!(usage(&huge, 3).free, u64::MAX);
        assert_eq!(usage(&small, 1).free, 1);
        assert_eq!(alloc(&huge, &[]), "fd00::2");
    }

    #[test]
    fn static_requests() {
        let s = subnet("192.168.15.0/24", "192.168.15.1");
        let ip = "192.168.15.9".parse().unwrap();
        assert_eq!(request_in(&n(), &s, ip, None, false).unwrap(), ip);
        let e = request_in(&n(), &s, "192.168.15.2".parse().unwrap(), None, true).unwrap_err();
        assert!(e.to_string().contains("already in use"));
        assert!(request_in(&n(), &s, "192.168.16.2".parse().unwrap(), None, false).is_err());
        assert!(request_in(&n(), &s, "192.168.15.1".parse().unwrap(), None, false).is_err());
    }

    #[test]
    fn ranges_bound_allocation_and_requests() {
        let s = subnet("10.0.0.0/24", "10.0.0.1");
        let r = Range::new(
            &n(),
            &s,
            "10.0.0.10".parse().unwrap(),
            "10.0.0.11".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(search_start(&n(), &s, Some(&r)).unwrap(), 10);
        assert_eq!(
            alloc_in(&s, &["10.0.0.2"], Some(&r)).unwrap().to_string(),
            "10.0.0.10"
        );
        assert_eq!(
            alloc_in(&s, &["10.0.0.2", "10.0.0.10"], Some(&r))
                .unwrap()
                .to_string(),
            "10.0.0.11"
        );
        let e = alloc_in(&s, &["10.0.0.10", "10.0.0.11"], Some(&r)).unwrap_err();
        assert!(e.to_string().contains("range 10.0.0.10-10.0.0.11"), "{e}");
        let e = request_in(&n(), &s, "10.0.0.50".parse().unwrap(), Some(&r), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("outside the allocation range"), "{e}");
        // A range that covers the gateway skips it.
        let g = Range::new(
            &n(),
            &s,
            "10.0.0.1".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(
            alloc_in(&s, &["10.0.0.2"], Some(&g)).unwrap().to_string(),
            "10.0.0.3"
        );
        for (a, b) in [
            ("10.0.0.0", "10.0.0.5"),
            ("10.0.0.9", "10.0.0.5"),
            ("10.0.0.5", "10.0.1.5"),
        ] {
            assert!(Range::new(&n(), &s, a.parse().unwrap(), b.parse().unwrap()).is_err());
        }
    }

    #[test]
    fn ranges_in_ipv6_halves() {
        let s = subnet("fd00::/64", "fd00::1");
        let low = Range::new(
            &n(),
            &s,
            "fd00::1:0".parse().unwrap(),
            "fd00::1:ffff".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(
            alloc_in(&s, &[], Some(&low)).unwrap().to_string(),
            "fd00::1:0"
        );
        // A range in the upper half of a /64 starts past the ordinals the store tracks.
        let high = Range::new(
            &n(),
            &s,
            "fd00::8000:0:0:1".parse().unwrap(),
            "fd00::8000:0:0:9".parse().unwrap(),
        )
        .unwrap();
        let e = search_start(&n(), &s, Some(&high)).unwrap_err().to_string();
        assert!(e.contains("first 2^63 of fd00::/64"), "{e}");
    }

    #[test]
    fn usage_counts() {
        let s = subnet("192.168.15.0/24", "192.168.15.1");
        let u = usage(&s, 2);
        assert_eq!((u.used, u.free), (2, 251));
    }
}
