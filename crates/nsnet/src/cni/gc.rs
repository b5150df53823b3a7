//! GC: remove every attachment of the network (made for a container) that is not in
//! `cni.dev/valid-attachments`, releasing its addresses, firewall elements and links, and the
//! network itself when the configuration created it and nothing is left attached.

use nsnet_core::names::IfName;
use nsnet_engine::OwnerKey;

use super::config::NetConf;
use super::error::{CniError, code};
use super::version::Version;
use super::words;

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
    // An entry whose interface name nsnet could never have made names no attachment of ours.
    let keep: Vec<OwnerKey> = conf
        .valid_attachments()?
        .into_iter()
        .filter_map(|(owner_id, ifname)| {
            Some(OwnerKey {
                owner_id,
                ifname: IfName::new(&ifname).ok()?,
            })
        })
        .collect();
    let mut engine = super::open(&conf.basics)?;
    let report = engine.gc_attachments(&name, &keep)?;
    for d in &report.removed {
        let addrs: Vec<String> = d.addrs.iter().map(ToString::to_string).collect();
        tracing::info!(
            network = %name,
            attachment = %format!(
                "container {} interface {} ({})",
                d.key.owner_id,
                d.key.ifname,
                addrs.join(", ")
            ),
            "CNI GC removed"
        );
    }
    if report.failed.is_empty() {
        // A network the configuration created goes with its last attachment.
        engine.release_if_unused(&name)?;
        Ok(())
    } else {
        let errors: Vec<String> = report
            .failed
            .iter()
            .map(|(key, e)| format!("{}: {}", words::detach(&name, key), words::message(e)))
            .collect();
        Err(CniError::new(
            code::INTERNAL,
            format!(
                "GC of network {name} removed {} attachment(s) but failed on others: {}",
                report.removed.len(),
                errors.join("; ")
            ),
        ))
    }
}
