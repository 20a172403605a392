//! The network side of a run: the TCP fault proxy between the clients and the backend, and
//! the servers a run starts itself (`--servers`), which it may kill and restart.

use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use locksmith_testkit::proxy::FaultProxy;
use locksmith_testkit::servers::redis::RedisServer;

/// The servers a run can start itself. Each can be killed and restarted (the `restart`
/// fault), over the data it had: what was committed survives, sessions do not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Servers {
    /// One private `redis-server` (Debian package `redis-server`) with an append-only file
    /// synced on every write, so that a `restart` keeps the locks and the token counter.
    Redis,
    /// The same server, locked in fair mode (`redis://…?fair=true`: a release hands the lock
    /// to the next waiter inside the server).
    RedisFair,
    /// Five private `redis-server`s (fsynced append-only files) for `redlock://`, each with a
    /// fault proxy of its own; a `restart` or a network fault hits a minority (2) or, on the
    /// next turn, a majority (3) of them.
    Redlock,
    /// The test process's private PostgreSQL cluster (Debian package `postgresql`); a
    /// `restart` is an immediate shutdown (no checkpoint: the WAL is replayed as after a crash).
    Postgres,
    /// The test process's private MariaDB server (Debian package `mariadb-server`), for
    /// mysql://; a `restart` SIGKILLs it.
    Mysql,
    /// A private one-member etcd cluster (Debian package `etcd-server`).
    Etcd,
    /// A private standalone ZooKeeper server (Debian package `zookeeper`).
    Zookeeper,
}

impl FromStr for Servers {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "redis" => Ok(Servers::Redis),
            "redis-fair" => Ok(Servers::RedisFair),
            "redlock" => Ok(Servers::Redlock),
            "postgres" => Ok(Servers::Postgres),
            "mysql" => Ok(Servers::Mysql),
            "etcd" => Ok(Servers::Etcd),
            "zookeeper" => Ok(Servers::Zookeeper),
            other => Err(format!(
                "unknown server kind {other:?}; expected redis, redis-fair, redlock, postgres, mysql, \
                 etcd or zookeeper"
            )),
        }
    }
}

