//! A private ZooKeeper 3.8 server (standalone) on a free loopback port, from the Debian
//! package's jars, with `forceSync=no` (no fsync of the transaction log) and `tickTime=500`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{ServerProcess, free_port, require_binary};

const ZK_JAR: &str = "/usr/share/java/zookeeper.jar";
const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:\
/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar";

/// A running ZooKeeper server in its own temporary folder.
#[derive(Debug)]
pub struct ZooKeeperServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The server process.
    pub process: ServerProcess,
    dir: tempfile::TempDir,
}

impl ZooKeeperServer {
    /// `zookeeper://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("zookeeper://{}", self.addr)
    }

    /// Kills the server (SIGKILL), waits `down`, and starts it again over its data folder on
    /// the same port; returns once it serves. Its transaction log is written before each
    /// reply (`forceSync=no` skips only the flush to disk), so nodes, sessions and zxids
    /// survive; sessions get a fresh timeout to reconnect in. The server is started from a
    /// thread that lives as long as this process, so any thread may call this.
    ///
    /// # Panics
    /// When the server does not come back within 60 s.
    pub fn restart(&mut self, down: Duration) {
        self.process.kill();
        std::thread::sleep(down);
        let cmd = server_command(&self.dir.path().join("zoo.cfg"));
        self.process =
            super::spawn_for_process("zookeeper", cmd, Some(self.dir.path().join("zk.log")));
        wait_serving(&mut self.process, &self.addr);
    }
}

fn server_command(cfg: &Path) -> Command {
    let java = require_binary("java", "zookeeper");
    let mut cmd = Command::new(java);
    cmd.args([
        "-Xmx256m",
        "-XX:+UseSerialGC",
        "-Xshare:auto",
        "-cp",
        CLASSPATH,
    ])
    .arg("-Dzookeeper.admin.enableServer=false")
    .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
    .arg(cfg);
    cmd
}

/// Waits until the server listens and answers `srvr` as a standalone server.
fn wait_serving(process: &mut ServerProcess, addr: &str) {
    process.wait_for_port(addr.parse().expect("addr"), Duration::from_secs(60));
    let start = Instant::now();
    loop {
        let ok = four_letter(addr, "srvr").is_some_and(|a| a.contains("Mode: standalone"));
        if ok {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "zookeeper on {addr} not serving after 60 s: {}",
            process.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends a four-letter word and returns the answer; every step has a timeout (a server that
/// is still loading can keep the socket open without answering).
pub fn four_letter(addr: &str, word: &str) -> Option<String> {
    let addr: SocketAddr = addr.parse().ok()?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(1000))).ok()?;
    s.set_write_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// Starts a standalone server and waits until it answers `ruok` with `imok` and serves.
pub fn start_zookeeper() -> ZooKeeperServer {
    require_binary("java", "zookeeper");
    assert!(
        Path::new(ZK_JAR).exists(),
        "{ZK_JAR} is missing: install the Debian package `zookeeper` (scripts/test.sh does this) \
         — backend tests never skip a missing server"
    );
    let dir = super::temp_dir("locksmith-zk-");
    let port = free_port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={port}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\nforceSync=no\n\
             maxSessionTimeout=60000\nminSessionTimeout=1000\n\
             4lw.commands.whitelist=ruok,srvr,stat,mntr\n",
            dir.path().join("data").display()
        ),
    )
    .expect("zoo.cfg");
    let mut process = ServerProcess::spawn(
        "zookeeper",
        server_command(&cfg),
        Some(dir.path().join("zk.log")),
    );
    let addr = format!("127.0.0.1:{port}");
    wait_serving(&mut process, &addr);
    ZooKeeperServer { addr, process, dir }
}

static SHARED: Mutex<Option<ZooKeeperServer>> = Mutex::new(None);

/// The URL of a server shared by everything in this test process, started on first use. Call
/// it from the main thread (the server dies with the thread that started it), and
/// [`stop_shared_zookeeper`] at the end.
pub fn shared_zookeeper_url() -> String {
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert_with(start_zookeeper).url()
}

/// Stops the shared server, if started, and removes its folder.
pub fn stop_shared_zookeeper() {
    let s = SHARED.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(s);
}
