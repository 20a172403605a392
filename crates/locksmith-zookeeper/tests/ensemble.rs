//! A 3-member ZooKeeper ensemble whose leader is killed while a lock is held and waiters are
//! queued: never two holders, the holder keeps the lock or is told it lost it, and service
//! resumes with larger fencing tokens.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use locksmith_core::{LockOptions, Locker, LossReason};
use locksmith_testkit::servers::zookeeper::start_zookeeper_ensemble;
use locksmith_zookeeper::ZooKeeperBackend;

/// Generous bound for waits that should end quickly; only a hang exceeds it.
const PATIENCE: Duration = Duration::from_secs(60);

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(ZooKeeperBackend::from_url(url).expect("url")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_while_held_and_queued() {
    let mut ensemble = start_zookeeper_ensemble(3);
    let url = format!("{}?session_timeout=8", ensemble.url());
    let clients: Vec<Locker> = (0..3).map(|_| locker(&url)).collect();
    let opts = LockOptions::new().wait_for(PATIENCE);
    let inside = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(Mutex::new(Vec::new()));

    let first = clients[0].acquire("leader-kill", &opts).await.unwrap();
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
        let (c, inside, tokens, opts) = (c.clone(), inside.clone(), tokens.clone(), opts.clone());
        waiters.push(tokio::spawn(async move {
            let g = c
                .acquire("leader-kill", &opts)
                .await
                .expect("service resumes after the leader is killed");
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

    let leader = ensemble.leader().expect("a leader");
    ensemble.members[leader].process.kill();
    // The two survivors elect a new leader (each probe bounded; panics after the bound).
    let new_leader = tokio::task::block_in_place(|| ensemble.wait_serving(PATIENCE));
    assert_ne!(new_leader, leader);

    // The first holder either keeps the lock or is told it lost it; then it lets go.
    tokio::time::sleep(Duration::from_millis(500)).await;
    if first.is_held() {
        inside.store(false, Ordering::SeqCst);
        let _ = first.release().await;
    }
    let reason = tokio::time::timeout(PATIENCE, first_out)
        .await
        .expect("first holder out")
        .unwrap();
    assert!(
        matches!(reason, LossReason::Released | LossReason::SessionEnded(_)),
        "{reason}"
    );
    for w in waiters {
        tokio::time::timeout(PATIENCE, w)
            .await
            .expect("waiters served")
            .expect("waiter task");
    }
    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens.len(), 3);
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
}
