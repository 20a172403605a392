//! Private ZooKeeper 3.8 servers on free loopback ports, from the Debian package's jars, with
//! `forceSync=no` (no fsync of the transaction log) and `tickTime=500`: a standalone server, or
//! an ensemble of several members.

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
        let cmd = server_command(&java_and_jar(), "zookeeper", self.dir.path());
        self.process =
            super::spawn_for_process("zookeeper", cmd, Some(self.dir.path().join("zk.log")));
        wait_standalone(&mut self.process, &self.addr);
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

fn java_and_jar() -> std::path::PathBuf {
    let java = require_binary("java", "zookeeper");
    assert!(
        Path::new(ZK_JAR).exists(),
        "{ZK_JAR} is missing: install the Debian package `zookeeper` (scripts/test.sh does this) \
         — backend tests never skip a missing server"
    );
    java
}

/// The `zoo.cfg` lines every server gets (standalone or ensemble member).
fn common_cfg(data: &Path, client_port: u16) -> String {
    format!(
        "tickTime=500\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={client_port}\n\
         clientPortAddress=127.0.0.1\nadmin.enableServer=false\nforceSync=no\n\
         maxSessionTimeout=60000\nminSessionTimeout=1000\n\
         4lw.commands.whitelist=ruok,srvr,stat,mntr\n",
        data.display()
    )
}

/// The command that runs the server configured in `dir/zoo.cfg` (`name` "zookeeper": standalone).
fn server_command(java: &Path, name: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(java);
    cmd.args([
        "-Xmx256m",
        "-XX:+UseSerialGC",
        // No /tmp/hsperfdata_<user>/<pid> file: a server the tests kill could not remove it.
        "-XX:-UsePerfData",
        "-Xshare:auto",
        "-cp",
        CLASSPATH,
    ])
    .arg("-Dzookeeper.admin.enableServer=false")
    .arg(if name == "zookeeper" {
        "org.apache.zookeeper.server.ZooKeeperServerMain"
    } else {
        "org.apache.zookeeper.server.quorum.QuorumPeerMain"
    })
    .arg(dir.join("zoo.cfg"));
    cmd
}

fn spawn_server(java: &Path, name: &str, dir: &Path) -> ServerProcess {
    ServerProcess::spawn(
        name,
        server_command(java, name, dir),
        Some(dir.join("zk.log")),
    )
}

/// The `Mode:` line of a server's `srvr` answer (`standalone`, `leader`, `follower`), if it
/// answers and serves.
pub fn mode(addr: &str) -> Option<String> {
    let answer = four_letter(addr, "srvr")?;
    answer
        .lines()
        .find_map(|l| l.strip_prefix("Mode: "))
        .map(|m| m.trim().to_owned())
}

/// Starts a standalone server and waits until it answers `srvr` with `Mode: standalone`.
pub fn start_zookeeper() -> ZooKeeperServer {
    super::start_retrying("zookeeper", start_zookeeper_once)
}

fn start_zookeeper_once() -> ZooKeeperServer {
    let java = java_and_jar();
    let dir = super::temp_dir("locksmith-zk-");
    let port = free_port();
    std::fs::write(
        dir.path().join("zoo.cfg"),
        common_cfg(&dir.path().join("data"), port),
    )
    .expect("zoo.cfg");
    let mut process = spawn_server(&java, "zookeeper", dir.path());
    let addr = format!("127.0.0.1:{port}");
    wait_standalone(&mut process, &addr);
    ZooKeeperServer { addr, process, dir }
}

