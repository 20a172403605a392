//! scratch: interleaved paired timings
#![allow(missing_docs)]
use locksmith_core::{AcquireRequest, Backend, LockKey, LockOptions, Locker};
use locksmith_redis::RedisBackend;
use locksmith_testkit::servers::redis::RedisServer;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CAS_DELETE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = RedisServer::start();
    let url = server.url();
    let backend = Arc::new(RedisBackend::from_url(&url).unwrap());
    let locker = Locker::new(backend.clone());
    let opts = LockOptions::new();
    let norenew = LockOptions::new().renew(false);
    let key = LockKey::new("bench-single").unwrap();
    let req = AcquireRequest::new(Duration::from_secs(30), "bench");
    let script = redis::Script::new(CAS_DELETE);
    rt.block_on(async move {
        let conn = redis::Client::open(url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let names = [
            "raw",
            "try+rel",
            "acq+rel",
            "locker",
            "locker-norenew",
            "raw-ourscripts",
        ];
        let acq = redis::Script::new(include_str!("../src/lua/acquire.lua"));
        let rel = redis::Script::new(include_str!("../src/lua/release.lua"));
        let mut t: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
        let only: Option<usize> = std::env::args().nth(1).map(|a| a.parse().unwrap());
        let rounds: usize = std::env::args()
            .nth(2)
            .map(|a| a.parse().unwrap())
            .unwrap_or(400);
        for round in 0..rounds {
            for k in 0..names.len() {
                let which = (k + round) % names.len();
                if only.is_some_and(|o| o != which) {
                    continue;
                }
                let start = Instant::now();
                for _ in 0..10 {
                    match which {
                        0 => {
                            let mut c = conn.clone();
                            let ok: Option<String> = redis::cmd("SET")
                                .arg("raw")
                                .arg("v")
                                .arg("NX")
                                .arg("PX")
                                .arg(30000)
                                .query_async(&mut c)
                                .await
                                .unwrap();
                            assert!(ok.is_some());
                            let n: i64 = script
                                .key("raw")
                                .arg("v")
                                .invoke_async(&mut c)
                                .await
                                .unwrap();
                            assert_eq!(n, 1);
                        }
                        1 => {
                            let g = backend.try_acquire(&key, &req).await.unwrap().unwrap();
                            assert!(g.lease.release().await.unwrap());
                        }
                        2 => {
                            let g = backend.acquire(&key, &req, None).await.unwrap().unwrap();
                            assert!(g.lease.release().await.unwrap());
                        }
                        3 => {
                            let g = locker.acquire(&key, &opts).await.unwrap();
                            assert!(g.release().await.unwrap());
                        }
                        5 => {
                            let mut c = conn.clone();
                            let (g, _t): (i64, i64) = acq
                                .key("ours")
                                .key("{ours}:locksmith:fence")
                                .arg("ls1:0123456789abcdef0123456789abcdef")
                                .arg(30000)
                                .arg("1764140000000:bench")
                                .invoke_async(&mut c)
                                .await
                                .unwrap();
                            assert_eq!(g, 1);
                            let n: i64 = rel
                                .key("ours")
                                .arg("ls1:0123456789abcdef0123456789abcdef:")
                                .arg("{ours}:locksmith:released")
                                .invoke_async(&mut c)
                                .await
                                .unwrap();
                            assert_eq!(n, 1);
                        }
                        _ => {
                            let g = locker.acquire(&key, &norenew).await.unwrap();
                            assert!(g.release().await.unwrap());
                        }
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
        if only.is_some() {
            return;
        }
        let meds: Vec<f64> = t.iter_mut().map(med).collect();
        for (n, m) in names.iter().zip(&meds) {
            println!("{n:<16} median {m:>8.1} µs  ratio {:.3}", m / meds[0]);
        }
    });
}
