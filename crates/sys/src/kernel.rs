//! The engine's seam to the kernel: apply one `KernelOp`, manage namespace files, and read
//! live state for checks and `inspect`. `LiveKernel` does it for real; `FakeKernel` records.

use std::net::IpAddr;

use ipnet::IpNet;
use nsnet_core::firewall::FwElem;
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::port::PortMapping;
use serde::Serialize;

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

/// What the engine needs from the kernel (containers' processes included: `Processes`).
pub trait Kernel: crate::process::Processes {
    /// Applies one operation. `DeleteLink`, `DelAddr` and `DelRoute` of missing objects succeed.
    fn apply(&mut self, op: &KernelOp) -> Result<(), KernelError>;
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
    /// Whether process `pid` still runs (for garbage collection of interrupted operations).
    fn process_alive(&mut self, pid: u32) -> bool;
    /// Installs nsnet's firewall tables (the fixed skeleton) unless they exist. Callers hold
    /// the store's write lock, so two processes never install it twice.
    fn fw_ensure(&mut self) -> Result<(), KernelError>;
    /// Removes nsnet's firewall tables (missing is fine).
    fn fw_remove(&mut self) -> Result<(), KernelError>;
    /// Whether nsnet's firewall holds an element with the key of `elem` (a missing table or
    /// set counts as absent); an error means the firewall cannot be read at all.
    fn fw_has(&mut self, elem: &FwElem) -> Result<bool, KernelError>;
    /// Whether something in the host namespace already uses this host port (a listener or a
    /// bound socket), so publishing it would shadow or steal its traffic.
    fn port_busy(&mut self, m: &PortMapping) -> bool;
    /// Whether an interface of the host namespace holds `ip`, so traffic to it arrives here
    /// (a port published on any other address would never be reached).
    fn host_holds(&mut self, ip: IpAddr) -> bool;
}
