//! The `redis://` backend: one Redis primary.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use locksmith_core::{
    AcquireRequest, Backend, Capabilities, Expiry, FencingToken, Grant, HolderInfo, KeyedQueue,
    LeaseModel, LockKey, Result, mask_url,
};

use crate::conn::Node;
use crate::layout::{Acquired, Names, ValueParts, holder_from_value, secret};
use crate::lease::RedisLease;
use crate::renew_batch::Renewer;
use crate::scripts::{ACQUIRE, ACQUIRE_FAIR, HOLDER, HolderRead, LEAVE_QUEUE};
use crate::wait::{Attempt, fallback, sleep_until};
use crate::waker::Waker;

/// What `redis://` can do: TTL leases, holder info, not fair (see [`fair_capabilities`]).
pub fn capabilities() -> Capabilities {
    Capabilities::new(LeaseModel::Ttl).holder_info(true)
}

/// What `redis://…?fair=true` can do: as [`capabilities`], and waiters are served in order.
pub fn fair_capabilities() -> Capabilities {
    capabilities().fair(true)
}

/// The `redis://` (and `rediss://`) backend. Cheap to clone; clones share the connections.
#[derive(Clone, Debug)]
pub struct RedisBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    node: Arc<Node>,
    /// Renewals due together go to the server in one script call.
    renewer: Arc<Renewer>,
    waker: Waker,
    /// Local waiters line up per key; only the head waits on the server.
    queue: KeyedQueue<()>,
    prefix: String,
    url: String,
    /// Fair mode: the waiter liveness bound.
    fair: Option<Duration>,
}

