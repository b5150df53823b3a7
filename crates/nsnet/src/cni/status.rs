//! STATUS: can the network take new attachments? 50 when the store or the firewall cannot
//! be used, 51 when existing attachments may have lost connectivity (nsnet's firewall
//! elements are gone, e.g. after `nft flush ruleset`: `nsnet repair` restores them).

use nsnet_engine::FirewallHealth;

use super::config::Basics;
use super::error::{CniError, code};
use super::version::Version;

/// Runs STATUS.
pub fn run(basics: &Basics, version: Version) -> Result<(), CniError> {
    if !version.has_status_and_gc() {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "STATUS is not part of CNI {}: use cniVersion 1.1.0",
                version.as_str()
            ),
        ));
    }
    let name = basics.name()?;
    let unavailable = |e: CniError| CniError::new(code::NOT_AVAILABLE, e.msg);
    let mut engine = super::open(basics).map_err(unavailable)?;
    match engine
        .firewall_health(&name)
        .map_err(|e| unavailable(e.into()))?
    {
        FirewallHealth::Ready => Ok(()),
        FirewallHealth::Unusable { cause } => Err(CniError::new(
            code::NOT_AVAILABLE,
            format!("network {name}: the firewall cannot be used: {cause}"),
        )),
        FirewallHealth::Degraded { missing } => Err(CniError::new(
            code::LIMITED_CONNECTIVITY,
            format!("firewall element {missing} of network {name} is missing: run `nsnet repair`"),
        )),
    }
}
