//! `mysql://` URLs: locksmith's own query parameters are taken out, the rest goes to
//! mysql_async.

use locksmith_core::{Error, Result};
use locksmith_sql::{MYSQL_TLS, Settings, SplitUrl, TlsMode, TlsSettings, split_url};

use crate::tls::TlsOpts;

/// mysql_async's own TLS parameters: locksmith takes the MySQL client's instead.
const DRIVER_TLS_PARAMS: &[&str] = &[
    "require_ssl",
    "verify_ca",
    "verify_identity",
    "built_in_roots",
];

/// A parsed URL: the driver's options (TLS included) and the engine's settings.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) opts: TlsOpts,
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
        &["mysql", "mariadb"],
        "mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE",
    )?;
    let bad = |reason: String| Error::InvalidUrl {
        url: masked.clone(),
        reason,
    };
    if let Some((name, _)) = parsed
        .query_pairs()
        .find(|(n, _)| DRIVER_TLS_PARAMS.contains(&n.as_ref()))
    {
        return Err(bad(format!(
            "`{name}` is not an option here: choose TLS with ssl-mode=DISABLED|PREFERRED|\
             REQUIRED|VERIFY_CA|VERIFY_IDENTITY and ssl-ca=PATH"
        )));
    }
    let tls = TlsSettings::take(&mut parsed, &MYSQL_TLS, &masked)?;
    if parsed.path().trim_matches('/').is_empty() {
        return Err(bad(
            "name a database (mysql://USER@HOST/DATABASE): the fencing counter table lives there"
                .into(),
        ));
    }
    // mysql_async knows only the mysql:// scheme.
    let for_driver = format!("mysql{}", &parsed.as_str()[parsed.scheme().len()..]);
    let opts = mysql_async::Opts::from_url(&for_driver).map_err(|e| {
        bad(format!(
            "{e} (see the locksmith-mysql docs for the options)"
        ))
    })?;
    let mut builder = mysql_async::OptsBuilder::from_opts(opts.clone());
    if opts.pass().is_none()
        && let Some(pw) = env("MYSQL_PWD")
    {
        builder = builder.pass(Some(pw));
    }
    if opts.user().is_none() {
        builder = builder.user(env("USER").or(Some("root".to_owned())));
    }
    // locksmith keeps its statements prepared for a connection's life: the driver's cache must
    // not evict (and so close) them. A cache of 0 (off) closes nothing, and is kept.
    let cache = opts.stmt_cache_size();
    if cache > 0 && cache < crate::driver::MIN_STMT_CACHE {
        builder = builder.stmt_cache_size(crate::driver::MIN_STMT_CACHE);
    }
    // mysql_async would move a local connection to the server's Unix socket, where it does
    // not encrypt: a mode that requires TLS keeps TCP unless the URL chose otherwise.
    if tls.mode >= TlsMode::Require && !parsed.query_pairs().any(|(n, _)| n == "prefer_socket") {
        builder = builder.prefer_socket(false);
    }
    Ok(Parsed {
        opts: TlsOpts::new(builder.into(), tls),
        settings,
        masked,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_statement_cache_holds_every_kept_statement() {
        let size = |url: &str| {
            parse_with_env(url, no_env)
                .unwrap()
                .opts
                .current()
                .stmt_cache_size()
        };
        let min = crate::driver::MIN_STMT_CACHE;
        assert!(size("mysql://u@h/db") >= min);
        assert_eq!(size("mysql://u@h/db?stmt_cache_size=2"), min);
        assert_eq!(size("mysql://u@h/db?stmt_cache_size=500"), 500);
        // Off: the driver closes nothing, so held statements stay valid.
        assert_eq!(size("mysql://u@h/db?stmt_cache_size=0"), 0);
    }

    #[test]
    fn splits_options_and_masks() {
        let p = parse_with_env(
            "mariadb://app:s3cret@db.example:3307/locks?health_check=500ms&prefer_socket=false",
            no_env,
        )
        .unwrap();
        assert_eq!(
            p.masked,
            "mariadb://app:***@db.example:3307/locks?health_check=500ms&prefer_socket=false"
        );
        assert_eq!(p.settings.health_check, Duration::from_millis(500));
        assert_eq!(p.opts.current().user(), Some("app"));
        assert_eq!(p.opts.current().pass(), Some("s3cret"));
        assert_eq!(p.opts.current().db_name(), Some("locks"));
        assert_eq!(p.opts.current().tcp_port(), 3307);
        assert!(!p.opts.current().prefer_socket());
    }

    #[test]
    fn password_from_the_environment() {
        let env = |n: &str| (n == "MYSQL_PWD").then(|| "fromenv".to_owned());
        let p = parse_with_env("mysql://app@h/d", env).unwrap();
        assert_eq!(p.opts.current().pass(), Some("fromenv"));
        let p = parse_with_env("mysql://app:inurl@h/d", env).unwrap();
        assert_eq!(p.opts.current().pass(), Some("inurl"), "the URL wins");
    }

    #[test]
    fn modes_that_require_tls_keep_tcp() {
        for (query, socket) in [
            ("", true),
            ("?ssl-mode=preferred", true),
            ("?ssl-mode=REQUIRED", false),
            ("?ssl-mode=REQUIRED&prefer_socket=true", true),
        ] {
            let p = parse_with_env(&format!("mysql://u@localhost/d{query}"), no_env).unwrap();
            assert_eq!(p.opts.current().prefer_socket(), socket, "{query}");
        }
    }

    #[test]
    fn bad_urls_are_clear_and_never_show_the_password() {
        for (url, says) in [
            ("mysql://u:hunter2@h/d?health_check=often", "health_check"),
            ("mysql://u:hunter2@h/d?bogus=1", "bogus"),
            ("mysql://u:hunter2@h", "name a database"),
            ("postgres://u:hunter2@h/d", "scheme"),
        ] {
            let err = parse_with_env(url, no_env).unwrap_err().to_string();
            assert!(err.contains(says) && !err.contains("hunter2"), "{err}");
        }
    }
}
