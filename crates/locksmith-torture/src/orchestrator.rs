//! The orchestrator: starts the resource server and the client processes, injects faults at
//! current holders, stops everything at the end, and hands the merged history to the checker.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::checker::{CheckOptions, FindingKind, Findings, check};
use crate::fault::Fault;
use crate::history::{Event, HistoryWriter, Kind, Phase, merge, read_history};
use crate::network::{OwnServers, Servers, follow_ttl, latency_for, pick, proxies_for};
use crate::report::Summary;
use crate::resource::ResourceServer;

/// A torture run's settings.
#[derive(Clone, Debug)]
pub struct TortureConfig {
    /// The backend URL (any URL `locksmith::open` accepts that other processes can share);
    /// unused when [`TortureConfig::servers`] is set.
    pub url: String,
    /// Servers the run starts itself (and may kill and restart: the `restart` fault); the
    /// clients then use their URL.
    pub servers: Option<Servers>,
    /// How long the clients contend.
    pub duration: Duration,
    /// How many client processes contend at a time.
    pub clients: u32,
    /// How many keys they contend for.
    pub keys: u32,
    /// Lease TTL.
    pub ttl: Duration,
    /// The faults to inject, in turn.
    pub faults: Vec<Fault>,
    /// Where histories, the report and the timeline go.
    pub out: PathBuf,
    /// The program and leading arguments that start one client (`locksmith torture-client`);
    /// the client options follow, and the URL is passed in `LOCKSMITH_URL`.
    pub client_command: (PathBuf, Vec<OsString>),
    /// The expected-unsafe **split-brain** scenario: every even-numbered client locks on this
    /// second URL instead, so two holders at once are expected, and the run passes only if
    /// the checker catches overlaps inside valid leases.
    pub split_brain: Option<String>,
    /// The expected-unsafe **pause-past-ttl** scenario: client 1 stops itself (SIGSTOP) from
    /// time to time between reading the registers and writing them back, and is resumed after
    /// longer than the TTL (`--faults` is not used). On a TTL-lease backend its lease expires
    /// meanwhile and another client takes the key: the run passes only if the checker shows
    /// overlaps after expiry and lost updates on the unfenced register, while the fenced
    /// register rejected the stale writes and nothing locksmith promises against happened.
    pub pause_past_ttl: bool,
    /// The expected-unsafe **redlock-restart-empty** scenario (needs `--servers redlock`, whose
    /// nodes then run without persistence): while a client holds a key, a majority of the
    /// nodes is restarted empty, so another client can get a quorum for the same key while
    /// the first one's lease is still valid (`--faults` is not used). The run passes only if
    /// the checker catches overlaps inside valid leases.
    pub redlock_restart_empty: bool,
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The checker's findings.
    pub findings: Findings,
    /// The summary table.
    pub summary: Summary,
    /// Client processes that failed by themselves (a harness problem, not a finding).
    pub client_failures: Vec<String>,
    /// The expected-unsafe scenario run, if any.
    pub expected_unsafe: Option<&'static str>,
}

impl Outcome {
    /// True when locks were granted, every client ran cleanly, and: nothing locksmith promises against happened,
    /// or, in an expected-unsafe scenario, the checker caught overlaps inside valid leases.
    pub fn passed(&self) -> bool {
        // A run in which nothing was granted proves nothing.
        self.findings.acquisitions > 0
            && self.client_failures.is_empty()
            && match self.expected_unsafe {
                None => self.findings.violations().next().is_none(),
                Some(PAUSE_PAST_TTL) => {
                    self.findings.violations().next().is_none()
                        && self.findings.count(FindingKind::OverlapAfterExpiry) > 0
                        && self.findings.count(FindingKind::LostUpdateUnfenced) > 0
                        && self.findings.count(FindingKind::StaleWriteRejected) > 0
                }
                Some(_) => self.findings.count(FindingKind::OverlapInValidLeases) > 0,
            }
    }
}

/// The name of the pause-past-ttl scenario.
pub const PAUSE_PAST_TTL: &str = "pause-past-ttl";

/// The name of the redlock-restart-empty scenario.
pub const REDLOCK_RESTART_EMPTY: &str = "redlock-restart-empty";

struct Proc {
    id: u32,
    /// It stopped itself (pause-past-ttl scenario) and waits for SIGCONT.
    stalled: bool,
    child: Child,
    history: PathBuf,
    offset: u64,
    holding: Option<(String, u64)>,
    done: bool,
}

