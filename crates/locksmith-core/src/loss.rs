//! Why a lease ended.

use std::fmt;

/// Why a guard no longer claims its lock. Delivered by [`crate::Guard::lost`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LossReason {
    /// No renewal was confirmed before the local deadline (TTL minus drift, measured from when
    /// the last successful acquire or renewal was sent). Another client may hold it now.
    Expired,
    /// The backend answered that this holder no longer owns the key.
    NotOwner,
    /// The session or connection the lock was bound to ended; the server has released it.
    SessionEnded(String),
    /// The backend lost its state (a Redis that restarted empty, say): the lease and the
    /// fencing counter cannot be trusted, so locksmith fails closed.
    BackendReset(String),
    /// The guard was released (by [`crate::Guard::release`] or by dropping it).
    Released,
}

impl fmt::Display for LossReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LossReason::Expired => f.write_str("the lease expired before a renewal was confirmed"),
            LossReason::NotOwner => f.write_str("the backend says another owner holds it now"),
            LossReason::SessionEnded(why) => write!(f, "the session holding it ended ({why})"),
            LossReason::BackendReset(why) => write!(f, "the backend lost its state ({why})"),
            LossReason::Released => f.write_str("it was released"),
        }
    }
}