/// Servers started by the run; stopped when dropped.
#[derive(Debug)]
pub enum OwnServers {
    /// One Redis server, and whether its locks are taken in fair mode.
    Redis(RedisServer, bool),
    /// Redlock's nodes, and how many restarts they have had.
    Redlock(Vec<RedisServer>, usize),
    /// The test process's PostgreSQL cluster (stopped when the process exits), by URL.
    Postgres(String),
    /// The test process's MariaDB server (stopped when the process exits), by URL.
    Mysql(String),
    /// An etcd cluster.
    Etcd(locksmith_testkit::servers::etcd::EtcdCluster),
    /// A ZooKeeper server.
    Zookeeper(locksmith_testkit::servers::zookeeper::ZooKeeperServer),
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
            Servers::Redis => OwnServers::Redis(RedisServer::start_with(&FSYNCED), false),
            Servers::RedisFair => OwnServers::Redis(RedisServer::start_with(&FSYNCED), true),
            Servers::Postgres => {
                OwnServers::Postgres(locksmith_testkit::servers::postgres::postgres().url.clone())
            }
            Servers::Mysql => {
                OwnServers::Mysql(locksmith_testkit::servers::mariadb::mariadb().url.clone())
            }
            Servers::Etcd => {
                OwnServers::Etcd(locksmith_testkit::servers::etcd::start_etcd_cluster(1))
            }
            Servers::Zookeeper => {
                OwnServers::Zookeeper(locksmith_testkit::servers::zookeeper::start_zookeeper())
            }
        }
    }

    /// Five Redlock nodes **without persistence**, for the expected-unsafe
    /// `redlock-restart-empty` scenario: a restarted node comes back empty.
    ///
    /// # Panics
    /// As [`OwnServers::start`].
    pub fn start_empty_redlock() -> Self {
        OwnServers::Redlock((0..5).map(|_| RedisServer::start()).collect(), 0)
    }

    /// The URL clients use to reach the servers directly.
    pub fn url(&self) -> String {
        match self {
            OwnServers::Redis(s, false) => s.url(),
            OwnServers::Redis(s, true) => format!("{}?fair=true", s.url()),
            OwnServers::Redlock(nodes, _) => {
                let hosts: Vec<String> = nodes
                    .iter()
                    .map(|n| format!("127.0.0.1:{}", n.port()))
                    .collect();
                format!("redlock://{}", hosts.join(","))
            }
            OwnServers::Postgres(url) | OwnServers::Mysql(url) => url.clone(),
            OwnServers::Etcd(c) => c.url(),
            OwnServers::Zookeeper(z) => z.url(),
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

    /// Kills the server and starts it again on the same port and data folder after `down`
    /// (Redis: at once; it reloads its append-only file); for Redlock, kills a minority or a
    /// majority of the nodes (in turn), waits `down`, and starts them again. Blocking; any
    /// thread may call it (the servers are started from threads that live as long as the
    /// process).
    ///
    /// # Panics
    /// When a server does not come back.
    pub fn restart(&mut self, down: Duration) {
        use locksmith_testkit::servers::{mariadb, postgres};
        match self {
            OwnServers::Redis(s, _) => s.restart(),
            OwnServers::Redlock(nodes, turn) => {
                let which = pick(*turn, nodes.len());
                *turn += 1;
                for &i in &which {
                    nodes[i].kill();
                }
                std::thread::sleep(down);
                for &i in &which {
                    nodes[i].restart();
                }
            }
            OwnServers::Postgres(_) => postgres::crash_and_restart(down),
            OwnServers::Mysql(_) => mariadb::crash_and_restart(down),
            OwnServers::Etcd(c) => c.restart_member(0, down),
            OwnServers::Zookeeper(z) => z.restart(down),
        }
    }

    /// Restarts a majority (3) of Redlock's nodes at once, empty (the
    /// `redlock-restart-empty` scenario; their nodes have no persistence).
    ///
    /// # Panics
    /// For other servers, or when a node does not come back.
    pub fn restart_majority_empty(&mut self) {
        let OwnServers::Redlock(nodes, turn) = self else {
            panic!("only Redlock's nodes restart empty");
        };
        // Always a majority: the odd turns of `pick`.
        let which = pick(*turn | 1, nodes.len());
        *turn += 2;
        for &i in &which {
            nodes[i].restart();
        }
    }
}

/// Which of `n` nodes turn `turn` hits: a minority (2 of 5) on even turns, a majority (3 of
/// 5) on odd ones, starting one node further each turn so that every node gets its share.
pub fn pick(turn: usize, n: usize) -> Vec<usize> {
    let count = if turn.is_multiple_of(2) {
        (n - 1) / 2
    } else {
        n / 2 + 1
    };
    (0..count.max(1)).map(|i| (turn + i) % n).collect()
}

/// The URL with the backend's session length set to follow the TTL, when it has one and the
/// URL does not set it: etcd's `lease_ttl` (whole seconds, at least 1) and ZooKeeper's
/// `session_timeout` (the test server's minimum is 1 s). Otherwise a killed holder's locks
/// would stay for the backend's default (10 s), however short the run's TTL.
pub fn follow_ttl(url: &str, ttl: Duration) -> String {
    let (param, value) = match url.split("://").next() {
        Some("etcd") => ("lease_ttl", ttl.as_secs_f64().ceil().max(1.0).to_string()),
        Some("zookeeper") => (
            "session_timeout",
            ttl.max(Duration::from_secs(1)).as_secs_f64().to_string(),
        ),
        _ => return url.to_owned(),
    };
    let query = url.split_once('?').map_or("", |(_, q)| q);
    if query
        .split('&')
        .any(|kv| kv.split('=').next() == Some(param))
    {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}={value}")
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

/// The URL's `host:port` list (one, or several separated by commas, as Redlock's nodes), and
/// where it sits in the URL.
fn host_list(url: &str) -> Result<(usize, usize, Vec<&str>), String> {
    let masked = locksmith::mask_url(url);
    let (a, b) = authority(url)
        .ok_or_else(|| format!("{masked}: the network faults need a URL naming host:port"))?;
    let hosts: Vec<&str> = url[a..b].split(',').collect();
    if hosts.iter().any(|h| h.is_empty() || !h.contains(':')) {
        return Err(format!(
            "{masked}: the network faults (partition, latency, cut, reset) put a proxy in \
             front of each server, so the URL must name its servers as host:port"
        ));
    }
    Ok((a, b, hosts))
}

/// Checks that the URL names its servers as `host:port` (one or a comma-separated list), so
/// that a fault proxy can go in front of each.
///
/// # Errors
/// When it does not (file://, memory://, a host without a port).
pub fn check_proxyable(url: &str) -> Result<(), String> {
    host_list(url).map(|_| ())
}

/// The URL with its `host:port`s replaced by `proxies`, in order.
///
/// # Errors
/// As [`check_proxyable`], or when the counts differ.
pub fn through_proxies(url: &str, proxies: &[SocketAddr]) -> Result<String, String> {
    let (a, b, hosts) = host_list(url)?;
    if hosts.len() != proxies.len() {
        return Err(format!(
            "{}: {} servers, {} proxies",
            locksmith::mask_url(url),
            hosts.len(),
            proxies.len()
        ));
    }
    let list: Vec<String> = proxies.iter().map(SocketAddr::to_string).collect();
    Ok(format!("{}{}{}", &url[..a], list.join(","), &url[b..]))
}

/// The addresses the URL's `host:port`s name.
///
/// # Errors
/// As [`check_proxyable`], or when a host does not resolve.
pub fn targets(url: &str) -> Result<Vec<SocketAddr>, String> {
    let (_, _, hosts) = host_list(url)?;
    hosts
        .iter()
        .map(|h| {
            h.to_socket_addrs()
                .ok()
                .and_then(|mut it| it.next())
                .ok_or_else(|| format!("{}: cannot resolve {h}", locksmith::mask_url(url)))
        })
        .collect()
}

/// Starts a proxy in front of each of the URL's servers; returns them and the URL clients use.
///
/// # Errors
/// As [`targets`], or when no loopback port can be bound.
///
/// # Cancel safety
/// Cancel-safe: nothing is left behind but dropped proxies.
pub async fn proxies_for(url: &str) -> Result<(Vec<FaultProxy>, String), String> {
    let mut proxies = Vec::new();
    for addr in targets(url)? {
        proxies.push(
            FaultProxy::start(addr)
                .await
                .map_err(|e| format!("cannot start the fault proxy: {e}"))?,
        );
    }
    let addrs: Vec<SocketAddr> = proxies.iter().map(FaultProxy::addr).collect();
    let via = through_proxies(url, &addrs)?;
    Ok((proxies, via))
}

/// How much latency the `latency` fault adds to every chunk, each way.
pub fn latency_for(ttl: Duration) -> Duration {
    ttl / 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_rewritten_to_the_proxies() {
        let p: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let q: SocketAddr = "127.0.0.1:4001".parse().unwrap();
        assert_eq!(
            through_proxies("redis://127.0.0.1:6379", &[p]).unwrap(),
            "redis://127.0.0.1:4000"
        );
        assert_eq!(
            through_proxies("postgres://u:p@db.example:5432/x?sslmode=disable", &[p]).unwrap(),
            "postgres://u:p@127.0.0.1:4000/x?sslmode=disable"
        );
        assert_eq!(
            through_proxies("redlock://a:1,b:2?retry=3", &[p, q]).unwrap(),
            "redlock://127.0.0.1:4000,127.0.0.1:4001?retry=3"
        );
        assert!(through_proxies("redlock://a:1,b:2,c:3", &[p]).is_err());
        assert!(check_proxyable("file:///tmp/x").is_err());
        assert!(check_proxyable("redis://nohostport").is_err());
        assert!(check_proxyable("redlock://a:1,b").is_err());
        assert_eq!(
            targets("redis://127.0.0.1:6379/0").unwrap(),
            ["127.0.0.1:6379".parse().unwrap()]
        );
    }

    #[test]
    fn session_lengths_follow_the_ttl_unless_the_url_sets_them() {
        let s = Duration::from_secs(1);
        assert_eq!(
            follow_ttl("etcd://127.0.0.1:2379", s),
            "etcd://127.0.0.1:2379?lease_ttl=1"
        );
        assert_eq!(
            follow_ttl("etcd://h:1?lease_ttl=5", s),
            "etcd://h:1?lease_ttl=5"
        );
        assert_eq!(
            follow_ttl("etcd://h:1?x=1", Duration::from_millis(1500)),
            "etcd://h:1?x=1&lease_ttl=2"
        );
        assert_eq!(
            follow_ttl("zookeeper://h:1/app", Duration::from_millis(500)),
            "zookeeper://h:1/app?session_timeout=1"
        );
        assert_eq!(
            follow_ttl("zookeeper://h:1", Duration::from_millis(2500)),
            "zookeeper://h:1?session_timeout=2.5"
        );
        assert_eq!(follow_ttl("redis://h:1", s), "redis://h:1");
    }

    #[test]
    fn faults_on_several_nodes_take_a_minority_then_a_majority() {
        assert_eq!(pick(0, 5), [0, 1]);
        assert_eq!(pick(1, 5), [1, 2, 3]);
        assert_eq!(pick(2, 5), [2, 3]);
        assert_eq!(pick(4, 5), [4, 0]);
        assert_eq!(pick(0, 1), [0]);
        assert_eq!(pick(1, 1), [0]);
    }
}
