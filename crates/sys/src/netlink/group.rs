//! Deleting many links at once: one unregister batch in the kernel instead of one per link.
//!
//! Every link deletion ends in `netdev_run_todo`, which waits for an `rcu_barrier()` (~14 ms
//! here) whatever the number of devices it frees. A DELLINK naming a link pays it per link; a
//! DELLINK naming an interface group (`rtnl_group_dellink`) deletes every device of the group
//! with one `unregister_netdevice_many`, so one barrier for all of them (a veth takes its peer
//! along, in whichever namespace it is). The group is ours for the moment: a random group id
//! is given to exactly the links to delete (SETLINK, many per datagram), a dump checks that the
//! group holds nothing else (a user's device must never be caught), then one DELLINK deletes it.
//! When the check finds a stranger in the group, or the group delete fails, the links are
//! deleted one by one, as before. A process killed in between leaves links in a group no one
//! uses, deleted later by name like any other.

use netlink_packet_core::Parseable;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};

use super::link::LINK_DUMP;
use super::{NetlinkError, Req, Rtnl};

/// Requests per datagram: their answers (one ACK each) must fit the receive buffer.
const CHUNK: usize = 512;

/// A group id no one else uses, with overwhelming probability: random, never 0 (the default
/// group every device starts in).
fn fresh_group() -> u32 {
    let mut b = [0u8; 4];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    let mut g = u32::from_ne_bytes(b);
    if n != 4 {
        // No entropy source: the clock and pid still differ between processes.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        g = t ^ std::process::id().rotate_left(16);
    }
    // High bit set: far from the small ids an admin would pick by hand.
    g | 0x8000_0000
}

fn set_group_req(name: &str, group: u32) -> Req {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_owned()));
    msg.attributes.push(LinkAttribute::Group(group));
    Req::new(
        format!("put link {name} in group {group}"),
        0,
        RouteNetlinkMessage::SetLink(msg),
    )
}

fn del_group_req(group: u32) -> Req {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::Group(group));
    Req::new(
        format!("delete the links of group {group}"),
        0,
        RouteNetlinkMessage::DelLink(msg),
    )
}

/// The name and group of a link in a dump reply.
fn name_and_group(payload: &[u8]) -> Result<(String, u32), String> {
    let msg = LinkMessage::parse(payload).map_err(|e| e.to_string())?;
    let mut name = String::new();
    let mut group = 0;
    for attr in msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = n,
            LinkAttribute::Group(g) => group = g,
            _ => {}
        }
    }
    Ok((name, group))
}

impl Rtnl {
    /// Deletes the links called `names` of this socket's namespace, in one unregister batch
    /// where it is safe (see the module). One result per name, in order: `Ok(true)` deleted,
    /// `Ok(false)` it did not exist.
    pub fn del_links(&mut self, names: &[String]) -> Vec<Result<bool, NetlinkError>> {
        let mut out: Vec<Option<Result<bool, NetlinkError>>> = names.iter().map(|_| None).collect();
        let group = fresh_group();
        let mut grouped = Vec::new();
        for (start, chunk) in names.chunks(CHUNK).enumerate() {
            let reqs = chunk.iter().map(|n| set_group_req(n, group)).collect();
            match self.exchange(reqs) {
                Ok(results) => {
                    for (i, r) in results.into_iter().enumerate() {
                        let at = start * CHUNK + i;
                        match r {
                            Ok(_) => grouped.push(at),
                            Err(e) if e.errno() == Some(libc::ENODEV) => out[at] = Some(Ok(false)),
                            // Left to the one-by-one delete below.
                            Err(e) => tracing::debug!("{e}"),
                        }
                    }
                }
                Err(e) => tracing::debug!("{e}"),
            }
        }
        if !grouped.is_empty() {
            match self.group_holds_only(group, grouped.iter().map(|&i| names[i].as_str())) {
                Ok(true) => match self.ack(del_group_req(group)) {
                    Ok(()) => {
                        for &i in &grouped {
                            out[i] = Some(Ok(true));
                        }
                    }
                    Err(e) => tracing::debug!("{e}; deleting the links one by one"),
                },
                Ok(false) => tracing::warn!(
                    group,
                    "interface group holds a link nsnet did not put there; deleting the links one by one"
                ),
                Err(e) => tracing::debug!("{e}; deleting the links one by one"),
            }
        }
        names
            .iter()
            .zip(out)
            .map(|(name, done)| done.unwrap_or_else(|| self.del_link(name)))
            .collect()
    }

