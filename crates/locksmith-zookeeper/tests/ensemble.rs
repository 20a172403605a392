//! A 3-member ZooKeeper ensemble whose leader is killed while a lock is held and waiters are
//! queued (the testkit's failover scenario): never two holders, the holder keeps the lock or
//! is told it lost it, and service resumes with larger fencing tokens.

use std::sync::Arc;
use std::time::Duration;

use locksmith_core::Locker;
use locksmith_testkit::failover::held_and_queued_through;
use locksmith_testkit::servers::zookeeper::start_zookeeper_ensemble;
use locksmith_zookeeper::ZooKeeperBackend;

/// Generous bound for waits that should end quickly; only a hang exceeds it.
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_while_held_and_queued() {
    let mut ensemble = start_zookeeper_ensemble(3);
    let url = format!("{}?session_timeout=8", ensemble.url());
    let clients: Vec<Locker> = (0..3)
        .map(|_| Locker::new(Arc::new(ZooKeeperBackend::from_url(&url).expect("url"))))
        .collect();
    held_and_queued_through(&clients, "leader-kill", PATIENCE, || async {
        let leader = ensemble.leader().expect("a leader");
        ensemble.members[leader].process.kill();
        // The two survivors elect a new leader (each probe bounded; panics after the bound).
        let new_leader = tokio::task::block_in_place(|| ensemble.wait_serving(PATIENCE));
        assert_ne!(new_leader, leader);
    })
    .await;
}
