//! Private `redis-server` instances (Debian package `redis-server`) on free loopback ports,
//! without persistence, for the Redis and Redlock backends' tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

use super::{ServerProcess, free_port, require_binary, temp_dir};

/// One private Redis server.
#[derive(Debug)]
pub struct RedisServer {
    process: ServerProcess,
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl RedisServer {
    /// For a server kept in a static for the whole process (never dropped): its folder is
    /// removed when the process exits.
    fn kept_for_process(self) -> Self {
        super::remove_at_exit(self.dir.path().to_path_buf());
        self
    }

    /// Starts a server on a free port.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server on a free port with extra `redis-server` arguments
    /// (e.g. `["--requirepass", "pw"]`).
    pub fn start_with(extra: &[&str]) -> Self {
        let dir = temp_dir("locksmith-redis-");
        let port = free_port();
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let process = spawn(port, dir.path().to_path_buf(), &extra);
        Self {
            process,
            port,
            dir,
            extra,
        }
    }

    /// Starts a server that speaks only TLS, with a certificate for 127.0.0.1 signed by a CA
    /// made for it (with `openssl`, Debian package `openssl`). Returns the server and the
    /// CA's PEM file; the URL is `rediss://127.0.0.1:PORT`.
    pub fn start_tls() -> (Self, PathBuf) {
        let dir = temp_dir("locksmith-redis-tls-");
        let certs = super::tls::make_server_certs(dir.path());
        let path = |p: &PathBuf| p.to_string_lossy().into_owned();
        let port = free_port();
        let extra: Vec<String> = [
            "--port".to_owned(),
            "0".to_owned(),
            "--tls-port".to_owned(),
            port.to_string(),
            "--tls-cert-file".to_owned(),
            path(&certs.cert),
            "--tls-key-file".to_owned(),
            path(&certs.key),
            "--tls-ca-cert-file".to_owned(),
            path(&certs.ca),
            "--tls-auth-clients".to_owned(),
            "no".to_owned(),
        ]
        .into();
        let process = spawn_with(port, dir.path().to_path_buf(), &extra, false);
        let ca = certs.ca;
        (
            Self {
                process,
                port,
                dir,
                extra,
            },
            ca,
        )
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server process, to signal or kill it.
    pub fn process(&mut self) -> &mut ServerProcess {
        &mut self.process
    }

    /// Kills the server (SIGKILL): every key is lost, since nothing is persisted.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts the server again, empty, on the same port (after [`RedisServer::kill`]).
    pub fn restart(&mut self) {
        self.process.kill();
        self.process = spawn(self.port, self.dir.path().to_path_buf(), &self.extra);
    }
}

/// Spawns from one thread that lives as long as the process: the kernel's parent-death signal
/// follows the thread that forked, and test threads end before the process does.
pub(super) fn spawn(port: u16, dir: PathBuf, extra: &[String]) -> ServerProcess {
    spawn_with(port, dir, extra, true)
}

fn spawn_with(port: u16, dir: PathBuf, extra: &[String], plain_port: bool) -> ServerProcess {
    type Job = Box<dyn FnOnce() + Send>;
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("redis-server spawner".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
                // Keep the thread (and so the servers) alive until the process exits.
                loop {
                    std::thread::park();
                }
            })
            .expect("spawner thread");
        Mutex::new(tx)
    });
    let (done_tx, done_rx) = mpsc::channel();
    let extra = extra.to_vec();
    let job: Job = Box::new(move || {
        let outcome = std::panic::catch_unwind(move || spawn_here(port, dir, &extra, plain_port));
        let _ = done_tx.send(outcome);
    });
    spawner
        .lock()
        .expect("spawner")
        .send(job)
        .expect("spawner alive");
    match done_rx.recv().expect("spawner answers") {
        Ok(process) => process,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn spawn_here(port: u16, dir: PathBuf, extra: &[String], plain_port: bool) -> ServerProcess {
    let bin = require_binary("redis-server", "redis-server");
    let log = dir.join("redis.log");
    let mut cmd = Command::new(bin);
    if plain_port {
        cmd.args(["--port", &port.to_string()]);
    }
    cmd.args(["--bind", "127.0.0.1"])
        .arg("--dir")
        .arg(&dir)
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--logfile")
        .arg(&log)
        .args(extra);
    let mut process = ServerProcess::spawn("redis-server", cmd, None);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    process.wait_for_port(addr, Duration::from_secs(20));
    process
}

/// The one Redis server of this test process, started on first use.
pub fn shared() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| RedisServer::start().kept_for_process())
}

/// Five independent Redis servers of this test process (for Redlock), started on first use.
pub fn shared_five() -> &'static [RedisServer] {
    static SERVERS: OnceLock<Vec<RedisServer>> = OnceLock::new();
    SERVERS.get_or_init(|| {
        (0..5)
            .map(|_| RedisServer::start().kept_for_process())
            .collect()
    })
}
