//! `locksmith`: run a command while holding a distributed lock (`run`), run it as an elected
//! leader (`elect`), see who holds a lock (`status`), measure backends (`bench`), or torture a
//! backend (`torture`).
//!
//! The backend is chosen by `--url` (or `LOCKSMITH_URL`); the default is the file backend in
//! the per-user state folder. Passwords in URLs are never printed.
//!
//! The command run under a lock gets `LOCKSMITH_KEY` and `LOCKSMITH_FENCING_TOKEN`. It is
//! stopped (SIGTERM, then SIGKILL after `--grace`) if the lock is lost, it is SIGKILLed by
//! the kernel if `locksmith` itself dies (Linux), and SIGINT/SIGTERM/SIGHUP sent to
//! `locksmith` are forwarded to it. Signals go to the command's process only, not to
//! processes it started in turn (use `exec` in shell scripts). The command stays in the
//! terminal's process group so that it can read the terminal; Ctrl-C therefore reaches it
//! directly as well as forwarded.
//!
//! # Exit codes
//!
//! | code | meaning |
//! |---|---|
//! | N | `run`/`elect`: the command's own exit code; 128+N if signal N killed it |
//! | 0 | `status`: the report was printed, whether the key is held or free (also `--help`); `torture`: no violation |
//! | 1 | `torture`: the checker found a violation, a client process failed, or no lock was granted |
//! | 64 | bad input: invalid key, URL, option or duration, and every usage error clap reports (clap's own code 2 is not used) |
//! | 69 | the backend is unavailable, or another library error |
//! | 75 | the lock was not obtained within the wait bound (`--wait`, `--no-wait`) |
//! | 76 | the lock was lost while the command ran; the command was stopped |
//! | 126 | the command was found but could not be executed |
//! | 127 | the command was not found |

mod args;
mod bench;
mod child;
mod duration;
mod elect;
mod exit;
mod run;
mod status;
mod torture;
mod waiting;

use std::process::ExitCode;

use clap::Parser;
use locksmith::LockKey;

use crate::args::{Cli, Command};
use crate::exit::Failure;

// A current-thread runtime on purpose: the child is forked with PR_SET_PDEATHSIG, which fires
// when the *thread* that forked exits. With this flavour every task, and so every fork, runs
// on the main thread, which lives exactly as long as the process; on a worker thread the
// child could be killed whenever the runtime retired that thread.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // --help and --version are "errors" with exit code 0; usage errors get 64.
            return ExitCode::from(if err.exit_code() == 0 { 0 } else { exit::USAGE });
        }
    };
    init_tracing(cli.verbose);
    match dispatch(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("locksmith: {failure}");
            ExitCode::from(failure.code)
        }
    }
}

async fn dispatch(cli: Cli) -> Result<u8, Failure> {
    if !matches!(cli.command, Command::Bench(_)) && cli.url.len() > 1 {
        return Err(Failure::new(
            exit::USAGE,
            format!(
                "--url given {} times; only `bench` takes several",
                cli.url.len()
            ),
        ));
    }
    let single_url = cli.url.first().cloned();
    let key = match cli.command {
        Command::Bench(ref args) => return bench::bench(&cli.url, args).await,
        Command::Torture(args) => return torture::torture(single_url, args).await,
        Command::TortureClient(args) => {
            return torture::client(url_or_default(single_url)?, args).await;
        }
        Command::Run(ref a) => &a.hold.key,
        Command::Elect(ref a) => &a.hold.key,
        Command::Status(ref a) => &a.key,
    };
    // Checked before the backend is opened, so a bad key is reported as such.
    let key = LockKey::new(key.as_str())?;
    let url = url_or_default(single_url)?;
    tracing::debug!(url = %locksmith::mask_url(&url), "opening the backend");
    let locker = locksmith::open(&url)?;
    match cli.command {
        Command::Run(args) => run::run(&locker, key, args).await,
        Command::Elect(args) => elect::elect(&locker, key, args).await,
        Command::Status(args) => status::status(&locker, key, &args).await,
        Command::Torture(_) | Command::TortureClient(_) | Command::Bench(_) => {
            unreachable!("dispatched above")
        }
    }
}

/// `--url`, or the embedded default.
pub(crate) fn url_or_default(url: Option<String>) -> Result<String, Failure> {
    Ok(match url {
        Some(url) if !url.is_empty() => url,
        _ => locksmith::default_url()?,
    })
}

/// Logs go to stderr: warnings only by default, `-v` debug, `-vv` trace; `RUST_LOG` wins.
fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let level = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "warn,locksmith={level},locksmith_core={level},locksmith_file={level},\
             locksmith_cli={level},locksmith_torture={level}"
        ))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
