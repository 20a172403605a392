//! # locksmith-mysql
//!
//! The `mysql://` backend of [locksmith](https://example.invalid/locksmith) for MySQL 5.7+/8
//! and MariaDB 10.x: named locks (`GET_LOCK`, `RELEASE_LOCK`, `IS_USED_LOCK`), with fencing
//! tokens from a sequence (MariaDB 10.3+) or a counter table (MySQL).
//!
//! ```no_run
//! use std::sync::Arc;
//! use locksmith_core::{Locker, LockOptions};
//! use locksmith_mysql::MySqlBackend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> locksmith_core::Result<()> {
//! let backend = MySqlBackend::from_url("mysql://app@db.example/app?connect_timeout=5s")?;
//! let locker = Locker::new(Arc::new(backend));
//! // The same lock as `SELECT GET_LOCK('jobs', 10)` from the mysql client:
//! let guard = locker.acquire("jobs", &LockOptions::new()).await?;
//! println!("fencing token {}", guard.fencing_token());
//! guard.release().await?;
//! # Ok(()) }
//! ```
//!
//! ## URL
//! `mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?OPTIONS]` (or `mariadb://`), as mysql_async
//! reads it (`prefer_socket=false`, `socket=…`, …), plus locksmith's own options:
//!
//! | Option | Default | Meaning |
//! |---|---|---|
//! | `connect_timeout` | `10s` | bound on opening a connection; a server that is down fails within it |
//! | `statement_timeout` | `30s` | client-side bound on every statement but the blocking wait; the connection is closed when it passes |
//! | `health_check` | `2s` | how often a held lock's connection is pinged |
//! | `pool_idle` | `8` | idle connections kept for reuse |
//!
//! The database is required: the fencing counter lives there. Without a password in the URL,
//! `MYSQL_PWD` is used; without a user, `USER`, then `root`. Each connection keeps
//! locksmith's few statements prepared for its life, so mysql_async's `stmt_cache_size` is
//! raised to at least 32 (a smaller cache would evict and close them; `0`, off, is kept).
//!
//! ## TLS
//! The MySQL client's options (mode names in any case), over mysql_async's rustls support (no
//! OpenSSL), for **every** connection the backend opens (held locks, waits, look-ups, the
//! counter's creation, `KILL QUERY`):
//!
//! | Option | Meaning |
//! |---|---|
//! | `ssl-mode=DISABLED` | plain TCP |
//! | `ssl-mode=PREFERRED` (default) | TLS when the server offers it, **else plain TCP**; the certificate is not checked. Once a server has said it has no TLS, later connects of this backend go plain at once |
//! | `ssl-mode=REQUIRED` | TLS or no connection; the certificate is **not checked** (encryption without authentication) |
//! | `ssl-mode=VERIFY_CA` | TLS; the certificate must be signed by a trusted CA. **In this build the host name is checked too** (mysql_async 0.37.1 cannot skip that check, its issue #404), so it behaves as `VERIFY_IDENTITY` |
//! | `ssl-mode=VERIFY_IDENTITY` | TLS; signed by a trusted CA **and** naming the host in the URL |
//! | `ssl-ca=PATH` | PEM file of the CAs to trust; without it, `VERIFY_*` trust this machine's root certificates |
//! | `ssl-cert=PATH`, `ssl-key=PATH` | a client certificate chain and its key (PEM) |
//!
//! The files are read when the URL is parsed: a missing or unreadable file, one without a
//! certificate, or `ssl-ca` with a mode that would not use it is an
//! [`Error::InvalidUrl`](locksmith_core::Error::InvalidUrl), and so are mysql_async's own TLS
//! parameters (`require_ssl`, `verify_ca`, …: use the options above). A failed handshake says
//! what was wrong and what to do (a certificate not signed by the CA in `ssl-ca`, one that does
//! not name the host, a server without TLS under `REQUIRED`/`VERIFY_*`). mysql_async does not
//! encrypt a Unix socket connection (`socket=…`, or a local server reached through its socket
//! with `prefer_socket`, mysql_async's default): `REQUIRED` and `VERIFY_*` therefore set
//! `prefer_socket=false` unless the URL sets it.
//!
//! ## Key mapping
//! A key of at most **64 characters** (MySQL's limit on lock names) that does not start with
//! `locksmith~` is the lock name, **verbatim**: locksmith on key `jobs` and
//! `SELECT GET_LOCK('jobs', 10)` exclude each other. Any other key maps to `locksmith~` and
//! the first 54 hex digits of SHA-256 of its UTF-8 (64 characters; [`lock_name`]). The same
//! rule is used on MariaDB, which would accept longer names, so a key names the same lock on
//! either server. This mapping never changes. Test vectors:
//!
//! | Key | Lock name |
//! |---|---|
//! | `jobs` | `jobs` |
//! | `x` × 65 | `locksmith~9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633a` |
//! | `locksmith~jobs` | `locksmith~c11bdfe6a6e970213c643ffd237fb1b3f8510d14061a1b71946138` |
//!
//! **Case and Unicode forms.** locksmith neither case-folds nor normalises verbatim names: it
//! passes them as given, and the server decides. MariaDB 10.11 compares lock names byte for
//! byte (`Jobs` and `jobs`, or `café` in NFC and NFD, are different locks); MySQL may compare
//! them case-insensitively. Normalise keys yourself if your callers may spell them
//! differently. Hashed names are byte-exact on every server. Tokens increase across holders
//! of names that differ only in case or trailing spaces too, on either kind of server (one
//! sequence for all names on MariaDB; on MySQL, counter rows compared case-insensitively).
//!
//! ## On the server
//! - Each held lock lives on a connection **pinned** to the lease until release; a crashed
//!   holder's lock is freed when the server sees its connection close.
//! - **Fencing tokens on MariaDB 10.3+** (detected once per backend from `VERSION()`) come
//!   from the sequence `locksmith_fencing_seq` in the URL's database, created on first use
//!   with [`CREATE_COUNTER_MARIADB`] (`CACHE 1000`). An attempt, and a blocking wait too, is
//!   **one statement that writes no table**: `SELECT CASE WHEN GET_LOCK(name, timeout) = 1
//!   THEN NEXTVAL(locksmith_fencing_seq) END`, so a grant costs no commit; a release is one
//!   `RELEASE_LOCK`. The server keeps the cached block in memory, shared by all sessions, so
//!   tokens are unique and strictly increasing across all holders of all names — one global
//!   order, which is all fencing needs (a resource compares the tokens of its own key). A
//!   server crash skips the rest of the cached block; it never hands a value out again (the
//!   block is reserved in the sequence's InnoDB table before it is used, so this holds as far
//!   as the server's InnoDB writes survive: `innodb_flush_log_at_trx_commit=1` for an
//!   operating-system crash). **Upgrading** from a version that counted per name in
//!   `locksmith_fencing`: the sequence is created starting above that table's largest token,
//!   so no name's tokens go backwards; stop the earlier version's clients of a database
//!   before starting this one there (they keep counting per name in the old table, below
//!   the sequence).
//! - **Fencing tokens on MySQL** (and MariaDB before 10.3) come from the table
//!   `locksmith_fencing` in the URL's database, created on first use with
//!   [`CREATE_COUNTER`]: one row per name (compared with `utf8mb4_unicode_ci`, so case
//!   variants share a row), holding the last token, the holder's owner label and connection
//!   id. An attempt, and a blocking wait too, is **one statement**: `INSERT … SELECT … WHERE
//!   GET_LOCK(name, timeout) = 1 ON DUPLICATE KEY UPDATE token = LAST_INSERT_ID(token + 1) …`
//!   writes a row only when the lock was granted, and the token returns in the reply's
//!   last-insert-id; a release is one `RELEASE_LOCK`. InnoDB commits each upsert before the
//!   lock is used, so tokens are unique and strictly increasing across successive holders of
//!   a name. Rows are never deleted.
//! - A user that may not create the sequence or table gets an error giving the SQL to run
//!   once. With `binlog_format=STATEMENT` the server logs an attempt as unsafe for
//!   replication: use `MIXED` or `ROW`.
//!
//! ## Holder
//! [`holder`](locksmith_core::Backend::holder) asks `IS_USED_LOCK` for the holder's
//! connection and shows the owner label that connection recorded (and, on MySQL, the token of
//! the grant); a lock held by another client shows as `connection N`. On MariaDB the labels
//! live in `locksmith_owners`, an `ENGINE=MEMORY` table (emptied by a server restart, like
//! the locks themselves) with one row per connection, written before the connection's first
//! attempt and again only when its owner label changes — never per grant, and never in the
//! blocking wait's statement (a MEMORY table is locked whole for a statement's duration).
//! A new connection first deletes the rows of its account's connections that are gone (an
//! account sees all of its own connections in the process list), so the table stays as
//! small as the set of live connections.
//!
//! ## Waiting, fairness and connections
//! Local waiters on a key line up first come, first served, and only the first in line waits
//! on the server, with one blocking `GET_LOCK` on a connection of its own (see
//! `locksmith-sql`); a wait nobody in the process wants any more is ended with `KILL QUERY`.
//! So 2,000 waiters on one key in one process cost two connections, not 2,000. The server
//! grants a released name to its waiters in arrival order. A granted waiter leaves the line
//! at once, so the next one's `GET_LOCK` is already queued in the server while the lock is
//! held, and a release hands the lock over inside the server.
//!
//! ## Loss
//! The pinned connection's TCP socket is watched: when the server or the network closes or
//! resets it (`KILL`, a server restart, a proxy that drops the link), the kernel tells the
//! watch at once and [`Guard::lost`](locksmith_core::Guard::lost) resolves. mysql_async does
//! not hand out its socket, so locksmith finds it by a mark: each new connection gets a TCP
//! keepalive idle time unique among the connects in flight (7201–10799 s), and after the
//! handshake the one socket of the process carrying it is the connection's; its idle time is
//! then set to 7200 s (Linux's default), so **every connection has TCP keepalive on, after
//! two idle hours**. With `tcp_keepalive=…` in the URL, over a Unix socket, or off Linux there
//! is no watch. Besides, the lease pings its connection every `health_check`: a failed or
//! unanswered ping (the link went silent) closes it and resolves `lost()`.
//!
//! ## Limits
//! - Proxies that multiplex sessions (ProxySQL with multiplexing, some cloud proxies) break
//!   named locks, which belong to one server session.
//! - In a Galera / group-replication cluster, `GET_LOCK` is local to one node.
//! - `ssl-mode=PREFERRED` (the default, as in the mysql client) never checks the server's
//!   certificate and goes on in plain text when the server has no TLS; `VERIFY_CA` checks the
//!   host name too in this build (see URL). Use `VERIFY_IDENTITY` where the network is not
//!   trusted.

