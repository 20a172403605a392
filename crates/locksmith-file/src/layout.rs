//! Key → file names: the stable, documented mapping of a lock key onto the three files that
//! stand for it in the lock folder (see the crate docs, "Key mapping").

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Longest file stem (name without extension) written as plain escaped text; longer stems are
/// cut and completed by a hash of the key.
pub(crate) const MAX_STEM_BYTES: usize = 150;
/// Bytes of the escaped key kept in front of the hash in a hashed stem.
pub(crate) const HASHED_PREFIX_BYTES: usize = 80;
/// Hex digits of SHA-256 kept in a hashed stem (128 bits).
pub(crate) const HASH_HEX_DIGITS: usize = 32;

/// The file stem for `key`.
///
/// Bytes `A-Z a-z 0-9 _ -` are kept, `.` is kept except as the first byte, and every other
/// byte of the UTF-8 encoding becomes `%XX` (upper-case hex). When the result is longer than
/// [`MAX_STEM_BYTES`], it is cut after at most [`HASHED_PREFIX_BYTES`] bytes (never inside a
/// `%XX`) and followed by `~` and the first [`HASH_HEX_DIGITS`] hex digits of SHA-256 of the
/// key. `~` is always escaped in plain stems, so hashed and plain stems never meet.
pub(crate) fn stem(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    // Byte offsets in `out` where each escaped unit ends, to cut on a unit boundary.
    let mut ends = Vec::with_capacity(key.len());
    for (i, &b) in key.as_bytes().iter().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
        ends.push(out.len());
    }
    if out.len() <= MAX_STEM_BYTES {
        return out;
    }
    let cut = ends
        .iter()
        .copied()
        .take_while(|&end| end <= HASHED_PREFIX_BYTES)
        .last()
        .unwrap_or(0);
    out.truncate(cut);
    out.push('~');
    let digest = Sha256::digest(key.as_bytes());
    for b in digest.iter().take(HASH_HEX_DIGITS / 2) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The files that stand for one key.
#[derive(Clone, Debug)]
pub(crate) struct KeyFiles {
    /// The file stem, also the key of the in-process queue.
    pub(crate) stem: String,
    /// `NAME.lock`: the file that is `flock`ed. Never deleted.
    pub(crate) lock: PathBuf,
    /// `NAME.token`: the fencing counter.
    pub(crate) token: PathBuf,
    /// `NAME.token.tmp`: the counter's next value before it is renamed into place.
    pub(crate) token_tmp: PathBuf,
    /// `NAME.holder`: who holds the lock (JSON).
    pub(crate) holder: PathBuf,
    /// `NAME.holder.tmp`: the holder record before it is renamed into place.
    pub(crate) holder_tmp: PathBuf,
    /// The lock folder.
    pub(crate) dir: PathBuf,
}

impl KeyFiles {
    /// The files of `key` in `dir`.
    pub(crate) fn new(dir: &Path, key: &str) -> Self {
        let stem = stem(key);
        let file = |ext: &str| dir.join(format!("{stem}.{ext}"));
        Self {
            lock: file("lock"),
            token: file("token"),
            token_tmp: file("token.tmp"),
            holder: file("holder"),
            holder_tmp: file("holder.tmp"),
            dir: dir.to_path_buf(),
            stem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn vectors() {
        assert_eq!(stem("jobs-nightly_1"), "jobs-nightly_1");
        assert_eq!(stem("a.b.c"), "a.b.c");
        assert_eq!(stem(".hidden"), "%2Ehidden");
        assert_eq!(stem("."), "%2E");
        assert_eq!(stem(".."), "%2E.");
        assert_eq!(stem("../etc/passwd"), "%2E.%2Fetc%2Fpasswd");
        assert_eq!(stem("jobs/nightly"), "jobs%2Fnightly");
        assert_eq!(stem("a b"), "a%20b");
        assert_eq!(stem("100%"), "100%25");
        assert_eq!(stem("~x"), "%7Ex");
        assert_eq!(stem("Grüße"), "Gr%C3%BC%C3%9Fe");
        assert_eq!(stem("锁"), "%E9%94%81");
        assert_eq!(stem("C:\\x"), "C%3A%5Cx");
    }

    #[test]
    fn long_keys_are_hashed() {
        let key = "k".repeat(512);
        let s = stem(&key);
        assert!(s.len() <= MAX_STEM_BYTES, "{s}");
        assert_eq!(s.len(), HASHED_PREFIX_BYTES + 1 + HASH_HEX_DIGITS);
        assert!(s.starts_with(&"k".repeat(HASHED_PREFIX_BYTES)));
        assert_eq!(&s[80..81], "~");
        // The first 32 hex digits of sha256("k" * 512).
        let full = format!("{:x}", Sha256::digest(key.as_bytes()));
        assert_eq!(&s[81..], &full[..32]);

        // Exactly at the limit stays plain; one byte over is hashed.
        assert_eq!(stem(&"a".repeat(150)), "a".repeat(150));
        assert!(stem(&"a".repeat(151)).contains('~'));

        // Escapes are never cut in half: 79 plain bytes then escapes.
        let key = format!("{}{}", "a".repeat(79), "/".repeat(100));
        let s = stem(&key);
        assert!(s.starts_with(&format!("{}~", "a".repeat(79))), "{s}");
        let key = format!("{}{}", "a".repeat(77), "/".repeat(100));
        assert!(stem(&key).starts_with(&format!("{}%2F~", "a".repeat(77))));

        // 512 bytes of 3-byte characters: the worst case for escaping.
        let s = stem(&"锁".repeat(170));
        assert!(s.len() <= MAX_STEM_BYTES && s.ends_with(|c: char| c.is_ascii_hexdigit()));
        assert!(s.is_ascii());
    }

    #[test]
    fn distinct_keys_distinct_names() {
        let mut keys: Vec<String> = vec![
            "a".into(),
            "A".into(),
            ".a".into(),
            "%2Ea".into(),
            "a/b".into(),
            "a%2Fb".into(),
            "a~b".into(),
            "..".into(),
            "%2E.".into(),
            " ".into(),
            "%20".into(),
        ];
        for n in [150usize, 151, 200, 512] {
            keys.push("x".repeat(n));
            keys.push(format!("{}y", "x".repeat(n - 1)));
            keys.push(format!("y{}", "x".repeat(n - 1)));
        }
        let names: HashSet<String> = keys.iter().map(|k| stem(k)).collect();
        assert_eq!(names.len(), keys.len(), "{names:?}");
        for name in &names {
            assert!(!name.starts_with('.') && !name.contains('/') && !name.is_empty());
        }
    }

    #[test]
    fn file_names() {
        let f = KeyFiles::new(Path::new("/locks"), "jobs/nightly");
        assert_eq!(f.lock, Path::new("/locks/jobs%2Fnightly.lock"));
        assert_eq!(f.token, Path::new("/locks/jobs%2Fnightly.token"));
        assert_eq!(f.token_tmp, Path::new("/locks/jobs%2Fnightly.token.tmp"));
        assert_eq!(f.holder, Path::new("/locks/jobs%2Fnightly.holder"));
        // The longest name stays well under the usual 255-byte limit.
        let f = KeyFiles::new(Path::new("/"), &"/".repeat(512));
        let name = f.holder_tmp.file_name().unwrap().len();
        assert!(name <= MAX_STEM_BYTES + ".holder.tmp".len());
    }
}
