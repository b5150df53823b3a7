//! DEL: remove the attachment named by container id and interface, found in nsnet's store,
//! so it works with an empty CNI_NETNS or a namespace that is gone; a second DEL finds nothing
//! and succeeds. A network the configuration created goes with its last attachment.

use nsnet_engine::OwnerKey;

use super::config::{Basics, Network};
use super::env::CniEnv;
use super::error::CniError;
use super::words;

/// Runs DEL.
/// `conf` is the whole configuration when it still reads as a network: a multi-node overlay
/// whose network goes with this DEL leaves etcd too.
pub fn run(env: &CniEnv, basics: &Basics, conf: Option<&Network>) -> Result<(), CniError> {
    let network = basics.name()?;
    let key = OwnerKey {
        owner_id: env.container_id.clone(),
        ifname: env.ifname.clone().expect("DEL has CNI_IFNAME"),
    };
    let what = words::attachment(&network, &key);
    let Some(mut engine) = super::open_for_del(basics)? else {
        tracing::debug!(attachment = %what, "CNI DEL: no state store, nothing attached");
        return Ok(());
    };
    let removed = engine
        .detach(&network, &key)
        .map_err(|e| e.during(words::detach(&network, &key)))?;
    // Also when this DEL found nothing: an earlier DEL may have died before the network went.
    let released = engine.release_if_unused(&network)?;
    tracing::debug!(attachment = %what, removed, released, "CNI DEL");
    if released && let Some(net) = conf {
        // The other nodes would drop it when its lease expires anyway: say so, do not fail.
        if let Err(e) = super::overlay::leave(net, &basics.state_dir()?) {
            tracing::warn!(network = %network, error = %e.msg, "leave the overlay's membership");
        }
    }
    Ok(())
}
