//! Parsing `redis://`, `rediss://` and `redlock://` URLs into connection targets and options.

use std::time::Duration;

use locksmith_core::{Error, Result, mask_url};

/// Connect timeout when the URL sets none.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Command timeout when the URL sets none.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Options from a URL's query.
#[derive(Clone, Debug)]
pub(crate) struct UrlOptions {
    pub(crate) connect_timeout: Duration,
    pub(crate) command_timeout: Duration,
    pub(crate) prefix: String,
    /// Redlock only: a fixed clock-drift allowance instead of TTL × 1% + 2 ms.
    pub(crate) drift: Option<Duration>,
    /// Redlock only: the largest random delay before a retry.
    pub(crate) retry_delay: Duration,
    /// `rediss://` (and Redlock with `tls=true`): a PEM file of CA certificates to trust
    /// instead of the platform's.
    pub(crate) tls_ca: Option<std::path::PathBuf>,
    /// Redlock only: every node over TLS.
    pub(crate) tls: bool,
    /// `redis://` fair mode: waiters served in arrival order; a waiter that has not retried
    /// for this long is skipped.
    pub(crate) fair: Option<Duration>,
}

/// How long a fair-mode waiter stays in line without retrying, unless `waiter_timeout=` says.
pub const DEFAULT_WAITER_TIMEOUT: Duration = Duration::from_secs(2);

impl Default for UrlOptions {
    fn default() -> Self {
        Self {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            prefix: String::new(),
            drift: None,
            retry_delay: Duration::from_millis(50),
            tls_ca: None,
            tls: false,
            fair: None,
        }
    }
}

/// One server to connect to, as a URL the `redis` crate understands (no query).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) tls: bool,
}

fn bad(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidUrl {
        url: mask_url(url),
        reason: reason.into(),
    }
}

fn duration(url: &str, name: &str, value: &str) -> Result<Duration> {
    let d = humantime::parse_duration(value).map_err(|e| {
        bad(
            url,
            format!(
                "`{name}={value}` is not a duration ({e}); write e.g. {name}=500ms or {name}=5s"
            ),
        )
    })?;
    if d.is_zero() {
        return Err(bad(url, format!("`{name}` must be more than zero")));
    }
    Ok(d)
}

/// Which kind of URL a query belongs to: the options differ.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flavor {
    Redis,
    Cluster,
    Redlock,
}

fn parse_query(url: &str, query: &str, flavor: Flavor) -> Result<UrlOptions> {
    let redlock = flavor == Flavor::Redlock;
    let mut o = UrlOptions::default();
    let mut waiter_timeout = None;
    for (name, value) in ::url::form_urlencoded::parse(query.as_bytes()) {
        match (name.as_ref(), redlock) {
            ("connect_timeout", _) => o.connect_timeout = duration(url, &name, &value)?,
            ("command_timeout", _) => o.command_timeout = duration(url, &name, &value)?,
            ("prefix", _) => o.prefix = value.into_owned(),
            ("tls_ca", _) => o.tls_ca = Some(value.into_owned().into()),
            ("tls", true) => match value.as_ref() {
                "true" | "1" | "yes" => o.tls = true,
                "false" | "0" | "no" => o.tls = false,
                other => {
                    return Err(bad(
                        url,
                        format!("`tls={other}`: write tls=true or tls=false"),
                    ));
                }
            },
            ("fair" | "waiter_timeout", false) if flavor == Flavor::Cluster => {
                return Err(bad(
                    url,
                    "fair mode is not supported on Redis Cluster in this version; it is offered \
                     on redis://…?fair=true (one primary)",
                ));
            }
            ("fair", false) => match value.as_ref() {
                "true" | "1" | "yes" => {
                    o.fair = Some(o.fair.unwrap_or(DEFAULT_WAITER_TIMEOUT));
                }
                "false" | "0" | "no" => o.fair = None,
                other => {
                    return Err(bad(
                        url,
                        format!("`fair={other}`: write fair=true or fair=false"),
                    ));
                }
            },
            ("waiter_timeout", false) => {
                waiter_timeout = Some(duration(url, &name, &value)?);
            }
            ("drift", true) => {
                o.drift =
                    Some(humantime::parse_duration(&value).map_err(|e| {
                        bad(url, format!("`drift={value}` is not a duration ({e})"))
                    })?)
            }
            ("retry_delay", true) => o.retry_delay = duration(url, &name, &value)?,
            ("fair" | "waiter_timeout", true) => {
                return Err(bad(
                    url,
                    "fair mode is not supported on redlock:// (a FIFO queue would have to stay \
                     consistent across independent nodes); it is offered on redis://…?fair=true",
                ));
            }
            (other, _) => {
                let known = match flavor {
                    Flavor::Redlock => {
                        "connect_timeout, command_timeout, prefix, drift, retry_delay, tls, tls_ca"
                    }
                    Flavor::Redis => {
                        "connect_timeout, command_timeout, prefix, tls_ca, fair, waiter_timeout"
                    }
                    Flavor::Cluster => "connect_timeout, command_timeout, prefix, tls_ca",
                };
                return Err(bad(
                    url,
                    format!("unknown option `{other}`; known options: {known}"),
                ));
            }
        }
    }
    if let Some(t) = waiter_timeout {
        if o.fair.is_none() {
            return Err(bad(url, "waiter_timeout= only applies with fair=true"));
        }
        o.fair = Some(t);
    }
    Ok(o)
}

