//! Removing many endpoints at once (a topology's destroy, `network rm --force`): the steps of
//! `remove_endpoint` for all of them together, with the same guarantees. One write
//! transaction marks them all `removing`; one firewall transaction deletes their elements; one
//! unregister batch deletes their veths (see `Net::delete_links`); one write transaction
//! deletes their rows. A process killed at any instant leaves `removing` rows whose process
//! is dead, which `gc` (or the next remover) finishes one by one, as for a single endpoint.
//! Endpoints another live process holds, and those whose removal hands the default routes
//! to another endpoint, take the one-by-one path.

use std::collections::BTreeSet;

use nsnet_core::firewall::FwChange;
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::plan;
use nsnet_store::{EndpointRow, RowState};
use nsnet_sys::kernel::{FailKind, Kernel};

use crate::apply::teardown;
use crate::network::endpoint_firewall;
use crate::{Engine, EngineError};

/// Below this many endpoints, the one-by-one path costs no more.
const AT_ONCE: usize = 2;
/// From this many endpoints on, `network rm --force` removes them together: below, each
/// endpoint's veth deletion on its own helper thread beside the bridge's is as quick (their
/// RCU barriers overlap) and a thread per endpoint is cheap.
pub(crate) const MANY: usize = 16;

impl<K: Kernel> Engine<K> {
    /// Removes the endpoints `ids` (see the module); `promote` as for `remove_endpoint`.
    pub(crate) fn remove_endpoints(
        &mut self,
        ids: &[i64],
        promote: bool,
    ) -> Result<(), EngineError> {
        if ids.len() < AT_ONCE {
            for &id in ids {
                self.remove_endpoint(id, promote)?;
            }
            return Ok(());
        }
        let (mine, others) = self.claim_endpoints(ids)?;
        let mut single: Vec<i64> = others;
        // What each claimed endpoint's removal takes: its firewall elements, its switch port,
        // its veth. An endpoint that hands over the default routes goes alone.
        let plans = self.store.read(|tx| {
            let mut plans = Vec::new();
            let mut nets = std::collections::BTreeMap::new();
            for ep in &mine {
                if promote && crate::removal::hands_over(tx, ep)? {
                    continue;
                }
                if !nets.contains_key(&ep.network) {
                    let n = tx
                        .network(&ep.network)?
                        .ok_or_else(|| EngineError::not_found("network", &ep.network))?;
                    nets.insert(ep.network.clone(), n);
                }
                let fw = endpoint_firewall(tx, ep)?;
                let spec = &nets[&ep.network].spec;
                plans.push((ep.id, plan::disconnect(spec, &ep.host_ifname, fw, None)));
            }
            Ok::<_, EngineError>(plans)
        })?;
        let planned: BTreeSet<i64> = plans.iter().map(|(id, _)| *id).collect();
        single.extend(mine.iter().map(|e| e.id).filter(|id| !planned.contains(id)));

        // Firewall first (as `teardown` orders a single removal), all in one transaction.
        let mut fw: Vec<FwChange> = Vec::new();
        let mut links: Vec<(i64, String)> = Vec::new();
        let mut rest: Vec<(i64, KernelOp)> = Vec::new();
        for (id, p) in &plans {
            for op in &p.release {
                match op {
                    KernelOp::Firewall(changes) => fw.extend(changes.iter().cloned()),
                    KernelOp::DeleteLink {
                        ns: NsRef::Host,
                        ifname,
                    } => links.push((*id, ifname.clone())),
                    other => rest.push((*id, other.clone())),
                }
            }
        }
        let mut errors = Vec::new();
        let mut failed: BTreeSet<i64> = BTreeSet::new();
        if !fw.is_empty()
            && let Err(err) = self.kernel.apply(&KernelOp::Firewall(fw))
            && err.kind != FailKind::NotFound
        {
            // As `teardown` does: keep going, but no row goes whose elements may be left.
            errors.push(err.to_string());
            failed.extend(planned.iter().copied());
        }
        for (id, op) in &rest {
            let errs = teardown(&mut self.kernel, std::slice::from_ref(op));
            if !errs.is_empty() {
                failed.insert(*id);
                errors.extend(errs);
            }
        }
        let names: Vec<String> = links.iter().map(|(_, n)| n.clone()).collect();
        let results = self.kernel.delete_links(&NsRef::Host, &names);
        for ((id, _), r) in links.iter().zip(results) {
            if let Err(err) = r
                && err.kind != FailKind::NotFound
            {
                failed.insert(*id);
                errors.push(err.to_string());
            }
        }
        self.store.write(|tx| {
            for id in planned.iter().filter(|id| !failed.contains(id)) {
                tx.delete_endpoint(*id)?;
            }
            Ok::<_, EngineError>(())
        })?;
        for id in single {
            if let Err(err) = self.remove_endpoint(id, promote) {
                errors.push(err.to_string());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EngineError::Teardown {
                op: format!("disconnect {} endpoints", ids.len()),
                errors,
            })
        }
    }

    /// Marks the endpoints `ids` that nobody else holds `removing`, in one write transaction:
    /// their rows, and the ids left to the one-by-one path (held by another live process, or
    /// changed meanwhile). Ids whose row is gone are neither.
    fn claim_endpoints(
        &mut self,
        ids: &[i64],
    ) -> Result<(Vec<EndpointRow>, Vec<i64>), EngineError> {
        let rows = self.store.read(|tx| {
            ids.iter()
                .filter_map(|&id| tx.endpoint_by_id(id).transpose())
                .collect::<Result<Vec<_>, _>>()
        })?;
        let mut free = Vec::new();
        let mut busy = Vec::new();
        for r in rows {
            // Liveness needs the kernel, which the store's closure cannot borrow.
            if r.state == RowState::Ready || r.pid == self.pid || self.owner_gone(r.pid, &r.boot_id)
            {
                free.push(r);
            } else {
                busy.push(r.id);
            }
        }
        let (pid, boot) = (self.pid, self.boot_id.clone());
        let (mine, changed) = self.store.write(|tx| {
            let mut mine = Vec::new();
            let mut changed = Vec::new();
            for r in &free {
                let Some(now) = tx.endpoint_by_id(r.id)? else {
                    continue;
                };
                // Marked only if nobody changed the row meanwhile (as `claim` does).
                let same = (now.state, now.pid, &now.boot_id) == (r.state, r.pid, &r.boot_id);
                if !same {
                    changed.push(now.id);
                } else if tx.mark_endpoint_removing(r.id, pid, &boot)? {
                    mine.push(now);
                }
            }
            Ok::<_, EngineError>((mine, changed))
        })?;
        busy.extend(changed);
        Ok((mine, busy))
    }
}
