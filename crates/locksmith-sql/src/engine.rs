//! [`SqlBackend`]: the `Backend` implementation shared by the SQL databases.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use locksmith_core::{
    AcquireRequest, Backend, Capabilities, Error, Expiry, FencingToken, Grant, HolderInfo,
    KeyedQueue, LeaseModel, LockKey, QueueTurn, Result,
};
use tokio::sync::OnceCell;

use crate::driver::Driver;
use crate::lease::SqlLease;
use crate::session::{ConnectionStats, Counters, Idle, Session};
use crate::settings::Settings;
use crate::wait::{KeyState, Wait};

/// What both SQL backends can do: session-bound locks, FIFO waiters (the local line, then
/// the server's lock queue), holder introspection, visible to every client of the database.
pub fn capabilities() -> Capabilities {
    Capabilities::new(LeaseModel::Session)
        .fair(true)
        .holder_info(true)
        .cross_process(true)
}

pub(crate) struct Inner<D: Driver> {
    pub(crate) driver: D,
    pub(crate) settings: Settings,
    queue: KeyedQueue<KeyState<D>>,
    idle: Idle<D>,
    prepared: OnceCell<()>,
    counters: Arc<Counters>,
}

/// Advisory locks over a [`Driver`], with one server-side wait per key per process.
///
/// Local waiters on a key line up first come, first served; only the head of the line talks
/// to the server, with one blocking server call on a connection of its own. The head leaves
/// the line when granted, so the next one's server call queues behind it while it holds the
/// lock. A held lock pins its connection until released; released connections are kept idle
/// for reuse (up to [`Settings::pool_idle`]). So a process holding `h` locks and waiting for
/// `w` distinct keys uses at most `h + w + pool_idle` connections, however many tasks wait.
/// An acquire that needs a new connection when the server has none free (its connection
/// limit, or the account's) fails with an error that says so; locks already held are kept.
pub struct SqlBackend<D: Driver> {
    inner: Arc<Inner<D>>,
}

impl<D: Driver> fmt::Debug for SqlBackend<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlBackend")
            .field("driver", &self.inner.driver)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

/// The outcome of one attempt: a grant, or busy (the turn is dropped).
enum Step {
    Granted(Grant),
    Busy,
}

impl<D: Driver> SqlBackend<D> {
    /// A backend over `driver`; no connection is opened until the first request.
    pub fn new(driver: D, settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                driver,
                settings,
                queue: KeyedQueue::new(),
                idle: Idle::new(settings.pool_idle),
                prepared: OnceCell::new(),
                counters: Arc::default(),
            }),
        }
    }

    /// A backend for `url` (see [`Driver::from_url`]); no connection is opened until the
    /// first request.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL the driver or locksmith cannot use.
    pub fn from_url(url: &str) -> Result<Self> {
        let (driver, settings) = D::from_url(url)?;
        Ok(Self::new(driver, settings))
    }

    /// A backend for `url` with one connection opened and the fencing counter set up, so
    /// that a server that is down, bad credentials or a role that may not create the counter
    /// are reported now.
    ///
    /// # Errors
    /// As [`SqlBackend::from_url`], and [`Error::Backend`] when the server cannot be reached
    /// or the counter cannot be set up.
    ///
    /// # Cancel safety
    /// Cancel-safe: a dropped call leaves at most a closed connection.
    pub async fn connect(url: &str) -> Result<Self> {
        let b = Self::from_url(url)?;
        b.warm_up().await?;
        Ok(b)
    }

    /// The driver.
    pub fn driver(&self) -> &D {
        &self.inner.driver
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// How many connections this backend has opened and has open now.
    pub fn connection_stats(&self) -> ConnectionStats {
        self.inner.counters.stats()
    }

    /// Opens one connection (keeping it idle for the first request) and makes sure the
    /// fencing counter exists, so that a server that is down or a role that may not create
    /// the counter is reported now rather than at the first lock.
    ///
    /// # Errors
    /// When the server cannot be reached or the counter cannot be set up.
    ///
    /// # Cancel safety
    /// Cancel-safe: a dropped call leaves at most a closed connection.
    pub async fn warm_up(&self) -> Result<()> {
        let (s, _) = self.inner.checkout(None).await?;
        self.inner.driver.warm_up(&s.conn).await?;
        self.inner.checkin(s);
        Ok(())
    }
}

impl<D: Driver> Inner<D> {
    fn url(&self) -> &str {
        self.driver.display_url()
    }

