//! # locksmith-mysql
//! wip

mod driver;
mod name;
mod url;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use locksmith_core::{AcquireRequest, Backend, Capabilities, Grant, HolderInfo, LockKey, Result};
use locksmith_sql::{ConnectionStats, SqlBackend};

pub use driver::{CREATE_COUNTER, MySqlDriver};
pub use name::{HASH_PREFIX, MAX_VERBATIM_CHARS, lock_name};

/// The documented name test vectors (key, `GET_LOCK` name).
pub const TEST_VECTORS: &[(&str, &str)] = &[
    (
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "locksmith~9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633a",
    ),
    (
        "locksmith~jobs",
        "locksmith~c11bdfe6a6e970213c643ffd237fb1b3f8510d14061a1b71946138",
    ),
];

/// The `mysql://` backend. See the [crate docs](crate).
#[derive(Debug)]
pub struct MySqlBackend {
    inner: SqlBackend<MySqlDriver>,
}

impl MySqlBackend {
    /// A backend for `url`. No connection is opened until the first request.
    ///
    /// # Errors
    /// [`locksmith_core::Error::InvalidUrl`] for a URL mysql_async or locksmith cannot use.
    pub fn from_url(url: &str) -> Result<Self> {
        let p = url::parse(url)?;
        let driver = MySqlDriver {
            opts: p.opts,
            masked: p.masked,
        };
        Ok(Self {
            inner: SqlBackend::new(driver, p.settings),
        })
    }

    /// How many connections this backend has opened, has open now, and had open at most.
    pub fn connection_stats(&self) -> ConnectionStats {
        self.inner.connection_stats()
    }
}

/// What this backend can do: session-bound, fair, with holder info, cross-process.
pub fn capabilities() -> Capabilities {
    locksmith_sql::capabilities()
}

#[async_trait]
impl Backend for MySqlBackend {
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
    /// One `GET_LOCK(name, 0)` and, when granted, the next token, in one statement.
    ///
    /// # Errors
    /// When the server cannot be reached, or the fencing table is missing and cannot be
    /// created (the message gives the SQL).
    ///
    /// # Cancel safety
    /// Cancel-safe: a dropped attempt closes its connection, which releases the lock.
    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>> {
        self.inner.try_acquire(key, req).await
    }
    /// Waits in this process's line for the key, then in the server's `GET_LOCK` queue.
    ///
    /// # Errors
    /// As [`MySqlBackend::try_acquire`].
    ///
    /// # Cancel safety
    /// Cancel-safe: the server-side wait passes to the next local waiter, or is killed
    /// (`KILL QUERY`).
    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        self.inner.acquire(key, req, deadline).await
    }
    /// `IS_USED_LOCK`, with the owner label and token a locksmith holder recorded.
    ///
    /// # Errors
    /// When the server cannot be reached.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only reads.
    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>> {
        self.inner.holder(key).await
    }
}

/// A backend as an `Arc<dyn Backend>`.
///
/// # Errors
/// As [`MySqlBackend::from_url`].
pub fn open(url: &str) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(MySqlBackend::from_url(url)?))
}