mod driver;
mod hangup;
mod mariadb;
mod name;
mod tls;
mod url;

use std::sync::Arc;

use locksmith_core::{Backend, Capabilities, Result};
pub use locksmith_sql::SqlBackend;

pub use driver::{CREATE_COUNTER, MySqlDriver};
pub use mariadb::CREATE_COUNTER_MARIADB;
pub use name::{HASH_PREFIX, MAX_VERBATIM_CHARS, lock_name};

/// The documented name test vectors (key, `GET_LOCK` name).
pub const TEST_VECTORS: &[(&str, &str)] = &[
    ("jobs", "jobs"),
    (
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "locksmith~9537c5fdf120482f7d58d25e9ed583f52c02b4e304ea814db1633a",
    ),
    (
        "locksmith~jobs",
        "locksmith~c11bdfe6a6e970213c643ffd237fb1b3f8510d14061a1b71946138",
    ),
];

/// The `mysql://` backend, the shared SQL engine over [`MySqlDriver`]. See the
/// [crate docs](crate). Made with [`SqlBackend::from_url`] or [`SqlBackend::connect`];
/// [`SqlBackend::connection_stats`] counts its connections.
pub type MySqlBackend = SqlBackend<MySqlDriver>;

/// What this backend can do: session-bound, fair, with holder info, cross-process.
pub fn capabilities() -> Capabilities {
    locksmith_sql::capabilities()
}

/// A backend as an `Arc<dyn Backend>`.
///
/// # Errors
/// As [`SqlBackend::from_url`].
pub fn open(url: &str) -> Result<Arc<dyn Backend>> {
    Ok(Arc::new(MySqlBackend::from_url(url)?))
}
