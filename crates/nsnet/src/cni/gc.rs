//! GC: remove every attachment of the network (made for a container) that is not in
//! `cni.dev/valid-attachments`, releasing its addresses, firewall elements and links, and the
//! network itself when the configuration created it and nothing is left attached.

use super::config::NetConf;
use super::error::{CniError, code};
use super::version::Version;

/// Runs GC.
pub fn run(conf: &NetConf, version: Version) -> Result<(), CniError> {
    if !version.has_status_and_gc() {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            format!(
                "GC is not part of CNI {}: use cniVersion 1.1.0",
                version.as_str()
            ),
        ));
    }
    let name = conf.basics.name()?;
    let valid = conf.valid_attachments()?;
    let mut engine = super::open(&conf.basics)?;
    let report = engine.cni_gc(&name, &valid)?;
    for r in &report.removed {
        tracing::info!(network = %name, attachment = %r, "CNI GC removed");
    }
    if report.errors.is_empty() {
        // A network the configuration created goes with its last attachment.
        engine.cni_release(&name)?;
        Ok(())
    } else {
        Err(CniError::new(
            code::INTERNAL,
            format!(
                "GC of network {name} removed {} attachment(s) but failed on others: {}",
                report.removed.len(),
                report.errors.join("; ")
            ),
        ))
    }
}
