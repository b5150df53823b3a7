//! nsnet's operations. Each one: validate, take the store's write lock, plan (pure), record
//! the intent, apply through the kernel backend with an undo list, and commit — or undo
//! everything and leave no row, link or address behind.

mod apply;
mod attachment;
mod bandwidth;
mod bulk;
mod bulk_connect;
mod conflict;
mod container;
mod doctor;
mod ensure;
mod error;
mod gc;
mod link;
mod mac;
pub mod membership;
mod netns;
mod network;
mod overlay;
mod ports;
mod primary;
mod removal;
mod repair;
mod route;
mod switch_repair;
mod topology;
mod verify;
mod veth_repair;
pub mod views;

pub use attachment::{AttachRequest, AttachmentGc, Detached, OwnerKey};
pub use conflict::{Conflict, Hint};
pub use container::{ContainerNet, ContainerView, ExecTarget, RunRequest};
pub use doctor::StoreHealth;
pub use ensure::{Difference, Ensured, Mismatch, Property};
pub use error::EngineError;
pub use gc::GcReport;
pub use link::LinkRequest;
pub use network::{ConnectRequest, NetworkRequest};
pub use ports::PortView;
pub use repair::RepairReport;
pub use route::route_dest;
pub use verify::{FirewallHealth, Problem, Verified, VerifyRequest, Which};

use nsnet_store::Store;
use nsnet_sys::kernel::Kernel;

/// The engine: one store, one kernel backend, and who we are (for crash recovery).
pub struct Engine<K: Kernel> {
    store: Store,
    kernel: K,
    pid: u32,
    boot_id: String,
}

impl<K: Kernel> Engine<K> {
    /// An engine acting as process `pid` in boot `boot_id`.
    pub fn new(store: Store, kernel: K, pid: u32, boot_id: String) -> Self {
        Engine {
            store,
            kernel,
            pid,
            boot_id,
        }
    }

    /// The kernel backend (tests inspect fakes through this).
    pub fn kernel(&mut self) -> &mut K {
        &mut self.kernel
    }

    /// The store (tests count rows through this).
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }
}
