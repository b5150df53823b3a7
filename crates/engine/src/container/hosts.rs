//! `/etc/netns/NAME/hosts` of containers: each lists the containers that share a network with
//! it, by name, and is rewritten (in place, under the store's write lock) whenever one joins
//! or leaves.

use std::collections::BTreeSet;
use std::net::IpAddr;

use nsnet_core::container::{HostsPeer, hosts_file};
use nsnet_core::names::NetName;
use nsnet_store::{ContainerState, Tx};
use nsnet_sys::kernel::Kernel;

use crate::{Engine, EngineError};

/// Containers (by name) with a namespace that holds an endpoint on one of `networks`.
fn containers_on(tx: &Tx<'_>, networks: &[NetName]) -> Result<BTreeSet<String>, EngineError> {
    let mut out = BTreeSet::new();
    for n in networks {
        for e in tx.endpoints_of_network(n)? {
            if tx
                .container(&e.netns)?
                .is_some_and(|c| c.state != ContainerState::Exited)
            {
                out.insert(e.netns);
            }
        }
    }
    Ok(out)
}

/// The hosts file of container `name` from the store.
fn render(tx: &Tx<'_>, name: &str, hostname: &str) -> Result<String, EngineError> {
    let mine = tx.endpoints_in_netns(name)?;
    let own: Vec<IpAddr> = mine.iter().flat_map(|e| e.ips()).collect();
    let networks: Vec<NetName> = mine.iter().map(|e| e.network.clone()).collect();
    let mut peers = Vec::new();
    for peer in containers_on(tx, &networks)? {
        if peer == name {
            continue;
        }
        let addrs = tx
            .endpoints_in_netns(&peer)?
            .iter()
            .filter(|e| networks.contains(&e.network))
            .flat_map(|e| e.ips())
            .collect();
        peers.push(HostsPeer { name: peer, addrs });
    }
    Ok(hosts_file(name, hostname, &own, &peers))
}

impl<K: Kernel> Engine<K> {
    /// Rewrites the hosts files of every container on `networks`, and of `also`.
    pub(crate) fn refresh_hosts(
        &mut self,
        networks: &[NetName],
        also: Option<&str>,
    ) -> Result<(), EngineError> {
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            let mut names = containers_on(tx, networks)?;
            names.extend(also.map(str::to_string));
            for name in names {
                let Some(row) = tx.container(&name)? else {
                    continue;
                };
                // A namespace deleted behind nsnet's back: `gc` will collect the container.
                if !kernel.netns_exists(&nsnet_core::ops::NsRef::Named(name.clone())) {
                    continue;
                }
                let text = render(tx, &name, &row.hostname)?;
                kernel.write_etc(&name, "hosts", &text)?;
            }
            Ok(())
        })
    }
}