fn db_path(url: &str, path: &str) -> Result<String> {
    let db = path.trim_start_matches('/');
    if db.is_empty() {
        return Ok(String::new());
    }
    if db.parse::<u16>().is_err() {
        return Err(bad(
            url,
            format!("the path must be a database number such as /0 or /3, not `/{db}`"),
        ));
    }
    Ok(format!("/{db}"))
}

/// `redis://[[user]:password@]host[:port][/db][?options]`, or `rediss://` for TLS.
pub(crate) fn parse_redis(url: &str) -> Result<(Target, UrlOptions)> {
    let parsed = ::url::Url::parse(url).map_err(|e| {
        bad(
            url,
            format!("{e}; expected redis://[[user]:password@]host[:port][/db][?options]"),
        )
    })?;
    let tls = match parsed.scheme() {
        "redis" => false,
        "rediss" => true,
        other => {
            return Err(bad(
                url,
                format!("expected redis:// or rediss://, not {other}://"),
            ));
        }
    };
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad(url, "the URL names no host; write redis://HOST:PORT"));
    }
    let opts = parse_query(url, parsed.query().unwrap_or(""), Flavor::Redis)?;
    if opts.tls_ca.is_some() && !tls {
        return Err(bad(url, "tls_ca= is for rediss:// (TLS) URLs"));
    }
    let db = db_path(url, parsed.path())?;
    let mut plain = parsed.clone();
    plain.set_query(None);
    plain.set_fragment(None);
    plain.set_path(&db);
    Ok((
        Target {
            url: plain.to_string(),
            tls,
        },
        opts,
    ))
}

/// `redlock://[[user]:password@]host:port,host:port,…[/db][?options]` (`tls=true`: every node
/// over TLS): one target per host,
/// all with the same credentials and database.
pub(crate) fn parse_redlock(url: &str) -> Result<(Vec<Target>, UrlOptions)> {
    let usage = "expected redlock://[[user]:password@]host:port,host:port,…[/db][?options]";
    let Some(list) = HostList::split(url, &["redlock"], usage)? else {
        return Err(bad(url, usage));
    };
    let db = db_path(url, list.path)?;
    let opts = parse_query(url, list.query, Flavor::Redlock)?;
    if opts.tls_ca.is_some() && !opts.tls {
        return Err(bad(url, "tls_ca= needs tls=true (every node over TLS)"));
    }
    let targets = list.targets(url, opts.tls, &db, usage)?;
    if targets.len() < 3 {
        return Err(bad(
            url,
            format!(
                "Redlock needs at least 3 independent Redis servers (5 is usual), this URL \
                 names {}; for one server use redis://",
                targets.len()
            ),
        ));
    }
    Ok((targets, opts))
}

/// A URL naming several `host:port`s: `SCHEME://[userinfo@]H1:P1,H2:P2,…[/path][?query]`.
struct HostList<'a> {
    scheme: &'a str,
    userinfo: &'a str,
    hosts: &'a str,
    path: &'a str,
    query: &'a str,
}

impl<'a> HostList<'a> {
    /// Splits `url` if its scheme is one of `schemes` (`Ok(None)` otherwise).
    fn split(url: &'a str, schemes: &[&str], usage: &str) -> Result<Option<Self>> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(bad(url, usage.to_owned()));
        };
        if !schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
            return Ok(None);
        }
        let (before_query, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = match before_query.find('/') {
            Some(i) => before_query.split_at(i),
            None => (before_query, ""),
        };
        let (userinfo, hosts) = match authority.rfind('@') {
            Some(i) => (&authority[..=i], &authority[i + 1..]),
            None => ("", authority),
        };
        Ok(Some(Self {
            scheme,
            userinfo,
            hosts,
            path,
            query,
        }))
    }

    /// One target per host, each with the list's credentials and database path `db`.
    fn targets(&self, url: &str, tls: bool, db: &str, usage: &str) -> Result<Vec<Target>> {
        let scheme = if tls { "rediss" } else { "redis" };
        let mut targets = Vec::new();
        for host in self.hosts.split(',') {
            if host.trim().is_empty() {
                return Err(bad(url, format!("an empty host in the list; {usage}")));
            }
            let one = format!("{scheme}://{}{host}{db}", self.userinfo);
            let parsed = ::url::Url::parse(&one)
                .map_err(|e| bad(url, format!("host `{host}`: {e}; {usage}")))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(bad(url, format!("host `{host}` names no host; {usage}")));
            }
            targets.push(Target { url: one, tls });
        }
        Ok(targets)
    }
}

