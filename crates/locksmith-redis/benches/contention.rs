//! 8 tasks contending for one key, each acquire-then-release, for a fixed time per system:
//! hand-overs/s (the lock passing to a different task), acquisitions/s, wait p50/p99/p99.9,
//! and Jain's fairness index over per-task counts. Systems, in the same run and on the same
//! private redis-server (no persistence):
//! - `locksmith redis (1 client)`: one `Locker` shared by the 8 tasks (in-process FIFO line);
//! - `locksmith redis (8 clients)`: 8 `Locker`s, as 8 processes would contend;
//! - `rslock (1 node)`: the rslock crate's `acquire` (retrying `lock`) + `release`.
//!
//! The table is printed; criterion then times one acquisition under 8-way contention for the
//! locksmith systems (`contention/…`). Run with
//! `cargo bench -p locksmith-redis --bench contention`.

#![allow(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use locksmith_core::{LockOptions, Locker};
use locksmith_redis::RedisBackend;
use locksmith_testkit::servers::redis::RedisServer;

const TASKS: usize = 8;
const RUN: Duration = Duration::from_secs(4);

type Cycle = Arc<dyn Fn(usize) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

struct Stats {
    acquisitions: usize,
    handovers: usize,
    waits: Vec<Duration>,
    per_task: Vec<usize>,
    elapsed: Duration,
}

/// Runs `cycle(task)` (acquire, note the holder, release) in `TASKS` tasks for `RUN`.
async fn contend(acquire: Cycle, last: Arc<AtomicUsize>, handovers: Arc<AtomicUsize>) -> Stats {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let acquire = Arc::clone(&acquire);
        tasks.push(tokio::spawn(async move {
            let mut waits = Vec::new();
            while start.elapsed() < RUN {
                let t0 = Instant::now();
                acquire(t).await;
                waits.push(t0.elapsed());
            }
            waits
        }));
    }
    let mut waits = Vec::new();
    let mut per_task = Vec::new();
    for t in tasks {
        let w = t.await.unwrap();
        per_task.push(w.len());
        waits.extend(w);
    }
    let _ = last;
    Stats {
        acquisitions: waits.len(),
        handovers: handovers.load(Ordering::SeqCst),
        waits,
        per_task,
        elapsed: start.elapsed(),
    }
}

/// Counts a hand-over when the lock goes to a task other than the previous holder.
fn note(last: &AtomicUsize, handovers: &AtomicUsize, task: usize) {
    if last.swap(task, Ordering::SeqCst) != task {
        handovers.fetch_add(1, Ordering::SeqCst);
    }
}

fn print(name: &str, mut s: Stats) {
    s.waits.sort();
    let q = |p: f64| {
        let i = ((s.waits.len() as f64 * p) as usize).min(s.waits.len().saturating_sub(1));
        s.waits.get(i).copied().unwrap_or_default()
    };
    let sum: f64 = s.per_task.iter().map(|&x| x as f64).sum();
    let sq: f64 = s.per_task.iter().map(|&x| (x as f64) * (x as f64)).sum();
    let jain = if sq > 0.0 {
        sum * sum / (s.per_task.len() as f64 * sq)
    } else {
        0.0
    };
    let secs = s.elapsed.as_secs_f64();
    println!(
        "{name:<30} hand-overs/s {:>8.0}  acquisitions/s {:>8.0}  wait p50 {:>9.3?} p99 {:>9.3?} \
         p99.9 {:>9.3?}  Jain {:.3}  per task {:?}",
        s.handovers as f64 / secs,
        s.acquisitions as f64 / secs,
        q(0.50),
        q(0.99),
        q(0.999),
        jain,
        s.per_task
    );
}

fn locksmith_cycle(
    lockers: Vec<Locker>,
    last: Arc<AtomicUsize>,
    handovers: Arc<AtomicUsize>,
) -> Cycle {
    let opts = LockOptions::new().ttl(Duration::from_secs(10));
    Arc::new(move |t| {
        let locker = lockers[t % lockers.len()].clone();
        let (opts, last, handovers) = (opts.clone(), Arc::clone(&last), Arc::clone(&handovers));
        Box::pin(async move {
            let g = locker.acquire("contended", &opts).await.unwrap();
            note(&last, &handovers, t);
            assert!(g.release().await.unwrap());
        })
    })
}

fn contention(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let url = server.url();
    let one = Locker::new(Arc::new(RedisBackend::from_url(&url).unwrap()));
    let eight: Vec<Locker> = (0..TASKS)
        .map(|_| Locker::new(Arc::new(RedisBackend::from_url(&url).unwrap())))
        .collect();

    println!("\n8 tasks contending for one key for {RUN:?} each (private redis-server, loopback):");
    for (name, lockers) in [
        ("locksmith redis (1 client)", vec![one.clone()]),
        ("locksmith redis (8 clients)", eight.clone()),
    ] {
        let (last, handovers) = (
            Arc::new(AtomicUsize::new(usize::MAX)),
            Arc::new(AtomicUsize::new(0)),
        );
        let cycle = locksmith_cycle(lockers, Arc::clone(&last), Arc::clone(&handovers));
        print(name, rt.block_on(contend(cycle, last, handovers)));
    }
    {
        let manager = rslock::LockManager::new(vec![url.clone()]);
        let (last, handovers) = (
            Arc::new(AtomicUsize::new(usize::MAX)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (l, h) = (Arc::clone(&last), Arc::clone(&handovers));
        let cycle: Cycle = Arc::new(move |t| {
            let (manager, l, h) = (manager.clone(), Arc::clone(&l), Arc::clone(&h));
            Box::pin(async move {
                let g = manager
                    .acquire("rslock-contended".as_bytes(), Duration::from_secs(10))
                    .await
                    .unwrap();
                note(&l, &h, t);
                g.release().await;
            })
        });
        print(
            "rslock (1 node)",
            rt.block_on(contend(cycle, last, handovers)),
        );
    }

    let mut g = c.benchmark_group("contention");
    for (name, lockers) in [
        ("locksmith-1-client", vec![one]),
        ("locksmith-8-clients", eight),
    ] {
        g.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let lockers = lockers.clone();
                async move {
                    let per = (iters as usize).div_ceil(TASKS);
                    let start = Instant::now();
                    let mut tasks = Vec::new();
                    for t in 0..TASKS {
                        let locker = lockers[t % lockers.len()].clone();
                        tasks.push(tokio::spawn(async move {
                            let opts = LockOptions::new();
                            for _ in 0..per {
                                let g = locker.acquire("contended-c", &opts).await.unwrap();
                                assert!(g.release().await.unwrap());
                            }
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start.elapsed()
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, contention);
criterion_main!(benches);
