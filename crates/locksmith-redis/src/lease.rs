//! A lock held on one Redis server.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use locksmith_core::{Error, Lease, LossReason, Result};

use crate::conn::Node;
use crate::layout::Names;
use crate::scripts::{RELEASE, RENEW};

/// A held `redis://` lock: the key's names, this grant's value prefix (which release and renew
/// compare) and the `run_id` of the server that granted it.
pub(crate) struct RedisLease {
    pub(crate) node: Arc<Node>,
    pub(crate) names: Names,
    pub(crate) owner_prefix: String,
    pub(crate) run_id: Arc<str>,
}

impl std::fmt::Debug for RedisLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value holds the secret: never print it.
        f.debug_struct("RedisLease")
            .field("server", &self.node.url)
            .field("key", &self.names.lock)
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
    fn reset_error(&self, new: &str) -> Error {
        Error::backend(
            &self.node.url,
            Some(&self.names.lock),
            reset_reason(&self.node.url, &self.run_id, new),
            None,
        )
    }
}

#[async_trait]
impl Lease for RedisLease {
    async fn renew(&self, ttl: Duration) -> Result<bool> {
        let live = self.node.live().await?;
        if live.run_id != self.run_id {
            // Fail closed: `session_lost` reports BackendReset.
            return Err(self.reset_error(&live.run_id));
        }
        let mut conn = live.conn.clone();
        let done: i64 = RENEW
            .key(&self.names.lock)
            .arg(&self.owner_prefix)
            .arg(ttl.as_millis().max(1) as u64)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.node.failed(&live, Some(&self.names.lock), e))?;
        Ok(done == 1)
    }

    async fn release(&self) -> Result<bool> {
        let live = self.node.live().await?;
        if live.run_id != self.run_id {
            return Ok(false);
        }
        let mut conn = live.conn.clone();
        let done: i64 = RELEASE
            .key(&self.names.lock)
            .arg(&self.owner_prefix)
            .arg(&self.names.channel)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.node.failed(&live, Some(&self.names.lock), e))?;
        Ok(done == 1)
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
