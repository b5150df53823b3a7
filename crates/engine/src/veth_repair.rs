//! An endpoint whose veth pair someone deleted (`ip -n NS link del eth0`, or the host end:
//! either end takes the other) while its namespace stays: found for `doctor` and made again
//! by `repair` exactly as recorded (names, MAC, addresses, port of its switch, MTU, default
//! routes when it carries its namespace's, recorded routes through it), with the connect
//! path's own plan. An attachment a runtime made through a namespace path (CNI, netavark)
//! is named, not made: its routes are the runtime's, which nsnet does not record. Its firewall
//! elements key on the host end's name and the addresses, which come back the same.
//! An endpoint whose namespace is gone is `gc`'s, not this module's.

use std::collections::HashMap;

use nsnet_core::endpoint::default_gateways;
use nsnet_core::model::NetworkSpec;
use nsnet_core::ops::KernelOp;
use nsnet_core::plan::{self, EndpointLayout};
use nsnet_store::{EndpointRow, RowState, Tx};
use nsnet_sys::kernel::{FailKind, Kernel, KernelError};

use crate::EngineError;
use crate::apply::rollback;
use crate::network::{ns_ref, primary_in};
use crate::verify::{Problem, veth_gone};

/// The ready endpoints of `endpoints` whose veth pair is gone while their namespace exists,
/// each with the problem `inspect --check` states. `host_end`: whether the host has an
/// interface of that name. Only the namespaces of endpoints without a host end are looked
/// into, and only at their links' names.
pub(crate) fn gone<'a, K: Kernel>(
    kernel: &mut K,
    endpoints: &'a [EndpointRow],
    host_end: impl Fn(&str) -> bool,
) -> Result<Vec<(&'a EndpointRow, Problem)>, EngineError> {
    let mut names: HashMap<&str, Option<Vec<String>>> = HashMap::new();
    let mut out = Vec::new();
    for e in endpoints.iter().filter(|e| e.state == RowState::Ready) {
        if host_end(e.host_ifname.as_str()) {
            continue;
        }
        if !names.contains_key(e.netns.as_str()) {
            let ns = ns_ref(&e.netns);
            // A namespace that goes between the two questions is gone: gc's, as if it had
            // gone before (an error here would stop the whole repair halfway).
            let inside = match kernel.netns_exists(&ns) {
                true => match kernel
                    .interface_names(std::slice::from_ref(&ns))
                    .pop()
                    .expect("one per namespace")
                {
                    Ok(names) => Some(names),
                    Err(e) if e.kind == FailKind::NotFound => None,
                    Err(e) => return Err(e.into()),
                },
                false => None,
            };
            names.insert(e.netns.as_str(), inside);
        }
        if let Some(p) = veth_gone(e, false, names[e.netns.as_str()].as_deref()) {
            out.push((e, p));
        }
    }
    Ok(out)
}

/// The operations that make `ep`'s veth pair again: the connect path's veth part with the
/// recorded names, MAC and addresses, and the default routes when `ep` is its namespace's
/// primary endpoint (the rule `inspect` applies).
pub(crate) fn plan(
    tx: &Tx<'_>,
    spec: &NetworkSpec,
    ep: &EndpointRow,
) -> Result<Vec<KernelOp>, EngineError> {
    let in_ns = tx.endpoints_in_netns(&ep.netns)?;
    let primary = primary_in(tx, &in_ns)? == Some(ep.id);
    let layout = EndpointLayout {
        ns: ns_ref(&ep.netns),
        ifname: ep.ifname.clone(),
        host_ifname: ep.host_ifname.clone(),
        mac: ep.mac,
        addrs: ep.addrs.clone(),
        default_via: match primary {
            true => default_gateways(spec, &ep.addrs),
            false => Vec::new(),
        },
    };
    let mut ops = plan::remake_endpoint_veth(spec, &layout);
    // Routes `nsnet route add` recorded through a gateway on this endpoint's subnets went
    // with its device: back after its addresses.
    for r in tx.routes_in_netns(&ep.netns)? {
        if ep.addrs.iter().any(|a| a.contains(&r.via)) {
            ops.push(KernelOp::AddRoute {
                ns: ns_ref(&ep.netns),
                dest: r.dest,
                via: Some(r.via),
                dev: None,
            });
        }
    }
    Ok(ops)
}

/// Applies `ops` (a `plan`): what exists already is kept, except the veth itself, and a
/// switch's port row already gone is fine; on a failure what was made is undone.
pub(crate) fn apply<K: Kernel>(kernel: &mut K, ops: &[KernelOp]) -> Result<(), KernelError> {
    let mut undo = Vec::with_capacity(ops.len());
    for op in ops {
        match kernel.apply(op) {
            Ok(()) => undo.extend(op.inverse()),
            Err(e) if e.kind == FailKind::Exists && !matches!(op, KernelOp::CreateVeth { .. }) => {}
            Err(e) if e.kind == FailKind::NotFound && matches!(op, KernelOp::OvsDelPort { .. }) => {
            }
            Err(e) => {
                rollback(kernel, &undo);
                return Err(e);
            }
        }
    }
    Ok(())
}
