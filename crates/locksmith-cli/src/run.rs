//! `locksmith run`: run a command while holding a lock.

use std::future::Future;
use std::time::Duration;

use locksmith::{FencingToken, LockKey, LockOptions, Locker, LossReason, WaitPolicy, show_key};

use crate::args::{HoldArgs, RunArgs};
use crate::child::{self, Outcome};
use crate::exit::{self, Failure};
use crate::waiting;

/// How long a release may take after the command ended; past that the lock ends by its
/// lease or session.
const RELEASE_BOUND: Duration = Duration::from_secs(10);

/// Acquires the lock, runs the command, releases the lock; returns the exit code.
///
/// # Errors
/// 75 when the lock is not obtained in time, 64/69 for library errors, 126/127 when the
/// command cannot be started.
pub(crate) async fn run(locker: &Locker, key: LockKey, args: RunArgs) -> Result<u8, Failure> {
    let opts = lock_options(&args.hold).renew(!args.no_renew);
    let guard = if args.no_wait {
        match locker.try_acquire(&key, &opts).await? {
            Some(guard) => guard,
            None => return Err(busy(locker, &key).await),
        }
    } else {
        let what = format!("lock {}", show_key(key.as_str()));
        waiting::announce_while(locker, &key, &what, locker.acquire(&key, &opts)).await?
    };
    let what = format!(
        "lock {} on {}",
        show_key(key.as_str()),
        locker.display_url()
    );
    let outcome = hold_and_run(&args.hold, &key, guard.fencing_token(), guard.lost(), &what).await;
    finish(outcome, guard.release(), &what).await
}

/// The options shared by `run` and `elect`.
pub(crate) fn lock_options(hold: &HoldArgs) -> LockOptions {
    let mut opts = LockOptions::new().ttl(hold.ttl).wait(match hold.wait {
        Some(d) => WaitPolicy::Timeout(d),
        None => WaitPolicy::Forever,
    });
    if let Some(owner) = &hold.owner {
        opts = opts.owner(owner.clone());
    }
    opts
}

/// Runs the command of `hold` with `LOCKSMITH_KEY` and `LOCKSMITH_FENCING_TOKEN` set.
pub(crate) async fn hold_and_run(
    hold: &HoldArgs,
    key: &LockKey,
    token: FencingToken,
    lost: impl Future<Output = LossReason>,
    what: &str,
) -> Result<Outcome, Failure> {
    tracing::info!(key = %key, token = token.get(), "lock held; starting the command");
    let env = [
        ("LOCKSMITH_KEY", key.to_string()),
        ("LOCKSMITH_FENCING_TOKEN", token.to_string()),
    ];
    child::run_while_held(&hold.command, &env, lost, hold.grace, what).await
}

/// Releases the lock (or resigns) after the command, and turns the outcome into an exit code.
///
/// # Errors
/// The outcome's own failure (the command could not be started, say).
pub(crate) async fn finish(
    outcome: Result<Outcome, Failure>,
    release: impl Future<Output = locksmith::Result<bool>>,
    what: &str,
) -> Result<u8, Failure> {
    let released = tokio::time::timeout(RELEASE_BOUND, release).await;
    let lost = matches!(outcome, Ok(Outcome::Lost));
    match released {
        Ok(Ok(true)) => tracing::debug!("released"),
        Ok(Ok(false)) if !lost => {
            eprintln!("locksmith: {what} had already been lost when the command ended");
        }
        Ok(Ok(false)) => {}
        Ok(Err(err)) => eprintln!(
            "locksmith: could not release {what} ({}); it ends when its lease or session does",
            err
        ),
        Err(_) => eprintln!(
            "locksmith: releasing {what} took over {}s; it ends when its lease or session does",
            RELEASE_BOUND.as_secs()
        ),
    }
    match outcome? {
        Outcome::Exited(code) => Ok(code),
        Outcome::Lost => Ok(exit::LOST),
    }
}

/// The failure for `--no-wait` on a busy lock, naming the holder where the backend can tell.
async fn busy(locker: &Locker, key: &LockKey) -> Failure {
    let holder = tokio::time::timeout(Duration::from_secs(1), locker.holder(key))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
    let held = match holder {
        Some(h) => format!("is held by {h}"),
        None => "is busy".to_owned(),
    };
    Failure::new(
        exit::NOT_OBTAINED,
        format!(
            "lock {} on {} {held}; not waiting (--no-wait)",
            show_key(key.as_str()),
            locker.display_url()
        ),
    )
}
