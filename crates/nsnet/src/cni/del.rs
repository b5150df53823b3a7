//! DEL: remove the attachment named by container id and interface, found in nsnet's store,
//! so it works with an empty CNI_NETNS or a namespace that is gone; a second DEL finds nothing
//! and succeeds. A network the configuration created goes with its last attachment.

use nsnet_engine::CniKey;

use super::config::Basics;
use super::env::CniEnv;
use super::error::CniError;

/// Runs DEL.
pub fn run(env: &CniEnv, basics: &Basics) -> Result<(), CniError> {
    let key = CniKey {
        network: basics.name()?,
        container_id: env.container_id.clone(),
        ifname: env.ifname.clone().expect("DEL has CNI_IFNAME"),
    };
    let Some(mut engine) = super::open_for_del(basics)? else {
        tracing::debug!(%key, "CNI DEL: no state store, nothing attached");
        return Ok(());
    };
    let removed = engine.cni_del(&key)?;
    // Also when this DEL found nothing: an earlier DEL may have died before the network went.
    let released = engine.cni_release(&key.network)?;
    tracing::debug!(%key, removed, released, "CNI DEL");
    Ok(())
}
