//! The per-runtime task that keeps every lease of a tokio runtime: one timer queue for all
//! renewals, deadlines and session bounds, and one queue of leases whose session watcher was
//! woken. A grant costs an entry in the queue, not a task of its own: no task is spawned,
//! scheduled or aborted per grant, and the task is only woken when a new entry comes due
//! before everything already queued (with the default TTL, almost never).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Id};
use tokio::sync::Notify;

use crate::keeper::LeaseCell;

/// Where a lease's timer sits in the queue: its instant, then the lease's unique number.
pub(crate) type TimerKey = (Instant, u64);

/// While leases are kept (and for [`LINGER`] after the last one ends) the task never sleeps
/// longer than this. tokio's time driver wakes its parked thread whenever a timer is set
/// earlier than every timer it already has; with none pending, each request's own timeout (a
/// statement's bound, a health check, a client's response timeout) cost a thread wake-up, two
/// per SQL acquire+release. With this timer pending, timeouts longer than it cost none.
const ANCHOR: Duration = Duration::from_millis(500);
/// How long the task keeps [`ANCHOR`] after the last lease ended.
const LINGER: Duration = Duration::from_secs(10);

/// The keeper of one runtime.
#[derive(Debug, Default)]
pub(crate) struct KeeperService {
    state: Mutex<State>,
    wake: Notify,
}

#[derive(Debug, Default)]
struct State {
    timers: BTreeMap<TimerKey, Arc<LeaseCell>>,
    /// Leases whose session watcher asked to be polled.
    ready: Vec<Arc<LeaseCell>>,
    /// When the task will wake by itself; `None` while it runs or waits without a timer.
    sleeping_until: Option<Instant>,
    /// The task is between its last look at the queues and its wait: a change must wake it.
    idle: bool,
    /// Leases started and not yet stopped.
    live: usize,
    /// When the last lease stopped.
    last_stop: Option<Instant>,
}

impl State {
    /// When the idle task wakes by itself: at its next timer, and no later than [`ANCHOR`] from
    /// now while leases are kept (or one stopped less than [`LINGER`] ago).
    fn wake_at(&self, now: Instant) -> Option<Instant> {
        let next = self.timers.first_key_value().map(|(k, _)| k.0);
        let anchored = self.live > 0 || self.last_stop.is_some_and(|t| now - t < LINGER);
        anchored_wake(next, anchored, now)
    }
}

/// The next timer, or no later than [`ANCHOR`] from `now` when `anchored`.
fn anchored_wake(next: Option<Instant>, anchored: bool, now: Instant) -> Option<Instant> {
    match (next, anchored) {
        (next, false) => next,
        (Some(at), true) => Some(at.min(now + ANCHOR)),
        (None, true) => Some(now + ANCHOR),
    }
}

impl KeeperService {
    /// The keeper of the current tokio runtime, started on first use.
    ///
    /// # Panics
    /// Outside a tokio runtime, like `tokio::spawn`.
    pub(crate) fn current() -> Arc<Self> {
        let handle = Handle::current();
        let id = handle.id();
        thread_local! {
            static CACHED: std::cell::RefCell<Option<(Id, Weak<KeeperService>)>> =
                const { std::cell::RefCell::new(None) };
        }
        if let Some(svc) = CACHED.with_borrow(|c| {
            c.as_ref()
                .filter(|(cached, _)| *cached == id)
                .and_then(|(_, svc)| svc.upgrade())
        }) {
            return svc;
        }
        static REGISTRY: Mutex<Vec<(Id, Weak<KeeperService>)>> = Mutex::new(Vec::new());
        let mut registry = REGISTRY.lock().expect("keeper registry");
        // Runtimes that shut down dropped their keeper task and with it the service.
        registry.retain(|(_, svc)| svc.strong_count() > 0);
        let live = registry
            .iter()
            .find(|(rt, _)| *rt == id)
            .and_then(|(_, svc)| svc.upgrade());
        let svc = match live {
            Some(svc) => svc,
            None => {
                // None yet, or its task went away just now (the runtime is shutting down):
                // a new one, which such a runtime drops at once.
                registry.retain(|(rt, _)| *rt != id);
                let svc = Arc::new(Self::default());
                handle.spawn(run(Arc::clone(&svc)));
                registry.push((id, Arc::downgrade(&svc)));
                svc
            }
        };
        drop(registry);
        CACHED.with_borrow_mut(|c| *c = Some((id, Arc::downgrade(&svc))));
        svc
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("keeper state")
    }

