//! Overlay peers: the three entries per remote host on an overlay network's VXLAN device,
//! converged by diff against what the device holds. The membership source (a topology file's
//! hosts) is the truth for peers, and the entries live on a device nsnet owns entirely, so the
//! device itself is what they are diffed against; removing the network takes them all.

use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::model::NetworkSpec;
use nsnet_core::ops::{KernelOp, OverlayPeer};
use nsnet_core::overlay::{self, LiveEntries, LocalOverlay, PeerChange};
use nsnet_store::{OverlayPeerRow, Tx};
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
        changes_to(&mut self.kernel, &row.spec, &w.peers)
    }

    /// The recorded peers of overlay network `spec` that its device lacks or holds wrong, one
    /// line each naming the peer and what is wrong (empty when its device is missing: that is
    /// reported on its own).
    pub fn overlay_peer_drift(&mut self, spec: &NetworkSpec) -> Result<Vec<String>, EngineError> {
        // A missing device is drift of its own (`repair` makes it again, then its peers).
        if let Some(dev) = spec.overlay_dev()
            && let Err(e) = self.kernel.overlay_entries(&dev)
        {
            return match e.kind {
                FailKind::NotFound => Ok(Vec::new()),
                _ => Err(e.into()),
            };
        }
        let kernel = &mut self.kernel;
        let changes = self.store.read(|tx| missing_peers(kernel, tx, spec))?;
        Ok(changes
            .iter()
            .filter_map(|c| match c {
                PeerChange::Add { peer, reason } => Some(format!(
                    "{peer}: {}",
                    reason.as_deref().unwrap_or("its entries are missing")
                )),
                PeerChange::Remove(_) => None,
            })
            .collect())
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
        let mut here = Vec::new();
        for w in wanted {
            if let Some(c) = self.peer_changes(w)? {
                changes.extend(c);
                here.push(w);
            }
        }
        let kernel = &mut self.kernel;
        // The record commits even when a kernel change fails: it is what the membership wants,
        // and `repair` or the next convergence finishes the rest.
        self.store.write(|tx| {
            for w in &here {
                let rows: Vec<OverlayPeerRow> = w.peers.iter().map(row_of).collect();
                tx.set_overlay_peers(&w.network, &rows)?;
            }
            Ok::<_, EngineError>(apply_changes(kernel, &changes))
        })??;
        Ok(changes)
    }
}

/// The recorded form of a peer.
fn row_of(p: &OverlayPeer) -> OverlayPeerRow {
    OverlayPeerRow {
        slice: p.slice,
        underlay: p.underlay,
    }
}

/// The peer a recorded row stands for on `spec`'s device; `None` for a row that no IPv4
/// overlay can hold (overlays are IPv4 only).
fn peer_of(spec: &NetworkSpec, row: &OverlayPeerRow) -> Option<OverlayPeer> {
    match (row.slice, row.underlay) {
        (IpNet::V4(slice), IpAddr::V4(underlay)) => overlay::peer(spec, slice, underlay),
        _ => None,
    }
}

/// The changes that bring `spec`'s device to `wanted`; none when the network has no device
/// (not an overlay), every peer to add when its device is missing.
fn changes_to<K: Kernel>(
    kernel: &mut K,
    spec: &NetworkSpec,
    wanted: &[OverlayPeer],
) -> Result<Option<Vec<PeerChange>>, EngineError> {
    let Some(dev) = spec.overlay_dev() else {
        return Ok(Some(Vec::new()));
    };
    let live = match kernel.overlay_entries(&dev) {
        Ok(live) => live,
        Err(e) if e.kind == FailKind::NotFound => LiveEntries::default(),
        Err(e) => return Err(e.into()),
    };
    let observed = overlay::observe(spec, &live);
    Ok(Some(overlay::diff(wanted, &observed, &live.fdb)))
}

fn apply_changes<K: Kernel>(kernel: &mut K, changes: &[PeerChange]) -> Result<(), EngineError> {
    for c in changes {
        let op = match c {
            PeerChange::Add { peer, .. } => KernelOp::AddOverlayPeer(peer.clone()),
            PeerChange::Remove(peer) => KernelOp::DelOverlayPeer(peer.clone()),
        };
        kernel.apply(&op)?;
    }
    Ok(())
}

/// The recorded peers of `spec`'s device that are missing or drifted there, as the changes
/// that put them back. Only additions: a peer the store does not know (e.g. on a store made
/// before peers were recorded) is the membership source's to remove, not `repair`'s.
pub(crate) fn missing_peers<K: Kernel>(
    kernel: &mut K,
    tx: &Tx<'_>,
    spec: &NetworkSpec,
) -> Result<Vec<PeerChange>, EngineError> {
    let recorded: Vec<OverlayPeer> = tx
        .overlay_peers(spec.name())?
        .iter()
        .filter_map(|r| peer_of(spec, r))
        .collect();
    if recorded.is_empty() {
        return Ok(Vec::new());
    }

    Ok(changes_to(kernel, spec, &recorded)?
        .unwrap_or_default()
        .into_iter()
        .filter(|c| matches!(c, PeerChange::Add { .. }))
        .collect())
}

/// Puts back the recorded peers of `spec`'s device that are missing or drifted; returns how
/// many it restored.
pub(crate) fn restore_peers<K: Kernel>(
    kernel: &mut K,
    tx: &Tx<'_>,
    spec: &NetworkSpec,
) -> Result<usize, EngineError> {
    let changes = missing_peers(kernel, tx, spec)?;
    apply_changes(kernel, &changes)?;
    Ok(changes.len())
}
