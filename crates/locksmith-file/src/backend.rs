//! [`FileBackend`]: the `Backend` implementation.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

use async_trait::async_trait;
use locksmith_core::{
    AcquireRequest, Backend, Capabilities, Error, Expiry, FencingToken, Grant, HolderInfo,
    LeaseModel, LockKey, QueueTurn, Result,
};

use crate::error::FsError;
use crate::holder::{self, HolderRecord};
use crate::layout::KeyFiles;
use crate::lease::FileLease;
use crate::lockfile::{self, Probe};
use crate::token;
use crate::wait::{KeyState, Orphans, Pending, Queue};

/// The owner shown by [`Backend::holder`] when the lock is held by something that wrote no
/// holder record, such as `flock(1)`.
pub const FOREIGN_OWNER: &str = "unknown (not a locksmith holder)";

/// How long [`FileBackend::holder`] waits before looking again at a lock held without a record.
const RECHECK: std::time::Duration = std::time::Duration::from_millis(10);

/// Locks as `flock`ed files in one folder, with a fencing counter file per key.
///
/// See the [crate docs](crate) for the layout, the key mapping and the limits.
pub struct FileBackend {
    dir: PathBuf,
    url: String,
    queue: Queue,
    orphans: Orphans,
}

impl std::fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileBackend")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// A step run off the async runtime: the lease when granted, or the turn back when busy.
enum Step {
    Granted(std::sync::Arc<FileLease>, u64),
    Busy(QueueTurn<KeyState>),
}

impl FileBackend {
    /// A backend on the folder `dir`, created (mode 0700, owner only) with its parents if
    /// missing. A relative `dir` is taken from the current folder.
    ///
    /// # Errors
    /// [`Error::Backend`] naming the folder when it cannot be created, is not a folder, or is
    /// not writable by this user.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self> {
        let given = dir.into();
        let shown = format!("file://{}", given.display());
        let dir = std::path::absolute(&given).map_err(|e| {
            FsError::io("making the lock folder path absolute:", &given, e).into_error(&shown, None)
        })?;
        let url = format!("file://{}", dir.display());
        prepare_dir(&dir).map_err(|e| e.into_error(&url, None))?;
        Ok(Self {
            dir,
            url,
            queue: Queue::new(),
            orphans: Orphans::default(),
        })
    }

    /// A backend on the folder of a `file:///ABSOLUTE/FOLDER` URL (percent-decoded; no query
    /// parameters are defined). See [`FileBackend::new`] for what happens to the folder.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] for a URL that is not `file://` with an absolute path or that has
    /// query parameters; then as [`FileBackend::new`].
    pub fn from_url(url: &str) -> Result<Self> {
        Self::new(crate::url::parse(url)?)
    }

    /// The lock folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the file that is `flock`ed for `key`: lock it with `flock(1)` to exclude
    /// locksmith holders of the same key, e.g. `flock "$(locksmith …)" cmd`.
    pub fn lock_file_path(&self, key: &LockKey) -> PathBuf {
        KeyFiles::new(&self.dir, key.as_str()).lock
    }

    /// The backend's OS waits, for tests.
    #[cfg(test)]
    pub(crate) fn waits(&self) -> &Orphans {
        &self.orphans
    }

    fn err(&self, key: &LockKey, e: FsError) -> Error {
        e.into_error(&self.url, Some(key.as_str()))
    }

    /// Runs `grant_step` on tokio's blocking pool (it fsyncs). If the calling future is
    /// dropped meanwhile, the step still finishes and its result is dropped: a lease unlocks
    /// and removes its holder record, a turn lets the next waiter in.
    async fn step(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        files: &KeyFiles,
        turn: QueueTurn<KeyState>,
        file: Option<File>,
    ) -> Result<Step> {
        let (files, owner) = (files.clone(), req.owner.clone());
        let (url, key_s) = (self.url.clone(), key.as_str().to_owned());
        tokio::task::spawn_blocking(move || grant_step(files, owner, url, key_s, turn, file))
            .await
            .map_err(|e| {
                Error::backend(
                    &self.url,
                    Some(key.as_str()),
                    format!("internal: the file-lock task failed ({e})"),
                    None,
                )
            })?
            .map_err(|e| self.err(key, e))
    }

    async fn acquire_waiting(&self, key: &LockKey, req: &AcquireRequest) -> Result<Grant> {
        let files = KeyFiles::new(&self.dir, key.as_str());
        let mut turn = self.queue.turn(files.stem.as_str()).await;
        // A wait inherited from a waiter that left means the lock is busy: skip the attempt.
        let mut file = None;
        loop {
            if turn.pending.is_none() || file.is_some() {
                match self.step(key, req, &files, turn, file.take()).await? {
                    Step::Granted(lease, token) => return Ok(grant(lease, token)),
                    Step::Busy(t) => turn = t,
                }
            }
            if turn.pending.is_none() {
                turn.pending = match Pending::adopt(&files.stem, &self.orphans) {
                    Some(p) => Some(p),
                    None => Some(
                        Pending::start(&files.lock, &files.stem, &self.orphans)
                            .map_err(|e| self.err(key, e))?,
                    ),
                };
            }
            let Some(pending) = turn.pending.as_ref() else {
                continue;
            };
            let outcome = pending.wait().await;
            turn.pending = None;
            file = Some(outcome.map_err(|e| self.err(key, e))?);
        }
    }
}

