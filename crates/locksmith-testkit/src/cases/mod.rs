//! The behaviour cases. Each is a plain async function that panics (via `assert!`) on failure;
//! [`CASES`] lists them with what they need from the backend.

mod basic;
mod election;
mod keys;
mod lease;
mod process;
mod waiting;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use locksmith_core::{Capabilities, LeaseModel, LockOptions, Locker, WaitPolicy};

use crate::target::Target;

/// What a case needs from the backend.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Needs {
    Nothing,
    /// A TTL lease the holder can stop renewing.
    TtlLease,
    /// FIFO waiters.
    Fairness,
    /// `holder()` introspection.
    HolderInfo,
    /// Locks visible to other processes.
    CrossProcess,
}

impl Needs {
    pub(crate) fn missing_from(self, caps: &Capabilities) -> Option<&'static str> {
        match self {
            Needs::Nothing => None,
            Needs::TtlLease if caps.lease_model != LeaseModel::Ttl => Some(
                "session-bound locks have no TTL lease to stop renewing; session loss is tested \
                 by the backend's own tests",
            ),
            Needs::Fairness if !caps.fair => Some("the backend does not promise FIFO waiters"),
            Needs::HolderInfo if !caps.holder_info => {
                Some("the backend cannot tell who holds a key")
            }
            Needs::CrossProcess if !caps.cross_process => {
                Some("the backend's locks live inside one process")
            }
            _ => None,
        }
    }
}

type CaseFn = fn(Ctx) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// One named case.
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) needs: Needs,
    pub(crate) run: CaseFn,
}

macro_rules! case {
    ($needs:ident, $path:path, $name:literal) => {
        Case {
            name: $name,
            needs: Needs::$needs,
            run: |cx| Box::pin($path(cx)),
        }
    };
}

/// Every case, in the order they are listed.
pub(crate) const CASES: &[Case] = &[
    case!(
        Nothing,
        basic::concurrent_tasks_never_overlap,
        "concurrent_tasks_never_overlap"
    ),
    case!(
        Nothing,
        basic::try_acquire_while_held_is_none,
        "try_acquire_while_held_is_none"
    ),
    case!(Nothing, basic::release_then_acquire, "release_then_acquire"),
    case!(
        Nothing,
        basic::tokens_strictly_increase,
        "tokens_strictly_increase"
    ),
    case!(
        Nothing,
        basic::dropped_guard_releases,
        "dropped_guard_releases"
    ),
    case!(
        Nothing,
        basic::with_lock_runs_and_releases,
        "with_lock_runs_and_releases"
    ),
    case!(
        Nothing,
        waiting::wait_with_timeout_fails_in_bound,
        "wait_with_timeout_fails_in_bound"
    ),
    case!(
        Nothing,
        waiting::no_wait_policy_fails_at_once,
        "no_wait_policy_fails_at_once"
    ),
    case!(
        Nothing,
        waiting::waiter_is_woken_by_release,
        "waiter_is_woken_by_release"
    ),
    case!(
        Nothing,
        waiting::acquire_is_cancel_safe,
        "acquire_is_cancel_safe"
    ),
    case!(
        Nothing,
        waiting::thousand_waiters_all_served,
        "thousand_waiters_all_served"
    ),
    case!(
        Fairness,
        waiting::waiters_are_served_in_order,
        "waiters_are_served_in_order"
    ),
    case!(
        TtlLease,
        lease::stopped_renewal_loses_lease,
        "stopped_renewal_loses_lease"
    ),
    case!(TtlLease, lease::renewal_keeps_lease, "renewal_keeps_lease"),
    case!(
        TtlLease,
        lease::stale_holder_is_rejected,
        "stale_holder_is_rejected"
    ),
    case!(
        TtlLease,
        lease::protect_cancels_work_on_loss,
        "protect_cancels_work_on_loss"
    ),
    case!(
        HolderInfo,
        basic::holder_info_names_owner,
        "holder_info_names_owner"
    ),
    case!(
        CrossProcess,
        process::killed_holder_process_frees_lock,
        "killed_holder_process_frees_lock"
    ),
    case!(Nothing, election::leader_handover, "leader_handover"),
    case!(
        TtlLease,
        election::leadership_loss_is_reported,
        "leadership_loss_is_reported"
    ),
    case!(
        Nothing,
        keys::unicode_short_and_maximum_keys,
        "unicode_short_and_maximum_keys"
    ),
    case!(
        Nothing,
        keys::invalid_keys_are_errors,
        "invalid_keys_are_errors"
    ),
    case!(
        Nothing,
        basic::native_pair_leaves_the_key_free,
        "native_pair_leaves_the_key_free"
    ),
];

/// What a case gets: the target, and a key prefix no other case or run shares.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub(crate) target: Target,
    prefix: String,
}

/// Generous bound for waits that should end quickly; only a hang exceeds it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

impl Ctx {
    pub(crate) fn new(target: Target, case: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let prefix = format!("lsct-{}-{nanos:x}-{case}/", std::process::id());
        Self { target, prefix }
    }

    /// A new, independent client.
    pub(crate) async fn client(&self) -> Locker {
        let backend = self
            .target
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", self.target.url));
        Locker::new(Arc::clone(&backend))
    }

    /// A key unique to this case and run.
    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// Options with a bounded wait.
pub(crate) fn opts() -> LockOptions {
    LockOptions::new().wait(WaitPolicy::Timeout(PATIENCE))
}
