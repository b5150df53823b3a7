//! The name table: which names exist on which network, and which networks a client shares.

use std::collections::HashMap;
use std::net::IpAddr;

/// A network with DNS on, as the table needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network {
    pub name: String,
    /// Gateway addresses: where the responder listens for this network.
    pub gateways: Vec<IpAddr>,
    /// Internal networks' clients get no forwarding.
    pub internal: bool,
}

/// One attachment: the names an endpoint answers to on one network, and its addresses there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub network: String,
    /// The namespace attached: a client sees the networks of every attachment of its
    /// namespace, whichever of its addresses it asks from.
    pub netns: String,
    /// Namespace (container) name first, then aliases.
    pub names: Vec<String>,
    pub addrs: Vec<IpAddr>,
}

/// Index of a network in the table.
type NetIx = usize;

/// Everything the responder serves, immutable once built (a reload builds a new one).
#[derive(Debug, Default)]
pub struct Table {
    networks: Vec<Network>,
    by_network_name: HashMap<String, NetIx>,
    by_gateway: HashMap<IpAddr, NetIx>,
    /// Networks each endpoint address is attached to (its source address when it asks).
    client_networks: HashMap<IpAddr, Vec<NetIx>>,
    /// (network, lowercase name) -> addresses.
    names: HashMap<(NetIx, String), Vec<IpAddr>>,
    /// (network, address) -> the endpoint's first name.
    reverse: HashMap<(NetIx, IpAddr), String>,
    entries: Vec<Entry>,
}

impl Table {
    /// Builds the table; entries of networks not listed are ignored.
    pub fn new(networks: Vec<Network>, entries: Vec<Entry>) -> Table {
        let mut t = Table {
            by_network_name: networks
                .iter()
                .enumerate()
                .map(|(i, n)| (n.name.to_ascii_lowercase(), i))
                .collect(),
            by_gateway: networks
                .iter()
                .enumerate()
                .flat_map(|(i, n)| n.gateways.iter().map(move |g| (*g, i)))
                .collect(),
            networks,
            ..Table::default()
        };
        let entries: Vec<(NetIx, Entry)> = entries
            .into_iter()
            .filter_map(|e| {
                let ix = *t.by_network_name.get(&e.network.to_ascii_lowercase())?;
                Some((ix, e))
            })
            .collect();
        let mut netns_networks: HashMap<&str, Vec<NetIx>> = HashMap::new();
        for (ix, e) in &entries {
            let nets = netns_networks.entry(e.netns.as_str()).or_default();
            if !nets.contains(ix) {
                nets.push(*ix);
            }
        }
        for (_, e) in &entries {
            for ip in &e.addrs {
                t.client_networks
                    .insert(*ip, netns_networks[e.netns.as_str()].clone());
            }
        }
        for (ix, e) in entries {
            for ip in &e.addrs {
                if let Some(first) = e.names.first() {
                    t.reverse.entry((ix, *ip)).or_insert_with(|| first.clone());
                }
            }
            for name in &e.names {
                let addrs = t.names.entry((ix, name.to_ascii_lowercase())).or_default();
                for ip in &e.addrs {
                    if !addrs.contains(ip) {
                        addrs.push(*ip);
                    }
                }
            }
            t.entries.push(e);
        }
        t
    }

    /// The networks served.
    pub fn networks(&self) -> &[Network] {
        &self.networks
    }

    /// The attachments served, in the order given.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Every address to listen on.
    pub fn listen_addrs(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self.by_gateway.keys().copied().collect();
        v.sort();
        v
    }

    /// Networks whose names `client` sees when it asks on `local` (a gateway): those it is
    /// attached to, or, for a source the table does not know (the host, a stale address),
    /// the network of the gateway it reached.
    pub fn scope(&self, client: IpAddr, local: IpAddr) -> Vec<NetIx> {
        match self.client_networks.get(&client) {
            Some(nets) => nets.clone(),
            None => self
                .by_gateway
                .get(&local)
                .map(|&ix| vec![ix])
                .unwrap_or_default(),
        }
    }

    /// Whether a client with this scope may have other names forwarded: not when every
    /// network it is on is internal.
    pub fn may_forward(&self, scope: &[NetIx]) -> bool {
        scope.iter().any(|&ix| !self.networks[ix].internal)
    }

    /// Addresses of `name` (lowercase, no trailing dot) in `scope`: a name on one of the
    /// networks, or NAME.NETWORK for a network of the scope. None when the name is unknown.
    pub fn lookup(&self, scope: &[NetIx], name: &str) -> Option<Vec<IpAddr>> {
        let mut found: Option<Vec<IpAddr>> = None;
        for &ix in scope {
            if let Some(addrs) = self.names.get(&(ix, name.to_string())) {
                merge(&mut found, addrs);
            }
        }
        if found.is_none()
            && let Some((host, net)) = name.rsplit_once('.')
            && let Some(&ix) = self.by_network_name.get(net)
            && scope.contains(&ix)
            && let Some(addrs) = self.names.get(&(ix, host.to_string()))
        {
            merge(&mut found, addrs);
        }
        found
    }

