//! Applying a plan with an undo list, and best-effort teardown.

use nsnet_core::ops::KernelOp;
use nsnet_sys::kernel::{FailKind, Kernel, KernelError};

/// Which operation of a plan failed, and why: callers decide on the operation's kind, never
/// on the wording of its message.
#[derive(Debug)]
pub(crate) struct Failed {
    /// Index of the failed operation in the plan.
    pub op: usize,
    pub err: KernelError,
}

/// Applies `ops` in order. On the first failure, undoes the applied ones in reverse and returns
/// the failure (undo errors are logged: the original error is what the user needs).
pub(crate) fn apply_ops(kernel: &mut impl Kernel, ops: &[KernelOp]) -> Result<(), Failed> {
    let mut undo = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        match kernel.apply(op) {
            Ok(()) => undo.extend(op.inverse()),
            Err(err) => {
                rollback(kernel, &undo);
                return Err(Failed { op: i, err });
            }
        }
    }
    Ok(())
}

/// `apply_ops` when the caller needs only the error.
pub(crate) fn apply_all(kernel: &mut impl Kernel, ops: &[KernelOp]) -> Result<(), KernelError> {
    apply_ops(kernel, ops).map_err(|f| f.err)
}

/// Runs undo operations newest first, logging failures.
pub(crate) fn rollback(kernel: &mut impl Kernel, undo: &[KernelOp]) {
    for op in undo.iter().rev() {
        if let Err(err) = kernel.apply(op)
            && err.kind != FailKind::NotFound
        {
            tracing::warn!(%err, "rollback step failed");
        }
    }
}

/// Applies every op, treating missing objects as done, and collects the other errors.
pub(crate) fn teardown(kernel: &mut impl Kernel, ops: &[KernelOp]) -> Vec<String> {
    ops.iter()
        .filter_map(|op| match kernel.apply(op) {
            Err(err) if err.kind != FailKind::NotFound => Some(err.to_string()),
            _ => None,
        })
        .collect()
}

/// Waits for what `Net::start` began and collects its errors as `teardown` does.
pub(crate) fn finish_started(kernel: &mut impl Kernel) -> Vec<String> {
    kernel
        .finish_started()
        .into_iter()
        .filter_map(|res| match res {
            Err(err) if err.kind != FailKind::NotFound => Some(err.to_string()),
            _ => None,
        })
        .collect()
}
