//! `zookeeper://` URLs: ensemble, chroot, digest credentials and timeouts.

use std::time::Duration;

use locksmith_core::{Error, Result, mask_url};

const EXAMPLE: &str =
    "zookeeper://127.0.0.1:2181 or zookeeper://user:pass@h1:2181,h2:2181/app?session_timeout=10";

/// Everything a `zookeeper://` URL says.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// `h1:2181,h2:2181/chroot`, as the client library takes it.
    pub(crate) connect_string: String,
    /// Digest credentials (`user:password`).
    pub(crate) digest: Option<String>,
    pub(crate) session_timeout: Duration,
    pub(crate) connect_timeout: Duration,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("connect_string", &self.connect_string)
            .field("session_timeout", &self.session_timeout)
            .finish_non_exhaustive()
    }
}

/// The default session timeout.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
/// The default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn invalid(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidUrl {
        url: mask_url(url),
        reason: reason.into(),
    }
}

fn duration(url: &str, name: &str, value: &str) -> Result<Duration> {
    let v = value.strip_suffix('s').unwrap_or(value);
    match v.parse::<f64>() {
        Ok(s) if (0.1..=3600.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(invalid(
            url,
            format!("`{name}={value}` must be seconds from 0.1 to 3600, e.g. `{name}=10`"),
        )),
    }
}

fn pct_decode(url: &str, s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let b = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid(url, "bad %-escape"))?;
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(url, "not UTF-8 after %-decoding"))
}

/// Parses `zookeeper://[USER:PASSWORD@]HOST[:PORT][,HOST[:PORT]…][/CHROOT][?OPTIONS]`.
pub(crate) fn parse(url: &str) -> Result<Config> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(invalid(url, format!("expected {EXAMPLE}")));
    };
    if !scheme.eq_ignore_ascii_case("zookeeper") {
        return Err(invalid(
            url,
            format!(
                "the ZooKeeper backend needs a zookeeper:// URL, not {scheme}://; for example {EXAMPLE}"
            ),
        ));
    }
    if rest.contains('#') {
        return Err(invalid(url, "a zookeeper:// URL takes no `#fragment`"));
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    let digest = match userinfo {
        None => None,
        Some(info) => {
            let (u, p) = info.split_once(':').unwrap_or((info, ""));
            Some(format!("{}:{}", pct_decode(url, u)?, pct_decode(url, p)?))
        }
    };
    let mut parts = Vec::new();
    for host in hosts.split(',') {
        if host.is_empty() {
            return Err(invalid(
                url,
                format!("empty host in the host list; for example {EXAMPLE}"),
            ));
        }
        let with_port = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:2181")
        };
        if let Some((_, port)) = with_port.rsplit_once(':')
            && port.parse::<u16>().is_err()
        {
            return Err(invalid(url, format!("`{port}` is not a port number")));
        }
        parts.push(with_port);
    }
    let chroot = pct_decode(url, path.trim_end_matches('/'))?;
    let mut cfg = Config {
        connect_string: format!("{}{chroot}", parts.join(",")),
        digest,
        session_timeout: DEFAULT_SESSION_TIMEOUT,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
    };
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match name.as_ref() {
            "session_timeout" => cfg.session_timeout = duration(url, "session_timeout", &value)?,
            "connect_timeout" => cfg.connect_timeout = duration(url, "connect_timeout", &value)?,
            other => {
                return Err(invalid(
                    url,
                    format!(
                        "unknown query parameter `{other}`; known: session_timeout, connect_timeout"
                    ),
                ));
            }
        }
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        let c = parse("zookeeper://127.0.0.1:2181").unwrap();
        assert_eq!(c.connect_string, "127.0.0.1:2181");
        let c = parse("zookeeper://u:p%40w@a,b:3/app/x/?session_timeout=4").unwrap();
        assert_eq!(c.connect_string, "a:2181,b:3/app/x");
        assert_eq!(c.digest.as_deref(), Some("u:p@w"));
        assert_eq!(c.session_timeout, Duration::from_secs(4));
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        let err = |u: &str| parse(u).unwrap_err().to_string();
        let e = err("zookeeper://u:secret@h?session_timeout=0");
        assert!(
            e.contains("session_timeout") && !e.contains("secret"),
            "{e}"
        );
        assert!(err("zookeeper://h?x=1").contains("unknown query parameter `x`"));
        assert!(err("zookeeper://a,,b").contains("empty host"));
        assert!(err("etcd://h").contains("zookeeper://"));
    }
}
