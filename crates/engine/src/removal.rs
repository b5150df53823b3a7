//! Removals record their intent before they touch the kernel.
//!
//! An endpoint, link or network to remove first goes to state `removing` in one write
//! transaction, with the remover's pid and boot id. Then its kernel objects go, and then its row.
//! A remover killed at any instant leaves a `removing` row whose process is dead: `gc`, or the
//! next command that wants the object gone, finishes the removal. Every step is idempotent
//! (a missing object counts as removed), so finishing twice is harmless. One remover at a time:
//! a second one waits while a live process is creating or removing the same row.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use nsnet_core::names::{IfName, NetName};
use nsnet_core::plan::{self, LinkEnd};
use nsnet_store::{EndpointRow, LinkRow, RowState, Tx};
use nsnet_sys::kernel::{FailKind, Kernel};

use crate::apply::teardown;
use crate::conflict::Conflict;
use crate::network::{endpoint_firewall, ns_ref, primary_in};
use crate::{Engine, EngineError};

/// How long a remover waits for another live process that holds the same row.
const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(10);

/// Who holds a row that is not `ready`.
enum Holder {
    /// Nobody (the row is ready, ours, or its process died): it is ours to remove now.
    Free,
    /// Another live process is creating or removing it.
    Busy(u32),
}

/// What a claim found.
enum Claim<T> {
    /// Marked `removing` by this process.
    Mine(T),
    /// The row is gone: nothing left to remove.
    Gone,
    /// Another live process holds it.
    Busy(u32),
}

impl<K: Kernel> Engine<K> {
    /// Whether the process that last wrote a row with `pid` and `boot_id` can no longer act.
    pub(crate) fn owner_gone(&mut self, pid: u32, boot_id: &str) -> bool {
        boot_id != self.boot_id || (pid != self.pid && !self.kernel.process_alive(pid))
    }

    fn holder(&mut self, state: RowState, pid: u32, boot_id: &str) -> Holder {
        if state == RowState::Ready || pid == self.pid || self.owner_gone(pid, boot_id) {
            Holder::Free
        } else {
            Holder::Busy(pid)
        }
    }

    /// Claims a row for removal in one write transaction: `load` reads it, `mark` records
    /// this process as its remover.
    fn claim<T>(
        &mut self,
        load: impl Fn(&Tx<'_>) -> Result<Option<T>, EngineError>,
        owner: impl Fn(&T) -> (RowState, u32, String),
        mark: impl Fn(&Tx<'_>, u32, &str) -> Result<bool, EngineError>,
    ) -> Result<Claim<T>, EngineError> {
        let (pid, boot) = (self.pid, self.boot_id.clone());
        // Liveness is read before the transaction: `process_alive` needs the kernel, which
        // the store closure cannot borrow together with `self`.
        let Some(row) = self.store.read(&load)? else {
            return Ok(Claim::Gone);
        };
        let (state, owner_pid, owner_boot) = owner(&row);
        if let Holder::Busy(p) = self.holder(state, owner_pid, &owner_boot) {
            return Ok(Claim::Busy(p));
        }
        self.store.write(|tx| {
            // Marked only if nobody changed the row meanwhile (a concurrent claim wins once).
            match load(tx)? {
                Some(now) if owner(&now) == (state, owner_pid, owner_boot.clone()) => {
                    if mark(tx, pid, &boot)? {
                        Ok(Claim::Mine(now))
                    } else {
                        Ok(Claim::Gone)
                    }
                }
                Some(now) => Ok(Claim::Busy(owner(&now).1)),
                None => Ok(Claim::Gone),
            }
        })
    }

    /// Claims a row, waiting while another live process holds it. `None`: nothing to do.
    fn claim_waiting<T>(
        &mut self,
        what: &str,
        load: impl Fn(&Tx<'_>) -> Result<Option<T>, EngineError>,
        owner: impl Fn(&T) -> (RowState, u32, String),
        mark: impl Fn(&Tx<'_>, u32, &str) -> Result<bool, EngineError>,
    ) -> Result<Option<T>, EngineError> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.claim(&load, &owner, &mark)? {
                Claim::Mine(row) => return Ok(Some(row)),
                Claim::Gone => return Ok(None),
                Claim::Busy(pid) if Instant::now() > deadline => {
                    return Err(Conflict::Held {
                        what: what.to_string(),
                        pid,
                        secs: WAIT.as_secs(),
                    }
                    .into());
                }
                Claim::Busy(_) => std::thread::sleep(POLL),
            }
        }
    }

    /// Removes endpoint `id`: marks it `removing`, then `finish_endpoint`. `promote`: another
    /// endpoint of the namespace takes over the default routes if this one carried them.
    pub(crate) fn remove_endpoint(&mut self, id: i64, promote: bool) -> Result<(), EngineError> {
        let claimed = self.claim_waiting(
            &format!("endpoint {id}"),
            |tx| Ok(tx.endpoint_by_id(id)?),
            |e: &EndpointRow| (e.state, e.pid, e.boot_id.clone()),
            |tx, pid, boot| Ok(tx.mark_endpoint_removing(id, pid, boot)?),
        )?;
        match claimed {
            Some(ep) => self.finish_endpoint(&ep, promote),
            None => Ok(()),
        }
    }

    /// The kernel side, then the row, of an endpoint this process marked `removing`.
    fn finish_endpoint(&mut self, ep: &EndpointRow, promote: bool) -> Result<(), EngineError> {
        let ns = ns_ref(&ep.netns);
        let (net, fw, next) = self.store.read(|tx| {
            let net = tx
                .network(&ep.network)?
                .ok_or_else(|| EngineError::not_found("network", &ep.network))?;
            let fw = endpoint_firewall(tx, ep)?;
            let next = if promote { next_primary(tx, ep)? } else { None };
            Ok::<_, EngineError>((net, fw, next))
        })?;
        let plan = plan::disconnect(
            &net.spec,
            &ep.host_ifname,
            fw,
            next.as_ref().map(|(i, g)| (&ns, i, g.as_slice())),
        );
        let op = || format!("disconnect netns {} from network {}", ep.netns, ep.network);
        let errors = teardown(&mut self.kernel, &plan.release);
        if !errors.is_empty() {
            return Err(EngineError::Teardown { op: op(), errors });
        }
        // The new primary's default routes are best-effort (the namespace may be gone), and a
        // resumed removal may find them made already.
        let mut errors = Vec::new();
        if !plan.promote.is_empty() && self.kernel.netns_exists(&ns) {
            for step in &plan.promote {
                match self.kernel.apply(step) {
                    Err(e) if e.kind != FailKind::Exists => errors.push(e.to_string()),
                    _ => {}
                }
            }
        }
        self.store.write(|tx| tx.delete_endpoint(ep.id))?;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Teardown { op: op(), errors })
        }
    }

