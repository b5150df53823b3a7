//! `nsnet repair`: rebuild nsnet's firewall tables and every element from the store, e.g.
//! after `nft flush ruleset`, re-apply the sysctls networks rely on, and put back the rate
//! limits and shaping nsnet recorded on interfaces that still exist, and the overlay
//! devices and peers nsnet recorded for overlay networks, and endpoints' veth pairs deleted
//! while their namespaces stay.

use nsnet_core::firewall::{self, FwChange};
use nsnet_core::ops::KernelOp;
use nsnet_core::plan;
use nsnet_store::RowState;
use nsnet_sys::kernel::{FailKind, Kernel};
use serde::Serialize;

use crate::network::ns_ref;
use crate::{Engine, EngineError};

/// What `repair` restored.
#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    pub networks: usize,
    pub endpoints: usize,
    pub ports: usize,
    pub elements: usize,
    /// Interfaces whose recorded shaping was applied again.
    pub shapings: usize,
    /// Overlay peers (remote hosts) whose entries were missing or drifted and were put back.
    pub overlay_peers: usize,
    /// Endpoints whose veth pair was gone and was made again as recorded.
    pub veths: usize,
    /// Endpoints whose veth pair could not be made again, each with the cause (what was made
    /// of it was undone).
    pub veths_left: Vec<String>,
}

impl<K: Kernel> Engine<K> {
    /// Reinstalls the firewall skeleton and all elements in one transaction per table set.
    pub fn repair(&mut self) -> Result<RepairReport, EngineError> {
        self.repair_observed(|_, _, _| {})
    }

    /// `repair`, calling `progress(step, steps, what)` for each network it collects elements
    /// for, then before the one kernel transaction that installs them all.
    pub fn repair_observed(
        &mut self,
        mut progress: impl FnMut(usize, usize, &str),
    ) -> Result<RepairReport, EngineError> {
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            let networks = tx.networks()?;
            let mut changes = Vec::new();
            let mut sysctls = Vec::new();
            let (mut endpoints, mut ports) = (0, 0);
            let mut switches = Vec::new();
            // Rows being removed keep no elements: `gc` or their remover finishes them.
            let networks: Vec<_> = networks
                .into_iter()
                .filter(|n| n.state != RowState::Removing)
                .collect();
            let steps = networks.len() + 1;
            for (i, n) in networks.iter().enumerate() {
                progress(i + 1, steps, &format!("network {}", n.spec.name()));
                changes.extend(
                    firewall::network_elements(&n.spec)
                        .into_iter()
                        .map(FwChange::Add),
                );
                sysctls.extend(
                    plan::create_network(&n.spec)
                        .into_iter()
                        .filter(|op| matches!(op, KernelOp::Sysctl { .. })),
                );
                let mut host_ifnames = Vec::new();
                for e in tx.endpoints_of_network(n.spec.name())? {
                    if e.state == RowState::Removing {
                        continue;
                    }
                    endpoints += 1;
                    // A connect still being made brings its own host end up (IPv6 off first,
                    // then up, in its own order): repair leaves its links alone, only its
                    // firewall elements (below) are reinstalled with everyone's.
                    if e.state == RowState::Ready {
                        host_ifnames.push(e.host_ifname.to_string());
                    }
                    changes.extend(
                        firewall::endpoint_elements(&n.spec, e.host_ifname.as_str())
                            .into_iter()
                            .map(FwChange::Add),
                    );
                    let mine: Vec<_> = tx
                        .ports(Some(e.id))?
                        .into_iter()
                        .map(|p| p.mapping)
                        .collect();
                    ports += mine.len();
                    changes.extend(
                        crate::ports::elements(&e, &mine)
                            .into_iter()
                            .map(FwChange::Add),
                    );
                }
                switches.push((&n.spec, host_ifnames));
            }
            let elements = changes.len();
            progress(
                steps,
                steps,
                &format!("installing {elements} firewall element(s)"),
            );
            let mut overlay_peers = 0;
            let (mut veths, mut veths_left) = (0, Vec::new());
            kernel.fw_remove()?;
            if !networks.is_empty() {
                kernel.fw_ensure()?;
                kernel.apply(&KernelOp::Firewall(changes))?;
                let mut missing = std::collections::HashSet::new();
                for (spec, host_ifnames) in &switches {
                    let restored = crate::switch_repair::restore(kernel, spec, host_ifnames)
                        .map_err(|e| e.during(format!("restore network {}", spec.name())))?;
                    missing.extend(restored);
                }
                for (spec, _) in &switches {
                    overlay_peers += crate::overlay::restore_peers(kernel, tx, spec)?;
                }
                // After the switches: a pair made again becomes a port of its bridge.
                for (spec, _) in &switches {
                    let mine = tx.endpoints_of_network(spec.name())?;
                    let host_end = |n: &str| !missing.contains(n);
                    for (e, _) in crate::veth_repair::gone(kernel, &mine, host_end)? {
                        // Recorded by its namespace's path: a runtime's attachment (CNI,
                        // netavark), whose routes came with its request and are not stored.
                        if e.netns.contains('/') {
                            veths_left.push(format!(
                                "endpoint {} on network {}: attached by a container runtime, \
                                 whose routes nsnet does not record; have the runtime attach it \
                                 again (CNI DEL then ADD, or restart the container)",
                                e.netns,
                                spec.name()
                            ));
                            continue;
                        }
                        let ops = crate::veth_repair::plan(tx, spec, e)?;
                        match crate::veth_repair::apply(kernel, &ops) {
                            Ok(()) => veths += 1,
                            Err(err) => veths_left.push(format!(
                                "endpoint {} on network {}: {err}",
                                e.netns,
                                spec.name()
                            )),
                        }
                    }
                }
                for op in &sysctls {
                    kernel.apply(op)?;
                }
            }
            let mut shapings = 0;
            for row in tx.shapings()? {
                let op = KernelOp::Shape {
                    ns: ns_ref(&row.netns),
                    ifname: row.ifname.clone(),
                    shaping: row.shaping,
                };
                // An interface whose namespace went without nsnet is `gc`'s to clean up.
                match kernel.apply(&op) {
                    Ok(()) => shapings += 1,
                    Err(e) if e.kind == FailKind::NotFound => {
                        tracing::info!(netns = %row.netns, ifname = %row.ifname, "repair: shaped interface is gone");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(RepairReport {
                networks: networks.len(),
                endpoints,
                ports,
                elements,
                shapings,
                overlay_peers,
                veths,
                veths_left,
            })
        })
    }
}
