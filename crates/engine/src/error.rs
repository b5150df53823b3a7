//! Engine errors: each names the object and what went wrong.

use nsnet_core::CoreError;
use nsnet_store::StoreError;
use nsnet_sys::kernel::KernelError;

/// Why an operation failed. Nothing it changed is left behind.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Invalid(#[from] CoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error("{kind} {name} not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {name} already exists")]
    Exists { kind: &'static str, name: String },
    #[error("{0}")]
    Conflict(String),
    #[error("{op}: {source}")]
    Context {
        op: String,
        #[source]
        source: Box<EngineError>,
    },
    #[error("{op}: {}", .errors.join("; "))]
    Teardown { op: String, errors: Vec<String> },
}

impl EngineError {
    /// Wraps an error with the operation it happened in.
    pub fn during(self, op: impl Into<String>) -> EngineError {
        EngineError::Context {
            op: op.into(),
            source: Box::new(self),
        }
    }

    pub(crate) fn not_found(kind: &'static str, name: impl ToString) -> Self {
        EngineError::NotFound {
            kind,
            name: name.to_string(),
        }
    }
}
