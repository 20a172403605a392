//! The command line, as clap parses it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration;
use crate::exit;

/// Run a command while holding a distributed lock, run it as an elected leader, or see who
/// holds a lock.
#[derive(Debug, Parser)]
#[command(name = "locksmith", version, after_help = exit::HELP)]
pub struct Cli {
    /// Backend URL: file://DIR, memory://NAME, … [default: file:// in the per-user state
    /// folder, $XDG_STATE_HOME/locksmith or ~/.local/state/locksmith]. `bench` takes it
    /// several times
    #[arg(
        long,
        global = true,
        env = "LOCKSMITH_URL",
        hide_env_values = true,
        value_name = "URL",
        action = clap::ArgAction::Append
    )]
    pub url: Vec<String>,

    /// Log what locksmith does on stderr (-vv for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run CMD while holding the lock KEY; stop it if the lock is lost
    #[command(after_help = exit::HELP)]
    Run(RunArgs),
    /// Wait to become leader of KEY, run CMD as leader, resign when it exits
    #[command(after_help = exit::HELP)]
    Elect(ElectArgs),
    /// Show who holds KEY (exit 0 whether it is held or free)
    #[command(after_help = exit::HELP)]
    Status(StatusArgs),
    /// Torture the backend: client processes contend while faults are injected, then a checker
    /// reads their histories (exit 1 on any violation)
    #[command(after_help = exit::HELP)]
    Torture(TortureArgs),
    /// One client process of `torture` (started by it; not for direct use)
    #[command(hide = true)]
    TortureClient(TortureClientArgs),
    /// Measure every --url backend: floor, uncontended latency, throughput, contention,
    /// renewal load; print a table (or JSON) and write table, JSON and an SVG chart to --out
    #[command(after_help = exit::HELP)]
    Bench(BenchArgs),
}

/// Output format of `bench`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchFormat {
    /// A markdown table
    Md,
    /// One JSON object
    Json,
}

/// `locksmith bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How long each workload runs on each backend
    #[arg(long, value_name = "DUR", default_value = "5s", value_parser = duration::parse)]
    pub duration: Duration,

    /// Concurrent clients of the throughput and contended workloads
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub clients: u16,

    /// Leases held with renewal on in the renewal-load workload (0 skips it)
    #[arg(long, value_name = "K", default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub leases: u32,

    /// What to print on stdout
    #[arg(long, value_enum, default_value = "md")]
    pub format: BenchFormat,

    /// Also write bench.md, bench.json and bench.svg into this folder (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: Option<std::path::PathBuf>,
}

/// Options shared by `run` and `elect`.
#[derive(Debug, Args)]
pub struct HoldArgs {
    /// The lock key
    #[arg(long, value_name = "KEY")]
    pub key: String,

    /// Lease TTL: on TTL backends the lock ends this long after the last renewal
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = duration::parse)]
    pub ttl: Duration,

    /// How long to wait for the lock [default: forever]
    #[arg(long, value_name = "DUR", value_parser = duration::parse)]
    pub wait: Option<Duration>,

    /// Label others see as the holder [default: HOST:PID]
    #[arg(long, value_name = "LABEL")]
    pub owner: Option<String>,

    /// After the lock is lost, how long the command has between SIGTERM and SIGKILL
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = duration::parse)]
    pub grace: Duration,

    /// The command and its arguments (after `--`)
    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// `locksmith run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub hold: HoldArgs,

    /// Fail at once (exit 75) if the lock is held
    #[arg(long, conflicts_with = "wait")]
    pub no_wait: bool,

    /// Do not renew the lease: on TTL backends the command is stopped when the TTL runs out
    /// (a hard time limit). Session backends (file) hold the lock while locksmith lives and
    /// ignore this
    #[arg(long)]
    pub no_renew: bool,
}

/// `locksmith elect`.
#[derive(Debug, Args)]
pub struct ElectArgs {
    #[command(flatten)]
    pub hold: HoldArgs,
}

/// `locksmith status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The lock key
    #[arg(long, value_name = "KEY")]
    pub key: String,

    /// Print one JSON object instead of a sentence
    #[arg(long)]
    pub json: bool,
}

