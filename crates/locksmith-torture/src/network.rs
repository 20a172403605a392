//! The network side of a run: the TCP fault proxy between the clients and the backend, and
//! the servers a run starts itself (`--servers`), which it may kill and restart.

use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use locksmith_testkit::proxy::FaultProxy;
use locksmith_testkit::servers::redis::RedisServer;

/// The servers a run can start itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Servers {
    /// One private `redis-server` (Debian package `redis-server`) with an append-only file
    /// synced on every write, so that a `restart` keeps the locks and the token counter.
    Redis,
    /// Five private `redis-server`s (fsynced append-only files) for `redlock://`; a `restart`
    /// kills a minority (2) or, on the next turn, a majority (3) of them for longer than the
    /// TTL, then starts them again.
    Redlock,
    /// The test process's private PostgreSQL cluster (Debian package `postgresql`).
    Postgres,
    /// The test process's private MariaDB server (Debian package `mariadb-server`), for mysql://.
    Mysql,
    /// A private one-member etcd cluster (Debian package `etcd-server`).
    Etcd,
}

impl Servers {
    /// Whether the run can kill and restart them (the `restart` fault).
    pub fn restartable(self) -> bool {
        matches!(self, Servers::Redis | Servers::Redlock)
    }
}

impl FromStr for Servers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "redis" => Ok(Servers::Redis),
            "redlock" => Ok(Servers::Redlock),
            "postgres" => Ok(Servers::Postgres),
            "mysql" => Ok(Servers::Mysql),
            "etcd" => Ok(Servers::Etcd),
            other => Err(format!(
                "unknown server kind {other:?}; expected redis, redlock, postgres, mysql or etcd"
            )),
        }
    }
}

/// Servers started by the run; stopped when dropped.
#[derive(Debug)]
pub enum OwnServers {
    /// One Redis server.
    Redis(RedisServer),
    /// Redlock's nodes, and how many restarts they have had.
    Redlock(Vec<RedisServer>, usize),
    /// A server started once per process (by the testkit) and stopped when it exits.
    Shared(String),
    /// An etcd cluster.
    Etcd(locksmith_testkit::servers::etcd::EtcdCluster),
}

impl OwnServers {
    /// Starts the servers (blocking: waits until they listen).
    ///
    /// # Panics
    /// When the server binary is missing (with the Debian package to install) or the server
    /// does not come up.
    pub fn start(kind: Servers) -> Self {
        const FSYNCED: [&str; 4] = ["--appendonly", "yes", "--appendfsync", "always"];
        match kind {
            Servers::Redlock => OwnServers::Redlock(
                (0..5).map(|_| RedisServer::start_with(&FSYNCED)).collect(),
                0,
            ),
            Servers::Redis => OwnServers::Redis(RedisServer::start_with(&[
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])),
            Servers::Postgres => {
                OwnServers::Shared(locksmith_testkit::servers::postgres::postgres().url.clone())
            }
            Servers::Mysql => {
                OwnServers::Shared(locksmith_testkit::servers::mariadb::mariadb().url.clone())
            }
            Servers::Etcd => {
                OwnServers::Etcd(locksmith_testkit::servers::etcd::start_etcd_cluster(1))
            }
        }
    }

    /// The URL clients use to reach the servers directly.
    pub fn url(&self) -> String {
        match self {
            OwnServers::Redis(s) => s.url(),
            OwnServers::Redlock(nodes, _) => {
                let hosts: Vec<String> = nodes
                    .iter()
                    .map(|n| format!("127.0.0.1:{}", n.port()))
                    .collect();
                format!("redlock://{}", hosts.join(","))
            }
            OwnServers::Shared(url) => url.clone(),
            OwnServers::Etcd(c) => c.url(),
        }
    }

