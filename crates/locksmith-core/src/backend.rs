//! The trait a backend implements. Users hold a [`crate::Locker`]; backends implement
//! [`Backend`] and [`Lease`], and the shared machinery above them does waiting bounds,
//! renewal, loss detection and release-on-drop once for all.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;

use crate::error::Result;
use crate::key::LockKey;
use crate::loss::LossReason;
use crate::token::FencingToken;

/// How a backend's locks stay held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseModel {
    /// The server forgets the lock after a TTL unless it is renewed (Redis, Redlock, etcd, memory).
    Ttl,
    /// The lock lives as long as a session or connection (PostgreSQL, MySQL, ZooKeeper, file).
    Session,
}

/// What a backend can do; the conformance suite skips, by name, the cases a backend lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// TTL leases or session-bound locks.
    pub lease_model: LeaseModel,
    /// Waiters are served first come, first served.
    pub fair: bool,
    /// `holder()` can tell who holds a key.
    pub holder_info: bool,
    /// Locks are visible to other processes (false only for `memory://`).
    pub cross_process: bool,
}

impl Capabilities {
    /// Capabilities with the given lease model, everything else off.
    pub fn new(lease_model: LeaseModel) -> Self {
        Self {
            lease_model,
            fair: false,
            holder_info: false,
            cross_process: true,
        }
    }
    /// Sets `fair`.
    pub fn fair(mut self, on: bool) -> Self {
        self.fair = on;
        self
    }
    /// Sets `holder_info`.
    pub fn holder_info(mut self, on: bool) -> Self {
        self.holder_info = on;
        self
    }
    /// Sets `cross_process`.
    pub fn cross_process(mut self, on: bool) -> Self {
        self.cross_process = on;
        self
    }
}

/// What a backend is given for one acquire.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AcquireRequest {
    /// The lease TTL the caller asked for.
    pub ttl: Duration,
    /// The owner label, for introspection.
    pub owner: Arc<str>,
}

impl AcquireRequest {
    /// A request.
    pub fn new(ttl: Duration, owner: impl Into<Arc<str>>) -> Self {
        Self {
            ttl,
            owner: owner.into(),
        }
    }
}

/// How long a grant is valid, as the shared machinery must track it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// Held until the session ends; [`Lease::session_lost`] reports that.
    Session,
    /// Held for `ttl` counted from `sent_at`, the monotonic instant the successful request was
    /// sent (not answered). The guard's deadline is `sent_at + ttl - drift`.
    Ttl {
        /// When the request that was granted was sent.
        sent_at: Instant,
        /// The TTL the server applied.
        ttl: Duration,
    },
}

/// A granted lock, as a backend returns it.
#[derive(Debug)]
pub struct Grant {
    /// The backend's handle on the held lock.
    pub lease: Arc<dyn Lease>,
    /// The fencing token of this grant.
    pub token: FencingToken,
    /// How the grant stays valid.
    pub expiry: Expiry,
}

/// A backend's handle on one held lock.
///
/// Implementations must make `release` and `renew` compare ownership on the server: they act
/// only if this handle still owns the key, and never disturb a later holder.
/// Dropping a lease must not block; a backend whose lock lives in a local resource (a file
/// descriptor, a pooled connection) frees it in `Drop`.
#[async_trait]
pub trait Lease: Send + Sync + fmt::Debug {
    /// Extends the lease to `ttl` from now (TTL backends) or checks that the session is alive
    /// (session backends).
    ///
    /// Returns `Ok(true)` when still owned, `Ok(false)` when the backend says this handle no
    /// longer owns the key.
    ///
    /// The keeper renews every lease on a process-wide grid (at most a third of the TTL after
    /// the last confirmed renewal), so leases with the same TTL call `renew` at the same
    /// instants: a backend can gather the calls that arrive together and send them to the
    /// server in one round trip (the Redis backend does), each call still getting its own
    /// answer.
    ///
    /// # Errors
    /// When the backend cannot be reached; the caller retries until the deadline.
    ///
    /// # Cancel safety
    /// Cancel-safe: a dropped renewal either happened or did not, and ownership is unchanged.
    async fn renew(&self, ttl: Duration) -> Result<bool>;

    /// Releases the lock if this handle still owns it. `Ok(true)` if it did.
    ///
    /// # Errors
    /// When the backend cannot be reached; the lock then ends by TTL or session end.
    ///
    /// # Cancel safety
    /// Cancel-safe: the lock is released or stays until its TTL or session ends.
    async fn release(&self) -> Result<bool>;

    /// For a session-bound lock: how often the keeper checks its session with
    /// [`Lease::renew`], on the keeper's shared timer queue (a failed check is a loss:
    /// [`LossReason::SessionEnded`]). `None` (the default): no checks; the backend's
    /// [`Lease::session_lost`] alone tells a loss. Ignored for TTL leases, which are renewed.
    fn health_check(&self) -> Option<Duration> {
        None
    }

    /// Resolves when the session holding a session-bound lock ends. The default never resolves,
    /// which is right for TTL leases.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only watches.
    async fn session_lost(&self) -> LossReason {
        std::future::pending().await
    }

