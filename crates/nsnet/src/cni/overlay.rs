//! A vxlan network that spans Kubernetes nodes: each node's slice is its podCIDR
//! (`ipam.ranges`), and the other nodes come from etcd, where every node registers itself as
//! a host of the topology face does (`/nsnet/NETWORK/`: the network's name stands for the
//! topology's), so nodes configured either way share one membership. ADD claims the node's
//! slice before anything is made and converges the peers after the attachment.

use std::path::Path;

use nsnet_core::overlay::{self, LocalOverlay, PeerChange};
use nsnet_engine::Engine;
use nsnet_engine::membership::{EtcdMembership, MembershipError};
use nsnet_sys::live::LiveKernel;

use super::config::Network;
use super::error::{CniError, code};

fn failed(e: MembershipError) -> CniError {
    CniError::new(code::IO_FAILURE, format!("overlay membership in etcd: {e}"))
}

/// This node's membership, registered (slice claimed, address published, lease renewed);
/// `None` for a network without `etcd`.
pub fn join(net: &Network, state_dir: &Path) -> Result<Option<EtcdMembership>, CniError> {
    let Some(member) = net.overlay.as_ref().and_then(|o| o.member.as_ref()) else {
        return Ok(None);
    };
    let etcd = EtcdMembership::new(member, net.spec.name().as_str(), state_dir).map_err(failed)?;
    etcd.join(&member.host).map_err(failed)?;
    Ok(Some(etcd))
}

/// Brings the network's peers on this node to the nodes etcd lists now.
pub fn converge(
    engine: &mut Engine<LiveKernel>,
    net: &Network,
    etcd: &EtcdMembership,
) -> Result<Vec<PeerChange>, CniError> {
    let (Some(ov), Some(member)) = (
        net.overlay.as_ref(),
        net.overlay.as_ref().and_then(|o| o.member.as_ref()),
    ) else {
        return Ok(Vec::new());
    };
    let hosts = etcd.hosts().map_err(failed)?;
    let peers = overlay::peers(&net.spec, ov.subnet, &hosts, &member.host.name)?;
    let wanted = LocalOverlay {
        network: net.spec.name().clone(),
        peers,
    };
    Ok(engine.overlay_apply(&[wanted])?)
}

/// Takes this node out of the membership once its network is gone here: the other nodes
/// drop its peers at their next look instead of after the lease. Idempotent.
pub fn leave(net: &Network, state_dir: &Path) -> Result<(), CniError> {
    let Some(member) = net.overlay.as_ref().and_then(|o| o.member.as_ref()) else {
        return Ok(());
    };
    EtcdMembership::new(member, net.spec.name().as_str(), state_dir)
        .and_then(|e| e.leave())
        .map_err(failed)
}
