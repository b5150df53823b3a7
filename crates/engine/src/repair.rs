//! `nsnet repair`: rebuild nsnet's firewall tables and every element from the store, e.g.
//! after `nft flush ruleset`, and re-apply the sysctls networks rely on.

use nsnet_core::firewall::{self, FwChange};
use nsnet_core::ops::KernelOp;
use nsnet_core::plan;
use nsnet_store::RowState;
use nsnet_sys::kernel::Kernel;
use serde::Serialize;

use crate::{Engine, EngineError};

/// What `repair` restored.
#[derive(Debug, Clone, Serialize)]
pub struct RepairReport {
    pub networks: usize,
    pub endpoints: usize,
    pub ports: usize,
    pub elements: usize,
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
                for e in tx.endpoints_of_network(n.spec.name())? {
                    if e.state == RowState::Removing {
                        continue;
                    }
                    endpoints += 1;
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
            }
            let elements = changes.len();
            progress(
                steps,
                steps,
                &format!("installing {elements} firewall element(s)"),
            );
            kernel.fw_remove()?;
            if !networks.is_empty() {
                kernel.fw_ensure()?;
                kernel.apply(&KernelOp::Firewall(changes))?;
                for op in &sysctls {
                    kernel.apply(op)?;
                }
            }
            Ok(RepairReport {
                networks: networks.len(),
                endpoints,
                ports,
                elements,
            })
        })
    }
}
