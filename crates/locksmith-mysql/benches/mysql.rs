//! MySQL/MariaDB benchmarks, each with its raw baseline in the same run, against a private
//! MariaDB server on loopback (`innodb_flush_log_at_trx_commit=0`, no binary log):
//!
//! - `uncontended`: locksmith acquire + release (fencing token included) vs the raw pair
//!   `GET_LOCK(name, 0)` + `RELEASE_LOCK` with mysql_async prepared statements.
//! - `contended_8`: 8 tasks, each with its own client, take and release one key; locksmith vs
//!   the raw server-side queue (blocking `GET_LOCK` with a timeout + release, one connection each).
//!   Also prints acquisitions/s, wait p50/p99 and Jain's index of a timed run of each.
//! - `crowd_2000`: 2,000 waiters on one key in one process: time until all are served, and
//!   the connections locksmith opened (printed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use locksmith_core::{Backend, LockOptions, Locker};
use locksmith_mysql::MySqlBackend;
use locksmith_testkit::bench::{
    BoxFut, Contender, contend_count, interleaved_medians, locker_contenders, median,
    print_contended_8, serve_crowd, warm,
};
use locksmith_testkit::servers::mariadb::mariadb;
use mysql_async::prelude::Queryable;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

struct Raw {
    conn: mysql_async::Conn,
    lock: &'static str,
    name: String,
}

impl Raw {
    async fn new(url: &str, lock: &'static str, name: &str) -> Self {
        let opts = mysql_async::Opts::from_url(url).unwrap();
        Self {
            conn: mysql_async::Conn::new(opts).await.unwrap(),
            lock,
            name: name.to_owned(),
        }
    }

    async fn lock_once(&mut self) {
        let got: Option<i64> = self
            .conn
            .exec_first(self.lock, (&self.name,))
            .await
            .unwrap();
        // GET_LOCK's 1, or the token of locksmith's wait statement.
        assert!(got.is_some_and(|n| n >= 1), "{got:?}");
    }

    async fn unlock_once(&mut self) {
        let r: Option<i64> = self
            .conn
            .exec_first("SELECT RELEASE_LOCK(?)", (&self.name,))
            .await
            .unwrap();
        assert_eq!(r, Some(1));
    }
}

impl Contender for Raw {
    fn lock(&mut self) -> BoxFut<'_> {
        Box::pin(self.lock_once())
    }
    fn unlock(&mut self) -> BoxFut<'_> {
        Box::pin(self.unlock_once())
    }
}

