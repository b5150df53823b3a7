//! Overlay networks (`Driver::Vxlan`), flannel-style and routed: each host owns a slice of the
//! network's subnet (its bridge holds the slice's gateway), and one VXLAN device per network
//! carries traffic to the other hosts' slices. Everything a host needs to reach another is
//! computed from that host's underlay address and slice: its VTEP address is the slice's
//! network address and its VTEP MAC a hash of the VNI and the slice, so static membership
//! needs no exchange between hosts. Per remote host there are exactly three kernel entries
//! ([`OverlayPeer`]); nothing per remote container.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::CoreError;
use crate::model::{Driver, Mac, NetworkSpec};
use crate::names::NetName;
use crate::ops::OverlayPeer;
use crate::topology::Desired;

/// The IANA VXLAN port (the kernel's default, 8472, predates the assignment).
pub const VXLAN_PORT: u16 = 4789;
/// What VXLAN over IPv4 adds to every frame: outer IPv4 (20), UDP (8), VXLAN (8), inner
/// Ethernet (14). The overlay's MTU is the underlay's minus this.
pub const VXLAN_OVERHEAD: u32 = 50;
/// The prefix length of a host's slice of an overlay network's subnet.
pub const SLICE_PREFIX: u8 = 24;

/// A host of an overlay, as the membership source (topology file) names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub underlay: Ipv4Addr,
    /// Which slice of every overlay network's subnet the host owns (the N-th /24).
    pub slice: u32,
}

/// The MTU of an overlay network that names none: a 1500-byte underlay's, minus VXLAN's.
pub const DEFAULT_MTU: u32 = 1500 - VXLAN_OVERHEAD;

/// One overlay network as this host runs it: the peers its device must hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalOverlay {
    pub network: NetName,
    pub peers: Vec<OverlayPeer>,
}

