//! The name table from the store's rows.

use std::collections::{BTreeMap, BTreeSet};

use nsnet_core::dnsname::check_alias;
use nsnet_dns::{Entry, Key, Network, Table};
use nsnet_store::{DnsEndpointRow, DnsNetworkRow, Store, StoreError, Tx};

/// Everything the responder serves, read in one snapshot.
pub fn table(store: &mut Store) -> Result<Table, StoreError> {
    let (nets, eps) = store.read(|tx| tx.dns_rows())?;
    Ok(build(&nets, eps))
}

fn build(nets: &[DnsNetworkRow], eps: Vec<DnsEndpointRow>) -> Table {
    Table::with_keys(networks(nets), eps.into_iter().map(entry).collect())
}

fn networks(nets: &[DnsNetworkRow]) -> Vec<Network> {
    nets.iter()
        .map(|n| Network {
            name: n.name.clone(),
            gateways: n.gateways.clone(),
            internal: n.internal,
        })
        .collect()
}

fn entry(e: DnsEndpointRow) -> (Key, Entry) {
    // A CNI namespace is a path, not a name: only its aliases are answered.
    let mut names: Vec<String> = std::iter::once(e.netns.clone())
        .filter(|n| check_alias(n).is_ok())
        .collect();
    names.extend(e.aliases.into_iter().filter(|a| *a != e.netns));
    (
        e.id,
        Entry {
            network: e.network,
            netns: e.netns,
            names,
            addrs: e.addrs,
        },
    )
}

/// How an endpoint row stands for the responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    /// Ready, on a ready DNS network: its names are served.
    Served,
    /// Being made or removed: it may change state any time.
    Pending,
    /// Ready on a network without DNS: changes only with its network (then all is read).
    Other,
}

fn row(ready: bool, dns: bool) -> Row {
    match (ready, dns) {
        (false, _) => Row::Pending,
        (true, true) => Row::Served,
        (true, false) => Row::Other,
    }
}

/// The responder's table, kept up to date by reading only what changed. Each command changes
/// one endpoint or a few, and reading and indexing every name at each change made the
/// responder's work per change grow with the names served (O(N^2) over a fill of N
/// containers: 1.2 s of CPU for 1000). A reload reads the DNS networks, the endpoints above
/// the highest id seen, the state of those seen in passing (`creating`, `removing`), the
/// count of endpoints and the count of removals ever started. Only when the count of
/// endpoints says a row went that was neither new nor pending (a removal between two
/// reloads), or the count of removals says a ready row left the ready state (a removal under
/// way, or one whose remover died), does it compare the states of all endpoints (integers,
/// one scan). So every reload serves what a full read would: a name whose removal started is
/// not served after the next reload. The rows of endpoints to serve are then read, and the
/// table updated ([`Table::update`]). A change of the networks themselves reads everything.
#[derive(Default)]
pub struct Served {
    nets: Vec<DnsNetworkRow>,
    rows: BTreeMap<i64, Row>,
    pending: BTreeSet<i64>,
    table: Table,
    /// Removals of ready endpoints started, ever, as of the last reload (None before it).
    removals: Option<i64>,
    /// Reloads that compared every endpoint.
    #[cfg(test)]
    comparisons: usize,
}

impl Served {
    /// Brings the table up to date with the store, in one snapshot; returns it.
    pub fn reload(&mut self, store: &mut Store) -> Result<Table, StoreError> {
        store.read(|tx| {
            let nets = tx.dns_networks()?;
            let removals = tx.endpoint_removals_started()?;
            if self.removals.is_none() || nets != self.nets {
                let (nets, eps) = tx.dns_rows()?;
                let rows: BTreeMap<i64, Row> = tx
                    .endpoint_states(i64::MIN)?
                    .into_iter()
                    .map(|(id, ready, dns)| (id, row(ready, dns)))
                    .collect();
                self.pending = pending_of(&rows);
                self.rows = rows;
                self.table = build(&nets, eps);
                self.nets = nets;
                self.removals = Some(removals);
                return Ok(self.table.clone());
            }
            // A ready row that left the ready state is among neither the new nor the pending
            // ones: only comparing all finds which.
            let seen = match self.removals == Some(removals) {
                true => self.seen_changes(tx)?,
                false => None,
            };
            let changes = match seen {
                Some(changes) => changes,
                None => {
                    #[cfg(test)]
                    {
                        self.comparisons += 1;
                    }
                    self.all_changes(tx)?
                }
            };
            let (mut gone, mut came) = (Vec::new(), Vec::new());
            for (id, now) in &changes {
                let was = self.rows.get(id).copied();
                if was == Some(Row::Served) && *now != Some(Row::Served) {
                    gone.push(*id);
                }
                if *now == Some(Row::Served) && was != Some(Row::Served) {
                    came.push(*id);
                }
            }
            let added = tx.dns_endpoints(&came)?;
            // Only now that nothing can fail: a count taken before a failed read would make
            // the next reload skip the comparison that finds the row being removed.
            self.removals = Some(removals);
            for (id, now) in changes {
                match now {
                    Some(r) => self.rows.insert(id, r),
                    None => self.rows.remove(&id),
                };
                if now == Some(Row::Pending) {
                    self.pending.insert(id);
                } else {
                    self.pending.remove(&id);
                }
            }
            if !gone.is_empty() || !added.is_empty() {
                self.table = self
                    .table
                    .update(&gone, added.into_iter().map(entry).collect());
            }
            Ok(self.table.clone())
        })
    }

