//! The name table: which names exist on which network, and which networks a client shares.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

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

/// What identifies an entry across updates: the store's endpoint id (never reused), or its
/// position in the list given to [`Table::new`].
pub type Key = i64;

/// Everything the responder serves, immutable once built. An update ([`Table::update`]) makes
/// a new table that shares all but the changed part with the old one: a responder serving
/// thousands of names then spends per change what the change needs, not what the whole
/// table does (rebuilding 1000 entries was ~0.65 ms, at every `network connect`).
///
/// The entries live in immutable chunks, each indexed on its own; a new chunk holds what an
/// update added, and chunks of similar size are merged (a binary counter: O(log N) chunks,
/// each entry re-indexed O(log N) times over its life). A removed entry is marked gone until
/// its chunk is merged or the table compacted. Cloning a table copies a few pointers.
#[derive(Debug, Default, Clone)]
pub struct Table {
    nets: Arc<Nets>,
    chunks: Vec<Arc<Chunk>>,
    /// Entries removed since their chunk was built: (chunk serial, position).
    gone: Arc<HashSet<(u64, u32)>>,
    next_serial: u64,
}

#[derive(Debug, Default)]
struct Nets {
    networks: Vec<Network>,
    by_name: HashMap<String, NetIx>,
    by_gateway: HashMap<IpAddr, NetIx>,
}

/// Entries indexed together.
#[derive(Debug)]
struct Chunk {
    serial: u64,
    /// Sorted by key.
    entries: Vec<(Key, NetIx, Entry)>,
    /// Namespace -> positions of its attachments.
    netns: HashMap<String, Vec<u32>>,
    /// Endpoint address -> positions of the entries holding it.
    addrs: HashMap<IpAddr, Vec<u32>>,
    /// (network, lowercase name) -> positions of the entries answering to it.
    names: HashMap<(NetIx, String), Vec<u32>>,
}

impl Chunk {
    fn new(serial: u64, mut entries: Vec<(Key, NetIx, Entry)>) -> Chunk {
        entries.sort_by_key(|(k, _, _)| *k);
        let mut c = Chunk {
            serial,
            netns: HashMap::with_capacity(entries.len()),
            addrs: HashMap::with_capacity(entries.len()),
            names: HashMap::with_capacity(entries.len()),
            entries: Vec::new(),
        };
        for (pos, (_, ix, e)) in entries.iter().enumerate() {
            let pos = pos as u32;
            c.netns.entry(e.netns.clone()).or_default().push(pos);
            for ip in &e.addrs {
                push_once(c.addrs.entry(*ip).or_default(), pos);
            }
            for name in &e.names {
                push_once(
                    c.names.entry((*ix, name.to_ascii_lowercase())).or_default(),
                    pos,
                );
            }
        }
        c.entries = entries;
        c
    }

    fn position(&self, key: Key) -> Option<u32> {
        self.entries
            .binary_search_by_key(&key, |(k, _, _)| *k)
            .ok()
            .map(|p| p as u32)
    }
}

fn push_once(v: &mut Vec<u32>, pos: u32) {
    if v.last() != Some(&pos) {
        v.push(pos);
    }
}

impl Table {
    /// Builds the table; entries of networks not listed are ignored. Their keys are their
    /// positions in `entries`.
    pub fn new(networks: Vec<Network>, entries: Vec<Entry>) -> Table {
        Table::with_keys(
            networks,
            entries
                .into_iter()
                .enumerate()
                .map(|(i, e)| (i as Key, e))
                .collect(),
        )
    }

    /// Builds the table from entries with their keys (each key once).
    pub fn with_keys(networks: Vec<Network>, entries: Vec<(Key, Entry)>) -> Table {
        let nets = Nets {
            by_name: networks
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
        };
        let mut t = Table {
            nets: Arc::new(nets),
            ..Table::default()
        };
        t.add_chunk(entries);
        t
    }

    /// The same networks with the entries of `removed` gone and `added` in (a key removed and
    /// added in one update is replaced). Costs about what the change holds, plus the
    /// occasional merge of chunks.
    pub fn update(&self, removed: &[Key], added: Vec<(Key, Entry)>) -> Table {
        let mut t = self.clone();
        let replaced = added.iter().map(|(k, _)| *k);
        let mut gone: Option<HashSet<(u64, u32)>> = None;
        for key in removed.iter().copied().chain(replaced) {
            for c in &t.chunks {
                if let Some(pos) = c.position(key)
                    && !t.gone.contains(&(c.serial, pos))
                {
                    gone.get_or_insert_with(|| (*t.gone).clone())
                        .insert((c.serial, pos));
                }
            }
        }
        if let Some(gone) = gone {
            t.gone = Arc::new(gone);
        }
        t.add_chunk(added);
        let total: usize = t.chunks.iter().map(|c| c.entries.len()).sum();
        if t.gone.len() * 2 > total {
            t.merge_from(0);
        }
        t
    }

