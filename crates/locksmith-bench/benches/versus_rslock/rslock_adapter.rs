//! The `rslock` crate behind locksmith's `Backend` trait, so that the same workloads measure it.
//! Each call is rslock's own: `lock` (its attempt, with its built-in retries), `acquire_no_guard`
//! (its wait: `lock` in a loop), `extend`, `unlock`. rslock has no fencing token: grants carry
//! token 0 and the report says "none".

use std::time::{Duration, Instant};

use async_trait::async_trait;
use locksmith_core::{
    AcquireRequest, Backend, Capabilities, Error, Expiry, FencingToken, Grant, HolderInfo, Lease,
    LeaseModel, LockKey, Result,
};
use rslock::{Lock, LockError, LockManager};

/// rslock's `LockManager` over the given Redis URLs.
#[derive(Debug)]
pub struct RslockBackend {
    manager: LockManager,
    url: String,
}

impl RslockBackend {
    /// A manager over `urls` (one Redis, or several independent ones for Redlock).
    pub fn new(urls: Vec<String>) -> Self {
        let url = format!("rslock://{}", urls.join(","));
        Self {
            manager: LockManager::new(urls),
            url,
        }
    }

    fn err(&self, key: &LockKey, e: LockError) -> Error {
        Error::backend(
            self.url.clone(),
            Some(key.as_str()),
            format!("rslock: {e}"),
            None,
        )
    }

    fn grant(&self, lock: Lock, sent_at: Instant) -> Grant {
        let ttl = Duration::from_millis(lock.validity_time as u64);
        Grant {
            lease: std::sync::Arc::new(RslockLease {
                manager: self.manager.clone(),
                lock,
            }),
            token: FencingToken(0),
            expiry: Expiry::Ttl { sent_at, ttl },
        }
    }
}

#[async_trait]
impl Backend for RslockBackend {
    fn scheme(&self) -> &'static str {
        "rslock"
    }

    fn display_url(&self) -> String {
        self.url.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(LeaseModel::Ttl)
    }

    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>> {
        let sent_at = Instant::now();
        match self.manager.lock(key.as_str().as_bytes(), req.ttl).await {
            Ok(lock) => Ok(Some(self.grant(lock, sent_at))),
            Err(LockError::Unavailable) => Ok(None),
            Err(e) => Err(self.err(key, e)),
        }
    }

    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        let attempt = async {
            let sent_at = Instant::now();
            match self
                .manager
                .acquire_no_guard(key.as_str().as_bytes(), req.ttl)
                .await
            {
                Ok(lock) => Ok(Some(self.grant(lock, sent_at))),
                Err(e) => Err(self.err(key, e)),
            }
        };
        locksmith_core::wait_until(deadline, attempt).await
    }

    async fn holder(&self, _key: &LockKey) -> Result<Option<HolderInfo>> {
        Err(Error::Unsupported {
            backend: self.url.clone(),
            what: "holder introspection".into(),
        })
    }
}

struct RslockLease {
    manager: LockManager,
    lock: Lock,
}

impl std::fmt::Debug for RslockLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RslockLease").finish_non_exhaustive()
    }
}

#[async_trait]
impl Lease for RslockLease {
    async fn renew(&self, ttl: Duration) -> Result<bool> {
        Ok(self.manager.extend(&self.lock, ttl).await.is_ok())
    }

    async fn release(&self) -> Result<bool> {
        self.manager.unlock(&self.lock).await;
        Ok(true)
    }
}
