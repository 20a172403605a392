//! ZooKeeper benchmarks on a private standalone ZooKeeper 3.8 started by the testkit, with
//! `forceSync=no` (the transaction log is not fsynced; with fsync on a disk, fsync dominates
//! every write).
//!
//! - `zookeeper-uncontended`: `Locker::acquire` + `Guard::release` on one key (create,
//!   getChildren, delete) vs `raw-ops`: the same three operations with the same client library
//!   and a session of its own, nothing else. Also an interleaved run that prints both medians
//!   and their ratio.
//! - 8 clients (8 sessions) contending for one key: acquisitions/s, wait p50/p99 and Jain's
//!   fairness index, for locksmith and for the `zookeeper-client` crate's own lock recipe
//!   (`Client::lock` with Curator's layout), in alternating timed slices.
//!
//! Run with `cargo bench -p locksmith-zookeeper --bench zookeeper`.

#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use locksmith_core::{LockOptions, Locker};
use locksmith_testkit::bench::{
    ContentionStats, LockerContender, contend_for, interleaved_medians,
};
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

/// The raw operations of an uncontended acquire + release: create an ephemeral sequential
/// node, list the folder, delete the node.
async fn raw_ops(client: &zk::Client, node_opts: &zk::CreateOptions<'_>) {
    let (_, seq) = client
        .create("/bench-raw/_c_x-lock-", b"", node_opts)
        .await
        .unwrap();
    let kids = client.list_children("/bench-raw").await.unwrap();
    assert!(!kids.is_empty());
    client
        .delete(&format!("/bench-raw/_c_x-lock-{seq}"), None)
        .await
        .unwrap();
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
    let (r, o) = rt.block_on(interleaved_medians(
        2000,
        || raw_ops(&client, &node_opts),
        || async {
            let guard = locker.acquire("bench-uncontended", &opts).await.unwrap();
            std::hint::black_box(guard.fencing_token());
            assert!(guard.release().await.unwrap());
        },
    ));
    println!(
        "zookeeper uncontended interleaved x2000: raw create+getChildren+delete median {r:?}, \
         locksmith acquire+release median {o:?}, ratio {:.2}",
        o.as_secs_f64() / r.as_secs_f64()
    );
    let mut g = c.benchmark_group("zookeeper-uncontended");
    g.bench_function("locksmith", |b| {
        b.to_async(&rt).iter(|| async {
            let guard = locker.acquire("bench-uncontended", &opts).await.unwrap();
            assert!(guard.release().await.unwrap());
        })
    });
    g.bench_function("raw-ops", |b| {
        b.to_async(&rt).iter(|| raw_ops(&client, &node_opts))
    });
    g.finish();
}

/// 8 locksmith clients, connected beforehand (as the recipe's clients are).
async fn locksmith_contenders(url: &str) -> Vec<Box<dyn locksmith_testkit::bench::Contender>> {
    let mut v = Vec::new();
    for _ in 0..8 {
        let l = Locker::new(Arc::new(ZooKeeperBackend::from_url(url).unwrap()));
        l.holder("bench-contended").await.unwrap();
        v.push(LockerContender::boxed(l, "bench-contended"));
    }
    v
}

/// The crate's recipe, used as its users do: `Client::lock`, and release by dropping the
/// `LockClient` (it deletes the node in the background). Its guard borrows the client, so it
/// has its own loop rather than a testkit `Contender`.
async fn contend_crate_recipe(url: &str, dur: Duration) -> ContentionStats {
    let stop = Arc::new(AtomicBool::new(false));
    // Connected before the clock starts, as the locksmith contenders are.
    let mut clients = Vec::new();
    for _ in 0..8 {
        clients.push(zk::Client::connect(&hosts(url)).await.unwrap());
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for client in clients {
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let (mut n, mut waits) = (0u64, Vec::new());
            let options = zk::LockOptions::new(zk::Acls::anyone_all())
                .with_ancestor_options(zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()))
                .unwrap();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let prefix = zk::LockPrefix::new_curator("/bench-recipe", "lock-").unwrap();
                let held = client.lock(prefix, b"", options.clone()).await.unwrap();
                waits.push(t.elapsed());
                n += 1;
                drop(held);
            }
            (n, waits)
        }));
    }
    tokio::time::sleep(dur).await;
    stop.store(true, Ordering::Relaxed);
    let mut stats = ContentionStats::empty();
    for t in tasks {
        let (n, w) = t.await.unwrap();
        stats.per_task.push(n);
        stats.waits.extend(w);
    }
    stats.elapsed = start.elapsed();
    stats
}

fn contended(_: &mut Criterion) {
    let rt = runtime();
    let url = shared_zookeeper_url();
    // Alternating one-second slices, so that a busy machine's load hits both alike.
    let (mut recipe, mut ours) = (ContentionStats::empty(), ContentionStats::empty());
    for _ in 0..5 {
        ours.merge(rt.block_on(async {
            contend_for(locksmith_contenders(&url).await, Duration::from_secs(1)).await
        }));
        recipe.merge(rt.block_on(contend_crate_recipe(&url, Duration::from_secs(1))));
    }
    println!("{}", ours.line("zookeeper contended-8 locksmith"));
    println!(
        "{}",
        recipe.line("zookeeper contended-8 zookeeper-client-recipe")
    );
    println!(
        "zookeeper contended-8 locksmith/recipe acquisitions/s: {:.2}",
        ours.rate() / recipe.rate()
    );
}

fn teardown(_: &mut Criterion) {
    stop_shared_zookeeper();
}

criterion_group!(benches, uncontended, contended, teardown);
criterion_main!(benches);
