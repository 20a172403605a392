//! The holder's session through network faults (the testkit's [`FaultProxy`] between client
//! and server): a partition shorter than the session can survive keeps the lock; a longer one
//! resolves `lost()` before the server expires the session and hands the lock on, with a
//! larger token; a session the server declares expired reaches the holder at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use locksmith_core::{LockOptions, Locker, LossReason};
use locksmith_testkit::proxy::FaultProxy;
use locksmith_testkit::servers::zookeeper::start_zookeeper;
use locksmith_zookeeper::ZooKeeperBackend;

/// Generous bound for waits that should end quickly; only a hang exceeds it.
const PATIENCE: Duration = Duration::from_secs(60);
/// With a 10 s session the client reports a disconnection after 4 s of silence and gives the
/// lock up after 9 s; the server expires the session after 10 s.
const SESSION: &str = "session_timeout=10";

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(ZooKeeperBackend::from_url(url).expect("url")))
}

fn opts() -> LockOptions {
    LockOptions::new().wait_for(PATIENCE)
}

/// Renews until the backend answers (the session reconnects on its own after a heal).
async fn renew_when_connected(g: &locksmith_core::Guard) -> bool {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match g.renew().await {
                Ok(held) => return held,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    })
    .await
    .expect("the session answers again after the heal")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_shorter_than_the_session_keeps_the_lock() {
    let server = start_zookeeper();
    let proxy = FaultProxy::start(server.addr.parse().unwrap())
        .await
        .unwrap();
    let a = locker(&format!("zookeeper://{}?{SESSION}", proxy.addr()));
    let g = a.acquire("brief", &opts()).await.unwrap();
    let t1 = g.fencing_token();
    // Long enough for the client to report the disconnection (4 s of silence) and start
    // reconnecting, well short of the 9 s after which it would give the lock up.
    proxy.blackhole(true);
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.blackhole(false);
    assert!(
        renew_when_connected(&g).await,
        "the node survived the partition"
    );
    assert!(g.is_held(), "the partition did not end the session");
    // The session is the same one: another client still waits for it.
    let b = locker(&server.url());
    assert!(b.try_acquire("brief", &opts()).await.unwrap().is_none());
    assert!(g.release().await.unwrap());
    let g2 = b.acquire("brief", &opts()).await.unwrap();
    assert!(g2.fencing_token() > t1);
    assert!(g2.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_longer_than_the_session_loses_the_lock_first() {
    let server = start_zookeeper();
    let proxy = FaultProxy::start(server.addr.parse().unwrap())
        .await
        .unwrap();
    let a = locker(&format!("zookeeper://{}?{SESSION}", proxy.addr()));
    let b = locker(&format!("{}?{SESSION}", server.url()));
    let g = a.acquire("long", &opts()).await.unwrap();
    let t1 = g.fencing_token();
    let a_out = Arc::new(AtomicBool::new(false));
    let waiter = tokio::spawn({
        let (b, a_out) = (b.clone(), a_out.clone());
        async move {
            let g2 = b
                .acquire("long", &opts())
                .await
                .expect("granted after expiry");
            assert!(
                a_out.load(Ordering::SeqCst),
                "granted to the waiter while the partitioned holder still claimed the lock"
            );
            g2
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "queued");

    proxy.blackhole(true);
    let reason = tokio::time::timeout(PATIENCE, g.lost())
        .await
        .expect("lost() resolves during the partition");
    a_out.store(true, Ordering::SeqCst);
    assert!(matches!(reason, LossReason::SessionEnded(_)), "{reason}");
    assert!(!g.is_held());
    let g2 = tokio::time::timeout(PATIENCE, waiter)
        .await
        .expect("the server expires the session and the waiter gets the lock")
        .unwrap();
    assert!(g2.fencing_token() > t1);
    proxy.blackhole(false);
    drop(g);
    assert!(g2.release().await.unwrap());
    let g3 = a
        .acquire("long", &opts())
        .await
        .expect("the partitioned client recovers with a new session");
    assert!(g3.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_reaches_the_holder() {
    let first = start_zookeeper();
    let proxy = FaultProxy::start(first.addr.parse().unwrap())
        .await
        .unwrap();
    let a = locker(&format!("zookeeper://{}?{SESSION}", proxy.addr()));
    let g = a.acquire("expiry", &opts()).await.unwrap();
    // A server that never heard of the session answers the reconnect with "expired" (as an
    // ensemble does once it has expired a session): the holder must learn it at once, long
    // before its own 9 s bound.
    let second = start_zookeeper();
    // A server refuses a client that has seen a later zxid than its own ("try another
    // server"): move the second server past the first one's history first.
    let raw = zookeeper_client::Client::connect(&second.addr)
        .await
        .expect("connect");
    let seq = zookeeper_client::CreateMode::PersistentSequential
        .with_acls(zookeeper_client::Acls::anyone_all());
    for _ in 0..50 {
        raw.create("/filler-", b"", &seq).await.expect("create");
    }
    proxy.retarget(second.addr.parse().unwrap());
    proxy.reset_all();
    let reason = tokio::time::timeout(PATIENCE, g.lost())
        .await
        .expect("lost() resolves");
    match &reason {
        LossReason::SessionEnded(why) => assert!(why.contains("xpired"), "{why}"),
        other => panic!("expected the session's expiry, got {other}"),
    }
    assert!(!g.is_held());
    drop(g);
    let g2 = a
        .acquire("expiry", &opts())
        .await
        .expect("a new session on the second server");
    assert!(g2.release().await.unwrap());
}
