//! Making many endpoints at once (a topology's apply): each is recorded and made as `connect`
//! does it, then the firewall elements of all of them go in one transaction and one write
//! transaction marks them all ready, instead of one of each per endpoint. Until then their
//! rows stay `creating`: a process killed at any instant leaves rows whose process is dead,
//! which `gc` rolls back, as for a single connect. A failure removes every endpoint the batch
//! made.

use nsnet_core::firewall::FwChange;
use nsnet_core::ops::KernelOp;
use nsnet_sys::kernel::Kernel;

use crate::network::ConnectPolicy;
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
        let mappings = crate::ports::expand(&req.publish);
        let recorded = self.record_and_make(req, &ConnectPolicy::default(), &mappings, Some(fw))?;
        Ok(recorded.id)
    }

    /// Removes the endpoints `ids` a failed batch made (their rows are this process's).
    fn unmake(&mut self, ids: &[i64]) {
        if let Err(err) = self.remove_endpoints(ids, false) {
            tracing::warn!(%err, "undoing a batch of connects");
        }
    }
}
