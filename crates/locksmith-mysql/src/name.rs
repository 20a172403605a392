//! Keys → `GET_LOCK` names.

use sha2::{Digest, Sha256};

/// The longest name used verbatim, in characters: MySQL's limit (MariaDB allows more, but one
/// rule for both keeps a key on the same lock whichever server it meets).
pub const MAX_VERBATIM_CHARS: usize = 64;

/// The prefix of hashed names. A key that itself starts with it is hashed too, so a hashed
/// name never equals a verbatim one.
pub const HASH_PREFIX: &str = "locksmith~";

/// The `GET_LOCK` name of `key`: the key itself when it has at most 64 characters and does
/// not start with `locksmith~`; otherwise `locksmith~` and the first 54 hex digits of SHA-256
/// of the key's UTF-8 (64 characters in all). Never changes between versions.
pub fn lock_name(key: &str) -> String {
    if key.chars().count() <= MAX_VERBATIM_CHARS && !key.starts_with(HASH_PREFIX) {
        return key.to_owned();
    }
    let digest = Sha256::digest(key.as_bytes());
    let mut name = String::with_capacity(64);
    name.push_str(HASH_PREFIX);
    for b in digest.iter() {
        name.push_str(&format!("{b:02x}"));
    }
    name.truncate(MAX_VERBATIM_CHARS);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbatim_then_hashed() {
        assert_eq!(lock_name("jobs"), "jobs");
        assert_eq!(lock_name("Jobs"), "Jobs", "no case folding");
        let k64 = "é".repeat(64);
        assert_eq!(
            lock_name(&k64),
            k64,
            "64 characters (128 bytes) stay verbatim"
        );
        for (key, want) in crate::TEST_VECTORS {
            assert_eq!(lock_name(key), *want, "{key:?}");
            assert!(want.chars().count() <= 64);
        }
        assert_ne!(lock_name("locksmith~x"), "locksmith~x");
    }
}
