//! Lock keys: a checked newtype shared by every backend.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// The longest key locksmith accepts, in bytes of UTF-8.
///
/// Backends whose storage has a smaller limit (MySQL lock names, file names) map long keys
/// onto a documented hash instead of refusing them; see each backend's "Key mapping" section.
pub const MAX_KEY_BYTES: usize = 512;

/// A checked lock key: non-empty UTF-8, at most [`MAX_KEY_BYTES`] bytes, no NUL character.
///
/// Any other Unicode text is allowed, including spaces, `/`, quotes and `{}`: keys are data,
/// and every backend passes them as parameters, never as code.
///
/// ```
/// use locksmith_core::LockKey;
/// assert!(LockKey::new("jobs/nightly").is_ok());
/// assert!(LockKey::new("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockKey(Arc<str>);

impl LockKey {
    /// Checks `key` and wraps it.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] when the key is empty, longer than [`MAX_KEY_BYTES`] bytes, or
    /// contains a NUL character (which several backends cannot store).
    pub fn new(key: impl AsRef<str>) -> Result<Self> {
        let key = key.as_ref();
        if key.is_empty() {
            return Err(Error::invalid_key(key, "a key must not be empty"));
        }
        if key.len() > MAX_KEY_BYTES {
            let rule = format!(
                "a key is at most {MAX_KEY_BYTES} bytes of UTF-8; this one has {} bytes \
                 (use a shorter name or hash it yourself)",
                key.len()
            );
            return Err(Error::invalid_key(key, rule));
        }
        if key.contains('\0') {
            return Err(Error::invalid_key(
                key,
                "a key must not contain the NUL character (U+0000)",
            ));
        }
        // Shared, not copied, by every clone (a guard, a request, a queue entry).
        Ok(Self(Arc::from(key)))
    }

    /// The key's text, shared (a clone of it costs no copy).
    pub fn shared(&self) -> Arc<str> {
        Arc::clone(&self.0)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockKey({:?})", self.0)
    }
}

impl fmt::Display for LockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for LockKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Anything that names a lock: `&str`, `String` or an already checked [`LockKey`].
pub trait IntoLockKey {
    /// Checks and converts.
    ///
    /// # Errors
    /// [`Error::InvalidKey`] as for [`LockKey::new`].
    fn into_lock_key(self) -> Result<LockKey>;
}

impl IntoLockKey for LockKey {
    fn into_lock_key(self) -> Result<LockKey> {
        Ok(self)
    }
}
impl IntoLockKey for &LockKey {
    fn into_lock_key(self) -> Result<LockKey> {
        Ok(self.clone())
    }
}
impl IntoLockKey for &str {
    fn into_lock_key(self) -> Result<LockKey> {
        LockKey::new(self)
    }
}
impl IntoLockKey for String {
    fn into_lock_key(self) -> Result<LockKey> {
        LockKey::new(self)
    }
}
impl IntoLockKey for &String {
    fn into_lock_key(self) -> Result<LockKey> {
        LockKey::new(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_unicode_and_limits() {
        assert!(LockKey::new("ключ 🔒 {tag} 'x'").is_ok());
        assert!(LockKey::new("a").is_ok());
        assert!(LockKey::new("é".repeat(MAX_KEY_BYTES / 2)).is_ok());
        let err = LockKey::new("x".repeat(MAX_KEY_BYTES + 1)).unwrap_err();
        assert!(err.to_string().contains("at most 512 bytes"), "{err}");
        let err = LockKey::new("").unwrap_err();
        assert!(err.to_string().contains("must not be empty"), "{err}");
        let err = LockKey::new("a\0b").unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
    }
}
