//! scratch: interleaved paired timings, redlock over 3 nodes
#![allow(missing_docs)]
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use locksmith_core::{LockOptions, Locker};
use locksmith_redis::RedlockBackend;
use locksmith_testkit::servers::redis::RedisServer;
use redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::time::Instant;

const CAS_DELETE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

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

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let servers: Vec<RedisServer> = (0..3).map(|_| RedisServer::start()).collect();
    let hosts: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    let backend =
        Arc::new(RedlockBackend::from_url(&format!("redlock://{}", hosts.join(","))).unwrap());
    let locker = Locker::new(backend.clone());
    let key = locksmith_core::LockKey::new("bench-redlock2").unwrap();
    let req = locksmith_core::AcquireRequest::new(std::time::Duration::from_secs(30), "b");
    let opts = LockOptions::new();
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap())
        .unwrap_or(300);
    rt.block_on(async move {
        let mut conns = Vec::new();
        for s in &servers {
            conns.push(
                redis::Client::open(s.url().as_str())
                    .unwrap()
                    .get_multiplexed_async_connection()
                    .await
                    .unwrap(),
            );
        }
        let script = redis::Script::new(CAS_DELETE);
        for c in &conns {
            script.load_async(&mut c.clone()).await.unwrap();
        }
        let names = ["majority-limit", "locksmith", "backend"];
        let mut t: Vec<Vec<f64>> = vec![Vec::new(); 3];
        for round in 0..rounds {
            for k in 0..3 {
                let which = (k + round) % 3;
                let start = Instant::now();
                for _ in 0..10 {
                    if which == 0 {
                        majority(&conns, 2, |mut c| async move {
                            let ok: Option<String> = redis::cmd("SET")
                                .arg("bm")
                                .arg("v")
                                .arg("NX")
                                .arg("PX")
                                .arg(30000)
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
                                    .key("bm")
                                    .arg("v")
                                    .invoke_async(&mut c)
                                    .await
                                    .unwrap();
                                n == 1
                            }
                        })
                        .await;
                    } else if which == 2 {
                        use locksmith_core::Backend;
                        let g = backend.try_acquire(&key, &req).await.unwrap().unwrap();
                        assert!(g.lease.release().await.unwrap());
                    } else {
                        let g = locker.acquire("bench-redlock", &opts).await.unwrap();
                        assert!(g.release().await.unwrap());
                    }
                }
                t[which].push(start.elapsed().as_secs_f64() * 1e6 / 10.0);
            }
        }
        let n = t[0].len().min(t.iter().map(|v| v.len()).max().unwrap());
        for (i, v) in t.iter().enumerate() {
            if v.len() != n || i == 0 {
                continue;
            }
            let mut r: Vec<f64> = (0..n).map(|j| v[j] / t[0][j]).collect();
            r.sort_by(|a, b| a.partial_cmp(b).unwrap());
            println!("variant {i}: median of per-round ratios {:.3}", r[n / 2]);
        }
        let med = |v: &mut Vec<f64>| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[v.len() / 2]
        };
        let meds: Vec<f64> = t.iter_mut().map(med).collect();
        for (n, m) in names.iter().zip(&meds) {
            println!("{n:<16} median {m:>8.1} µs  ratio {:.3}", m / meds[0]);
        }
        for c in &conns {
            let info: String = redis::cmd("INFO")
                .arg("commandstats")
                .query_async(&mut c.clone())
                .await
                .unwrap();
            println!(
                "{}",
                info.lines()
                    .filter(|l| l.contains("evalsha") || l.contains("cmdstat_set:"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        drop(servers);
    });
}
