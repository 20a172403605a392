//! Waiting on the OS lock without a thread per waiter, and without leaking one per
//! cancelled wait.
//!
//! Local waiters on a key line up in a [`KeyedQueue`]; only the head of the line waits on the
//! OS, by a blocking `flock` on a thread of its own (a plain thread, not tokio's blocking
//! pool: a runtime waits for its blocking pool when it shuts down, and this wait can last as
//! long as another process holds the lock). The wait is a [`Pending`] kept in the key's queue
//! state, so when the head gives up (its future is dropped, or its deadline passes) the next
//! waiter in line takes the same wait over instead of starting a second thread.
//!
//! When no local waiter is left, the queue drops the state: the wait becomes an orphan,
//! remembered per key by the backend, and is *unwanted*: if its thread gets the lock, it
//! unlocks at once. The next acquire of that key adopts the orphan (wanted again) instead of
//! starting another thread, so repeated timed-out acquires against a long-held lock cost one
//! thread, not one each.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use locksmith_core::KeyedQueue;
use tokio::sync::Notify;

use crate::error::FsError;
use crate::lockfile;

/// A backend's OS waits: the unwanted ones still blocked in `flock` (by file stem), and a
/// count of threads started.
#[derive(Debug, Default)]
pub(crate) struct Waits {
    orphans: Mutex<HashMap<String, Arc<OsWait>>>,
    started: AtomicU64,
}

impl Waits {
    /// How many wait threads this backend has started.
    #[cfg(test)]
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// How many unwanted waits are still blocked.
    #[cfg(test)]
    pub(crate) fn orphans(&self) -> usize {
        lock(&self.orphans).len()
    }
}

/// Shared handle on [`Waits`].
pub(crate) type Orphans = Arc<Waits>;

/// The backend's queue of local waiters, by file stem.
pub(crate) type Queue = KeyedQueue<KeyState>;

/// Locks a std mutex, ignoring poisoning: the data stays consistent at every unlock here.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// State of one key's local line, kept across cancelled waiters.
#[derive(Debug, Default)]
pub(crate) struct KeyState {
    /// The OS wait in flight for this key, if any.
    pub(crate) pending: Option<Pending>,
}

/// One blocking `flock` wait, shared by its thread and the backend.
#[derive(Debug)]
pub(crate) struct OsWait {
    slot: Mutex<Slot>,
    done: Notify,
}

#[derive(Debug)]
struct Slot {
    /// A local waiter will take the outcome; otherwise the thread unlocks at once.
    wanted: bool,
    /// The thread has ended.
    finished: bool,
    /// The outcome, kept while wanted and not yet taken.
    outcome: Option<Result<File, FsError>>,
}

/// A wanted [`OsWait`]. Dropping it makes the wait unwanted (unlocking a lock it already got)
/// and, if the thread still blocks, leaves it with the backend as an orphan.
#[derive(Debug)]
pub(crate) struct Pending {
    wait: Arc<OsWait>,
    orphans: Orphans,
    stem: String,
}

