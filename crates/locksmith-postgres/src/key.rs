//! Keys → advisory lock ids (`bigint`).

use locksmith_core::{Error, LockKey, Result};
use sha2::{Digest, Sha256};

/// The prefix that names a numeric advisory id directly: key `#12345` is advisory id 12345.
pub const NUMERIC_PREFIX: char = '#';

/// The advisory id of `key`: see the crate docs' "Key mapping". Never changes between
/// versions.
///
/// # Errors
/// [`Error::InvalidKey`] for `#` followed by digits that are not a canonical `i64` (leading
/// zeros, `+`, out of range), which would otherwise silently hash.
pub fn advisory_id(key: &LockKey) -> Result<i64> {
    Ok(match numeric_id(key)? {
        Some(id) => id,
        None => hash_key(key.as_str()),
    })
}

/// The id a key names directly (`#` and a canonical `i64`), `None` for a key that is hashed,
/// or the error of [`advisory_id`]: its checks without the hash.
pub(crate) fn numeric_id(key: &LockKey) -> Result<Option<i64>> {
    let s = key.as_str();
    if let Some(num) = s.strip_prefix(NUMERIC_PREFIX) {
        let digits = num.strip_prefix('-').unwrap_or(num);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let bad = |why: &str| Error::InvalidKey {
                key: s.to_owned(),
                rule: format!(
                    "`#` followed by digits names a PostgreSQL advisory id directly, and {why}; \
                         write `#` and a bigint without leading zeros (-9223372036854775808 to \
                         9223372036854775807)"
                ),
            };
            let id: i64 = num.parse().map_err(|_| bad("this one is out of range"))?;
            if id.to_string() != num {
                return Err(bad("this one is not written canonically"));
            }
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// The hash of a key that is not a numeric id: the first 8 bytes of SHA-256 of its UTF-8,
/// read as a big-endian two's-complement `i64`.
pub fn hash_key(key: &str) -> i64 {
    let digest = Sha256::digest(key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// The key naming advisory id `id` directly (`#id`).
pub fn numeric_key(id: i64) -> LockKey {
    LockKey::new(format!("{NUMERIC_PREFIX}{id}")).expect("a numeric key is always valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(k: &str) -> Result<i64> {
        advisory_id(&LockKey::new(k).unwrap())
    }

    #[test]
    fn numeric_ids_pass_through() {
        assert_eq!(id("#12345").unwrap(), 12345);
        assert_eq!(id("#0").unwrap(), 0);
        assert_eq!(id("#-1").unwrap(), -1);
        assert_eq!(id("#9223372036854775807").unwrap(), i64::MAX);
        assert_eq!(id("#-9223372036854775808").unwrap(), i64::MIN);
        assert_eq!(advisory_id(&numeric_key(-42)).unwrap(), -42);
        for bad in ["#007", "#-0", "#9223372036854775808", "#+5"] {
            if bad == "#+5" {
                // Not digits after `#`: an ordinary key, hashed.
                assert_eq!(id(bad).unwrap(), hash_key(bad));
                continue;
            }
            let err = id(bad).unwrap_err();
            assert!(
                err.is_bad_input() && err.to_string().contains("advisory id"),
                "{err}"
            );
            // The check an acquire makes first (without hashing) refuses it alike.
            assert!(numeric_id(&LockKey::new(bad).unwrap()).is_err(), "{bad}");
        }
        assert_eq!(id("#tag").unwrap(), hash_key("#tag"));
        assert_eq!(id("#").unwrap(), hash_key("#"));
        assert_eq!(numeric_id(&LockKey::new("#tag").unwrap()).unwrap(), None);
        assert_eq!(
            numeric_id(&LockKey::new("#-42").unwrap()).unwrap(),
            Some(-42)
        );
    }

    #[test]
    fn hash_test_vectors_never_change() {
        // These values are part of the on-server format: see the crate docs.
        for (key, want) in crate::TEST_VECTORS {
            assert_eq!(hash_key(key), *want, "{key:?}");
        }
    }
}
