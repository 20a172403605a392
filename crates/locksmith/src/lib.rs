//! # locksmith
//!
//! Distributed locks for Rust with a **fencing token** on every grant, **loss notification**
//! ([`Guard::lost`]) and **waiting by notification**, over one async API. Pick a backend by URL
//! with [`open`]:
//!
//! | URL | backend | cargo feature |
//! |---|---|---|
//! | `memory://NAME` | in-process, FIFO-fair (tests, docs) | always |
//! | `file://DIR` | OS file locks on one machine | `file` (default) |
//!
//! Redis, Redlock, PostgreSQL, MySQL/MariaDB, ZooKeeper and etcd backends are planned; their
//! schemes are recognised today and [`open`] says they are not available in this build.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> locksmith::Result<()> {
//! use std::time::Duration;
//! use locksmith::LockOptions;
//!
//! let locker = locksmith::open("memory://docs")?;
//! let opts = LockOptions::new().ttl(Duration::from_secs(5));
//! let total = locker
//!     .with_lock("nightly-report", &opts, |token| async move {
//!         // Only one copy of the service runs this at a time; `token` fences its writes.
//!         token.get()
//!     })
//!     .await?;
//! assert!(total >= 1);
//! # Ok(()) }
//! ```

mod open;

pub use locksmith_core::*;
#[cfg(feature = "etcd")]
pub use locksmith_etcd as etcd;
#[cfg(feature = "file")]
pub use locksmith_file as file;
#[cfg(feature = "zookeeper")]
pub use locksmith_zookeeper as zookeeper;
pub use open::{backend_from_url, default_url, open};

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