/// Turns a topology's overlay networks into this host's view of them: each vxlan network's
/// subnet becomes this host's slice (endpoint addresses must lie in it), and every other host
/// becomes a peer. Without hosts, an overlay is one host's, its whole subnet local.
pub fn localize(
    desired: &mut Desired,
    hosts: &[Host],
    this: Option<&str>,
) -> Result<Vec<LocalOverlay>, CoreError> {
    let mut out = Vec::new();
    for net in desired.networks.iter_mut() {
        if net.spec.driver() != Driver::Vxlan {
            continue;
        }
        let name = net.spec.name().to_string();
        let Some(IpNet::V4(subnet)) = net.spec.subnets().first().map(|s| s.cidr) else {
            continue;
        };
        if hosts.is_empty() {
            net.spec = net.spec.sliced(subnet, DEFAULT_MTU)?;
            out.push(LocalOverlay {
                network: net.spec.name().clone(),
                peers: Vec::new(),
            });
            continue;
        }
        let Some(me) = this.and_then(|t| hosts.iter().find(|h| h.name == t)) else {
            return Err(CoreError::InvalidValue {
                what: "host",
                value: this.unwrap_or("").to_string(),
                reason: format!(
                    "network {name} spans hosts {}: this machine must be one of them",
                    hosts
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        };
        let slice = slice_of(&name, subnet, me.slice)?;
        net.spec = net.spec.sliced(slice, DEFAULT_MTU)?;
        for ep in &net.endpoints {
            if let Some(ip) = ep.ips.iter().find(|ip| !IpNet::V4(slice).contains(*ip)) {
                return Err(CoreError::Address {
                    network: name.clone(),
                    ip: *ip,
                    reason: format!(
                        "endpoint {} is on host {}, whose slice is {slice}",
                        ep.netns, me.name
                    ),
                });
            }
        }
        let mut peers = Vec::new();
        for h in hosts.iter().filter(|h| h.name != me.name) {
            let theirs = slice_of(&name, subnet, h.slice)?;
            peers.extend(peer(&net.spec, theirs, h.underlay));
        }
        out.push(LocalOverlay {
            network: net.spec.name().clone(),
            peers,
        });
    }
    Ok(out)
}

/// Where the hosts of a topology's overlay networks come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// The file lists them (`hosts:`); an empty list is a one-host overlay.
    Static(Vec<Host>),
    /// Each host registers itself in etcd under a lease and reads the others (`etcd:`).
    Etcd(EtcdMember),
}

/// How long a host stays listed in etcd after it stops renewing, unless its configuration
/// says otherwise (flannel keeps 24 h; a dead host's entries would linger that long).
pub const DEFAULT_LEASE_TTL: u32 = 30;

/// This host's registration in etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdMember {
    /// The etcd client endpoint, `HOST:PORT`.
    pub endpoint: String,
    /// Seconds a host stays listed after it stops renewing its lease.
    pub ttl: u32,
    /// This host: its name, underlay address and the slice it claims.
    pub host: Host,
}

/// The default slice of a host: the last byte of its underlay address, which stays put when
/// other hosts come and go.
pub fn default_slice(underlay: Ipv4Addr) -> u32 {
    u32::from(underlay.octets()[3])
}

/// The `index`-th slice of `subnet`.
pub fn slice_of(network: &str, subnet: Ipv4Net, index: u32) -> Result<Ipv4Net, CoreError> {
    let err = |reason: String| CoreError::Subnet {
        network: network.to_string(),
        subnet: IpNet::V4(subnet),
        reason,
    };
    if subnet.prefix_len() >= SLICE_PREFIX {
        return Err(err(format!(
            "a vxlan network's subnet must be shorter than /{SLICE_PREFIX}, to hold one /{SLICE_PREFIX} slice per host"
        )));
    }
    let count = 1u64 << (SLICE_PREFIX - subnet.prefix_len());
    if u64::from(index) >= count {
        return Err(err(format!(
            "has {count} /{SLICE_PREFIX} slices (0 to {}); slice {index} is outside it",
            count - 1
        )));
    }
    let base = u32::from(subnet.network()) + (index << (32 - SLICE_PREFIX));
    Ok(Ipv4Net::new(Ipv4Addr::from(base), SLICE_PREFIX).expect("prefix in range"))
}

/// A host's VTEP address on an overlay: its slice's network address (never an endpoint's).
pub fn vtep_ip(slice: Ipv4Net) -> Ipv4Addr {
    slice.network()
}

/// The entries on this host's device `spec` for a remote host owning `slice` at `underlay`.
pub fn peer(spec: &NetworkSpec, slice: Ipv4Net, underlay: Ipv4Addr) -> Option<OverlayPeer> {
    Some(OverlayPeer {
        dev: spec.overlay_dev()?,
        slice: IpNet::V4(slice),
        vtep: IpAddr::V4(vtep_ip(slice)),
        mac: Mac::for_vtep(spec.vni()?, IpNet::V4(slice)),
        underlay: IpAddr::V4(underlay),
    })
}

/// What the kernel holds on an overlay device, grouped by the remote slice it serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveEntries {
    /// Routes on the device: destination -> gateway.
    pub routes: Vec<(IpNet, Option<IpAddr>)>,
    /// Permanent neighbour entries: address -> MAC.
    pub neighbours: Vec<(IpAddr, Mac)>,
    /// Forwarding-database entries: MAC -> underlay destination.
    pub fdb: Vec<(Mac, IpAddr)>,
}

/// A remote host as the live entries show it, and what is wrong with it, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LivePeer {
    /// The peer the entries describe (what must be removed if it is not wanted).
    pub peer: OverlayPeer,
    /// Which of the three entries is missing or points elsewhere.
    pub drift: Option<String>,
}