/// Waits until the server listens and answers `srvr` as a standalone server.
fn wait_standalone(process: &mut ServerProcess, addr: &str) {
    process.wait_for_port(addr.parse().expect("addr"), Duration::from_secs(60));
    let start = Instant::now();
    while mode(addr).as_deref() != Some("standalone") {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "zookeeper on {addr} not serving after 60 s: {}",
            process.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One member of a [`ZooKeeperEnsemble`].
#[derive(Debug)]
pub struct ZooKeeperMember {
    /// Its `myid` (1, 2, 3, …).
    pub id: usize,
    /// `127.0.0.1:PORT` of its client listener.
    pub addr: String,
    /// Its process; a killed member stays in the list with its process gone.
    pub process: ServerProcess,
}

/// A private ZooKeeper ensemble (`QuorumPeerMain` per member) in its own temporary folder,
/// each member with its own `zoo.cfg`, `myid` and client/quorum/election ports.
#[derive(Debug)]
pub struct ZooKeeperEnsemble {
    /// The members, in `myid` order.
    pub members: Vec<ZooKeeperMember>,
    _dir: tempfile::TempDir,
}

impl ZooKeeperEnsemble {
    /// `HOST:PORT,HOST:PORT,…` of every member, as ZooKeeper clients take it.
    pub fn connect_string(&self) -> String {
        let hosts: Vec<&str> = self.members.iter().map(|m| m.addr.as_str()).collect();
        hosts.join(",")
    }

    /// `zookeeper://` URL naming every member.
    pub fn url(&self) -> String {
        format!("zookeeper://{}", self.connect_string())
    }

    /// The index in [`members`](Self::members) of the current leader, if a live member says
    /// it leads.
    pub fn leader(&self) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.process.pid() != 0 && mode(&m.addr).as_deref() == Some("leader"))
    }

    /// Waits until every live member serves and exactly one of them leads; returns the
    /// leader's index. Panics after `within` (each probe has its own short timeout).
    pub fn wait_serving(&self, within: Duration) -> usize {
        let start = Instant::now();
        loop {
            let modes: Vec<Option<String>> = self
                .members
                .iter()
                .filter(|m| m.process.pid() != 0)
                .map(|m| mode(&m.addr))
                .collect();
            let leaders = modes
                .iter()
                .filter(|m| m.as_deref() == Some("leader"))
                .count();
            let followers = modes
                .iter()
                .filter(|m| m.as_deref() == Some("follower"))
                .count();
            if leaders == 1
                && leaders + followers == modes.len()
                && let Some(i) = self.leader()
            {
                return i;
            }
            assert!(
                start.elapsed() < within,
                "zookeeper ensemble {} not serving after {within:?} (modes {modes:?}): {}",
                self.connect_string(),
                self.members
                    .iter()
                    .map(|m| format!("member {}: {}", m.id, m.process.log_tail()))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Starts an ensemble of `n` members (`n` ≥ 2; use [`start_zookeeper`] for one) and waits
/// until it has a leader and every member serves.
pub fn start_zookeeper_ensemble(n: usize) -> ZooKeeperEnsemble {
    assert!(n >= 2, "an ensemble has at least two members");
    super::start_retrying("zookeeper ensemble", || start_ensemble_once(n))
}

fn start_ensemble_once(n: usize) -> ZooKeeperEnsemble {
    let java = java_and_jar();
    let dir = super::temp_dir("locksmith-zk-ensemble-");
    let ports: Vec<[u16; 3]> = (0..n)
        .map(|_| [free_port(), free_port(), free_port()])
        .collect();
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, [_, quorum, election])| {
            format!("server.{}=127.0.0.1:{quorum}:{election}\n", i + 1)
        })
        .collect();
    let mut members = Vec::new();
    for (i, [client, _, _]) in ports.iter().enumerate() {
        let id = i + 1;
        let mdir = dir.path().join(format!("m{id}"));
        let data = mdir.join("data");
        std::fs::create_dir_all(&data).expect("member folder");
        std::fs::write(data.join("myid"), format!("{id}\n")).expect("myid");
        std::fs::write(
            mdir.join("zoo.cfg"),
            format!("{}{servers}", common_cfg(&data, *client)),
        )
        .expect("zoo.cfg");
        let process = spawn_server(&java, &format!("zookeeper {id}"), &mdir);
        members.push(ZooKeeperMember {
            id,
            addr: format!("127.0.0.1:{client}"),
            process,
        });
    }
    for m in &mut members {
        let addr: SocketAddr = m.addr.parse().expect("addr");
        m.process.wait_for_port(addr, Duration::from_secs(60));
    }
    let ensemble = ZooKeeperEnsemble { members, _dir: dir };
    ensemble.wait_serving(Duration::from_secs(60));
    ensemble
}

/// A standalone server or an ensemble, as shared by a test process.
#[derive(Debug)]
enum Shared {
    Standalone(ZooKeeperServer),
    Ensemble(ZooKeeperEnsemble),
}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);

/// The URL of a server shared by everything in this test process, started on first use. Call
/// it from the main thread (the server dies with the thread that started it), and
/// [`stop_shared_zookeeper`] at the end.
pub fn shared_zookeeper_url() -> String {
    shared_zookeeper_ensemble_url(1)
}

/// As [`shared_zookeeper_url`], with `members` members (on the first call; later calls share
/// it): a standalone server for 1, an ensemble otherwise.
pub fn shared_zookeeper_ensemble_url(members: usize) -> String {
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    let shared = slot.get_or_insert_with(|| {
        // Also stopped at exit when nobody calls `stop_shared_zookeeper`.
        super::at_exit(stop_shared_zookeeper);
        if members <= 1 {
            Shared::Standalone(start_zookeeper())
        } else {
            Shared::Ensemble(start_zookeeper_ensemble(members))
        }
    });
    match shared {
        Shared::Standalone(s) => s.url(),
        Shared::Ensemble(e) => e.url(),
    }
}

/// Stops the shared server or ensemble, if started, and removes its folder.
pub fn stop_shared_zookeeper() {
    let s = SHARED.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(s);
}
