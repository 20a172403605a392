//! Leader election on top of the lock: the leader is the lock holder, its owner label is
//! what observers see, and loss of leadership is loss of the lock.

use std::future::Future;

use crate::backend::HolderInfo;
use crate::error::Result;
use crate::guard::Guard;
use crate::key::LockKey;
use crate::locker::Locker;
use crate::loss::LossReason;
use crate::options::LockOptions;
use crate::token::FencingToken;

/// An election on one key. Create with [`Locker::election`].
#[derive(Debug, Clone)]
pub struct Election {
    locker: Locker,
    key: LockKey,
    opts: LockOptions,
}

impl Election {
    pub(crate) fn new(locker: Locker, key: LockKey, opts: LockOptions) -> Self {
        Self { locker, key, opts }
    }

    /// The election's key.
    pub fn key(&self) -> &LockKey {
        &self.key
    }

    /// Waits to become leader (bounded by the options' wait policy).
    ///
    /// # Errors
    /// Those of [`Locker::acquire`].
    ///
    /// # Cancel safety
    /// Cancel-safe: dropping the future withdraws the candidacy.
    pub async fn campaign(&self) -> Result<Leadership> {
        let guard = self.locker.acquire(&self.key, &self.opts).await?;
        Ok(Leadership { guard })
    }

    /// The current leader, or `None` when there is none.
    ///
    /// # Errors
    /// Those of [`Locker::holder`].
    ///
    /// # Cancel safety
    /// Cancel-safe; it only reads.
    pub async fn leader(&self) -> Result<Option<HolderInfo>> {
        self.locker.holder(&self.key).await
    }
}

/// Held leadership. Dropping it resigns in the background, like dropping a [`Guard`].
#[must_use = "dropping the leadership resigns"]
#[derive(Debug)]
pub struct Leadership {
    guard: Guard,
}

impl Leadership {
    /// The fencing token of this term: larger than every earlier leader's.
    pub fn fencing_token(&self) -> FencingToken {
        self.guard.fencing_token()
    }

    /// Resolves when leadership is lost (see [`Guard::lost`]).
    ///
    /// # Cancel safety
    /// Cancel-safe; it only watches.
    pub fn lost(&self) -> impl Future<Output = LossReason> + Send + 'static {
        self.guard.lost()
    }

    /// True while leadership is provably held.
    pub fn is_leader(&self) -> bool {
        self.guard.is_held()
    }

    /// The underlying guard.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// Steps down. `Ok(true)` if this term was still held.
    ///
    /// # Errors
    /// Those of [`Guard::release`].
    ///
    /// # Cancel safety
    /// As [`Guard::release`].
    pub async fn resign(self) -> Result<bool> {
        self.guard.release().await
    }
}
