//! The shared lease keeper (one per tokio runtime): renewal and expiry of many leases at once,
//! runtimes that come and go, a backend's session watcher that fires long after the grant, and
//! the health checks of session leases.
//! The memory backend gives real TTL leases; the session-bound backend below is test-only
//! machinery for the keeper itself (what a backend does is tested against real servers in
//! each backend's crate).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use locksmith_core::{
    AcquireRequest, Backend, Capabilities, Expiry, FencingToken, Grant, HolderInfo, Lease,
    LeaseModel, LockKey, LockOptions, Locker, LossReason, MemoryBackend, Result,
};
use tokio::sync::watch;

const PATIENCE: Duration = Duration::from_secs(20);

fn ttl_opts(ms: u64) -> LockOptions {
    LockOptions::new().ttl(Duration::from_millis(ms))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_leases_renew_together_and_unrenewed_ones_expire() {
    let locker = Locker::new(Arc::new(MemoryBackend::new()));
    let mut renewed = Vec::new();
    for i in 0..200 {
        renewed.push(
            locker
                .acquire(format!("renewed-{i}").as_str(), &ttl_opts(600))
                .await
                .unwrap(),
        );
    }
    let mut left = Vec::new();
    for i in 0..200 {
        left.push(
            locker
                .acquire(format!("left-{i}").as_str(), &ttl_opts(300).renew(false))
                .await
                .unwrap(),
        );
    }
    // Four TTLs later: every renewed lease still held, every other one reported expired.
    tokio::time::sleep(Duration::from_millis(2400)).await;
    for g in &renewed {
        assert!(g.is_held(), "{} was not renewed", g.key());
    }
    for g in &left {
        let reason = tokio::time::timeout(PATIENCE, g.lost()).await.unwrap();
        assert_eq!(reason, LossReason::Expired, "{}", g.key());
        assert!(!g.is_held());
    }
    // The expired keys are free for others; the renewed ones are not.
    assert!(
        locker
            .try_acquire("left-0", &ttl_opts(300))
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        locker
            .try_acquire("renewed-0", &ttl_opts(300))
            .await
            .unwrap()
            .is_none()
    );
    for g in renewed {
        assert!(g.release().await.unwrap());
    }
}

#[test]
fn a_runtime_shutting_down_leaves_other_runtimes_leases_kept() {
    let backend = Arc::new(MemoryBackend::new());
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    };
    let (a, b) = (rt(), rt());
    let locker = Locker::new(backend);
    let on_a = a.block_on(locker.acquire("on-a", &ttl_opts(300))).unwrap();
    let on_b = b.block_on(locker.acquire("on-b", &ttl_opts(300))).unwrap();
    drop(on_a);
    a.shutdown_timeout(Duration::from_secs(5));
    b.block_on(async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert!(on_b.is_held(), "runtime b's keeper kept renewing");
        // A new grant on b after a's keeper went away is kept too.
        let again = locker.acquire("on-b-2", &ttl_opts(300)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(again.is_held());
        assert!(again.release().await.unwrap());
        assert!(on_b.release().await.unwrap());
    });
}

#[tokio::test]
async fn a_manual_renewal_moves_the_deadline_of_an_unrenewed_lease() {
    let locker = Locker::new(Arc::new(MemoryBackend::new()));
    let g = locker
        .acquire("manual", &ttl_opts(400).renew(false))
        .await
        .unwrap();
    let start = Instant::now();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(g.renew().await.unwrap());
    }
    assert!(start.elapsed() > Duration::from_millis(700));
    assert!(
        g.is_held(),
        "manual renewals kept it past its first deadline"
    );
    let reason = tokio::time::timeout(PATIENCE, g.lost()).await.unwrap();
    assert_eq!(reason, LossReason::Expired);
}

/// A session-bound backend for the keeper's own tests: every grant's lease is made by the
/// function it holds.
struct SessionBackend<F>(F);

impl<F> std::fmt::Debug for SessionBackend<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionBackend")
    }
}

#[async_trait]
impl<F: Fn() -> Arc<dyn Lease> + Send + Sync + 'static> Backend for SessionBackend<F> {
    fn scheme(&self) -> &'static str {
        "sessions"
    }
    fn display_url(&self) -> String {
        "sessions://test".into()
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(LeaseModel::Session).cross_process(false)
    }
    async fn try_acquire(&self, _key: &LockKey, _req: &AcquireRequest) -> Result<Option<Grant>> {
        Ok(Some(Grant {
            lease: (self.0)(),
            token: FencingToken(1),
            expiry: Expiry::Session,
        }))
    }
    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        _deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        self.try_acquire(key, req).await
    }
    async fn holder(&self, _key: &LockKey) -> Result<Option<HolderInfo>> {
        Ok(None)
    }
}

