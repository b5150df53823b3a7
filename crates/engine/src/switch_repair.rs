//! `repair` of a network's switch: whatever of it is missing made again from the store. Open
//! vSwitch's daemons restarted if they died, its switch, local port, gateway addresses and
//! ports; a Linux bridge someone deleted, with its gateway addresses and its ports (the host
//! ends it left detached); an overlay's VXLAN device; host ends someone set down.

use nsnet_core::model::{Driver, NetworkSpec};
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::switch;
use nsnet_sys::kernel::{FailKind, Kernel};

use crate::EngineError;

/// Restores the switch of `spec` with the ports `host_ifnames`, keeping what is there.
/// Returns the host ends of `host_ifnames` that do not exist (what `repair` then looks at for
/// veth pairs to make again: learnt here for free, instead of by dumping the host's links).
pub(crate) fn restore<K: Kernel>(
    kernel: &mut K,
    spec: &NetworkSpec,
    host_ifnames: &[String],
) -> Result<Vec<String>, EngineError> {
    let sw = switch::of(spec);
    // Sysctls are re-applied by `repair` itself once the devices exist again; a Linux
    // bridge's are kept in its sequence too, as some must come before it goes up (IPv6's DAD
    // off for the gateway).
    let ops: Vec<KernelOp> = match spec.driver() {
        // Open vSwitch keeps its own database to restore.
        Driver::Ovs => sw
            .create(spec)
            .into_iter()
            .chain(host_ifnames.iter().flat_map(|p| sw.attach(spec, p)))
            .filter(|op| !matches!(op, KernelOp::Sysctl { .. }))
            .collect(),
        // A Linux bridge deleted by hand is made again with its pinned MAC and gateway
        // addresses, and the host ends it left detached become its ports again; an
        // overlay's device likewise (its peers follow, see `crate::overlay::restore_peers`).
        // What exists already is kept: the bridge, the addresses, a port's master.
        Driver::Bridge | Driver::Vxlan => {
            let bridge = spec.bridge().to_string();
            sw.create(spec)
                .into_iter()
                .chain(host_ifnames.iter().flat_map(|p| {
                    std::iter::once(KernelOp::SetMaster {
                        ifname: p.clone(),
                        master: bridge.clone(),
                    })
                    .chain(sw.attach(spec, p))
                }))
                .collect()
        }
    };
    for op in ops {
        match kernel.apply(&op) {
            Err(e) if e.kind == FailKind::Exists => {}
            // A host end whose namespace went without nsnet (gc's to collect) or that a
            // connect has recorded but not made yet.
            Err(e)
                if e.kind == FailKind::NotFound
                    && matches!(op, KernelOp::SetMaster { .. } | KernelOp::Hairpin { .. }) => {}
            // Open vSwitch cannot take a port whose device is gone (its veth pair deleted, and
            // its port row with it): that host end is missing, for the veth repair to make.
            Err(e) if e.kind == FailKind::NotFound && matches!(op, KernelOp::OvsAddPort { .. }) => {
            }
            res => res?,
        }
    }
    // Last, so a port made again above is up too; a down host end carries no frame.
    let mut missing = Vec::new();
    for p in host_ifnames {
        let up = KernelOp::LinkUp {
            ns: NsRef::Host,
            ifname: p.clone(),
        };
        match kernel.apply(&up) {
            Err(e) if e.kind == FailKind::NotFound => missing.push(p.clone()),
            res => res?,
        }
    }
    Ok(missing)
}
