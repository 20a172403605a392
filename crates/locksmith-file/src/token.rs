//! The fencing counter. `NAME.token` holds, as decimal text, the ceiling of the tokens reserved
//! for a key so far: every token ever handed out for the key is at most this number. Only the
//! lock holder touches it.
//!
//! A holder whose process has no reservation left (or whose reservation another process has
//! since overtaken) reserves the next block: it writes `ceiling + BLOCK` durably (write
//! `NAME.token.tmp`, fsync, rename over, fsync the folder) and hands out `ceiling + 1`. While
//! the file still holds this process's own ceiling, no other process has granted the key since,
//! so the next token of the reservation is larger than every token handed out before, and a
//! grant costs one read of the file and no write. Tokens therefore increase across processes,
//! restarts and crashes (the durable ceiling is above every token handed out); they skip
//! numbers when processes take turns.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};

use crate::error::FsError;
use crate::layout::KeyFiles;

/// Tokens reserved per reservation.
const BLOCK: u64 = 1024;

/// This process's reservation for one counter file: tokens `next..=ceiling` are still free.
#[derive(Clone, Copy, Debug)]
struct Reservation {
    ceiling: u64,
    next: u64,
}

/// Every reservation of this process, by counter file. Shared by all backends in the process:
/// grants of one key are serialised by its `flock`, so two never use one reservation at once.
static RESERVED: LazyLock<Mutex<HashMap<PathBuf, Reservation>>> = LazyLock::new(Default::default);

/// The counter's ceiling, from `path`; a missing file means none yet (0).
///
/// A file that is not a decimal `u64` is an error, never a silent reset: a reset would hand
/// out tokens a fenced resource has already seen.
pub(crate) fn read(path: &Path) -> Result<u64, FsError> {
    let text = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(FsError::io("reading the fencing counter", path, e)),
    };
    let shown = String::from_utf8_lossy(&text);
    let trimmed = shown.trim();
    trimmed.parse::<u64>().map_err(|e| FsError {
        message: format!(
            "the fencing counter {} holds {:?}, not a decimal number ({e}); it is not reset, \
             because that would hand out tokens again that fenced resources have already \
             seen: restore the file, or write into it a number at least as large as any \
             token handed out for this key",
            path.display(),
            trimmed.chars().take(40).collect::<String>(),
        ),
        source: Some(Box::new(e)),
    })
}

/// Hands out the next token for the key of `files`. The caller must hold the key's lock.
pub(crate) fn next(files: &KeyFiles) -> Result<u64, FsError> {
    let ceiling = read(&files.token)?;
    let mut reserved = RESERVED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = reserved.get_mut(&files.token)
        && r.ceiling == ceiling
        && r.next <= r.ceiling
    {
        // Still our ceiling: nobody else granted this key since we reserved.
        let token = r.next;
        r.next += 1;
        return Ok(token);
    }
    let token = ceiling.checked_add(1).ok_or_else(|| {
        FsError::msg(format!(
            "the fencing counter {} is at its maximum ({ceiling}); no larger token exists",
            files.token.display()
        ))
    })?;
    let new_ceiling = ceiling.saturating_add(BLOCK);
    // Forget the old reservation first: if the write fails, it must not be used again. The
    // map is not held during the fsyncs (other keys go on); this key's `flock` keeps its entry
    // to us meanwhile.
    reserved.remove(&files.token);
    drop(reserved);
    write_durably(files, new_ceiling)?;
    RESERVED.lock().unwrap_or_else(|e| e.into_inner()).insert(
        files.token.clone(),
        Reservation {
            ceiling: new_ceiling,
            next: token + 1,
        },
    );
    Ok(token)
}

fn write_durably(files: &KeyFiles, value: u64) -> Result<(), FsError> {
    let tmp = &files.token_tmp;
    let write = || -> io::Result<()> {
        let mut f = File::create(tmp)?;
        f.write_all(format!("{value}\n").as_bytes())?;
        f.sync_all()
    };
    write().map_err(|e| FsError::io("writing the fencing counter", tmp, e))?;
    fs::rename(tmp, &files.token)
        .map_err(|e| FsError::io("replacing the fencing counter", &files.token, e))?;
    sync_dir(&files.dir)
}

/// Makes the rename durable. File systems that cannot sync a folder are tolerated.
fn sync_dir(dir: &Path) -> Result<(), FsError> {
    let synced = File::open(dir).and_then(|d| d.sync_all());
    match synced {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported
            ) =>
        {
            tracing::debug!(dir = %dir.display(), error = %e, "cannot fsync the lock folder");
            Ok(())
        }
        Err(e) => Err(FsError::io("syncing the lock folder", dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_zero_and_persists_a_reserved_ceiling() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path(), "k");
        assert_eq!(read(&files.token).unwrap(), 0);
        assert_eq!(next(&files).unwrap(), 1);
        assert_eq!(
            fs::read_to_string(&files.token).unwrap(),
            format!("{BLOCK}\n")
        );
        // Within the reservation: no write, the ceiling stays.
        assert_eq!(next(&files).unwrap(), 2);
        assert_eq!(
            fs::read_to_string(&files.token).unwrap(),
            format!("{BLOCK}\n")
        );
        assert!(!files.token_tmp.exists());
        // Another process reserved since (the file no longer holds our ceiling): start above it.
        fs::write(&files.token, " 41 \n").unwrap();
        assert_eq!(next(&files).unwrap(), 42);
        assert_eq!(read(&files.token).unwrap(), 41 + BLOCK);
    }

    #[test]
    fn a_used_up_reservation_reserves_the_next_block() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path(), "k");
        let mut last = 0;
        for _ in 0..BLOCK + 2 {
            let t = next(&files).unwrap();
            assert_eq!(t, last + 1);
            last = t;
            assert!(
                read(&files.token).unwrap() >= t,
                "the durable ceiling covers every token"
            );
        }
        assert_eq!(read(&files.token).unwrap(), 2 * BLOCK);
    }

    #[test]
    fn corrupt_counter_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path(), "k");
        for bad in ["", "abc", "-1", "18446744073709551616"] {
            fs::write(&files.token, bad).unwrap();
            let err = next(&files).unwrap_err();
            assert!(
                err.message.contains(&files.token.display().to_string()),
                "{}",
                err.message
            );
            assert!(err.message.contains("not reset"), "{}", err.message);
            assert_eq!(
                fs::read_to_string(&files.token).unwrap(),
                bad,
                "left as it was"
            );
        }
        fs::write(&files.token, u64::MAX.to_string()).unwrap();
        assert!(next(&files).unwrap_err().message.contains("maximum"));
    }
}