impl Pending {
    /// Starts a thread that blocks until it holds the lock file at `path`.
    pub(crate) fn start(
        path: &std::path::Path,
        stem: &str,
        orphans: &Orphans,
    ) -> Result<Self, FsError> {
        let wait = Arc::new(OsWait {
            slot: Mutex::new(Slot {
                wanted: true,
                finished: false,
                outcome: None,
            }),
            done: Notify::new(),
        });
        let (w, p, o, s) = (
            Arc::clone(&wait),
            path.to_path_buf(),
            Arc::clone(orphans),
            stem.to_owned(),
        );
        std::thread::Builder::new()
            .name("locksmith-flock".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                let outcome = lockfile::lock_blocking(&p);
                let mut slot = lock(&w.slot);
                slot.finished = true;
                let unwanted = if slot.wanted {
                    slot.outcome = Some(outcome);
                    None
                } else {
                    Some(outcome)
                };
                drop(slot);
                drop(unwanted); // unlocks a lock nobody waits for any more
                w.done.notify_one();
                let mut orphans = lock(&o.orphans);
                if orphans.get(&s).is_some_and(|x| Arc::ptr_eq(x, &w)) {
                    orphans.remove(&s);
                }
            })
            .map_err(|e| FsError::io("starting a thread to wait for", path, e))?;
        orphans.started.fetch_add(1, Ordering::Relaxed);
        Ok(Self {
            wait,
            orphans: Arc::clone(orphans),
            stem: stem.to_owned(),
        })
    }

    /// Takes over the orphaned wait of `stem`, if its thread still blocks.
    pub(crate) fn adopt(stem: &str, orphans: &Orphans) -> Option<Self> {
        let mut map = lock(&orphans.orphans);
        let wait = map.remove(stem)?;
        let mut slot = lock(&wait.slot);
        if slot.finished {
            return None;
        }
        slot.wanted = true;
        drop(slot);
        drop(map);
        Some(Self {
            wait,
            orphans: Arc::clone(orphans),
            stem: stem.to_owned(),
        })
    }

    /// The outcome if the thread has ended, without waiting.
    pub(crate) fn try_take(&self) -> Option<Result<File, FsError>> {
        let mut slot = lock(&self.wait.slot);
        if !slot.finished {
            return None;
        }
        Some(slot.outcome.take().unwrap_or_else(|| {
            Err(FsError::msg(
                "internal: the outcome of an OS lock wait was taken twice",
            ))
        }))
    }

    /// Waits for the thread's outcome.
    ///
    /// Cancel-safe: the outcome stays in the slot until taken.
    pub(crate) async fn wait(&self) -> Result<File, FsError> {
        loop {
            if let Some(outcome) = self.try_take() {
                return outcome;
            }
            // `notify_one` stores a permit when nobody awaits, so an end between the check
            // above and this await is not missed.
            self.wait.done.notified().await;
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut map = lock(&self.orphans.orphans);
        let mut slot = lock(&self.wait.slot);
        slot.wanted = false;
        let outcome = slot.outcome.take();
        let finished = slot.finished;
        drop(slot);
        if !finished {
            map.insert(self.stem.clone(), Arc::clone(&self.wait));
        }
        drop(map);
        drop(outcome); // a lock got for a waiter that left is unlocked here
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn cancelled_waits_are_reused_and_unlock_when_unwanted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.lock");
        let orphans = Orphans::default();
        let holder = lockfile::try_lock(&path).unwrap().expect("free");

        let p = Pending::start(&path, "k", &orphans).unwrap();
        let cancelled = tokio::time::timeout(Duration::from_millis(50), p.wait()).await;
        assert!(cancelled.is_err());
        assert!(p.try_take().is_none());
        drop(p);
        assert_eq!(
            orphans.orphans(),
            1,
            "the blocked thread is kept as an orphan"
        );

        let p = Pending::adopt("k", &orphans).expect("adopted");
        assert!(orphans.orphans() == 0);
        drop(holder);
        let file = p.wait().await.expect("the adopted wait gets the lock");
        assert!(lockfile::try_lock(&path).unwrap().is_none());
        drop(p);
        drop(file);

        // An unwanted wait unlocks as soon as it gets the lock.
        let holder = lockfile::try_lock(&path).unwrap().expect("free");
        drop(Pending::start(&path, "k", &orphans).unwrap());
        drop(holder);
        let mut free = None;
        for _ in 0..500 {
            free = lockfile::try_lock(&path).unwrap();
            if free.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(free.is_some(), "the orphan let go of the lock");
        drop(free);
        for _ in 0..500 {
            if orphans.orphans() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(orphans.orphans() == 0, "a finished orphan forgets itself");
        assert!(Pending::adopt("k", &orphans).is_none());
    }
}