    /// Whether every link of the namespace in `group` is one of `ours`.
    fn group_holds_only<'a>(
        &mut self,
        group: u32,
        ours: impl Iterator<Item = &'a str>,
    ) -> Result<bool, NetlinkError> {
        let ours: std::collections::HashSet<&str> = ours.collect();
        for r in self.link_dump()? {
            let (name, g) =
                name_and_group(&r.payload).map_err(|e| NetlinkError::decode(LINK_DUMP, e))?;
            if g == group && !ours.contains(name.as_str()) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsFd;

    use super::*;
    use crate::netlink::VethSpec;
    use crate::testkit::{in_fresh_netns, new_netns_fd};

    fn veth(rtnl: &mut Rtnl, name: &str, peer: &str, peer_ns: Option<i32>) {
        rtnl.add_veth(&VethSpec {
            name: name.into(),
            alias: None,
            mtu: None,
            master: None,
            up: true,
            ipv6: false,
            peer_name: peer.into(),
            peer_netns: peer_ns,
            peer_mac: None,
        })
        .unwrap();
    }

    #[test]
    fn group_ids_are_never_the_default_group() {
        for _ in 0..100 {
            assert_ne!(fresh_group(), 0);
        }
    }

    #[test]
    fn deletes_many_links_and_their_peers_at_once() {
        crate::require_root!();
        in_fresh_netns(|| {
            use std::os::fd::AsRawFd;
            let other = new_netns_fd();
            let mut rtnl = Rtnl::open().unwrap();
            let mut names = Vec::new();
            for i in 0..20 {
                veth(
                    &mut rtnl,
                    &format!("bulk{i}"),
                    &format!("peer{i}"),
                    Some(other.as_fd().as_raw_fd()),
                );
                names.push(format!("bulk{i}"));
            }
            // A stranger and a missing name: the stranger stays, the missing one is reported.
            veth(&mut rtnl, "keep0", "keep1", None);
            names.push("missing0".into());
            let results = rtnl.del_links(&names);
            assert_eq!(results.len(), 21);
            assert!(results[..20].iter().all(|r| matches!(r, Ok(true))));
            assert!(matches!(results[20], Ok(false)));
            let left: Vec<String> = rtnl.links().unwrap().into_iter().map(|l| l.name).collect();
            assert!(left.iter().all(|n| !n.starts_with("bulk")), "{left:?}");
            assert!(left.contains(&"keep0".to_string()), "{left:?}");
            let mut theirs = Rtnl::open_in(other.as_fd()).unwrap();
            let peers: Vec<String> = theirs
                .links()
                .unwrap()
                .into_iter()
                .map(|l| l.name)
                .collect();
            assert!(peers.iter().all(|n| !n.starts_with("peer")), "{peers:?}");
        });
    }

    #[test]
    fn a_stranger_in_the_group_is_never_deleted() {
        crate::require_root!();
        in_fresh_netns(|| {
            let mut rtnl = Rtnl::open().unwrap();
            veth(&mut rtnl, "ours0", "ours1", None);
            veth(&mut rtnl, "theirs0", "theirs1", None);
            // The stranger sits in the group our next delete will pick.
            let group = fresh_group();
            rtnl.ack(set_group_req("theirs0", group)).unwrap();
            assert!(!rtnl.group_holds_only(group, ["ours0"].into_iter()).unwrap());
            rtnl.ack(set_group_req("ours0", group)).unwrap();
            assert!(!rtnl.group_holds_only(group, ["ours0"].into_iter()).unwrap());
            assert!(
                rtnl.group_holds_only(group, ["ours0", "theirs0"].into_iter())
                    .unwrap()
            );
            let results = rtnl.del_links(&["ours0".to_string()]);
            assert!(matches!(results[0], Ok(true)));
            assert!(rtnl.link("theirs0").unwrap().is_some());
            assert!(rtnl.link("ours0").unwrap().is_none());
        });
    }
}
