//! The name table from the store's rows.

use nsnet_core::dnsname::check_alias;
use nsnet_dns::{Entry, Key, Network, Table};
use nsnet_store::{DnsEndpointRow, DnsNetworkRow, Store, StoreError};

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

/// The responder's table, kept up to date by reading only what changed: each command changes
/// one endpoint or a few, and reading and indexing every name at each change made the
/// responder's work per change grow with the names served (O(N^2) over a fill of N
/// containers). A reload reads the DNS networks and the ids of their ready endpoints
/// (integers, in one indexed scan), then the rows of the new ids only; the table is updated
/// likewise ([`Table::update`]). A change of the networks themselves reads everything again.
#[derive(Default)]
pub struct Served {
    nets: Vec<DnsNetworkRow>,
    /// The endpoint ids served, ascending.
    ids: Vec<i64>,
    table: Table,
    loaded: bool,
}

impl Served {
    /// Brings the table up to date with the store, in one snapshot; returns it.
    pub fn reload(&mut self, store: &mut Store) -> Result<Table, StoreError> {
        store.read(|tx| {
            let nets = tx.dns_networks()?;
            if !self.loaded || nets != self.nets {
                let (nets, eps) = tx.dns_rows()?;
                self.ids = eps.iter().map(|e| e.id).collect();
                self.table = build(&nets, eps);
                self.nets = nets;
                self.loaded = true;
                return Ok(self.table.clone());
            }
            let ids = tx.dns_endpoint_ids()?;
            let (gone, new) = difference(&self.ids, &ids);
            if gone.is_empty() && new.is_empty() {
                return Ok(self.table.clone());
            }
            let added = tx.dns_endpoints(&new)?.into_iter().map(entry).collect();
            self.table = self.table.update(&gone, added);
            self.ids = ids;
            Ok(self.table.clone())
        })
    }
}

/// Of two ascending lists: what only `old` holds, and what only `new` holds.
fn difference(old: &[i64], new: &[i64]) -> (Vec<i64>, Vec<i64>) {
    let (mut gone, mut came) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        match (old.get(i), new.get(j)) {
            (Some(a), Some(b)) if a == b => {
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a < b => {
                gone.push(*a);
                i += 1;
            }
            (Some(a), None) => {
                gone.push(*a);
                i += 1;
            }
            (_, Some(b)) => {
                came.push(*b);
                j += 1;
            }
            (None, None) => break,
        }
    }
    (gone, came)
}

#[cfg(test)]
mod tests {
    use super::difference;

    #[test]
    fn difference_of_sorted_ids() {
        assert_eq!(
            difference(&[1, 2, 4, 7], &[2, 3, 4, 8, 9]),
            (vec![1, 7], vec![3, 8, 9])
        );
        assert_eq!(difference(&[], &[1]), (vec![], vec![1]));
        assert_eq!(difference(&[1], &[]), (vec![1], vec![]));
        assert_eq!(difference(&[5], &[5]), (vec![], vec![]));
    }
}
