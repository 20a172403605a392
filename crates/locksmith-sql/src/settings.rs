//! Engine settings shared by the SQL backends, and the URL query parameters that set them.

use std::time::Duration;

use locksmith_core::{Error, Result};

/// How the engine treats connections and statements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Settings {
    /// Bound on opening a connection (`connect_timeout`, default 10 s).
    pub connect_timeout: Duration,
    /// Bound on every statement except the blocking wait (`statement_timeout`, default 30 s).
    /// A statement without an answer in time fails, and its connection is closed.
    pub statement_timeout: Duration,
    /// How often a held lock's connection is pinged (`health_check`, default 2 s).
    pub health_check: Duration,
    /// Idle connections kept for reuse (`pool_idle`, default 8).
    pub pool_idle: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(30),
            health_check: Duration::from_secs(2),
            pool_idle: 8,
        }
    }
}

/// The query parameter names [`Settings::apply`] understands.
pub const PARAMS: &[&str] = &[
    "connect_timeout",
    "statement_timeout",
    "health_check",
    "pool_idle",
];

impl Settings {
    /// Applies one URL query parameter; `Ok(false)` when `name` is not one of [`PARAMS`].
    /// Durations are humantime (`500ms`, `2s`) or a plain number of seconds.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] (with `url`, already masked) for a value that does not parse or
    /// is zero.
    pub fn apply(&mut self, url: &str, name: &str, value: &str) -> Result<bool> {
        let bad = |why: String| Error::InvalidUrl {
            url: url.to_owned(),
            reason: why,
        };
        let duration = || -> Result<Duration> {
            let d = match value.parse::<u64>() {
                Ok(secs) => Duration::from_secs(secs),
                Err(_) => humantime::parse_duration(value).map_err(|e| {
                    bad(format!(
                        "`{name}={value}` is not a duration ({e}); write e.g. 5s or 500ms"
                    ))
                })?,
            };
            if d.is_zero() {
                return Err(bad(format!("`{name}` must be more than zero")));
            }
            Ok(d)
        };
        match name {
            "connect_timeout" => self.connect_timeout = duration()?,
            "statement_timeout" => self.statement_timeout = duration()?,
            "health_check" => self.health_check = duration()?,
            "pool_idle" => {
                self.pool_idle = value.parse().map_err(|_| {
                    bad(format!(
                        "`pool_idle={value}` is not a whole number of connections"
                    ))
                })?
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_and_refuses_nonsense() {
        let mut s = Settings::default();
        assert!(s.apply("u", "health_check", "500ms").unwrap());
        assert_eq!(s.health_check, Duration::from_millis(500));
        assert!(s.apply("u", "connect_timeout", "3").unwrap());
        assert_eq!(s.connect_timeout, Duration::from_secs(3));
        assert!(!s.apply("u", "sslmode", "disable").unwrap());
        let err = s.apply("u", "statement_timeout", "soon").unwrap_err();
        assert!(err.to_string().contains("statement_timeout=soon"), "{err}");
        assert!(s.apply("u", "health_check", "0s").is_err());
        assert!(s.apply("u", "pool_idle", "-1").is_err());
    }
}

/// A SQL backend URL parsed, with locksmith's own query parameters ([`PARAMS`]) taken out into
/// [`Settings`] and the rest left in the URL for the driver.
#[derive(Debug)]
pub struct SplitUrl {
    /// The URL without locksmith's parameters.
    pub url: url::Url,
    /// locksmith's settings from the URL.
    pub settings: Settings,
    /// The URL as given, password masked, for messages.
    pub masked: String,
}

/// Parses `url`, checks its scheme is one of `schemes`, and takes locksmith's parameters out.
/// `form` is the URL's shape for messages, e.g. `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`.
///
/// # Errors
/// [`Error::InvalidUrl`] (password masked) for a URL that does not parse, another scheme, or a
/// bad value of one of locksmith's parameters.
pub fn split_url(url: &str, schemes: &[&str], form: &str) -> Result<SplitUrl> {
    let masked = locksmith_core::mask_url(url);
    let bad = |reason: String| Error::InvalidUrl {
        url: masked.clone(),
        reason,
    };
    let mut parsed =
        url::Url::parse(url).map_err(|e| bad(format!("{e}; expected {form}[?OPTIONS]")))?;
    if !schemes.contains(&parsed.scheme()) {
        let names: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
        return Err(bad(format!("the scheme must be {}", names.join(" or "))));
    }
    let mut settings = Settings::default();
    let mut rest = Vec::new();
    for (name, value) in parsed.query_pairs() {
        if !settings.apply(&masked, &name, &value)? {
            rest.push((name.into_owned(), value.into_owned()));
        }
    }
    if rest.is_empty() {
        parsed.set_query(None);
    } else {
        parsed.query_pairs_mut().clear().extend_pairs(&rest);
    }
    Ok(SplitUrl {
        url: parsed,
        settings,
        masked,
    })
}