    /// The changes among new and pending endpoints (None: gone), or None when the count of
    /// endpoints says that another one went too.
    fn seen_changes(&self, tx: &Tx<'_>) -> Result<Option<Changes>, StoreError> {
        let after = self.rows.keys().next_back().copied().unwrap_or(i64::MIN);
        let mut changes = Changes::new();
        for (id, ready, dns) in tx.endpoint_states(after)? {
            changes.insert(id, Some(row(ready, dns)));
        }
        for &id in &self.pending {
            let now = tx.endpoint_state(id)?.map(|(ready, dns)| row(ready, dns));
            if now != Some(Row::Pending) {
                changes.insert(id, now);
            }
        }
        let came = changes.keys().filter(|id| !self.rows.contains_key(id));
        let went = changes.values().filter(|now| now.is_none());
        let expected = self.rows.len() + came.count() - went.count();
        Ok((tx.endpoint_count()? == expected as i64).then_some(changes))
    }

    /// The changes found by comparing the state of every endpoint.
    fn all_changes(&self, tx: &Tx<'_>) -> Result<Changes, StoreError> {
        let now: BTreeMap<i64, Row> = tx
            .endpoint_states(i64::MIN)?
            .into_iter()
            .map(|(id, ready, dns)| (id, row(ready, dns)))
            .collect();
        let mut changes = Changes::new();
        for (id, was) in &self.rows {
            let is = now.get(id).copied();
            if is != Some(*was) {
                changes.insert(*id, is);
            }
        }
        for (id, is) in now {
            if !self.rows.contains_key(&id) {
                changes.insert(id, Some(is));
            }
        }
        Ok(changes)
    }
}

/// Endpoint id -> its state now (None: gone).
type Changes = BTreeMap<i64, Option<Row>>;

