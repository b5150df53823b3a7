//! Garbage collection: finish or undo what interrupted processes left, forget endpoints and
//! links whose namespace was deleted behind nsnet's back, and put back firewall elements that
//! rows still own.

use nsnet_core::firewall::FwChange;
use nsnet_core::ops::KernelOp;
use nsnet_store::{RowState, StoreError};
use nsnet_sys::kernel::{FailKind, Kernel};
use serde::Serialize;

use crate::network::ns_ref;
use crate::{Engine, EngineError};

/// What `gc` removed or restored.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub endpoints: Vec<String>,
    pub links: Vec<String>,
    /// Firewall elements of ready rows that were missing and were put back.
    pub elements: Vec<String>,
    pub errors: Vec<String>,
}

impl<K: Kernel> Engine<K> {
    /// Whether a row is left over from an interrupted operation: `creating` or `removing`
    /// while the process that wrote it is gone.
    fn interrupted(&mut self, state: RowState, pid: u32, boot_id: &str) -> bool {
        state != RowState::Ready && self.owner_gone(pid, boot_id)
    }

    /// Removes leftovers of interrupted operations and endpoints/links whose namespace is gone.
    /// A `creating` row is rolled back (the old state); a `removing` row is finished (the new
    /// state).
    pub fn gc(&mut self) -> Result<GcReport, EngineError> {
        self.gc_observed(|_, _, _| {})
    }

    /// `gc`, calling `progress(done, total, row)` as it examines each row (containers,
    /// endpoints, links, networks); `total` is counted up front, so the last call may come
    /// before `done` reaches it when removing a container took its endpoints along.
    pub fn gc_observed(
        &mut self,
        mut progress: impl FnMut(usize, usize, &str),
    ) -> Result<GcReport, EngineError> {
        let total = self.store.read(|tx| {
            Ok::<_, StoreError>(
                tx.containers()?.len()
                    + tx.networks()?.len()
                    + tx.endpoints()?.len()
                    + tx.links()?.len(),
            )
        })?;
        let mut done = 0;
        let mut tick = |what: &str| {
            done += 1;
            progress(done.min(total), total, what);
        };
        let mut report = GcReport::default();
        // Containers first: removing one disconnects its endpoints the regular way.
        self.gc_containers(&mut report, &mut tick)?;
        let (networks, endpoints, links) = self
            .store
            .read(|tx| Ok::<_, StoreError>((tx.networks()?, tx.endpoints()?, tx.links()?)))?;
        // Networks being removed go whole: their endpoints with them.
        for n in &networks {
            if n.state == RowState::Removing && self.owner_gone(n.pid, &n.boot_id) {
                match self.remove_network(n.spec.name(), true) {
                    Ok(()) => report.networks.push(n.spec.name().to_string()),
                    Err(err) => report.errors.push(err.to_string()),
                }
            }
        }
        let mut emptied = std::collections::BTreeSet::new();
        for e in endpoints {
            tick(&format!("endpoint {} on network {}", e.netns, e.network));
            let interrupted = self.interrupted(e.state, e.pid, &e.boot_id);
            let gone = e.state == RowState::Ready && !self.kernel.netns_exists(&ns_ref(&e.netns));
            if !interrupted && !gone {
                continue;
            }
            // A finished removal hands the default routes on, as the disconnect would have.
            let promote = e.state == RowState::Removing;
            match self.remove_endpoint(e.id, promote) {
                Ok(()) => {
                    report
                        .endpoints
                        .push(format!("{} on network {}", e.netns, e.network));
                    emptied.insert(e.network.clone());
                }
                Err(err) => report.errors.push(err.to_string()),
            }
        }
        // A network a runtime's configuration owns goes with its last attachment, also when
        // that attachment is collected here rather than DELeted (networks made with the CLI
        // or a topology file stay).
        for name in emptied {
            match self.release_if_unused(&name) {
                Ok(true) => report.networks.push(name.to_string()),
                Ok(false) => {}
                Err(err) => report.errors.push(err.to_string()),
            }
        }
        for l in links {
            tick(&format!("link {}:{}", l.a.netns, l.a.ifname));
            let gone = l.state == RowState::Ready
                && (!self.kernel.netns_exists(&ns_ref(&l.a.netns))
                    || !self.kernel.netns_exists(&ns_ref(&l.b.netns)));
            if self.interrupted(l.state, l.pid, &l.boot_id) || gone {
                match self.remove_link(l.id) {
                    Ok(()) => report.links.push(format!(
                        "{}:{} - {}:{}",
                        l.a.netns, l.a.ifname, l.b.netns, l.b.ifname
                    )),
                    Err(err) => report.errors.push(err.to_string()),
                }
            }
        }
        for n in networks {
            tick(&format!("network {}", n.spec.name()));
            if n.state == RowState::Creating && self.owner_gone(n.pid, &n.boot_id) {
                match self.remove_network(n.spec.name(), true) {
                    Ok(()) => report.networks.push(n.spec.name().to_string()),
                    Err(err) => report.errors.push(err.to_string()),
                }
            }
        }
        self.restore_elements(&mut report)?;
        // A network create killed after installing the tables but before its commit leaves
        // tables without a network: they go with the last network, as `network rm` does.
        let kernel = &mut self.kernel;
        self.store.write(|tx| {
            if tx.networks()?.is_empty() {
                kernel.fw_remove()?;
            }
            Ok::<_, EngineError>(())
        })?;
        Ok(report)
    }

    /// Puts back the firewall elements that ready rows own but the kernel lacks: a port
    /// published by a process killed between its commit and its firewall change, or removed
    /// by one killed between its firewall change and its commit. Skipped when nsnet's tables
    /// are gone altogether (that is `repair`'s job).
    fn restore_elements(&mut self, report: &mut GcReport) -> Result<(), EngineError> {
        let wanted = self.owned_elements()?;
        let mut missing = Vec::new();
        for elem in wanted {
            match self.kernel.fw_has(&elem) {
                Ok(true) => {}
                Ok(false) => missing.push(elem),
                Err(err) => {
                    report.errors.push(err.to_string());
                    return Ok(());
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
        let batch = KernelOp::Firewall(missing.into_iter().map(FwChange::Add).collect());
        match self.kernel.apply(&batch) {
            Ok(()) => report.elements = names,
            // No table at all: a flushed ruleset, which `repair` rebuilds with its skeleton.
            Err(err) if err.kind == FailKind::NotFound => report.errors.push(format!(
                "{} firewall element(s) missing and nsnet's tables are gone: run `nsnet repair`",
                names.len()
            )),
            Err(err) => report.errors.push(err.to_string()),
        }
        Ok(())
    }
}