impl Proc {
    /// Reads the complete lines appended since the last call and follows what it holds.
    fn refresh(&mut self) {
        let Ok(mut f) = File::open(&self.history) else {
            return;
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut reader = BufReader::new(f);
        let mut line = String::new();
        while let Ok(n) = reader.read_line(&mut line) {
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            self.offset += n as u64;
            if let Ok(e) = serde_json::from_str::<Event>(&line) {
                match e.kind {
                    Kind::AcquireOk { key, token, .. } => self.holding = Some((key, token)),
                    Kind::Fault {
                        phase: Phase::Start,
                        victim: Some(v),
                        ..
                    } if v == self.id => self.stalled = true,
                    Kind::ReleaseInvoke { token, .. }
                    | Kind::Release { token, .. }
                    | Kind::Lost { token, .. }
                        if self.holding.as_ref().is_some_and(|h| h.1 == token) =>
                    {
                        self.holding = None;
                    }
                    _ => {}
                }
            }
            line.clear();
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // The child is not reaped before `done`, so its pid cannot have been reused.
        if !self.done {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
        }
    }
}

struct Run<'a> {
    cfg: &'a TortureConfig,
    /// The URL the clients use (through the fault proxies, when there are some).
    client_url: String,
    /// One fault proxy per server, when network faults are injected.
    proxies: Vec<locksmith_testkit::proxy::FaultProxy>,
    /// How many of each network fault have been injected (which servers the next one hits),
    /// by [`Fault::ALL`] position.
    net_turns: [usize; Fault::ALL.len()],
    own: Option<OwnServers>,
    keys: Vec<String>,
    socket: PathBuf,
    procs: Vec<Proc>,
    next_id: u32,
    until: Instant,
    faults: HistoryWriter,
    failures: Vec<String>,
}

impl Run<'_> {
    fn url_of(&self, id: u32) -> &str {
        match &self.cfg.split_brain {
            Some(other) if id.is_multiple_of(2) => other,
            _ => &self.client_url,
        }
    }

