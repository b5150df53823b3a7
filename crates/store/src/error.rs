//! Store errors.

use std::path::{Path, PathBuf};

/// A failure of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error("open state database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state database holds an invalid {what} {value:?}")]
    Corrupt { what: &'static str, value: String },
}

impl StoreError {
    pub(crate) fn open(path: &Path, source: rusqlite::Error) -> Self {
        StoreError::Open {
            path: path.to_path_buf(),
            source,
        }
    }

    /// Whether the failure is a UNIQUE/PRIMARY KEY conflict (another process won a race).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            StoreError::Sql(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation
        )
    }
}
