//! Failures of file operations, before they are given the backend URL and key.

use std::io;
use std::path::Path;

use locksmith_core::{BoxError, Error};

/// What failed on the file system, and what to check; becomes an [`Error::Backend`].
#[derive(Debug)]
pub(crate) struct FsError {
    pub(crate) message: String,
    pub(crate) source: Option<BoxError>,
}

impl FsError {
    /// `what` failed on `path` with `err`; the message adds what to check for common causes.
    pub(crate) fn io(what: &str, path: &Path, err: io::Error) -> Self {
        let hint = match err.kind() {
            io::ErrorKind::PermissionDenied => {
                "; check that this user may read and write the lock folder and its files"
            }
            io::ErrorKind::NotFound => "; check that the lock folder exists and was not removed",
            io::ErrorKind::ReadOnlyFilesystem => {
                "; the lock folder must be on a writable file system"
            }
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                "; free some space on the file system of the lock folder"
            }
            io::ErrorKind::Unsupported => {
                "; the file system does not support flock; use a local file system (not NFS)"
            }
            _ => "",
        };
        Self {
            message: format!("{what} {} failed: {err}{hint}", path.display()),
            source: Some(Box::new(err)),
        }
    }

    /// A failure without an underlying I/O error.
    pub(crate) fn msg(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// The public error, naming the backend and the key.
    pub(crate) fn into_error(self, url: &str, key: Option<&str>) -> Error {
        Error::backend(url, key, self.message, self.source)
    }
}