fn uncontended(c: &mut Criterion) {
    let rt = runtime();
    let url = mariadb().url.clone();
    let mut g = c.benchmark_group("mysql/uncontended");
    let raw =
        tokio::sync::Mutex::new(rt.block_on(Raw::new(&url, "SELECT GET_LOCK(?, 0)", "bench-raw")));
    g.bench_function("raw_get_lock_release_lock", |b| {
        b.to_async(&rt).iter(|| async {
            let mut raw = raw.lock().await;
            raw.lock_once().await;
            raw.unlock_once().await;
        })
    });
    let locker = Locker::new(Arc::new(MySqlBackend::from_url(&url).unwrap()));
    let opts = LockOptions::new();
    // Interleaved pairs: each locksmith pair runs right after a raw one, so that the load of
    // a busy machine hits both alike; the ratio of medians is the figure to compare.
    rt.block_on(async {
        let backend = MySqlBackend::from_url(&url).unwrap();
        let key = locksmith_core::LockKey::new("bench-backend").unwrap();
        let req = locksmith_core::AcquireRequest::new(Duration::from_secs(30), "bench");
        // The headline ratio: raw and locksmith pairs interleaved one for one.
        let (r, o) = interleaved_medians(
            3000,
            || async {
                let mut raw = raw.lock().await;
                raw.lock_once().await;
                raw.unlock_once().await;
            },
            || async {
                let guard = locker.acquire("bench-locksmith", &opts).await.unwrap();
                std::hint::black_box(guard.fencing_token());
                assert!(guard.release().await.unwrap());
            },
        )
        .await;
        println!(
            "mysql uncontended interleaved x3000: raw pair median {r:?}, locksmith acquire+release median {o:?}, ratio {:.2}",
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
                let mut raw = raw.lock().await;
                raw.lock_once().await;
                raw.unlock_once().await;
            }
            t[1].push(s.elapsed());
            let s = Instant::now();
            let guard = locker.acquire("bench-locksmith", &opts).await.unwrap();
            std::hint::black_box(guard.fencing_token());
            assert!(guard.release().await.unwrap());
            t[2].push(s.elapsed());
            // The raw pair with locksmith's MariaDB attempt statement (lock + token from the
            // sequence) in place of the bare lock: what the fencing token costs the server.
            let s = Instant::now();
            {
                let mut raw = raw.lock().await;
                let name = raw.name.clone();
                let tok: Option<Option<i64>> = raw
                    .conn
                    .exec_first(
                        "SELECT CASE WHEN GET_LOCK(?, 0) = 1 THEN NEXTVAL(locksmith_fencing_seq) END",
                        (&name,),
                    )
                    .await
                    .unwrap();
                assert!(tok.flatten().is_some());
                raw.unlock_once().await;
            }
            t[3].push(s.elapsed());
            let s = Instant::now();
            let grant = backend.acquire(&key, &req, None).await.unwrap().unwrap();
            assert!(grant.lease.release().await.unwrap());
            t[4].push(s.elapsed());
        }
        let [be, r, o, tok, be_wait] = t.each_mut().map(|v| median(v));
        println!(
            "mysql uncontended interleaved x3000 medians: raw pair {r:?}; raw pair with \
             locksmith's attempt statement (token) {tok:?}; backend try_acquire + lease release \
             {be:?}; backend acquire + lease release {be_wait:?}; locksmith acquire + release {o:?}"
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
    raw_contenders_with(url, "SELECT GET_LOCK(?, 60)", key).await
}

/// Raw contenders whose lock statement is locksmith's MariaDB wait statement (the lock, then
/// the token from the sequence).
async fn raw_token_contenders(url: &str, key: &str) -> Vec<Box<dyn Contender>> {
    const WAIT: &str =
        "SELECT CASE WHEN GET_LOCK(?, 60) = 1 THEN NEXTVAL(locksmith_fencing_seq) END";
    raw_contenders_with(url, WAIT, key).await
}

async fn raw_contenders_with(url: &str, lock: &'static str, key: &str) -> Vec<Box<dyn Contender>> {
    let mut v: Vec<Box<dyn Contender>> = Vec::new();
    for _ in 0..8 {
        v.push(Box::new(Raw::new(url, lock, key).await));
    }
    v
}

fn backend(url: &str) -> Arc<dyn Backend> {
    Arc::new(MySqlBackend::from_url(url).unwrap())
}

fn contended(c: &mut Criterion) {
    let rt = runtime();
    let url = mariadb().url.clone();
    print_contended_8(
        &rt,
        "mysql",
        || raw_contenders(&url, "bench-c-raw"),
        || raw_token_contenders(&url, "bench-c-raw-token"),
        || backend(&url),
    );
    let mut g = c.benchmark_group("mysql/contended_8");
    g.bench_function("raw_get_lock_timeout", |b| {
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
    let url = mariadb().url.clone();
    let mut g = c.benchmark_group("mysql/crowd_2000");
    g.sample_size(10);
    g.bench_function("locksmith_all_served", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let url = url.clone();
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let backend = Arc::new(MySqlBackend::from_url(&url).unwrap());
                    let took = serve_crowd(&Locker::new(backend.clone()), "bench-crowd", 2000).await;
                    total += took;
                    let s = backend.connection_stats();
                    println!(
                        "mysql crowd_2000: all served in {took:?}; connections opened {}, peak open {} (raw: one connection per waiter, 2,000 > max_connections 200)",
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