    /// The name of the endpoint holding `ip` on a network of `scope`.
    pub fn reverse(&self, scope: &[NetIx], ip: IpAddr) -> Option<&str> {
        scope
            .iter()
            .find_map(|&ix| self.reverse.get(&(ix, ip)))
            .map(String::as_str)
    }
}

/// Adds `addrs` to `found`, once each.
fn merge(found: &mut Option<Vec<IpAddr>>, addrs: &[IpAddr]) {
    let v = found.get_or_insert_with(Vec::new);
    for ip in addrs {
        if !v.contains(ip) {
            v.push(*ip);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Two networks; `web` on both, `db` on `back` only, `solo` on `front` only.
    pub(crate) fn sample() -> Table {
        Table::new(
            vec![
                Network {
                    name: "front".into(),
                    gateways: vec![ip("10.1.0.1"), ip("fd01::1")],
                    internal: false,
                },
                Network {
                    name: "back".into(),
                    gateways: vec![ip("10.2.0.1")],
                    internal: true,
                },
            ],
            vec![
                Entry {
                    network: "front".into(),
                    netns: "web".into(),
                    names: vec!["web".into(), "www".into()],
                    addrs: vec![ip("10.1.0.2"), ip("fd01::2")],
                },
                Entry {
                    network: "back".into(),
                    netns: "web".into(),
                    names: vec!["web".into()],
                    addrs: vec![ip("10.2.0.2")],
                },
                Entry {
                    network: "back".into(),
                    netns: "db".into(),
                    names: vec!["DB".into(), "postgres".into()],
                    addrs: vec![ip("10.2.0.3")],
                },
                Entry {
                    network: "front".into(),
                    netns: "solo".into(),
                    names: vec!["solo".into()],
                    addrs: vec![ip("10.1.0.4")],
                },
                Entry {
                    network: "gone".into(),
                    netns: "ghost".into(),
                    names: vec!["ghost".into()],
                    addrs: vec![ip("10.9.0.2")],
                },
            ],
        )
    }

    #[test]
    fn scope_follows_the_client_networks() {
        let t = sample();
        let web = t.scope(ip("10.1.0.2"), ip("10.1.0.1"));
        assert_eq!(
            web.len(),
            2,
            "web is on both networks, whichever address it asks from"
        );
        let solo = t.scope(ip("10.1.0.4"), ip("10.1.0.1"));
        assert_eq!(t.lookup(&solo, "db"), None, "db is on back only");
        assert_eq!(
            t.lookup(&solo, "web"),
            Some(vec![ip("10.1.0.2"), ip("fd01::2")])
        );
        let db = t.scope(ip("10.2.0.3"), ip("10.2.0.1"));
        assert_eq!(t.lookup(&db, "solo"), None);
        assert_eq!(t.lookup(&db, "web"), Some(vec![ip("10.2.0.2")]));
        // An unknown source sees the network of the gateway it asked.
        let host = t.scope(ip("192.0.2.7"), ip("10.2.0.1"));
        assert_eq!(t.lookup(&host, "postgres"), Some(vec![ip("10.2.0.3")]));
        assert!(t.scope(ip("192.0.2.7"), ip("192.0.2.1")).is_empty());
    }

    #[test]
    fn names_are_case_insensitive_and_qualified_by_network() {
        let t = sample();
        let db = t.scope(ip("10.2.0.3"), ip("10.2.0.1"));
        assert_eq!(
            t.lookup(&db, "db"),
            Some(vec![ip("10.2.0.3")]),
            "stored as DB"
        );
        assert_eq!(
            t.lookup(&db, "web.front"),
            None,
            "front is not in db's scope"
        );
        assert_eq!(t.lookup(&db, "web.back"), Some(vec![ip("10.2.0.2")]));
        let both = t.scope(ip("10.1.0.2"), ip("10.1.0.1"));
        assert_eq!(t.lookup(&both, "web.back"), Some(vec![ip("10.2.0.2")]));
        assert_eq!(
            t.lookup(&both, "web"),
            Some(vec![ip("10.1.0.2"), ip("fd01::2"), ip("10.2.0.2")])
        );
        assert_eq!(t.lookup(&both, "nope"), None);
        assert_eq!(
            t.lookup(&both, "ghost"),
            None,
            "entries of unknown networks are dropped"
        );
    }

    #[test]
    fn reverse_listen_and_forwarding() {
        let t = sample();
        let front = t.scope(ip("10.1.0.4"), ip("10.1.0.1"));
        assert_eq!(t.reverse(&front, ip("fd01::2")), Some("web"));
        assert_eq!(t.reverse(&front, ip("10.2.0.3")), None);
        assert_eq!(
            t.listen_addrs(),
            vec![ip("10.1.0.1"), ip("10.2.0.1"), ip("fd01::1")]
        );
        assert!(t.may_forward(&front));
        let back_only = t.scope(ip("10.2.0.3"), ip("10.2.0.1"));
        assert!(
            !t.may_forward(&back_only),
            "internal networks get no forwarding"
        );
    }
}
