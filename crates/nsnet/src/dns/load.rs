//! The name table from the store's rows.

use nsnet_core::dnsname::check_alias;
use nsnet_dns::{Entry, Network, Table};
use nsnet_store::{Store, StoreError};

/// Everything the responder serves, read in one snapshot.
pub fn table(store: &mut Store) -> Result<Table, StoreError> {
    let (nets, eps) = store.read(|tx| tx.dns_rows())?;
    let networks = nets
        .into_iter()
        .map(|n| Network {
            name: n.name,
            gateways: n.gateways,
            internal: n.internal,
        })
        .collect();
    let entries = eps
        .into_iter()
        .map(|e| {
            // A CNI namespace is a path, not a name: only its aliases are answered.
            let mut names: Vec<String> = std::iter::once(e.netns.clone())
                .filter(|n| check_alias(n).is_ok())
                .collect();
            names.extend(e.aliases.into_iter().filter(|a| *a != e.netns));
            Entry {
                network: e.network,
                netns: e.netns,
                names,
                addrs: e.addrs,
            }
        })
        .collect();
    Ok(Table::new(networks, entries))
}
