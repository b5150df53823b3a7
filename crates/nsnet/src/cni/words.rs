//! The CNI face's words for what the engine reports: an attachment's owner is a container,
//! DEL removes an attachment, a network's properties are the configuration's keys
//! (`ipMasq`), and missing firewall elements come with the command that restores them.

use nsnet_core::names::NetName;
use nsnet_engine::{Conflict, EngineError, Mismatch, OwnerKey, Problem, Property};

/// An attachment as the runtime knows it.
pub fn attachment(network: &NetName, key: &OwnerKey) -> String {
    format!(
        "container {} interface {} on network {network}",
        key.owner_id, key.ifname
    )
}

/// The removal of an attachment, as an operation errors happen in.
pub fn detach(network: &NetName, key: &OwnerKey) -> String {
    format!(
        "detach container {} interface {} from network {network}",
        key.owner_id, key.ifname
    )
}

/// The configuration key of a network property.
fn key(p: Property) -> &'static str {
    match p {
        Property::Masquerade => "ipMasq",
        other => other.name(),
    }
}

/// A configuration that defines an existing network otherwise, and what to do about it.
pub fn mismatch(m: &Mismatch) -> String {
    let differences: Vec<String> = m
        .differences
        .iter()
        .map(|d| {
            format!(
                "{} {} (configuration: {})",
                key(d.property),
                d.stored,
                d.requested
            )
        })
        .collect();
    let n = &m.network;
    let remedy = if m.replaceable {
        format!(
            "it takes the new definition once nothing is attached to it (`nsnet network inspect {n}` lists what is)"
        )
    } else {
        format!(
            "make the configuration match, or remove the network once nothing is attached (nsnet network rm {n})"
        )
    };
    format!(
        "invalid network configuration {:?}: network {n} already exists with {}; {remedy}",
        n.as_str(),
        differences.join(", ")
    )
}

/// One finding of CHECK.
pub fn problem(p: &Problem) -> String {
    match p {
        Problem::FirewallElementMissing(e) => {
            format!("firewall element {e} is missing (`nsnet repair` restores it)")
        }
        other => other.to_string(),
    }
}

/// An engine failure, with the operations it happened in.
pub fn message(e: &EngineError) -> String {
    match e {
        EngineError::Context { op, cause } => format!("{op}: {}", message(cause)),
        EngineError::Conflict(Conflict::AlreadyAttached {
            key,
            network,
            netns,
            addrs,
        }) => format!(
            "{} is already attached (in netns {netns}, addresses {}); DEL it first",
            attachment(network, key),
            addrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        EngineError::Conflict(Conflict::DefinitionDiffers(m)) => mismatch(m),
        other => other.to_string(),
    }
}
