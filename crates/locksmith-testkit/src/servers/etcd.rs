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

use super::tls::make_server_certs;
use super::{ServerProcess, free_port, require_binary, spawn_for_process, start_retrying};

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
    /// The CA that signed the members' certificates, when they serve clients over TLS.
    tls_ca: Option<PathBuf>,
    /// `root`'s password, once [`EtcdCluster::enable_auth`] turned authentication on.
    root_password: Option<String>,
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
        wait_healthy_with(&self.etcdctl_flags(), Duration::from_secs(30));
    }

    /// The CA's PEM file when the members serve clients over TLS (see [`start_etcd_tls`]):
    /// the URL then needs `?tls=true&ca_file=THIS`.
    pub fn tls_ca(&self) -> Option<&Path> {
        self.tls_ca.as_deref()
    }

    /// The `etcdctl` flags that reach this cluster: `--endpoints` (with `https://` under TLS),
    /// `--cacert` under TLS, `--user root:…` once authentication is on, and bounded timeouts.
    pub fn etcdctl_flags(&self) -> Vec<String> {
        let scheme = if self.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoints: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{scheme}://{}", m.client_addr))
            .collect();
        let mut flags = vec![
            format!("--endpoints={}", endpoints.join(",")),
            "--dial-timeout=2s".to_owned(),
            "--command-timeout=5s".to_owned(),
        ];
        if let Some(ca) = &self.tls_ca {
            flags.push(format!("--cacert={}", ca.display()));
        }
        if let Some(pw) = &self.root_password {
            flags.push(format!("--user=root:{pw}"));
        }
        flags
    }

    /// Runs `etcdctl FLAGS ARGS` (flags from [`EtcdCluster::etcdctl_flags`]) and returns its
    /// stdout.
    ///
    /// # Panics
    /// When `etcdctl` fails (its stderr is in the message).
    pub fn etcdctl(&self, args: &[&str]) -> String {
        let out = Command::new("etcdctl")
            .args(self.etcdctl_flags())
            .args(args)
            .env("ETCDCTL_API", "3")
            .output()
            .expect("run etcdctl");
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Turns etcd's authentication on: adds the user `root` with `root_password` (root may do
    /// anything) and enables auth. From then on every client must log in; later `etcdctl`
    /// calls through [`EtcdCluster::etcdctl`] log in as root.
    ///
    /// # Panics
    /// When `etcdctl` fails.
    pub fn enable_auth(&mut self, root_password: &str) {
        self.etcdctl(&[
            "user",
            "add",
            "root",
            &format!("--new-user-password={root_password}"),
        ]);
        self.etcdctl(&["auth", "enable"]);
        self.root_password = Some(root_password.to_owned());
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
    start(n, false)
}

/// Starts one etcd member that serves clients only over TLS (`https://127.0.0.1:PORT`), with
/// a certificate for 127.0.0.1 signed by a CA made for it ([`super::tls::make_server_certs`]);
/// [`EtcdCluster::tls_ca`] is the CA's PEM file. Peers still talk plain HTTP.
pub fn start_etcd_tls() -> EtcdCluster {
    start(1, true)
}

/// Starts the cluster, on fresh ports up to three times ([`start_retrying`]).
fn start(n: usize, tls: bool) -> EtcdCluster {
    start_retrying("etcd", || start_once(n, tls))
}

fn start_once(n: usize, tls: bool) -> EtcdCluster {
    let etcd = require_binary("etcd", "etcd-server");
    require_binary("etcdctl", "etcd-client");
    let dir = data_base();
    let certs = tls.then(|| {
        let certs_dir = dir.path().join("certs");
        std::fs::create_dir_all(&certs_dir).expect("certs folder");
        make_server_certs(&certs_dir)
    });
    let client_scheme = if tls { "https" } else { "http" };
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
                &format!("{client_scheme}://127.0.0.1:{client}"),
                "--advertise-client-urls",
                &format!("{client_scheme}://127.0.0.1:{client}"),
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
        if let Some(c) = &certs {
            cmd.arg("--cert-file")
                .arg(&c.cert)
                .arg("--key-file")
                .arg(&c.key);
        }
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
        tls_ca: certs.map(|c| c.ca),
        root_password: None,
        _dir: dir,
    };
    wait_healthy_with(&cluster.etcdctl_flags(), Duration::from_secs(30));
    cluster
}

/// Waits until `etcdctl endpoint health` passes on every endpoint (each probe bounded).
pub fn wait_healthy(endpoints: &str, within: Duration) {
    wait_healthy_with(
        &[
            format!("--endpoints={endpoints}"),
            "--dial-timeout=1s".to_owned(),
            "--command-timeout=2s".to_owned(),
        ],
        within,
    );
}

/// Waits until `etcdctl FLAGS endpoint health` passes (each probe bounded by the flags).
fn wait_healthy_with(flags: &[String], within: Duration) {
    let start = Instant::now();
    loop {
        let ok = Command::new("etcdctl")
            .args(flags)
            .args(["endpoint", "health"])
            .env("ETCDCTL_API", "3")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return;
        }
        assert!(
            start.elapsed() < within,
            "etcd ({flags:?}) not healthy after {within:?}"
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
    slot.get_or_insert_with(|| {
        // Also stopped at exit when nobody calls `stop_shared_etcd`: its data folder is on
        // /dev/shm (memory), 120 MiB with etcd's preallocated WAL.
        super::at_exit(stop_shared_etcd);
        start_etcd_cluster(members)
    })
    .url()
}

/// Stops the shared node, if started, and removes its folder.
pub fn stop_shared_etcd() {
    let node = SHARED.lock().unwrap_or_else(|p| p.into_inner()).take();
    drop(node);
}
