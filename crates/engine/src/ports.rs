//! Published ports: DNAT map elements towards an endpoint, conflict-checked in the store and
//! against the host's listeners, one firewall transaction per change.

use std::net::IpAddr;

use ipnet::IpNet;

use nsnet_core::endpoint;
use nsnet_core::firewall::{self, FwChange, FwElem};
use nsnet_core::model::NetworkSpec;
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::port::{PortMapping, PortSpec};
use nsnet_store::{EndpointRow, PortRow, Tx};
use nsnet_sys::kernel::{FailKind, Kernel};
use serde::Serialize;

use crate::conflict::Conflict;
use crate::network::{ns_key, primary_in};
use crate::{Engine, EngineError};

/// A published port as shown by `port ls`.
#[derive(Debug, Clone, Serialize)]
pub struct PortView {
    pub netns: String,
    pub network: String,
    pub container_ip: Vec<IpAddr>,
    #[serde(flatten)]
    pub mapping: PortMapping,
}

/// The endpoint addresses a mapping forwards to (one per family it applies to).
fn targets(m: &PortMapping, ep: &EndpointRow) -> Vec<IpAddr> {
    ep.ips()
        .filter(|a| m.host_ip.is_none_or(|h| h.is_ipv4() == a.is_ipv4()))
        .collect()
}

/// Firewall elements of `ports` on `ep`.
pub(crate) fn elements(ep: &EndpointRow, ports: &[PortMapping]) -> Vec<FwElem> {
    ports
        .iter()
        .flat_map(|m| firewall::port_elements(m, &ep.ips().collect::<Vec<_>>()))
        .collect()
}

/// Checks new mappings for an endpoint on `net` with addresses `addrs`: publishable, no
/// clash with each other, with nsnet's published ports, or with the host's listeners.
pub(crate) fn check_new(
    tx: &Tx<'_>,
    kernel: &mut impl Kernel,
    net: &NetworkSpec,
    addrs: &[IpAddr],
    netns: &str,
    mappings: &[PortMapping],
) -> Result<(), EngineError> {
    endpoint::check_mappings(net, netns, addrs, mappings)?;
    for m in mappings {
        if let Some(other) = tx.port_conflict(m)? {
            return Err(Conflict::PortPublished {
                mapping: *m,
                other: other.mapping,
                endpoint: other.endpoint,
            }
            .into());
        }
        if let Some(ip) = m.host_ip
            && !ip.is_loopback()
            && !kernel.host_holds(ip)
        {
            return Err(not_held(kernel, m, ip));
        }
        if kernel.port_busy(m) {
            return Err(Conflict::PortListened {
                port: m.host_port,
                proto: m.proto,
            }
            .into());
        }
    }
    Ok(())
}

/// Refuses a host address the host does not hold: traffic to it never arrives, so the port
/// would be published in name only. The message lists what the host holds instead (read only
/// here, on the way to a refusal: a full view grows with the host's interfaces).
fn not_held(kernel: &mut impl Kernel, m: &PortMapping, ip: IpAddr) -> EngineError {
    // Neither link-local addresses (they need a zone a DNAT element cannot carry) nor ::1
    // (refused above) are choices.
    let mut choices: Vec<String> = kernel
        .view(&NsRef::Host)
        .map(|v| v.interfaces)
        .unwrap_or_default()
        .iter()
        .flat_map(|i| i.addrs.iter().map(IpNet::addr))
        .filter(|h| h.is_ipv4() == ip.is_ipv4())
        .filter(|h| !matches!(h, IpAddr::V6(v6) if v6.is_unicast_link_local() || v6.is_loopback()))
        .map(|h| h.to_string())
        .collect();
    choices.sort();
    choices.dedup();
    let holds = match choices.len() {
        0 => format!("it holds no other {} address", family(ip)),
        n if n > 8 => format!("it holds {}, ...", choices[..8].join(", ")),
        _ => format!("it holds {}", choices.join(", ")),
    };
    Conflict::AddressNotHeld {
        mapping: *m,
        ip,
        holds,
    }
    .into()
}