/// The peers that `live` describes on `spec`'s device: every route through the device whose
/// destination is a slice of another host, with the neighbour and FDB entries it relies on.
/// Entries with no route to hang on (left over by hand) show up as drift of nothing and are
/// ignored: they make nothing reachable.
pub fn observe(spec: &NetworkSpec, live: &LiveEntries) -> Vec<LivePeer> {
    let (Some(dev), Some(vni)) = (spec.overlay_dev(), spec.vni()) else {
        return Vec::new();
    };
    let own = spec.overlay_slice();
    let mut out = Vec::new();
    for (dest, via) in &live.routes {
        let IpNet::V4(slice) = *dest else { continue };
        if slice.prefix_len() != SLICE_PREFIX || Some(slice) == own {
            continue;
        }
        let vtep = IpAddr::V4(vtep_ip(slice));
        let mac = Mac::for_vtep(vni, *dest);
        let neighbour = live.neighbours.iter().find(|(ip, _)| *ip == vtep);
        let fdb = live.fdb.iter().find(|(m, _)| *m == mac);
        let underlay = fdb.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |(_, u)| *u);
        let drift = if *via != Some(vtep) {
            Some(format!("route to {slice} does not go via {vtep}"))
        } else if neighbour.is_none() {
            Some(format!("neighbour entry for {vtep} is missing"))
        } else if neighbour.is_some_and(|(_, m)| *m != mac) {
            Some(format!("neighbour entry for {vtep} names another MAC"))
        } else if fdb.is_none() {
            Some(format!("forwarding entry for {mac} is missing"))
        } else {
            None
        };
        out.push(LivePeer {
            peer: OverlayPeer {
                dev: dev.clone(),
                slice: *dest,
                vtep,
                mac,
                underlay,
            },
            drift,
        });
    }
    // A route whose neighbour or FDB entry is gone is drift of that peer; an FDB entry whose
    // route is gone is found through the wanted peers (see `diff`).
    out
}

/// One change to a network's peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerChange {
    /// Add (or, with a reason, repair) a peer's entries.
    Add {
        peer: OverlayPeer,
        reason: Option<String>,
    },
    Remove(OverlayPeer),
}

impl fmt::Display for PeerChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerChange::Add { peer, reason: None } => write!(f, "+ overlay peer {peer}"),
            PeerChange::Add {
                peer,
                reason: Some(r),
            } => write!(f, "~ overlay peer {peer}: repair, drift: {r}"),
            PeerChange::Remove(peer) => write!(f, "- overlay peer {peer}"),
        }
    }
}

/// The fewest changes from the `live` peers to the `wanted` ones: remove what is not wanted
/// (or points at another underlay address, then add it again), add what is missing, repair
/// what drifted. `live` holds the FDB entries too, so a peer whose route alone was deleted is
/// seen as drift, not as a new peer.
pub fn diff(wanted: &[OverlayPeer], live: &[LivePeer], fdb: &[(Mac, IpAddr)]) -> Vec<PeerChange> {
    let live_by_slice: BTreeMap<IpNet, &LivePeer> =
        live.iter().map(|l| (l.peer.slice, l)).collect();
    let mut out = Vec::new();
    for l in live {
        if !wanted.iter().any(|w| w.slice == l.peer.slice) {
            out.push(PeerChange::Remove(l.peer.clone()));
        }
    }
    for w in wanted {
        let reason = match live_by_slice.get(&w.slice) {
            None if fdb.iter().any(|(m, _)| *m == w.mac) => {
                Some(format!("route to {} is missing", w.slice))
            }
            None => {
                out.push(PeerChange::Add {
                    peer: w.clone(),
                    reason: None,
                });
                continue;
            }
            Some(l) => match &l.drift {
                Some(d) => Some(d.clone()),
                None if l.peer.underlay != w.underlay => Some(format!(
                    "forwarding entry goes to {} instead",
                    l.peer.underlay
                )),
                None => continue,
            },
        };
        out.push(PeerChange::Add {
            peer: w.clone(),
            reason,
        });
    }
    out
}

/// Which slice of `subnet` the network `slice` is (the index [`slice_of`] maps back to it);
/// `None` when it is not a /24 network inside `subnet`. A Kubernetes node's podCIDR becomes
/// its host's slice this way.
pub fn slice_index(subnet: Ipv4Net, slice: Ipv4Net) -> Option<u32> {
    let fits = slice.prefix_len() == SLICE_PREFIX
        && slice.addr() == slice.network()
        && subnet.prefix_len() < SLICE_PREFIX
        && subnet.contains(&slice.network());
    fits.then(|| (u32::from(slice.network()) - u32::from(subnet.network())) >> (32 - SLICE_PREFIX))
}

