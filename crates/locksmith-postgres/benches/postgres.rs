//! PostgreSQL benchmarks, each with its raw baseline in the same run, against a private
//! PostgreSQL 15 cluster on loopback (`fsync=off`):
//!
//! - `uncontended`: locksmith acquire + release (fencing token included) vs the raw pair
//!   `pg_try_advisory_lock` + `pg_advisory_unlock` with tokio-postgres prepared statements.
//! - `contended_8`: 8 tasks, each with its own client, take and release one key; locksmith vs
//!   the raw server-side queue (blocking `pg_advisory_lock` + unlock, one connection each).
//!   Also prints acquisitions/s, wait p50/p99 and Jain's index of a timed run of each.
//! - `crowd_2000`: 2,000 waiters on one key in one process: time until all are served, and
//!   the connections locksmith opened (printed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use locksmith_core::{Backend, LockOptions, Locker};
use locksmith_postgres::{PgBackend, hash_key};
use locksmith_testkit::bench::{
    BoxFut, Contender, contend_count, interleaved_medians, locker_contenders, median,
    print_contended_8, serve_crowd, warm,
};
use locksmith_testkit::servers::postgres::postgres;
use tokio_postgres::{Client, NoTls, Statement};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn raw_client(url: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}

struct Raw {
    client: Client,
    lock: Statement,
    unlock: Statement,
    id: i64,
}

impl Raw {
    async fn new(url: &str, lock_sql: &str, id: i64) -> Self {
        let client = raw_client(url).await;
        let lock = client.prepare(lock_sql).await.unwrap();
        let unlock = client
            .prepare("SELECT pg_advisory_unlock($1::bigint)")
            .await
            .unwrap();
        Self {
            client,
            lock,
            unlock,
            id,
        }
    }
}

impl Contender for Raw {
    fn lock(&mut self) -> BoxFut<'_> {
        Box::pin(async move {
            self.client
                .query_one(&self.lock, &[&self.id])
                .await
                .unwrap();
        })
    }
    fn unlock(&mut self) -> BoxFut<'_> {
        Box::pin(async move {
            let r = self
                .client
                .query_one(&self.unlock, &[&self.id])
                .await
                .unwrap();
            assert!(r.get::<_, bool>(0));
        })
    }
}

fn uncontended(c: &mut Criterion) {
    let rt = runtime();
    let url = postgres().url.clone();
    let mut g = c.benchmark_group("postgres/uncontended");
    let raw = rt.block_on(Raw::new(
        &url,
        "SELECT pg_try_advisory_lock($1::bigint)",
        hash_key("bench-raw"),
    ));
    g.bench_function("raw_try_lock_unlock", |b| {
        b.to_async(&rt).iter(|| async {
            let r = raw.client.query_one(&raw.lock, &[&raw.id]).await.unwrap();
            assert!(r.get::<_, bool>(0));
            let r = raw.client.query_one(&raw.unlock, &[&raw.id]).await.unwrap();
            assert!(r.get::<_, bool>(0));
        })
    });
    let locker = Locker::new(Arc::new(PgBackend::from_url(&url).unwrap()));
    let opts = LockOptions::new();
    // Interleaved pairs: each locksmith pair runs right after a raw one, so that the load of
    // a busy machine hits both alike; the ratio of medians is the figure to compare.
    rt.block_on(async {
        let backend = PgBackend::from_url(&url).unwrap();
        let key = locksmith_core::LockKey::new("bench-backend").unwrap();
        let req = locksmith_core::AcquireRequest::new(Duration::from_secs(30), "bench");
        // One untimed round connects the backend and creates the fencing sequence.
        locker.acquire("bench-locksmith", &opts).await.unwrap().release().await.unwrap();
        // The raw pair with locksmith's attempt statement (lock + token) in place of the bare
        // lock: what the fencing token costs the server.
        let with_token = raw
            .client
            .prepare(include_str!("../sql/try_lock_same_owner.sql"))
            .await
            .unwrap();
        // The headline ratio: raw and locksmith pairs interleaved one for one.
        let (r, o) = interleaved_medians(
            3000,
            || async {
                let r = raw.client.query_one(&raw.lock, &[&raw.id]).await.unwrap();
                assert!(r.get::<_, bool>(0));
                let r = raw.client.query_one(&raw.unlock, &[&raw.id]).await.unwrap();
                assert!(r.get::<_, bool>(0));
            },
            || async {
                let guard = locker.acquire("bench-locksmith", &opts).await.unwrap();
                std::hint::black_box(guard.fencing_token());
                assert!(guard.release().await.unwrap());
            },
        )
        .await;
        println!(
            "postgres uncontended interleaved x3000: raw pair median {r:?}, locksmith acquire+release median {o:?}, ratio {:.2}",
            o.as_secs_f64() / r.as_secs_f64()
        );
        // Where the difference goes, five ways interleaved (each timed after a different
        // one, so their ratios are not the headline ratio above).
        let mut t: [Vec<Duration>; 5] = Default::default();
        for _ in 0..3000 {
            let s = Instant::now();
            let grant = backend.try_acquire(&key, &req).await.unwrap().unwrap();
            assert!(grant.lease.release().await.unwrap());
            t[0].push(s.elapsed());
            let s = Instant::now();
            {
                let r = raw.client.query_one(&raw.lock, &[&raw.id]).await.unwrap();
                assert!(r.get::<_, bool>(0));
                let r = raw.client.query_one(&raw.unlock, &[&raw.id]).await.unwrap();
                assert!(r.get::<_, bool>(0));
            }
            t[1].push(s.elapsed());
            let s = Instant::now();
            let guard = locker.acquire("bench-locksmith", &opts).await.unwrap();
            std::hint::black_box(guard.fencing_token());
            assert!(guard.release().await.unwrap());
            t[2].push(s.elapsed());
            let s = Instant::now();
            {
                let r = raw.client.query_one(&with_token, &[&raw.id]).await.unwrap();
                assert!(r.get::<_, Option<i64>>(0).is_some());
                let r = raw.client.query_one(&raw.unlock, &[&raw.id]).await.unwrap();
                assert!(r.get::<_, bool>(0));
            }
            t[3].push(s.elapsed());
            let s = Instant::now();
            let grant = backend.acquire(&key, &req, None).await.unwrap().unwrap();
            assert!(grant.lease.release().await.unwrap());
            t[4].push(s.elapsed());
        }
        let [be, raw_t, ours, tok, be_wait] = t.each_mut().map(|v| median(v));
        println!(
            "postgres uncontended interleaved x3000 medians: raw pair {raw_t:?}; raw pair with \
             locksmith's attempt statement (token) {tok:?}; backend try_acquire + lease release \
             {be:?}; backend acquire + lease release {be_wait:?}; locksmith acquire + release {ours:?}"
        );
    });
    g.bench_function("locksmith_acquire_release", |b| {
        b.to_async(&rt).iter(|| async {
            let guard = locker.acquire("bench-locksmith", &opts).await.unwrap();
            std::hint::black_box(guard.fencing_token());
            assert!(guard.release().await.unwrap());
        })
    });
    g.finish();
}

