//! locksmith next to the `rslock` crate (an existing Rust Redlock), on the same private Redis
//! servers in the same run, through the same workloads as `locksmith bench`: one Redis
//! (`redis://` and its fair mode vs rslock on that server) and three independent ones (`redlock://` vs rslock
//! over the same three). Not shipped in the CLI; rslock is a dev-dependency of this target only.
//!
//! ```sh
//! cargo bench -p locksmith-bench --bench versus_rslock            # 3 s per workload
//! BENCH_DURATION_MS=5000 cargo bench -p locksmith-bench --bench versus_rslock
//! ```
//!
//! Prints the markdown table and writes `bench.md`, `bench.json` and `bench.svg` to
//! `target/versus-rslock/`.

#![allow(missing_docs)]

mod rslock_adapter;

use std::sync::Arc;
use std::time::Duration;

use locksmith_bench::{Config, OpenFn, ProgressFn, Report, Stop, bench_backend, markdown};
use locksmith_core::Backend;
use locksmith_redis::{RedisBackend, RedlockBackend};
use locksmith_testkit::servers::redis;
use rslock_adapter::RslockBackend;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument from `cargo test --benches` means "skip".
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let duration = std::env::var("BENCH_DURATION_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(3), Duration::from_millis);
    let one = redis::shared().url();
    let three: Vec<String> = redis::shared_five()[..3]
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    let three_urls: Vec<String> = three.iter().map(|h| format!("redis://{h}")).collect();
    let redlock = format!("redlock://{}", three.join(","));

    let rows: Vec<(&str, bool, OpenFn)> = vec![
        ("redis", true, {
            let u = one.clone();
            Arc::new(move || Ok(Arc::new(RedisBackend::from_url(&u)?) as Arc<dyn Backend>))
        }),
        ("redis-fair", true, {
            let u = format!("{one}?fair=true");
            Arc::new(move || Ok(Arc::new(RedisBackend::from_url(&u)?) as Arc<dyn Backend>))
        }),
        ("rslock-1", false, {
            let u = one.clone();
            Arc::new(move || Ok(Arc::new(RslockBackend::new(vec![u.clone()])) as Arc<dyn Backend>))
        }),
        ("redlock-3", true, {
            let u = redlock.clone();
            Arc::new(move || Ok(Arc::new(RedlockBackend::from_url(&u)?) as Arc<dyn Backend>))
        }),
        ("rslock-3", false, {
            let u = three_urls.clone();
            Arc::new(move || Ok(Arc::new(RslockBackend::new(u.clone())) as Arc<dyn Backend>))
        }),
    ];

    let cfg = Config {
        duration,
        ..Config::default()
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let stop = Arc::new(Stop::new());
    let progress: ProgressFn = Arc::new(|backend, workload, left| {
        eprintln!("{backend}: {workload} ({:.0} s left)", left.as_secs_f64());
    });
    let mut report = Report {
        duration_secs: duration.as_secs_f64(),
        clients: cfg.clients,
        renew_leases: cfg.renew_leases,
        backends: Vec::new(),
        interrupted: false,
    };
    for (label, fencing, open) in rows {
        let url = open().map(|b| b.display_url()).unwrap_or_default();
        let mut b = rt.block_on(bench_backend(
            &url,
            open,
            &cfg,
            &stop,
            Arc::clone(&progress),
        ));
        b.label = label.to_owned();
        b.fencing = fencing;
        report.backends.push(b);
    }
    let table = markdown(&report);
    println!("{table}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/versus-rslock");
    std::fs::create_dir_all(&dir).expect("output folder");
    std::fs::write(dir.join("bench.md"), &table).expect("bench.md");
    std::fs::write(
        dir.join("bench.json"),
        serde_json::to_string_pretty(&report).expect("json"),
    )
    .expect("bench.json");
    locksmith_bench::write_svg(&report, &dir.join("bench.svg")).expect("bench.svg");
    eprintln!("written to {}", dir.display());
}