    /// Indexes `entries` as a new chunk, then merges the last chunks while the one before is
    /// at most twice as large.
    fn add_chunk(&mut self, entries: Vec<(Key, Entry)>) {
        let entries: Vec<(Key, NetIx, Entry)> = entries
            .into_iter()
            .filter_map(|(k, e)| {
                let ix = *self.nets.by_name.get(&e.network.to_ascii_lowercase())?;
                Some((k, ix, e))
            })
            .collect();
        if entries.is_empty() {
            return;
        }
        self.chunks
            .push(Arc::new(Chunk::new(self.next_serial, entries)));
        self.next_serial += 1;
        let mut from = self.chunks.len() - 1;
        while from > 0
            && self.chunks[from - 1].entries.len()
                <= 2 * self.chunks[from..]
                    .iter()
                    .map(|c| c.entries.len())
                    .sum::<usize>()
        {
            from -= 1;
        }
        if from + 1 < self.chunks.len() {
            self.merge_from(from);
        }
    }

    /// Replaces the chunks from `from` on by one holding their live entries.
    fn merge_from(&mut self, from: usize) {
        let merged: Vec<Arc<Chunk>> = self.chunks.drain(from..).collect();
        let mut gone = (*self.gone).clone();
        let mut entries = Vec::new();
        for c in &merged {
            for (pos, (k, ix, e)) in c.entries.iter().enumerate() {
                if !gone.remove(&(c.serial, pos as u32)) {
                    entries.push((*k, *ix, e.clone()));
                }
            }
        }
        self.gone = Arc::new(gone);
        if !entries.is_empty() {
            self.chunks
                .push(Arc::new(Chunk::new(self.next_serial, entries)));
            self.next_serial += 1;
        }
    }