fn grant(lease: std::sync::Arc<FileLease>, token: u64) -> Grant {
    Grant {
        lease,
        token: FencingToken(token),
        expiry: Expiry::Session,
    }
}

/// Takes the lock (unless `file` already holds it), then hands out the next token and writes
/// the holder record. Blocking.
fn grant_step(
    files: KeyFiles,
    owner: std::sync::Arc<str>,
    url: String,
    key: String,
    turn: QueueTurn<KeyState>,
    file: Option<File>,
) -> Result<Step, FsError> {
    let file = match file {
        Some(f) => f,
        None => match lockfile::try_lock(&files.lock)? {
            Some(f) => f,
            None => return Ok(Step::Busy(turn)),
        },
    };
    let token = token::next(&files)?;
    // From here the lease owns the lock: an error below drops it, which unlocks.
    let lease = std::sync::Arc::new(FileLease::new(file, turn, files.clone(), token, url, key));
    holder::write(&files, &HolderRecord::now(&owner, token))?;
    Ok(Step::Granted(lease, token))
}

/// Creates the lock folder if needed and checks that it is a writable folder.
fn prepare_dir(dir: &Path) -> Result<(), FsError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| FsError::io("creating the lock folder", dir, e))?;
    let meta =
        std::fs::metadata(dir).map_err(|e| FsError::io("inspecting the lock folder", dir, e))?;
    if !meta.is_dir() {
        return Err(FsError::msg(format!(
            "{} is not a folder; point the file backend at a folder",
            dir.display()
        )));
    }
    check_writable(dir)
}

#[cfg(unix)]
fn check_writable(dir: &Path) -> Result<(), FsError> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
        FsError::msg(format!(
            "the folder path {} contains a NUL byte",
            dir.display()
        ))
    })?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    let rc = unsafe { libc::access(c.as_ptr(), libc::W_OK | libc::X_OK) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    Err(FsError::io(
        "the lock folder must be writable by this user; checking",
        dir,
        e,
    ))
}

#[cfg(not(unix))]
fn check_writable(_: &Path) -> Result<(), FsError> {
    Ok(())
}

