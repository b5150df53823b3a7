//! The engine's seams to the kernel: `Net` (links, addresses, routes, sysctls, qdiscs and
//! namespace files), `Firewall` and `Processes`, composed as `Kernel`, which the engine is
//! generic over. `LiveKernel` does it for real; `FakeKernel` records and keeps the same
//! contract (written on each trait).

use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::firewall::{FwChange, FwElem};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::port::PortMapping;
use serde::Serialize;

use crate::process::Processes;

/// Why a kernel operation failed, in the terms the engine decides on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FailKind {
    /// The object exists already (EEXIST).
    Exists,
    /// The object or namespace is missing (ENODEV, ENOENT, ESRCH).
    NotFound,
    Other,
}

/// A failed kernel operation: what was attempted and why it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {cause}")]
pub struct KernelError {
    pub what: String,
    pub cause: String,
    pub kind: FailKind,
}

impl KernelError {
    /// An error about `what` with a cause and kind.
    pub fn new(what: impl Into<String>, kind: FailKind, cause: impl Into<String>) -> Self {
        KernelError {
            what: what.into(),
            cause: cause.into(),
            kind,
        }
    }
}

/// An interface as seen live in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IfaceView {
    pub name: String,
    pub index: u32,
    pub kind: Option<String>,
    pub up: bool,
    pub mac: Option<String>,
    pub mtu: Option<u32>,
    pub master: Option<String>,
    pub addrs: Vec<IpNet>,
    /// Egress shaping (netem root qdisc), if any.
    pub shaping: Option<nsnet_core::shaping::Shaping>,
}

/// A route as seen live in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteView {
    pub dest: IpNet,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub proto: String,
}

/// Interfaces and routes of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct NsView {
    pub interfaces: Vec<IfaceView>,
    pub routes: Vec<RouteView>,
}

/// The network seam: links, addresses, routes, sysctls, qdiscs and namespace files.
///
/// # Contract
///
/// `LiveKernel` and `FakeKernel` both keep it; `crates/sys/tests/kernel_contract.rs` runs one
/// scenario against each (the live one as root, in a throwaway sandbox).
///
/// - Creating an object that exists (a link by name in its namespace, an address on its
///   interface, a route with the same destination) is `Err(FailKind::Exists)`; so is
///   creating a named namespace that exists.
/// - Deleting a link, address or route that is missing is `Err(FailKind::NotFound)`; so is
///   any operation on an interface that does not exist, or in a named namespace that does
///   not exist. Callers that tear down treat `NotFound` as done (see the engine's `teardown`).
/// - Deleting one end of a veth deletes its peer too.
/// - `delete_netns` of a missing namespace is `Ok(false)`; deleting a namespace removes
///   everything in it.
/// - `view` of a missing named namespace is `Err(FailKind::NotFound)`.
pub trait Net {
    /// Applies one operation other than `KernelOp::Firewall` (which goes to `Firewall`; a
    /// firewall op here is refused with `FailKind::Other`).
    fn apply_net(&mut self, op: &KernelOp) -> Result<(), KernelError>;
    /// Creates a named namespace (a file under /run/netns) with `lo` up.
    fn create_netns(&mut self, name: &str) -> Result<(), KernelError>;
    /// Deletes a named namespace; Ok(false) when it did not exist.
    fn delete_netns(&mut self, name: &str) -> Result<bool, KernelError>;
    /// Names under /run/netns, sorted.
    fn list_netns(&mut self) -> Result<Vec<String>, KernelError>;
    /// Whether a namespace can be entered (host always can).
    fn netns_exists(&mut self, ns: &NsRef) -> bool;
    /// Live interfaces and routes of a namespace.
    fn view(&mut self, ns: &NsRef) -> Result<NsView, KernelError>;
    /// The main table's routes of `ns` that have a prefix (default routes left out) and
    /// overlap one of `nets`, with their devices' names. Unlike `view`, its cost does not grow
    /// with the namespace's links: the live kernel dumps only the routes of the families of
    /// `nets` and looks up the device of a matching route alone.
    fn routes_overlapping(
        &mut self,
        ns: &NsRef,
        nets: &[IpNet],
    ) -> Result<Vec<RouteView>, KernelError>;
    /// Whether something in the host namespace already uses this host port (a listener or a
    /// bound socket), so publishing it would shadow or steal its traffic.
    fn port_busy(&mut self, m: &PortMapping) -> bool;
    /// The routes, permanent neighbour and remote forwarding entries on the host's VXLAN
    /// device `dev` (`NotFound` when it is missing).
    fn overlay_entries(
        &mut self,
        dev: &str,
    ) -> Result<nsnet_core::overlay::LiveEntries, KernelError>;
    /// Whether an interface of the host namespace holds `ip`, so traffic to it arrives here
    /// (a port published on any other address would never be reached).
    fn host_holds(&mut self, ip: IpAddr) -> bool;
    /// `create_netns` of each name of `names`, one result per name, in order; the live
    /// kernel makes them on a few threads at once.
    fn create_netns_many(&mut self, names: &[String]) -> Vec<Result<(), KernelError>> {
        names.iter().map(|n| self.create_netns(n)).collect()
    }
    /// `view` of each namespace of `list`, in order; the live kernel takes them on a few
    /// threads at once.
    fn views(&mut self, list: &[NsRef]) -> Vec<Result<NsView, KernelError>> {
        list.iter().map(|ns| self.view(ns)).collect()
    }
    /// The interface names of each namespace of `list`, in order: what `views` gives of
    /// them, for less (the live kernel dumps the links alone).
    fn interface_names(&mut self, list: &[NsRef]) -> Vec<Result<Vec<String>, KernelError>> {
        self.views(list)
            .into_iter()
            .map(|v| Ok(v?.interfaces.into_iter().map(|i| i.name).collect()))
            .collect()
    }
    /// Deletes the links called `ifnames` of `ns` (a veth takes its peer along), one result
    /// per name as `apply_net(DeleteLink)` would give it; the live kernel deletes them in one
    /// unregister batch (one `rcu_barrier()` instead of one per link).
    fn delete_links(&mut self, ns: &NsRef, ifnames: &[String]) -> Vec<Result<(), KernelError>> {
        ifnames
            .iter()
            .map(|ifname| {
                self.apply_net(&KernelOp::DeleteLink {
                    ns: ns.clone(),
                    ifname: ifname.clone(),
                })
            })
            .collect()
    }