/// The peers of this host (`me`) on the overlay `spec` (its slice of `subnet`): one per other
/// host of `hosts`, from its slice and underlay address.
pub fn peers(
    spec: &NetworkSpec,
    subnet: Ipv4Net,
    hosts: &[Host],
    me: &str,
) -> Result<Vec<OverlayPeer>, CoreError> {
    let name = spec.name().to_string();
    let mut out = Vec::new();
    for h in hosts.iter().filter(|h| h.name != me) {
        out.extend(peer(spec, slice_of(&name, subnet, h.slice)?, h.underlay));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(slice: &str) -> NetworkSpec {
        NetworkSpec::builder(NetName::new("ov").unwrap())
            .subnets([slice.parse().unwrap()])
            .driver(Driver::Vxlan)
            .vni(42)
            .build()
            .unwrap()
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn slices_are_numbered_inside_the_subnet() {
        assert_eq!(
            slice_of("ov", net("10.200.0.0/16"), 3).unwrap(),
            net("10.200.3.0/24")
        );
        let e = slice_of("ov", net("10.200.0.0/23"), 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("slice 2 is outside it"), "{e}");
        let e = slice_of("ov", net("10.200.0.0/24"), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("shorter than /24"), "{e}");
    }

    #[test]
    fn a_pod_cidr_maps_onto_its_slice_and_back() {
        let cluster = net("10.244.0.0/16");
        assert_eq!(slice_index(cluster, net("10.244.3.0/24")), Some(3));
        assert_eq!(
            slice_of("ov", cluster, 3).unwrap(),
            net("10.244.3.0/24"),
            "slice_of is its inverse"
        );
        assert_eq!(slice_index(cluster, net("10.244.255.0/24")), Some(255));
        assert_eq!(slice_index(cluster, net("10.245.3.0/24")), None, "outside");
        assert_eq!(
            slice_index(cluster, net("10.244.3.0/25")),
            None,
            "not a /24"
        );
        assert_eq!(
            slice_index(cluster, net("10.244.0.0/16")),
            None,
            "the whole"
        );
        assert_eq!(
            slice_index(cluster, net("10.244.3.7/24")),
            None,
            "host bits"
        );
        assert_eq!(
            slice_index(net("10.244.3.0/24"), net("10.244.3.0/24")),
            None
        );
    }

    #[test]
    fn peers_are_the_other_hosts_slices() {
        let here = spec("10.244.3.0/24");
        let host = |name: &str, last: u8, slice: u32| Host {
            name: name.to_string(),
            underlay: Ipv4Addr::new(192, 0, 2, last),
            slice,
        };
        let hosts = [host("a", 1, 3), host("b", 2, 7)];
        let p = peers(&here, net("10.244.0.0/16"), &hosts, "a").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].slice.to_string(), "10.244.7.0/24");
        assert_eq!(p[0].underlay.to_string(), "192.0.2.2");
        assert!(
            peers(&here, net("10.244.0.0/16"), &hosts[..1], "a")
                .unwrap()
                .is_empty()
        );
        let far = [host("a", 1, 3), host("c", 3, 300)];
        assert!(peers(&here, net("10.244.0.0/16"), &far, "a").is_err());
    }

    #[test]
    fn every_host_computes_the_same_peer_entries() {
        let here = spec("10.200.1.0/24");
        let p = peer(&here, net("10.200.2.0/24"), "192.0.2.2".parse().unwrap()).unwrap();
        assert_eq!(p.dev, "nsvx42");
        assert_eq!(p.vtep.to_string(), "10.200.2.0");
        // Host 2's own device MAC is the one host 1 names.
        assert_eq!(p.mac, Mac::for_vtep(42, "10.200.2.0/24".parse().unwrap()));
        assert_ne!(p.mac, Mac::for_vtep(43, "10.200.2.0/24".parse().unwrap()));
    }

    fn live_of(peers: &[OverlayPeer]) -> LiveEntries {
        LiveEntries {
            routes: peers.iter().map(|p| (p.slice, Some(p.vtep))).collect(),
            neighbours: peers.iter().map(|p| (p.vtep, p.mac)).collect(),
            fdb: peers.iter().map(|p| (p.mac, p.underlay)).collect(),
        }
    }

    fn render(c: &[PeerChange]) -> Vec<String> {
        c.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn peers_converge_by_diff() {
        let here = spec("10.200.1.0/24");
        let p2 = peer(&here, net("10.200.2.0/24"), "192.0.2.2".parse().unwrap()).unwrap();
        let p3 = peer(&here, net("10.200.3.0/24"), "192.0.2.3".parse().unwrap()).unwrap();
        let wanted = vec![p2.clone(), p3.clone()];
        // From nothing: both added.
        let none = LiveEntries::default();
        let c = diff(&wanted, &observe(&here, &none), &none.fdb);
        assert_eq!(c.len(), 2);
        assert!(
            c.iter()
                .all(|c| matches!(c, PeerChange::Add { reason: None, .. }))
        );
        // Applied: nothing to do.
        let all = live_of(&wanted);
        assert_eq!(diff(&wanted, &observe(&here, &all), &all.fdb), vec![]);
        // Host 3 leaves: only its entries go.
        let c = diff(&wanted[..1], &observe(&here, &all), &all.fdb);
        assert_eq!(c, vec![PeerChange::Remove(p3.clone())]);
        // Drift: each of the three entries deleted by hand is repaired.
        let mut l = all.clone();
        l.fdb.retain(|(m, _)| *m != p2.mac);
        assert_eq!(
            render(&diff(&wanted, &observe(&here, &l), &l.fdb)),
            [format!(
                "~ overlay peer {p2}: repair, drift: forwarding entry for {} is missing",
                p2.mac
            )]
        );
        let mut l = all.clone();
        l.neighbours.clear();
        assert_eq!(diff(&wanted, &observe(&here, &l), &l.fdb).len(), 2);
        let mut l = all.clone();
        l.routes.retain(|(d, _)| *d != p3.slice);
        assert_eq!(
            render(&diff(&wanted, &observe(&here, &l), &l.fdb)),
            [format!(
                "~ overlay peer {p3}: repair, drift: route to 10.200.3.0/24 is missing"
            )]
        );
        // A host that moved to another underlay address.
        let moved = peer(&here, net("10.200.3.0/24"), "192.0.2.33".parse().unwrap()).unwrap();
        let c = diff(&[p2, moved], &observe(&here, &all), &all.fdb);
        assert_eq!(c.len(), 1);
        assert!(
            c[0].to_string()
                .contains("forwarding entry goes to 192.0.2.3")
        );
    }

    #[test]
    fn the_own_slice_and_other_routes_are_not_peers() {
        let here = spec("10.200.1.0/24");
        let live = LiveEntries {
            routes: vec![
                ("10.200.1.0/24".parse().unwrap(), None),
                ("10.200.0.0/16".parse().unwrap(), None),
            ],
            ..LiveEntries::default()
        };
        assert!(observe(&here, &live).is_empty());
    }

    fn hosts() -> Vec<Host> {
        (1..=3)
            .map(|i| Host {
                name: format!("h{i}"),
                underlay: Ipv4Addr::new(192, 0, 2, i),
                slice: u32::from(i),
            })
            .collect()
    }

    fn desired(ip: &str) -> Desired {
        let spec = NetworkSpec::builder(NetName::new("ov").unwrap())
            .subnets(["10.200.0.0/16".parse().unwrap()])
            .driver(Driver::Vxlan)
            .build()
            .unwrap();
        let mut d = Desired::empty("t");
        d.networks.push(crate::topology::DesiredNetwork {
            spec,
            endpoints: vec![crate::topology::DesiredEndpoint {
                network: NetName::new("ov").unwrap(),
                netns: crate::names::NsName::new("a").unwrap(),
                ips: vec![ip.parse().unwrap()],
                mac: None,
                ifname: None,
                publish: Vec::new(),
            }],
        });
        d
    }

    #[test]
    fn localize_gives_this_host_its_slice_and_the_others_as_peers() {
        let mut d = desired("10.200.2.10");
        let local = localize(&mut d, &hosts(), Some("h2")).unwrap();
        let spec = &d.networks[0].spec;
        assert_eq!(spec.subnets()[0].cidr.to_string(), "10.200.2.0/24");
        assert_eq!(spec.subnets()[0].gateway.to_string(), "10.200.2.1");
        assert_eq!(spec.mtu(), Some(DEFAULT_MTU));
        assert_eq!(spec.vni(), Some(crate::model::default_vni(spec.name())));
        let peers: Vec<String> = local[0].peers.iter().map(|p| p.slice.to_string()).collect();
        assert_eq!(peers, ["10.200.1.0/24", "10.200.3.0/24"]);
        // An endpoint outside this host's slice, or a machine that is none of the hosts.
        let e = localize(&mut desired("10.200.1.10"), &hosts(), Some("h2")).unwrap_err();
        assert!(
            e.to_string().contains("whose slice is 10.200.2.0/24"),
            "{e}"
        );
        let e = localize(&mut desired("10.200.2.10"), &hosts(), None).unwrap_err();
        assert!(e.to_string().contains("spans hosts h1, h2, h3"), "{e}");
        // Without hosts: one host, the whole subnet.
        let mut d = desired("10.200.9.10");
        let local = localize(&mut d, &[], None).unwrap();
        assert!(local[0].peers.is_empty());
        assert_eq!(
            d.networks[0].spec.subnets()[0].cidr.to_string(),
            "10.200.0.0/16"
        );
    }

    #[test]
    fn the_switch_adds_a_vxlan_device_beside_the_bridge() {
        let s = spec("10.200.1.0/24");
        let ops: Vec<String> = crate::switch::of(&s)
            .create(&s)
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert!(
            ops.contains(&"create vxlan nsvx42 (vni 42)".to_string()),
            "{ops:?}"
        );
        assert!(
            ops.contains(&"add address 10.200.1.0/32 to nsvx42 in netns host".to_string()),
            "{ops:?}"
        );
        let gone: Vec<String> = crate::switch::of(&s)
            .remove(&s)
            .iter()
            .map(|o| o.to_string())
            .collect();
        assert_eq!(gone[0], "delete nsvx42 in netns host");
        // The device is no bridge port.
        assert_eq!(
            crate::switch::of(&s).port_master(&s).as_deref(),
            Some(s.bridge().as_str())
        );
    }

    #[test]
    fn the_device_counts_as_the_networks_own_bridge_in_the_firewall() {
        use crate::firewall::{FwKey, SET_BRIDGES, SET_SAME_BRIDGE, network_elements};
        let s = spec("10.200.1.0/24");
        let els = network_elements(&s);
        let has = |set: &str, key: FwKey| els.iter().any(|e| e.set == set && e.key == key);
        let br = s.bridge().to_string();
        assert!(has(SET_BRIDGES, FwKey::Ifname("nsvx42".into())));
        assert!(has(
            SET_SAME_BRIDGE,
            FwKey::IfnamePair(br.clone(), "nsvx42".into())
        ));
        assert!(has(SET_SAME_BRIDGE, FwKey::IfnamePair("nsvx42".into(), br)));
    }

    #[test]
    fn a_vni_is_for_vxlan_networks_and_fits_24_bits() {
        let b = || {
            NetworkSpec::builder(NetName::new("ov").unwrap())
                .subnets(["10.200.0.0/16".parse().unwrap()])
        };
        let e = b().vni(5).build().unwrap_err().to_string();
        assert!(e.contains("only vxlan networks take a vni"), "{e}");
        let e = b()
            .driver(Driver::Vxlan)
            .vni(1 << 24)
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("allowed: 1 to 16777215"), "{e}");
        let e = b()
            .driver(Driver::Vxlan)
            .subnets(["fd00::/64".parse().unwrap()])
            .build()
            .unwrap_err()
            .to_string();
        assert!(e.contains("IPv4 subnets only"), "{e}");
    }
}