/// A fair-mode attempt: the waiter's id in the server's queue, whether it joins the queue,
/// and for a joining waiter the value it is granted under (the same for all its attempts, so
/// that a release can hand it the lock inside the server) and this attempt's number.
struct Waiter<'a> {
    id: &'a str,
    join: bool,
    parts: Option<&'a ValueParts>,
    seq: u64,
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
                renewer: Renewer::new(Arc::clone(&node)),
                node,
                queue: KeyedQueue::new(),
                prefix: opts.prefix,
                url: masked,
                fair: opts.fair,
            }),
        })
    }

    /// The names a key uses on the server: lock key, fence counter and release channel.
    pub fn server_names(&self, key: &LockKey) -> (String, String, String) {
        let n = Names::new(&self.inner.prefix, key);
        (
            n.lock().to_owned(),
            n.fence().to_owned(),
            n.channel().to_owned(),
        )
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

    /// Fair mode's wait: queued on the server, granted by the release that makes it the next
    /// holder (inside the server, and told through its inbox: see `waker`), or by its own retry.
    async fn acquire_fair(
        &self,
        names: &Arc<Names>,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        let inner = &self.inner;
        let bound = inner.fair.unwrap_or(crate::url::DEFAULT_WAITER_TIMEOUT);
        let id = inner.waker.waiter_id();
        let parts = ValueParts::new(&req.owner);
        // Leaves the server's queue (and gives back a lock handed over meanwhile) if this call
        // ends without a grant.
        let mut leave = LeaveQueue {
            inner: Arc::clone(inner),
            names: Arc::clone(names),
            id: id.clone(),
            owner_prefix: parts.owner_prefix(),
        };
        let addressed = inner.waker.address(&id);
        let mut rx = addressed.rx.clone();
        let mut idle_rounds = 0;
        // When the last attempts were sent: a lock handed over counts its lease from the
        // attempt whose queue entry the release read (attempts run one after the other, each
        // overwriting the entry, so it is one of the last).
        let mut sent: VecDeque<(u64, Instant)> = VecDeque::with_capacity(SENT_KEPT);
        let mut seq = 0u64;
        loop {
            // Whether a release from now on reaches this waiter (the inbox is subscribed).
            let heard = addressed.is_subscribed();
            rx.borrow_and_update();
            seq += 1;
            let waiter = Waiter {
                id: &id,
                join: true,
                parts: Some(&parts),
                seq,
            };
            if sent.len() == SENT_KEPT {
                sent.pop_front();
            }
            sent.push_back((seq, Instant::now()));
            let pttl = match inner.attempt(names, req, Some(&waiter)).await? {
                Attempt::Granted(g) => {
                    // The server took this waiter out of the queue.
                    leave.id.clear();
                    return Ok(Some(g));
                }
                Attempt::Busy(pttl) => pttl,
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            if !heard {
                // First wait of this backend (or the subscription connection broke): subscribe
                // the inbox and try again at once, so that a release before the subscription
                // is not missed. A free key costs no subscription.
                addressed.ensure_subscribed().await?;
                continue;
            }
            // Retry often enough to stay alive in the queue.
            let wait = fallback(pttl, idle_rounds).min(bound / 3);
            tokio::select! {
                _ = rx.changed() => idle_rounds = 0,
                _ = tokio::time::sleep(wait) => idle_rounds += 1,
                _ = sleep_until(deadline) => return Ok(None),
            }
            let handed = rx.borrow_and_update().handed;
            if let Some(h) = handed {
                let sent_at = sent.iter().find(|(n, _)| *n == h.seq).map(|(_, at)| *at);
                if let Some(sent_at) = sent_at {
                    leave.id.clear();
                    let live = inner.node.live().await?;
                    let ttl = Duration::from_millis(crate::layout::whole_ms(req.ttl));
                    return Ok(Some(inner.grant(
                        names,
                        &parts,
                        live.run_id,
                        h.token,
                        sent_at,
                        ttl,
                    )));
                }
            }
        }
    }
}

/// How many of a fair waiter's last attempts it remembers the sending time of.
const SENT_KEPT: usize = 8;

impl Inner {
    async fn attempt_now(
        &self,
        names: &Arc<Names>,
        req: &AcquireRequest,
        waiter: Option<&Waiter<'_>>,
    ) -> Result<Attempt> {
        let live = self.node.live().await?;
        let fresh;
        let parts = match waiter.and_then(|w| w.parts) {
            Some(parts) => parts,
            None => {
                fresh = ValueParts::new(&req.owner);
                &fresh
            }
        };
        let ttl_ms = crate::layout::whole_ms(req.ttl);
        let mut conn = live.conn.clone();
        // Armed until the answer is in: if this future is dropped (or the request fails) after
        // the script may have run, a release by the owner prefix follows on the same
        // connection, so nothing stays held.
        let mut undo = Undo {
            node: &self.node,
            renewer: &self.renewer,
            names,
            prefix: Some(parts.owner_prefix()),
            fair: self.fair.is_some(),
        };
        let sent_at = Instant::now();
        let reply: redis::RedisResult<i64> = match (self.fair, waiter) {
            (Some(bound), Some(w)) => {
                let keys = (names.lock(), names.fence(), names.queue(), names.waiters());
                let args = (parts.head(), ttl_ms, parts.tail(), w.id);
                let more = (
                    crate::layout::whole_ms(bound),
                    if w.join { "1" } else { "0" },
                    w.seq,
                );
                ACQUIRE_FAIR.run(&mut conn, 4, (keys, args, more)).await
            }
            _ => {
                let keys_and_args = (names.lock(), names.fence(), parts.value(), ttl_ms);
                ACQUIRE.run(&mut conn, 2, keys_and_args).await
            }
        };
        let n = reply.map_err(|e| self.node.failed(&live, Some(names.lock()), e))?;
        undo.prefix = None;
        let token = match Acquired::from_reply(n) {
            Acquired::Granted(token) => token,
            Acquired::Busy(pttl) => return Ok(Attempt::Busy(pttl)),
        };
        let ttl = Duration::from_millis(ttl_ms);
        Ok(Attempt::Granted(self.grant(
            names,
            parts,
            live.run_id,
            token,
            sent_at,
            ttl,
        )))
    }

    /// The grant of `token` to the holder of `parts`, its TTL counted from `sent_at`.
    fn grant(
        &self,
        names: &Arc<Names>,
        parts: &ValueParts,
        run_id: Arc<str>,
        token: u64,
        sent_at: Instant,
        ttl: Duration,
    ) -> Grant {
        let lease = RedisLease {
            node: Arc::clone(&self.node),
            names: Arc::clone(names),
            owner_prefix: parts.owner_prefix(),
            run_id,
            fair: self.fair.is_some(),
            renewer: Arc::clone(&self.renewer),
        };
        Grant {
            lease: std::sync::Arc::new(lease),
            token: FencingToken(token),
            expiry: Expiry::Ttl { sent_at, ttl },
        }
    }

    /// One attempt that stays correct when the caller drops it (see `Undo`).
    async fn attempt(
        self: &Arc<Self>,
        names: &Arc<Names>,
        req: &AcquireRequest,
        waiter: Option<&Waiter<'_>>,
    ) -> Result<Attempt> {
        self.attempt_now(names, req, waiter).await
    }
}

/// Releases, by the attempt's owner prefix, whatever a dropped or failed attempt may have
/// been granted. Disarmed (prefix taken) once the answer is in.
struct Undo<'a> {
    node: &'a Arc<Node>,
    renewer: &'a Arc<Renewer>,
    names: &'a Arc<Names>,
    prefix: Option<Arc<str>>,
    fair: bool,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        let Some(prefix) = self.prefix.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let lease = RedisLease {
            node: Arc::clone(self.node),
            names: Arc::clone(self.names),
            owner_prefix: prefix,
            run_id: Arc::from(""),
            fair: self.fair,
            renewer: Arc::clone(self.renewer),
        };
        rt.spawn(async move {
            let _ = lease.release_unchecked().await;
        });
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
        capabilities().fair(self.inner.fair.is_some())
    }

    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>> {
        let names = Arc::new(Names::new(&self.inner.prefix, key));
        // In fair mode a try also respects the queue: it is granted only if nobody waits.
        let id = self.inner.fair.map(|_| secret());
        let waiter = id.as_deref().map(|id| Waiter {
            id,
            join: false,
            parts: None,
            seq: 0,
        });
        match self.inner.attempt(&names, req, waiter.as_ref()).await? {
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
        let names = Arc::new(Names::new(&self.inner.prefix, key));
        let _turn = self.inner.queue.turn(names.lock()).await;
        // The waiting paths are boxed: their state would otherwise make every acquire future
        // (allocated per call) as large as themselves, the uncontended one included.
        if self.inner.fair.is_some() {
            return Box::pin(self.acquire_fair(&names, req, deadline)).await;
        }
        // Fast path: a free key costs one round trip, no subscription.
        match self.inner.attempt(&names, req, None).await? {
            Attempt::Granted(g) => return Ok(Some(g)),
            Attempt::Busy(_) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(None),
            Attempt::Busy(_) => {}
        }
        // Subscribe first, then try again: a release after this point cannot be missed.
        let inner = &self.inner;
        Box::pin(crate::wait::until_released(
            &inner.waker,
            names.channel(),
            deadline,
            || inner.attempt(&names, req, None),
        ))
        .await
    }

    /// `SET NX PX` + an EVALSHA compare-and-delete on the key's lock name (see `native.rs`).
    async fn native_pair(&self, key: &LockKey) -> Result<Option<&'static str>> {
        let names = Names::new(&self.inner.prefix, key);
        crate::native::pair(&self.inner.node, &self.inner.url, names.lock()).await?;
        Ok(Some(crate::native::NAME))
    }

    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>> {
        let names = Names::new(&self.inner.prefix, key);
        let live = self.inner.node.live().await?;
        let mut conn = live.conn.clone();
        let (value, pttl, counter): HolderRead = HOLDER
            .run(&mut conn, 2, (names.lock(), names.fence()))
            .await
            .map_err(|e| self.inner.node.failed(&live, Some(names.lock()), e))?;
        Ok(value.map(|v| holder_from_value(&v, pttl, counter)))
    }
}

/// Fair mode: takes a waiter that ends without a grant out of the server's queue, and gives
/// back a lock a release handed to it meanwhile (a granted waiter was taken out by the server:
/// its `id` is cleared, and this does nothing).
struct LeaveQueue {
    inner: Arc<Inner>,
    names: Arc<Names>,
    id: String,
    owner_prefix: Arc<str>,
}

impl Drop for LeaveQueue {
    fn drop(&mut self) {
        if self.id.is_empty() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (inner, names, id, owner_prefix) = (
            Arc::clone(&self.inner),
            Arc::clone(&self.names),
            std::mem::take(&mut self.id),
            Arc::clone(&self.owner_prefix),
        );
        rt.spawn(async move {
            let Ok(live) = inner.node.live().await else {
                return;
            };
            let mut conn = live.conn.clone();
            let keys = (names.queue(), names.waiters(), names.lock(), names.fence());
            let args = (&id, names.channel(), &*owner_prefix);
            let _: redis::RedisResult<i64> = LEAVE_QUEUE.run(&mut conn, 4, (keys, args)).await;
        });
    }
}
