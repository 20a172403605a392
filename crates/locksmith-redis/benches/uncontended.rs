//! Uncontended acquire + release, each next to its raw baseline measured in the same run:
//! - `redis/locksmith` (Locker: guard, renewal task, fencing token) and `redis/backend` (the
//!   backend's grant and release alone) against `redis/raw-setnx-evalsha`: `SET k v NX PX`
//!   then `EVALSHA` compare-and-delete on the same `redis` client — the two round trips any
//!   safe Redis lock needs;
//! - `redlock3/locksmith` over 3 nodes against `redlock3/majority-limit`: two parallel fan-outs
//!   (SET NX PX, then compare-and-delete), each returning once 2 of 3 nodes answered, and
//!   `redlock3/rslock` (the rslock crate, lock + unlock).
//!
//! Private redis-servers (no persistence) on loopback. Run with
//! `cargo bench -p locksmith-redis --bench uncontended`.

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use locksmith_core::{AcquireRequest, Backend, LockKey, LockOptions, Locker};
use locksmith_redis::{RedisBackend, RedlockBackend};
use locksmith_testkit::servers::redis::RedisServer;
use redis::aio::MultiplexedConnection;

const CAS_DELETE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn connect(url: &str) -> MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn raw_cycle(conn: &mut MultiplexedConnection, script: &redis::Script, key: &str) {
    let ok: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg("v")
        .arg("NX")
        .arg("PX")
        .arg(30_000)
        .query_async(conn)
        .await
        .unwrap();
    assert!(ok.is_some());
    let n: i64 = script.key(key).arg("v").invoke_async(conn).await.unwrap();
    assert_eq!(n, 1);
}

fn single(c: &mut Criterion) {
    let rt = runtime();
    let server = RedisServer::start();
    let url = server.url();
    let backend = Arc::new(RedisBackend::from_url(&url).unwrap());
    let locker = Locker::new(backend.clone());
    let opts = LockOptions::new();
    let key = LockKey::new("bench-single").unwrap();
    let req = AcquireRequest::new(Duration::from_secs(30), "bench");
    let script = redis::Script::new(CAS_DELETE);
    let conn = rt.block_on(connect(&url));
    let mut g = c.benchmark_group("redis");
    g.bench_function("raw-setnx-evalsha", |b| {
        b.to_async(&rt)
            .iter(|| async { raw_cycle(&mut conn.clone(), &script, "bench-raw").await })
    });
    g.bench_function("backend", |b| {
        b.to_async(&rt).iter(|| async {
            let grant = backend.try_acquire(&key, &req).await.unwrap().unwrap();
            assert!(grant.lease.release().await.unwrap());
        })
    });
    g.bench_function("locksmith", |b| {
        b.to_async(&rt).iter(|| async {
            let guard = locker.acquire(&key, &opts).await.unwrap();
            assert!(guard.release().await.unwrap());
        })
    });
    g.finish();
}

/// One request to every connection at once, returning when `need` answered.
async fn majority<F, Fut>(conns: &[MultiplexedConnection], need: usize, f: F)
where
    F: Fn(MultiplexedConnection) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut pending: FuturesUnordered<_> = conns.iter().map(|c| f(c.clone())).collect();
    let mut yes = 0;
    while let Some(ok) = pending.next().await {
        yes += usize::from(ok);
        if yes >= need {
            return;
        }
    }
    panic!("no majority");
}

fn redlock3(c: &mut Criterion) {
    let rt = runtime();
    let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let urls: Vec<String> = servers.iter().map(RedisServer::url).collect();
    let hosts: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    let locker = Locker::new(Arc::new(
        RedlockBackend::from_url(&format!("redlock://{}", hosts.join(","))).unwrap(),
    ));
    let opts = LockOptions::new();
    let conns: Vec<MultiplexedConnection> = rt.block_on(async {
        let mut v = Vec::new();
        for u in &urls {
            v.push(connect(u).await);
        }
        v
    });
    let script = redis::Script::new(CAS_DELETE);
    rt.block_on(async {
        for c in &conns {
            script.load_async(&mut c.clone()).await.unwrap();
        }
    });
    let rslock = rslock::LockManager::new(urls.clone());
    let mut g = c.benchmark_group("redlock3");
    g.bench_function("majority-limit", |b| {
        b.to_async(&rt).iter(|| async {
            majority(&conns, 2, |mut c| async move {
                let ok: Option<String> = redis::cmd("SET")
                    .arg("bench-majority")
                    .arg("v")
                    .arg("NX")
                    .arg("PX")
                    .arg(30_000)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                ok.is_some()
            })
            .await;
            majority(&conns, 2, |mut c| {
                let script = &script;
                async move {
                    let n: i64 = script
                        .key("bench-majority")
                        .arg("v")
                        .invoke_async(&mut c)
                        .await
                        .unwrap();
                    n == 1
                }
            })
            .await;
        })
    });
    g.bench_function("locksmith", |b| {
        b.to_async(&rt).iter(|| async {
            let guard = locker.acquire("bench-redlock", &opts).await.unwrap();
            assert!(guard.release().await.unwrap());
        })
    });
    g.bench_function("rslock", |b| {
        b.to_async(&rt).iter(|| async {
            let lock = rslock
                .lock("bench-rslock".as_bytes(), Duration::from_secs(30))
                .await
                .unwrap();
            rslock.unlock(&lock).await;
        })
    });
    g.finish();
    // The majority-limit runs may leave keys on the slowest node; the servers go with the run.
    drop(servers);
}

criterion_group!(benches, single, redlock3);
criterion_main!(benches);