fn pending_of(rows: &BTreeMap<i64, Row>) -> BTreeSet<i64> {
    rows.iter()
        .filter(|(_, r)| **r == Row::Pending)
        .map(|(id, _)| *id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use nsnet_core::model::NetworkSpec;
    use nsnet_core::names::{IfName, NetName, host_veth};
    use nsnet_store::NewEndpoint;

    fn net(name: &str, cidr: &str, dns: bool) -> NetworkSpec {
        NetworkSpec::builder(NetName::new(name).unwrap())
            .subnets([cidr.parse().unwrap()])
            .dns(dns)
            .build()
            .unwrap()
    }

    fn endpoint(spec: &NetworkSpec, ns: &str, addr: &str) -> NewEndpoint {
        let eth0 = IfName::new("eth0").unwrap();
        NewEndpoint {
            network: spec.name().clone(),
            netns: ns.to_string(),
            host_ifname: host_veth(spec.name(), ns, &eth0),
            ifname: eth0,
            mac: None,
            addrs: vec![addr.parse().unwrap()],
            container_id: None,
            no_default_route: false,
            pid: 1,
            boot_id: "b".into(),
        }
    }

    /// A ready endpoint whose removal started (its remover still at work, or dead) is not
    /// served after the next reload, though its row is still there; a connect in between is
    /// read incrementally, the removal by comparing all.
    #[test]
    fn a_removal_started_between_reloads_is_not_served_after_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut served = Served::default();
        let lan = net("lan", "10.1.0.0/24", true);
        let a = store
            .write(|tx| {
                tx.insert_network(&lan, 1, "b")?;
                tx.set_network_ready(lan.name())?;
                let a = tx.insert_endpoint(&endpoint(&lan, "a", "10.1.0.2/24"))?;
                tx.set_endpoint_ready(a)?;
                Ok::<_, StoreError>(a)
            })
            .unwrap();
        assert_eq!(served.reload(&mut store).unwrap().entries().len(), 1);
        store
            .write(|tx| {
                let b = tx.insert_endpoint(&endpoint(&lan, "b", "10.1.0.3/24"))?;
                tx.set_endpoint_ready(b)
            })
            .unwrap();
        assert_eq!(served.reload(&mut store).unwrap().entries().len(), 2);
        assert_eq!(served.comparisons, 0, "a connect is read incrementally");
        store
            .write(|tx| tx.mark_endpoint_removing(a, 1, "b"))
            .unwrap();
        let table = served.reload(&mut store).unwrap();
        let names: Vec<_> = table.entries().iter().map(|e| e.netns.clone()).collect();
        assert_eq!(names, ["b"]);
        assert_eq!(served.comparisons, 1);
        // Nothing changed since: the next reload compares nothing.
        assert_eq!(served.reload(&mut store).unwrap().entries().len(), 1);
        assert_eq!(served.comparisons, 1);
    }

    /// After each change, what the responder serves (read incrementally) is what a full read
    /// of the store gives: endpoints coming, becoming ready, being removed, aliases, networks
    /// without DNS, networks added.
    #[test]
    fn incremental_reloads_serve_what_a_full_read_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let mut served = Served::default();
        let lan = net("lan", "10.1.0.0/24", true);
        let quiet = net("quiet", "10.2.0.0/24", false);
        let later = net("later", "10.3.0.0/24", true);
        let check = |store: &mut Store, served: &mut Served, want: usize| {
            let inc = served.reload(store).unwrap();
            let full = table(store).unwrap();
            assert_eq!(inc.networks(), full.networks());
            assert_eq!(inc.entries().len(), want, "{:?}", inc.entries());
            if want == full.entries().len() {
                assert_eq!(
                    format!("{:?}", inc.entries()),
                    format!("{:?}", full.entries())
                );
            }
        };
        check(&mut store, &mut served, 0);
        let (a, b) = store
            .write(|tx| {
                for n in [&lan, &quiet] {
                    tx.insert_network(n, 1, "b")?;
                    tx.set_network_ready(n.name())?;
                }
                let a = tx.insert_endpoint(&endpoint(&lan, "a", "10.1.0.2/24"))?;
                tx.set_endpoint_ready(a)?;
                let b = tx.insert_endpoint(&endpoint(&lan, "b", "10.1.0.3/24"))?;
                let c = tx.insert_endpoint(&endpoint(&quiet, "c", "10.2.0.2/24"))?;
                tx.set_endpoint_ready(c)?;
                Ok::<_, StoreError>((a, b))
            })
            .unwrap();
        check(&mut store, &mut served, 1);
        store.write(|tx| tx.set_endpoint_ready(b)).unwrap();
        check(&mut store, &mut served, 2);
        store
            .write(|tx| tx.mark_endpoint_removing(a, 1, "b"))
            .unwrap();
        check(&mut store, &mut served, 1);
        store
            .write(|tx| {
                tx.delete_endpoint(a)?;
                let d = tx.insert_endpoint(&endpoint(&lan, "d", "10.1.0.4/24"))?;
                tx.insert_aliases(d, &["db".to_string()])?;
                tx.set_endpoint_ready(d)?;
                Ok::<_, StoreError>(())
            })
            .unwrap();
        check(&mut store, &mut served, 2);
        // A pending endpoint that goes, and one made and removed between two reloads.
        store
            .write(|tx| {
                let e = tx.insert_endpoint(&endpoint(&lan, "e", "10.1.0.5/24"))?;
                tx.set_endpoint_ready(e)?;
                tx.insert_endpoint(&endpoint(&lan, "f", "10.1.0.6/24"))
            })
            .unwrap();
        check(&mut store, &mut served, 3);
        store
            .write(|tx| {
                let gone = tx.endpoints_in_netns("f")?;
                tx.delete_endpoint(gone[0].id)?;
                let g = tx.insert_endpoint(&endpoint(&lan, "g", "10.1.0.7/24"))?;
                tx.set_endpoint_ready(g)?;
                tx.delete_endpoint(g)
            })
            .unwrap();
        check(&mut store, &mut served, 3);
        store
            .write(|tx| {
                tx.delete_endpoint(b)?;
                tx.insert_network(&later, 1, "b")?;
                tx.set_network_ready(later.name())?;
                let e = tx.insert_endpoint(&endpoint(&later, "b", "10.3.0.2/24"))?;
                tx.set_endpoint_ready(e)
            })
            .unwrap();
        check(&mut store, &mut served, 3);
        check(&mut store, &mut served, 3);
    }
}
