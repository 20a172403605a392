//! # locksmith-postgres
//!
//! The `postgres://` backend of [locksmith](https://example.invalid/locksmith): PostgreSQL
//! **session-level advisory locks** (`pg_try_advisory_lock`, `pg_advisory_lock`,
//! `pg_advisory_unlock`), with fencing tokens from a sequence.
//!
//! ```no_run
//! use std::sync::Arc;
//! use locksmith_core::{Locker, LockOptions};
//! use locksmith_postgres::PgBackend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> locksmith_core::Result<()> {
//! let backend = PgBackend::from_url("postgres://app@db.example/app?connect_timeout=5s")?;
//! let locker = Locker::new(Arc::new(backend));
//! let guard = locker.acquire("jobs/nightly", &LockOptions::new()).await?;
//! println!("fencing token {}", guard.fencing_token());
//! guard.release().await?;
//!
//! // A numeric advisory id, shared with `SELECT pg_advisory_lock(12345)` in psql:
//! let guard = locker.acquire("#12345", &LockOptions::new()).await?;
//! # drop(guard);
//! # Ok(()) }
//! ```
//!
//! ## URL
//! `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?OPTIONS]` (or `postgresql://`), as
//! tokio-postgres reads it, plus locksmith's own options:
//!
//! | Option | Default | Meaning |
//! |---|---|---|
//! | `connect_timeout` | `10s` | bound on opening a connection; a server that is down fails within it |
//! | `statement_timeout` | `30s` | client-side bound on every statement but the blocking wait; the connection is closed when it passes |
//! | `health_check` | `2s` | how often a held lock's connection is pinged |
//! | `pool_idle` | `8` | idle connections kept for reuse |
//!
//! Durations are `500ms`, `5s`, … or whole seconds. Without a password in the URL,
//! `PGPASSWORD` is used; without a user, `PGUSER`, then `USER`. Other tokio-postgres options
//! (`host=/run/postgresql` for a socket folder, `hostaddr`, `options`, …) pass through;
//! `application_name` is overwritten per lock (see [Holder](#holder)).
//!
//! ## TLS
//! libpq's options, over rustls (no OpenSSL), for **every** connection the backend opens
//! (held locks, waits, look-ups, the counter's creation, cancel requests):
//!
//! | Option | Meaning |
//! |---|---|
//! | `sslmode=disable` | plain TCP |
//! | `sslmode=prefer` (default) | TLS when the server offers it, **else plain TCP**; the certificate is not checked (as libpq: it resists only passive listening) |
//! | `sslmode=require` | TLS or no connection; the certificate is **not checked** (encryption without authentication), unless `sslrootcert` is given: then as `verify-ca` (as libpq) |
//! | `sslmode=verify-ca` | TLS; the certificate must be signed by a trusted CA, whatever host it names |
//! | `sslmode=verify-full` | TLS; signed by a trusted CA **and** naming the host in the URL (an IP address must be in the certificate's IP names) |
//! | `sslrootcert=PATH` | PEM file of the CAs to trust; without it, `verify-*` trust this machine's root certificates |
//! | `sslcert=PATH`, `sslkey=PATH` | a client certificate chain and its key (PEM), for servers that ask for one |
//!
//! As in libpq, an option the URL leaves out is taken from its environment variable when that
//! is set and not empty: `PGSSLMODE`, `PGSSLROOTCERT`, `PGSSLCERT`, `PGSSLKEY` (the URL wins;
//! an error caused by one names it). libpq's default files under `~/.postgresql/` are not read.
//!
//! The files are read once, when the URL is parsed: a missing or unreadable file, one without
//! a certificate, or `sslrootcert` with `disable`/`prefer` (where it would go unused) is an
//! [`Error::InvalidUrl`](locksmith_core::Error::InvalidUrl). A failed handshake says what was
//! wrong and what to do: a certificate not signed by the CA in `sslrootcert`, one that does not
//! name the host, a server without TLS under `require`/`verify-*`. TLS over a Unix socket is
//! not negotiated (the server refuses it; `prefer` then goes on without).
//!
//! ## Key mapping
//! Advisory locks are named by a `bigint` per database. A key maps onto one as follows, and
//! this mapping **never changes**:
//!
//! - `#` followed by a canonical decimal `i64` (no leading zeros, no `+`, `-0` refused) is that
//!   number: key `#12345` is the lock `SELECT pg_advisory_lock(12345)` takes in psql.
//!   [`numeric_key`] writes such a key. `#` followed by digits that are not canonical or out
//!   of range is an error (so `#007` is never silently hashed); `#` followed by anything
//!   else is an ordinary key.
//! - Any other key: the first 8 bytes of SHA-256 of its UTF-8, as a big-endian
//!   two's-complement `i64` ([`hash_key`]). Keys are compared byte for byte: no case folding
//!   or Unicode normalisation. Test vectors:
//!
//! | Key | Advisory id |
//! |---|---|
//! | `jobs` | `6744729554477740858` |
//! | `jobs/nightly` | `-7836533424575595787` |
//! | `invoice-42` | `4337049738231944310` |
//! | `Grüße` | `-559005354142841542` |
//! | `'; DROP TABLE x; --` | `-6258662080507931147` |
//!
//! From psql, `SELECT pg_advisory_lock(('x' || left(encode(sha256(convert_to('jobs', 'UTF8')),
//! 'hex'), 16))::bit(64)::bigint)` takes the same lock as locksmith on key `jobs`. Two keys
//! collide with probability about 2⁻⁶⁴ per pair; a hashed key and a numeric id can collide
//! too. Only the one-`bigint` form is used: the two-`int4` form `pg_advisory_lock(a, b)` is a
//! different lock space. Keys travel only as bound parameters, never inside SQL text.
//!
//! ## On the server
//! - Each held lock is a session-level advisory lock on a connection **pinned** to the lease
//!   until release; a crashed holder's lock is freed when the server sees its connection
//!   close. Locks are per database: use the same database everywhere.
//! - **Fencing tokens** come from the sequence `locksmith_fencing_token` (in the first schema
//!   of the `search_path`), created on first use with [`CREATE_COUNTER`]. A role that may not
//!   create it gets an error giving the SQL to run once as an administrator. The token is
//!   taken in the same statement as the attempt (`CASE WHEN pg_try_advisory_lock(…) THEN
//!   nextval(…) END`), or right after the blocking wait in the same statement. Sequences
//!   never go back, also across crashes (they may skip values), and are shared by all keys,
//!   so tokens are unique and strictly increasing across successive holders of each key.
//!   Dropping or resetting the sequence breaks that promise.
//! - Every connection sets `client_connection_check_interval = 1000` (PostgreSQL 14+) so that
//!   a waiter that vanished is noticed even while blocked.
//!
//! ## Holder
//! A lock's connection sets its `application_name` to the owner label, so
//! [`holder`](locksmith_core::Backend::holder) (from `pg_locks` joined with
//! `pg_stat_activity`) names it; a lock held from psql shows as `psql`, one without a name as
//! `backend pid N`. PostgreSQL cuts `application_name` to 63 bytes and shows non-ASCII
//! characters as `?`; roles without `pg_read_all_stats` may not see other users' names.
//! No token is shown. A waiter that takes over a server-side wait from a local waiter that
//! gave up shows that waiter's label until its next lock.
//!
//! ## Waiting, fairness and connections
//! Local waiters on a key line up first come, first served, and only the first in line waits
//! on the server with one blocking `pg_advisory_lock` on a connection of its own (see
//! `locksmith-sql`); PostgreSQL grants a released lock to its waiters in arrival order. So
//! 2,000 waiters on one key in one process cost two connections (holder and one waiter),
//! not 2,000, and waiters are served FIFO. A granted waiter leaves the line at once, so the
//! next one's `pg_advisory_lock` is already queued in the server while the lock is held,
//! and a release hands the lock over inside the server, as between psql sessions.
//!
//! ## Loss
//! The lease watches its connection: the driver reports a closed connection at once
//! (`pg_terminate_backend`, server shutdown), and a ping every `health_check` catches a link
//! that went silent; either resolves [`Guard::lost`](locksmith_core::Guard::lost), after
//! closing the connection so that the server surely releases the lock.
//!
//! ## Limits
//! - **Transaction-pooling proxies break session locks.** Behind PgBouncer in transaction
//!   (or statement) pooling mode, consecutive statements of one client run on different
//!   server sessions: the unlock may go to a session that does not hold the lock, and a lock
//!   may outlive its client. Connect to PostgreSQL directly or through session pooling.
//! - A hot standby refuses the fencing sequence's `nextval`: use the primary.
//! - `sslmode=prefer` (the default, as in libpq) never checks the server's certificate and
//!   goes on in plain text when the server offers no TLS: use `verify-full` where the network
//!   is not trusted.

