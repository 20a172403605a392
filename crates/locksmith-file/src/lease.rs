//! The lease of a held file lock: it owns the locked file and the key's local turn.

use std::fs::File;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use locksmith_core::{Lease, LossReason, QueueTurn, Result};

use crate::error::FsError;
use crate::holder;
use crate::layout::KeyFiles;
use crate::lockfile;
use crate::wait::{KeyState, lock};

/// How often a held lease checks that its lock file was not deleted or replaced.
const FILE_CHECK_EVERY: Duration = Duration::from_secs(1);

/// What a lease holds until it is released.
#[derive(Debug)]
struct Held {
    /// The locked lock file; closing it unlocks.
    file: File,
    /// This process's turn on the key; dropped after the file, so the next local waiter
    /// finds the lock free.
    turn: QueueTurn<KeyState>,
}

/// A held file lock. Released by [`Lease::release`] or by dropping it.
#[derive(Debug)]
pub(crate) struct FileLease {
    held: Mutex<Option<Held>>,
    files: KeyFiles,
    token: u64,
    url: String,
    key: String,
}

impl FileLease {
    pub(crate) fn new(
        file: File,
        turn: QueueTurn<KeyState>,
        files: KeyFiles,
        token: u64,
        url: String,
        key: String,
    ) -> Self {
        Self {
            held: Mutex::new(Some(Held { file, turn })),
            files,
            token,
            url,
            key,
        }
    }

    /// Removes the holder record, unlocks, and lets the next local waiter in. Returns whether
    /// the lock was still held through the file its path names.
    fn end(&self) -> bool {
        let Some(Held { file, turn }) = lock(&self.held).take() else {
            return false;
        };
        let current = lockfile::is_current(&file, &self.files.lock).unwrap_or(true);
        if current && let Err(e) = holder::remove_if(&self.files.holder, self.token) {
            tracing::warn!(
                key = %self.key,
                error = %e.message,
                "could not remove the holder record; the lock is released anyway"
            );
        }
        drop(file);
        drop(turn);
        current
    }

    /// `Some(true)` while held through the current lock file, `None` once released.
    fn check(&self) -> Option<Result<bool, FsError>> {
        let held = lock(&self.held);
        let file = &held.as_ref()?.file;
        Some(
            lockfile::is_current(file, &self.files.lock)
                .map_err(|e| FsError::io("checking the lock file", &self.files.lock, e)),
        )
    }
}

#[async_trait]
impl Lease for FileLease {
    /// `Ok(true)` while this lease holds its lock file and the lock file's path still names
    /// that file. A file lock has no TTL: `ttl` is ignored.
    ///
    /// # Errors
    /// When the lock file cannot be inspected.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only reads.
    async fn renew(&self, _ttl: Duration) -> Result<bool> {
        match self.check() {
            None => Ok(false),
            Some(r) => r.map_err(|e| e.into_error(&self.url, Some(&self.key))),
        }
    }

    /// Removes `NAME.holder` (if it still names this grant), unlocks, and lets the next local
    /// waiter in. `Ok(true)` the first time, when the lock file was still in place;
    /// `Ok(false)` afterwards.
    ///
    /// # Errors
    /// None in practice: a holder record that cannot be removed is logged, not returned,
    /// because the lock is released anyway.
    ///
    /// # Cancel safety
    /// Cancel-safe: it does not await.
    async fn release(&self) -> Result<bool> {
        Ok(self.end())
    }

    /// Resolves when the lock file is deleted or replaced under this lease: the lock no
    /// longer excludes anyone, so it counts as lost. Checked once a second.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only watches.
    async fn session_lost(&self) -> LossReason {
        loop {
            tokio::time::sleep(FILE_CHECK_EVERY).await;
            match self.check() {
                None => return LossReason::Released,
                Some(Ok(true)) => {}
                Some(Ok(false)) => {
                    return LossReason::SessionEnded(format!(
                        "the lock file {} was deleted or replaced, so another process may \
                         hold the key now; lock files must never be deleted",
                        self.files.lock.display()
                    ));
                }
                Some(Err(e)) => {
                    tracing::debug!(key = %self.key, error = %e.message, "cannot check the lock file");
                }
            }
        }
    }
}

impl Drop for FileLease {
    fn drop(&mut self) {
        self.end();
    }
}