fn family(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// Expands specs into single-port mappings.
pub fn expand(specs: &[PortSpec]) -> Vec<PortMapping> {
    specs.iter().flat_map(PortSpec::mappings).collect()
}

impl<K: Kernel> Engine<K> {
    /// The endpoint of a namespace that publishes its ports: the primary one, else the oldest.
    fn publishing_endpoint(tx: &Tx<'_>, netns: &str) -> Result<EndpointRow, EngineError> {
        let eps = tx.endpoints_in_netns(netns)?;
        let primary = primary_in(tx, &eps)?;
        eps.iter()
            .find(|e| Some(e.id) == primary)
            .or(eps.first())
            .cloned()
            .ok_or_else(|| {
                Conflict::NotConnected {
                    netns: netns.to_string(),
                }
                .into()
            })
    }

    /// Publishes ports of a namespace on a running endpoint, in one firewall transaction.
    pub fn port_add(
        &mut self,
        ns: &NsRef,
        specs: &[PortSpec],
    ) -> Result<Vec<PortView>, EngineError> {
        let key = ns_key(ns);
        // "Not connected" would send the user looking for a network; the namespace is missing.
        if !self.kernel.netns_exists(ns) {
            return Err(EngineError::not_found("netns", ns));
        }
        let mappings = expand(specs);
        let kernel = &mut self.kernel;
        // The rows first, then the elements: a process killed in between leaves rows whose
        // elements `gc` puts back, never an element that no row owns.
        let ep = self.store.write(|tx| {
            let ep = Self::publishing_endpoint(tx, &key)?;
            let net = tx
                .network(&ep.network)?
                .ok_or_else(|| EngineError::not_found("network", &ep.network))?;
            let addrs: Vec<IpAddr> = ep.ips().collect();
            check_new(tx, kernel, &net.spec, &addrs, &key, &mappings)?;
            tx.insert_ports(ep.id, &mappings)?;
            Ok::<_, EngineError>(ep)
        })?;
        let op = KernelOp::Firewall(
            elements(&ep, &mappings)
                .into_iter()
                .map(FwChange::Add)
                .collect(),
        );
        if let Err(e) = self.kernel.apply(&op) {
            self.store.write(|tx| tx.delete_ports(ep.id, &mappings))?;
            return Err(match e.kind {
                FailKind::Exists => Conflict::PortsPublished {
                    mappings: mappings.clone(),
                    cause: e.cause,
                }
                .into(),
                _ => e.into(),
            });
        }
        Ok(mappings
            .into_iter()
            .map(|m| PortView {
                netns: key.clone(),
                network: ep.network.to_string(),
                container_ip: targets(&m, &ep),
                mapping: m,
            })
            .collect())
    }

    /// Unpublishes ports of a namespace (every mapping of the spec must be published).
    pub fn port_rm(&mut self, ns: &NsRef, specs: &[PortSpec]) -> Result<(), EngineError> {
        let key = ns_key(ns);
        let wanted = expand(specs);
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            let eps = tx.endpoints_in_netns(&key)?;
            // A namespace deleted by hand keeps its rows until gc: its ports can still go.
            if eps.is_empty() && !kernel.netns_exists(ns) {
                return Err(EngineError::not_found("netns", ns));
            }
            let mut changes = Vec::new();
            for m in &wanted {
                let found = eps.iter().find_map(|e| {
                    tx.ports(Some(e.id))
                        .ok()?
                        .into_iter()
                        .find(|p| {
                            p.mapping.proto == m.proto
                                && p.mapping.host_port == m.host_port
                                && p.mapping.host_ip == m.host_ip
                        })
                        .map(|p| (e, p))
                });
                let Some((ep, row)) = found else {
                    return Err(EngineError::NotFound {
                        kind: "published port",
                        name: format!("{m} of netns {key}"),
                    });
                };
                tx.delete_ports(ep.id, std::slice::from_ref(&row.mapping))?;
                changes.extend(elements(ep, &[row.mapping]).into_iter().map(FwChange::Del));
            }
            let op = KernelOp::Firewall(changes);
            match kernel.apply(&op) {
                Err(e) if e.kind != FailKind::NotFound => Err(e.into()),
                _ => Ok(()),
            }
        })
    }

    /// Published ports, of one namespace or all.
    pub fn port_ls(&mut self, ns: Option<&NsRef>) -> Result<Vec<PortView>, EngineError> {
        let filter = ns.map(ns_key);
        self.store.read(|tx| {
            let eps = match &filter {
                Some(k) => tx.endpoints_in_netns(k)?,
                None => tx.endpoints()?,
            };
            let mut out = Vec::new();
            for e in &eps {
                for PortRow { mapping, .. } in tx.ports(Some(e.id))? {
                    out.push(PortView {
                        netns: e.netns.clone(),
                        network: e.network.to_string(),
                        container_ip: targets(&mapping, e),
                        mapping,
                    });
                }
            }
            Ok(out)
        })
    }
}
