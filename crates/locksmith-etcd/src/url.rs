//! `etcd://` URLs: endpoints, credentials, namespace and options.

use std::time::Duration;

use locksmith_core::{Error, Result, mask_url};

const EXAMPLE: &str = "etcd://127.0.0.1:2379 or etcd://user:pass@h1:2379,h2:2379/app?tls=true";

/// Everything an `etcd://` URL says.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// `http://host:port` or `https://host:port`, one per cluster member.
    pub(crate) endpoints: Vec<String>,
    /// User name and password for etcd authentication.
    pub(crate) user: Option<(String, String)>,
    /// Prepended to every key (empty, or ending in `/`).
    pub(crate) namespace: String,
    /// The TTL of the client's one lease, whole seconds (etcd's granularity).
    pub(crate) lease_ttl: Duration,
    /// How long to wait for a connection before failing.
    pub(crate) connect_timeout: Duration,
    /// TLS on, with an optional CA certificate file and server name.
    pub(crate) tls: bool,
    pub(crate) ca_file: Option<String>,
    pub(crate) tls_domain: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("endpoints", &self.endpoints)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("namespace", &self.namespace)
            .field("lease_ttl", &self.lease_ttl)
            .finish_non_exhaustive()
    }
}

/// The default lease TTL: a holder that dies frees its locks within this time.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);
/// The default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn invalid(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidUrl {
        url: mask_url(url),
        reason: reason.into(),
    }
}

fn decode(url: &str, s: &str) -> Result<String> {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| invalid(url, "cannot percent-decode the user info"))
}

fn seconds(url: &str, name: &str, value: &str) -> Result<Duration> {
    let trimmed = value.strip_suffix('s').unwrap_or(value);
    match trimmed.parse::<u64>() {
        Ok(n) if (1..=86_400).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(invalid(
            url,
            format!("`{name}={value}` must be whole seconds from 1 to 86400, e.g. `{name}=10`"),
        )),
    }
}

/// Parses `etcd://[user:password@]host[:port][,host[:port]…][/namespace][?options]`.
pub(crate) fn parse(url: &str) -> Result<Config> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(url, format!("expected {EXAMPLE}")));
    };
    if !scheme.eq_ignore_ascii_case("etcd") {
        return Err(invalid(
            url,
            format!(
                "the etcd backend needs an etcd:// URL, not {scheme}://; for example {EXAMPLE}"
            ),
        ));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    if rest.contains('#') || query.contains('#') {
        return Err(invalid(url, "an etcd:// URL takes no `#fragment`"));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let user = match userinfo {
        None => None,
        Some(info) => {
            let (u, p) = info.split_once(':').unwrap_or((info, ""));
            Some((decode(url, u)?, decode(url, p)?))
        }
    };
    let mut cfg = Config {
        endpoints: Vec::new(),
        user,
        namespace: String::new(),
        lease_ttl: DEFAULT_LEASE_TTL,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        tls: false,
        ca_file: None,
        tls_domain: None,
    };
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "lease_ttl" => cfg.lease_ttl = seconds(url, "lease_ttl", &value)?,
            "connect_timeout" => cfg.connect_timeout = seconds(url, "connect_timeout", &value)?,
            "tls" => {
                cfg.tls = match value.as_ref() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    _ => return Err(invalid(url, "`tls` must be true or false")),
                }
            }
            "ca_file" => cfg.ca_file = Some(value.into_owned()),
            "tls_domain" => cfg.tls_domain = Some(value.into_owned()),
            other => {
                return Err(invalid(
                    url,
                    format!(
                        "unknown query parameter `{other}`; known: lease_ttl, connect_timeout, \
                         tls, ca_file, tls_domain"
                    ),
                ));
            }
        }
    }
    if cfg.ca_file.is_some() || cfg.tls_domain.is_some() {
        cfg.tls = true;
    }
    let proto = if cfg.tls { "https" } else { "http" };
    for host in hosts.split(',') {
        if host.is_empty() {
            return Err(invalid(
                url,
                format!("empty host in the host list; for example {EXAMPLE}"),
            ));
        }
        let with_port = if host.starts_with('[') {
            if host.contains("]:") {
                host.to_owned()
            } else {
                format!("{host}:2379")
            }
        } else if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:2379")
        };
        if let Some((_, port)) = with_port.rsplit_once(':')
            && port.parse::<u16>().is_err()
        {
            return Err(invalid(url, format!("`{port}` is not a port number")));
        }
        cfg.endpoints.push(format!("{proto}://{with_port}"));
    }
    let path = percent_decode(url, path.trim_end_matches('/'))?;
    if !path.is_empty() {
        cfg.namespace = format!("{path}/");
    }
    Ok(cfg)
}

fn percent_decode(url: &str, s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid(url, "bad %-escape in the namespace path"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(url, "the namespace path is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        let c = parse("etcd://127.0.0.1:2379").unwrap();
        assert_eq!(c.endpoints, vec!["http://127.0.0.1:2379"]);
        assert_eq!(c.namespace, "");
        assert_eq!(c.lease_ttl, DEFAULT_LEASE_TTL);
        let c = parse("etcd://u:p%40ss@a,b:3000/app/x%20y/?lease_ttl=3&tls=true").unwrap();
        assert_eq!(c.endpoints, vec!["https://a:2379", "https://b:3000"]);
        assert_eq!(c.user, Some(("u".into(), "p@ss".into())));
        assert_eq!(c.namespace, "app/x y/");
        assert_eq!(c.lease_ttl, Duration::from_secs(3));
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        let err = |u: &str| parse(u).unwrap_err().to_string();
        let e = err("etcd://u:secret@h?lease_ttl=0");
        assert!(e.contains("lease_ttl") && !e.contains("secret"), "{e}");
        assert!(err("etcd://h?x=1").contains("unknown query parameter `x`"));
        assert!(err("etcd://a,,b").contains("empty host"));
        assert!(err("etcd://h:port").contains("not a port"));
        assert!(err("redis://h").contains("etcd://"));
    }
}
