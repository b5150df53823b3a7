//! Opening the engine for a command: state directory, kernel backend, who we are.

use std::path::Path;

use anyhow::Context;
use nsnet_engine::Engine;
use nsnet_store::Store;
use nsnet_sys::live::LiveKernel;

/// The engine on the live kernel.
pub type LiveEngine = Engine<LiveKernel>;

/// Boot id of the running kernel: rows from other boots are leftovers.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The live kernel backend of the state in `state_dir`: nsnet's own Open vSwitch daemons, when
/// a network needs them, keep their files in its `ovs` directory.
pub fn kernel(state_dir: &Path) -> LiveKernel {
    LiveKernel::new().with_ovs_dir(state_dir.join("ovs"))
}

/// Opens the store in `state_dir` and the live kernel backend.
pub fn open(state_dir: &Path) -> anyhow::Result<LiveEngine> {
    let mut store = Store::open(state_dir)
        .with_context(|| format!("open nsnet state in {}", state_dir.display()))?;
    // Every command opens its engine once and exits after it (see `Store::close_at_exit`).
    store.close_at_exit();
    Ok(Engine::new(
        store,
        kernel(state_dir),
        std::process::id(),
        boot_id(),
    ))
}