    /// The live entries at positions `positions` of `chunk`.
    fn live<'a>(
        &'a self,
        chunk: &'a Chunk,
        positions: &'a [u32],
    ) -> impl Iterator<Item = &'a (Key, NetIx, Entry)> + 'a {
        positions
            .iter()
            .filter(move |p| !self.gone.contains(&(chunk.serial, **p)))
            .map(move |p| &chunk.entries[*p as usize])
    }

    /// Live entries found by `index` in each chunk, in key order.
    fn gather<'a>(
        &'a self,
        index: impl Fn(&'a Chunk) -> Option<&'a Vec<u32>>,
    ) -> Vec<&'a (Key, NetIx, Entry)> {
        let mut found: Vec<&(Key, NetIx, Entry)> = Vec::new();
        for c in &self.chunks {
            if let Some(positions) = index(c) {
                found.extend(self.live(c, positions));
            }
        }
        if self.chunks.len() > 1 {
            found.sort_by_key(|(k, _, _)| *k);
        }
        found
    }

    /// The networks served.
    pub fn networks(&self) -> &[Network] {
        &self.nets.networks
    }

    /// The attachments served, in key order.
    pub fn entries(&self) -> Vec<&Entry> {
        let mut all: Vec<&(Key, NetIx, Entry)> = Vec::new();
        for c in &self.chunks {
            for (pos, item) in c.entries.iter().enumerate() {
                if !self.gone.contains(&(c.serial, pos as u32)) {
                    all.push(item);
                }
            }
        }
        all.sort_by_key(|(k, _, _)| *k);
        all.into_iter().map(|(_, _, e)| e).collect()
    }

    /// Every address to listen on.
    pub fn listen_addrs(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self.nets.by_gateway.keys().copied().collect();
        v.sort();
        v
    }

    /// Networks whose names `client` sees when it asks on `local` (a gateway): those its
    /// namespace is attached to (the namespace of the last entry holding the address), or,
    /// for a source the table does not know (the host, a stale address), the network of the
    /// gateway it reached.
    pub fn scope(&self, client: IpAddr, local: IpAddr) -> Vec<NetIx> {
        let holders = self.gather(|c| c.addrs.get(&client));
        let Some((_, _, holder)) = holders.last() else {
            return self
                .nets
                .by_gateway
                .get(&local)
                .map(|&ix| vec![ix])
                .unwrap_or_default();
        };
        let mut nets = Vec::new();
        for (_, ix, _) in self.gather(|c| c.netns.get(&holder.netns)) {
            if !nets.contains(ix) {
                nets.push(*ix);
            }
        }
        nets
    }

    /// Whether a client with this scope may have other names forwarded: not when every
    /// network it is on is internal.
    pub fn may_forward(&self, scope: &[NetIx]) -> bool {
        scope.iter().any(|&ix| !self.nets.networks[ix].internal)
    }

    /// Addresses of `name` on network `ix`, in key order, once each.
    fn addresses(&self, ix: NetIx, name: &str) -> Option<Vec<IpAddr>> {
        let key = (ix, name.to_string());
        let entries = self.gather(|c| c.names.get(&key));
        if entries.is_empty() {
            return None;
        }
        let mut found = None;
        for (_, _, e) in entries {
            merge(&mut found, &e.addrs);
        }
        found
    }

    /// Addresses of `name` (lowercase, no trailing dot) in `scope`: a name on one of the
    /// networks, or NAME.NETWORK for a network of the scope. None when the name is unknown.
    pub fn lookup(&self, scope: &[NetIx], name: &str) -> Option<Vec<IpAddr>> {
        let mut found: Option<Vec<IpAddr>> = None;
        for &ix in scope {
            if let Some(addrs) = self.addresses(ix, name) {
                merge(&mut found, &addrs);
            }
        }
        if found.is_none()
            && let Some((host, net)) = name.rsplit_once('.')
            && let Some(&ix) = self.nets.by_name.get(net)
            && scope.contains(&ix)
            && let Some(addrs) = self.addresses(ix, host)
        {
            merge(&mut found, &addrs);
        }
        found
    }

    /// The name of the endpoint holding `ip` on a network of `scope` (the first entry with a
    /// name there).
    pub fn reverse(&self, scope: &[NetIx], ip: IpAddr) -> Option<&str> {
        let holders = self.gather(|c| c.addrs.get(&ip));
        scope.iter().find_map(|&ix| {
            holders
                .iter()
                .filter(|(_, on, _)| *on == ix)
                .find_map(|(_, _, e)| e.names.first())
                .map(String::as_str)
        })
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

    /// Everything a responder asks of a table, for every address and name of a small pool.
    fn answers(t: &Table) -> Vec<String> {
        let mut out = vec![format!("{:?}", t.entries())];
        let ips: Vec<IpAddr> = (1..12).map(|i| ip(&format!("10.1.0.{i}"))).collect();
        let names = ["a", "b", "c", "x", "a.one", "b.two", "c.one"];
        for client in &ips {
            for local in [ip("10.1.0.1"), ip("10.2.0.1")] {
                let scope = t.scope(*client, local);
                out.push(format!(
                    "{client} {local} {scope:?} {}",
                    t.may_forward(&scope)
                ));
                for n in names {
                    out.push(format!("{n}: {:?}", t.lookup(&scope, n)));
                }
                for target in &ips {
                    out.push(format!("{target}: {:?}", t.reverse(&scope, *target)));
                }
            }
        }
        out
    }

    /// A table updated change by change answers exactly as one built from the same entries
    /// at once, through adds, removals, re-adds of a key, merges and compactions.
    #[test]
    fn updates_answer_as_a_rebuild() {
        let nets = vec![
            Network {
                name: "one".into(),
                gateways: vec![ip("10.1.0.1")],
                internal: false,
            },
            Network {
                name: "two".into(),
                gateways: vec![ip("10.2.0.1")],
                internal: true,
            },
        ];
        // A small deterministic generator (no randomness crate in this one).
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut live: std::collections::BTreeMap<Key, Entry> = Default::default();
        let mut t = Table::with_keys(nets.clone(), Vec::new());
        let mut key: Key = 0;
        for step in 0..400 {
            let mut removed = Vec::new();
            let mut added = Vec::new();
            for _ in 0..=next(3) {
                if next(3) == 0 && !live.is_empty() {
                    let k = *live.keys().nth(next(live.len() as u64) as usize).unwrap();
                    if added.iter().any(|(a, _)| *a == k) {
                        continue;
                    }
                    live.remove(&k);
                    removed.push(k);
                } else {
                    // Now and then the same key again (an endpoint back to ready).
                    let k = if next(8) == 0 && key > 0 {
                        next(key as u64) as Key
                    } else {
                        key += 1;
                        key
                    };
                    if removed.contains(&k) || added.iter().any(|(a, _)| *a == k) {
                        continue;
                    }
                    let e = Entry {
                        network: ["one", "TWO", "gone"][next(3) as usize].into(),
                        netns: ["a", "b", "c"][next(3) as usize].into(),
                        names: [vec!["a".into()], vec!["b".into(), "x".into()], vec![]]
                            [next(3) as usize]
                            .clone(),
                        addrs: vec![ip(&format!("10.1.0.{}", 2 + next(10)))],
                    };
                    live.insert(k, e.clone());
                    added.push((k, e));
                }
            }
            t = t.update(&removed, added);
            let rebuilt = Table::with_keys(
                nets.clone(),
                live.iter().map(|(k, e)| (*k, e.clone())).collect(),
            );
            assert_eq!(answers(&t), answers(&rebuilt), "step {step}");
            assert!(t.chunks.len() <= 12, "{} chunks", t.chunks.len());
        }
    }
}
