//! Faults on real etcd servers: a frozen server (the holder must give the lock up before the
//! lease can expire on the server), and a 3-node cluster whose leader is killed while a lock
//! is held and waiters are queued.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use locksmith_core::{LockOptions, Locker, LossReason, WaitPolicy};
use locksmith_etcd::EtcdBackend;
use locksmith_testkit::servers::etcd::{start_etcd_cluster, wait_healthy};

use common::{PATIENCE, etcdctl};

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(EtcdBackend::from_url(url).expect("url")))
}

fn opts() -> LockOptions {
    LockOptions::new().wait(WaitPolicy::Timeout(PATIENCE))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_server_loses_the_lock_before_the_lease_can_expire() {
    let mut cluster = start_etcd_cluster(1);
    let url = format!("{}?lease_ttl=2&connect_timeout=2", cluster.url());
    let a = locker(&url);
    let g = a.acquire("frozen", &opts()).await.unwrap();
    let t1 = g.fencing_token();
    // While the only member is stopped its clock cannot expire anything: the holder must
    // still notice, from its own deadline, and say so.
    cluster.members[0].process.signal(libc::SIGSTOP);
    let reason = tokio::time::timeout(PATIENCE, g.lost()).await;
    cluster.members[0].process.signal(libc::SIGCONT);
    let reason = reason.expect("lost() resolves while the server is frozen");
    assert!(
        matches!(reason, LossReason::SessionEnded(_)),
        "unexpected reason: {reason}"
    );
    assert!(!g.is_held());
    drop(g);
    // Service resumes: another client gets the lock (at the latest when the lease expires),
    // with a larger token.
    let b = locker(&url);
    let g2 = b.acquire("frozen", &opts()).await.expect("service resumes");
    assert!(g2.fencing_token() > t1);
    assert!(g2.release().await.unwrap());
    // And the first client recovers with a new lease.
    let g3 = a.acquire("frozen", &opts()).await.expect("a recovers");
    assert!(g3.release().await.unwrap());
    let _ = &mut cluster;
}

fn leader_index(cluster: &locksmith_testkit::servers::etcd::EtcdCluster) -> usize {
    let out = etcdctl(cluster, &["endpoint", "status", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    let arr = v.as_array().expect("array");
    for st in arr {
        let member = st["Status"]["header"]["member_id"].as_u64();
        let leader = st["Status"]["leader"].as_u64();
        if member.is_some() && member == leader {
            let ep = st["Endpoint"].as_str().expect("endpoint");
            return cluster
                .members
                .iter()
                .position(|m| ep.ends_with(&m.client_addr))
                .expect("known member");
        }
    }
    panic!("no leader in {out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_while_held_and_queued() {
    let mut cluster = start_etcd_cluster(3);
    let url = format!("{}?lease_ttl=3", cluster.url());
    let clients: Vec<Locker> = (0..3).map(|_| locker(&url)).collect();
    let inside = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(Mutex::new(Vec::new()));

    let first = clients[0].acquire("leader-kill", &opts()).await.unwrap();
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
        waiters.push(tokio::spawn(async move {
            let g = c
                .acquire(
                    "leader-kill",
                    &LockOptions::new().wait_for(Duration::from_secs(60)),
                )
                .await
                .expect("service resumes after the leader is killed");
            assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
            tokens.lock().unwrap().push(g.fencing_token().get());
            tokio::time::sleep(Duration::from_millis(50)).await;
            // Either still held, or lost and reported: never silently both.
            if g.is_held() {
                inside.store(false, Ordering::SeqCst);
                let _ = g.release().await;
            } else {
                inside.store(false, Ordering::SeqCst);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(waiters.iter().all(|w| !w.is_finished()), "queued");

    let leader = leader_index(&cluster);
    cluster.members[leader].process.kill();
    let survivors: Vec<String> = cluster
        .members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, m)| m.client_addr.clone())
        .collect();
    wait_healthy(&survivors.join(","), PATIENCE);

    // The first holder either keeps the lock or is told it lost it.
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
        tokio::time::timeout(Duration::from_secs(90), w)
            .await
            .expect("waiters served")
            .expect("waiter task");
    }
    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens.len(), 3);
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
}
