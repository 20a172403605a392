//! The one place where leases are kept: renewal, the local deadline, and loss detection.
//! Every backend's grants go through here; a backend only supplies `Lease::renew` and
//! `Lease::session_lost`. The leases of a runtime share one keeper task
//! ([`KeeperService`]); this file holds what is decided for each lease.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, OnceLock, Weak};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::backend::{Expiry, Lease};
use crate::keeper_service::{KeeperService, TimerKey};
use crate::loss::LossReason;

type SessionWatch = Pin<Box<dyn Future<Output = LossReason> + Send>>;

/// State shared by a guard and the keeper.
#[derive(Debug)]
pub(crate) struct LeaseCell {
    pub(crate) lease: Arc<dyn Lease>,
    lost: Mutex<Lost>,
    /// The local deadline; `None` for session-bound locks.
    deadline: Mutex<Option<Instant>>,
    pub(crate) ttl: Duration,
    drift: Duration,
    /// Unique among the cells of the process: orders equal instants in the timer queue.
    id: u64,
    keeper: OnceLock<Weak<KeeperService>>,
    keep: Mutex<Keep>,
}

/// Why the lease was lost (first loss wins), and the channel that tells [`LeaseCell::subscribe`]
/// receivers, made by the first of them: most guards are released without anyone watching,
/// and a channel costs an allocation and a wake-up of every waiter list on each send and drop.
#[derive(Debug, Default)]
struct Lost {
    reason: Option<LossReason>,
    tx: Option<watch::Sender<Option<LossReason>>>,
}

/// What the keeper tracks for one lease.
#[derive(Default)]
struct Keep {
    /// Renew in the background (a TTL lease whose guard asked for renewal).
    renewing: bool,
    /// Check the session this often with `Lease::renew` (a session lease that asks for it).
    checking: Option<Duration>,
    /// When the next renewal or check is due; `None` while one is in flight.
    next_renew: Option<Instant>,
    /// The lease's place in the keeper's timer queue.
    timer: Option<TimerKey>,
    /// The backend's session watcher, while nobody polls it.
    session: Option<SessionWatch>,
    /// The watcher is being polled; a wake-up meanwhile sets `woken`.
    polling: bool,
    woken: bool,
    /// The renewal in flight.
    renewal: Option<AbortHandle>,
    /// Released or lost: nothing more is done.
    stopped: bool,
}

impl std::fmt::Debug for Keep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keep")
            .field("renewing", &self.renewing)
            .field("next_renew", &self.next_renew)
            .field("timer", &self.timer)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

impl LeaseCell {
    pub(crate) fn new(lease: Arc<dyn Lease>, expiry: Expiry, drift: Duration) -> Arc<Self> {
        static IDS: AtomicU64 = AtomicU64::new(0);
        let (deadline, ttl) = match expiry {
            Expiry::Session => (None, Duration::ZERO),
            Expiry::Ttl { sent_at, ttl } => (Some(sent_at + ttl.saturating_sub(drift)), ttl),
        };
        Arc::new(Self {
            lease,
            lost: Mutex::default(),
            deadline: Mutex::new(deadline),
            ttl,
            drift,
            id: IDS.fetch_add(1, Ordering::Relaxed),
            keeper: OnceLock::new(),
            keep: Mutex::new(Keep::default()),
        })
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().expect("deadline lock")
    }

