//! `postgres://` URLs: locksmith's own query parameters are taken out, the rest goes to
//! tokio-postgres.

use std::str::FromStr;

use locksmith_core::{Error, Result};
use locksmith_sql::{POSTGRES_TLS, Settings, SplitUrl, TlsMode, TlsSettings, split_url};
use tokio_postgres::config::SslMode;

/// A parsed URL: the driver's configuration, its TLS settings and the engine's settings.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) config: tokio_postgres::Config,
    pub(crate) tls: TlsSettings,
    pub(crate) settings: Settings,
    pub(crate) masked: String,
}

pub(crate) fn parse(url: &str) -> Result<Parsed> {
    parse_with_env(url, |name| std::env::var(name).ok())
}

pub(crate) fn parse_with_env(url: &str, env: impl Fn(&str) -> Option<String>) -> Result<Parsed> {
    let SplitUrl {
        url: mut parsed,
        settings,
        masked,
    } = split_url(
        url,
        &["postgres", "postgresql"],
        "postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
    )?;
    let bad = |reason: String| Error::InvalidUrl {
        url: masked.clone(),
        reason,
    };
    // libpq's environment fills in the TLS options the URL leaves out (the URL wins), so a
    // deployment that sets PGSSLMODE=verify-full does not quietly get `prefer` here.
    let from_env = tls_from_env(&mut parsed, &env);
    // tokio-postgres knows only disable/prefer/require and no certificate files: locksmith
    // takes libpq's TLS options and gives the driver the matching negotiation.
    let tls = TlsSettings::take(&mut parsed, &POSTGRES_TLS, &masked).map_err(|e| match e {
        Error::InvalidUrl { url, reason } if !from_env.is_empty() => Error::InvalidUrl {
            url,
            reason: format!(
                "{reason} (taken from the environment: {})",
                from_env.join(", ")
            ),
        },
        e => e,
    })?;
    let mut config = tokio_postgres::Config::from_str(parsed.as_str()).map_err(|e| {
        bad(format!(
            "{e} (see the locksmith-postgres docs for the options)"
        ))
    })?;
    if config.get_user().is_none() {
        let user = env("PGUSER")
            .or_else(|| env("USER"))
            .unwrap_or_else(|| "postgres".to_owned());
        config.user(user);
    }
    if config.get_password().is_none()
        && let Some(pw) = env("PGPASSWORD")
    {
        config.password(pw);
    }
    if config.get_hosts().is_empty() {
        config.host("localhost");
    }
    config.ssl_mode(match tls.mode {
        TlsMode::Disable => SslMode::Disable,
        TlsMode::Prefer => SslMode::Prefer,
        TlsMode::Require | TlsMode::VerifyCa | TlsMode::VerifyFull => SslMode::Require,
    });
    config.connect_timeout(settings.connect_timeout);
    Ok(Parsed {
        config,
        tls,
        settings,
        masked,
    })
}

/// libpq's environment variables for the TLS options, as (URL option, variable).
const TLS_ENV: [(&str, &str); 4] = [
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
];

