//! Named network namespaces, and `inspect` of one.

use nsnet_core::names::NsName;
use nsnet_core::ops::NsRef;
use nsnet_sys::kernel::Kernel;

use crate::network::{endpoint_view, primary_in};
use crate::views::{NetnsDetail, NetnsSummary, RouteEntry};
use crate::{Engine, EngineError};

impl<K: Kernel> Engine<K> {
    /// Creates a namespace (iproute2-compatible) with `lo` up.
    pub fn netns_add(&mut self, name: &NsName) -> Result<(), EngineError> {
        if self.kernel.netns_exists(&NsRef::Named(name.to_string())) {
            return Err(EngineError::Exists {
                kind: "netns",
                name: name.to_string(),
            });
        }
        self.kernel.create_netns(name.as_str())?;
        Ok(())
    }

    /// Every namespace under /run/netns (made by nsnet or not), with nsnet's use of it.
    pub fn netns_ls(&mut self) -> Result<Vec<NetnsSummary>, EngineError> {
        let names = self.kernel.list_netns()?;
        self.store.read(|tx| {
            names
                .into_iter()
                .map(|name| {
                    Ok(NetnsSummary {
                        endpoints: tx.endpoints_in_netns(&name)?.len(),
                        links: tx.links_in_netns(&name)?.len(),
                        name,
                    })
                })
                .collect()
        })
    }

    /// Removes a namespace after disconnecting its endpoints and removing its links and routes.
    /// Removing a namespace that does not exist is not an error when nsnet has nothing left in
    /// it either.
    pub fn netns_rm(&mut self, name: &NsName) -> Result<(), EngineError> {
        let key = name.to_string();
        let (endpoints, links) = self.store.read(|tx| {
            Ok::<_, EngineError>((tx.endpoints_in_netns(&key)?, tx.links_in_netns(&key)?))
        })?;
        let mut errors = Vec::new();
        // All of its endpoints together (see `bulk`): one claim, one firewall transaction,
        // one unregister batch, one row deletion. No other endpoint takes over the default
        // routes of a namespace that goes.
        let ids: Vec<i64> = endpoints.iter().map(|e| e.id).collect();
        if let Err(err) = self.remove_endpoints(&ids, false) {
            errors.push(err.to_string());
        }
        for l in links {
            if let Err(err) = self.remove_link(l.id) {
                errors.push(err.to_string());
            }
        }
        self.store.write(|tx| tx.delete_routes_in_netns(&key))?;
        let existed = match self.kernel.delete_netns(&key) {
            Ok(existed) => existed,
            Err(err) => {
                errors.push(err.to_string());
                true
            }
        };
        if !errors.is_empty() {
            return Err(EngineError::Teardown {
                op: format!("remove netns {key}"),
                errors,
            });
        }
        if !existed {
            return Err(EngineError::not_found("netns", key));
        }
        Ok(())
    }

    /// Interfaces, addresses, routes, networks and links of a namespace.
    pub fn inspect_netns(&mut self, ns: &NsRef) -> Result<NetnsDetail, EngineError> {
        if !self.kernel.netns_exists(ns) {
            return Err(EngineError::not_found("netns", ns));
        }
        let key = ns.to_string();
        let view = self.kernel.view(ns)?;
        let (networks, links, routes) = self.store.read(|tx| {
            let eps = tx.endpoints_in_netns(&key)?;
            let primary = primary_in(tx, &eps)?;
            let networks = eps
                .iter()
                .map(|e| endpoint_view(tx, e, primary))
                .collect::<Result<Vec<_>, _>>()?;
            let links: Vec<_> = tx
                .links_in_netns(&key)?
                .iter()
                .map(crate::link::link_view)
                .collect();
            Ok::<_, EngineError>((networks, links, tx.routes_in_netns(&key)?))
        })?;
        let routes = view
            .routes
            .into_iter()
            .map(|r| {
                let managed_by = if routes
                    .iter()
                    .any(|m| m.dest == r.dest && Some(m.via) == r.via)
                {
                    Some("route".to_string())
                } else {
                    networks
                        .iter()
                        .find(|e| {
                            r.dev.as_deref() == Some(e.ifname.as_str()) && r.dest.prefix_len() == 0
                        })
                        .map(|e| format!("network {}", e.network))
                };
                RouteEntry {
                    route: r,
                    managed_by,
                }
            })
            .collect();
        Ok(NetnsDetail {
            name: key,
            interfaces: view.interfaces,
            routes,
            networks,
            links,
        })
    }
}
