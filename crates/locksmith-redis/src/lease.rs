//! A lock held on one Redis server.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use locksmith_core::{Lease, LossReason, Result};

use crate::conn::Node;
use crate::layout::Names;
use crate::renew_batch::{RenewRequest, Renewer};
use crate::scripts::{RELEASE, RELEASE_FAIR};

/// A held `redis://` lock: the key's names, this grant's value prefix (which release and renew
/// compare) and the `run_id` of the server that granted it.
pub(crate) struct RedisLease {
    pub(crate) node: Arc<Node>,
    pub(crate) names: Arc<Names>,
    pub(crate) owner_prefix: Arc<str>,
    pub(crate) run_id: Arc<str>,
    /// Fair mode: the release hands the lock to the waiter at the head of the key's queue.
    pub(crate) fair: bool,
    /// The server's renewal queue: renewals due together go in one script call.
    pub(crate) renewer: Arc<Renewer>,
}

impl std::fmt::Debug for RedisLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value holds the secret: never print it.
        f.debug_struct("RedisLease")
            .field("server", &self.node.url)
            .field("key", &self.names.lock())
            .finish()
    }
}

pub(crate) fn reset_reason(url: &str, old: &str, new: &str) -> String {
    format!(
        "Redis at {url} restarted (run_id {old} is now {new}); its keys may have been lost, so \
         another client may hold the lock"
    )
}

impl RedisLease {
    /// Releases without checking the server's `run_id` (for undoing an attempt whose answer
    /// never arrived: the owner prefix is enough).
    pub(crate) async fn release_unchecked(&self) -> Result<bool> {
        let live = self.node.live().await?;
        self.release_on(live).await
    }

    async fn release_on(&self, live: crate::conn::Live) -> Result<bool> {
        let mut conn = live.conn.clone();

        let (names, prefix) = (&*self.names, &*self.owner_prefix);
        let done: i64 = if self.fair {
            let keys = (names.lock(), names.queue(), names.waiters(), names.fence());
            let args = (prefix, names.channel());
            RELEASE_FAIR.run(&mut conn, 4, (keys, args)).await
        } else {
            RELEASE
                .run(&mut conn, 1, (names.lock(), prefix, names.channel()))
                .await
        }
        .map_err(|e| self.node.failed(&live, Some(names.lock()), e))?;
        Ok(done == 1)
    }
}

#[async_trait]
impl Lease for RedisLease {
    async fn renew(&self, ttl: Duration) -> Result<bool> {
        self.renewer
            .renew(RenewRequest {
                lock: Arc::from(self.names.lock()),
                owner_prefix: Arc::clone(&self.owner_prefix),
                ttl_ms: crate::layout::whole_ms(ttl),
                run_id: Some(Arc::clone(&self.run_id)),
                restart_is_error: true,
            })
            .await
    }

    async fn release(&self) -> Result<bool> {
        let live = self.node.live().await?;
        if live.run_id != self.run_id {
            return Ok(false);
        }
        self.release_on(live).await
    }

    async fn session_lost(&self) -> LossReason {
        let mut rx = self.node.run_id_watch();
        let granted = Arc::clone(&self.run_id);
        let seen = rx
            .wait_for(|seen| seen.as_ref().is_some_and(|r| *r != granted))
            .await
            .map(|now| now.clone());
        let Ok(now) = seen else {
            return std::future::pending().await;
        };
        let now = now.unwrap_or_default();
        LossReason::BackendReset(reset_reason(&self.node.url, &granted, &now))
    }
}
