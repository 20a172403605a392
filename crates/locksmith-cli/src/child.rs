//! The command run under the lock: spawning it so that it cannot outlive `locksmith`,
//! forwarding SIGINT/SIGTERM/SIGHUP to it, and stopping it (SIGTERM, then SIGKILL after a
//! grace period) when the lock is lost.

use std::ffi::OsString;
use std::future::Future;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use locksmith::LossReason;
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::exit::{self, Failure};

/// How a supervised command ended.
#[derive(Debug)]
pub enum Outcome {
    /// It ended by itself (or after a forwarded signal); this is the exit code to report.
    Exited(u8),
    /// The lock was lost and the command was stopped (the reason was printed then).
    Lost,
}

/// Spawns `command` with `env` added, waits for it while forwarding signals, and stops it
/// if `lost` resolves first. `what` names the lock in messages (`lock "k" on file:///…`).
///
/// # Errors
/// 127 when the command is not found, 126 when it cannot be executed, 69 when waiting for it
/// fails or the signal handlers cannot be installed.
pub(crate) async fn run_while_held(
    command: &[OsString],
    env: &[(&str, String)],
    lost: impl Future<Output = LossReason>,
    grace: Duration,
    what: &str,
) -> Result<Outcome, Failure> {
    // Installed before the spawn, so that a signal arriving meanwhile is forwarded, not fatal.
    let mut signals = Signals::install()?;
    let mut child = spawn(command, env)?;
    let pid = child.id().ok_or_else(|| {
        Failure::new(
            exit::UNAVAILABLE,
            "the command exited before its pid was known",
        )
    })?;
    tracing::debug!(pid, "command started");
    // Not reaped until `wait` completes, so `pid` cannot be reused while we signal it.
    let wait = child.wait();
    tokio::pin!(wait, lost);

    let reason = loop {
        tokio::select! {
            biased;
            reason = &mut lost => break reason,
            status = &mut wait => {
                let status = status.map_err(wait_failure)?;
                return Ok(Outcome::Exited(exit_code(status)));
            }
            sig = signals.recv() => forward(pid, sig),
        }
    };

    eprintln!(
        "locksmith: {what} was lost ({reason}); stopping the command with SIGTERM \
         (SIGKILL after {})",
        humantime::format_duration(grace)
    );
    send(pid, libc::SIGTERM);
    let kill_at = tokio::time::Instant::now() + grace;
    let mut killed = false;
    loop {
        tokio::select! {
            biased;
            status = &mut wait => {
                let status = status.map_err(wait_failure)?;
                tracing::debug!(?status, "command stopped after the loss");
                return Ok(Outcome::Lost);
            }
            _ = tokio::time::sleep_until(kill_at), if !killed => {
                eprintln!(
                    "locksmith: the command did not stop within {}; sending SIGKILL",
                    humantime::format_duration(grace)
                );
                send(pid, libc::SIGKILL);
                killed = true;
            }
            sig = signals.recv() => forward(pid, sig),
        }
    }
}

fn wait_failure(err: io::Error) -> Failure {
    Failure::new(
        exit::UNAVAILABLE,
        format!("waiting for the command failed: {err}"),
    )
}

/// The exit code that reports `status`: its own code, or 128+N if signal N killed it.
pub(crate) fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(sig)) => (128 + (sig & 0x7f)) as u8,
        (None, None) => exit::UNAVAILABLE,
    }
}

fn spawn(command: &[OsString], env: &[(&str, String)]) -> Result<Child, Failure> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| Failure::new(exit::USAGE, "no command given"))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (name, value) in env {
        cmd.env(name, value);
    }
    die_with_parent(&mut cmd);
    cmd.spawn().map_err(|err| {
        let name = program.to_string_lossy();
        match err.kind() {
            io::ErrorKind::NotFound => {
                Failure::new(exit::NOT_FOUND, format!("command not found: {name}"))
            }
            _ => Failure::new(
                exit::NOT_EXECUTABLE,
                format!("cannot execute command {name}: {err}"),
            ),
        }
    })
}

/// Makes the kernel SIGKILL the child when `locksmith` dies, even by SIGKILL, so the command
/// never goes on running outside the lock.
///
/// PR_SET_PDEATHSIG fires when the *thread* that forked exits, not the process; `main` runs
/// a current-thread runtime so that the fork happens on the main thread, which lives as long
/// as the process.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    let hook = move || -> io::Result<()> {
        // SAFETY: prctl and getppid are async-signal-safe and touch no memory of ours.
        if unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        // The parent may have died between fork and prctl: then no signal will come.
        if unsafe { libc::getppid() } != parent {
            // SAFETY: _exit is async-signal-safe; nothing of the parent's is flushed.
            unsafe { libc::_exit(128 + libc::SIGKILL) };
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe calls and allocates nothing.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// Elsewhere there is no parent-death signal; a killed `locksmith` leaves its command running.
#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

fn send(pid: u32, sig: libc::c_int) {
    // SAFETY: kill has no memory effects; `pid` is our unreaped child.
    if unsafe { libc::kill(pid as libc::pid_t, sig) } != 0 {
        tracing::debug!(pid, sig, error = %io::Error::last_os_error(), "kill failed");
    }
}

fn forward(pid: u32, sig: libc::c_int) {
    tracing::debug!(pid, sig, "forwarding signal to the command");
    send(pid, sig);
}

/// SIGINT, SIGTERM and SIGHUP, caught so they can be forwarded to the command.
struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> Result<Self, Failure> {
        let make = |kind| {
            signal(kind).map_err(|err| {
                Failure::new(
                    exit::UNAVAILABLE,
                    format!("cannot install signal handlers: {err}"),
                )
            })
        };
        Ok(Self {
            int: make(SignalKind::interrupt())?,
            term: make(SignalKind::terminate())?,
            hup: make(SignalKind::hangup())?,
        })
    }

    /// The next signal received. Cancel-safe.
    async fn recv(&mut self) -> libc::c_int {
        tokio::select! {
            Some(()) = self.int.recv() => libc::SIGINT,
            Some(()) = self.term.recv() => libc::SIGTERM,
            Some(()) = self.hup.recv() => libc::SIGHUP,
            else => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn exit_codes_pass_through_and_signals_become_128_plus_n() {
        assert_eq!(exit_code(ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(ExitStatus::from_raw(0)), 0);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGKILL)), 137);
        assert_eq!(exit_code(ExitStatus::from_raw(libc::SIGTERM)), 143);
    }
}
