//! DEL: remove the attachment named by container id and interface, found in nsnet's store,
//! so it works with an empty CNI_NETNS or a namespace that is gone; a second DEL finds nothing
//! and succeeds.

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
    let mut engine = super::open(basics)?;
    let removed = engine.cni_del(&key)?;
    tracing::debug!(%key, removed, "CNI DEL");
    Ok(())
}
