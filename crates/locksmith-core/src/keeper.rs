//! The one place where leases are kept: renewal, the local deadline, and loss detection.
//! Every backend's grants go through here; a backend only supplies `Lease::renew` and
//! `Lease::session_lost`.

use std::sync::{Arc, Mutex};
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

    /// Records a renewal that was sent at `sent_at` and confirmed.
    pub(crate) fn extend(&self, sent_at: Instant) {
        let mut d = self.deadline.lock().expect("deadline lock");
        if let Some(old) = *d {
            let new = sent_at + self.ttl.saturating_sub(self.drift);
            if new > old {
                *d = Some(new);
            }
        }
        drop(d);
        self.deadline_moved.notify_one();
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

/// Keeps one lease until it is lost; the guard aborts this task on release.
pub(crate) async fn keep(cell: Arc<LeaseCell>, renew: bool) {
    let lease = Arc::clone(&cell.lease);
    let session = lease.session_lost();
    tokio::pin!(session);
    let ttl_lease = cell.deadline().is_some();
    let third = cell.ttl / 3;
    let retry = (cell.ttl / 10).max(Duration::from_millis(5));
    let mut next_renew = (renew && ttl_lease).then(|| Instant::now() + third);
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
        tokio::select! {
            reason = &mut session => {
                cell.mark_lost(reason);
                return;
            }
            _ = sleep_until_opt(proven) => {
                if lease.session_valid_until().is_some_and(|d| d <= Instant::now()) {
                    cell.mark_lost(LossReason::SessionEnded(
                        "the session could not be proven alive before its timeout".into(),
                    ));
                    return;
                }
            }
            _ = sleep_until_opt(deadline) => {
                if cell.deadline().is_some_and(|d| d <= Instant::now()) {
                    cell.mark_lost(LossReason::Expired);
                    return;
                }
            }
            _ = sleep_until_opt(next_renew) => {
                let sent = Instant::now();
                let Some(deadline) = deadline else { continue };
                match tokio::time::timeout_at(deadline.into(), lease.renew(cell.ttl)).await {
                    Ok(Ok(true)) => {
                        cell.extend(sent);
                        next_renew = Some(sent + third);
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
            _ = cell.deadline_moved.notified() => {
                // A manual renewal moved the deadline: start the next period from now.
                if renew && ttl_lease {
                    next_renew = Some(Instant::now() + third);
                }
            }
        }
    }
}
