//! etcd benchmarks on a private single-node etcd 3.4 started by the testkit. etcd 3.4 has no
//! switch to turn fsync off: fsync stays ON, but the data folder is on `/dev/shm` (tmpfs),
//! where fsync costs next to nothing — on a disk, fsync dominates every write.
//!
//! - `etcd-uncontended`: `Locker::acquire` + `Guard::release` on one key (one txn put + range,
//!   one txn delete) vs `raw-txn`, the raw operations it needs with the same client library: a
//!   txn put (if absent) with a reused lease and a txn delete. Also an interleaved run that
//!   prints both medians and their ratio.
//! - `etcd-contended-8`: 8 independent clients (8 leases, like 8 processes) contending for one
//!   key, vs etcd's own lock RPC (`v3lock`) with 8 contenders, the baseline of the issue.
//!   Alternating timed slices of both print acquisitions/s, wait p50/p99 and Jain's index.
//!
//! Run with `cargo bench -p locksmith-etcd --bench etcd`.

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use etcd_client::{Client, LockOptions as RpcLockOptions};
use locksmith_core::{Backend, LockKey, LockOptions, Locker};
use locksmith_etcd::EtcdBackend;
use locksmith_testkit::bench::{
    BoxFut, Contender, ContentionStats, LockerContender, contend_count, contend_for_keep,
    interleaved_medians,
};
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

/// The raw operations of an uncontended acquire + release: txn put if absent (lease reused),
/// txn delete if still ours — the backend's native pair, on a client of its own.
async fn raw_pair(raw: &EtcdBackend, key: &LockKey) {
    assert!(raw.native_pair(key).await.unwrap().is_some());
}

fn uncontended(c: &mut Criterion) {
    let rt = runtime();
    let url = shared_etcd_url();
    let locker = Locker::new(Arc::new(EtcdBackend::from_url(&url).unwrap()));
    let opts = LockOptions::new();
    let raw = EtcdBackend::from_url(&url).unwrap();
    let raw_key = LockKey::new("bench-raw/k").unwrap();
    let (r, o) = rt.block_on(interleaved_medians(
        2000,
        || raw_pair(&raw, &raw_key),
        || async {
            let guard = locker.acquire("bench-uncontended", &opts).await.unwrap();
            std::hint::black_box(guard.fencing_token());
            assert!(guard.release().await.unwrap());
        },
    ));
    println!(
        "etcd uncontended interleaved x2000: raw txn pair median {r:?}, locksmith \
         acquire+release median {o:?}, ratio {:.2}",
        o.as_secs_f64() / r.as_secs_f64()
    );
    let mut g = c.benchmark_group("etcd-uncontended");
    g.bench_function("locksmith", |b| {
        b.to_async(&rt).iter(|| async {
            let guard = locker.acquire("bench-uncontended", &opts).await.unwrap();
            assert!(guard.release().await.unwrap());
        })
    });
    g.bench_function("raw-txn", |b| {
        b.to_async(&rt).iter(|| raw_pair(&raw, &raw_key))
    });
    g.finish();
}

/// A client of etcd's lock RPC (`v3lock`), with its own lease.
struct Rpc {
    client: Client,
    lease: i64,
    key: String,
    held: Option<Vec<u8>>,
}

impl Contender for Rpc {
    fn lock(&mut self) -> BoxFut<'_> {
        Box::pin(async move {
            let opts = RpcLockOptions::new().with_lease(self.lease);
            let r = self.client.lock(self.key.as_str(), Some(opts)).await;
            self.held = Some(r.unwrap().key().to_vec());
        })
    }
    fn unlock(&mut self) -> BoxFut<'_> {
        Box::pin(async move {
            if let Some(k) = self.held.take() {
                self.client.unlock(k).await.unwrap();
            }
        })
    }
}

async fn rpc_contenders(url: &str, key: &str) -> Vec<Box<dyn Contender>> {
    let mut v: Vec<Box<dyn Contender>> = Vec::new();
    for _ in 0..8 {
        let mut client = Client::connect([endpoint(url)], None).await.unwrap();
        let lease = client.lease_grant(60, None).await.unwrap().id();
        v.push(Box::new(Rpc {
            client,
            lease,
            key: key.to_owned(),
            held: None,
        }));
    }
    v
}

/// 8 locksmith clients, connected beforehand (as the raw contenders are).
async fn locksmith_contenders(url: &str, key: &str) -> Vec<Box<dyn Contender>> {
    let mut v = Vec::new();
    for _ in 0..8 {
        let l = Locker::new(Arc::new(EtcdBackend::from_url(url).unwrap()));
        l.holder(key).await.unwrap();
        v.push(LockerContender::boxed(l, key));
    }
    v
}

fn contended(c: &mut Criterion) {
    let rt = runtime();
    let url = shared_etcd_url();
    // The same 8 clients of each kind throughout, warmed up first (connected, lease granted,
    // line watch in place), then alternating one-second slices, so that a busy machine's load
    // hits both alike.
    let (mut rpc, mut ours) = (ContentionStats::empty(), ContentionStats::empty());
    let warm = Duration::from_millis(500);
    let (_, mut ours_c) = rt.block_on(async {
        contend_for_keep(locksmith_contenders(&url, "bench-contended").await, warm).await
    });
    let (_, mut rpc_c) = rt
        .block_on(async { contend_for_keep(rpc_contenders(&url, "bench-rpc").await, warm).await });
    for _ in 0..5 {
        let (s, c) = rt.block_on(contend_for_keep(ours_c, Duration::from_secs(1)));
        ours.merge(s);
        ours_c = c;
        let (s, c) = rt.block_on(contend_for_keep(rpc_c, Duration::from_secs(1)));
        rpc.merge(s);
        rpc_c = c;
    }
    drop((ours_c, rpc_c));
    println!("{}", ours.line("etcd contended-8 locksmith"));
    println!("{}", rpc.line("etcd contended-8 etcd-lock-rpc"));
    println!(
        "etcd contended-8 locksmith/lock-rpc acquisitions/s: {:.2}",
        ours.rate() / rpc.rate()
    );

    let mut g = c.benchmark_group("etcd-contended-8");
    g.sample_size(10);
    g.bench_function("locksmith", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let url = url.clone();
            async move {
                contend_count(locksmith_contenders(&url, "bench-contended-c").await, iters).await
            }
        })
    });
    g.bench_function("etcd-lock-rpc", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let url = url.clone();
            async move { contend_count(rpc_contenders(&url, "bench-rpc-c").await, iters).await }
        })
    });
    g.finish();
}

fn teardown(_: &mut Criterion) {
    stop_shared_etcd();
}

criterion_group!(benches, uncontended, contended, teardown);
criterion_main!(benches);
