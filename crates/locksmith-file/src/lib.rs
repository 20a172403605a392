//! # locksmith-file
//!
//! The `file://` backend of [locksmith](https://example.invalid/locksmith): locks between
//! processes on one machine, as `flock(2)`ed files in one folder, with a fencing counter
//! file per key so that tokens keep increasing across restarts. It is the embedded default of
//! the `locksmith` CLI.
//!
//! ```
//! use std::sync::Arc;
//! use locksmith_core::{Locker, LockOptions};
//! use locksmith_file::FileBackend;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> locksmith_core::Result<()> {
//! # let tmp = tempfile::tempdir().unwrap();
//! # let dir = tmp.path().join("locks");
//! let backend = FileBackend::new(&dir)?; // or FileBackend::from_url("file:///var/lock/myapp")
//! let locker = Locker::new(Arc::new(backend));
//! let opts = LockOptions::new();
//!
//! let guard = locker.acquire("jobs/nightly", &opts).await?;
//! assert!(locker.try_acquire("jobs/nightly", &opts).await?.is_none()); // busy is not an error
//! let token = guard.fencing_token();
//! assert!(guard.release().await?);
//!
//! let next = locker.acquire("jobs/nightly", &opts).await?;
//! assert!(next.fencing_token() > token);
//! # Ok(()) }
//! ```
//!
//! ## URL
//! `file:///ABSOLUTE/FOLDER`, percent-decoded (`file://localhost/…` is the same). A relative
//! folder is refused: `file://var/lock` would name the host `var`. No query parameters are
//! defined, so any is an error. [`dir_url`] writes the URL of a folder whose name needs
//! escaping. The folder is created with its parents if missing, with mode 0700 (owner only);
//! create it yourself with the permissions you need to share locks between users.
//!
//! ## On-disk layout
//! Each key has up to three files in the folder, named `NAME.*` from the key (see
//! [Key mapping](#key-mapping)):
//!
//! | File | Holds | Written |
//! |---|---|---|
//! | `NAME.lock` | nothing; it is the file that is locked (`flock`, exclusive) | created on first use, **never deleted** |
//! | `NAME.token` | the ceiling of the fencing tokens reserved so far (every token handed out is at most this), decimal text | by the holder only: read; when this process has no reservation that is still the file's ceiling, reserve the next 1,024 tokens: write `NAME.token.tmp`, fsync, rename over, fsync the folder |
//! | `NAME.holder` | `{"owner":…,"token":…,"since_unix_ms":…,"pid":…}` | by the holder after locking (via `NAME.holder.tmp` + rename); removed before unlocking |
//!
//! Whether a key is held is decided only by the lock on `NAME.lock`; the other files follow it.
//! A missing `NAME.token` counts as 0; one that is not a number is an error naming the file,
//! never a silent reset (a reset would hand out tokens a fenced resource has already seen).
//! A lock is held exactly as long as its file stays open: the OS releases it when the holder
//! exits or crashes. Files are opened close-on-exec, so child processes never inherit a lock.
//! Do not delete lock files while in use: a process that locked the old file and one that
//! locks a new one would both hold the key. A holder notices within a second and reports the
//! lock lost ([`LossReason::SessionEnded`](locksmith_core::LossReason)).
//!
//! ## Key mapping
//! The bytes `A-Z a-z 0-9 _ -` of the key's UTF-8 are kept; `.` is kept except as the first
//! byte; every other byte becomes `%XX` (upper-case hex). So names never start with a dot,
//! never contain `/`, and distinct keys get distinct names:
//!
//! | Key | `NAME` |
//! |---|---|
//! | `jobs-nightly` | `jobs-nightly` |
//! | `jobs/nightly` | `jobs%2Fnightly` |
//! | `.env` | `%2Eenv` |
//! | `..` | `%2E.` |
//! | `a b%` | `a%20b%25` |
//! | `Grüße` | `Gr%C3%BC%C3%9Fe` |
//!
//! When the escaped name is longer than 150 bytes (keys may have up to 512 bytes), `NAME` is
//! its first 80 bytes or fewer (never cutting a `%XX`), then `~`, then the first 32 hex digits
//! (128 bits) of SHA-256 of the key: `xxxx…x~3f1c…`. `~` is escaped in every other name, so a
//! hashed name never equals a plain one. On a case-insensitive file system, keys that differ
//! only in case share one lock (and one counter).
//!
//! ## Interop with `flock(1)`
//! The lock is a whole-file `flock` (std's `File::lock`, which is `flock(2)` on Linux), the same
//! lock `flock(1)` from util-linux takes, so
//!
//! ```text
//! flock /var/lock/myapp/jobs%2Fnightly.lock  ./nightly.sh
//! ```
//!
//! and locksmith on key `jobs/nightly` with `file:///var/lock/myapp` exclude each other.
//! [`FileBackend::lock_file_path`] gives the path for a key. `flock(1)` passes its lock on to
//! the command it runs (and that command's children) unless given `-o`, so the key stays held
//! until all of them have exited. A lock held by `flock(1)` shows
//! in [`holder`](locksmith_core::Backend::holder) as [`FOREIGN_OWNER`] and does not move the
//! fencing counter. `fcntl`/`lockf` (POSIX record) locks are a different kind and do **not**
//! exclude `flock` locks.
//!
//! ## Waiting and fairness
//! Local waiters on a key (of one `FileBackend`) line up first come, first served, and only the
//! first in line waits on the OS, by a blocking `flock` on a thread of its own: a thousand
//! local waiters cost one blocked thread. A waiter that gives up (timeout, dropped future)
//! hands that wait to the next in line; when none is left, the thread unlocks as soon as it
//! gets the lock, and the next acquire of the key reuses it rather than starting another.
//! Between processes (and between `FileBackend`s) the kernel decides who gets a released lock,
//! in no promised order, so the backend is **not fair**
//! ([`Capabilities::fair`](locksmith_core::Capabilities) is false). Waiting is by the kernel's
//! wake-up, never by polling.
//!
//! ## Limits
//! - **Local file systems only, Linux/Unix.** `flock` on NFS is emulated with POSIX locks (or
//!   not shared between clients at all) depending on the kernel and mount, and other
//!   network file systems differ again: do not point this backend at a network share.
//! - Locks exclude processes on one machine (and containers sharing the folder and kernel).
//! - A grant costs two fsyncs (the counter and its folder, so that tokens survive a crash) when
//!   the process reserves tokens: on its first grant of a key, after 1,024 grants, and whenever
//!   another process granted the key since. Re-taking a key in one process costs a read of the
//!   counter and no write. Tokens skip numbers when processes take turns.
//! - One blocked thread per key that this process waits for while another process holds it.
//! - [`holder`](locksmith_core::Backend::holder) takes a shared lock for an instant to tell
//!   whether the key is held; a `try_acquire` racing with it may see the key busy.
//!   A lock held without a holder record is looked at twice more, 10 ms apart, before it is
//!   shown as [`FOREIGN_OWNER`] (a locksmith holder is without its record only right after its
//!   grant and right before its release); a holder stalled longer in between is shown so.
//! - Sharing a folder between users needs a folder and files writable by all of them
//!   (a shared group and `umask 002`); lock files of another user are locked read-only.

mod backend;
mod error;
mod holder;
mod layout;
mod lease;
mod lockfile;
mod state_dir;
mod token;
mod url;
mod wait;

pub use backend::{FOREIGN_OWNER, FileBackend, capabilities};
pub use state_dir::default_state_dir;
pub use url::dir_url;

#[cfg(test)]
mod tests;