/// A lease whose session ends when the test says so; its watcher is woken (without ending)
/// whenever the test pokes it.
#[derive(Debug)]
struct SessionLease {
    end: watch::Receiver<u64>,
}

#[async_trait]
impl Lease for SessionLease {
    async fn renew(&self, _ttl: Duration) -> Result<bool> {
        Ok(true)
    }
    async fn release(&self) -> Result<bool> {
        Ok(true)
    }
    async fn session_lost(&self) -> LossReason {
        let mut rx = self.end.clone();
        // Odd values poke (wake without ending); an even value above zero ends the session.
        let _ = rx.wait_for(|n| *n > 0 && n % 2 == 0).await;
        LossReason::SessionEnded("the test ended it".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_watcher_woken_long_after_the_grant_reports_the_loss() {
    let sessions = Arc::new(watch::channel(0u64).0);
    let for_grants = Arc::clone(&sessions);
    let locker = Locker::new(Arc::new(SessionBackend(move || {
        Arc::new(SessionLease {
            end: for_grants.subscribe(),
        }) as Arc<dyn Lease>
    })));
    let guards: Vec<_> = acquire_many(&locker, 50).await;
    // Wake every watcher many times from another thread without ending the sessions: the
    // keeper polls them and they stay held.
    let poker = Arc::clone(&sessions);
    std::thread::spawn(move || {
        for i in 0..100u64 {
            poker.send_replace(2 * i + 1);
        }
    })
    .join()
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for g in &guards {
        assert!(g.is_held());
    }
    // Now end them, again from another thread: every guard's lost() resolves.
    let ender = Arc::clone(&sessions);
    std::thread::spawn(move || ender.send_replace(1000))
        .join()
        .unwrap();
    for g in &guards {
        let reason = tokio::time::timeout(PATIENCE, g.lost()).await.unwrap();
        assert!(matches!(reason, LossReason::SessionEnded(_)), "{reason:?}");
        assert!(!g.is_held());
    }
}

/// A lease that asks the keeper for health checks every 20 ms; each check (`renew`) is
/// counted, and fails from the `fail_from`-th on.
#[derive(Debug)]
struct CheckedLease {
    checks: Arc<AtomicU32>,
    fail_from: u32,
}

#[async_trait]
impl Lease for CheckedLease {
    async fn renew(&self, _ttl: Duration) -> Result<bool> {
        let n = self.checks.fetch_add(1, Ordering::SeqCst) + 1;
        if n >= self.fail_from {
            return Err(locksmith_core::Error::backend(
                "checked://test",
                None,
                "the session does not answer",
                None,
            ));
        }
        Ok(true)
    }
    async fn release(&self) -> Result<bool> {
        Ok(true)
    }
    fn health_check(&self) -> Option<Duration> {
        Some(Duration::from_millis(20))
    }
    async fn session_lost(&self) -> LossReason {
        std::future::pending().await
    }
}

/// A backend whose leases are [`CheckedLease`]s sharing `checks`.
fn checked(checks: &Arc<AtomicU32>, fail_from: u32) -> Locker {
    let checks = Arc::clone(checks);
    Locker::new(Arc::new(SessionBackend(move || {
        Arc::new(CheckedLease {
            checks: Arc::clone(&checks),
            fail_from,
        }) as Arc<dyn Lease>
    })))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keeper_checks_a_session_lease_until_a_check_fails_and_reports_that_as_a_loss() {
    let checks = Arc::new(AtomicU32::new(0));
    let locker = checked(&checks, 4);
    // Checks are not renewals: they run with renewal off too.
    let guard = locker
        .acquire("checked", &LockOptions::new().renew(false))
        .await
        .unwrap();
    let reason = tokio::time::timeout(PATIENCE, guard.lost()).await.unwrap();
    match reason {
        LossReason::SessionEnded(why) => {
            assert!(why.contains("health check failed"), "{why}");
            assert!(why.contains("does not answer"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!guard.is_held());
    assert_eq!(
        checks.load(Ordering::SeqCst),
        4,
        "three passed, the fourth failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_session_lease_is_checked_no_more() {
    let checks = Arc::new(AtomicU32::new(0));
    let locker = checked(&checks, u32::MAX);
    let guard = locker
        .acquire("checked", &LockOptions::new())
        .await
        .unwrap();
    let start = Instant::now();
    while checks.load(Ordering::SeqCst) < 2 {
        assert!(start.elapsed() < PATIENCE, "no health checks");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(guard.is_held());
    assert!(guard.release().await.unwrap());
    let after = checks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(checks.load(Ordering::SeqCst), after);
}

/// Acquires `n` keys one after the other.
async fn acquire_many(locker: &Locker, n: usize) -> Vec<locksmith_core::Guard> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(
            locker
                .acquire(format!("s-{i}").as_str(), &LockOptions::new())
                .await
                .unwrap(),
        );
    }
    out
}
