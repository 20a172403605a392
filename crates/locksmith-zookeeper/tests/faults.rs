//! ZooKeeper faults and interop on a real server: a frozen server (the holder gives the lock up
//! before the session can expire on the server), an unreachable ensemble (a clear error within
//! the connect timeout), and mutual exclusion with the `zookeeper-client` crate's
//! Curator-layout lock recipe, both ways; a holder whose whole process stalled past the session
//! timeout is not held any more the moment it resumes.

use std::sync::Arc;
use std::time::Duration;

use locksmith_core::{LockOptions, Locker, LossReason, WaitPolicy};
use locksmith_testkit::servers::free_port;
use locksmith_testkit::servers::zookeeper::start_zookeeper;
use locksmith_zookeeper::ZooKeeperBackend;
use zookeeper_client as zk;

const PATIENCE: Duration = Duration::from_secs(30);

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(ZooKeeperBackend::from_url(url).expect("url")))
}

fn opts() -> LockOptions {
    LockOptions::new().wait(WaitPolicy::Timeout(PATIENCE))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_loses_the_lock_before_the_session_can_expire() {
    let server = start_zookeeper();
    let url = format!("{}?session_timeout=3&connect_timeout=3", server.url());
    let a = locker(&url);
    let g = a.acquire("frozen", &opts()).await.unwrap();
    let t1 = g.fencing_token();
    server.process.signal(libc::SIGSTOP);
    let reason = tokio::time::timeout(PATIENCE, g.lost()).await;
    server.process.signal(libc::SIGCONT);
    let reason = reason.expect("lost() resolves while the server is frozen");
    assert!(matches!(reason, LossReason::SessionEnded(_)), "{reason}");
    assert!(!g.is_held());
    drop(g);
    let b = locker(&url);
    let g2 = b.acquire("frozen", &opts()).await.expect("service resumes");
    assert!(g2.fencing_token() > t1);
    assert!(g2.release().await.unwrap());
    let g3 = a
        .acquire("frozen", &opts())
        .await
        .expect("a recovers with a new session");
    assert!(g3.release().await.unwrap());
}

/// A stalled process (SIGSTOP, a long GC pause) runs nothing: no pings, no state watcher. When
/// it resumes, the guard must already know the session cannot be proven alive any more.
#[tokio::test(flavor = "current_thread")]
async fn a_holder_resumed_after_a_stall_longer_than_the_session_is_not_held() {
    let server = start_zookeeper();
    let url = format!("{}?session_timeout=2", server.url());
    let a = locker(&url);
    let g = a.acquire("stalled", &opts()).await.unwrap();
    let t1 = g.fencing_token();
    assert!(g.is_held());
    let left = g
        .lease_left()
        .expect("a ZooKeeper guard reports until when its session is proven alive");
    assert!(left <= Duration::from_secs(2), "{left:?}");
    // Stall the only runtime thread, as a paused process would be.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!g.is_held(), "held past the proven life of its session");
    assert_eq!(g.lease_left(), Some(Duration::ZERO));
    let reason = tokio::time::timeout(PATIENCE, g.lost())
        .await
        .expect("lost() resolves after the stall");
    assert!(matches!(reason, LossReason::SessionEnded(_)), "{reason}");
    drop(g);
    let b = locker(&url);
    let g2 = b
        .acquire("stalled", &opts())
        .await
        .expect("service resumes");
    assert!(g2.fencing_token() > t1);
    assert!(g2.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_ensemble_is_a_clear_error() {
    let url = format!(
        "zookeeper://u:hunter2@127.0.0.1:{}?connect_timeout=1",
        free_port()
    );
    let a = locker(&url);
    let err = tokio::time::timeout(PATIENCE, a.acquire("down", &opts()))
        .await
        .expect("fails within the connect timeout, not hanging")
        .expect_err("nobody listens");
    let msg = err.to_string();
    assert!(
        msg.contains("127.0.0.1") && !msg.contains("hunter2"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curator_layout_recipe_and_locksmith_exclude_each_other() {
    let server = start_zookeeper();
    let url = format!("{}?session_timeout=5", server.url());
    let a = locker(&url);
    let raw = zk::Client::connect(&server.addr).await.expect("connect");
    let options = zk::LockOptions::new(zk::Acls::anyone_all())
        .with_ancestor_options(zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()))
        .unwrap();

    // The crate's recipe (Curator's layout) holds: locksmith must wait.
    let prefix = zk::LockPrefix::new_curator("/interop/job", "lock-").unwrap();
    let held = raw
        .lock(prefix, b"curator", options.clone())
        .await
        .expect("lock");
    assert!(
        a.try_acquire("interop/job", &opts())
            .await
            .unwrap()
            .is_none()
    );
    let holder = a.holder("interop/job").await.unwrap().expect("held");
    assert_eq!(holder.owner, "curator");
    let waiter = tokio::spawn({
        let a = a.clone();
        async move { a.acquire("interop/job", &opts()).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "granted while the recipe holds it");
    drop(held); // deletes its node in the background
    let g = tokio::time::timeout(PATIENCE, waiter)
        .await
        .expect("granted after the recipe let go")
        .unwrap()
        .unwrap();

    // locksmith holds: the recipe must wait.
    let raw2 = raw.clone();
    let options2 = options.clone();
    let other = tokio::spawn(async move {
        let prefix = zk::LockPrefix::new_curator("/interop/job", "lock-").unwrap();
        let held = raw2.lock(prefix, b"curator", options2).await.expect("lock");
        drop(held);
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !other.is_finished(),
        "the recipe got the lock locksmith holds"
    );
    assert!(g.release().await.unwrap());
    tokio::time::timeout(PATIENCE, other)
        .await
        .expect("the recipe gets it after the release")
        .unwrap();
}
