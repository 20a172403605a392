//! The user-facing client: acquire with a wait policy, run under a lock, introspect.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::backend::{AcquireRequest, Backend, Grant, HolderInfo};
use crate::election::Election;
use crate::error::{Error, Result};
use crate::guard::Guard;
use crate::keeper::LeaseCell;
use crate::key::{IntoLockKey, LockKey};
use crate::options::{LockOptions, WaitPolicy};
use crate::token::FencingToken;

/// A handle on one backend. Cheap to clone; share it across tasks.
#[derive(Clone, Debug)]
pub struct Locker {
    backend: Arc<dyn Backend>,
    url: Arc<str>,
}

impl Locker {
    /// Wraps a backend.
    pub fn new(backend: Arc<dyn Backend>) -> Self {
        let url = backend.display_url().into();
        Self { backend, url }
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The backend URL, password masked.
    pub fn display_url(&self) -> &str {
        &self.url
    }

    fn check(
        &self,
        key: impl IntoLockKey,
        opts: &LockOptions,
    ) -> Result<(LockKey, AcquireRequest)> {
        let key = key.into_lock_key()?;
        self.backend.check_key(&key)?;
        opts.validate()?;
        let req = AcquireRequest::new(opts.ttl_value(), opts.owner_arc());
        Ok((key, req))
    }

    fn guard(&self, key: LockKey, grant: Grant, opts: &LockOptions) -> Guard {
        let cell = LeaseCell::new(grant.lease, grant.expiry, opts.drift_value());
        Guard::new(
            key,
            Arc::clone(&self.url),
            grant.token,
            cell,
            opts.renew_enabled(),
        )
    }

    /// One attempt, no waiting: `Ok(None)` when the lock is busy.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] or [`Error::InvalidOption`] for bad input; [`Error::Backend`] when
    /// the backend cannot be reached.
    ///
    /// # Cancel safety
    /// Cancel-safe: if the future is dropped, nothing stays held.
    pub async fn try_acquire(
        &self,
        key: impl IntoLockKey,
        opts: &LockOptions,
    ) -> Result<Option<Guard>> {
        let (key, req) = self.check(key, opts)?;
        let grant = self.backend.try_acquire(&key, &req).await?;
        Ok(grant.map(|g| self.guard(key, g, opts)))
    }

    /// Acquires the lock, waiting as `opts`' [`WaitPolicy`] allows. Waiting is by the backend's
    /// notification, never by polling.
    ///
    /// # Errors
    /// [`Error::Timeout`] (naming the holder where the backend can tell) when the wait bound
    /// passed; [`Error::InvalidKey`] / [`Error::InvalidOption`] for bad input;
    /// [`Error::Backend`] when the backend cannot be reached.
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future leaves nothing held and no waiter registered.
    pub async fn acquire(&self, key: impl IntoLockKey, opts: &LockOptions) -> Result<Guard> {
        let (key, req) = self.check(key, opts)?;
        let start = Instant::now();
        let grant = match opts.wait_policy() {
            WaitPolicy::NoWait => self.backend.try_acquire(&key, &req).await?,
            WaitPolicy::Forever => self.backend.acquire(&key, &req, None).await?,
            // A wait too long to represent is a wait without bound.
            WaitPolicy::Timeout(d) if start.checked_add(d).is_none() => {
                self.backend.acquire(&key, &req, None).await?
            }
            WaitPolicy::Timeout(d) => {
                let deadline = start + d;
                let attempt = self.backend.acquire(&key, &req, Some(deadline));
                crate::backend::wait_until(Some(deadline), attempt).await?
            }
        };
        match grant {
            Some(g) => Ok(self.guard(key, g, opts)),
            None => {
                // Best effort, bounded: the caller already waited long enough.
                let holder =
                    tokio::time::timeout(Duration::from_millis(500), self.backend.holder(&key))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .flatten()
                        .map(Box::new);
                Err(Error::Timeout {
                    key: key.to_string(),
                    backend: self.url.to_string(),
                    waited: start.elapsed(),
                    holder,
                })
            }
        }
    }

    /// Acquires the lock, runs `work(token)` under it, releases it and returns the output.
    /// If the lock is lost first, `work` is dropped and [`Error::Lost`] returned.
    ///
    /// # Errors
    /// Those of [`Locker::acquire`], and [`Error::Lost`].
    ///
    /// # Cancel safety
    /// Dropping the future drops `work` and releases the lock in the background.
    pub async fn with_lock<F, Fut, T>(
        &self,
        key: impl IntoLockKey,
        opts: &LockOptions,
        work: F,
    ) -> Result<T>
    where
        F: FnOnce(FencingToken) -> Fut,
        Fut: Future<Output = T>,
    {
        let guard = self.acquire(key, opts).await?;
        let out = guard.protect(work(guard.fencing_token())).await;
        match out {
            Ok(v) => {
                if let Err(err) = guard.release().await {
                    tracing::warn!(error = %err, "release after work failed; the lease will expire");
                }
                Ok(v)
            }
            Err(e) => {
                drop(guard);
                Err(e)
            }
        }
    }

    /// Who holds `key`, or `None` when it is free.
    ///
    /// # Errors
    /// [`Error::InvalidKey`]; [`Error::Unsupported`] where the backend cannot tell;
    /// [`Error::Backend`] when it cannot be reached.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only reads.
    pub async fn holder(&self, key: impl IntoLockKey) -> Result<Option<HolderInfo>> {
        let key = key.into_lock_key()?;
        self.backend.check_key(&key)?;
        self.backend.holder(&key).await
    }

    /// Leader election on `key`; the owner label of `opts` is what observers see.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] or [`Error::InvalidOption`].
    pub fn election(&self, key: impl IntoLockKey, opts: LockOptions) -> Result<Election> {
        let (key, _) = self.check(key, &opts)?;
        Ok(Election::new(self.clone(), key, opts))
    }
}