    fn keep(&self) -> MutexGuard<'_, Keep> {
        self.keep.lock().expect("keep lock")
    }

    fn keeper(&self) -> Option<Arc<KeeperService>> {
        self.keeper.get().and_then(Weak::upgrade)
    }

    /// Records a renewal that was sent at `sent_at` and confirmed (a manual one restarts the
    /// renewal period).
    pub(crate) fn extend(self: &Arc<Self>, sent_at: Instant) {
        self.move_deadline(sent_at);
        let mut k = self.keep();
        if k.stopped {
            return;
        }
        if k.renewing && k.renewal.is_none() {
            k.next_renew = Some(renew_at(Instant::now(), self.ttl / 3));
        }
        self.reschedule(&mut k);
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
        let tx = {
            let mut lost = self.lost();
            if lost.reason.is_some() {
                return;
            }
            lost.reason = Some(reason.clone());
            lost.tx.clone()
        };
        // Sent outside the lock: waking the receivers runs their wakers.
        if let Some(tx) = tx {
            tx.send_replace(Some(reason));
        }
    }

    fn lost(&self) -> MutexGuard<'_, Lost> {
        self.lost.lock().expect("lost lock")
    }

    pub(crate) fn lost_reason(&self) -> Option<LossReason> {
        self.lost().reason.clone()
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
        let mut lost = self.lost();
        let reason = lost.reason.clone();
        lost.tx
            .get_or_insert_with(|| watch::channel(reason).0)
            .subscribe()
    }

    /// Starts keeping this lease on the current runtime's keeper: renewal (when `renew` and
    /// the lease has a TTL), the deadline, the session's proven bound, and the backend's
    /// session watcher, which is polled here once (so a grant needs no task switch) and
    /// afterwards by the keeper when it wakes.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub(crate) fn start(self: &Arc<Self>, renew: bool) {
        let keeper = KeeperService::current();
        self.keeper
            .set(Arc::downgrade(&keeper))
            .expect("a lease is kept once");
        keeper.lease_started();
        let lease = Arc::clone(&self.lease);
        {
            let mut k = self.keep();
            let ttl_lease = self.deadline().is_some();
            k.renewing = renew && ttl_lease;
            k.checking = if ttl_lease {
                None
            } else {
                self.lease.health_check()
            };
            k.next_renew = match (k.renewing, k.checking) {
                (true, _) => Some(renew_at(Instant::now(), self.ttl / 3)),
                (false, Some(every)) => Some(renew_at(Instant::now(), every)),
                (false, None) => None,
            };
            k.session = Some(Box::pin(async move { lease.session_lost().await }));
            self.reschedule(&mut k);
        }
        self.poll_session();
    }

    /// Stops keeping the lease (released or lost): its timer, renewal and session watcher go.
    pub(crate) fn stop(&self) {
        let (timer, renewal, session) = {
            let mut k = self.keep();
            if k.stopped {
                return;
            }
            k.stopped = true;
            (k.timer.take(), k.renewal.take(), k.session.take())
        };
        if let Some(keeper) = self.keeper() {
            if let Some(timer) = timer {
                keeper.remove_timer(timer);
            }
            keeper.lease_stopped();
        }
        if let Some(renewal) = renewal {
            renewal.abort();
        }
        drop(session);
    }

    fn finish(&self, reason: LossReason) {
        self.mark_lost(reason);
        self.stop();
    }

    /// Puts the lease's timer at the earliest of its deadline, its session's proven bound and
    /// its next renewal.
    fn reschedule(self: &Arc<Self>, k: &mut Keep) {
        let deadline = self.deadline();
        // A session-bound lease whose backend proves the session alive up to a point: when that
        // point passes unproven, the lock is lost for the holder at the moment `is_held` turns
        // false, not later when (or if) the backend notices.
        let proven = if deadline.is_none() {
            self.lease.session_valid_until()
        } else {
            None
        };
        let at = [proven, deadline, k.next_renew]
            .into_iter()
            .flatten()
            .min()
            .map(|at| (at, self.id));
        if let Some(keeper) = self.keeper() {
            keeper.set_timer(self, k.timer, at);
        }
        k.timer = at;
    }

    /// The keeper found this lease's timer due (and took it off the queue).
    pub(crate) fn on_timer(self: &Arc<Self>, key: TimerKey) {
        let mut k = self.keep();
        if k.stopped {
            return;
        }
        if k.timer == Some(key) {
            k.timer = None;
        }
        let now = Instant::now();
        let deadline = self.deadline();
        if deadline.is_none() && self.lease.session_valid_until().is_some_and(|d| d <= now) {
            drop(k);
            self.finish(LossReason::SessionEnded(
                "the session could not be proven alive before its timeout".into(),
            ));
            return;
        }
        if deadline.is_some_and(|d| d <= now) {
            drop(k);
            self.finish(LossReason::Expired);
            return;
        }
        if (k.renewing || k.checking.is_some()) && k.next_renew.is_some_and(|at| at <= now) {
            k.next_renew = None;
            let task = match k.checking {
                Some(every) => tokio::spawn(check_once(Arc::clone(self), every)),
                None => tokio::spawn(renew_once(Arc::clone(self))),
            };
            k.renewal = Some(task.abort_handle());
        }
        self.reschedule(&mut k);
    }

    /// Polls the backend's session watcher (from the grant, then whenever its waker fires).
    pub(crate) fn poll_session(self: &Arc<Self>) {
        let mut fut = {
            let mut k = self.keep();
            if k.polling {
                k.woken = true;
                return;
            }
            let Some(fut) = k.session.take() else { return };
            k.polling = true;
            fut
        };
        let waker = Waker::from(Arc::clone(self));
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(reason) = fut.as_mut().poll(&mut cx) {
                self.keep().polling = false;
                self.finish(reason);
                return;
            }
            let mut k = self.keep();
            if k.stopped {
                k.polling = false;
                drop(k);
                return; // drops the watcher
            }
            if std::mem::take(&mut k.woken) {
                continue;
            }
            k.polling = false;
            k.session = Some(fut);
            return;
        }
    }
}

