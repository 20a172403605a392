//! Private test servers: started on free loopback ports in temporary folders, stopped by PID
//! when dropped, and killed by the kernel if the test process dies first (`PR_SET_PDEATHSIG`).
//!
//! A missing server binary is a failure that names the Debian package to install
//! (`scripts/test.sh` installs them), never a silent skip. Recipes: `../shared/servers.md`.

pub mod etcd;
pub mod redis;
pub mod redis_cluster;
pub mod tls;
pub mod zookeeper;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Runs `start` up to three times: ports from [`free_port`] are free when chosen, but another
/// process (tests run in parallel, each with its own servers and outgoing connections) can take
/// one before the server binds it, and the server then exits or never listens. `start` picks
/// fresh ports on each call; the last failure is reported as it is.
pub fn start_retrying<T>(what: &str, start: impl Fn() -> T) -> T {
    for _ in 0..2 {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(&start)) {
            Ok(started) => return started,
            Err(_) => eprintln!("{what} did not start (a port taken meanwhile?); trying new ports"),
        }
    }
    start()
}

/// Panics with an install hint unless `binary` exists (an absolute path or a name on `PATH`).
pub fn require_binary(binary: &str, debian_package: &str) -> PathBuf {
    let found = if binary.contains('/') {
        Path::new(binary).exists().then(|| PathBuf::from(binary))
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join(binary))
                .find(|p| p.exists())
        })
    };
    found.unwrap_or_else(|| {
        panic!(
            "`{binary}` is not installed: install the Debian package `{debian_package}` \
             (scripts/test.sh does this) — backend tests never skip a missing server"
        )
    })
}

/// A server process the test owns.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    name: String,
    log: Option<PathBuf>,
}

impl ServerProcess {
    /// Spawns `cmd` so that it dies with this process. Output goes to `log` (or is discarded).
    pub fn spawn(name: &str, mut cmd: Command, log: Option<PathBuf>) -> Self {
        match &log {
            Some(path) => {
                let f = std::fs::File::create(path).expect("server log file");
                cmd.stdout(f.try_clone().expect("log fd")).stderr(f);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        cmd.stdin(Stdio::null());
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self {
            child: Some(child),
            name: name.to_owned(),
            log,
        }
    }

    /// The server's PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// Sends `signal` (e.g. `libc::SIGSTOP`, `SIGCONT`, `SIGKILL`) to the server.
    pub fn signal(&self, signal: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on a PID we spawned and have not reaped yet.
            unsafe {
                libc::kill(c.id() as libc::pid_t, signal);
            }
        }
    }

    /// Kills the server (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends `signal` (e.g. PostgreSQL's immediate shutdown, `SIGQUIT`), waits up to `within`
    /// for the server to exit, then kills it (SIGKILL) and reaps it.
    pub fn kill_with(&mut self, signal: i32, within: Duration) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on a PID we spawned and have not reaped yet.
            unsafe {
                libc::kill(c.id() as libc::pid_t, signal);
            }
            let start = Instant::now();
            while start.elapsed() < within {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server with SIGTERM and waits for it (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        self.kill_with(libc::SIGTERM, Duration::from_secs(10));
    }

    /// Panics unless something accepts TCP connections on `addr` within `within`; the panic
    /// message carries the tail of the server log.
    pub fn wait_for_port(&mut self, addr: SocketAddr, within: Duration) {
        let start = Instant::now();
        loop {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "{} exited ({status}) before listening: {}",
                    self.name,
                    self.log_tail()
                );
            }
            assert!(
                start.elapsed() < within,
                "{} not listening on {addr} after {within:?}: {}",
                self.name,
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last lines of the server log, for failure messages.
    pub fn log_tail(&self) -> String {
        let Some(path) = &self.log else {
            return "(no log)".into();
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Makes the kernel kill the child when the thread that spawned it (and so this process) exits.
pub fn die_with_parent(cmd: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl and getppid are async-signal-safe; nothing else runs between fork and exec.
        let parent = std::process::id() as libc::pid_t;
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
}

/// A temporary folder readable by other users (PostgreSQL runs as `postgres`), removed on drop.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temp dir");
    dir
}

pub mod mariadb;
pub mod postgres;

/// Spawns `cmd` (as [`ServerProcess::spawn`]) from a thread that lives as long as this
/// process, so that the server dies with the process rather than with the thread (a test
/// thread or a runtime worker) that asked for it.
pub fn spawn_for_process(name: &str, cmd: Command, log: Option<PathBuf>) -> ServerProcess {
    use std::sync::mpsc;
    use std::sync::{Mutex, OnceLock};
    type Job = Box<dyn FnOnce() + Send>;
    static KEEPER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("locksmith-test-servers".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
                // The sender lives in a static: this thread ends only with the process.
                loop {
                    std::thread::park();
                }
            })
            .expect("server keeper thread");
        Mutex::new(tx)
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let name = name.to_owned();
    keeper
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send(Box::new(move || {
            let _ = tx.send(ServerProcess::spawn(&name, cmd, log));
        }))
        .expect("server keeper thread alive");
    rx.recv().expect("the keeper thread spawned the server")
}

/// Runs `f` when this process exits normally (`atexit`), to stop servers kept in statics and
/// remove their folders.
pub fn at_exit(f: fn()) {
    extern "C" fn run_all() {
        let fs = std::mem::take(
            &mut *EXIT_FNS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for f in fs {
            f();
        }
    }
    static EXIT_FNS: std::sync::Mutex<Vec<fn()>> = std::sync::Mutex::new(Vec::new());
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    EXIT_FNS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(f);
    REGISTERED.call_once(|| {
        // SAFETY: registering a plain extern "C" function with no captured state.
        unsafe {
            libc::atexit(run_all);
        }
    });
}

/// Removes `dir` when this process exits normally: for the folder of a server kept in a
/// `OnceLock` for the whole process, which is never dropped (the server itself dies with the
/// process, by its parent-death signal).
pub fn remove_at_exit(dir: PathBuf) {
    static DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    fn remove_all() {
        let dirs = std::mem::take(
            &mut *DIRS
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for dir in dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    let mut dirs = DIRS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if dirs.is_empty() {
        at_exit(remove_all);
    }
    dirs.push(dir);
}

/// True when this process runs as root (servers that refuse root then run as another user).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
