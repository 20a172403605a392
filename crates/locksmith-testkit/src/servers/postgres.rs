//! A private PostgreSQL 15 cluster per test process: `initdb` in a temporary folder, the
//! server on a free loopback port, trust authentication for `postgres`, `fsync=off`.
//! As root, both run as the `postgres` user (they refuse root). Stopped and removed when the
//! process exits. [`postgres_tls`] starts a second cluster with `ssl=on` and a certificate
//! signed by a throwaway CA ([`make_server_certs`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::tls::{CertFiles, make_server_certs};
use super::{ServerProcess, at_exit, free_port, is_root, require_binary, spawn_for_process};

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running private cluster.
#[derive(Debug)]
pub struct Postgres {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    /// The TCP port.
    pub port: u16,
    /// The cluster's base folder (the socket folder too).
    pub dir: PathBuf,
    /// For a cluster with TLS on: its CA (what clients trust), certificate and key.
    pub tls: Option<CertFiles>,
}

type Running = Mutex<Option<(ServerProcess, tempfile::TempDir)>>;

static SERVER: OnceLock<Postgres> = OnceLock::new();
static PROCESS: Running = Mutex::new(None);
static TLS_SERVER: OnceLock<Postgres> = OnceLock::new();
static TLS_PROCESS: Running = Mutex::new(None);

/// The cluster of this test process, started on first use.
///
/// # Panics
/// When PostgreSQL 15 is not installed (naming the Debian package) or does not start.
pub fn postgres() -> &'static Postgres {
    SERVER.get_or_init(|| start(false))
}

/// A second cluster of this test process with TLS on (`ssl=on`; plain connections are still
/// accepted), started on first use. Its certificate names `127.0.0.1` and `localhost` and is
/// signed by the CA in [`Postgres::tls`], which it also trusts for client certificates
/// (`ssl_ca_file`; `pg_hba.conf` asks for none).
///
/// # Panics
/// As [`postgres`], and when `openssl` is missing.
pub fn postgres_tls() -> &'static Postgres {
    TLS_SERVER.get_or_init(|| start(true))
}

/// The path of a PostgreSQL client program (`psql`, `pg_isready`).
pub fn client_binary(name: &str) -> PathBuf {
    require_binary(&format!("{BIN}/{name}"), "postgresql")
}

fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ]);
        c.arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn start(tls: bool) -> Postgres {
    let initdb = require_binary(&format!("{BIN}/initdb"), "postgresql");
    let base = super::temp_dir("locksmith-pg-");
    let dir = base.path().to_path_buf();
    if is_root() {
        let st = Command::new("chown")
            .args(["postgres:postgres"])
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(st.success(), "chown the cluster folder to postgres");
    }
    let out = as_postgres(&initdb)
        .arg("-D")
        .arg(dir.join("data"))
        .args([
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ])
        .output()
        .expect("run initdb");
    assert!(
        out.status.success(),
        "initdb failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let certs = tls.then(|| enable_tls(&dir));
    let port = free_port();
    let proc = spawn_server(&dir, port);
    let slot = if tls { &TLS_PROCESS } else { &PROCESS };
    *slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((proc, base));
    at_exit(if tls { stop_tls } else { stop });
    Postgres {
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        port,
        dir,
        tls: certs,
    }
}

/// Makes a CA and a server certificate in `dir/certs` and turns TLS on in the cluster's
/// configuration. The server refuses a key that others may read or that it does not own.
fn enable_tls(dir: &Path) -> CertFiles {
    use std::os::unix::fs::PermissionsExt;
    let certs_dir = dir.join("certs");
    std::fs::create_dir_all(&certs_dir).expect("certs folder");
    std::fs::set_permissions(&certs_dir, std::fs::Permissions::from_mode(0o755))
        .expect("chmod certs folder");
    let certs = make_server_certs(&certs_dir);
    std::fs::set_permissions(&certs.key, std::fs::Permissions::from_mode(0o600))
        .expect("chmod server key");
    if is_root() {
        let st = Command::new("chown")
            .arg("postgres:postgres")
            .arg(&certs.key)
            .arg(&certs.cert)
            .status()
            .expect("chown");
        assert!(st.success(), "chown the server key to postgres");
    }
    let conf = dir.join("data").join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).expect("read postgresql.conf");
    text.push_str(&format!(
        "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'\n",
        certs.cert.display(),
        certs.key.display(),
        certs.ca.display()
    ));
    std::fs::write(&conf, text).expect("write postgresql.conf");
    certs
}

/// Starts the server on `port` over the cluster in `dir` and waits until it accepts queries.
fn spawn_server(dir: &Path, port: u16) -> ServerProcess {
    let server = require_binary(&format!("{BIN}/postgres"), "postgresql");
    let mut cmd = as_postgres(&server);
    cmd.arg("-D")
        .arg(dir.join("data"))
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(dir)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "max_connections=100",
            // Dynamic shared memory in the data folder, not /dev/shm: a server killed with
            // its test process would otherwise leave its segments in memory.
            "-c",
            "dynamic_shared_memory_type=mmap",
        ]);
    let log = dir.join("postgres.log");
    let mut proc = spawn_for_process("postgres", cmd, Some(log));
    proc.wait_for_port(([127, 0, 0, 1], port).into(), Duration::from_secs(30));
    let ready = client_binary("pg_isready");
    let start = Instant::now();
    loop {
        let ok = Command::new(&ready)
            .args([
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
                &port.to_string(),
            ])
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "postgres not ready: {}",
            proc.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    proc
}

/// Crashes the cluster of this test process (an immediate shutdown, `SIGQUIT`: every session
/// ends, no checkpoint, so the next start replays the write-ahead log as after a crash),
/// waits `down`, and starts it again on the same port and data folder. What was committed
/// survives (`fsync=off` skips only the flush to disk, which a process crash does not need).
///
/// # Panics
/// When the cluster was not started ([`postgres`]) or does not come back.
pub fn crash_and_restart(down: Duration) {
    let pg = SERVER.get().expect("postgres() was not started");
    let mut slot = PROCESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (proc, _) = slot.as_mut().expect("the postgres cluster is running");
    // The postmaster takes its backends down with it before exiting; a new one refuses to
    // start while an old backend still holds the shared memory.
    proc.kill_with(libc::SIGQUIT, Duration::from_secs(10));
    std::thread::sleep(down);
    *proc = spawn_server(&pg.dir, pg.port);
}

fn stop() {
    stop_one(&PROCESS);
}

fn stop_tls() {
    stop_one(&TLS_PROCESS);
}

fn stop_one(running: &Running) {
    let taken = running
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some((mut proc, dir)) = taken {
        // Immediate shutdown: this process's own connections may still be open.
        proc.signal(libc::SIGQUIT);
        proc.kill();
        drop(dir);
    }
}

/// Runs `psql` against the cluster with `args`, returning its standard output.
///
/// # Panics
/// When psql cannot be started.
pub fn psql_command(pg: &Postgres) -> Command {
    let mut c = Command::new(client_binary("psql"));
    c.args([
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-p",
    ])
    .arg(pg.port.to_string());
    c
}