/// `locksmith torture`.
#[derive(Debug, Args)]
pub struct TortureArgs {
    /// How long the clients contend
    #[arg(long, value_name = "DUR", default_value = "20s", value_parser = duration::parse)]
    pub duration: Duration,

    /// How many client processes contend at a time
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub clients: u32,

    /// How many keys they contend for
    #[arg(long, value_name = "K", default_value_t = 2)]
    pub keys: u32,

    /// Lease TTL of every lock
    #[arg(long, value_name = "DUR", default_value = "2s", value_parser = duration::parse)]
    pub ttl: Duration,

    /// Faults to inject in turn, comma-separated: pause (SIGSTOP a holder past its TTL), kill
    /// (SIGKILL a holder); through a TCP proxy in front of the URL's host:port: partition
    /// (blackhole past the TTL), latency (TTL/4 each way, past the TTL), cut (the next reply is
    /// never delivered), reset (every connection gets a RST); restart (SIGKILL and restart the
    /// server; needs --servers)
    #[arg(long, value_name = "LIST", default_value = "pause,kill")]
    pub faults: String,

    /// Start the backend's servers for the run (instead of --url) so that it can restart them
    /// over their data: redis (a private redis-server with an fsynced append-only file),
    /// redis-fair (the same, locked with `?fair=true`), redlock (five of them, a proxy each;
    /// restart and the network faults hit a minority, then a majority), postgres, mysql
    /// (MariaDB), etcd (one member), zookeeper
    #[arg(long, value_name = "KIND")]
    pub servers: Option<String>,

    /// Expected-unsafe scenario "split-brain": even-numbered clients lock on this second URL, so
    /// two holders at once are expected; exit 0 only if the checker catches them
    #[arg(long, value_name = "URL2")]
    pub split_brain: Option<String>,

    /// Expected-unsafe scenario "pause-past-ttl": one client stops itself between reading the
    /// registers and writing them back, for longer than the TTL; exit 0 only if the checker
    /// shows overlaps after expiry and lost updates on the unfenced register while the fenced
    /// one rejected the stale writes (needs a TTL-lease backend)
    #[arg(long)]
    pub pause_past_ttl: bool,

    /// Expected-unsafe scenario "redlock-restart-empty" (with --servers redlock, whose nodes
    /// then have no persistence): while a lock is held, a majority of the nodes restarts
    /// empty, so another client gets a quorum for the same key; exit 0 only if the checker
    /// catches the overlap inside valid leases
    #[arg(long)]
    pub redlock_restart_empty: bool,

    /// Folder for the histories, report.md, findings.json and timeline.svg [default: a new
    /// folder in the temp folder]
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `locksmith torture-client` (hidden): what the orchestrator tells one client.
#[derive(Debug, Args)]
pub struct TortureClientArgs {
    /// Client id
    #[arg(long)]
    pub id: u32,
    /// Comma-separated keys
    #[arg(long)]
    pub keys: String,
    /// Lease TTL
    #[arg(long, value_parser = duration::parse)]
    pub ttl: Duration,
    /// The resource server's socket
    #[arg(long)]
    pub resource: PathBuf,
    /// The history file to append to
    #[arg(long)]
    pub history: PathBuf,
    /// How long to run
    #[arg(long, value_parser = duration::parse)]
    pub run_for: Duration,
    /// Stop itself between a read and its write at most this often (pause-past-ttl scenario)
    #[arg(long, value_parser = duration::parse)]
    pub stall_every: Option<Duration>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_the_command_after_the_options() {
        let cli = Cli::try_parse_from([
            "locksmith",
            "run",
            "--key",
            "k",
            "--wait",
            "2m",
            "--",
            "sh",
            "-c",
            "exit 3",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.hold.wait, Some(Duration::from_secs(120)));
        assert_eq!(run.hold.ttl, Duration::from_secs(30));
        assert_eq!(run.hold.command, ["sh", "-c", "exit 3"]);
    }

    #[test]
    fn wait_and_no_wait_conflict() {
        let r = Cli::try_parse_from([
            "locksmith",
            "run",
            "--key",
            "k",
            "--wait",
            "1s",
            "--no-wait",
            "--",
            "true",
        ]);
        assert!(r.is_err());
    }
}
