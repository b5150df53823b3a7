//! Checking a plan before its first change. The plan is played, change by change, on a model
//! of what exists — the store's objects and who owns them, and the kernel's interfaces and
//! routes in every namespace — with the rules the engine's operations apply, so a conflict
//! (an overlapping subnet, a host port published elsewhere, an address or interface name in
//! use, an object another owner made) is reported while nothing has been touched yet.
//! Addresses are allocated here too, so what the check saw is what the apply does.
//!
//! The order is chosen here: creations first and removals last when nothing created needs
//! what a removal frees, so a failure part-way disturbs as little as possible of what existed.

mod world;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::names::NetName;
use crate::port::PortMapping;

use super::{Change, Desired, Observed};
use world::World;

/// A plan that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The changes, in the order they are applied.
    pub changes: Vec<Change>,
    /// The addresses each endpoint (network, namespace) gets, one per subnet: the ones the
    /// file asks for and the ones allocated around every address the plan asks for later.
    pub addresses: BTreeMap<(NetName, String), Vec<IpAddr>>,
}

/// Host ports the plan publishes (to ask the kernel which ones a listener holds).
pub fn ports_added(changes: &[Change]) -> Vec<PortMapping> {
    changes
        .iter()
        .flat_map(|c| match c {
            Change::Connect { endpoint, .. } => endpoint.publish.clone(),
            Change::AddPorts { ports, .. } => ports.clone(),
            Change::RunContainer { container, .. } => container.publish.clone(),
            _ => Vec::new(),
        })
        .collect()
}

/// Checks `changes` (the diff of `desired` against `observed`) against everything that
/// exists; `busy` holds the host ports a listener on the host uses. Returns the order to
/// apply them in and the addresses to give, or the first conflict, naming the object.
pub fn preflight(
    desired: &Desired,
    observed: &Observed,
    changes: Vec<Change>,
    busy: &BTreeSet<PortMapping>,
) -> Result<Prepared, String> {
    for n in &desired.namespaces {
        if observed.containers.iter().any(|c| c.name == n.as_str()) {
            return Err(format!(
                "namespace {n}: container {n} already has a network namespace of that name; \
                 rename the file's namespace"
            ));
        }
    }
    let removal = |c: &Change| {
        matches!(
            c,
            Change::RemoveRoute(_)
                | Change::RemoveLink { .. }
                | Change::RemovePorts { .. }
                | Change::Disconnect { .. }
                | Change::RemoveNetwork(_)
                | Change::RemoveNetns(_)
                | Change::RemoveContainer(_)
        )
    };
    // Removing a namespace or a container cannot be undone exactly (what ran in it is gone).
    let final_removal =
        |c: &Change| matches!(c, Change::RemoveNetns(_) | Change::RemoveContainer(_));
    let pick = |f: &dyn Fn(&Change) -> bool| -> Vec<Change> {
        changes.iter().filter(|c| f(c)).cloned().collect()
    };
    let creations_first: Vec<Change> = [pick(&|c| !removal(c)), pick(&removal)].concat();
    let final_removals_last: Vec<Change> = [
        pick(&|c| removal(c) && !final_removal(c)),
        pick(&|c| !removal(c)),
        pick(&final_removal),
    ]
    .concat();
    // The plan's own order (removals first) frees everything before it is reused: its first
    // conflict is the one to report. Another order is taken only when it gives every endpoint
    // the same addresses and interface names, so that the order changes what a failure
    // disturbs, never the result.
    let outcome = World::new(desired, observed, busy).run(&changes)?;
    for order in [creations_first, final_removals_last] {
        if order != changes
            && World::new(desired, observed, busy)
                .run(&order)
                .is_ok_and(|o| o == outcome)
        {
            return Ok(Prepared {
                changes: order,
                addresses: outcome.addresses,
            });
        }
    }
    Ok(Prepared {
        changes,
        addresses: outcome.addresses,
    })
}

/// What a plan gives the endpoints it connects.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Outcome {
    pub(super) addresses: BTreeMap<(NetName, String), Vec<IpAddr>>,
    pub(super) ifnames: BTreeMap<(NetName, String), String>,
}

/// The addresses a change asks for by name, per network.
pub(super) fn requested(c: &Change) -> Vec<(NetName, IpAddr)> {
    match c {
        Change::Connect { endpoint, .. } => endpoint
            .ips
            .iter()
            .map(|ip| (endpoint.network.clone(), *ip))
            .collect(),
        Change::RunContainer { container, .. } => container
            .networks
            .iter()
            .filter_map(|(n, ip)| ip.map(|ip| (n.clone(), ip)))
            .collect(),
        _ => Vec::new(),
    }
}
