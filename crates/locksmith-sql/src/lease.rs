//! The lease of a held SQL advisory lock: it pins the session the lock lives in.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use locksmith_core::{Lease, LockKey, LossReason, Result};

use crate::driver::Driver;
use crate::engine::Inner;
use crate::session::Session;

/// What a lease holds until it ends: the session the lock lives in. (The key's local turn
/// passed to the next local waiter at the grant, so that its server-side wait is already
/// queued behind this holder when it releases.)
struct Held<D: Driver> {
    session: Arc<Session<D>>,
}

/// A held advisory lock. Released by [`Lease::release`], by dropping it, or by the session's
/// end.
pub(crate) struct SqlLease<D: Driver> {
    inner: Arc<Inner<D>>,
    key: LockKey,
    name: D::Name,
    held: Mutex<Option<Held<D>>>,
    /// The pinned session, for the health check.
    session: Arc<Session<D>>,
}

impl<D: Driver> fmt::Debug for SqlLease<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlLease")
            .field("key", &self.key)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<D: Driver> SqlLease<D> {
    pub(crate) fn new(
        inner: Arc<Inner<D>>,
        key: LockKey,
        name: D::Name,
        session: Arc<Session<D>>,
    ) -> Self {
        Self {
            inner,
            key,
            name,
            held: Mutex::new(Some(Held {
                session: Arc::clone(&session),
            })),
            session,
        }
    }

    fn take(&self) -> Option<Held<D>> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    fn is_held(&self) -> bool {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// The session is dead or unanswering: close it (so the server surely releases the lock).
    fn fail(&self, why: String) -> LossReason {
        match self.take() {
            Some(Held { session }) => {
                drop(session);
                LossReason::SessionEnded(why)
            }
            None => LossReason::Released,
        }
    }
}

/// Unlocks on `session`; keeps the session for reuse when the server confirms.
async fn unlock<D: Driver>(
    inner: &Inner<D>,
    key: &str,
    name: &D::Name,
    session: Arc<Session<D>>,
) -> Result<bool> {
    let r = inner
        .bounded(
            Some(key),
            "the unlock",
            inner.driver.unlock(&session.conn, name),
        )
        .await;
    if let Ok(true) = r {
        inner.checkin(session);
    }
    r
}

#[async_trait]
impl<D: Driver> Lease for SqlLease<D> {
    /// A session lock has no TTL: `Ok(true)` when the pinned session answers a ping (the
    /// keeper's health check, every `health_check`).
    ///
    /// # Errors
    /// When the session does not answer within `statement_timeout`; the lease then gives the
    /// session up (closed when the lease is dropped, which releases the lock) and a later
    /// release answers `Ok(false)`.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only reads.
    async fn renew(&self, _ttl: Duration) -> Result<bool> {
        if !self.is_held() {
            return Ok(false);
        }
        let d = &self.inner.driver;
        let ping = self
            .inner
            .bounded(
                Some(self.key.as_str()),
                "the health check",
                d.ping(&self.session.conn),
            )
            .await;
        if let Err(e) = ping {
            // The session is in doubt: give it up, so that nothing more is sent on it.
            drop(self.take());
            return Err(e);
        }
        Ok(self.is_held())
    }

    /// Unlocks on the pinned session and returns the session to the idle pool; the server
    /// then grants the lock to the first session in its queue (the next local waiter's, if
    /// it queued first). `Ok(true)` when the server confirmed this session held the lock.
    ///
    /// # Errors
    /// When the server does not answer; the session is then closed, which releases the lock.
    ///
    /// # Cancel safety
    /// Cancel-safe: a dropped release closes the session, which releases the lock.
    async fn release(&self) -> Result<bool> {
        let Some(Held { session }) = self.take() else {
            return Ok(false);
        };
        unlock(&self.inner, self.key.as_str(), &self.name, session).await
    }

    /// The keeper pings the pinned session every `health_check` ([`Lease::renew`]).
    fn health_check(&self) -> Option<Duration> {
        Some(self.inner.settings.health_check)
    }

    /// Resolves when the driver sees the pinned session close. (A ping that fails or goes
    /// unanswered for `statement_timeout` is reported by the keeper's health check.)
    ///
    /// # Cancel safety
    /// Cancel-safe; it only watches.
    async fn session_lost(&self) -> LossReason {
        if !self.is_held() {
            return LossReason::Released;
        }
        let why = self.inner.driver.closed(&self.session.conn).await;
        self.fail(why)
    }
}

impl<D: Driver> Drop for SqlLease<D> {
    fn drop(&mut self) {
        let Some(held) = self.take() else { return };
        // Unlock in the background so that the connection can be reused; without a runtime,
        // closing the session releases the lock.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (inner, key, name) = (Arc::clone(&self.inner), self.key.clone(), self.name.clone());
            rt.spawn(async move {
                if let Err(e) = unlock(&inner, key.as_str(), &name, held.session).await {
                    tracing::debug!(error = %e, "unlock on drop failed; the session was closed");
                }
            });
        }
    }
}
