//! 10,000 keys held at once by one process with renewal on (TTL 3 s, so each lease renews
//! about once a second): resident memory before and after, and renewals per second and the
//! round trips they took, as the server counts them (`INFO commandstats`: PEXPIRE calls, one
//! per lease renewed, and EVALSHA calls, one per script call: renewals that come due together
//! share one), printed. Then
//! criterion times one renewal (`many_keys/renew`) next to its raw baseline, an `EVALSHA`
//! compare-and-`PEXPIRE` on the same client (`many_keys/raw-evalsha-pexpire`), while the
//! 10,000 leases keep renewing in the background.
//! Run with `cargo bench -p locksmith-redis --bench many_keys`.

#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use locksmith_core::{AcquireRequest, Backend, LockKey, LockOptions, Locker};
use locksmith_redis::RedisBackend;
use locksmith_testkit::servers::redis::RedisServer;

const KEYS: usize = 10_000;
/// Acquired this many at a time, so that resident memory counts what the held leases keep, not
/// a peak of 10,000 acquire calls in flight at once.
const WAVE: usize = 200;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Calls of `command` the server counted (`INFO commandstats`; commands that scripts run
/// count too).
async fn server_calls(conn: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    let field = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(field.as_str()))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn many_keys(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let url = server.url();
    let backend = Arc::new(RedisBackend::from_url(&url).unwrap());
    let locker = Locker::new(backend.clone());
    let mut conn = rt.block_on(async {
        redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    });
    let opts = LockOptions::new().ttl(Duration::from_secs(3));

    let before = rss_kib();
    let start = Instant::now();
    let guards = rt.block_on(async {
        let mut guards = Vec::with_capacity(KEYS);
        for wave in 0..KEYS / WAVE {
            let tasks: Vec<_> = (wave * WAVE..(wave + 1) * WAVE)
                .map(|i| {
                    let (locker, opts) = (locker.clone(), opts.clone());
                    tokio::spawn(async move {
                        locker.acquire(format!("many-{i}"), &opts).await.unwrap()
                    })
                })
                .collect();
            for t in tasks {
                guards.push(t.await.unwrap());
            }
        }
        guards
    });
    let took = start.elapsed();
    let held = rss_kib();
    let window = Duration::from_secs(6);
    let (round_trips, renewals, lost) = rt.block_on(async {
        let (e0, p0) = (
            server_calls(&mut conn, "evalsha").await,
            server_calls(&mut conn, "pexpire").await,
        );
        tokio::time::sleep(window).await;
        let (e1, p1) = (
            server_calls(&mut conn, "evalsha").await,
            server_calls(&mut conn, "pexpire").await,
        );
        (
            e1 - e0,
            p1 - p0,
            guards.iter().filter(|g| !g.is_held()).count(),
        )
    });
    let per_s = |n: u64| n as f64 / window.as_secs_f64();
    println!(
        "\n{KEYS} keys acquired in {took:.2?} ({WAVE} at a time, one client); resident memory \
         {before} KiB before, {held} KiB while held (+{:.1} KiB per lease); over {window:?}: \
         {:.0} renewals/s (server-counted PEXPIRE, ~{KEYS}/s expected at TTL 3 s) in {:.0} \
         round trips/s (server-counted EVALSHA), {lost} leases lost",
        (held.saturating_sub(before)) as f64 / KEYS as f64,
        per_s(renewals),
        per_s(round_trips),
    );

    let key = LockKey::new("renew-bench").unwrap();
    let grant = rt
        .block_on(backend.try_acquire(&key, &AcquireRequest::new(Duration::from_secs(30), "b")))
        .unwrap()
        .unwrap();
    let raw = redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
    );
    let _: () = rt
        .block_on(
            redis::cmd("SET")
                .arg("raw-renew")
                .arg("v")
                .query_async(&mut conn),
        )
        .unwrap();
    let mut g = c.benchmark_group("many_keys");
    g.bench_function("raw-evalsha-pexpire", |b| {
        b.to_async(&rt).iter(|| async {
            let n: i64 = raw
                .key("raw-renew")
                .arg("v")
                .arg(30_000)
                .invoke_async(&mut conn.clone())
                .await
                .unwrap();
            assert_eq!(n, 1);
        })
    });
    g.bench_function("renew", |b| {
        b.to_async(&rt).iter(|| async {
            assert!(grant.lease.renew(Duration::from_secs(30)).await.unwrap());
        })
    });
    g.finish();
    rt.block_on(async {
        for g in guards {
            let _ = g.release().await;
        }
    });
}

criterion_group!(benches, many_keys);
criterion_main!(benches);
