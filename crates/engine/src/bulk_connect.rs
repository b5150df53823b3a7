//! Making many endpoints at once (a topology's apply): each is recorded and made as `connect`
//! does it, then the firewall elements of all of them go in one transaction and one write
//! transaction marks them all ready, instead of one of each per endpoint. Until then their
//! rows stay `creating`: a process killed at any instant leaves rows whose process is dead,
//! which `gc` rolls back, as for a single connect. A failure removes every endpoint the batch
//! made.

use nsnet_core::firewall::FwChange;
use nsnet_core::ops::KernelOp;
use nsnet_sys::kernel::{FailKind, Kernel};

use crate::apply::apply_ops;
use crate::conflict::Conflict;
use crate::network::{ConnectPolicy, ns_key};
use crate::{ConnectRequest, Engine, EngineError};

impl<K: Kernel> Engine<K> {
    /// Connects each of `reqs` (see the module). On failure: the index of the request that
    /// failed (0 when the shared firewall or store step did), with nothing of the batch left.
    pub(crate) fn connect_at_once(
        &mut self,
        reqs: &[ConnectRequest],
    ) -> Result<(), Box<(usize, EngineError)>> {
        let mut made = Vec::with_capacity(reqs.len());
        let mut fw: Vec<FwChange> = Vec::new();
        for (k, req) in reqs.iter().enumerate() {
            let what = format!("connect netns {} to network {}", req.netns, req.network);
            match self.connect_but_firewall(req, &mut fw) {
                Ok(id) => made.push(id),
                Err(e) => {
                    self.unmake(&made);
                    return Err(Box::new((k, e.during(what))));
                }
            }
        }
        if !fw.is_empty()
            && let Err(e) = self.kernel.apply(&KernelOp::Firewall(fw))
        {
            self.unmake(&made);
            return Err(Box::new((0, e.into())));
        }
        let ready = self.store.write(|tx| {
            for id in &made {
                tx.set_endpoint_ready(*id)?;
            }
            Ok::<_, EngineError>(())
        });
        if let Err(e) = ready {
            self.unmake(&made);
            return Err(Box::new((0, e)));
        }
        Ok(())
    }

    /// `connect_with`'s work for one endpoint, with its firewall changes left in `fw`: the
    /// endpoint's row id, its row `creating`.
    fn connect_but_firewall(
        &mut self,
        req: &ConnectRequest,
        fw: &mut Vec<FwChange>,
    ) -> Result<i64, EngineError> {
        for alias in &req.aliases {
            nsnet_core::dnsname::check_alias(alias)?;
        }
        if !self.kernel.netns_exists(&req.netns) {
            return Err(EngineError::not_found("netns", &req.netns));
        }
        let policy = ConnectPolicy::default();
        let mappings = crate::ports::expand(&req.publish);
        let recorded = match self.record_connect(req, &policy, &mappings)? {
            Some(recorded) => recorded,
            None => {
                self.revive_network(&req.network)?;
                self.record_connect(req, &policy, &mappings)?
                    .ok_or_else(|| Conflict::NetworkRevived {
                        network: req.network.clone(),
                    })?
            }
        };
        let (id, plan) = (recorded.id, recorded.plan);
        let mut ops = Vec::with_capacity(plan.ops.len());
        for op in plan.ops {
            match op {
                KernelOp::Firewall(changes) => fw.extend(changes),
                op => ops.push(op),
            }
        }
        if let Err(failed) = apply_ops(&mut self.kernel, &ops) {
            self.store.write(|tx| tx.delete_endpoint(id))?;
            let veth = matches!(ops[failed.op], KernelOp::CreateVeth { .. });
            if veth && failed.err.kind == FailKind::Exists {
                return Err(Conflict::InterfaceExists {
                    ifname: plan.layout.ifname,
                    netns: ns_key(&req.netns),
                    host_ifname: plan.layout.host_ifname,
                }
                .into());
            }
            return Err(failed.err.into());
        }
        Ok(id)
    }

    /// Removes the endpoints `ids` a failed batch made (their rows are this process's).
    fn unmake(&mut self, ids: &[i64]) {
        if let Err(err) = self.remove_endpoints(ids, false) {
            tracing::warn!(%err, "undoing a batch of connects");
        }
    }
}
