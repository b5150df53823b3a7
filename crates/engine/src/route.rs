//! Extra routes inside a namespace: the seed's `ip route add 192.168.1.0/24 via 192.168.15.5`.

use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::plan::default_dest;
use nsnet_store::RouteRow;
use nsnet_sys::kernel::{FailKind, Kernel};

use crate::conflict::Conflict;
use crate::network::ns_key;
use crate::views::{RouteAdded, RouteEntry};
use crate::{Engine, EngineError};

/// Parses a route destination: a CIDR, or `default` for the family of `via`.
pub fn route_dest(dest: &str, via: IpAddr) -> Result<IpNet, nsnet_core::CoreError> {
    if dest == "default" {
        return Ok(default_dest(via));
    }
    nsnet_core::model::parse_cidr("route destination", dest)
}

impl<K: Kernel> Engine<K> {
    /// Adds a route through a gateway inside a namespace and records it.
    pub fn route_add(
        &mut self,
        ns: &NsRef,
        dest: IpNet,
        via: IpAddr,
    ) -> Result<RouteAdded, EngineError> {
        let key = ns_key(ns);
        if dest.addr().is_ipv4() != via.is_ipv4() {
            return Err(Conflict::RouteFamilies { dest, via }.into());
        }
        if dest.trunc() != dest {
            return Err(nsnet_core::CoreError::InvalidValue {
                what: "route destination",
                value: dest.to_string(),
                reason: format!("host bits are set; did you mean {}?", dest.trunc()),
            }
            .into());
        }
        if !self.kernel.netns_exists(ns) {
            return Err(EngineError::not_found("netns", &key));
        }
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            tx.insert_route(&RouteRow {
                netns: key.clone(),
                dest,
                via,
            })
            .map_err(|e| {
                if e.is_conflict() {
                    EngineError::from(Conflict::RouteRecorded {
                        dest,
                        netns: key.clone(),
                    })
                } else {
                    e.into()
                }
            })?;
            let op = KernelOp::AddRoute {
                ns: ns.clone(),
                dest,
                via: Some(via),
                dev: None,
            };
            kernel.apply(&op).map_err(|e| match e.kind {
                FailKind::Exists => EngineError::from(Conflict::RouteInKernel {
                    dest,
                    netns: key.clone(),
                }),
                _ => e.into(),
            })
        })?;
        Ok(RouteAdded {
            netns: key,
            dest,
            via,
        })
    }

    /// Live routes of a namespace, marked when nsnet manages them.
    pub fn route_ls(&mut self, ns: &NsRef) -> Result<Vec<RouteEntry>, EngineError> {
        Ok(self.inspect_netns(ns)?.routes)
    }

    /// Removes a route from a namespace (and from the store when nsnet made it).
    pub fn route_rm(&mut self, ns: &NsRef, dest: IpNet) -> Result<(), EngineError> {
        let key = ns_key(ns);
        if !self.kernel.netns_exists(ns) {
            return Err(EngineError::not_found("netns", &key));
        }
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            let via = tx
                .routes_in_netns(&key)?
                .into_iter()
                .find(|r| r.dest == dest)
                .map(|r| r.via);
            let recorded = tx.delete_route(&key, &dest)?;
            let op = KernelOp::DelRoute {
                ns: ns.clone(),
                dest,
                via,
                dev: None,
            };
            match kernel.apply(&op) {
                Err(e) if e.kind == FailKind::NotFound && !recorded => Err(EngineError::NotFound {
                    kind: "route",
                    name: format!("{dest} in netns {key}"),
                }),
                Err(e) if e.kind != FailKind::NotFound => Err(e.into()),
                _ => Ok(()),
            }
        })
    }
}
