//! Rate limits on an attachment (the CNI `bandwidth` capability): traffic to the owner is
//! shaped on the egress of the host end of its veth, traffic from it on the egress of its
//! interface inside its namespace. Both are root qdiscs of the veth, so they go with it when
//! the attachment is removed. The reference bandwidth plugin shapes the second direction on
//! an ifb device fed by a mirred redirect from the host end's ingress; shaping where the
//! traffic leaves needs no third device, and a pod has no CAP_NET_ADMIN to change it. The
//! limits are recorded (`shapings`), so `repair` restores a qdisc deleted behind nsnet's back.

use nsnet_core::names::NetName;
use nsnet_core::ops::{KernelOp, NsRef};
use nsnet_core::shaping::Shaping;
use nsnet_sys::kernel::Kernel;

use crate::network::ns_ref;
use crate::{Engine, EngineError, OwnerKey};

impl<K: Kernel> Engine<K> {
    /// Limits the traffic to (`to`) and from (`from`) the attachment `key` on `network`; an
    /// empty shaping leaves that direction alone.
    pub fn attachment_shape(
        &mut self,
        network: &NetName,
        key: &OwnerKey,
        to: Shaping,
        from: Shaping,
    ) -> Result<(), EngineError> {
        to.validate()?;
        from.validate()?;
        let Some(row) = self.attachment_row(network, key)? else {
            return Err(EngineError::not_found(
                "attachment",
                format!("{key} on network {network}"),
            ));
        };
        let netns = row.netns.clone();
        let ops = [
            (NsRef::Host, row.host_ifname.to_string(), to),
            (ns_ref(&netns), row.ifname.to_string(), from),
        ];
        let kernel = &mut self.kernel;
        // Recorded in the transaction that applies it, so `repair` can put a deleted qdisc
        // back; a kernel failure rolls the records back with it.
        self.store.write(|tx| {
            let mut done: Vec<(NsRef, String)> = Vec::new();
            for (ns, ifname, shaping) in ops {
                if shaping.is_empty() {
                    continue;
                }
                tx.set_shaping(&ns.to_string(), &ifname, &shaping)?;
                let op = KernelOp::Shape {
                    ns: ns.clone(),
                    ifname: ifname.clone(),
                    shaping,
                };
                if let Err(e) = kernel.apply(&op) {
                    // Half a limit is not what was asked: take the other direction's off again.
                    for (ns, ifname) in done {
                        let undo = KernelOp::Shape {
                            ns,
                            ifname,
                            shaping: Shaping::default(),
                        };
                        if let Err(u) = kernel.apply(&undo) {
                            tracing::warn!(error = %u, "undo of a rate limit");
                        }
                    }
                    return Err(EngineError::from(e));
                }
                done.push((ns, ifname));
            }
            Ok(())
        })
    }
}
