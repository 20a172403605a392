//! Uncontended acquire + release, on `memory://` and `file://`, each next to its baseline
//! measured in the same run:
//! - `memory/raw-backend`: the backend's own grant and release, without guard, lease keeping
//!   or wait policy — the cost of the shared machinery is the difference;
//! - `file/raw-flock`: open the lock file, `flock`, unlock, close — what any file lock costs.
//!
//! Run with `cargo bench -p locksmith --bench uncontended`.

#![allow(missing_docs)]

use std::fs::OpenOptions;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use locksmith::{AcquireRequest, Backend, LockKey, LockOptions, Locker, MemoryBackend};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn memory(c: &mut Criterion) {
    let rt = runtime();
    let backend = Arc::new(MemoryBackend::new());
    let locker = Locker::new(backend.clone());
    let opts = LockOptions::new();
    let key = LockKey::new("bench").unwrap();
    let req = AcquireRequest::new(Duration::from_secs(30), "bench");
    let mut g = c.benchmark_group("memory");
    g.bench_function("locker", |b| {
        b.to_async(&rt).iter(|| async {
            let guard = locker.acquire(&key, &opts).await.unwrap();
            assert!(guard.release().await.unwrap());
        })
    });
    g.bench_function("raw-backend", |b| {
        b.to_async(&rt).iter(|| async {
            let grant = backend.try_acquire(&key, &req).await.unwrap().unwrap();
            assert!(grant.lease.release().await.unwrap());
        })
    });
    g.finish();
}

fn file(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(locksmith::file::FileBackend::new(dir.path()).unwrap());
    let locker = Locker::new(backend);
    let opts = LockOptions::new();
    let key = LockKey::new("bench").unwrap();
    let mut g = c.benchmark_group("file");
    g.bench_function("locker", |b| {
        b.to_async(&rt).iter(|| async {
            let guard = locker.acquire(&key, &opts).await.unwrap();
            assert!(guard.release().await.unwrap());
        })
    });
    let raw = dir.path().join("raw-baseline.lock");
    g.bench_function("raw-flock", |b| {
        b.iter(|| {
            let f = OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(&raw)
                .unwrap();
            f.try_lock().unwrap();
            f.unlock().unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, memory, file);
criterion_main!(benches);
