//! The guard a holder keeps while it holds a lock.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::keeper::LeaseCell;
use crate::key::LockKey;
use crate::loss::LossReason;
use crate::token::FencingToken;

/// Proof of a held lock.
///
/// - [`Guard::fencing_token`]: pass it to the resource you protect.
/// - [`Guard::lost`]: resolves when the lock is lost or can no longer be proven held.
/// - [`Guard::release`]: gives the lock back and says whether it was still held.
///
/// **Drop**: dropping a guard stops its renewal and releases the lock in the background on the
/// current tokio runtime (best effort, owner-checked). Outside a runtime, or if that release
/// fails, the lock ends when its TTL runs out or its session closes; backends whose lock
/// lives in a local resource (the file backend's descriptor) free it at once. Prefer
/// `release().await` where you can: it reports the outcome.
#[must_use = "dropping the guard releases the lock"]
#[derive(Debug)]
pub struct Guard {
    key: LockKey,
    backend: Arc<str>,
    token: FencingToken,
    cell: Arc<LeaseCell>,
    done: bool,
}

impl Guard {
    pub(crate) fn new(
        key: LockKey,
        backend: Arc<str>,
        token: FencingToken,
        cell: Arc<LeaseCell>,
        renew: bool,
    ) -> Self {
        cell.start(renew);
        Self {
            key,
            backend,
            token,
            cell,
            done: false,
        }
    }

    /// The key held.
    pub fn key(&self) -> &LockKey {
        &self.key
    }

    /// The fencing token of this grant: larger than every earlier holder's for this key.
    pub fn fencing_token(&self) -> FencingToken {
        self.token
    }

    /// True while the lock is provably held: not reported lost, and before the local deadline
    /// (of a TTL lease, or of a session the server expires unless kept alive, such as etcd's).
    pub fn is_held(&self) -> bool {
        self.cell.is_held()
    }

    /// Time left before the local deadline: a TTL lease's, or the point until which a
    /// session the server would expire (etcd's lease, ZooKeeper's session) is provably
    /// alive. `None` for session-bound locks without such a bound.
    pub fn lease_left(&self) -> Option<Duration> {
        self.cell
            .valid_until()
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// A future that resolves with the reason when the lock is lost or can no longer be proven
    /// held. It resolves at most once per guard, and immediately if the loss already happened.
    /// The future owns what it needs, so it can be moved into another task.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only watches.
    pub fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static {
        let mut rx = self.cell.subscribe();
        async move {
            match rx.wait_for(Option::is_some).await {
                Ok(reason) => reason.clone().unwrap_or(LossReason::Released),
                Err(_) => LossReason::Released,
            }
        }
    }

    /// Runs `work` while watching the lock: returns its output, or [`Error::Lost`] (dropping
    /// `work` at its next await point) as soon as the lock is lost.
    ///
    /// # Errors
    /// [`Error::Lost`] when the lock was lost before `work` finished.
    ///
    /// # Cancel safety
    /// As cancel-safe as `work`; the guard stays held.
    pub async fn protect<T>(&self, work: impl Future<Output = T>) -> Result<T> {
        let lost = self.lost();
        tokio::select! {
            biased;
            reason = lost => Err(self.lost_error(reason)),
            out = work => Ok(out),
        }
    }

    pub(crate) fn lost_error(&self, reason: LossReason) -> Error {
        Error::Lost {
            key: self.key.to_string(),
            backend: self.backend.to_string(),
            reason,
        }
    }

    /// Renews the lease now (useful with background renewal off). `Ok(true)` if the backend
    /// confirmed it; `Ok(false)` if this guard no longer owns the lock, which also resolves
    /// [`Guard::lost`]. A guard that was already lost stays lost.
    ///
    /// # Errors
    /// When the backend cannot be reached; the lease is unchanged.
    ///
    /// # Cancel safety
    /// Cancel-safe: the deadline only moves after a confirmed renewal.
    pub async fn renew(&self) -> Result<bool> {
        if !self.cell.is_held() {
            self.cell.mark_lost(LossReason::Expired);
            return Ok(false);
        }
        let sent = Instant::now();
        match self.cell.lease.renew(self.cell.ttl).await? {
            true if self.cell.lost_reason().is_none() => {
                self.cell.extend(sent);
                Ok(true)
            }
            true => Ok(false),
            false => {
                self.cell.mark_lost(LossReason::NotOwner);
                Ok(false)
            }
        }
    }

    /// Releases the lock. `Ok(true)` if this guard still owned it on the backend, `Ok(false)` if
    /// it had already expired or passed to someone else (who is left untouched).
    ///
    /// # Errors
    /// When the backend cannot be reached; the lock then ends by TTL or session end.
    ///
    /// # Cancel safety
    /// If dropped midway, the guard's drop releases in the background instead.
    pub async fn release(mut self) -> Result<bool> {
        // The release is sent first (its first poll), and only then is the lease's keeping
        // stopped, so that the next holder (waiting on the server) is not kept waiting for
        // that bookkeeping. Until then, a loss the keeper reports is the release's own.
        let mut release = self.cell.lease.release();
        let mut stopped = false;
        let held = std::future::poll_fn(|cx| {
            let polled = release.as_mut().poll(cx);
            if !std::mem::replace(&mut stopped, true) {
                self.cell.stop();
            }
            polled
        })
        .await;
        self.done = true;
        self.cell.mark_lost(LossReason::Released);
        held
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.cell.stop();
        self.cell.mark_lost(LossReason::Released);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let lease = Arc::clone(&self.cell.lease);
            rt.spawn(async move {
                if let Err(err) = lease.release().await {
                    tracing::warn!(error = %err, "background release of a dropped guard failed");
                }
            });
        }
    }
}
