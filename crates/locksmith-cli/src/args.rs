//! The command line, as clap parses it.

use std::ffi::OsString;
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
