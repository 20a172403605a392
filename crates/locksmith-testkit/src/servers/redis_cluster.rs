//! A private Redis Cluster (Debian packages `redis-server` and `redis-tools`): N masters without
//! replicas on free loopback ports, each in its own folder without persistence, joined with
//! `redis-cli --cluster create`. Each node also needs its cluster bus port (port + 10000) free.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{ServerProcess, require_binary, temp_dir};

/// One node of a [`RedisCluster`].
#[derive(Debug)]
pub struct ClusterNode {
    process: ServerProcess,
    port: u16,
    dir: tempfile::TempDir,
}

impl ClusterNode {
    /// Its client port on 127.0.0.1 (the cluster bus is on port + 10000).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server process, to signal it.
    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }
}

/// A private Redis Cluster of masters, stopped when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    extra: Vec<String>,
    /// What `redis-cli` needs to talk to the nodes (password, TLS).
    cli_extra: Vec<String>,
    /// TLS material shared by every node (one certificate for 127.0.0.1).
    _certs: Option<tempfile::TempDir>,
}

/// How a [`RedisCluster`] is protected.
#[derive(Debug, Default, Clone)]
pub struct Security {
    /// `requirepass` (and `masterauth`) on every node.
    pub password: Option<String>,
    /// TLS only, on clients and on the cluster bus.
    pub tls: bool,
}

/// A free port P on 127.0.0.1 whose cluster bus port P + 10000 is free too.
fn free_cluster_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("no free loopback port");
        let port = l.local_addr().expect("local addr").port();
        if port > 55_535 {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

fn node_args(extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "1000",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().cloned());
    args
}

fn spawn_node(port: u16, dir: &Path, extra: &[String]) -> ServerProcess {
    let mut args = node_args(extra);
    // The bus port is named: with TLS the client port is `--tls-port` and `--port` is 0.
    args.extend(["--cluster-port".to_owned(), (port + 10_000).to_string()]);
    if args.iter().any(|a| a == "--tls-cluster") {
        args.extend(["--port".to_owned(), "0".to_owned()]);
        args.extend(["--tls-port".to_owned(), port.to_string()]);
    }
    super::redis::spawn(port, dir.to_path_buf(), &args)
}

/// Starts one node on free ports (again on new ones if a parallel test took a port first).
fn start_node(extra: &[String]) -> ClusterNode {
    super::start_retrying("a Redis Cluster node", || {
        let dir = temp_dir("locksmith-redis-cluster-");
        let port = free_cluster_port();
        let process = spawn_node(port, dir.path(), extra);
        ClusterNode { process, port, dir }
    })
}

/// Runs `redis-cli -p PORT ARGS…` and returns its output; panics naming the command on failure.
pub fn cli(port: u16, args: &[&str]) -> String {
    cli_with(port, &[], args)
}

