//! `NAME.holder`: who holds a key, as JSON
//! (`{"owner":"…","token":7,"since_unix_ms":1700000000000,"pid":4242}`).
//!
//! The holder writes it (to `NAME.holder.tmp`, then renamed over, so readers never see half a
//! record) right after taking the lock, and removes it before unlocking. It is informational:
//! whether the key is held is always decided by the lock itself.

use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::error::FsError;
use crate::layout::KeyFiles;

/// The holder file's record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HolderRecord {
    /// The owner label of the acquire.
    pub(crate) owner: String,
    /// The fencing token of the grant.
    pub(crate) token: u64,
    /// When the lock was granted, in milliseconds since the Unix epoch.
    pub(crate) since_unix_ms: u64,
    /// The holding process.
    pub(crate) pid: u32,
}

impl HolderRecord {
    /// A record for a grant made now by this process.
    pub(crate) fn now(owner: &str, token: u64) -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            owner: owner.to_owned(),
            token,
            since_unix_ms: u64::try_from(since.as_millis()).unwrap_or(u64::MAX),
            pid: std::process::id(),
        }
    }

    /// The grant time.
    pub(crate) fn since(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.since_unix_ms)
    }
}

/// Writes the record for the key of `files`. The caller must hold the key's lock.
pub(crate) fn write(files: &KeyFiles, record: &HolderRecord) -> Result<(), FsError> {
    let mut json = serde_json::to_vec(record)
        .map_err(|e| FsError::msg(format!("cannot encode the holder record: {e}")))?;
    json.push(b'\n');
    fs::write(&files.holder_tmp, json)
        .map_err(|e| FsError::io("writing the holder record", &files.holder_tmp, e))?;
    fs::rename(&files.holder_tmp, &files.holder)
        .map_err(|e| FsError::io("replacing the holder record", &files.holder, e))
}

/// The record in `path`; `None` when there is none or it is not a locksmith record.
pub(crate) fn read(path: &Path) -> Result<Option<HolderRecord>, FsError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FsError::io("reading the holder record", path, e)),
    };
    match serde_json::from_slice(&bytes) {
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "not a locksmith holder record");
            Ok(None)
        }
    }
}

/// Removes the record in `path` if it still names `token` (or cannot be read as a record).
/// The caller must hold the key's lock, so nobody writes the file meanwhile.
pub(crate) fn remove_if(path: &Path, token: u64) -> Result<(), FsError> {
    match read(path)? {
        Some(r) if r.token != token => Ok(()),
        None if !path.exists() => Ok(()),
        _ => match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(FsError::io("removing the holder record", path, e)),
        },
    }
}

/// Removes a stale record (left by a holder that crashed). The caller holds a shared lock,
/// so no holder can write meanwhile. Best effort.
pub(crate) fn remove_stale(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::debug!(path = %path.display(), error = %e, "cannot remove a stale holder record");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_remove() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path(), "k");
        assert_eq!(read(&files.holder).unwrap(), None);
        let rec = HolderRecord::now("worker-1", 7);
        write(&files, &rec).unwrap();
        assert_eq!(read(&files.holder).unwrap(), Some(rec.clone()));
        assert!(!files.holder_tmp.exists());
        let text = fs::read_to_string(&files.holder).unwrap();
        assert!(
            text.starts_with(r#"{"owner":"worker-1","token":7,"since_unix_ms":"#),
            "{text}"
        );
        remove_if(&files.holder, 8).unwrap();
        assert!(files.holder.exists(), "another token's record stays");
        remove_if(&files.holder, 7).unwrap();
        assert!(!files.holder.exists());
        remove_if(&files.holder, 7).unwrap();
        fs::write(&files.holder, "garbage").unwrap();
        assert_eq!(read(&files.holder).unwrap(), None);
    }
}
