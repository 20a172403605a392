//! ZooKeeper benchmarks on a private standalone ZooKeeper 3.8 started by the testkit, with
//! `forceSync=no` (the transaction log is not fsynced; with fsync on a disk, fsync dominates
//! every write).
//!
//! - `zookeeper-uncontended/locksmith`: `Locker::acquire` + `Guard::release` on one key (create,
//!   getChildren, delete), next to `zookeeper-uncontended/raw-ops`: the same three operations with the
//!   same client library and session, nothing else.
//! - 8 clients (8 sessions) contending for one key for 5 s: acquisitions/s, wait p50/p99 and
//!   Jain's fairness index, for locksmith and for the `zookeeper-client` crate's own lock
//!   recipe (`Client::lock` with Curator's layout), printed side by side.
//!
//! Run with `cargo bench -p locksmith-zookeeper --bench zookeeper`.

#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use locksmith_core::{LockOptions, Locker};
use locksmith_testkit::servers::zookeeper::{shared_zookeeper_url, stop_shared_zookeeper};
use locksmith_zookeeper::ZooKeeperBackend;
use zookeeper_client as zk;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn hosts(url: &str) -> String {
    url.trim_start_matches("zookeeper://").to_owned()
}

fn uncontended(c: &mut Criterion) {
    let rt = runtime();
    let url = shared_zookeeper_url();
    let locker = Locker::new(Arc::new(ZooKeeperBackend::from_url(&url).unwrap()));
    let opts = LockOptions::new();
    let client = rt.block_on(zk::Client::connect(&hosts(&url))).unwrap();
    let dir_opts = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
    rt.block_on(client.mkdir("/bench-raw", &dir_opts)).unwrap();
    let node_opts = zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all());
    let mut g = c.benchmark_group("zookeeper-uncontended");
    g.bench_function("locksmith", |b| {
        b.to_async(&rt).iter(|| async {
            let guard = locker.acquire("bench-uncontended", &opts).await.unwrap();
            assert!(guard.release().await.unwrap());
        })
    });
    g.bench_function("raw-ops", |b| {
        b.to_async(&rt).iter(|| async {
            let (_, seq) = client
                .create("/bench-raw/_c_x-lock-", b"", &node_opts)
                .await
                .unwrap();
            let kids = client.list_children("/bench-raw").await.unwrap();
            assert!(!kids.is_empty());
            client
                .delete(&format!("/bench-raw/_c_x-lock-{seq}"), None)
                .await
                .unwrap();
        })
    });
    g.finish();
}

type Waits = Vec<Vec<Duration>>;

async fn contend_locksmith(url: &str, dur: Duration) -> Waits {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let locker = Locker::new(Arc::new(ZooKeeperBackend::from_url(url).unwrap()));
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let opts = LockOptions::new();
            let mut waits = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let g = locker.acquire("bench-contended", &opts).await.unwrap();
                waits.push(t.elapsed());
                assert!(g.release().await.unwrap());
            }
            waits
        }));
    }
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

async fn contend_crate_recipe(url: &str, dur: Duration) -> Waits {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = zk::Client::connect(&hosts(url)).await.unwrap();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut waits = Vec::new();
            let options = zk::LockOptions::new(zk::Acls::anyone_all())
                .with_ancestor_options(zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()))
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let prefix = zk::LockPrefix::new_curator("/bench-recipe", "lock-").unwrap();
                let held = client.lock(prefix, b"", options.clone()).await.unwrap();
                waits.push(t.elapsed());
                drop(held);
            }
            waits
        }));
    }
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn report(name: &str, waits: &Waits, dur: Duration) {
    let counts: Vec<f64> = waits.iter().map(|w| w.len() as f64).collect();
    let total: f64 = counts.iter().sum();
    let jain = total * total / (counts.len() as f64 * counts.iter().map(|c| c * c).sum::<f64>());
    let mut all: Vec<Duration> = waits.iter().flatten().copied().collect();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p) as usize];
    println!(
        "{name}: {:.0} acquisitions/s, wait p50 {:.1} ms, p99 {:.1} ms, Jain {:.3} (per client {:?})",
        total / dur.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        jain,
        counts
    );
}

fn contended(_: &mut Criterion) {
    let rt = runtime();
    let url = shared_zookeeper_url();
    let dur = Duration::from_secs(5);
    let w = rt.block_on(contend_locksmith(&url, dur));
    report("contended-8/locksmith", &w, dur);
    let w = rt.block_on(contend_crate_recipe(&url, dur));
    report("contended-8/zookeeper-client-recipe", &w, dur);
}

fn teardown(_: &mut Criterion) {
    stop_shared_zookeeper();
}

criterion_group!(benches, uncontended, contended, teardown);
criterion_main!(benches);
