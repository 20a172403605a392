//! `etcdctl lock NAME` and locksmith's lock on key `NAME` exclude each other, both ways, and
//! a waiter whose lease is revoked while it is queued is never granted the lock.

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use locksmith_core::{LockOptions, Locker, WaitPolicy};
use locksmith_etcd::EtcdBackend;
use locksmith_testkit::servers::etcd::start_etcd_cluster;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use common::{PATIENCE, etcdctl};

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(EtcdBackend::from_url(url).expect("url")))
}

fn opts() -> LockOptions {
    LockOptions::new().wait(WaitPolicy::Timeout(PATIENCE))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcdctl_lock_excludes_locksmith() {
    let cluster = start_etcd_cluster(1);
    let url = format!("{}?lease_ttl=3", cluster.url());
    let mut held = Command::new("etcdctl")
        .args([
            "--endpoints",
            &cluster.endpoints(),
            "lock",
            "--ttl=3",
            "interop-a",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("etcdctl");
    let mut lines = BufReader::new(held.stdout.take().expect("stdout")).lines();
    let key = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("etcdctl prints the key once it holds the lock")
        .expect("read")
        .expect("a line");
    assert!(key.starts_with("interop-a/"), "{key}");

    let a = locker(&url);
    assert!(
        a.try_acquire("interop-a", &opts()).await.unwrap().is_none(),
        "etcdctl holds it"
    );
    let holder = a.holder("interop-a").await.unwrap().expect("a holder");
    assert!(holder.owner.contains("no owner label"), "{holder}");

    let waiter = tokio::spawn({
        let a = a.clone();
        async move { a.acquire("interop-a", &opts()).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished(), "granted while etcdctl holds it");
    // etcdctl unlocks and revokes its session on SIGINT.
    // SAFETY: kill(2) on a child we spawned and have not reaped.
    unsafe {
        libc::kill(held.id().expect("pid") as libc::pid_t, libc::SIGINT);
    }
    let _ = held.wait().await;
    let g = tokio::time::timeout(PATIENCE, waiter)
        .await
        .expect("granted after etcdctl let go")
        .unwrap()
        .unwrap();
    assert!(g.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locksmith_lock_excludes_etcdctl() {
    let cluster = start_etcd_cluster(1);
    let a = locker(&format!("{}?lease_ttl=3", cluster.url()));
    let g = a.acquire("interop-b", &opts()).await.unwrap();
    let mut other = Command::new("etcdctl")
        .args([
            "--endpoints",
            &cluster.endpoints(),
            "lock",
            "interop-b",
            "echo",
            "etcdctl-got-it",
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("etcdctl");
    let mut lines = BufReader::new(other.stdout.take().expect("stdout")).lines();
    let early = tokio::time::timeout(Duration::from_millis(700), lines.next_line()).await;
    assert!(
        early.is_err(),
        "etcdctl got the lock locksmith holds: {early:?}"
    );
    assert!(g.release().await.unwrap());
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("etcdctl gets the lock after the release")
        .expect("read")
        .expect("a line");
    assert_eq!(line, "etcdctl-got-it");
    let _ = other.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiter_with_revoked_lease_is_never_granted() {
    let cluster = start_etcd_cluster(1);
    let url = format!("{}?lease_ttl=5", cluster.url());
    let (a, b) = (locker(&url), locker(&url));
    let g = a.acquire("revoked-waiter", &opts()).await.unwrap();
    let waiter = tokio::spawn({
        let b = b.clone();
        async move { b.acquire("revoked-waiter", &opts()).await }
    });
    // Wait until b's key is in line, then revoke b's lease behind its back.
    let b_key = loop {
        let keys = etcdctl(
            &cluster,
            &["get", "--prefix", "--keys-only", "revoked-waiter/"],
        );
        let keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
        if keys.len() == 2 {
            let holder = a.holder("revoked-waiter").await.unwrap().expect("held");
            assert_eq!(holder.token, Some(g.fencing_token()));
            // The holder's key has the lower create revision; b's is the other one.
            let rev_of = |k: &str| {
                let out = etcdctl(&cluster, &["get", k, "-w", "json"]);
                let v: serde_json::Value = serde_json::from_str(&out).expect("json");
                v["kvs"][0]["create_revision"].as_u64().expect("rev")
            };
            break keys
                .into_iter()
                .find(|k| rev_of(k) != g.fencing_token().get())
                .expect("b's key")
                .to_owned();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let lease_hex = b_key.rsplit('/').next().expect("lease id");
    etcdctl(&cluster, &["lease", "revoke", lease_hex]);
    assert!(g.release().await.unwrap());
    let out = tokio::time::timeout(PATIENCE, waiter)
        .await
        .expect("the waiter ends")
        .unwrap();
    let err = out.expect_err("a waiter whose lease was revoked must not be granted");
    assert!(err.to_string().contains("revoked-waiter"), "{err}");
    // The lock is free for anyone else, and b recovers with a fresh lease.
    let g = b.acquire("revoked-waiter", &opts()).await.expect("b again");
    assert!(g.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_holder_is_told() {
    let cluster = start_etcd_cluster(1);
    let a = locker(&format!("{}?lease_ttl=5", cluster.url()));
    let g = a.acquire("revoked-holder", &opts()).await.unwrap();
    let keys = etcdctl(
        &cluster,
        &["get", "--prefix", "--keys-only", "revoked-holder/"],
    );
    let key = keys.lines().next().expect("the holder's key").to_owned();
    etcdctl(
        &cluster,
        &["lease", "revoke", key.rsplit('/').next().unwrap()],
    );
    let reason = tokio::time::timeout(PATIENCE, g.lost())
        .await
        .expect("lost() resolves when the lease is revoked");
    assert!(!g.is_held(), "{reason}");
}