    /// Removes link row `id`: marks it `removing`, deletes the veth from an end whose
    /// namespace still exists (if neither does, the veth is gone), then the row.
    pub(crate) fn remove_link(&mut self, id: i64) -> Result<(), EngineError> {
        let claimed = self.claim_waiting(
            &format!("link {id}"),
            |tx| Ok(tx.link_by_id(id)?),
            |l: &LinkRow| (l.state, l.pid, l.boot_id.clone()),
            |tx, pid, boot| Ok(tx.mark_link_removing(id, pid, boot)?),
        )?;
        let Some(l) = claimed else { return Ok(()) };
        let end = [&l.a, &l.b]
            .into_iter()
            .find(|e| self.kernel.netns_exists(&ns_ref(&e.netns)));
        if let Some(end) = end {
            let ops = plan::remove_link(&LinkEnd {
                ns: ns_ref(&end.netns),
                ifname: end.ifname.clone(),
                addr: None,
            });
            let errors = teardown(&mut self.kernel, &ops);
            if !errors.is_empty() {
                return Err(EngineError::Teardown {
                    op: format!("remove link {} in netns {}", end.ifname, end.netns),
                    errors,
                });
            }
        }
        self.store.write(|tx| tx.delete_link(l.id))?;
        Ok(())
    }

    /// Removes network `name`: marks it `removing` (new connects are refused from then on),
    /// removes its endpoints one by one, then its bridge and firewall elements, then its row;
    /// the firewall tables go with the last network. `force`: remove its endpoints too,
    /// else refuse while it has any (changing nothing).
    pub(crate) fn remove_network(
        &mut self,
        name: &NetName,
        force: bool,
    ) -> Result<(), EngineError> {
        let claimed = self.claim_waiting(
            &format!("network {name}"),
            |tx| {
                let Some(n) = tx.network(name)? else {
                    return Ok(None);
                };
                let endpoints = tx.endpoints_of_network(name)?;
                // A network already being removed is finished whatever `force` says.
                if !endpoints.is_empty() && !force && n.state != RowState::Removing {
                    return Err(Conflict::NetworkInUse {
                        network: name.clone(),
                        netns: endpoints.into_iter().map(|e| e.netns).collect(),
                    }
                    .into());
                }
                Ok(Some(n))
            },
            |n| (n.state, n.pid, n.boot_id.clone()),
            |tx, pid, boot| Ok(tx.mark_network_removing(name, pid, boot)?),
        )?;
        let Some(n) = claimed else {
            return Err(EngineError::not_found("network", name));
        };
        let endpoints = self.store.read(|tx| tx.endpoints_of_network(name))?;
        let ids: Vec<i64> = endpoints.iter().map(|e| e.id).collect();
        self.remove_endpoints(&ids, true)?;
        let errors = teardown(&mut self.kernel, &plan::remove_network(&n.spec));
        if !errors.is_empty() {
            return Err(EngineError::Teardown {
                op: format!("remove network {name}"),
                errors,
            });
        }
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            tx.delete_network(name)?;
            if tx.networks()?.is_empty() {
                // The tables go with the last network.
                kernel.fw_remove()?;
            }
            Ok::<_, EngineError>(())
        })
    }
}

/// Whether removing `ep` hands its namespace's default routes to another endpoint.
pub(crate) fn hands_over(tx: &Tx<'_>, ep: &EndpointRow) -> Result<bool, EngineError> {
    Ok(next_primary(tx, ep)?.is_some())
}

/// When `ep` is its namespace's primary endpoint: the endpoint that takes over the default
/// routes, with its gateways.
fn next_primary(
    tx: &Tx<'_>,
    ep: &EndpointRow,
) -> Result<Option<(IfName, Vec<IpAddr>)>, EngineError> {
    let in_ns = tx.endpoints_in_netns(&ep.netns)?;
    if primary_in(tx, &in_ns)? != Some(ep.id) {
        return Ok(None);
    }
    let rest: Vec<EndpointRow> = in_ns.into_iter().filter(|e| e.id != ep.id).collect();
    let Some(next) = primary_in(tx, &rest)?.and_then(|id| rest.into_iter().find(|e| e.id == id))
    else {
        return Ok(None);
    };
    let Some(net) = tx.network(&next.network)? else {
        return Ok(None);
    };
    let gws = net
        .spec
        .subnets()
        .iter()
        .filter(|s| next.ips().any(|ip| s.cidr.contains(&ip)))
        .map(|s| s.gateway)
        .collect();
    Ok(Some((next.ifname.clone(), gws)))
}
