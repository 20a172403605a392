//! The `redis://` backend: one Redis primary.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use locksmith_core::{
    AcquireRequest, Backend, Capabilities, Expiry, FencingToken, Grant, HolderInfo, KeyedQueue,
    LeaseModel, LockKey, Result, mask_url,
};

use crate::conn::Node;
use crate::layout::{Names, ValueParts, holder_from_value};
use crate::lease::RedisLease;
use crate::scripts::ACQUIRE;
use crate::waker::Waker;

/// What `redis://` can do: TTL leases, holder info, not fair.
pub fn capabilities() -> Capabilities {
    Capabilities::new(LeaseModel::Ttl).holder_info(true)
}

/// The `redis://` (and `rediss://`) backend. Cheap to clone; clones share the connections.
#[derive(Clone, Debug)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    node: Arc<Node>,
    waker: Waker,
    /// Local waiters line up per key; only the head waits on the server.
    queue: KeyedQueue<()>,
    prefix: String,
    url: String,
}

/// The outcome of one attempt.
pub(crate) enum Attempt {
    Granted(Grant),
    /// Held by someone else for this many more ms (-1: no expiry).
    Busy(i64),
}

impl RedisBackend {
    /// A backend for `redis://[[user]:password@]host[:port][/db][?options]` (or `rediss://`).
    /// Nothing is connected yet: the first request connects.
    ///
    /// # Errors
    /// [`locksmith_core::Error::InvalidUrl`] naming what is wrong.
    pub fn from_url(url: &str) -> Result<Self> {
        let (target, opts) = crate::url::parse_redis(url)?;
        let masked = mask_url(url);
        let node = Arc::new(Node::new(&target, masked.clone(), &opts)?);
        Ok(Self {
            inner: Arc::new(Inner {
                waker: Waker::new(Arc::clone(&node)),
                node,
                queue: KeyedQueue::new(),
                prefix: opts.prefix,
                url: masked,
            }),
        })
    }

    /// The names a key uses on the server: lock key, fence counter and release channel.
    pub fn server_names(&self, key: &LockKey) -> (String, String, String) {
        let n = Names::new(&self.inner.prefix, key);
        (n.lock, n.fence, n.channel)
    }

    /// Connects now (and reads the server's `run_id`), to fail early on a bad URL, a server
    /// that is down or a wrong password.
    ///
    /// # Errors
    /// [`locksmith_core::Error::Backend`] within the connect timeout.
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn connect(&self) -> Result<()> {
        self.inner.node.live().await.map(|_| ())
    }
}

impl Inner {
    async fn attempt_now(&self, names: &Names, req: &AcquireRequest) -> Result<Attempt> {
        let live = self.node.live().await?;
        let parts = ValueParts::new(&req.owner);
        let ttl_ms = req.ttl.as_millis().max(1) as u64;
        let mut conn = live.conn.clone();
        let sent_at = Instant::now();
        let (granted, n): (i64, i64) = ACQUIRE
            .key(&names.lock)
            .key(&names.fence)
            .arg(&parts.head)
            .arg(ttl_ms)
            .arg(&parts.tail)
            .invoke_async(&mut conn)
            .await
            .map_err(|e| self.node.failed(&live, Some(&names.lock), e))?;
        if granted != 1 {
            return Ok(Attempt::Busy(n));
        }
        let token = n as u64;
        let lease = RedisLease {
            node: Arc::clone(&self.node),
            names: names.clone(),
            owner_prefix: parts.owner_prefix(),
            run_id: live.run_id,
        };
        Ok(Attempt::Granted(Grant {
            lease: Box::new(lease),
            token: FencingToken(token),
            expiry: Expiry::Ttl {
                sent_at,
                ttl: Duration::from_millis(ttl_ms),
            },
        }))
    }

    /// One attempt that stays correct when the caller drops it (see `detached`).
    async fn attempt(self: &Arc<Self>, names: &Names, req: &AcquireRequest) -> Result<Attempt> {
        let (this, names, req) = (Arc::clone(self), names.clone(), req.clone());
        crate::detached::run(
            &self.url,
            async move { this.attempt_now(&names, &req).await },
            |a| match a {
                Attempt::Granted(g) => Ok(g),
                other => Err(other),
            },
            Attempt::Granted,
        )
        .await
    }
}

/// How long to sleep before retrying a key held for `pttl` more ms, when no release message
/// comes: until it expires; for a key without expiry (a foreign lock), a growing backoff.
fn fallback(pttl: i64, idle_rounds: u32) -> Duration {
    if pttl >= 0 {
        Duration::from_millis(pttl as u64 + 1)
    } else {
        Duration::from_millis(10u64 << idle_rounds.min(7)).min(Duration::from_secs(1))
    }
}

#[async_trait]
impl Backend for RedisBackend {
    fn scheme(&self) -> &'static str {
        "redis"
    }

    fn display_url(&self) -> String {
        self.inner.url.clone()
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>> {
        let names = Names::new(&self.inner.prefix, key);
        match self.inner.attempt(&names, req).await? {
            Attempt::Granted(g) => Ok(Some(g)),
            Attempt::Busy(_) => Ok(None),
        }
    }

    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        let names = Names::new(&self.inner.prefix, key);
        let _turn = self.inner.queue.turn(&names.lock).await;
        // Fast path: a free key costs one round trip, no subscription.
        match self.inner.attempt(&names, req).await? {
            Attempt::Granted(g) => return Ok(Some(g)),
            Attempt::Busy(_) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(None),
            Attempt::Busy(_) => {}
        }
        // Subscribe first, then try again: a release after this point cannot be missed.
        let reg = self.inner.waker.register(&names.channel).await?;
        let mut rx = reg.rx.clone();
        let mut idle_rounds = 0;
        loop {
            reg.ensure_subscribed().await?;
            rx.borrow_and_update();
            let pttl = match self.inner.attempt(&names, req).await? {
                Attempt::Granted(g) => return Ok(Some(g)),
                Attempt::Busy(pttl) => pttl,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            let sleep = tokio::time::sleep(fallback(pttl, idle_rounds));
            tokio::select! {
                _ = rx.changed() => idle_rounds = 0,
                _ = sleep => idle_rounds += 1,
                _ = sleep_until(deadline) => return Ok(None),
            }
        }
    }

    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>> {
        let names = Names::new(&self.inner.prefix, key);
        let live = self.inner.node.live().await?;
        let mut conn = live.conn.clone();
        let (value, pttl): (Option<Vec<u8>>, i64) = redis::pipe()
            .get(&names.lock)
            .pttl(&names.lock)
            .query_async(&mut conn)
            .await
            .map_err(|e| self.inner.node.failed(&live, Some(&names.lock), e))?;
        Ok(value.map(|v| holder_from_value(&v, pttl)))
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