/// `redis+cluster://[[user]:password@]host:port,host:port,…[/0][?options]` (or
/// `rediss+cluster://` for TLS): the seed nodes of one Redis Cluster.
pub(crate) fn parse_cluster(url: &str) -> Result<(Vec<Target>, UrlOptions)> {
    let usage = "expected redis+cluster://[[user]:password@]host:port,host:port,…[?options] \
                 (rediss+cluster:// for TLS)";
    let Some(list) = HostList::split(url, &["redis+cluster", "rediss+cluster"], usage)? else {
        return Err(bad(url, usage));
    };
    let tls = list.scheme.eq_ignore_ascii_case("rediss+cluster");
    let db = db_path(url, list.path)?;
    if !db.is_empty() && db != "/0" {
        return Err(bad(
            url,
            format!("Redis Cluster has only database 0, not `{db}`; leave the path out"),
        ));
    }
    let opts = parse_query(url, list.query, Flavor::Cluster)?;
    if opts.tls_ca.is_some() && !tls {
        return Err(bad(url, "tls_ca= is for rediss+cluster:// (TLS) URLs"));
    }
    let targets = list.targets(url, tls, "", usage)?;
    Ok((targets, opts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_urls() {
        let (t, o) =
            parse_redis("redis://app:pw@127.0.0.1:6390/3?connect_timeout=1s&prefix=x:").unwrap();
        assert_eq!(t.url, "redis://app:pw@127.0.0.1:6390/3");
        assert!(!t.tls);
        assert_eq!(o.connect_timeout, Duration::from_secs(1));
        assert_eq!(o.command_timeout, DEFAULT_COMMAND_TIMEOUT);
        assert_eq!(o.prefix, "x:");
        assert!(parse_redis("rediss://h").unwrap().0.tls);
        let err = parse_redis("redis://:secret@h/abc")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("database number") && !err.contains("secret"),
            "{err}"
        );
        let err = parse_redis("redis://h?colour=red").unwrap_err().to_string();
        assert!(err.contains("unknown option `colour`"), "{err}");
        let err = parse_redis("redis://h?command_timeout=soon")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a duration"), "{err}");
    }

    #[test]
    fn redlock_urls() {
        let (t, o) =
            parse_redlock("redlock://:pw@a:1,b:2,c:3/2?drift=5ms&retry_delay=20ms").unwrap();
        let urls: Vec<_> = t.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "redis://:pw@a:1/2",
                "redis://:pw@b:2/2",
                "redis://:pw@c:3/2"
            ]
        );
        assert_eq!(o.drift, Some(Duration::from_millis(5)));
        assert_eq!(o.retry_delay, Duration::from_millis(20));
        let err = parse_redlock("redlock://:pw@a:1,b:2")
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least 3") && !err.contains("pw@"), "{err}");
        assert!(parse_redlock("redlock://a:1,,c:3").is_err());
        let (t, o) = parse_redlock("redlock://a:1,b:2,c:3?tls=true&tls_ca=/ca.pem").unwrap();
        assert!(t.iter().all(|t| t.tls && t.url.starts_with("rediss://")));
        assert_eq!(o.tls_ca.as_deref(), Some(std::path::Path::new("/ca.pem")));
        let err = parse_redlock("redlock://a:1,b:2,c:3?tls_ca=/ca.pem").unwrap_err();
        assert!(err.to_string().contains("tls=true"), "{err}");
        let err = parse_redlock("redlock://a:1,b:2,c:3?fair=true").unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
    }

    #[test]
    fn cluster_urls() {
        let (t, o) =
            parse_cluster("redis+cluster://app:pw@a:1,b:2?prefix=x:&command_timeout=1s").unwrap();
        let urls: Vec<_> = t.iter().map(|t| t.url.as_str()).collect();
        assert_eq!(urls, ["redis://app:pw@a:1", "redis://app:pw@b:2"]);
        assert_eq!(o.prefix, "x:");
        assert_eq!(o.command_timeout, Duration::from_secs(1));
        let (t, o) = parse_cluster("rediss+cluster://a:1/0?tls_ca=/ca.pem").unwrap();
        assert!(t[0].tls && t[0].url.starts_with("rediss://"));
        assert_eq!(o.tls_ca.as_deref(), Some(std::path::Path::new("/ca.pem")));
        let one = parse_cluster("redis+cluster://h:7000").unwrap().0;
        assert_eq!(one.len(), 1);
        for (bad_url, says) in [
            ("redis+cluster://:pw@a:1/3", "only database 0"),
            (
                "redis+cluster://a:1?fair=true",
                "not supported on Redis Cluster",
            ),
            ("redis+cluster://a:1?tls_ca=/ca.pem", "rediss+cluster"),
            ("redis+cluster://a:1,,b:2", "empty host"),
            ("redis+cluster://a:1?drift=1ms", "unknown option `drift`"),
            ("redis://a:1", "expected redis+cluster://"),
        ] {
            let err = parse_cluster(bad_url).unwrap_err().to_string();
            assert!(
                err.contains(says) && !err.contains("pw@"),
                "{bad_url}: {err}"
            );
        }
    }
}
