//! Options of one lock request.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

/// How long `acquire` may wait for a busy lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitPolicy {
    /// Do not wait: a busy lock is an immediate [`Error::Timeout`] from `acquire`
    /// (use `try_acquire` to get `Ok(None)` instead).
    NoWait,
    /// Wait up to this long.
    Timeout(Duration),
    /// Wait until the lock is granted (or the future is dropped).
    #[default]
    Forever,
}

/// Options of a lock request. Build with the methods; every field has a sensible default.
///
/// ```
/// use std::time::Duration;
/// use locksmith_core::{LockOptions, WaitPolicy};
/// let opts = LockOptions::new()
///     .ttl(Duration::from_secs(10))
///     .wait(WaitPolicy::Timeout(Duration::from_secs(3)))
///     .owner("billing-worker-7");
/// assert!(opts.renew_enabled());
/// ```
#[derive(Clone, Debug)]
pub struct LockOptions {
    ttl: Duration,
    wait: WaitPolicy,
    renew: bool,
    owner: Arc<str>,
    drift: Option<Duration>,
}

/// The longest lease TTL accepted: 365 days.
pub const MAX_TTL: Duration = Duration::from_secs(365 * 86_400);

/// The default lease TTL: 30 seconds.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            wait: WaitPolicy::Forever,
            renew: true,
            owner: shared_default_owner(),
            drift: None,
        }
    }
}

impl LockOptions {
    /// The defaults: TTL 30 s, wait forever, renewal on, owner `host:pid`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lease TTL. On TTL backends (Redis, etcd) the server forgets the lock this long after the
    /// last renewal; on session backends it bounds nothing but the renewal cadence.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// How long `acquire` may wait.
    pub fn wait(mut self, wait: WaitPolicy) -> Self {
        self.wait = wait;
        self
    }

    /// Shorthand for `wait(WaitPolicy::Timeout(d))`.
    pub fn wait_for(self, d: Duration) -> Self {
        self.wait(WaitPolicy::Timeout(d))
    }

    /// Renew the lease in the background (default on). Renewals are sent at most a third of
    /// the TTL after the last confirmed one, so two more attempts fit before the deadline; they
    /// fall on a process-wide grid (up to a quarter of that period early), so that leases with
    /// the same TTL renew together and a backend can batch them (Redis sends them in one
    /// script call). With renewal off the guard reports
    /// the lock lost at the local deadline unless [`crate::Guard::renew`] is called.
    pub fn renew(mut self, on: bool) -> Self {
        self.renew = on;
        self
    }

    /// A label shown to others by introspection (`status`, holder info, leader election).
    /// Default `host:pid`. It is informational: ownership checks use a random secret.
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Arc::from(owner.into());
        self
    }

    /// Clock-drift allowance subtracted from the TTL when computing the local deadline.
    /// Default `ttl / 100 + 2 ms`.
    pub fn drift(mut self, drift: Duration) -> Self {
        self.drift = Some(drift);
        self
    }

    /// The lease TTL.
    pub fn ttl_value(&self) -> Duration {
        self.ttl
    }
    /// The wait policy.
    pub fn wait_policy(&self) -> WaitPolicy {
        self.wait
    }
    /// Whether background renewal is on.
    pub fn renew_enabled(&self) -> bool {
        self.renew
    }
    /// The owner label.
    pub fn owner_label(&self) -> &str {
        &self.owner
    }
    /// The owner label, shared (each acquire's request carries it without a copy).
    pub(crate) fn owner_arc(&self) -> Arc<str> {
        Arc::clone(&self.owner)
    }
    /// The drift allowance in effect.
    pub fn drift_value(&self) -> Duration {
        self.drift
            .unwrap_or(self.ttl / 100 + Duration::from_millis(2))
    }

    /// Checks that the options can work.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] when the TTL is under 10 ms, over [`MAX_TTL`] or not larger
    /// than the drift, or the owner label is empty or over 256 bytes.
    pub fn validate(&self) -> Result<()> {
        if self.ttl > MAX_TTL {
            return Err(Error::InvalidOption(format!(
                "ttl {:?} is too long: at most {} days (renewal keeps a lock as long as needed)",
                self.ttl,
                MAX_TTL.as_secs() / 86_400
            )));
        }
        if self.ttl < Duration::from_millis(10) {
            return Err(Error::InvalidOption(format!(
                "ttl {:?} is too short: use at least 10ms (seconds are typical)",
                self.ttl
            )));
        }
        if self.drift_value() >= self.ttl {
            return Err(Error::InvalidOption(format!(
                "drift allowance {:?} must be smaller than the ttl {:?}",
                self.drift_value(),
                self.ttl
            )));
        }
        if self.owner.is_empty() || self.owner.len() > 256 {
            return Err(Error::InvalidOption(format!(
                "owner label must be 1 to 256 bytes, got {} bytes",
                self.owner.len()
            )));
        }
        Ok(())
    }
}

/// `hostname:pid` of this process.
pub fn default_owner() -> String {
    shared_default_owner().to_string()
}

/// [`default_owner`], made once per process and shared by every [`LockOptions::new`] (most
/// acquires make their options anew). The host name is read once; the label is made again in
/// the child of a fork (which has an id of its own), told by [`FORKS`]. Asking the kernel for
/// the process id on every call cost a system call per acquire.
fn shared_default_owner() -> Arc<str> {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static LABEL: std::sync::Mutex<Option<(u64, Arc<str>)>> = std::sync::Mutex::new(None);
    count_forks();
    let forks = FORKS.load(std::sync::atomic::Ordering::Acquire);
    let mut label = LABEL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match &*label {
        Some((made_after, l)) if *made_after == forks => Arc::clone(l),
        _ => {
            let host =
                HOST.get_or_init(|| gethostname::gethostname().to_string_lossy().into_owned());
            let l: Arc<str> = format!("{host}:{}", std::process::id()).into();
            *label = Some((forks, Arc::clone(&l)));
            l
        }
    }
}

/// Forks this process has been through (in its line of descent): each child of a fork counts
/// one more than its parent, so a label made before the fork is not taken for the child's.
static FORKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Has the C library count [`FORKS`] in every child of a fork, once per process.
fn count_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        {
            extern "C" fn in_child() {
                // An atomic add: async-signal-safe, all a child of a fork may do here.
                FORKS.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            }
            // SAFETY: registers a handler that only adds to an atomic, which is safe to run in
            // the child of a fork; no handler for before or in the parent.
            let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
            if rc != 0 {
                tracing::warn!(rc, "pthread_atfork failed: a forked child would keep its parent's default owner label");
            }
        }
    });
}
