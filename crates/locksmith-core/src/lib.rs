//! # locksmith-core
//!
//! The API of [locksmith](https://example.invalid/locksmith): distributed locks with a
//! **fencing token** on every grant, **loss notification** for the holder, and waiting by
//! notification. Backends (Redis, PostgreSQL, MySQL, ZooKeeper, etcd, files, memory) implement
//! [`Backend`]; users hold a [`Locker`].
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use locksmith_core::{Locker, LockOptions, MemoryBackend};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> locksmith_core::Result<()> {
//! let locker = Locker::new(Arc::new(MemoryBackend::new()));
//! let opts = LockOptions::new().ttl(Duration::from_secs(10));
//!
//! let guard = locker.acquire("invoice-42", &opts).await?;
//! let token = guard.fencing_token();          // pass it to the resource you protect
//! assert!(locker.try_acquire("invoice-42", &opts).await?.is_none()); // busy is not an error
//!
//! // Work that must stop if the lock is lost:
//! let charged = guard.protect(async { "charged once" }).await?;
//! assert_eq!(charged, "charged once");
//! assert!(guard.release().await?);            // true: it was still ours
//!
//! let next = locker.acquire("invoice-42", &opts).await?;
//! assert!(next.fencing_token() > token);      // tokens only go up
//! # Ok(()) }
//! ```
//!
//! ## The promises
//! - A guard claims its lock only while it can prove it: for TTL leases, until a local deadline
//!   measured on a monotonic clock from when the acquire (or last renewal) was *sent*, minus a
//!   drift allowance ([`LockOptions::drift`]).
//! - [`Guard::lost`] resolves when the lock is lost or that proof runs out.
//! - [`Guard::fencing_token`] is unique and strictly increasing across holders of a key.
//! - Every acquire future is cancel-safe: dropping it leaves nothing held and no waiter.
//!
//! ## Writing a backend
//! Implement [`Backend`] (one attempt, a wait by notification, introspection) and [`Lease`]
//! (owner-checked renew and release, and a session watch for session-bound locks). Renewal,
//! deadlines, loss detection, wait bounds and guards are shared and live in this crate.
//! [`KeyedQueue`] lines local waiters up per key so that only one per key waits on the server.

mod backend;
mod election;
mod error;
mod guard;
mod keeper;
mod keeper_service;
mod key;
mod keyed_queue;
mod locker;
mod loss;
mod memory;
mod options;
mod token;

pub use backend::{
    AcquireRequest, Backend, Capabilities, Expiry, Grant, HolderInfo, Lease, LeaseModel, wait_until,
};
pub use election::{Election, Leadership};
pub use error::{BoxError, Error, Result, mask_url, show_key};
pub use guard::Guard;
pub use key::{IntoLockKey, LockKey, MAX_KEY_BYTES};
pub use keyed_queue::{KeyedQueue, QueueKey, QueueTurn};
pub use locker::Locker;
pub use loss::LossReason;
pub use memory::MemoryBackend;
pub use options::{DEFAULT_TTL, LockOptions, MAX_TTL, WaitPolicy, default_owner};
pub use token::FencingToken;
