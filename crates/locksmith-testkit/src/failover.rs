//! The failover scenario of the consensus backends (ZooKeeper, etcd): a lock is held, the other
//! clients wait in line, and a fault strikes the cluster (its leader killed, say). Checked:
//! never two holders at once; the first holder keeps the lock or is told it lost it; every
//! waiter is served once the cluster recovers, with strictly increasing fencing tokens.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use locksmith_core::{LockOptions, Locker, LossReason};

/// Runs the scenario on `key`: `clients[0]` takes the lock, the others queue behind it, then
/// `fault` runs (it returns once the cluster serves again). `patience` bounds every wait; only
/// a hang exceeds it. Panics on any violation.
pub async fn held_and_queued_through<F, Fut>(
    clients: &[Locker],
    key: &str,
    patience: Duration,
    fault: F,
) where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    assert!(clients.len() >= 2, "a holder and at least one waiter");
    let opts = LockOptions::new().wait_for(patience);
    let inside = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(Mutex::new(Vec::new()));

    let first = clients[0].acquire(key, &opts).await.expect("first grant");
    assert!(!inside.swap(true, Ordering::SeqCst));
    tokens.lock().unwrap().push(first.fencing_token().get());
    // The moment the first holder stops claiming the lock (lost or released), it is out.
    let first_out = tokio::spawn({
        let (lost, inside) = (first.lost(), inside.clone());
        async move {
            let reason = lost.await;
            inside.store(false, Ordering::SeqCst);
            reason
        }
    });

    let mut waiters = Vec::new();
    for c in &clients[1..] {
        let (c, inside, tokens) = (c.clone(), inside.clone(), tokens.clone());
        let (key, opts) = (key.to_owned(), opts.clone());
        waiters.push(tokio::spawn(async move {
            let g = c
                .acquire(key.as_str(), &opts)
                .await
                .expect("service resumes after the fault");
            assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
            tokens.lock().unwrap().push(g.fencing_token().get());
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Out of the critical section before releasing (or after being told of a loss).
            inside.store(false, Ordering::SeqCst);
            if g.is_held() {
                let _ = g.release().await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(waiters.iter().all(|w| !w.is_finished()), "queued");

    fault().await;

    // The first holder either kept the lock or was told it lost it; then it lets go.
    tokio::time::sleep(Duration::from_millis(500)).await;
    if first.is_held() {
        inside.store(false, Ordering::SeqCst);
        let _ = first.release().await;
    }
    let reason = tokio::time::timeout(patience, first_out)
        .await
        .expect("first holder out")
        .unwrap();
    assert!(
        matches!(reason, LossReason::Released | LossReason::SessionEnded(_)),
        "{reason}"
    );
    for w in waiters {
        tokio::time::timeout(patience, w)
            .await
            .expect("waiters served")
            .expect("waiter task");
    }
    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens.len(), clients.len());
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
}