    /// What the next [`OwnServers::restart`] is called in histories and reports.
    pub fn next_restart(&self) -> &'static str {
        match self {
            OwnServers::Redlock(_, turn) if turn % 2 == 0 => "restart-minority",
            OwnServers::Redlock(..) => "restart-majority",
            _ => "restart",
        }
    }

    /// Kills the server with SIGKILL and starts it again on the same port and data folder;
    /// for Redlock, kills a minority or a majority of the nodes (in turn), waits `down`, and
    /// starts them again.
    ///
    /// # Panics
    /// For servers that are not [`Servers::restartable`] (refused before the run).
    pub fn restart(&mut self, down: Duration) {
        match self {
            OwnServers::Redis(s) => s.restart(),
            OwnServers::Redlock(nodes, turn) => {
                let n = if *turn % 2 == 0 { 2 } else { 3 };
                let first = *turn % nodes.len();
                let which: Vec<usize> = (0..n).map(|i| (first + i) % nodes.len()).collect();
                *turn += 1;
                for &i in &which {
                    nodes[i].kill();
                }
                std::thread::sleep(down);
                for &i in &which {
                    nodes[i].restart();
                }
            }
            OwnServers::Shared(_) | OwnServers::Etcd(_) => {
                unreachable!("restart is refused for these servers before the run")
            }
        }
    }
}

/// Splits `url` into what comes before its `host:port`, the `host:port`, and what follows.
fn authority(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let end = start + rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host_start = url[start..end]
        .rfind('@')
        .map_or(start, |at| start + at + 1);
    Some((host_start, end))
}

/// The URL with its `host:port` replaced by `proxy`, and the address it named.
///
/// # Errors
/// When the URL does not name exactly one `host:port` (file://, memory://, a node list),
/// or the host does not resolve.
pub fn through_proxy(url: &str, proxy: SocketAddr) -> Result<String, String> {
    let masked = locksmith::mask_url(url);
    let (a, b) = authority(url)
        .ok_or_else(|| format!("{masked}: the network faults need a URL naming one host:port"))?;
    let hostport = &url[a..b];
    if hostport.is_empty() || hostport.contains(',') || !hostport.contains(':') {
        return Err(format!(
            "{masked}: the network faults (partition, latency, cut, reset) put a proxy in \
             front of one server, so the URL must name exactly one host:port"
        ));
    }
    Ok(format!("{}{proxy}{}", &url[..a], &url[b..]))
}

/// The address the URL's `host:port` names.
///
/// # Errors
/// As [`through_proxy`].
pub fn target(url: &str) -> Result<SocketAddr, String> {
    let masked = locksmith::mask_url(url);
    let (a, b) = authority(url)
        .ok_or_else(|| format!("{masked}: the network faults need a URL naming one host:port"))?;
    url[a..b]
        .to_socket_addrs()
        .ok()
        .and_then(|mut it| it.next())
        .ok_or_else(|| format!("{masked}: cannot resolve {}", &url[a..b]))
}

/// Starts a proxy in front of the URL's server; returns it and the URL clients use.
///
/// # Errors
/// As [`through_proxy`], or when no loopback port can be bound.
///
/// # Cancel safety
/// Cancel-safe: nothing is left behind but a dropped proxy.
pub async fn proxy_for(url: &str) -> Result<(FaultProxy, String), String> {
    let addr = target(url)?;
    let proxy = FaultProxy::start(addr)
        .await
        .map_err(|e| format!("cannot start the fault proxy: {e}"))?;
    let via = through_proxy(url, proxy.addr())?;
    Ok((proxy, via))
}

/// How much latency the `latency` fault adds to every chunk, each way.
pub fn latency_for(ttl: Duration) -> Duration {
    ttl / 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_rewritten_to_the_proxy() {
        let p: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(
            through_proxy("redis://127.0.0.1:6379", p).unwrap(),
            "redis://127.0.0.1:4000"
        );
        assert_eq!(
            through_proxy("postgres://u:p@db.example:5432/x?sslmode=disable", p).unwrap(),
            "postgres://u:p@127.0.0.1:4000/x?sslmode=disable"
        );
        assert!(through_proxy("file:///tmp/x", p).is_err());
        assert!(through_proxy("redlock://a:1,b:2,c:3", p).is_err());
        assert!(through_proxy("redis://nohostport", p).is_err());
        assert_eq!(
            target("redis://127.0.0.1:6379/0").unwrap(),
            "127.0.0.1:6379".parse().unwrap()
        );
    }
}
