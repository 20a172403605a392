//! # locksmith-zookeeper
//!
//! The `zookeeper://` backend of [locksmith](https://example.invalid/locksmith): fair, fenced
//! locks on a ZooKeeper ensemble, in the node layout of Apache Curator's `InterProcessMutex`,
//! so Curator clients and locksmith exclude each other.
//!
//! ```no_run
//! use std::sync::Arc;
//! use locksmith_core::{Locker, LockOptions};
//! use locksmith_zookeeper::ZooKeeperBackend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> locksmith_core::Result<()> {
//! let backend = ZooKeeperBackend::from_url("zookeeper://127.0.0.1:2181/locks")?;
//! let locker = Locker::new(Arc::new(backend));
//! let guard = locker.acquire("jobs/nightly", &LockOptions::new()).await?;
//! println!("fencing token {}", guard.fencing_token());
//! guard.release().await?;
//! # Ok(()) }
//! ```
//!
//! ## URL
//! `zookeeper://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]…][/CHROOT][?OPTIONS]` (port 2181 by
//! default). `USER:PASSWORD` (percent-encoded) is sent as `digest` authentication; the password
//! is never printed; with it, the folders and nodes locksmith creates get the ACL "everything
//! for this identity only" (`auth` scheme, like `CREATOR_ALL_ACL`), so a chroot protected by a
//! digest ACL stays protected below it and only clients with the same credentials share its
//! locks (a Curator client needs the same `digest` authorization). Without credentials they
//! are open to anyone, as Curator's default. The chroot must exist. Options: `session_timeout` (seconds, default 10;
//! the server may clamp it to its `minSessionTimeout`..`maxSessionTimeout`) and
//! `connect_timeout` (seconds, default 5: the bound on connecting and on each request; an
//! ensemble that is down is a clear error within it).
//!
//! ## On-server layout (Curator's `InterProcessMutex`)
//! Each [`ZooKeeperBackend`] opens **one session**, shared by all its locks. The lock on key
//! `K` is the folder `PATH(K)` (see [Key mapping](#key-mapping); created as a container node
//! when missing, so the server removes it once empty). To lock, a client creates an
//! `EPHEMERAL_SEQUENTIAL` node `PATH(K)/_c_<uuid>-lock-<sequence>` whose data is the owner
//! label (Curator writes the client's IP address). The `_c_<uuid>-` part is Curator's
//! "protected" name: when a create's reply is lost with the connection, the client finds its
//! node again by the fresh uuid in its name. Lock nodes sort by the sequence after `lock-`;
//! the first holds. Every other contender sets a watch on the one node just before its own
//! (no herd effect) and, when it changes, lists the folder again. Release deletes the node.
//! Tested against Apache Curator 5.4 (Debian's `libcurator-recipes-java`) on ZooKeeper 3.8:
//! a Curator `InterProcessMutex` and a locksmith lock on the same path exclude each other,
//! both ways.
//!
//! **kazoo** names its nodes `<uuid>__lock__<sequence>` (no `lock-`): its nodes and Curator's
//! or locksmith's ignore each other, so a kazoo `Lock` and a locksmith lock on the same path
//! do **not** exclude each other. Use kazoo only where every client of a path uses kazoo.
//!
//! ## Key mapping
//! The key's `/`-separated segments become the path's segments, so key `jobs/nightly` is the
//! Curator lock path `/jobs/nightly` (under the URL's chroot). Each segment is escaped:
//! `%` and the characters ZooKeeper refuses in names (U+0000–U+001F, U+007F–U+009F,
//! U+D800–U+F8FF, U+FFF0–U+FFFF) become `%XX` per UTF-8 byte; an empty segment (from a
//! leading, trailing or doubled `/`) is `%00`; `.` and `..` are `%2E` and `%2E%2E`; a first
//! segment `zookeeper` (reserved by the server) is `%7Aookeeper`; `lock-` inside a segment is
//! `lock%2D`, so that the folder of a longer key never looks like a lock node of a shorter
//! key's lock. Everything else is kept, so distinct keys get distinct paths.
//!
//! ## Session and loss
//! Locks are bound to the session ([`LeaseModel::Session`](locksmith_core::LeaseModel)); the
//! lock option's TTL is not used. On `Expired` (or `Closed`, `AuthFailed`) every lock of the
//! client resolves `lost()` at once. On `Disconnected` the locks are at risk: the client only
//! reports a disconnection after `2/5` of the session timeout of silence, so unless the session
//! reconnects within the remaining `3/5` minus a margin (a tenth, at least 100 ms), `lost()`
//! resolves — before the server can expire the session and hand the lock to someone else.
//! A session that reconnects in time keeps its locks (its ephemeral nodes survived), and a
//! waiter keeps its place in line: a request that fails with the connection is retried once
//! the session is connected again, and a create whose answer was lost is looked for by its
//! unique name before any new create. `lost()` also resolves when the lock node is deleted
//! by anyone else. The next lock operation opens a new session.
//!
//! ## Fencing token
//! The holder node's creation zxid. Zxids are the ensemble's transaction ids: unique and
//! strictly increasing across the whole ensemble (they survive leader elections: the epoch is
//! their high half), and each grant creates a new node, so tokens increase across successive
//! holders of a key.
//!
//! ## Fairness
//! FIFO by sequence number across processes and within a process (waiters of one client line
//! up locally first, and only the head has a node on the server).
//!
//! ## Limits
//! Keys up to locksmith's 512 bytes (escaping can make the path up to 3 times longer). A
//! network partition longer than about 3/5 of the session timeout loses every lock of the
//! client.

mod backend;
mod lease;
mod path;
mod session;
mod url;

pub use backend::{ZooKeeperBackend, capabilities};
pub use url::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_SESSION_TIMEOUT};
