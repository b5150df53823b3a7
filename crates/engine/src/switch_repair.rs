//! `repair` for switches that live outside the kernel's own objects (Open vSwitch): its
//! daemons restarted if they died, and whatever of the network's switch, local port,
//! gateway addresses and ports is missing made again from the store; and an overlay's VXLAN
//! device someone deleted. A Linux bridge needs nothing here: the kernel keeps it for as long
//! as the host runs.

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
    let sw = switch::of(spec);
    // Sysctls are re-applied by `repair` itself, once the devices exist again.
    let ops: Vec<KernelOp> = match spec.driver() {
        // Open vSwitch keeps its own database to restore.
        Driver::Ovs => sw
            .create(spec)
            .into_iter()
            .chain(host_ifnames.iter().flat_map(|p| sw.attach(spec, p)))
            .filter(|op| !matches!(op, KernelOp::Sysctl { .. }))
            .collect(),
        // An overlay's device, deleted by hand, is made again (its peers follow, see
        // `crate::overlay::restore_peers`); its bridge is a Linux bridge's, kept as is.
        Driver::Vxlan => {
            let Some(dev) = spec.overlay_dev() else {
                return Ok(());
            };
            sw.create(spec)
                .into_iter()
                .filter(|op| match op {
                    KernelOp::CreateVxlan { name, .. } => *name == dev,
                    KernelOp::AddAddr { ifname, .. } | KernelOp::LinkUp { ifname, .. } => {
                        *ifname == dev
                    }
                    _ => false,
                })
                .collect()
        }
        // A Linux bridge comes back with the network.
        _ => return Ok(()),
    };
    for op in ops {
        match kernel.apply(&op) {
            Err(e) if e.kind == FailKind::Exists => {}
            res => res?,
        }
    }
    Ok(())
}
