//! [`StoreError`]: why a store operation failed.

use std::io;

use crate::format::FormatError;

#[derive(Debug)]
pub enum StoreError {
    Io(io::Error),
    /// A file refused by validation (docs/file-format.md, "Validation"), with its path.
    Bad(String, FormatError),
    /// A FileId whose slot was reused or removed.
    Gone,
    Exists(String),
    Invalid(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "I/O error: {e}"),
            StoreError::Bad(p, e) => write!(f, "{p}: {e}"),
            StoreError::Gone => write!(f, "file is gone"),
            StoreError::Exists(p) => write!(f, "{p}: file exists"),
            StoreError::Invalid(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e)
    }
}

impl From<glommio::GlommioError<()>> for StoreError {
    fn from(e: glommio::GlommioError<()>) -> Self {
        StoreError::Io(e.into())
    }
}
