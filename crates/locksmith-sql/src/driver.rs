//! The SQL-dialect part a backend supplies: connect, one attempt, one blocking wait, unlock,
//! introspection, and a liveness check. Everything else (queueing, pooling, leases, loss) is
//! shared in [`crate::SqlBackend`].

use std::fmt;

use locksmith_core::{HolderInfo, LockKey, Result};
use std::future::Future;

use crate::Settings;

/// One database's advisory-lock primitives, on connections it opens.
///
/// Every method that talks to the server gets the connection it must use; the engine pins one
/// connection to each held lock and never shares a connection between two holders.
pub trait Driver: Send + Sync + fmt::Debug + 'static {
    /// A session: the connection a lock lives on.
    type Conn: Send + Sync + 'static;
    /// The server-side lock name a key maps to (an `i64` advisory id, a `GET_LOCK` name).
    type Name: Clone + Send + Sync + fmt::Debug + 'static;

    /// The driver and the engine settings for `url` (locksmith's own query parameters are
    /// [`crate::PARAMS`]; the rest are the database driver's). Opens no connection.
    ///
    /// # Errors
    /// [`locksmith_core::Error::InvalidUrl`] for a URL the driver or locksmith cannot use.
    fn from_url(url: &str) -> Result<(Self, Settings)>
    where
        Self: Sized;

    /// The URL scheme, e.g. `"postgres"`.
    fn scheme(&self) -> &'static str;

    /// The URL with the password masked.
    fn display_url(&self) -> &str;

    /// Maps a key onto its server-side lock name.
    ///
    /// # Errors
    /// [`locksmith_core::Error::InvalidKey`] when the key breaks a rule of this backend.
    fn name_of(&self, key: &LockKey) -> Result<Self::Name>;

    /// Checks `key` as [`Driver::name_of`] would, without making the name (which may cost a
    /// hash: every acquire checks its key first, then names it).
    ///
    /// # Errors
    /// Those of [`Driver::name_of`].
    fn check_name(&self, key: &LockKey) -> Result<()> {
        self.name_of(key).map(drop)
    }

    /// Opens a new session.
    ///
    /// # Errors
    /// When the server cannot be reached or refuses the login.
    ///
    /// # Cancel safety
    /// Dropping the future drops the half-open connection.
    fn connect(&self) -> impl Future<Output = Result<Self::Conn>> + Send;

    /// Makes sure the fencing counter exists (creating it on first use). Called once per
    /// backend before the first lock, and again after a failure.
    ///
    /// # Errors
    /// When it is missing and cannot be created: the message gives the SQL to run.
    ///
    /// # Cancel safety
    /// Idempotent; a dropped call is simply retried.
    fn prepare(&self, conn: &Self::Conn) -> impl Future<Output = Result<()>> + Send;

    /// One attempt without waiting: takes the lock and, if granted, the next fencing token
    /// (in one round trip where the database allows), and records `owner` for introspection.
    /// `Ok(None)` when another session holds it.
    ///
    /// # Errors
    /// When the server fails the statement.
    ///
    /// # Cancel safety
    /// The engine drops the connection when the call is dropped, which releases anything the
    /// server granted.
    fn try_lock(
        &self,
        conn: &Self::Conn,
        name: &Self::Name,
        owner: &str,
    ) -> impl Future<Output = Result<Option<u64>>> + Send;

    /// Blocks on the server until the lock is granted, then takes the next fencing token.
    ///
    /// # Errors
    /// When the server fails the statement or the connection ends.
    ///
    /// # Cancel safety
    /// As [`Driver::try_lock`].
    fn lock_wait(
        &self,
        conn: &Self::Conn,
        name: &Self::Name,
        owner: &str,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// Releases the lock held by this session. `Ok(false)` when the session did not hold it.
    ///
    /// # Errors
    /// When the server fails the statement.
    ///
    /// # Cancel safety
    /// The engine drops the connection when the call is dropped.
    fn unlock(
        &self,
        conn: &Self::Conn,
        name: &Self::Name,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// Who holds the lock, seen from another session.
    ///
    /// # Errors
    /// When the server fails the statement.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only reads.
    fn holder(
        &self,
        conn: &Self::Conn,
        name: &Self::Name,
    ) -> impl Future<Output = Result<Option<HolderInfo>>> + Send;

    /// The database's bare lock-and-unlock pair on `conn`, with no fencing token and no owner
    /// record (`pg_try_advisory_lock` + `pg_advisory_unlock`, `GET_LOCK(name, 0)` +
    /// `RELEASE_LOCK`): the floor `locksmith bench` measures. `Ok(false)` when the lock was
    /// held elsewhere (nothing to unlock).
    ///
    /// # Errors
    /// When the server fails a statement.
    ///
    /// # Cancel safety
    /// The engine drops the connection when the call is dropped.
    fn native_pair(
        &self,
        conn: &Self::Conn,
        name: &Self::Name,
    ) -> impl Future<Output = Result<bool>> + Send;

    /// What [`Driver::native_pair`] runs, for reports.
    fn native_pair_name(&self) -> &'static str;

    /// A cheap round trip proving the session is alive.
    ///
    /// # Errors
    /// When the session is gone.
    ///
    /// # Cancel safety
    /// Cancel-safe.
    fn ping(&self, conn: &Self::Conn) -> impl Future<Output = Result<()>> + Send;

    /// Resolves with a reason when the driver learns, without a round trip, that the session
    /// has ended (the server closed it). The default never resolves: pings find out instead.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only watches.
    fn closed(&self, _conn: &Self::Conn) -> impl Future<Output = String> + Send {
        std::future::pending()
    }

    /// Stops a [`Driver::lock_wait`] still blocked on the server for `conn` (the engine then
    /// closes `conn`). The default does nothing: closing the session ends the wait.
    ///
    /// # Cancel safety
    /// Best effort; a dropped call leaves the wait to end when the session closes.
    fn cancel_wait(&self, _conn: &Self::Conn) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }

    /// True when the driver knows that `conn` is closed (an idle connection is then not
    /// reused). The default says no.
    fn is_closed(&self, _conn: &Self::Conn) -> bool {
        false
    }

    /// Readies a new connection for its first lock (e.g. prepares statements). The default
    /// does nothing.
    ///
    /// # Errors
    /// When the server fails the preparation.
    ///
    /// # Cancel safety
    /// Idempotent.
    fn warm_up(&self, _conn: &Self::Conn) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(Ok(()))
    }
}
