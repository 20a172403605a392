//! Waiting for a busy `redis://` or Redis Cluster key: the outcome of one attempt, and the
//! loop that retries on each release message of the key's channel or, when none comes, when
//! the key's remaining `PTTL` runs out.

use std::future::Future;
use std::time::{Duration, Instant};

use locksmith_core::{Grant, Result};

use crate::waker::Waker;

/// The outcome of one attempt.
pub(crate) enum Attempt {
    Granted(Grant),
    /// Held by someone else for this many more ms (-1: no expiry).
    Busy(i64),
}

/// Subscribes to `channel`, then calls `attempt` until it is granted or `deadline` passes
/// (`Ok(None)`), sleeping between attempts until a release message or the fallback timer.
/// Subscribing before the first attempt here means a release in between cannot be missed.
///
/// # Errors
/// Those of `attempt`, and a subscription connection that cannot be made.
///
/// # Cancel safety
/// As cancel-safe as `attempt`; the subscription is dropped with the future.
pub(crate) async fn until_released<F, Fut>(
    waker: &Waker,
    channel: &str,
    deadline: Option<Instant>,
    mut attempt: F,
) -> Result<Option<Grant>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt>>,
{
    let reg = waker.register(channel).await?;
    let mut rx = reg.rx.clone();
    let mut idle_rounds = 0;
    loop {
        reg.ensure_subscribed().await?;
        rx.borrow_and_update();
        let pttl = match attempt().await? {
            Attempt::Granted(g) => return Ok(Some(g)),
            Attempt::Busy(pttl) => pttl,
        };
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        tokio::select! {
            _ = rx.changed() => idle_rounds = 0,
            _ = tokio::time::sleep(fallback(pttl, idle_rounds)) => idle_rounds += 1,
            _ = sleep_until(deadline) => return Ok(None),
        }
    }
}

/// How long to sleep before retrying a key held for `pttl` more ms, when no release message
/// comes: until it expires; for a key without expiry (a foreign lock), a growing backoff.
pub(crate) fn fallback(pttl: i64, idle_rounds: u32) -> Duration {
    if pttl >= 0 {
        Duration::from_millis(pttl as u64 + 1)
    } else {
        Duration::from_millis(10u64 << idle_rounds.min(7)).min(Duration::from_secs(1))
    }
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