    /// Starts `op` on a helper thread when this backend can and it pays: deleting a link of
    /// the host namespace, whose RCU barriers keep the caller waiting 10-40 ms in the kernel,
    /// so that wait overlaps the caller's other work. True when started (the caller must not
    /// apply it again; `finish_started` reports it); false when the caller applies it itself.
    fn start(&mut self, op: &KernelOp) -> bool {
        let _ = op;
        false
    }
    /// Waits for the operations `start` began and returns their outcomes in the order they
    /// were started, each as `apply` would have returned it.
    fn finish_started(&mut self) -> Vec<Result<(), KernelError>> {
        Vec::new()
    }
}

/// The firewall seam: nsnet's nf_tables tables and their elements.
///
/// # Contract
///
/// - `apply_fw` applies all changes or none. With the tables missing it is
///   `Err(FailKind::NotFound)`. Adding an element whose key is present is
///   `Err(FailKind::Exists)`. A batch of only deletions removes what is present and succeeds
///   even when some elements are already gone; a deletion of a missing element inside a batch
///   that also adds is `Err(FailKind::NotFound)`. An empty batch is `Ok`.
/// - `fw_ensure` is idempotent; `fw_remove` of missing tables is `Ok` and drops every element.
/// - `fw_has` is `Ok(false)` when the tables or the element are missing.
pub trait Firewall {
    /// Applies firewall element changes as one transaction.
    fn apply_fw(&mut self, changes: &[FwChange]) -> Result<(), KernelError>;
    /// Installs nsnet's firewall tables (the fixed skeleton) unless they exist. Callers hold
    /// the store's write lock, so two processes never install it twice.
    fn fw_ensure(&mut self) -> Result<(), KernelError>;
    /// Removes nsnet's firewall tables (missing is fine).
    fn fw_remove(&mut self) -> Result<(), KernelError>;
    /// Whether nsnet's firewall holds an element with the key of `elem` (a missing table or
    /// set counts as absent); an error means the firewall cannot be read at all.
    fn fw_has(&mut self, elem: &FwElem) -> Result<bool, KernelError>;
}

/// What the engine needs from the kernel: the three seams, and one `apply` for any operation.
pub trait Kernel: Net + Firewall + Processes {
    /// Applies one operation: firewall changes through `Firewall`, the rest through `Net`.
    fn apply(&mut self, op: &KernelOp) -> Result<(), KernelError> {
        match op {
            KernelOp::Firewall(changes) => self.apply_fw(changes),
            op => self.apply_net(op),
        }
    }
}

impl<T: Net + Firewall + Processes> Kernel for T {}
