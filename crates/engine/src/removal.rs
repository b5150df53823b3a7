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
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::plan::{self, LinkEnd};
use nsnet_store::{EndpointRow, LinkRow, RowState, Tx};
use nsnet_sys::kernel::{FailKind, Kernel};

use crate::apply::{finish_started, teardown};
use crate::conflict::Conflict;
use crate::network::{endpoint_firewall, ns_ref, primary_in};
use crate::{Engine, EngineError};

/// How long a remover waits for another live process that holds the same row.
const WAIT: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(10);

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

    /// Claims a row for removal in one write transaction: `load` reads it, `mark` records
    /// this process as its remover. The holder's liveness is looked at inside the
    /// transaction (a signal 0, no I/O), so the claim is one transaction on the path before
    /// any kernel work, and nobody can change the row between the look and the mark.
    fn claim<T>(
        &mut self,
        load: impl Fn(&Tx<'_>) -> Result<Option<T>, EngineError>,
        owner: impl Fn(&T) -> (RowState, u32, String),
        mark: impl Fn(&Tx<'_>, u32, &str) -> Result<bool, EngineError>,
    ) -> Result<Claim<T>, EngineError> {
        let (pid, boot) = (self.pid, self.boot_id.clone());
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            let Some(row) = load(tx)? else {
                return Ok(Claim::Gone);
            };
            let (state, owner_pid, owner_boot) = owner(&row);
            let free = state == RowState::Ready
                || owner_pid == pid
                || owner_boot != boot
                || !kernel.process_alive(owner_pid);
            if !free {
                return Ok(Claim::Busy(owner_pid));
            }
            if mark(tx, pid, &boot)? {
                Ok(Claim::Mine(row))
            } else {
                Ok(Claim::Gone)
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
        match self.claim_endpoint(id)? {
            Some(ep) => self.finish_endpoint(&ep, promote),
            None => Ok(()),
        }
    }

    /// Marks endpoint `id` `removing` for this process (waiting while another live process
    /// holds it); None when it is gone.
    fn claim_endpoint(&mut self, id: i64) -> Result<Option<EndpointRow>, EngineError> {
        self.claim_waiting(
            &format!("endpoint {id}"),
            |tx| Ok(tx.endpoint_by_id(id)?),
            |e: &EndpointRow| (e.state, e.pid, e.boot_id.clone()),
            |tx, pid, boot| Ok(tx.mark_endpoint_removing(id, pid, boot)?),
        )
    }

    /// The kernel side, then the row, of an endpoint this process marked `removing`.
    fn finish_endpoint(&mut self, ep: &EndpointRow, promote: bool) -> Result<(), EngineError> {
        let begun = self.begin_endpoint(ep, promote);
        let ending = self.joined_on_error(begun)?;
        if ending.started {
            self.store.checkpoint_early();
        }
        // The new primary's default routes wait for the old veth: its routes must be gone.
        let joined = finish_started(&mut self.kernel);
        self.end_endpoint(ending, joined)
    }

    /// `res`, after waiting for whatever this removal started when it is an error: a
    /// caller that goes on (removing a namespace's other endpoints) must not find the
    /// outcome of this one's deletions among its own.
    fn joined_on_error<T>(&mut self, res: Result<T, EngineError>) -> Result<T, EngineError> {
        if res.is_err() {
            let _ = self.kernel.finish_started();
        }
        res
    }

    /// Sets the kernel side of a claimed endpoint's removal going. The veth goes first, on a
    /// helper thread where the kernel supports it: its deletion waits ~14 ms for an RCU
    /// barrier, which the reads and the firewall transaction here (whose own free then also
    /// waits out a grace period before this process exits) and whatever the caller does
    /// before `finish_started` overlap. `end_endpoint` finishes it once that has returned.
    fn begin_endpoint(&mut self, ep: &EndpointRow, promote: bool) -> Result<Ending, EngineError> {
        let ns = ns_ref(&ep.netns);
        let veth = KernelOp::DeleteLink {
            ns: NsRef::Host,
            ifname: ep.host_ifname.to_string(),
        };
        let started = self.kernel.start(&veth);
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
        let release: Vec<KernelOp> = plan
            .release
            .into_iter()
            .filter(|o| !(started && *o == veth))
            .collect();
        let errors = teardown(&mut self.kernel, &release);
        Ok(Ending {
            ep: ep.clone(),
            ns,
            promote: plan.promote,
            errors,
            started,
        })
    }

    /// Finishes what `begin_endpoint` set going, once the kernel's helper threads have been
    /// joined (`joined`: their errors): the new primary's routes, then the row.
    fn end_endpoint(&mut self, ending: Ending, joined: Vec<String>) -> Result<(), EngineError> {
        let Ending {
            ep,
            ns,
            promote,
            mut errors,
            ..
        } = ending;
        let op = || format!("disconnect netns {} from network {}", ep.netns, ep.network);
        errors.extend(joined);
        if !errors.is_empty() {
            return Err(EngineError::Teardown { op: op(), errors });
        }
        // The new primary's default routes are best-effort (the namespace may be gone), and a
        // resumed removal may find them made already.
        let mut errors = Vec::new();
        if !promote.is_empty() && self.kernel.netns_exists(&ns) {
            for step in &promote {
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

    /// `teardown` of `ops`, with what the kernel can run on a helper thread (a link
    /// deletion: RCU barriers) started first, so its wait overlaps the other ops and the
    /// store's housekeeping.
    pub(crate) fn teardown_overlapped(&mut self, ops: &[KernelOp]) -> Vec<String> {
        let rest: Vec<KernelOp> = ops
            .iter()
            .filter(|o| !self.kernel.start(o))
            .cloned()
            .collect();
        let mut errors = teardown(&mut self.kernel, &rest);
        if rest.len() < ops.len() {
            // Only in a wait: else the checkpoint would be paid in line.
            self.store.checkpoint_early();
        }
        errors.extend(finish_started(&mut self.kernel));
        errors
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
        // Its endpoints: each claimed (its own intent) and set going; their veths are
        // deleted on helper threads together with the bridge below, so their RCU barriers
        // overlap each other's and the bridge's instead of adding up.
        let endpoints = self.store.read(|tx| tx.endpoints_of_network(name))?;
        let mut endings = Vec::new();
        if endpoints.len() >= crate::bulk::MANY {
            // Many (a topology's network): removed together, their veths in one unregister
            // batch, before the bridge (see `bulk`).
            let ids: Vec<i64> = endpoints.iter().map(|e| e.id).collect();
            self.remove_endpoints(&ids, true)?;
        } else {
            for e in endpoints {
                let claimed = self.claim_endpoint(e.id);
                if let Some(ep) = self.joined_on_error(claimed)? {
                    let begun = self.begin_endpoint(&ep, true);
                    endings.push(self.joined_on_error(begun)?);
                }
            }
        }
        // The bridge goes on a helper thread too where the kernel supports it: its deletion
        // waits for two RCU barriers (25-40 ms here), which everything else overlaps.
        let ops = plan::remove_network(&n.spec);
        let count = ops.len();
        let rest: Vec<KernelOp> = ops.into_iter().filter(|o| !self.kernel.start(o)).collect();
        let waiting = rest.len() < count || endings.iter().any(|e| e.started);
        let mut errors = Vec::new();
        let tables_gone = match self.remove_tables_if_last(name) {
            Ok(gone) => gone,
            Err(e) => {
                errors.push(e.to_string());
                false
            }
        };
        // With the tables gone, so are the network's elements: one firewall transaction.
        let rest: Vec<KernelOp> = rest
            .into_iter()
            .filter(|o| !(tables_gone && matches!(o, KernelOp::Firewall(_))))
            .collect();
        errors.extend(teardown(&mut self.kernel, &rest));
        if waiting {
            self.store.checkpoint_early();
        }
        let joined = finish_started(&mut self.kernel);
        if !joined.is_empty() {
            // Which deletion failed is in each message; the rows stay `removing` for `gc`.
            errors.extend(joined);
            return Err(EngineError::Teardown {
                op: format!("remove network {name}"),
                errors,
            });
        }
        for ending in endings {
            if let Err(e) = self.end_endpoint(ending, Vec::new()) {
                errors.push(e.to_string());
            }
        }
        if !errors.is_empty() {
            return Err(EngineError::Teardown {
                op: format!("remove network {name}"),
                errors,
            });
        }
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            tx.delete_network(name)?;
            if !tables_gone && tx.networks()?.is_empty() {
                // The tables go with the last network (another one still being removed
                // when this removal looked is gone now).
                kernel.fw_remove()?;
            }
            Ok::<_, EngineError>(())
        })
    }

    /// Removes the firewall tables when `name` is the only network left (it is being
    /// removed), deciding under the store's write lock so that no network is created between
    /// the look and the removal; a network created later installs them again. True when
    /// removed. Done before the network's row goes so that the tables' removal, and the grace
    /// period nf_tables waits before freeing them (paid when this process exits), overlap the
    /// bridge's deletion.
    fn remove_tables_if_last(&mut self, name: &NetName) -> Result<bool, EngineError> {
        let others = |tx: &Tx<'_>| -> Result<bool, EngineError> {
            Ok(tx.networks()?.iter().any(|o| o.spec.name() != name))
        };
        // A read first: most removals are not of the last network, and need no lock.
        if self.store.read(others)? {
            return Ok(false);
        }
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            if others(tx)? {
                return Ok(false);
            }
            kernel.fw_remove()?;
            Ok(true)
        })
    }
}

/// An endpoint whose removal `begin_endpoint` set going.
struct Ending {
    ep: EndpointRow,
    ns: NsRef,
    /// The new primary's default routes, added once the old veth is gone.
    promote: Vec<KernelOp>,
    /// What the firewall and switch steps could not do.
    errors: Vec<String>,
    /// Whether its veth is being deleted on a helper thread.
    started: bool,
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
    // An endpoint being removed too (its namespace's removal claims them all at once, and a
    // crash leaves them for `gc`) takes nothing over: its veth may be gone already.
    let rest: Vec<EndpointRow> = in_ns
        .into_iter()
        .filter(|e| e.id != ep.id && e.state != RowState::Removing)
        .collect();
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
