//! The fencing counter: `NAME.token` holds the last token handed out for a key, as decimal
//! text. Only the lock holder rewrites it, so a read, an increment and an atomic replace
//! (write `NAME.token.tmp`, fsync, rename over, fsync the folder) give tokens that keep
//! increasing across process restarts and crashes.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::Path;

use crate::error::FsError;
use crate::layout::KeyFiles;

/// The last token handed out, from `path`; a missing file means none yet (0).
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
    let last = read(&files.token)?;
    let next = last.checked_add(1).ok_or_else(|| {
        FsError::msg(format!(
            "the fencing counter {} is at its maximum ({last}); no larger token exists",
            files.token.display()
        ))
    })?;
    write_durably(files, next)?;
    Ok(next)
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
    fn counts_from_zero_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let files = KeyFiles::new(dir.path(), "k");
        assert_eq!(read(&files.token).unwrap(), 0);
        assert_eq!(next(&files).unwrap(), 1);
        assert_eq!(next(&files).unwrap(), 2);
        assert_eq!(fs::read_to_string(&files.token).unwrap(), "2\n");
        assert!(!files.token_tmp.exists());
        fs::write(&files.token, " 41 \n").unwrap();
        assert_eq!(next(&files).unwrap(), 42);
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
