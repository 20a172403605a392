//! A private MariaDB server per test process: `mariadb-install-db` in a temporary folder,
//! `mariadbd` on a free loopback port, `root` without a password, no binary log, and a
//! database `locksmith`. Stopped and removed when the process exits. [`mariadb_tls`] starts a
//! second server with TLS on and a certificate signed by a throwaway CA
//! ([`make_server_certs`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::tls::{CertFiles, make_server_certs};
use super::{ServerProcess, at_exit, free_port, require_binary, spawn_for_process};

/// A running private server.
#[derive(Debug)]
pub struct MariaDb {
    /// `mysql://root@127.0.0.1:PORT/locksmith?prefer_socket=false`.
    pub url: String,
    /// The TCP port.
    pub port: u16,
    /// The server's base folder.
    pub dir: PathBuf,
    /// For a server with TLS on: its CA (what clients trust), certificate and key.
    pub tls: Option<CertFiles>,
}

type Running = Mutex<Option<(ServerProcess, tempfile::TempDir)>>;

static SERVER: OnceLock<MariaDb> = OnceLock::new();
static PROCESS: Running = Mutex::new(None);
static TLS_SERVER: OnceLock<MariaDb> = OnceLock::new();
static TLS_PROCESS: Running = Mutex::new(None);

/// The server of this test process, started on first use.
///
/// # Panics
/// When MariaDB is not installed (naming the Debian package) or does not start.
pub fn mariadb() -> &'static MariaDb {
    SERVER.get_or_init(|| start(false))
}

/// A second server of this test process with TLS on (plain connections are still accepted),
/// started on first use. Its certificate names `127.0.0.1` and `localhost` and is signed by
/// the CA in [`MariaDb::tls`].
///
/// # Panics
/// As [`mariadb`], and when `openssl` is missing.
pub fn mariadb_tls() -> &'static MariaDb {
    TLS_SERVER.get_or_init(|| start(true))
}

/// A `mariadb` client command connected to the server as root (add `-e SQL` or stdin).
pub fn client_command(db: &MariaDb) -> Command {
    let mut c = Command::new(require_binary("mariadb", "mariadb-client"));
    c.args([
        "--no-defaults",
        "-h",
        "127.0.0.1",
        "-u",
        "root",
        "-N",
        "-B",
        "-P",
    ])
    .arg(db.port.to_string());
    c
}

/// Runs `statement` with the `mariadb` client as root and returns what it printed, trimmed
/// (no column headers); panics with the client's error when the statement fails.
pub fn client_sql(db: &MariaDb, statement: &str) -> String {
    let out = client_command(db)
        .args(["-e", statement])
        .output()
        .expect("mariadb client");
    assert!(
        out.status.success(),
        "{statement}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn start(tls: bool) -> MariaDb {
    let install = require_binary("mariadb-install-db", "mariadb-server");
    let base = super::temp_dir("locksmith-mariadb-");
    let dir = base.path().to_path_buf();
    // A private tmpdir: a starting server deletes `#sql*` files in its tmpdir, so servers that
    // share /tmp break each other's bootstrap ("Unknown table 'mysql.tmp_user_sys'").
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).expect("mariadb tmpdir");
    let out = Command::new(install)
        .args([
            "--no-defaults",
            "--user=root",
            "--auth-root-authentication-method=normal",
        ])
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--tmpdir={}", tmp.display()))
        .arg("--skip-test-db")
        .output()
        .expect("run mariadb-install-db");
    assert!(
        out.status.success(),
        "mariadb-install-db failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let certs = tls.then(|| {
        let certs_dir = dir.join("certs");
        std::fs::create_dir_all(&certs_dir).expect("certs folder");
        make_server_certs(&certs_dir)
    });
    let port = free_port();
    let proc = spawn_server(&dir, port, certs.as_ref());
    let db = MariaDb {
        url: format!("mysql://root@127.0.0.1:{port}/locksmith?prefer_socket=false"),
        port,
        dir,
        tls: certs,
    };
    let started = Instant::now();
    loop {
        let out = client_command(&db)
            .args(["-e", "CREATE DATABASE IF NOT EXISTS locksmith"])
            .output()
            .expect("run the mariadb client");
        if out.status.success() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "mariadb not ready: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(db.dir.join("err.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let slot = if tls { &TLS_PROCESS } else { &PROCESS };
    *slot
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((proc, base));
    at_exit(if tls { stop_tls } else { stop });
    db
}

/// Starts `mariadbd` on `port` over the data in `dir` (with TLS when `tls` is given) and
/// waits for the port.
fn spawn_server(dir: &Path, port: u16, tls: Option<&CertFiles>) -> ServerProcess {
    let server = require_binary("mariadbd", "mariadb-server");
    let mut cmd = Command::new(server);
    cmd.args([
        "--no-defaults",
        "--user=root",
        "--bind-address=127.0.0.1",
        "--skip-log-bin",
    ])
    .arg(format!("--datadir={}", dir.join("data").display()))
    .arg(format!("--tmpdir={}", dir.join("tmp").display()))
    .arg(format!("--port={port}"))
    .arg(format!("--socket={}", dir.join("sock").display()))
    .arg(format!("--pid-file={}", dir.join("pid").display()))
    .arg(format!("--log-error={}", dir.join("err.log").display()))
    // 2: the log is written (not flushed) at each commit, so a killed server keeps every
    // committed transaction (0 loses up to a second of them); only an OS crash could.
    .args([
        "--max-connections=200",
        "--innodb-flush-log-at-trx-commit=2",
    ]);
    if let Some(t) = tls {
        cmd.arg(format!("--ssl-cert={}", t.cert.display()))
            .arg(format!("--ssl-key={}", t.key.display()))
            .arg(format!("--ssl-ca={}", t.ca.display()));
    }
    let mut proc = spawn_for_process("mariadbd", cmd, None);
    proc.wait_for_port(([127, 0, 0, 1], port).into(), Duration::from_secs(60));
    proc
}

/// Kills the server of this test process (SIGKILL: every session ends, as in a crash), waits
/// `down`, and starts it again on the same port and data folder (InnoDB recovers what was
/// committed).
///
/// # Panics
/// When the server was not started ([`mariadb`]) or does not come back.
pub fn crash_and_restart(down: Duration) {
    let db = SERVER.get().expect("mariadb() was not started");
    let mut slot = PROCESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let (proc, _) = slot.as_mut().expect("the mariadb server is running");
    proc.kill();
    std::thread::sleep(down);
    *proc = spawn_server(&db.dir, db.port, db.tls.as_ref());
    let started = Instant::now();
    while !client_command(db)
        .args(["-e", "SELECT 1"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "mariadb not back after a restart: {}",
            std::fs::read_to_string(db.dir.join("err.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
        proc.kill();
        drop(dir);
    }
}
