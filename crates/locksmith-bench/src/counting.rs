//! A backend wrapper that counts the calls locksmith makes to the backend, for the renewal-load
//! workload (a call is one round trip on single-server backends; Redlock fans each call out to
//! its nodes).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use locksmith_core::{
    AcquireRequest, Backend, Capabilities, Grant, HolderInfo, Lease, LockKey, LossReason, Result,
};

/// Delegates every call to the wrapped backend and counts it.
#[derive(Debug)]
pub struct CountingBackend {
    inner: Arc<dyn Backend>,
    calls: Arc<AtomicU64>,
}

impl CountingBackend {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Backend>) -> Self {
        Self {
            inner,
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The shared counter of calls made so far (acquire, release, renew, holder).
    pub fn calls(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.calls)
    }

    fn wrap(&self, grant: Option<Grant>) -> Option<Grant> {
        grant.map(|g| Grant {
            lease: std::sync::Arc::new(CountingLease {
                inner: g.lease,
                calls: Arc::clone(&self.calls),
            }),
            token: g.token,
            expiry: g.expiry,
        })
    }
}

#[async_trait]
impl Backend for CountingBackend {
    fn scheme(&self) -> &'static str {
        self.inner.scheme()
    }

    fn display_url(&self) -> String {
        self.inner.display_url()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn check_key(&self, key: &LockKey) -> Result<()> {
        self.inner.check_key(key)
    }

    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(self.wrap(self.inner.try_acquire(key, req).await?))
    }

    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(self.wrap(self.inner.acquire(key, req, deadline).await?))
    }

    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.holder(key).await
    }

    // Not counted: it is the floor, measured on its own, not a call of the locking path.
    async fn native_pair(&self, key: &LockKey) -> Result<Option<&'static str>> {
        self.inner.native_pair(key).await
    }
}

#[derive(Debug)]
struct CountingLease {
    inner: std::sync::Arc<dyn Lease>,
    calls: Arc<AtomicU64>,
}

#[async_trait]
impl Lease for CountingLease {
    async fn renew(&self, ttl: Duration) -> Result<bool> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.renew(ttl).await
    }

    async fn release(&self) -> Result<bool> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.inner.release().await
    }

    async fn session_lost(&self) -> LossReason {
        self.inner.session_lost().await
    }
}