async fn raw_contenders(url: &str, key: &str) -> Vec<Box<dyn Contender>> {
    raw_contenders_with(url, "SELECT pg_advisory_lock($1::bigint)", key).await
}

/// Raw contenders whose lock statement is locksmith's wait statement (the lock, then the token
/// from the sequence).
async fn raw_token_contenders(url: &str, key: &str) -> Vec<Box<dyn Contender>> {
    const WAIT: &str = include_str!("../sql/lock_wait_same_owner.sql");
    raw_contenders_with(url, WAIT, key).await
}

async fn raw_contenders_with(url: &str, lock: &str, key: &str) -> Vec<Box<dyn Contender>> {
    let mut v: Vec<Box<dyn Contender>> = Vec::new();
    for _ in 0..8 {
        v.push(Box::new(Raw::new(url, lock, hash_key(key)).await));
    }
    v
}

fn backend(url: &str) -> Arc<dyn Backend> {
    Arc::new(PgBackend::from_url(url).unwrap())
}

fn contended(c: &mut Criterion) {
    let rt = runtime();
    let url = postgres().url.clone();
    print_contended_8(
        &rt,
        "postgres",
        || raw_contenders(&url, "bench-c-raw"),
        || raw_token_contenders(&url, "bench-c-raw-token"),
        || backend(&url),
    );
    let mut g = c.benchmark_group("postgres/contended_8");
    g.bench_function("raw_pg_advisory_lock", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let url = url.clone();
            async move { contend_count(raw_contenders(&url, "bench-c-raw").await, iters).await }
        })
    });
    g.bench_function("locksmith", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let url = url.clone();
            async move {
                // Connected before the clock starts, like the raw contenders.
                let contenders = warm(locker_contenders(8, "bench-c-ls", || backend(&url))).await;
                contend_count(contenders, iters).await
            }
        })
    });
    g.finish();
}

fn crowd(c: &mut Criterion) {
    let rt = runtime();
    let url = postgres().url.clone();
    let mut g = c.benchmark_group("postgres/crowd_2000");
    g.sample_size(10);
    g.bench_function("locksmith_all_served", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let url = url.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let backend = Arc::new(PgBackend::from_url(&url).unwrap());
                    let took = serve_crowd(&Locker::new(backend.clone()), "bench-crowd", 2000).await;
                    total += took;
                    let s = backend.connection_stats();
                    println!(
                        "postgres crowd_2000: all served in {took:?}; connections opened {}, peak open {} (raw: one connection per waiter, 2,000 > max_connections 100)",
                        s.opened,
                        s.peak
                    );
                }
                total
            }
        })
    });
    g.finish();
}

criterion_group!(benches, uncontended, contended, crowd);
criterion_main!(benches);
