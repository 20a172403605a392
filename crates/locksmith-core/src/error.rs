//! The one error type of locksmith, and URL masking for messages.

use std::time::Duration;

use crate::backend::HolderInfo;
use crate::loss::LossReason;

/// A boxed driver error kept as the `source` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with locksmith's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong. Busy is not an error: `try_acquire` returns `Ok(None)`.
///
/// Messages name the key and the backend (its URL with any password replaced by `***`) and
/// say what to do; the driver's own error is kept as [`std::error::Error::source`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The key breaks a rule of locksmith or of the backend.
    #[error("invalid lock key {}: {rule}", show_key(.key))]
    InvalidKey {
        /// The key as given.
        key: String,
        /// The rule it breaks and what to do instead.
        rule: String,
    },

    /// The backend URL cannot be used.
    #[error("invalid backend URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, password masked.
        url: String,
        /// What is wrong and what to write instead.
        reason: String,
    },

    /// An option has a value that cannot work (a zero TTL, say).
    #[error("invalid option: {0}")]
    InvalidOption(String),

    /// `acquire` waited as long as its wait policy allows and did not get the lock.
    #[error("lock {} on {backend} not obtained within {}{}", show_key(.key), show_duration(*.waited), show_holder(.holder))]
    Timeout {
        /// The key.
        key: String,
        /// The backend, password masked.
        backend: String,
        /// How long the call waited.
        waited: Duration,
        /// Who held the lock when the wait ended, where the backend can tell.
        holder: Option<Box<HolderInfo>>,
    },

    /// The lock was lost while work ran under it (see [`crate::Guard::protect`]).
    #[error("lock {} on {backend} was lost: {reason}; the work under it was cancelled", show_key(.key))]
    Lost {
        /// The key.
        key: String,
        /// The backend, password masked.
        backend: String,
        /// Why the lease is no longer held.
        reason: LossReason,
    },

    /// The backend could not be reached or refused the request (server down, timeout,
    /// authentication, I/O error).
    #[error("{backend}{}: {message}", show_opt_key(.key))]
    Backend {
        /// The backend, password masked.
        backend: String,
        /// The key the request was about, if any.
        key: Option<String>,
        /// What failed and what to check.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },

    /// The backend cannot do what was asked (and says so rather than pretending).
    #[error("{backend} does not support {what}")]
    Unsupported {
        /// The backend, password masked.
        backend: String,
        /// The missing feature.
        what: String,
    },
}

impl Error {
    pub(crate) fn invalid_key(key: &str, rule: impl Into<String>) -> Self {
        Error::InvalidKey {
            key: key.to_owned(),
            rule: rule.into(),
        }
    }

    /// A backend failure with a message and the driver's error as source.
    pub fn backend(
        backend: impl Into<String>,
        key: Option<&str>,
        message: impl Into<String>,
        source: impl Into<Option<BoxError>>,
    ) -> Self {
        Error::Backend {
            backend: backend.into(),
            key: key.map(str::to_owned),
            message: message.into(),
            source: source.into(),
        }
    }

    /// True for [`Error::Timeout`]: the lock was busy for the whole wait.
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout { .. })
    }

    /// True when the caller's input was wrong (key, URL or option): retrying cannot help.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::InvalidKey { .. } | Error::InvalidUrl { .. } | Error::InvalidOption(_)
        )
    }

    /// True for [`Error::Lost`].
    pub fn is_lost(&self) -> bool {
        matches!(self, Error::Lost { .. })
    }
}

/// Shows a key in a message: quoted, and cut after 160 characters so that an over-long key
/// does not flood the log.
pub fn show_key(key: &str) -> String {
    const SHOWN: usize = 160;
    if key.chars().count() <= SHOWN {
        format!("{key:?}")
    } else {
        let head: String = key.chars().take(SHOWN).collect();
        format!("{head:?}… ({} bytes)", key.len())
    }
}

fn show_opt_key(key: &Option<String>) -> String {
    match key {
        Some(k) => format!(" (key {})", show_key(k)),
        None => String::new(),
    }
}

fn show_duration(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn show_holder(h: &Option<Box<HolderInfo>>) -> String {
    match h {
        Some(h) => format!("; held by {h}"),
        None => String::new(),
    }
}

/// Returns `url` with any password replaced by `***`, for messages and logs.
///
/// Works on URLs the `url` crate cannot parse too (a comma-separated host list, say):
/// whatever sits between `user:` and the last `@` of the authority is masked.
///
/// ```
/// use locksmith_core::mask_url;
/// assert_eq!(mask_url("redis://app:s3cret@db:6379/0"), "redis://app:***@db:6379/0");
/// assert_eq!(mask_url("redlock://:pw@a:1,b:2"), "redlock://:***@a:1,b:2");
/// assert_eq!(mask_url("file:///var/lock"), "file:///var/lock");
/// ```
pub fn mask_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..rest_start],
        &userinfo[..colon],
        &url[rest_start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("postgres://u:p@h/db?x=1"),
            "postgres://u:***@h/db?x=1"
        );
        assert_eq!(mask_url("redis://:p%40ss@h"), "redis://:***@h");
        assert_eq!(mask_url("redis://user@h"), "redis://user@h");
        assert_eq!(mask_url("not a url"), "not a url");
        assert_eq!(mask_url("mysql://u:a@b@h:3306/x"), "mysql://u:***@h:3306/x");
    }

    #[test]
    fn long_keys_are_cut_in_messages() {
        let shown = show_key(&"k".repeat(600));
        assert!(shown.len() < 200 && shown.contains("600 bytes"), "{shown}");
    }
}
