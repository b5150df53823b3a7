//! Address allocation inside a subnet: the lowest free host address, or a requested one.
//! The caller (the engine, inside the store's write transaction) supplies the used set.

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

/// The lowest free endpoint address of `subnet`; `used` holds the addresses already allocated
/// (addresses outside the subnet are ignored). Cost grows with the addresses below the first gap,
/// never with the size of the subnet.
pub fn allocate(
    network: &NetName,
    subnet: &Subnet,
    used: &BTreeSet<IpAddr>,
) -> Result<IpAddr, CoreError> {
    allocate_in(network, subnet, used, None)
}

/// Like [`allocate`], limited to `range` when given.
pub fn allocate_in(
    network: &NetName,
    subnet: &Subnet,
    used: &BTreeSet<IpAddr>,
    range: Option<&Range>,
) -> Result<IpAddr, CoreError> {
    let net = &subnet.cidr;
    let mut last = match net {
        IpNet::V4(_) if net.prefix_len() < 31 => to_u128(net.broadcast()) - 1,
        _ => to_u128(net.broadcast()),
    };
    let mut first = to_u128(net.network()) + 1;
    if let Some(r) = range {
        first = first.max(to_u128(r.start));
        last = last.min(to_u128(r.end));
    }
    let gateway = to_u128(subnet.gateway);
    let mut taken = used
        .range(net.network()..=net.broadcast())
        .map(|ip| to_u128(*ip))
        .peekable();
    let mut candidate = first;
    while candidate <= last {
        while taken.next_if(|t| *t < candidate).is_some() {}
        if candidate == gateway || taken.next_if_eq(&candidate).is_some() {
            candidate += 1;
            continue;
        }
        return Ok(offset(net, candidate - to_u128(net.network())).expect("inside the subnet"));
    }
    Err(match range {
        Some(r) => CoreError::RangeFull {
            network: network.to_string(),
            subnet: *net,
            start: r.start,
            end: r.end,
        },
        None => CoreError::SubnetFull {
            network: network.to_string(),
            subnet: *net,
        },
    })
}

/// Checks a requested static address: a usable host of the subnet and not yet allocated.
pub fn request(
    network: &NetName,
    subnet: &Subnet,
    used: &BTreeSet<IpAddr>,
    ip: IpAddr,
) -> Result<IpAddr, CoreError> {
    request_in(network, subnet, used, ip, None)
}

/// Like [`request`]; the address must also lie in `range` when one is given.
pub fn request_in(
    network: &NetName,
    subnet: &Subnet,
    used: &BTreeSet<IpAddr>,
    ip: IpAddr,
    range: Option<&Range>,
) -> Result<IpAddr, CoreError> {
    subnet.check_host(network, ip)?;
    if let Some(r) = range.filter(|r| !r.contains(ip)) {
        return Err(CoreError::Address {
            network: network.to_string(),
            ip,
            reason: format!("is outside the allocation range {}-{}", r.start, r.end),
        });
    }
    if used.contains(&ip) {
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

    fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn lowest_free_skips_gateway_and_used() {
        let s = subnet("192.168.15.0/24", "192.168.15.1");
        assert_eq!(
            allocate(&n(), &s, &ips(&[])).unwrap().to_string(),
            "192.168.15.2"
        );
        let used = ips(&["192.168.15.2", "192.168.15.3", "192.168.15.5", "10.0.0.4"]);
        assert_eq!(
            allocate(&n(), &s, &used).unwrap().to_string(),
            "192.168.15.4"
        );
    }

    #[test]
    fn gateway_in_the_middle() {
        let s = subnet("10.0.0.0/29", "10.0.0.3");
        let used = ips(&["10.0.0.1", "10.0.0.2"]);
        assert_eq!(allocate(&n(), &s, &used).unwrap().to_string(), "10.0.0.4");
    }

    #[test]
    fn exhaustion_and_reuse_after_release() {
        let s = subnet("10.0.0.0/29", "10.0.0.1");
        let mut used = BTreeSet::new();
        for _ in 0..5 {
            used.insert(allocate(&n(), &s, &used).unwrap());
        }
        assert_eq!(capacity(&s), 5);
        let e = allocate(&n(), &s, &used).unwrap_err();
        assert!(matches!(e, CoreError::SubnetFull { .. }));
        assert!(e.to_string().contains("10.0.0.0/29"));
        used.remove(&"10.0.0.4".parse().unwrap());
        assert_eq!(allocate(&n(), &s, &used).unwrap().to_string(), "10.0.0.4");
    }

    #[test]
    fn ipv6() {
        let s = subnet("fd00:15::/64", "fd00:15::1");
        assert_eq!(
            allocate(&n(), &s, &ips(&[])).unwrap().to_string(),
            "fd00:15::2"
        );
        let small = subnet("fd00::/126", "fd00::1");
        let used = ips(&["fd00::2", "fd00::3"]);
        assert!(allocate(&n(), &small, &used).is_err());
        assert_eq!(usage(&s, 3).used, 3);
        assert_eq!(usage(&s, 3).free, u64::MAX - 4);
        let huge = subnet("fd00::/48", "fd00::1");
        assert_eq!(usage(&huge, 3).free, u64::MAX);
        assert_eq!(usage(&small, 1).free, 1);
    }

    #[test]
    fn static_requests() {
        let s = subnet("192.168.15.0/24", "192.168.15.1");
        let used = ips(&["192.168.15.2"]);
        let ip = "192.168.15.9".parse().unwrap();
        assert_eq!(request(&n(), &s, &used, ip).unwrap(), ip);
        let e = request(&n(), &s, &used, "192.168.15.2".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("already in use"));
        assert!(request(&n(), &s, &used, "192.168.16.2".parse().unwrap()).is_err());
        assert!(request(&n(), &s, &used, "192.168.15.1".parse().unwrap()).is_err());
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
        let mut used = ips(&["10.0.0.2"]);
        let a = allocate_in(&n(), &s, &used, Some(&r)).unwrap();
        assert_eq!(a.to_string(), "10.0.0.10");
        used.insert(a);
        used.insert(allocate_in(&n(), &s, &used, Some(&r)).unwrap());
        let e = allocate_in(&n(), &s, &used, Some(&r)).unwrap_err();
        assert!(e.to_string().contains("range 10.0.0.10-10.0.0.11"), "{e}");
        let e = request_in(&n(), &s, &used, "10.0.0.50".parse().unwrap(), Some(&r))
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
            allocate_in(&n(), &s, &used, Some(&g)).unwrap().to_string(),
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
    fn usage_counts() {
        let s = subnet("192.168.15.0/24", "192.168.15.1");
        let u = usage(&s, 2);
        assert_eq!((u.used, u.free), (2, 251));
    }
}
