//! The one place where leases are kept: renewal, the local deadline, and loss detection.
//! Every backend's grants go through here; a backend only supplies `Lease::renew` and
//! `Lease::session_lost`.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::backend::{Expiry, Lease};
use crate::loss::LossReason;

/// State shared by a guard and its keeper task.
#[derive(Debug)]
pub(crate) struct LeaseCell {
    pub(crate) lease: Arc<dyn Lease>,
    lost: watch::Sender<Option<LossReason>>,
    /// The local deadline; `None` for session-bound locks.
    deadline: Mutex<Option<Instant>>,
    deadline_moved: Notify,
    pub(crate) ttl: Duration,
    drift: Duration,
}

impl LeaseCell {
    pub(crate) fn new(lease: Arc<dyn Lease>, expiry: Expiry, drift: Duration) -> Arc<Self> {
        let (deadline, ttl) = match expiry {
            Expiry::Session => (None, Duration::ZERO),
            Expiry::Ttl { sent_at, ttl } => (Some(sent_at + ttl.saturating_sub(drift)), ttl),
        };
        Arc::new(Self {
            lease,
            lost: watch::channel(None).0,
            deadline: Mutex::new(deadline),
            deadline_moved: Notify::new(),
            ttl,
            drift,
        })
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().expect("deadline lock")
    }

    /// Records a renewal that was sent at `sent_at` and confirmed, and tells the keeper (a
    /// manual renewal restarts its renewal period).
    pub(crate) fn extend(&self, sent_at: Instant) {
        self.move_deadline(sent_at);
        self.deadline_moved.notify_one();
    }

    /// Moves the deadline for a renewal sent at `sent_at` and confirmed.
    fn move_deadline(&self, sent_at: Instant) {
        let mut d = self.deadline.lock().expect("deadline lock");
        if let Some(old) = *d {
            let new = sent_at + self.ttl.saturating_sub(self.drift);
            if new > old {
                *d = Some(new);
            }
        }
    }

    /// First loss wins; later ones are ignored.
    pub(crate) fn mark_lost(&self, reason: LossReason) {
        self.lost.send_if_modified(|slot| {
            if slot.is_none() {
                *slot = Some(reason);
                true
            } else {
                false
            }
        });
    }

    pub(crate) fn lost_reason(&self) -> Option<LossReason> {
        self.lost.borrow().clone()
    }

    /// Until when the lock is provably held: the TTL lease's deadline, or the bound a
    /// session-bound lease gives ([`Lease::session_valid_until`]).
    pub(crate) fn valid_until(&self) -> Option<Instant> {
        self.deadline().or_else(|| self.lease.session_valid_until())
    }

    pub(crate) fn is_held(&self) -> bool {
        self.lost_reason().is_none() && self.valid_until().is_none_or(|d| Instant::now() < d)
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<LossReason>> {
        self.lost.subscribe()
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The longest step of the renewal grid.
const MAX_GRID_STEP: Duration = Duration::from_millis(1024);

/// When a lease renewed at `from` with renewal period `period` (a third of its TTL) renews
/// next: the last point of a process-wide grid at or before `from + period`, so leases with
/// the same TTL come due at the same instants and a backend can send their renewals together
/// (see [`Lease::renew`]). The grid step is the largest power of two milliseconds up to a
/// quarter of the period (at most [`MAX_GRID_STEP`]); steps divide each other, so leases with
/// different TTLs still meet on the coarser points. A renewal is never later than `period`
/// after the last confirmed one, and at most a quarter period earlier.
pub(crate) fn renew_at(from: Instant, period: Duration) -> Instant {
    static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);
    let quarter_ms = (period / 4).as_millis();
    let due = from + period;
    if quarter_ms == 0 {
        return due;
    }
    let step_ms = (1u128 << quarter_ms.ilog2()).min(MAX_GRID_STEP.as_millis());
    let epoch = *EPOCH;
    let Some(since) = due.checked_duration_since(epoch) else {
        return due;
    };
    let steps = since.as_millis() / step_ms;
    let on_grid = epoch + Duration::from_millis(u64::try_from(steps * step_ms).unwrap_or(u64::MAX));
    on_grid.max(from)
}

/// Keeps one lease until it is lost; the guard aborts this task on release.
///
/// One timer per lease (the earliest of its deadline, its session's proven-alive bound and its
/// next renewal), so that a process holding thousands of leases keeps one small task each.
pub(crate) async fn keep(cell: Arc<LeaseCell>, renew: bool) {
    let lease = Arc::clone(&cell.lease);
    let session = lease.session_lost();
    tokio::pin!(session);
    let ttl_lease = cell.deadline().is_some();
    let third = cell.ttl / 3;
    let retry = (cell.ttl / 10).max(Duration::from_millis(5));
    let renewing = renew && ttl_lease;
    let mut next_renew = renewing.then(|| renew_at(Instant::now(), third));
    loop {
        let deadline = cell.deadline();
        // A session-bound lease whose backend proves the session alive up to a point: when that
        // point passes unproven, the lock is lost for the holder at the moment `is_held` turns
        // false, not later when (or if) the backend notices.
        let proven = if deadline.is_none() {
            lease.session_valid_until()
        } else {
            None
        };
        let wake = [proven, deadline, next_renew].into_iter().flatten().min();
        tokio::select! {
            reason = &mut session => {
                cell.mark_lost(reason);
                return;
            }
            _ = sleep_until_opt(wake) => {}
            _ = cell.deadline_moved.notified() => {
                // A renewal moved the deadline: start the next period from now.
                if renewing {
                    next_renew = Some(renew_at(Instant::now(), third));
                }
                continue;
            }
        }
        let now = Instant::now();
        if proven.is_some() && lease.session_valid_until().is_some_and(|d| d <= now) {
            cell.mark_lost(LossReason::SessionEnded(
                "the session could not be proven alive before its timeout".into(),
            ));
            return;
        }
        let Some(deadline) = cell.deadline() else {
            continue;
        };
        if deadline <= now {
            cell.mark_lost(LossReason::Expired);
            return;
        }
        if next_renew.is_none_or(|at| at > now) {
            continue;
        }
        let sent = now;
        match tokio::time::timeout_at(deadline.into(), lease.renew(cell.ttl)).await {
            Ok(Ok(true)) => {
                cell.move_deadline(sent);
                next_renew = Some(renew_at(sent, third));
            }
            Ok(Ok(false)) => {
                cell.mark_lost(LossReason::NotOwner);
                return;
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "lease renewal failed; retrying before the deadline");
                next_renew = Some(Instant::now() + retry);
            }
            Err(_) => {
                cell.mark_lost(LossReason::Expired);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_land_on_a_shared_grid_never_late() {
        let period = Duration::from_secs(1);
        let a = Instant::now();
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..200u64 {
            let from = a + Duration::from_millis(i * 7);
            let at = renew_at(from, period);
            assert!(at <= from + period, "late: {i}");
            assert!(at + period / 4 >= from + period, "too early: {i}");
            seen.insert(at);
        }
        // 1.4 s of starts fall on 128 ms steps: a dozen distinct instants, not 200.
        assert!(seen.len() <= 13, "{} distinct renewal instants", seen.len());
        // Coarser grids are made of finer grid points.
        let at = renew_at(a, Duration::from_secs(30));
        assert_eq!(
            renew_at(at - Duration::from_secs(1), Duration::from_secs(1)),
            at
        );
        // Tiny periods are not rounded.
        let from = Instant::now();
        assert_eq!(
            renew_at(from, Duration::from_millis(3)),
            from + Duration::from_millis(3)
        );
    }
}
