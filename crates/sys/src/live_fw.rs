//! The live kernel's firewall: nsnet's element changes as nf_tables batches over netlink,
//! and the skeleton through `nft -f` (once, under the store's write lock).

use std::net::IpAddr;

use nsnet_core::firewall::{self, FwChange, FwElem, FwKey, FwTarget};

use crate::kernel::KernelError;
use crate::nft::{self, ElemBatch, ElemOp, NftError, NftSocket, encode};

fn addr(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => encode::ipv4(v4),
        IpAddr::V6(v6) => encode::ipv6(v6),
    }
}

fn key(k: &FwKey) -> Vec<u8> {
    match k {
        FwKey::Ifname(n) => encode::ifname(n),
        FwKey::IfnamePair(a, b) => encode::concat(&[encode::ifname(a), encode::ifname(b)]),
        FwKey::ProtoPort(p, port) => {
            encode::concat(&[encode::proto(p.number()), encode::port(*port)])
        }
        FwKey::AddrProtoPort(ip, p, port) => {
            encode::concat(&[addr(*ip), encode::proto(p.number()), encode::port(*port)])
        }
    }
}

fn data(t: &FwTarget) -> Vec<u8> {
    encode::concat(&[addr(t.addr), encode::port(t.port)])
}

fn op(c: &FwChange) -> (u8, ElemOp) {
    let elem_op = |e: &FwElem, add: bool| {
        if add {
            ElemOp::Add {
                set: e.set.clone(),
                key: key(&e.key),
                data: e.data.as_ref().map(data),
                exclusive: true,
            }
        } else {
            ElemOp::Del {
                set: e.set.clone(),
                key: key(&e.key),
            }
        }
    };
    match c {
        FwChange::Add(e) => (e.family, elem_op(e, true)),
        FwChange::Del(e) => (e.family, elem_op(e, false)),
    }
}

/// A kernel error from an nft failure: missing table or set means someone removed nsnet's
/// tables, which `nsnet repair` rebuilds.
pub(crate) fn fw_err(what: &str, err: &NftError) -> KernelError {
    let kind = crate::live::fail_kind(err.is_exists(), err.is_not_found());
    let mut cause = err.to_string();
    if err.is_table_or_set_missing() {
        cause.push_str(" (nsnet's firewall tables are gone: run `nsnet repair`)");
    }
    KernelError::new(what, kind, cause)
}

/// Applies changes to both tables (inet, bridge) as one nf_tables transaction, in one round
/// trip: all or nothing. Changes that only delete and fail because some element is already
/// gone (removed by hand, or never added before a crash) are retried element by element, so
/// teardown removes everything that is still there instead of nothing.
pub(crate) fn apply(
    sock: &mut NftSocket,
    changes: &[FwChange],
    what: &str,
) -> Result<(), KernelError> {
    let mut inet = ElemBatch::new(firewall::FAMILY_INET, firewall::TABLE);
    let mut bridge = ElemBatch::new(firewall::FAMILY_BRIDGE, firewall::TABLE);
    for c in changes {
        let (family, o) = op(c);
        if family == firewall::FAMILY_BRIDGE {
            bridge.ops.push(o);
        } else {
            inet.ops.push(o);
        }
    }
    match sock.apply_all(&[&inet, &bridge]) {
        Ok(()) => Ok(()),
        Err(e)
            if e.is_not_found()
                && !e.is_table_or_set_missing()
                && changes.iter().all(|c| matches!(c, FwChange::Del(_))) =>
        {
            for batch in [&inet, &bridge] {
                for o in &batch.ops {
                    let mut single = ElemBatch::new(batch.family, batch.table.clone());
                    single.ops.push(o.clone());
                    match sock.apply(&single) {
                        Err(e) if !e.is_not_found() => return Err(fw_err(what, &e)),
                        _ => {}
                    }
                }
            }
            Ok(())
        }
        Err(e) => Err(fw_err(what, &e)),
    }
}

/// Whether the element's key is in its set (data of map elements is not compared).
pub(crate) fn has(sock: &mut NftSocket, elem: &FwElem, what: &str) -> Result<bool, KernelError> {
    sock.elem_exists(elem.family, firewall::TABLE, &elem.set, &key(&elem.key))
        .map_err(|e| fw_err(what, &e))
}

/// Installs the skeleton unless both tables exist; upgrades tables an older nsnet installed
/// in place, elements kept (so its new rules apply to networks made before).
pub(crate) fn ensure(sock: &mut NftSocket) -> Result<(), KernelError> {
    let what = "install nsnet firewall tables";
    let [inet, bridge, current] = sock
        .skeleton_parts_exist(
            firewall::FAMILY_INET,
            firewall::FAMILY_BRIDGE,
            firewall::TABLE,
            firewall::NEWEST_SET,
        )
        .map_err(|e| fw_err(what, &e))?;
    if inet && bridge {
        if current {
            return Ok(());
        }
        return nft::run_script(&firewall::upgrade_script())
            .map_err(|e| fw_err("upgrade nsnet firewall tables", &e));
    }
    // Re-running a skeleton duplicates rules: start from nothing (a half-present pair of
    // tables only happens after someone deleted one; `repair` restores the elements). One
    // netlink transaction: `nft -f` cost a process and a ruleset dump, most of a cold create.
    sock.install_skeleton(inet || bridge)
        .map_err(|e| fw_err(what, &e))
}

/// Removes both tables; missing ones are fine.
pub(crate) fn remove(sock: &mut NftSocket) -> Result<(), KernelError> {
    sock.remove_tables()
        .map_err(|e| fw_err("remove nsnet firewall tables", &e))
}
