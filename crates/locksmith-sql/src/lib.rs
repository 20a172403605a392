//! # locksmith-sql
//!
//! What the SQL backends of [locksmith](https://example.invalid/locksmith)
//! (`locksmith-postgres`, `locksmith-mysql`) share, so that it exists once:
//!
//! - [`SqlBackend`], the [`Backend`](locksmith_core::Backend) over a [`Driver`] that supplies
//!   only the dialect: connect, one attempt (lock + fencing token), one blocking wait,
//!   unlock, holder, ping, and creating the fencing counter on first use.
//! - **One server-side wait per key per process.** Local waiters line up in a
//!   [`KeyedQueue`](locksmith_core::KeyedQueue), first come first served; only the head of a
//!   key's line makes one attempt and then one blocking server call on a connection of its
//!   own. A head that gives up hands that call to the next waiter; when none is left the call
//!   is cancelled on the server and its connection closed. A granted head leaves the line at
//!   once, so the next local waiter's server call is queued behind the holder before it
//!   releases: hand-over happens in the server, within the release's round trip, as between
//!   sessions blocked in the server's own queue.
//! - **Pinned sessions.** A held lock keeps its connection until released; released
//!   connections go to a small idle pool ([`Settings::pool_idle`]). A process with `h` held
//!   locks and `w` keys being waited for uses at most `h + w + pool_idle` connections.
//! - **Loss.** A held lock's connection is watched: the driver reports a closed connection at
//!   once where it can, and a ping every [`Settings::health_check`] catches the rest. A
//!   failed or unanswered ping closes the session (so the server surely releases the lock)
//!   and resolves [`Guard::lost`](locksmith_core::Guard::lost).
//! - **Timeouts**: [`Settings::connect_timeout`] bounds every connect and
//!   [`Settings::statement_timeout`] every statement except the blocking wait.
//! - **TLS**: [`TlsSettings`] takes a URL's TLS options ([`POSTGRES_TLS`]: libpq's
//!   `sslmode`/`sslrootcert`/`sslcert`/`sslkey`; [`MYSQL_TLS`]: the MySQL client's `ssl-mode`/
//!   `ssl-ca`/`ssl-cert`/`ssl-key`), reads the files once, builds the rustls configuration,
//!   and explains a failed handshake (unknown CA, wrong host name, no TLS on the server).
//! - [`counter_setup_error`], the one wording of "the fencing counter is missing and this
//!   role may not create it; run this SQL".

mod counter;
mod driver;
mod engine;
mod full;
mod lease;
mod session;
mod settings;
mod tls;
mod wait;

pub use counter::counter_setup_error;
pub use driver::Driver;
pub use engine::{SqlBackend, capabilities};
pub use full::no_free_connection;
pub use session::ConnectionStats;
pub use settings::{PARAMS, Settings, SplitUrl, split_url};
pub use tls::{ClientCert, MYSQL_TLS, POSTGRES_TLS, TlsDialect, TlsMode, TlsSettings};
