//! `repair` for switches that live outside the kernel's own objects (Open vSwitch): its
//! daemons restarted if they died, and whatever of the network's switch, local port,
//! gateway addresses and ports is missing made again from the store. A Linux bridge needs
//! nothing here: the kernel keeps it for as long as the host runs.

use nsnet_core::model::{Driver, NetworkSpec};
use nsnet_core::ops::KernelOp;
use nsnet_core::switch;
use nsnet_sys::kernel::{FailKind, Kernel};

use crate::EngineError;

/// Restores the switch of `spec` with the ports `host_ifnames`, keeping what is there.
pub(crate) fn restore<K: Kernel>(
    kernel: &mut K,
    spec: &NetworkSpec,
    host_ifnames: &[String],
) -> Result<(), EngineError> {
    // A Linux bridge (also under an overlay, whose device `repair` revives with the bridge)
    // comes back with the network; Open vSwitch keeps its own database to restore.
    if spec.driver() != Driver::Ovs {
        return Ok(());
    }
    let sw = switch::of(spec);
    // Sysctls are re-applied by `repair` itself, once the devices exist again.
    let ops = sw
        .create(spec)
        .into_iter()
        .chain(host_ifnames.iter().flat_map(|p| sw.attach(spec, p)))
        .filter(|op| !matches!(op, KernelOp::Sysctl { .. }));
    for op in ops {
        match kernel.apply(&op) {
            Err(e) if e.kind == FailKind::Exists => {}
            res => res?,
        }
    }
    Ok(())
}