fn cli_with(port: u16, extra: &[String], args: &[&str]) -> String {
    let bin = require_binary("redis-cli", "redis-tools");
    let out = Command::new(bin)
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(extra)
        .args(args)
        .output()
        .expect("run redis-cli");
    assert!(
        out.status.success(),
        "redis-cli -p {port} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl RedisCluster {
    /// Starts `masters` masters (3 or more) and joins them into one cluster, with extra
    /// `redis-server` arguments for every node (e.g. `--cluster-require-full-coverage no`).
    /// Returns once every node reports `cluster_state:ok`.
    pub fn start(masters: usize, extra: &[&str]) -> Self {
        Self::start_secured(masters, extra, &Security::default()).0
    }

    /// As [`RedisCluster::start`], with a password and/or TLS on every node. Returns the
    /// cluster and, with TLS, the CA's PEM file (`rediss+cluster://…?tls_ca=CA`).
    pub fn start_secured(
        masters: usize,
        extra: &[&str],
        security: &Security,
    ) -> (Self, Option<std::path::PathBuf>) {
        assert!(masters >= 3, "Redis Cluster needs at least 3 masters");
        let mut extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let mut cli_extra = Vec::new();
        if let Some(pw) = &security.password {
            extra.extend(["--requirepass", pw, "--masterauth", pw].map(str::to_owned));
            cli_extra.extend(["-a", pw, "--no-auth-warning"].map(str::to_owned));
        }
        let certs_dir = security
            .tls
            .then(|| temp_dir("locksmith-redis-cluster-tls-"));
        let mut ca = None;
        if let Some(dir) = &certs_dir {
            let certs = super::tls::make_server_certs(dir.path());
            let path = |p: &std::path::PathBuf| p.to_string_lossy().into_owned();
            extra.extend([
                "--tls-cluster".to_owned(),
                "yes".to_owned(),
                "--tls-cert-file".to_owned(),
                path(&certs.cert),
                "--tls-key-file".to_owned(),
                path(&certs.key),
                "--tls-ca-cert-file".to_owned(),
                path(&certs.ca),
                "--tls-auth-clients".to_owned(),
                "no".to_owned(),
            ]);
            cli_extra.extend(["--tls".to_owned(), "--cacert".to_owned(), path(&certs.ca)]);
            ca = Some(certs.ca);
        }
        let nodes: Vec<ClusterNode> = (0..masters).map(|_| start_node(&extra)).collect();
        let mut args = vec!["--cluster".to_owned(), "create".to_owned()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"].map(str::to_owned));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli_with(nodes[0].port, &cli_extra, &args);
        let cluster = Self {
            nodes,
            extra,
            cli_extra,
            _certs: certs_dir,
        };
        cluster.wait_ok(Duration::from_secs(30));
        (cluster, ca)
    }

    /// Runs `redis-cli` against node `port` with this cluster's password and TLS settings.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        cli_with(port, &self.cli_extra, args)
    }

    /// The nodes, in start order.
    pub fn nodes(&mut self) -> &mut [ClusterNode] {
        &mut self.nodes
    }

    /// The client ports of the nodes, in start order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// `SCHEME://127.0.0.1:P1,127.0.0.1:P2,…` over every node (e.g. `redis+cluster`).
    pub fn url(&self, scheme: &str) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("{scheme}://{}", hosts.join(","))
    }

    /// Panics unless every running node reports `cluster_state:ok` within `within`.
    pub fn wait_ok(&self, within: Duration) {
        let start = Instant::now();
        for n in &self.nodes {
            loop {
                let info = self.cli(n.port, &["cluster", "info"]);
                if info.lines().any(|l| l.trim() == "cluster_state:ok") {
                    break;
                }
                assert!(
                    start.elapsed() < within,
                    "Redis Cluster node {} not ok after {within:?}:\n{info}",
                    n.port
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// The cluster node id of node `i`.
    pub fn node_id(&self, i: usize) -> String {
        self.cli(self.nodes[i].port, &["cluster", "myid"])
            .trim()
            .to_owned()
    }

    /// The index of the node that serves `slot`, as node `ask` sees it.
    pub fn owner_of_slot(&self, slot: u16, ask: usize) -> usize {
        let nodes = self.cli(self.nodes[ask].port, &["cluster", "nodes"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(addr) = fields.get(1) else { continue };
            let port: Option<u16> = addr
                .split('@')
                .next()
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| p.parse().ok());
            let serves = fields.iter().skip(8).any(|range| {
                let mut ends = range.splitn(2, '-');
                let lo = ends.next().and_then(|s| s.parse::<u16>().ok());
                let hi = ends.next().and_then(|s| s.parse::<u16>().ok()).or(lo);
                matches!((lo, hi), (Some(lo), Some(hi)) if (lo..=hi).contains(&slot))
            });
            if serves && let Some(i) = self.nodes.iter().position(|n| Some(n.port) == port) {
                return i;
            }
        }
        panic!("no node serves slot {slot}:\n{nodes}");
    }

    /// The slot of `key`, as node 0 computes it (`CLUSTER KEYSLOT`).
    pub fn keyslot(&self, key: &str) -> u16 {
        self.cli(self.nodes[0].port, &["cluster", "keyslot", key])
            .trim()
            .parse()
            .expect("CLUSTER KEYSLOT answers a number")
    }

    /// Starts moving `slot` from node `from` to node `to`: `IMPORTING` on `to`, `MIGRATING` on
    /// `from`. Until [`RedisCluster::finish_migration`], keys that are no longer on `from`
    /// are answered with `ASK` redirections.
    pub fn begin_migration(&self, slot: u16, from: usize, to: usize) {
        let (s, from_id, to_id) = (slot.to_string(), self.node_id(from), self.node_id(to));
        self.cli(
            self.nodes[to].port,
            &["cluster", "setslot", &s, "importing", &from_id],
        );
        self.cli(
            self.nodes[from].port,
            &["cluster", "setslot", &s, "migrating", &to_id],
        );
    }

    /// Moves every key of `slot` from node `from` to node `to` (`MIGRATE`).
    pub fn move_keys(&self, slot: u16, from: usize, to: usize) {
        let s = slot.to_string();
        let keys = self.cli(
            self.nodes[from].port,
            &["--raw", "cluster", "getkeysinslot", &s, "100000"],
        );
        let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
        if keys.is_empty() {
            return;
        }
        let to_port = self.nodes[to].port.to_string();
        let mut args = vec![
            "migrate",
            "127.0.0.1",
            to_port.as_str(),
            "",
            "0",
            "5000",
            "KEYS",
        ];
        args.extend(keys);
        self.cli(self.nodes[from].port, &args);
    }

    /// Ends a migration: `slot` belongs to node `to`, told to every node.
    pub fn finish_migration(&self, slot: u16, to: usize) {
        let (s, to_id) = (slot.to_string(), self.node_id(to));
        for n in &self.nodes {
            self.cli(n.port, &["cluster", "setslot", &s, "node", &to_id]);
        }
    }

    /// Kills node `i` (SIGKILL); nothing it held was persisted.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].process.kill();
    }

    /// Starts node `i` again on its port and folder after [`RedisCluster::kill`]: it rejoins
    /// with its `nodes.conf` as master of its slots, **empty** (a new `run_id`).
    pub fn restart_empty(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        n.process.kill();
        n.process = spawn_node(n.port, n.dir.path(), &self.extra);
    }
}

/// The 3-master cluster of this test process, started on first use.
pub fn shared() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let cluster = RedisCluster::start(3, &[]);
        // Kept for the whole process, never dropped: the folders go when it exits.
        for n in &cluster.nodes {
            super::remove_at_exit(n.dir.path().to_path_buf());
        }
        if let Some(certs) = &cluster._certs {
            super::remove_at_exit(certs.path().to_path_buf());
        }
        cluster
    })
}
