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
//! | `redis://[[user]:pw@]host[:port][/db]`, `rediss://…` | one Redis primary (TLS with `rediss`) | `redis` |
//! | `redis+cluster://host:port,host:port,…`, `rediss+cluster://…` | one Redis Cluster (seed nodes) | `redis` |
//! | `redlock://host:port,host:port,…` | Redlock over independent Redis primaries | `redis` |
//! | `postgres://USER@HOST/DB` | PostgreSQL session advisory locks | `postgres` |
//! | `mysql://USER@HOST/DB` | MySQL/MariaDB `GET_LOCK` | `mysql` |
//! | `etcd://HOST:PORT[,HOST:PORT…]` | etcd leases, the `etcdctl lock` layout | `etcd` |
//! | `zookeeper://HOST:PORT[,HOST:PORT…][/CHROOT]` | ZooKeeper, Curator's lock-node layout | `zookeeper` |
//!
//! A scheme whose feature is not compiled in gets an error naming the feature to enable.
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
#[cfg(feature = "mysql")]
pub use locksmith_mysql as mysql;
#[cfg(feature = "postgres")]
pub use locksmith_postgres as postgres;
#[cfg(feature = "redis")]
pub use locksmith_redis as redis;
#[cfg(feature = "zookeeper")]
pub use locksmith_zookeeper as zookeeper;
pub use open::{backend_from_url, default_url, open};

/// The README's Rust examples, compiled as doc tests so that they stay true.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
