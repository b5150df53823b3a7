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
            pid: 1,
            boot_id: "b".into(),
        }
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
            assert_eq!(
                format!("{:?}", inc.entries()),
                format!("{:?}", full.entries())
            );
            assert_eq!(inc.networks(), full.networks());
            assert_eq!(inc.entries().len(), want, "{:?}", inc.entries());
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
        store
            .write(|tx| {
                tx.delete_endpoint(b)?;
                tx.insert_network(&later, 1, "b")?;
                tx.set_network_ready(later.name())?;
                let e = tx.insert_endpoint(&endpoint(&later, "b", "10.3.0.2/24"))?;
                tx.set_endpoint_ready(e)
            })
            .unwrap();
        check(&mut store, &mut served, 2);
        check(&mut store, &mut served, 2);
    }

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