/// The session watcher's waker: queue the lease for the keeper to poll.
impl Wake for LeaseCell {
    fn wake(self: Arc<Self>) {
        if let Some(keeper) = self.keeper() {
            keeper.poll_later(self);
        }
    }
}

/// One background renewal, bounded by the deadline.
async fn renew_once(cell: Arc<LeaseCell>) {
    let Some(deadline) = cell.deadline() else {
        return;
    };
    let sent = Instant::now();
    let out = tokio::time::timeout_at(deadline.into(), cell.lease.renew(cell.ttl)).await;
    let retry = (cell.ttl / 10).max(Duration::from_millis(5));
    let mut k = cell.keep();
    if k.stopped {
        return;
    }
    k.renewal = None;
    match out {
        Ok(Ok(true)) => {
            cell.move_deadline(sent);
            k.next_renew = Some(renew_at(sent, cell.ttl / 3));
        }
        Ok(Ok(false)) => {
            drop(k);
            cell.finish(LossReason::NotOwner);
            return;
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "lease renewal failed; retrying before the deadline");
            k.next_renew = Some(Instant::now() + retry);
        }
        Err(_) => {
            // A manual renewal may have moved the deadline meanwhile.
            if cell.deadline().is_none_or(|d| d <= Instant::now()) {
                drop(k);
                cell.finish(LossReason::Expired);
                return;
            }
            k.next_renew = Some(Instant::now() + retry);
        }
    }
    cell.reschedule(&mut k);
}

/// One health check of a session lease (its `renew`, which the backend bounds): a failure is
/// a loss; a confirmed session is checked again `every` later.
async fn check_once(cell: Arc<LeaseCell>, every: Duration) {
    let out = cell.lease.renew(cell.ttl).await;
    let mut k = cell.keep();
    if k.stopped {
        return;
    }
    k.renewal = None;
    match out {
        Ok(true) => k.next_renew = Some(renew_at(Instant::now(), every)),
        // The lease was released meanwhile; its release stops the keeping.
        Ok(false) => return,
        Err(err) => {
            drop(k);
            cell.finish(LossReason::SessionEnded(format!(
                "the health check failed: {err}"
            )));
            return;
        }
    }
    cell.reschedule(&mut k);
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