    /// Moves `cell`'s timer from `old` to `at`, waking the task if `at` comes before
    /// everything it waits for.
    pub(crate) fn set_timer(
        &self,
        cell: &Arc<LeaseCell>,
        old: Option<TimerKey>,
        at: Option<TimerKey>,
    ) {
        if old == at {
            return;
        }
        let mut st = self.state();
        if let Some(old) = old {
            st.timers.remove(&old);
        }
        let Some(at) = at else { return };
        st.timers.insert(at, Arc::clone(cell));
        if st.idle && st.sleeping_until.is_none_or(|until| at.0 < until) {
            st.sleeping_until = Some(at.0);
            drop(st);
            self.wake.notify_one();
        }
    }

    /// Counts a lease the task keeps from now on; wakes a task that waits without a timer or
    /// with one later than [`ANCHOR`] from now, so that it sets its anchor.
    pub(crate) fn lease_started(&self) {
        let mut st = self.state();
        st.live += 1;
        let later = Instant::now() + ANCHOR;
        if st.idle && st.sleeping_until.is_none_or(|until| until > later) {
            st.idle = false;
            drop(st);
            self.wake.notify_one();
        }
    }

    /// Counts a lease that stopped (released or lost).
    pub(crate) fn lease_stopped(&self) {
        let mut st = self.state();
        st.live = st.live.saturating_sub(1);
        st.last_stop = Some(Instant::now());
    }

    /// Takes a stopped lease's timer off the queue.
    pub(crate) fn remove_timer(&self, at: TimerKey) {
        let removed = self.state().timers.remove(&at);
        drop(removed);
    }

    /// Queues `cell`'s session watcher to be polled by the task.
    pub(crate) fn poll_later(&self, cell: Arc<LeaseCell>) {
        let mut st = self.state();
        st.ready.push(cell);
        let wake = std::mem::take(&mut st.idle);
        drop(st);
        if wake {
            self.wake.notify_one();
        }
    }
}

/// The task: polls woken session watchers and handles due timers, then waits for the next
/// timer or a wake-up.
async fn run(svc: Arc<KeeperService>) {
    let mut due = Vec::new();
    loop {
        let (ready, next) = {
            let mut st = svc.state();
            let now = Instant::now();
            while let Some(entry) = st.timers.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let key = *entry.key();
                due.push((key, entry.remove()));
            }
            let ready = std::mem::take(&mut st.ready);
            let next = st.wake_at(now);
            let idle = ready.is_empty() && due.is_empty();
            st.idle = idle;
            st.sleeping_until = if idle { next } else { None };
            (ready, idle.then_some(next))
        };
        for cell in ready {
            cell.poll_session();
        }
        for (key, cell) in due.drain(..) {
            cell.on_timer(key);
        }
        if let Some(next) = next {
            match next {
                Some(at) => {
                    tokio::select! {
                        () = svc.wake.notified() => {}
                        () = tokio::time::sleep_until(at.into()) => {}
                    }
                }
                None => svc.wake.notified().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_wakes_within_the_anchor_only_while_leases_are_kept_or_just_ended() {
        let now = Instant::now();
        let (soon, late) = (now + ANCHOR / 2, now + Duration::from_secs(60));
        // Anchored: the earlier of the next timer and the anchor.
        assert_eq!(anchored_wake(None, true, now), Some(now + ANCHOR));
        assert_eq!(anchored_wake(Some(soon), true, now), Some(soon));
        assert_eq!(anchored_wake(Some(late), true, now), Some(now + ANCHOR));
        // Not anchored: the next timer only.
        assert_eq!(anchored_wake(None, false, now), None);
        assert_eq!(anchored_wake(Some(late), false, now), Some(late));
        // Anchored while a lease is kept, and for LINGER after the last one stopped.
        let mut st = State::default();
        assert_eq!(st.wake_at(now), None);
        st.live = 1;
        assert_eq!(st.wake_at(now), Some(now + ANCHOR));
        st.live = 0;
        st.last_stop = Some(now);
        let t = now + LINGER / 2;
        assert_eq!(st.wake_at(t), Some(t + ANCHOR));
        assert_eq!(st.wake_at(now + LINGER), None);
    }
}
