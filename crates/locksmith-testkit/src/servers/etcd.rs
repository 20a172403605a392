//! Private etcd servers: one node, or a cluster of three, on free loopback ports.
//!
//! etcd 3.4 has no switch to turn fsync off; the data folders go to `/dev/shm` (tmpfs) when it
//! exists, so fsync is cheap there. Elections are fast (`--heartbeat-interval=10
//! --election-timeout=100`), so a killed leader is replaced within a fraction of a second.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{ServerProcess, free_port, require_binary, spawn_for_process};

/// One etcd member.
#[derive(Debug)]
pub struct EtcdMember {
    /// Member name (`n0`, `n1`, …).
    pub name: String,
    /// `127.0.0.1:PORT` of its client listener.
    pub client_addr: String,
    /// Its process.
    pub process: ServerProcess,
}

/// A private etcd cluster (one member or several) in its own temporary folder.
#[derive(Debug)]
pub struct EtcdCluster {
    /// The members; a killed one stays in the list with its process gone.
    pub members: Vec<EtcdMember>,
    /// How each member was started (program, arguments, log file), to start it again.
    commands: Vec<(PathBuf, Vec<OsString>, PathBuf)>,
    _dir: tempfile::TempDir,
}

impl EtcdCluster {
    /// `etcd://` URL naming every member (extra options appended by the caller).
    pub fn url(&self) -> String {
        let hosts: Vec<&str> = self
            .members
            .iter()
            .map(|m| m.client_addr.as_str())
            .collect();
        format!("etcd://{}", hosts.join(","))
    }

    /// Kills member `i` (SIGKILL), waits `down`, and starts it again over its data folder on
    /// the same ports (its leases, keys and revision survive: etcd syncs its log before
    /// answering), then waits until the cluster is healthy. The member is started from a
    /// thread that lives as long as this process, so any thread may call this.
    ///
    /// # Panics
    /// When the member does not come back within 30 s.
    pub fn restart_member(&mut self, i: usize, down: Duration) {
        self.members[i].process.kill();
        std::thread::sleep(down);
        let (program, args, log) = &self.commands[i];
        let mut cmd = Command::new(program);
        cmd.args(args);
        let m = &mut self.members[i];
        m.process = spawn_for_process(&format!("etcd {}", m.name), cmd, Some(log.clone()));
        let addr: SocketAddr = m.client_addr.parse().expect("addr");
        m.process.wait_for_port(addr, Duration::from_secs(30));
        wait_healthy(&self.endpoints(), Duration::from_secs(30));
    }

    /// `--endpoints` value for `etcdctl`.
    pub fn endpoints(&self) -> String {
        let hosts: Vec<&str> = self
            .members
            .iter()
            .map(|m| m.client_addr.as_str())
            .collect();
        hosts.join(",")
    }
}

fn data_base() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let mut b = tempfile::Builder::new();
    b.prefix("locksmith-etcd-");
    if shm.is_dir() {
        b.tempdir_in(shm)
    } else {
        b.tempdir()
    }
    .expect("temp dir for etcd")
}

/// Starts a cluster of `n` members and waits until it answers (with a leader).
pub fn start_etcd_cluster(n: usize) -> EtcdCluster {
    let etcd = require_binary("etcd", "etcd-server");
    require_binary("etcdctl", "etcd-client");
    let dir = data_base();
    let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
    let initial: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("n{i}=http://127.0.0.1:{peer}"))
        .collect();
    let initial = initial.join(",");
    // One token for the whole cluster, unique to this run.
    let token = format!("locksmith-{}-{}", std::process::id(), ports[0].0);
    let mut members = Vec::new();
    let mut commands = Vec::new();
    for (i, (client, peer)) in ports.iter().enumerate() {
        let name = format!("n{i}");
        let mdir = dir.path().join(&name);
        std::fs::create_dir_all(&mdir).expect("member folder");
        let mut cmd = Command::new(&etcd);
        cmd.args(["--name", &name])
            .arg("--data-dir")
            .arg(mdir.join("data"))
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{client}"),
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{client}"),
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
                "--initial-cluster",
                &initial,
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                &token,
                "--heartbeat-interval=10",
                "--election-timeout=100",
                "--logger",
                "zap",
                "--log-level",
                "warn",
                "--log-outputs",
            ])
            .arg(mdir.join("etcd.log"));
        let log = mdir.join("out.log");
        commands.push((
            etcd.clone(),
            cmd.get_args().map(ToOwned::to_owned).collect(),
            log.clone(),
        ));
        let process = ServerProcess::spawn(&format!("etcd {name}"), cmd, Some(log));
        members.push(EtcdMember {
            name,
            client_addr: format!("127.0.0.1:{client}"),
            process,
        });
    }
    for m in &mut members {
        let addr: SocketAddr = m.client_addr.parse().expect("addr");
        m.process.wait_for_port(addr, Duration::from_secs(30));
    }
    let cluster = EtcdCluster {
        members,
        commands,
        _dir: dir,
    };
    wait_healthy(&cluster.endpoints(), Duration::from_secs(30));
    cluster
}

/// Waits until `etcdctl endpoint health` passes on every endpoint (each probe bounded).
pub fn wait_healthy(endpoints: &str, within: Duration) {
    let start = Instant::now();
    loop {
        let ok = Command::new("etcdctl")
            .args([
                "--endpoints",
                endpoints,
                "--dial-timeout=1s",
                "--command-timeout=2s",
                "endpoint",
                "health",
            ])
            .env("ETCDCTL_API", "3")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return;
        }
        assert!(
            start.elapsed() < within,
            "etcd at {endpoints} not healthy after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

static SHARED: Mutex<Option<EtcdCluster>> = Mutex::new(None);

/// The URL of a single etcd node shared by everything in this test process, started on first
/// use. Call it from the main thread (the node dies with the thread that started it), and
/// [`stop_shared_etcd`] at the end to remove its data folder.
pub fn shared_etcd_url() -> String {
    shared_etcd_cluster_url(1)
}

/// As [`shared_etcd_url`], with `members` members (on the first call; later calls share it).
pub fn shared_etcd_cluster_url(members: usize) -> String {
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert_with(|| start_etcd_cluster(members))
        .url()
}

/// Stops the shared node, if started, and removes its folder.
pub fn stop_shared_etcd() {
    let node = SHARED.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(node);
}