mod driver;
mod key;
mod tls;
mod url;

use std::sync::Arc;

use locksmith_core::{Backend, Capabilities, Result};
pub use locksmith_sql::SqlBackend;

pub use driver::{CREATE_COUNTER, PgDriver};
pub use key::{NUMERIC_PREFIX, advisory_id, hash_key, numeric_key};

/// The documented hash test vectors (key, advisory id).
pub const TEST_VECTORS: &[(&str, i64)] = &[
    ("jobs", 6744729554477740858),
    ("jobs/nightly", -7836533424575595787),
    ("invoice-42", 4337049738231944310),
    ("Grüße", -559005354142841542),
    ("'; DROP TABLE x; --", -6258662080507931147),
];

/// The `postgres://` backend, the shared SQL engine over [`PgDriver`]. See the
/// [crate docs](crate). Made with [`SqlBackend::from_url`] or [`SqlBackend::connect`];
/// [`SqlBackend::connection_stats`] counts its connections.
pub type PgBackend = SqlBackend<PgDriver>;

/// What this backend can do: session-bound, fair, with holder info, cross-process.
pub fn capabilities() -> Capabilities {
    locksmith_sql::capabilities()
}

/// For the conformance test and benchmarks: a backend as an `Arc<dyn Backend>`.
///
/// # Errors
/// As [`SqlBackend::from_url`].
pub fn open(url: &str) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(PgBackend::from_url(url)?))
}
