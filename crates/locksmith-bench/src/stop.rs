//! A stop signal shared by the workloads (Ctrl-C, or a caller's own limit).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Set once; every workload ends its current operation and returns what it measured.
#[derive(Debug, Default)]
pub struct Stop {
    flag: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// A signal that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the signal and wakes every sleeper.
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether the signal is set.
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sleeps for `d` or until the signal is set, whichever comes first.
    ///
    /// # Cancel safety
    /// Cancel-safe; it only waits.
    pub async fn sleep(&self, d: Duration) {
        let notified = self.notify.notified();
        if self.is_stopped() {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = notified => {}
        }
    }
}
