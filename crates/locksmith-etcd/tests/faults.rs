//! Faults on real etcd servers: a frozen server (the holder must give the lock up before the
//! lease can expire on the server), and a 3-node cluster whose leader is killed while a lock
//! is held and waiters are queued (the testkit's failover scenario).

mod common;

use std::sync::Arc;
use std::time::Duration;

use locksmith_core::{LockOptions, Locker, LossReason, WaitPolicy};
use locksmith_etcd::EtcdBackend;
use locksmith_testkit::failover::held_and_queued_through;
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
    held_and_queued_through(&clients, "leader-kill", Duration::from_secs(90), || async {
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
    })
    .await;
}
