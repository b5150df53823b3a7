//! Store errors.

use std::path::{Path, PathBuf};

/// A failure of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    // The messages carry the SQLite error, so it is not also a `source()`: a chain printer
    // (anyhow's `{:#}`) would state it twice.
    #[error("open state database {path}: {cause}")]
    Open {
        path: PathBuf,
        cause: rusqlite::Error,
    },
    #[error("state database: {0}")]
    Sql(rusqlite::Error),
    #[error("state database holds an invalid {what} {value:?}")]
    Corrupt { what: &'static str, value: String },
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sql(e)
    }
}

impl StoreError {
    pub(crate) fn open(path: &Path, source: rusqlite::Error) -> Self {
        StoreError::Open {
            path: path.to_path_buf(),
            cause: source,
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
