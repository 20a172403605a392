//! A private MariaDB server per test process: `mariadb-install-db` in a temporary folder,
//! `mariadbd` on a free loopback port, `root` without a password, no binary log, and a
//! database `locksmith`. Stopped and removed when the process exits.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

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
}

static SERVER: OnceLock<MariaDb> = OnceLock::new();
static PROCESS: Mutex<Option<(ServerProcess, tempfile::TempDir)>> = Mutex::new(None);

/// The server of this test process, started on first use.
///
/// # Panics
/// When MariaDB is not installed (naming the Debian package) or does not start.
pub fn mariadb() -> &'static MariaDb {
    SERVER.get_or_init(start)
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

fn start() -> MariaDb {
    let install = require_binary("mariadb-install-db", "mariadb-server");
    let server = require_binary("mariadbd", "mariadb-server");
    let base = super::temp_dir("locksmith-mariadb-");
    let dir = base.path().to_path_buf();
    let out = Command::new(install)
        .args([
            "--no-defaults",
            "--user=root",
            "--auth-root-authentication-method=normal",
        ])
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg("--skip-test-db")
        .output()
        .expect("run mariadb-install-db");
    assert!(
        out.status.success(),
        "mariadb-install-db failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let port = free_port();
    let mut cmd = Command::new(server);
    cmd.args([
        "--no-defaults",
        "--user=root",
        "--bind-address=127.0.0.1",
        "--skip-log-bin",
    ])
    .arg(format!("--datadir={}", dir.join("data").display()))
    .arg(format!("--port={port}"))
    .arg(format!("--socket={}", dir.join("sock").display()))
    .arg(format!("--pid-file={}", dir.join("pid").display()))
    .arg(format!("--log-error={}", dir.join("err.log").display()))
    .args([
        "--max-connections=200",
        "--innodb-flush-log-at-trx-commit=0",
    ]);
    let mut proc = spawn_for_process("mariadbd", cmd, None);
    proc.wait_for_port(([127, 0, 0, 1], port).into(), Duration::from_secs(60));
    let db = MariaDb {
        url: format!("mysql://root@127.0.0.1:{port}/locksmith?prefer_socket=false"),
        port,
        dir,
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
    *PROCESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((proc, base));
    at_exit(stop);
    db
}

fn stop() {
    let taken = PROCESS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some((mut proc, dir)) = taken {
        proc.kill();
        drop(dir);
    }
}
