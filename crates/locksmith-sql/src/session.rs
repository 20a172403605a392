//! Sessions (connections) as the engine holds them: counted, pooled while idle.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::driver::Driver;

/// Connection counts of one backend, for tests, benchmarks and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Connections opened since the backend was created.
    pub opened: u64,
    /// Connections open now (held locks, waits, idle ones).
    pub open_now: u64,
    /// The most connections open at one time.
    pub peak: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    opened: AtomicU64,
    open_now: AtomicU64,
    peak: AtomicU64,
}

impl Counters {
    pub(crate) fn stats(&self) -> ConnectionStats {
        ConnectionStats {
            opened: self.opened.load(Ordering::Relaxed),
            open_now: self.open_now.load(Ordering::Relaxed),
            peak: self.peak.load(Ordering::Relaxed),
        }
    }
}

/// One open connection. Dropping the last reference closes it, which makes the server
/// release every lock the session held.
pub(crate) struct Session<D: Driver> {
    pub(crate) conn: D::Conn,
    counters: Arc<Counters>,
}

impl<D: Driver> Session<D> {
    pub(crate) fn new(conn: D::Conn, counters: &Arc<Counters>) -> Arc<Self> {
        counters.opened.fetch_add(1, Ordering::Relaxed);
        let now = counters.open_now.fetch_add(1, Ordering::Relaxed) + 1;
        counters.peak.fetch_max(now, Ordering::Relaxed);
        Arc::new(Self {
            conn,
            counters: Arc::clone(counters),
        })
    }
}

impl<D: Driver> Drop for Session<D> {
    fn drop(&mut self) {
        self.counters.open_now.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Idle sessions that hold no lock, kept for reuse.
pub(crate) struct Idle<D: Driver> {
    sessions: Mutex<Vec<Arc<Session<D>>>>,
    max: usize,
}

impl<D: Driver> Idle<D> {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            sessions: Mutex::new(Vec::new()),
            max,
        }
    }

    pub(crate) fn take(&self) -> Option<Arc<Session<D>>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    /// Keeps `s` for reuse unless the pool is full (then it is closed).
    pub(crate) fn put(&self, s: Arc<Session<D>>) {
        let mut v = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if v.len() < self.max {
            v.push(s);
        }
    }
}
