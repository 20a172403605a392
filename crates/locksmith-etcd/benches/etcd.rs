//! etcd benchmarks on a private single-node etcd 3.4 started by the testkit. etcd 3.4 has no
//! switch to turn fsync off: fsync stays ON, but the data folder is on `/dev/shm` (tmpfs),
//! where fsync costs next to nothing — on a disk, fsync dominates every write.
//!
//! - `uncontended/locksmith`: `Locker::acquire` + `Guard::release` on one key (one txn put +
//!   range, one txn delete), next to `uncontended/raw-txn`, the raw operations it needs with
//!   the same client library: a txn put (if absent) with a reused lease and a txn delete.
//! - `contended-8`: 8 independent clients (8 leases, like 8 processes) contending for one key;
//!   each sample is the time per acquisition. Next to it, `etcd-lock-rpc-8`: etcd's own lock
//!   RPC (`v3lock`) with 8 contenders, the baseline of the issue. The contended runs also
//!   print acquisitions/s, wait p50/p99 and Jain's fairness index over the 8 clients.
//!
//! Run with `cargo bench -p locksmith-etcd --bench etcd`.

#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use etcd_client::{
    Client, Compare, CompareOp, LockOptions as RpcLockOptions, PutOptions, Txn, TxnOp,
};
use locksmith_core::{LockOptions, Locker};
use locksmith_etcd::EtcdBackend;
use locksmith_testkit::servers::etcd::{shared_etcd_url, stop_shared_etcd};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn endpoint(url: &str) -> String {
    format!("http://{}", url.trim_start_matches("etcd://"))
}

fn uncontended(c: &mut Criterion) {
    let rt = runtime();
    let url = shared_etcd_url();
    let locker = Locker::new(Arc::new(EtcdBackend::from_url(&url).unwrap()));
    let opts = LockOptions::new();
    let mut client = rt
        .block_on(Client::connect([endpoint(&url)], None))
        .unwrap();
    let lease = rt.block_on(client.lease_grant(60, None)).unwrap().id();
    let mut g = c.benchmark_group("uncontended");
    g.bench_function("locksmith", |b| {
        b.to_async(&rt).iter(|| async {
            let guard = locker.acquire("bench-uncontended", &opts).await.unwrap();
            assert!(guard.release().await.unwrap());
        })
    });
    g.bench_function("raw-txn", |b| {
        b.to_async(&rt).iter(|| {
            let mut client = client.clone();
            async move {
                let key = "bench-raw/k";
                let put = Txn::new()
                    .when([Compare::create_revision(key, CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(
                        key,
                        "",
                        Some(PutOptions::new().with_lease(lease)),
                    )]);
                let r = client.txn(put).await.unwrap();
                assert!(r.succeeded());
                let rev = r.header().unwrap().revision();
                let del = Txn::new()
                    .when([Compare::create_revision(key, CompareOp::Equal, rev)])
                    .and_then([TxnOp::delete(key, None)]);
                assert!(client.txn(del).await.unwrap().succeeded());
            }
        })
    });
    g.finish();
}

/// Per-acquisition wait times of each of 8 contenders over `dur`.
type Waits = Vec<Vec<Duration>>;

async fn contend_locksmith(url: &str, key: &str, dur: Duration) -> Waits {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let locker = Locker::new(Arc::new(EtcdBackend::from_url(url).unwrap()));
        let (key, stop) = (key.to_owned(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let opts = LockOptions::new();
            let mut waits = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let g = locker.acquire(&key, &opts).await.unwrap();
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

async fn contend_rpc(url: &str, key: &str, dur: Duration) -> Waits {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut client = Client::connect([endpoint(url)], None).await.unwrap();
        let lease = client.lease_grant(60, None).await.unwrap().id();
        let (key, stop) = (key.to_owned(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut waits = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let held = client
                    .lock(key.as_str(), Some(RpcLockOptions::new().with_lease(lease)))
                    .await
                    .unwrap();
                waits.push(t.elapsed());
                client.unlock(held.key()).await.unwrap();
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

fn contended(c: &mut Criterion) {
    let rt = runtime();
    let url = shared_etcd_url();
    let dur = Duration::from_secs(5);
    let w = rt.block_on(contend_locksmith(&url, "bench-contended", dur));
    report("contended-8/locksmith", &w, dur);
    let w = rt.block_on(contend_rpc(&url, "bench-rpc", dur));
    report("contended-8/etcd-lock-rpc", &w, dur);

    let mut g = c.benchmark_group("contended-8");
    g.sample_size(10);
    g.bench_function("locksmith-per-acquisition", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let url = url.clone();
            async move {
                let d = Duration::from_millis(300 + iters.min(20) * 50);
                let w = contend_locksmith(&url, "bench-contended-c", d).await;
                let n: usize = w.iter().map(Vec::len).sum();
                d * iters as u32 / n.max(1) as u32
            }
        })
    });
    g.bench_function("etcd-lock-rpc-per-acquisition", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let url = url.clone();
            async move {
                let d = Duration::from_millis(300 + iters.min(20) * 50);
                let w = contend_rpc(&url, "bench-rpc-c", d).await;
                let n: usize = w.iter().map(Vec::len).sum();
                d * iters as u32 / n.max(1) as u32
            }
        })
    });
    g.finish();
}

fn teardown(_: &mut Criterion) {
    stop_shared_etcd();
}

criterion_group!(benches, uncontended, contended, teardown);
criterion_main!(benches);