    /// For a session-bound lock whose session the server expires unless kept alive (etcd's
    /// lease, say): until when this client can prove the session alive, from the last
    /// keep-alive the server confirmed. The guard is not held past it
    /// ([`Guard::is_held`](crate::Guard::is_held)), its `lost()` resolves when it passes
    /// unextended, and it reports it as its lease deadline
    /// ([`Guard::lease_left`](crate::Guard::lease_left)), even while the task that would
    /// report the loss has not run yet (a process resumed after a long pause). `None` (the
    /// default): no such bound, or a TTL lease, whose deadline the keeper keeps.
    fn session_valid_until(&self) -> Option<Instant> {
        None
    }
}

/// Who holds a key, as far as the backend can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct HolderInfo {
    /// The holder's owner label.
    pub owner: String,
    /// The holder's fencing token, if known.
    pub token: Option<FencingToken>,
    /// When it was granted, if known.
    pub since: Option<SystemTime>,
    /// Time left on the lease, for TTL backends.
    pub lease_left: Option<Duration>,
}

impl HolderInfo {
    /// Holder info with an owner label only.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            token: None,
            since: None,
            lease_left: None,
        }
    }
    /// Sets the token.
    pub fn token(mut self, token: FencingToken) -> Self {
        self.token = Some(token);
        self
    }
    /// Sets the grant time.
    pub fn since(mut self, since: SystemTime) -> Self {
        self.since = Some(since);
        self
    }
    /// Sets the lease time left.
    pub fn lease_left(mut self, left: Duration) -> Self {
        self.lease_left = Some(left);
        self
    }
}

impl fmt::Display for HolderInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.owner)?;
        if let Some(t) = self.token {
            write!(f, " (fencing token {t}")?;
            if let Some(since) = self
                .since
                .and_then(|s| SystemTime::now().duration_since(s).ok())
            {
                write!(f, ", for {:.1}s", since.as_secs_f64())?;
            }
            if let Some(left) = self.lease_left {
                write!(f, ", lease left {:.1}s", left.as_secs_f64())?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// A lock backend. Object-safe: hold it as `Arc<dyn Backend>` inside a [`crate::Locker`].
///
/// A backend implements the native primitive only: one attempt, a wait by notification, and
/// introspection. Wait bounds, renewal, loss detection and guards live above it.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// The scheme name, e.g. `"redis"`.
    fn scheme(&self) -> &'static str;

    /// The backend's URL with any password masked, for messages.
    fn display_url(&self) -> String;

    /// What this backend can do.
    fn capabilities(&self) -> Capabilities;

    /// Checks a key against the backend's own rules (beyond [`LockKey`]'s).
    ///
    /// # Errors
    /// [`crate::Error::InvalidKey`] naming the key and the rule.
    fn check_key(&self, _key: &LockKey) -> Result<()> {
        Ok(())
    }

    /// One attempt: `Ok(None)` when the key is held by someone else.
    ///
    /// # Errors
    /// When the backend cannot be reached or refuses the request.
    ///
    /// # Cancel safety
    /// Must be cancel-safe: if the future is dropped, nothing stays held (a lock granted on
    /// the server after the drop is released, at the latest by its TTL or session end).
    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>>;

    /// Waits for the key by notification (pub/sub, watch, a blocking server call; never a loop
    /// of fixed sleeps) until it is granted or `deadline` passes (`Ok(None)`); `None` waits
    /// without bound. The caller also enforces the deadline by dropping the future.
    ///
    /// # Errors
    /// When the backend cannot be reached or refuses the request.
    ///
    /// # Cancel safety
    /// Must be cancel-safe: dropping the future leaves nothing held and no waiter registered.
    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>>;

    /// Who holds `key`, or `None` when it is free.
    ///
    /// # Errors
    /// When the backend cannot be reached, or [`crate::Error::Unsupported`].
    ///
    /// # Cancel safety
    /// Cancel-safe; it only reads.
    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>>;

    /// Runs the backend's own cheapest acquire-and-release pair on `key` once, with its own
    /// client library and connections and none of locksmith's machinery — no fencing token, no
    /// owner record, no renewal, no in-process queue (for example `SET NX PX` and a
    /// compare-and-delete script on Redis). `locksmith bench` times it as the floor every other
    /// figure is read against. Returns the pair's name, or `Ok(None)` when the backend offers
    /// none (nothing was run). Not for locking: nothing protects what happens between the two.
    ///
    /// # Errors
    /// When the backend cannot be reached, or when `key` is held (the pair does not wait).
    ///
    /// # Cancel safety
    /// Cancel-safe as far as the server allows: a pair dropped between its two halves leaves
    /// the key held until its TTL or session ends.
    async fn native_pair(&self, _key: &LockKey) -> Result<Option<&'static str>> {
        Ok(None)
    }
}

/// Runs a backend's waiting `attempt` until `deadline` (`None`: without bound) and turns a
/// deadline that passed into `Ok(None)`, as [`Backend::acquire`] promises. The one place that
/// bound is applied; backends call it rather than writing their own timeout.
///
/// # Errors
/// Those of `attempt`.
///
/// # Cancel safety
/// As cancel-safe as `attempt`, which is dropped when the deadline passes.
pub async fn wait_until<F>(deadline: Option<Instant>, attempt: F) -> Result<Option<Grant>>
where
    F: std::future::Future<Output = Result<Option<Grant>>>,
{
    match deadline {
        None => attempt.await,
        Some(d) => tokio::time::timeout_at(d.into(), attempt)
            .await
            .unwrap_or(Ok(None)),
    }
}
