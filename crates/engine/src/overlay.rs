//! Overlay peers: the three entries per remote host on an overlay network's VXLAN device,
//! converged by diff against what the device holds. The membership source (a topology file's
//! hosts) is the truth for peers, and the entries live on a device nsnet owns entirely, so the
//! device itself is what they are diffed against; removing the network takes them all.

use nsnet_core::ops::KernelOp;
use nsnet_core::overlay::{self, LiveEntries, LocalOverlay, PeerChange};
use nsnet_sys::kernel::{FailKind, Kernel};

use crate::{Engine, EngineError};

impl<K: Kernel> Engine<K> {
    /// The changes that bring each overlay network's device to `wanted`'s peers. A network
    /// not made yet, or whose device is missing (it will be re-created), holds none.
    pub fn overlay_plan(
        &mut self,
        wanted: &[LocalOverlay],
    ) -> Result<Vec<PeerChange>, EngineError> {
        let mut out = Vec::new();
        for w in wanted {
            out.extend(self.peer_changes(w)?.unwrap_or_else(|| {
                w.peers
                    .iter()
                    .map(|p| PeerChange::Add {
                        peer: p.clone(),
                        reason: None,
                    })
                    .collect()
            }));
        }
        Ok(out)
    }

    /// The changes to one network's peers; `None` when the network does not exist here.
    fn peer_changes(&mut self, w: &LocalOverlay) -> Result<Option<Vec<PeerChange>>, EngineError> {
        let Some(row) = self.store.read(|tx| tx.network(&w.network))? else {
            return Ok(None);
        };
        let Some(dev) = row.spec.overlay_dev() else {
            return Ok(Some(Vec::new()));
        };
        let live = match self.kernel.overlay_entries(&dev) {
            Ok(live) => live,
            Err(e) if e.kind == FailKind::NotFound => LiveEntries::default(),
            Err(e) => return Err(e.into()),
        };
        let observed = overlay::observe(&row.spec, &live);
        Ok(Some(overlay::diff(&w.peers, &observed, &live.fdb)))
    }

    /// Applies the changes to the peers of every network of `wanted` that exists here (a
    /// network is made by `topology_apply` first), under the store's write lock so two nsnet
    /// processes never program one device at once. Each change stands alone (a peer's three
    /// entries go in one request): on a failure, the ones before it stay, and the next run
    /// finishes the rest.
    pub fn overlay_apply(
        &mut self,
        wanted: &[LocalOverlay],
    ) -> Result<Vec<PeerChange>, EngineError> {
        let mut changes = Vec::new();
        for w in wanted {
            changes.extend(self.peer_changes(w)?.unwrap_or_default());
        }
        let kernel = &mut self.kernel;
        self.store.write(|_| {
            for c in &changes {
                let op = match c {
                    PeerChange::Add { peer, .. } => KernelOp::AddOverlayPeer(peer.clone()),
                    PeerChange::Remove(peer) => KernelOp::DelOverlayPeer(peer.clone()),
                };
                kernel.apply(&op)?;
            }
            Ok::<_, EngineError>(())
        })?;
        Ok(changes)
    }
}
