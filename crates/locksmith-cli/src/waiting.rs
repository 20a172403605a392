//! Telling the user who holds the lock while `locksmith` waits for it.

use std::convert::Infallible;
use std::future::Future;
use std::time::{Duration, SystemTime};

use locksmith::{Error, FencingToken, HolderInfo, LockKey, Locker};

/// How long a wait stays silent, and how often the holder is looked up after that.
const PERIOD: Duration = Duration::from_secs(1);

/// Awaits `acquire`. If it takes more than a second, prints on stderr who holds the lock
/// (`waiting for WHAT held by HOLDER`), and again whenever the holder changes.
///
/// The acquire future is raced against a one-second timer and never restarted: the lock is
/// waited for by the backend's notification; the timer only drives the holder lookups for the
/// message.
pub(crate) async fn announce_while<T>(
    locker: &Locker,
    key: &LockKey,
    what: &str,
    acquire: impl Future<Output = T>,
) -> T {
    let report = report(locker, key, what);
    tokio::pin!(acquire, report);
    tokio::select! {
        biased;
        out = &mut acquire => out,
        never = &mut report => match never {},
    }
}

type Identity = (String, Option<FencingToken>, Option<SystemTime>);

fn identity(h: &HolderInfo) -> Identity {
    (h.owner.clone(), h.token, h.since)
}

async fn report(locker: &Locker, key: &LockKey, what: &str) -> Infallible {
    let mut shown: Option<Identity> = None;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + PERIOD, PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(PERIOD, locker.holder(key)).await {
            Ok(Ok(Some(holder))) => {
                let id = identity(&holder);
                if shown.as_ref() != Some(&id) {
                    eprintln!("locksmith: waiting for {what} held by {holder}");
                    shown = Some(id);
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(err @ Error::Unsupported { .. })) => {
                tracing::debug!(error = %err, "cannot tell who holds the lock");
                eprintln!("locksmith: waiting for {what} (the backend cannot tell who holds it)");
                return std::future::pending().await;
            }
            Ok(Err(err)) => tracing::debug!(error = %err, "holder lookup failed"),
            Err(_) => tracing::debug!("holder lookup timed out"),
        }
    }
}