/// Adds to `url` each TLS option it does not give whose libpq variable is set (and not
/// empty); returns them as `VARIABLE=value`, for messages.
fn tls_from_env(url: &mut url::Url, env: &impl Fn(&str) -> Option<String>) -> Vec<String> {
    let given: Vec<String> = url.query_pairs().map(|(n, _)| n.into_owned()).collect();
    let mut used = Vec::new();
    for (option, var) in TLS_ENV {
        if given.iter().any(|n| n == option) {
            continue;
        }
        if let Some(value) = env(var).filter(|v| !v.is_empty()) {
            url.query_pairs_mut().append_pair(option, &value);
            used.push(format!("{var}={value}"));
        }
    }
    used
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn splits_options_and_masks() {
        let p = parse_with_env(
            "postgres://app:s3cret@db.example:5433/locks?health_check=500ms&sslmode=disable&statement_timeout=5s",
            no_env,
        )
        .unwrap();
        assert_eq!(
            p.masked,
            "postgres://app:***@db.example:5433/locks?health_check=500ms&sslmode=disable&statement_timeout=5s"
        );
        assert_eq!(p.settings.health_check, Duration::from_millis(500));
        assert_eq!(p.settings.statement_timeout, Duration::from_secs(5));
        assert_eq!(p.config.get_user(), Some("app"));
        assert_eq!(p.config.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(p.config.get_dbname(), Some("locks"));
        assert_eq!(p.config.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn password_and_user_from_the_environment() {
        let env = |n: &str| match n {
            "PGPASSWORD" => Some("fromenv".to_owned()),
            "PGUSER" => Some("envuser".to_owned()),
            _ => None,
        };
        let p = parse_with_env("postgres://db.example/locks", env).unwrap();
        assert_eq!(p.config.get_password(), Some(&b"fromenv"[..]));
        assert_eq!(p.config.get_user(), Some("envuser"));
        let p = parse_with_env("postgres://u:inurl@h/d", env).unwrap();
        assert_eq!(p.config.get_password(), Some(&b"inurl"[..]), "the URL wins");
    }

    #[test]
    fn tls_modes_become_the_drivers_negotiation() {
        for (query, mode, ssl) in [
            ("", TlsMode::Prefer, SslMode::Prefer),
            ("?sslmode=disable", TlsMode::Disable, SslMode::Disable),
            ("?sslmode=require", TlsMode::Require, SslMode::Require),
        ] {
            let p = parse_with_env(&format!("postgres://u@h/d{query}"), no_env).unwrap();
            assert_eq!(
                (p.tls.mode, p.config.get_ssl_mode()),
                (mode, ssl),
                "{query}"
            );
        }
    }

    #[test]
    fn tls_options_come_from_libpqs_environment_when_the_url_has_none() {
        let env = |n: &str| match n {
            "PGSSLMODE" => Some("require".to_owned()),
            "PGSSLCERT" => Some(String::new()),
            _ => None,
        };
        let p = parse_with_env("postgres://u@h/d", env).unwrap();
        assert_eq!(
            (p.tls.mode, p.config.get_ssl_mode()),
            (TlsMode::Require, SslMode::Require)
        );
        assert!(
            p.tls.client.is_none(),
            "an empty PGSSLCERT is no certificate"
        );
        let p = parse_with_env("postgres://u@h/d?sslmode=disable", env).unwrap();
        assert_eq!(p.tls.mode, TlsMode::Disable, "the URL wins");
        let env = |n: &str| (n == "PGSSLMODE").then(|| "sometimes".to_owned());
        let err = parse_with_env("postgres://u:hunter2@h/d", env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sslmode=sometimes")
                && err.contains("PGSSLMODE=sometimes")
                && !err.contains("hunter2"),
            "{err}"
        );
        let env = |n: &str| (n == "PGSSLROOTCERT").then(|| "/nonexistent.pem".to_owned());
        let err = parse_with_env("postgres://u@h/d?sslmode=verify-full", env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read /nonexistent.pem") && err.contains("PGSSLROOTCERT"),
            "{err}"
        );
    }

    #[test]
    fn bad_urls_are_clear_and_never_show_the_password() {
        for (url, says) in [
            (
                "postgres://u:hunter2@h/d?sslmode=verify-full&sslrootcert=/nonexistent.pem",
                "sslrootcert: cannot read /nonexistent.pem",
            ),
            (
                "postgres://u:hunter2@h/d?health_check=often",
                "health_check",
            ),
            ("postgres://u:hunter2@h/d?sslmode=sometimes", "sslmode"),
            ("mysql://u:hunter2@h/d", "scheme"),
        ] {
            let err = parse_with_env(url, no_env).unwrap_err().to_string();
            assert!(err.contains(says) && !err.contains("hunter2"), "{err}");
        }
    }
}
