//! Engine errors: each names the object and what went wrong.

use nsnet_core::CoreError;
use nsnet_core::endpoint::ConnectConflict;

use crate::conflict::{Conflict, Hint, connect_hint};
use nsnet_store::StoreError;
use nsnet_sys::kernel::KernelError;

/// Why an operation failed. Nothing it changed is left behind.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Invalid(#[from] CoreError),
    #[error(transparent)]
    Connect(#[from] ConnectConflict),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("{kind} {name} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name} already exists")]
    Exists { kind: &'static str, name: String },
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// A refusal worded for people, that no face needs to tell apart from others (a
    /// topology plan that clashes with what exists, a container's init that outlives
    /// SIGKILL); the common ones a face maps are `Conflict` variants.
    #[error("{0}")]
    Refused(String),
    /// An error with the operation it happened in. Its message carries the inner one, so the
    /// inner error is deliberately not its `source()`: a chain printer (anyhow's `{:#}`)
    /// would state the cause twice (field named `cause`, not `source`, for that reason).
    #[error("{op}: {cause}")]
    Context { op: String, cause: Box<EngineError> },
    #[error("{op}: {}", .errors.join("; "))]
    Teardown { op: String, errors: Vec<String> },
}

impl EngineError {
    /// Wraps an error with the operation it happened in.
    pub fn during(self, op: impl Into<String>) -> EngineError {
        EngineError::Context {
            op: op.into(),
            cause: Box::new(self),
        }
    }

    /// What would get past the refusal at the bottom of this error, for the face to word.
    pub fn hint(&self) -> Option<Hint> {
        match self {
            EngineError::Context { cause, .. } => cause.hint(),
            EngineError::Conflict(c) => c.hint(),
            EngineError::Connect(c) => connect_hint(c),
            _ => None,
        }
    }

    pub(crate) fn not_found(kind: &'static str, name: impl ToString) -> Self {
        EngineError::NotFound {
            kind,
            name: name.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    /// What anyhow's `{:#}` prints: each error of the `source()` chain, joined by ": ".
    fn chain(e: &EngineError) -> String {
        let mut out = e.to_string();
        let mut next = e.source();
        while let Some(s) = next {
            out.push_str(": ");
            out.push_str(&s.to_string());
            next = s.source();
        }
        out
    }

    #[test]
    fn wrapped_errors_state_their_cause_once() {
        let e = EngineError::from(ConnectConflict::AlreadyConnected {
            netns: "a".into(),
            network: nsnet_core::names::NetName::new("good").unwrap(),
            ifname: nsnet_core::names::IfName::new("eth0").unwrap(),
        })
        .during("connect netns a to network good")
        .during("apply topology t");
        assert_eq!(
            chain(&e),
            "apply topology t: connect netns a to network good: netns a is already connected to network good as eth0"
        );
        let e = EngineError::from(KernelError::new(
            "create veth x",
            nsnet_sys::kernel::FailKind::Other,
            "Invalid argument (os error 22)",
        ))
        .during("link netns a with netns b");
        assert_eq!(
            chain(&e),
            "link netns a with netns b: create veth x: Invalid argument (os error 22)"
        );
    }
}