    /// Runs a statement with the statement timeout. On timeout the caller drops the session.
    pub(crate) async fn bounded<T>(
        &self,
        key: Option<&str>,
        what: &str,
        fut: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        let bound = self.settings.statement_timeout;
        match tokio::time::timeout(bound, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::backend(
                self.url(),
                key,
                format!(
                    "no answer to {what} within {} (statement_timeout); the connection was \
                     closed, which releases anything it held",
                    humantime::format_duration(bound)
                ),
                None,
            )),
        }
    }

    /// A new connection, bounded by the connect timeout.
    async fn connect(&self, key: Option<&str>) -> Result<Arc<Session<D>>> {
        let bound = self.settings.connect_timeout;
        let conn = match tokio::time::timeout(bound, self.driver.connect()).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(Error::backend(
                    self.url(),
                    key,
                    format!(
                        "cannot connect within {} (connect_timeout): is the server running \
                         and reachable?",
                        humantime::format_duration(bound)
                    ),
                    None,
                ));
            }
        };
        Ok(Session::new(conn, &self.counters))
    }

    /// An idle connection or a new one (`true` when reused), with the counter prepared.
    ///
    /// Connecting and the counter set-up are boxed: they are rare, and their futures are
    /// large; inline, they would make every acquire's future as large (copied on each move).
    async fn checkout(&self, key: Option<&str>) -> Result<(Arc<Session<D>>, bool)> {
        let (s, reused) = loop {
            match self.idle.take() {
                Some(s) if self.driver.is_closed(&s.conn) => continue,
                Some(s) => break (s, true),
                None => break (Box::pin(self.connect(key)).await?, false),
            }
        };
        if !self.prepared.initialized() {
            Box::pin(self.prepared.get_or_try_init(|| {
                self.bounded(
                    key,
                    "the fencing-counter setup",
                    self.driver.prepare(&s.conn),
                )
            }))
            .await?;
        }
        Ok((s, reused))
    }

    /// Returns a session that holds no lock to the idle pool.
    pub(crate) fn checkin(&self, s: Arc<Session<D>>) {
        if !self.driver.is_closed(&s.conn) {
            self.idle.put(s);
        }
    }

    /// One attempt for the holder of `turn`.
    async fn try_once(
        self: &Arc<Self>,
        key: &LockKey,
        name: &D::Name,
        owner: &str,
        turn: QueueTurn<KeyState<D>>,
    ) -> Result<Step> {
        let k = Some(key.as_str());
        let mut retried = false;
        loop {
            let (s, reused) = self.checkout(k).await?;
            let attempt = self
                .bounded(
                    k,
                    "the lock attempt",
                    self.driver.try_lock(&s.conn, name, owner),
                )
                .await;
            match attempt {
                Ok(Some(token)) => return Ok(Step::Granted(self.grant(key, name, s, turn, token))),
                Ok(None) => {
                    self.checkin(s);
                    return Ok(Step::Busy);
                }
                // A reused connection may have died while idle: try once more on a new one.
                Err(e) if reused && !retried => {
                    tracing::debug!(error = %e, "an idle connection failed; retrying on a new one");
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn grant(
        self: &Arc<Self>,
        key: &LockKey,
        name: &D::Name,
        s: Arc<Session<D>>,
        turn: QueueTurn<KeyState<D>>,
        token: u64,
    ) -> Grant {
        let lease = SqlLease::new(Arc::clone(self), key.clone(), name.clone(), s);
        // The next local waiter becomes the head of the line now and queues its server-side
        // wait behind this holder, so that a release hands the lock over in the server (one
        // round trip, like sessions blocked in the server's own queue) instead of releasing
        // first and only then starting the next wait.
        drop(turn);
        Grant {
            lease: std::sync::Arc::new(lease),
            token: FencingToken(token),
            expiry: Expiry::Session,
        }
    }
}

#[async_trait]
impl<D: Driver> Backend for SqlBackend<D> {
    fn scheme(&self) -> &'static str {
        self.inner.driver.scheme()
    }

    fn display_url(&self) -> String {
        self.inner.driver.display_url().to_owned()
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    fn check_key(&self, key: &LockKey) -> Result<()> {
        self.inner.driver.check_name(key)
    }

    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>> {
        let name = self.inner.driver.name_of(key)?;
        // Someone in this process awaits the key: it is busy. (A holder here has left the
        // line; the server then answers busy.)
        let Some(turn) = self.inner.queue.try_turn(key) else {
            return Ok(None);
        };
        if turn.wait.is_some() {
            return Ok(None);
        }
        match self.inner.try_once(key, &name, &req.owner, turn).await? {
            Step::Granted(g) => Ok(Some(g)),
            Step::Busy => Ok(None),
        }
    }

    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        _deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        // The caller enforces the deadline by dropping this future; the server-side wait
        // then passes to the next local waiter, or is cancelled when none is left.
        let inner = &self.inner;
        let name = inner.driver.name_of(key)?;
        let k = Some(key.as_str());
        let mut turn = inner.queue.turn(key).await;
        if turn.wait.is_none() {
            // No attempt first: the blocking call returns at once when the lock is free, and
            // saves a round trip when it is not.
            let (s, _) = inner.checkout(k).await?;
            turn.wait = Some(Wait::start(inner, s, name.clone(), req.owner.clone()));
        }
        let Some(wait) = turn.wait.as_mut() else {
            unreachable!("a wait was just started or inherited");
        };
        let (s, token) = wait.outcome().await;
        turn.wait = None;
        let token = token?;
        Ok(Some(inner.grant(key, &name, s, turn, token)))
    }

    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>> {
        let inner = &self.inner;
        let name = inner.driver.name_of(key)?;
        let k = Some(key.as_str());
        let (s, _) = inner.checkout(k).await?;
        let info = inner
            .bounded(k, "the holder query", inner.driver.holder(&s.conn, &name))
            .await?;
        inner.checkin(s);
        Ok(info)
    }

    async fn native_pair(&self, key: &LockKey) -> Result<Option<&'static str>> {
        let inner = &self.inner;
        let name = inner.driver.name_of(key)?;
        let k = Some(key.as_str());
        let (s, _) = inner.checkout(k).await?;
        let took = inner
            .bounded(
                k,
                "the native pair",
                inner.driver.native_pair(&s.conn, &name),
            )
            .await?;
        inner.checkin(s);
        if !took {
            return Err(Error::backend(
                self.inner.url(),
                k,
                "the key is held; the native pair does not wait",
                None,
            ));
        }
        Ok(Some(inner.driver.native_pair_name()))
    }
}
