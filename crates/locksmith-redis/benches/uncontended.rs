//! Uncontended acquire + release, each next to its raw baseline measured in the same run:
//! - `redis/locksmith` (Locker: guard, lease keeping, fencing token) and `redis/backend` (the
//!   backend's grant and release alone) against `redis/raw-setnx-evalsha`: `SET k v NX PX`
//!   then `EVALSHA` compare-and-delete on the same `redis` client — the two round trips any
//!   safe Redis lock needs;
//! - `redlock3/locksmith` over 3 nodes against `redlock3/majority-limit`: two parallel fan-outs
//!   (SET NX PX, then compare-and-delete), each returning once 2 of 3 nodes answered, and
//!   `redlock3/rslock` (the rslock crate, lock + unlock).
//!
//! The `redis` group also reports each workload's **server time** per cycle (Redis's
//! `INFO commandstats`): how much of the gap is the scripts' work inside the server.
//!
//! Before criterion, each group is also measured **side by side**: the workloads take turns in
//! blocks of 10 cycles (rotating which goes first) for 300 rounds, and the table gives each
//! one's median block and its median per-round ratio to the baseline. On a shared machine,
//! whose load changes from second to second, these ratios are the ones to quote; criterion's
//! figures, taken one workload after the other, can differ by the load of the moment.
//!
//! Private redis-servers (no persistence) on loopback. Run with
//! `cargo bench -p locksmith-redis --bench uncontended`.

#![allow(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

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

type Cycle<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// Runs the workloads side by side (see the crate-level comment) and prints the table; the
/// first workload is the baseline.
async fn side_by_side<'a>(title: &str, names: &[&str], cycle: &impl Fn(usize) -> Cycle<'a>) {
    const ROUNDS: usize = 300;
    const BLOCK: u32 = 10;
    let mut blocks: Vec<Vec<Duration>> = vec![Vec::with_capacity(ROUNDS); names.len()];
    for round in 0..ROUNDS {
        for k in 0..names.len() {
            let which = (k + round) % names.len();
            let start = Instant::now();
            for _ in 0..BLOCK {
                cycle(which).await;
            }
            blocks[which].push(start.elapsed() / BLOCK);
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("\n{title}: side by side, {ROUNDS} rounds of {BLOCK} cycles each");
    for (i, name) in names.iter().enumerate() {
        let per = median(blocks[i].iter().map(|d| d.as_secs_f64() * 1e6).collect());
        let ratio = median(
            (0..ROUNDS)
                .map(|r| blocks[i][r].as_secs_f64() / blocks[0][r].as_secs_f64())
                .collect(),
        );
        println!(
            "  {name:<24} {per:>8.1} µs per cycle   {ratio:.3} × {}",
            names[0]
        );
    }
}

/// The server's own time per cycle of each workload (`INFO commandstats`, summed over every
/// command and script): the part of a gap that is work done inside Redis. Less sensitive to
/// the machine's load than wall time, not immune to it (a busy host's steal time counts).
async fn server_time<'a>(
    title: &str,
    names: &[&str],
    conn: &MultiplexedConnection,
    cycle: &impl Fn(usize) -> Cycle<'a>,
) {
    const CYCLES: u32 = 2_000;
    let mut conn = conn.clone();
    println!("\n{title}: server time (INFO commandstats), {CYCLES} cycles each");
    for (which, name) in names.iter().enumerate() {
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query_async(&mut conn)
            .await
            .unwrap();
        for _ in 0..CYCLES {
            cycle(which).await;
        }
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .unwrap();
        // Lines `cmdstat_<name>:calls=…,usec=…,…`; the RESETSTAT itself is left out.
        let usec: f64 = info
            .lines()
            .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_config"))
            .filter_map(|l| l.split(',').find_map(|f| f.strip_prefix("usec=")))
            .filter_map(|v| v.parse::<f64>().ok())
            .sum();
        println!(
            "  {name:<24} {:>8.2} µs of server time per cycle",
            usec / f64::from(CYCLES)
        );
    }
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
    let names = ["raw-setnx-evalsha", "backend", "locksmith"];
    let cycle = |which: usize| -> Cycle<'_> {
        let (conn, script, backend, locker) = (conn.clone(), &script, &backend, &locker);
        let (key, req, opts) = (&key, &req, &opts);
        Box::pin(async move {
            match which {
                0 => raw_cycle(&mut conn.clone(), script, "bench-raw").await,
                1 => {
                    let grant = backend.try_acquire(key, req).await.unwrap().unwrap();
                    assert!(grant.lease.release().await.unwrap());
                }
                _ => {
                    let guard = locker.acquire(key, opts).await.unwrap();
                    assert!(guard.release().await.unwrap());
                }
            }
        })
    };
    rt.block_on(side_by_side("redis", &names, &cycle));
    rt.block_on(server_time("redis", &names, &conn, &cycle));
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

/// SET NX PX on every node, returning at 2 of 3; then compare-and-delete, the same way.
async fn majority_cycle(conns: &[MultiplexedConnection], script: &redis::Script) {
    majority(conns, 2, |mut c| async move {
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
    majority(conns, 2, |mut c| async move {
        let n: i64 = script
            .key("bench-majority")
            .arg("v")
            .invoke_async(&mut c)
            .await
            .unwrap();
        n == 1
    })
    .await;
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
    rt.block_on(side_by_side(
        "redlock3",
        &["majority-limit", "locksmith", "rslock"],
        &|which| {
            let (conns, script, locker, opts, rslock) = (&conns, &script, &locker, &opts, &rslock);
            Box::pin(async move {
                match which {
                    0 => majority_cycle(conns, script).await,
                    1 => {
                        let guard = locker.acquire("bench-redlock", opts).await.unwrap();
                        assert!(guard.release().await.unwrap());
                    }
                    _ => {
                        let lock = rslock
                            .lock("bench-rslock".as_bytes(), Duration::from_secs(30))
                            .await
                            .unwrap();
                        rslock.unlock(&lock).await;
                    }
                }
            })
        },
    ));
    let mut g = c.benchmark_group("redlock3");
    g.bench_function("majority-limit", |b| {
        b.to_async(&rt)
            .iter(|| async { majority_cycle(&conns, &script).await })
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