#[async_trait]
impl Backend for FileBackend {
    fn scheme(&self) -> &'static str {
        "file"
    }

    fn display_url(&self) -> String {
        self.url.clone()
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    /// One attempt: `Ok(None)` when another process, another open file, or another task of
    /// this backend holds or is already waiting for the key.
    ///
    /// # Errors
    /// [`Error::Backend`] naming the key and the file when a lock, counter or holder file
    /// cannot be used (permissions, a corrupt counter, a full disk).
    ///
    /// # Cancel safety
    /// Cancel-safe: a lock taken after the future was dropped is released at once.
    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>> {
        let files = KeyFiles::new(&self.dir, key.as_str());
        let Some(mut turn) = self.queue.try_turn(files.stem.as_str()) else {
            return Ok(None);
        };
        let file = match turn.pending.as_ref().map(Pending::try_take) {
            None => None,
            // An OS wait of a waiter that left is still blocked: someone else holds the key.
            Some(None) => return Ok(None),
            Some(Some(outcome)) => {
                turn.pending = None;
                // A failure of a wait nobody awaits any more is stale: just try again.
                outcome.ok()
            }
        };
        Ok(match self.step(key, req, &files, turn, file).await? {
            Step::Granted(lease, token) => Some(grant(lease, token)),
            Step::Busy(_) => None,
        })
    }

    /// Waits for the key: behind earlier local waiters (first come, first served), then, for
    /// the first in line only, by a blocking `flock` on a thread of its own.
    ///
    /// # Errors
    /// As [`FileBackend::try_acquire`], and when no thread can be started.
    ///
    /// # Cancel safety
    /// Cancel-safe: the OS wait is handed to the next local waiter, or, when none is left,
    /// unlocks as soon as it gets the lock. Nothing stays held.
    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        let attempt = async { self.acquire_waiting(key, req).await.map(Some) };
        locksmith_core::wait_until(deadline, attempt).await
    }

    /// Who holds `key`: the holder record's owner, token and grant time; or
    /// [`FOREIGN_OWNER`] when the lock is held without a record (`flock(1)`); or `None` when
    /// nobody holds it. Takes a shared lock for a moment to tell, and removes a record left
    /// by a holder that crashed. A lock held without a record is looked at twice more,
    /// 10 ms apart: a locksmith holder writes its record right after its grant and
    /// removes it right before it lets go, and is not shown as foreign in between.
    ///
    /// # Errors
    /// [`Error::Backend`] when the lock or holder file cannot be read.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only reads (and removes a crashed holder's record).
    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>> {
        let files = KeyFiles::new(&self.dir, key.as_str());
        let mut looks = 0;
        loop {
            match lockfile::probe(&files.lock).map_err(|e| self.err(key, e))? {
                Probe::Free(shared) => {
                    if shared.is_some() && files.holder.exists() {
                        holder::remove_stale(&files.holder);
                    }
                    return Ok(None);
                }
                Probe::Held => match holder::read(&files.holder).map_err(|e| self.err(key, e))? {
                    Some(r) => {
                        return Ok(Some(
                            HolderInfo::new(r.owner.clone())
                                .token(FencingToken(r.token))
                                .since(r.since()),
                        ));
                    }
                    None if looks < 2 => looks += 1,
                    None => return Ok(Some(HolderInfo::new(FOREIGN_OWNER))),
                },
            }
            tokio::time::sleep(RECHECK).await;
        }
    }

    /// Opens the key's lock file, `flock`s it without waiting, unlocks it and closes it.
    async fn native_pair(&self, key: &LockKey) -> Result<Option<&'static str>> {
        let files = KeyFiles::new(&self.dir, key.as_str());
        match lockfile::try_lock(&files.lock).map_err(|e| self.err(key, e))? {
            Some(file) => {
                file.unlock()
                    .map_err(|e| self.err(key, FsError::io("unlock", &files.lock, e)))?;
                Ok(Some("open + flock + same-inode check + unlock"))
            }
            None => Err(Error::backend(
                self.display_url(),
                Some(key.as_str()),
                "the key is held; the native pair does not wait",
                None,
            )),
        }
    }
}

/// What the file backend can do: session-bound locks (held while the file is open), FIFO
/// only among waiters of one backend in one process (so not `fair`), holder introspection,
/// and visibility to every process on the machine.
pub fn capabilities() -> Capabilities {
    Capabilities::new(LeaseModel::Session)
        .fair(false)
        .holder_info(true)
        .cross_process(true)
}
