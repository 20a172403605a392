//! `NAME.lock`: opening and `flock`ing the lock file.
//!
//! The lock is an exclusive `flock(2)` (std's `File::lock` family) on the open file, so it is
//! held exactly as long as the file stays open and is released by the OS when the process
//! dies. Lock files are never deleted: a process that opened the old file and one that opened
//! a new one would both "hold" the key. After locking, the path is checked to still name the
//! locked file; if something deleted or replaced it, the new file is locked instead.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::Path;

use crate::error::FsError;

/// How often a lock file may turn out deleted or replaced during one attempt.
const MAX_REOPEN: usize = 100;

/// Opens (creating if needed) the lock file. Falls back to read-only when the file belongs to
/// another user: `flock` works on read-only files too, as with `flock(1)`.
pub(crate) fn open(path: &Path) -> io::Result<File> {
    let rw = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path);
    match rw {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => File::open(path),
        other => other,
    }
}

/// True while `path` still names the open `file` (same device and inode).
pub(crate) fn is_current(file: &File, path: &Path) -> io::Result<bool> {
    let held = file.metadata()?;
    match fs::metadata(path) {
        Ok(now) => Ok(same_file(&held, &now)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(unix)]
fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &fs::Metadata, _: &fs::Metadata) -> bool {
    true
}

fn open_err(path: &Path, e: io::Error) -> FsError {
    FsError::io("opening the lock file", path, e)
}

fn check_current(file: &File, path: &Path) -> Result<bool, FsError> {
    is_current(file, path).map_err(|e| FsError::io("checking the lock file", path, e))
}

fn keeps_changing(path: &Path) -> FsError {
    FsError::msg(format!(
        "the lock file {} was deleted or replaced {MAX_REOPEN} times while locking it; \
         something removes lock files in this folder: stop it (lock files must never be \
         deleted, or two processes may hold the same key)",
        path.display()
    ))
}

/// One attempt: the locked file, or `None` when another open file holds the lock.
pub(crate) fn try_lock(path: &Path) -> Result<Option<File>, FsError> {
    for _ in 0..MAX_REOPEN {
        let file = open(path).map_err(|e| open_err(path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(FsError::io("locking", path, e)),
        }
        if check_current(&file, path)? {
            return Ok(Some(file));
        }
    }
    Err(keeps_changing(path))
}

/// Blocks this thread until the lock is taken. Run it on a thread of its own.
pub(crate) fn lock_blocking(path: &Path) -> Result<File, FsError> {
    for _ in 0..MAX_REOPEN {
        let file = open(path).map_err(|e| open_err(path, e))?;
        loop {
            match file.lock() {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(FsError::io("waiting for the lock on", path, e)),
            }
        }
        if check_current(&file, path)? {
            return Ok(file);
        }
    }
    Err(keeps_changing(path))
}

/// Whether a lock file is held, as seen from outside.
#[derive(Debug)]
pub(crate) enum Probe {
    /// Nobody holds it; the file, if it exists, is held here with a shared lock until dropped.
    Free(Option<File>),
    /// Someone (in this process or another) holds it.
    Held,
}

/// Tells whether the lock is held by taking a shared lock for a moment. Never creates the file.
pub(crate) fn probe(path: &Path) -> Result<Probe, FsError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Probe::Free(None)),
        Err(e) => return Err(open_err(path, e)),
    };
    match file.try_lock_shared() {
        Ok(()) => Ok(Probe::Free(Some(file))),
        Err(TryLockError::WouldBlock) => Ok(Probe::Held),
        Err(TryLockError::Error(e)) => Err(FsError::io("probing the lock on", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_across_open_files_and_replaced_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        assert!(matches!(probe(&path).unwrap(), Probe::Free(None)));
        let a = try_lock(&path).unwrap().expect("free");
        assert!(
            try_lock(&path).unwrap().is_none(),
            "a second open file is excluded"
        );
        assert!(matches!(probe(&path).unwrap(), Probe::Held));
        assert!(is_current(&a, &path).unwrap());
        // Someone deletes the lock file: the holder can tell, and a new locker gets a new file.
        fs::remove_file(&path).unwrap();
        assert!(!is_current(&a, &path).unwrap());
        let b = try_lock(&path).unwrap().expect("new file");
        assert!(is_current(&b, &path).unwrap());
        drop((a, b));
        let Probe::Free(Some(shared)) = probe(&path).unwrap() else {
            panic!("free")
        };
        assert!(
            try_lock(&path).unwrap().is_none(),
            "a shared probe excludes for a moment"
        );
        drop(shared);
        assert!(try_lock(&path).unwrap().is_some());
    }
}