    fn spawn(&mut self) -> io::Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        let history = self.cfg.out.join(format!("client-{id}.jsonl"));
        let run_for = self.until.saturating_duration_since(Instant::now());
        let (program, prefix) = &self.cfg.client_command;
        let mut cmd = Command::new(program);
        cmd.args(prefix)
            .arg("--id")
            .arg(id.to_string())
            .arg("--keys")
            .arg(self.keys.join(","))
            .arg("--ttl")
            .arg(format!("{}ms", self.cfg.ttl.as_millis()))
            .arg("--resource")
            .arg(&self.socket)
            .arg("--history")
            .arg(&history)
            .arg("--run-for")
            .arg(format!("{}ms", run_for.as_millis()))
            .args(
                (self.cfg.pause_past_ttl && id == 1)
                    .then(|| ["--stall-every".to_owned(), "2s".to_owned()])
                    .into_iter()
                    .flatten(),
            )
            .env("LOCKSMITH_URL", self.url_of(id))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the hook makes only async-signal-safe calls (prctl, getppid, _exit).
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    libc::_exit(137);
                }
                Ok(())
            });
        }
        let child = cmd.spawn()?;
        self.procs.push(Proc {
            id,
            child,
            history,
            offset: 0,
            holding: None,
            stalled: false,
            done: false,
        });
        Ok(())
    }

    /// Reaps exited clients, noting those that failed by themselves.
    fn reap(&mut self) {
        for p in self.procs.iter_mut().filter(|p| !p.done) {
            if let Ok(Some(status)) = p.child.try_wait() {
                p.done = true;
                p.refresh();
                if !status.success() {
                    self.failures
                        .push(format!("client {} exited with {status}", p.id));
                }
            }
        }
    }

    /// Finds a live client that holds a key, and stops it (SIGSTOP) while it still does.
    async fn stop_a_holder(&mut self, turn: usize) -> Option<usize> {
        let give_up = Instant::now() + (self.cfg.ttl * 3).max(Duration::from_secs(3));
        while Instant::now() < give_up.min(self.until) {
            self.reap();
            let n = self.procs.len();
            for k in 0..n {
                let i = (turn + k) % n;
                let p = &mut self.procs[i];
                if p.done {
                    continue;
                }
                p.refresh();
                if p.holding.is_none() {
                    continue;
                }
                p.signal(libc::SIGSTOP);
                // Everything it wrote before it stopped is on disk now.
                tokio::time::sleep(Duration::from_millis(2)).await;
                p.refresh();
                if p.holding.is_some() {
                    return Some(i);
                }
                p.signal(libc::SIGCONT);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    fn log_fault(&self, fault: &str, phase: Phase, i: usize) {
        let p = &self.procs[i];
        self.faults.log(Kind::Fault {
            fault: fault.to_owned(),
            phase,
            victim: Some(p.id),
            key: p.holding.as_ref().map(|h| h.0.clone()),
            token: p.holding.as_ref().map(|h| h.1),
        });
    }

    /// Resumes a client that stopped itself, after longer than the TTL (pause-past-ttl).
    async fn resume_stalled(&mut self) {
        for i in 0..self.procs.len() {
            if self.procs[i].done {
                continue;
            }
            self.procs[i].refresh();
            if !std::mem::take(&mut self.procs[i].stalled) {
                continue;
            }
            tokio::time::sleep(pause_length(self.cfg.ttl)).await;
            self.log_fault("pause", Phase::End, i);
            self.procs[i].signal(libc::SIGCONT);
        }
    }

    fn log_global(&self, fault: &str, phase: Phase) {
        self.faults.log(Kind::Fault {
            fault: fault.to_owned(),
            phase,
            victim: None,
            key: None,
            token: None,
        });
    }

    /// A fault that hits every client at once: through the proxies, or on the servers. With
    /// several servers (Redlock's nodes), each network fault hits a minority of them, then the
    /// next time a majority, named `FAULT-minority` and `FAULT-majority`.
    async fn inject_global(&mut self, fault: Fault) {
        let length = pause_length(self.cfg.ttl);
        let n = self.proxies.len();
        let turn = &mut self.net_turns[Fault::ALL.iter().position(|f| *f == fault).unwrap_or(0)];
        let hit: Vec<usize> = if n > 1 && fault.needs_proxy() {
            *turn += 1;
            pick(*turn - 1, n)
        } else {
            (0..n).collect()
        };
        let name = match (fault, &self.own) {
            (Fault::Restart, Some(servers)) => servers.next_restart().to_owned(),
            (f, _) if f.needs_proxy() && n > 1 => {
                let side = if hit.len() * 2 > n {
                    "majority"
                } else {
                    "minority"
                };
                format!("{f}-{side}")
            }
            (f, _) => f.name().to_owned(),
        };
        self.log_global(&name, Phase::Start);
        let proxies: Vec<&locksmith_testkit::proxy::FaultProxy> =
            hit.iter().map(|&i| &self.proxies[i]).collect();
        match fault {
            Fault::Partition => {
                proxies.iter().for_each(|p| p.blackhole(true));
                tokio::time::sleep(length).await;
                proxies.iter().for_each(|p| p.blackhole(false));
            }
            Fault::Latency => {
                let d = latency_for(self.cfg.ttl);
                proxies.iter().for_each(|p| p.set_delay(d));
                tokio::time::sleep(length).await;
                proxies.iter().for_each(|p| p.set_delay(Duration::ZERO));
            }
            Fault::Cut => proxies.iter().for_each(|p| p.cut_next_reply()),
            Fault::Reset => proxies.iter().for_each(|p| p.reset_all()),
            Fault::Restart => {
                // Off the runtime (it waits for the port), which keeps serving the proxies.
                let mut servers = self.own.take().expect("checked before the run");
                let servers = tokio::task::spawn_blocking(move || {
                    servers.restart(length);
                    servers
                })
                .await
                .expect("the server restart panicked");
                self.own = Some(servers);
            }
            other => unreachable!("{other} is not a global fault"),
        }
        self.log_global(&name, Phase::End);
    }

    /// The redlock-restart-empty scenario's fault: once a client holds a key, a majority of
    /// the nodes restarts empty at once.
    async fn restart_majority_empty(&mut self) {
        let give_up = Instant::now() + (self.cfg.ttl * 3).max(Duration::from_secs(3));
        while Instant::now() < give_up.min(self.until) {
            self.reap();
            if self.procs.iter_mut().any(|p| {
                p.refresh();
                !p.done && p.holding.is_some()
            }) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.log_global("restart-majority-empty", Phase::Start);
        let mut servers = self.own.take().expect("checked before the run");
        let servers = tokio::task::spawn_blocking(move || {
            servers.restart_majority_empty();
            servers
        })
        .await
        .expect("the server restart panicked");
        self.own = Some(servers);
        self.log_global("restart-majority-empty", Phase::End);
    }

    async fn inject(&mut self, fault: Fault, turn: usize) -> io::Result<()> {
        if fault.needs_proxy() || fault.needs_own_server() {
            self.inject_global(fault).await;
            return Ok(());
        }
        let Some(i) = self.stop_a_holder(turn).await else {
            eprintln!("locksmith torture: no holder found for a {fault} fault; skipped");
            return Ok(());
        };
        match fault {
            Fault::Pause => {
                self.log_fault("pause", Phase::Start, i);
                tokio::time::sleep(pause_length(self.cfg.ttl)).await;
                self.log_fault("pause", Phase::End, i);
                self.procs[i].signal(libc::SIGCONT);
            }
            Fault::Kill => {
                self.log_fault("kill", Phase::Start, i);
                self.procs[i].signal(libc::SIGKILL);
                let _ = self.procs[i].child.wait();
                self.procs[i].done = true;
                self.spawn()?;
            }
            other => unreachable!("{other} is refused when the list is parsed"),
        }
        Ok(())
    }
}

/// How long a pause lasts: longer than the TTL, so that a lease-based lock expires meanwhile.
pub fn pause_length(ttl: Duration) -> Duration {
    ttl + (ttl / 2).max(Duration::from_secs(1))
}

/// Runs a torture: see the [crate docs](crate).
///
/// # Errors
/// When the URL is refused or names an in-process backend, or the output folder, the resource
/// server or a client process cannot be set up.
///
/// # Cancel safety
/// Not cancel-safe: dropping it midway leaves clients running until this process exits (they
/// die with it).
pub async fn run(cfg: &TortureConfig) -> Result<Outcome, String> {
    if cfg.servers.is_none()
        && let Some(f) = cfg.faults.iter().find(|f| f.needs_own_server())
    {
        return Err(format!(
            "the {f} fault kills and restarts a server the run started itself: add --servers"
        ));
    }
    let scenarios = [
        cfg.split_brain.is_some(),
        cfg.pause_past_ttl,
        cfg.redlock_restart_empty,
    ];
    if scenarios.iter().filter(|on| **on).count() > 1 {
        return Err("the expected-unsafe scenarios run one at a time".to_owned());
    }
    if cfg.redlock_restart_empty && cfg.servers != Some(Servers::Redlock) {
        return Err(format!(
            "the {REDLOCK_RESTART_EMPTY} scenario restarts Redlock nodes the run started: \
             it needs --servers redlock"
        ));
    }
    // On this thread, not a blocking-pool one: a server started with a parent-death signal
    // dies when the thread that forked it ends, and pool threads end when idle. Nothing else
    // runs yet, so blocking the runtime here costs nothing.
    let own = if cfg.redlock_restart_empty {
        Some(OwnServers::start_empty_redlock())
    } else {
        cfg.servers.map(OwnServers::start)
    };
    let url = follow_ttl(
        &own.as_ref()
            .map_or_else(|| cfg.url.clone(), OwnServers::url),
        cfg.ttl,
    );
    let (proxies, client_url) = if cfg.faults.iter().any(|f| f.needs_proxy())
        && !cfg.pause_past_ttl
        && !cfg.redlock_restart_empty
    {
        proxies_for(&url).await?
    } else {
        (Vec::new(), url.clone())
    };
    let locker = locksmith::open(&url).map_err(|e| e.to_string())?;
    if let Some(other) = &cfg.split_brain {
        locksmith::open(other).map_err(|e| e.to_string())?;
    }
    let caps = locker.backend().capabilities();
    if !caps.cross_process {
        return Err(format!(
            "{} keeps its locks inside one process; torture runs its clients as separate \
             processes, so it needs a backend they can share (file://DIR or a networked one)",
            locker.display_url()
        ));
    }
    if cfg.clients == 0 || cfg.keys == 0 {
        return Err("--clients and --keys must be at least 1".to_owned());
    }
    std::fs::create_dir_all(&cfg.out)
        .map_err(|e| format!("cannot create {}: {e}", cfg.out.display()))?;
    let io = |what: &str, e: io::Error| format!("{what}: {e}");
    // In the temp folder, not in `out`: a Unix socket path must stay under 108 bytes.
    let socket = std::env::temp_dir().join(format!(
        "locksmith-torture-{}-{}.sock",
        std::process::id(),
        crate::clock::now_ns()
    ));
    let resource_log = cfg.out.join("resource.jsonl");
    let fault_log = cfg.out.join("faults.jsonl");
    for stale in [&resource_log, &fault_log] {
        let _ = std::fs::remove_file(stale);
    }
    // Histories of an earlier run in the same folder would be merged into this one's.
    if let Ok(dir) = std::fs::read_dir(&cfg.out) {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with("client-") && name.ends_with(".jsonl") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let server = ResourceServer::start(
        &socket,
        HistoryWriter::create(&resource_log, 0).map_err(|e| io("resource log", e))?,
    )
    .map_err(|e| io(&format!("cannot listen on {}", socket.display()), e))?;
    let start = Instant::now();
    let mut run = Run {
        cfg,
        client_url,
        proxies,
        net_turns: [0; Fault::ALL.len()],
        own,
        keys: (0..cfg.keys).map(|k| format!("torture-{k}")).collect(),
        socket,
        procs: Vec::new(),
        next_id: 1,
        until: start + cfg.duration,
        faults: HistoryWriter::create(&fault_log, 0).map_err(|e| io("fault log", e))?,
        failures: Vec::new(),
    };
    for _ in 0..cfg.clients {
        run.spawn().map_err(|e| io("cannot start a client", e))?;
    }

    // Faults in turn, after a warm-up, while a whole one still fits in the run.
    let warmup = (cfg.duration / 5).min(Duration::from_secs(2));
    let settle = (cfg.ttl / 2).max(Duration::from_secs(1));
    tokio::time::sleep(warmup).await;
    let mut turn = 0;
    while cfg.pause_past_ttl && Instant::now() < run.until {
        run.resume_stalled().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while cfg.redlock_restart_empty && Instant::now() + settle < run.until {
        run.restart_majority_empty().await;
        tokio::time::sleep(settle * 2).await;
    }
    while !cfg.pause_past_ttl
        && !cfg.redlock_restart_empty
        && !cfg.faults.is_empty()
        && Instant::now() + pause_length(cfg.ttl) + settle < run.until
    {
        let fault = cfg.faults[turn % cfg.faults.len()];
        run.inject(fault, turn)
            .await
            .map_err(|e| io("cannot start a client", e))?;
        turn += 1;
        tokio::time::sleep(settle).await;
    }

    // The clients stop by themselves at the end; stragglers are killed (and logged as such).
    let grace = cfg.ttl * 3 + Duration::from_secs(5);
    let give_up = run.until + grace;
    loop {
        run.reap();
        run.resume_stalled().await;
        if run.procs.iter().all(|p| p.done) {
            break;
        }
        if Instant::now() >= give_up {
            for i in 0..run.procs.len() {
                if !run.procs[i].done {
                    run.procs[i].refresh();
                    run.log_fault("stop", Phase::Start, i);
                    run.procs[i].signal(libc::SIGKILL);
                    let _ = run.procs[i].child.wait();
                    run.procs[i].done = true;
                }
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);

    let mut histories = Vec::new();
    for path in run
        .procs
        .iter()
        .map(|p| p.history.clone())
        .chain([fault_log, resource_log])
    {
        match read_history(&path) {
            Ok(h) => histories.push(h),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&format!("cannot read {}", path.display()), e)),
        }
    }
    let events = merge(histories);
    let findings = check(&events, CheckOptions::default());
    drop(std::mem::take(&mut run.proxies));
    // The scenarios' only faults are their own.
    let faults_run: &[Fault] = if cfg.pause_past_ttl {
        &[Fault::Pause]
    } else if cfg.redlock_restart_empty {
        &[Fault::Restart]
    } else {
        &cfg.faults
    };
    drop(run.own.take());
    let backend = url.split("://").next().unwrap_or("?").to_owned();
    let summary = Summary::new(&backend, faults_run, &findings, caps.lease_model);
    let outcome = Outcome {
        findings,
        summary,
        client_failures: run.failures,
        expected_unsafe: if cfg.pause_past_ttl {
            Some(PAUSE_PAST_TTL)
        } else if cfg.redlock_restart_empty {
            Some(REDLOCK_RESTART_EMPTY)
        } else {
            cfg.split_brain.as_ref().map(|_| "split-brain")
        },
    };
    crate::report::write(&cfg.out, &events, &outcome)
        .map_err(|e| io("cannot write the report", e))?;
    Ok(outcome)
}

/// The default output folder: a new one under the temp folder.
pub fn default_out() -> PathBuf {
    std::env::temp_dir().join(format!("locksmith-torture-{}", std::process::id()))
}

/// Where the report of a run in `out` is.
pub fn report_path(out: &Path) -> PathBuf {
    out.join("report.md")
}
