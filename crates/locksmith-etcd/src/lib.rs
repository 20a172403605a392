//! # locksmith-etcd
//!
//! The `etcd://` backend of [locksmith](https://example.invalid/locksmith): fair, fenced
//! locks on an etcd v3 cluster, in the same layout as etcd's own `concurrency.Mutex`, so a
//! lock taken with `etcdctl lock NAME` and a locksmith lock on key `NAME` exclude each other.
//!
//! ```no_run
//! use std::sync::Arc;
//! use locksmith_core::{Locker, LockOptions};
//! use locksmith_etcd::EtcdBackend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> locksmith_core::Result<()> {
//! let backend = EtcdBackend::from_url("etcd://127.0.0.1:2379?lease_ttl=10")?;
//! let locker = Locker::new(Arc::new(backend));
//! let guard = locker.acquire("jobs/nightly", &LockOptions::new()).await?;
//! println!("fencing token {}", guard.fencing_token());
//! guard.release().await?;
//! # Ok(()) }
//! ```
//!
//! ## URL
//! `etcd://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]…][/NAMESPACE][?OPTIONS]` (port 2379 by
//! default; list every member for fail-over). Options:
//!
//! | option | default | meaning |
//! |---|---|---|
//! | `lease_ttl` | `10` | TTL in whole seconds of the client's one etcd lease: a crashed holder's locks go after at most this long |
//! | `connect_timeout` | `5` | seconds to wait for a connection, and for each request's answer |
//! | `tls` | `false` | `https` to every member |
//! | `ca_file` | system roots | PEM file of the CA that signed the members' certificates (implies `tls`) |
//! | `tls_domain` | the host | the name to check in the members' certificates (implies `tls`) |
//!
//! User and password (percent-encoded in the URL) log in with etcd's authentication; the
//! password is never printed (messages show the URL with `***`).
//!
//! ## On-server layout (etcd's `concurrency.Mutex`, as `etcdctl lock` uses it)
//! Each [`EtcdBackend`] grants **one etcd lease** and keeps it alive in the background (every
//! third of its TTL). To lock key `K` it writes the key `NAMESPACE K / LEASE` (`LEASE` is the
//! lease ID in lower-case hex, e.g. `jobs/nightly/694d9a0b1c2e3f10`) with that lease, in a
//! transaction that only puts it if its create revision is 0, and lists the line in the same
//! transaction. The value is the owner label (`etcdctl lock` writes an empty value). The
//! contender with the **lowest create revision** among the direct children of `K/` holds the
//! lock. Every other contender waits until every key created before its own is deleted
//! (`etcdctl lock` watches the one just before its own, then lists again: the same
//! condition), and is granted only while its own key exists with its create revision: a
//! waiter whose lease expired while it was queued is never told that it holds the lock (etcd issue 11456, found by Jepsen in 3.4.3). Release deletes
//! the key only if its create revision is still the one granted.
//!
//! Prompt hand-over: each client keeps **one watch per lock line** (on the prefix `K/`,
//! deletions only), shared by its waiters on that lock and kept for 5–10 s after the last of
//! them, rather than a watch per wait. A watch created for "now" can start a revision in the
//! past when a write lands while etcd registers it; etcd then serves it from a catch-up loop
//! that runs every 100 ms, and that hand-over stalls (with a fresh watch per wait, measured:
//! p99 wait ~95 ms with 8 contenders). The shared watch also reports the waiter's own key's
//! deletion, in revision order with the others: when the last key ahead goes and ours has
//! not, ours provably held the lock then, with no read of the line on the hand-over's path.
//! A waiter that has no live watch yet subscribes, then reads the line (with the proof that
//! its key exists) once; a watch that breaks or falls behind means one more such read. Every
//! client with a waiter on a lock so hears of every hand-over on it: one small event each.
//!
//! Within one process, waiters of one `EtcdBackend` for the same key line up locally first
//! ([`locksmith_core::KeyedQueue`]): the lease can hold only one key per lock, so only the
//! head of the local line is in the server's line.
//!
//! ## Key mapping
//! The key's UTF-8 bytes are used as they are (etcd keys are arbitrary bytes), after the
//! URL's namespace path and before `/LEASE`: no escaping, no hashing. Keys containing `/` are
//! fine: only direct children of `K/` count as contenders of `K`, so the locks `a` and `a/b`
//! are independent (etcd's Go `Mutex` and `etcdctl lock a` count every key under `a/`, so they
//! see a holder of `a/b` as a contender of `a`; that only delays them and never breaks
//! mutual exclusion).
//!
//! ## Interop with `etcdctl lock`
//! `etcdctl --endpoints … lock NAME` and a locksmith lock on key `NAME` (no namespace in the
//! URL) exclude each other both ways and queue in one FIFO line. `holder()` of an
//! `etcdctl`-held lock shows `etcd lease … (no owner label)`.
//!
//! ## Loss
//! Locks are bound to the lease ([`LeaseModel::Session`](locksmith_core::LeaseModel)): the
//! lock option's TTL is not used; `lease_ttl` is. The lease is provably alive until
//! `sent + lease_ttl − margin` (margin: a tenth, at least 100 ms), where `sent` is when the last
//! confirmed keep-alive was sent; the server starts its TTL later, when it receives it. Past
//! that instant without a newer confirmation, every lock of the client resolves `lost()`,
//! before the server can expire the lease. That instant is also the guard's local deadline
//! (`Guard::lease_left`, and `Guard::is_held` is false past it), so a process resumed after a
//! pause longer than `lease_ttl` knows at once that its lock may be gone, before its loss
//! notification has run. `lost()` also resolves when the lock key is deleted by anyone else.
//! The next lock operation grants a fresh lease.
//!
//! ## Fencing token
//! The holder key's create revision. etcd revisions are cluster-wide, strictly increasing
//! and survive leader changes and restarts (they are part of the replicated log), and each
//! grant creates a new key, so tokens increase across successive holders of a key. Tokens of
//! different keys share one sequence and so are not consecutive.
//!
//! ## Fairness
//! FIFO by create revision across processes; FIFO within a process; between a process's
//! local line and the server's line, a local waiter enters the server's line only when the
//! previous local holder releases.
//!
//! ## Limits
//! Keys up to locksmith's 512 bytes (etcd's default request limit is 1.5 MiB). A network
//! partition longer than `lease_ttl` loses every lock of the client. etcd's lease TTL has a
//! minimum of about 1.5 × the election timeout, and the server may raise a shorter TTL.

mod backend;
mod lease;
mod line_watch;
mod native;
mod ops;
mod session;
mod url;

pub use backend::{EtcdBackend, capabilities};
pub use url::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_LEASE_TTL};
