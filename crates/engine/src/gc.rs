//! Garbage collection: finish or undo what interrupted processes left, and forget endpoints
//! whose namespace was deleted behind nsnet's back.

use nsnet_core::names::NetName;
use nsnet_core::plan;
use nsnet_store::{RowState, StoreError};
use nsnet_sys::kernel::Kernel;
use serde::Serialize;

use crate::apply::teardown;
use crate::network::ns_ref;
use crate::{Engine, EngineError};

/// What `gc` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub endpoints: Vec<String>,
    pub links: Vec<String>,
    pub errors: Vec<String>,
}

impl<K: Kernel> Engine<K> {
    /// A row is orphaned when it is `creating` and its process is gone (or from another boot).
    fn orphaned(&mut self, state: RowState, pid: u32, boot_id: &str) -> bool {
        state == RowState::Creating && (boot_id != self.boot_id || !self.kernel.process_alive(pid))
    }

    /// Removes leftovers of interrupted operations and endpoints/links whose namespace is gone.
    pub fn gc(&mut self) -> Result<GcReport, EngineError> {
        let mut report = GcReport::default();
        // Containers first: removing one disconnects its endpoints the regular way.
        self.gc_containers(&mut report)?;
        let (networks, endpoints, links) = self
            .store
            .read(|tx| Ok::<_, StoreError>((tx.networks()?, tx.endpoints()?, tx.links()?)))?;
        for e in endpoints {
            let ns = ns_ref(&e.netns);
            let gone = !self.kernel.netns_exists(&ns);
            if self.orphaned(e.state, e.pid, &e.boot_id) || gone {
                let fw = self
                    .store
                    .read(|tx| crate::network::endpoint_firewall(tx, &e))?;
                let errors = teardown(
                    &mut self.kernel,
                    &plan::disconnect(&e.host_ifname, fw, None),
                );
                if errors.is_empty() {
                    self.store.write(|tx| tx.delete_endpoint(e.id))?;
                    report
                        .endpoints
                        .push(format!("{} on network {}", e.netns, e.network));
                } else {
                    report.errors.extend(errors);
                }
            }
        }
        for l in links {
            let gone = !self.kernel.netns_exists(&ns_ref(&l.a.netns))
                || !self.kernel.netns_exists(&ns_ref(&l.b.netns));
            if self.orphaned(l.state, l.pid, &l.boot_id) || gone {
                match self.remove_link_row(&l) {
                    Ok(()) => report.links.push(format!(
                        "{}:{} - {}:{}",
                        l.a.netns, l.a.ifname, l.b.netns, l.b.ifname
                    )),
                    Err(err) => report.errors.push(err.to_string()),
                }
            }
        }
        for n in networks {
            if self.orphaned(n.state, n.pid, &n.boot_id) {
                let name: NetName = n.spec.name.clone();
                let errors = teardown(&mut self.kernel, &plan::remove_network(&n.spec));
                if errors.is_empty() {
                    self.store.write(|tx| tx.delete_network(&name))?;
                    report.networks.push(name.to_string());
                } else {
                    report.errors.extend(errors);
                }
            }
        }
        Ok(report)
    }
}
