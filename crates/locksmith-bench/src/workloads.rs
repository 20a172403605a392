//! The five workloads, run one after the other against one backend.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use locksmith_core::{AcquireRequest, Backend, Error, LockKey, LockOptions, Locker, Result};

use crate::counting::CountingBackend;
use crate::report::{BackendReport, Contended, Floor, Renewal, Throughput};
use crate::stats::{Latency, histogram, jain, record};
use crate::stop::Stop;

/// Opens a fresh instance of the backend under test (its own connections): one per client.
pub type OpenFn = Arc<dyn Fn() -> Result<Arc<dyn Backend>> + Send + Sync>;

/// Told `(backend, workload, time left)` about every quarter second while a workload runs.
pub type ProgressFn = Arc<dyn Fn(&str, &str, Duration) + Send + Sync>;

/// How long and how wide to measure.
#[derive(Clone, Debug)]
pub struct Config {
    /// How long each timed workload runs.
    pub duration: Duration,
    /// Concurrent clients for the throughput and contended workloads.
    pub clients: usize,
    /// Leases held with renewal on in the renewal-load workload (0 skips it).
    pub renew_leases: usize,
    /// Lease TTL of the renewal-load workload (renewed every third of it).
    pub renew_ttl: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(5),
            clients: 8,
            renew_leases: 100,
            renew_ttl: Duration::from_secs(3),
        }
    }
}

/// A random key prefix for one run: `locksmith-bench/<16 hex digits>`.
fn random_prefix() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    format!("locksmith-bench/{:016x}", h.finish())
}

fn key(s: String) -> Result<LockKey> {
    LockKey::new(s)
}

/// Runs every workload against the backend `open` opens, and returns what was measured. A
/// workload that fails records its error and the next ones still run; `stop` ends the current
/// workload early and skips the rest.
pub async fn bench_backend(
    label: &str,
    open: OpenFn,
    cfg: &Config,
    stop: &Arc<Stop>,
    progress: ProgressFn,
) -> BackendReport {
    let mut report = BackendReport::new(label);
    let prefix = random_prefix();
    match open() {
        Ok(b) => {
            report.scheme = b.scheme().to_owned();
            report.label = report.scheme.clone();
            let caps = b.capabilities();
            report.fair = caps.fair;
            report.lease_model = format!("{:?}", caps.lease_model);
        }
        Err(e) => {
            report.errors.push(format!("open: {e}"));
            return report;
        }
    }
    let ticker = |workload: &'static str| {
        let (label, progress, stop) = (label.to_owned(), Arc::clone(&progress), Arc::clone(stop));
        let end = Instant::now() + cfg.duration;
        tokio::spawn(async move {
            loop {
                progress(
                    &label,
                    workload,
                    end.saturating_duration_since(Instant::now()),
                );
                stop.sleep(Duration::from_millis(250)).await;
                if stop.is_stopped() {
                    break;
                }
            }
        })
    };
    macro_rules! step {
        ($name:literal, $field:ident, $call:expr) => {
            if !stop.is_stopped() {
                let t = ticker($name);
                match $call.await {
                    Ok(v) => report.$field = Some(v),
                    Err(e) => report.errors.push(format!("{}: {e}", $name)),
                }
                t.abort();
            }
        };
    }
    if !stop.is_stopped() {
        let t = ticker("floor + uncontended");
        match floor_and_uncontended(&open, &prefix, cfg, stop).await {
            Ok((f, u)) => {
                report.floor = Some(f);
                report.uncontended = Some(u);
            }
            Err(e) => report.errors.push(format!("floor + uncontended: {e}")),
        }
        t.abort();
    }
    step!(
        "throughput",
        throughput,
        throughput(&open, &prefix, cfg, stop)
    );
    step!("contended", contended, contended(&open, &prefix, cfg, stop));
    if cfg.renew_leases > 0 {
        step!("renewal", renewal, renewal(&open, &prefix, cfg, stop));
    }
    report.interrupted = stop.is_stopped();
    report
}

/// The floor and the uncontended pair, interleaved one for one so that both see the same
/// machine load: the backend's native pair ([`Backend::native_pair`]; for a backend that
/// offers none, `try_acquire` + `release` on the raw trait), then `Locker::acquire` +
/// `Guard::release` with default options, each on its own key and backend instance.
async fn floor_and_uncontended(
    open: &OpenFn,
    prefix: &str,
    cfg: &Config,
    stop: &Stop,
) -> Result<(Floor, Latency)> {
    let raw = open()?;
    let locker = Locker::new(open()?);
    let (fk, uk) = (
        key(format!("{prefix}/floor"))?,
        key(format!("{prefix}/uncontended"))?,
    );
    let opts = LockOptions::new();
    // One untimed round of each connects and warms up.
    let native = raw.native_pair(&fk).await?;
    if native.is_none() {
        trait_pair(&raw, &fk).await?;
    }
    locker.acquire(&uk, &opts).await?.release().await?;
    let (mut fh, mut uh) = (histogram(), histogram());
    let end = Instant::now() + cfg.duration;
    while Instant::now() < end && !stop.is_stopped() {
        let t = Instant::now();
        if native.is_some() {
            raw.native_pair(&fk).await?;
        } else {
            trait_pair(&raw, &fk).await?;
        }
        record(&mut fh, t.elapsed());
        let t = Instant::now();
        let g = locker.acquire(&uk, &opts).await?;
        g.release().await?;
        record(&mut uh, t.elapsed());
        // Let the progress line and Ctrl-C run even when the backend never blocks.
        tokio::task::yield_now().await;
    }
    let method = native.map_or_else(
        || "Backend::try_acquire + Lease::release (no native pair offered)".to_owned(),
        str::to_owned,
    );
    Ok((
        Floor {
            method,
            latency: Latency::from_histogram(&fh),
        },
        Latency::from_histogram(&uh),
    ))
}

/// `try_acquire` + `release` on the raw backend trait.
async fn trait_pair(backend: &Arc<dyn Backend>, k: &LockKey) -> Result<()> {
    let req = AcquireRequest::new(Duration::from_secs(30), "locksmith-bench");
    let grant = backend.try_acquire(k, &req).await?.ok_or_else(|| {
        Error::backend(
            backend.display_url(),
            Some(k.as_str()),
            "floor: the benchmark's own key was busy",
            None,
        )
    })?;
    grant.lease.release().await?;
    Ok(())
}

/// N clients on N distinct keys.
async fn throughput(
    open: &OpenFn,
    prefix: &str,
    cfg: &Config,
    stop: &Arc<Stop>,
) -> Result<Throughput> {
    let end = Instant::now() + cfg.duration;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..cfg.clients {
        let locker = Locker::new(open()?);
        let k = key(format!("{prefix}/throughput/{i}"))?;
        let stop = Arc::clone(stop);
        tasks.push(tokio::spawn(async move {
            let opts = LockOptions::new();
            let mut h = histogram();
            while Instant::now() < end && !stop.is_stopped() {
                let t = Instant::now();
                let g = locker.acquire(&k, &opts).await?;
                g.release().await?;
                record(&mut h, t.elapsed());
                // Separate clients: let the others run even when the backend never blocks.
                tokio::task::yield_now().await;
            }
            Ok::<_, Error>(h)
        }));
    }
    let mut all = histogram();
    for t in tasks {
        let h = t
            .await
            .map_err(|e| Error::backend("", None, format!("client task: {e}"), None))??;
        all.add(&h)
            .map_err(|e| Error::backend("", None, format!("histogram: {e}"), None))?;
    }
    let elapsed = start.elapsed();
    Ok(Throughput {
        clients: cfg.clients,
        ops_per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        latency: Latency::from_histogram(&all),
    })
}

/// N clients on one key.
async fn contended(
    open: &OpenFn,
    prefix: &str,
    cfg: &Config,
    stop: &Arc<Stop>,
) -> Result<Contended> {
    let k = key(format!("{prefix}/contended"))?;
    let base = Instant::now();
    let end = base + cfg.duration;
    // Nanoseconds since `base` + 1 at which the last holder started its release; 0 = none yet.
    let release_started = Arc::new(AtomicU64::new(0));
    let since_base = move || u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX) + 1;
    // The client that took the lock last (usize::MAX: none yet), to count hand-overs: grants
    // to a different client than the one before.
    let last = Arc::new(AtomicUsize::new(usize::MAX));
    let switches = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for me in 0..cfg.clients {
        let locker = Locker::new(open()?);
        let (k, stop, rs) = (k.clone(), Arc::clone(stop), Arc::clone(&release_started));
        let (last, switches) = (Arc::clone(&last), Arc::clone(&switches));
        tasks.push(tokio::spawn(async move {
            // A waiter still in line when the run ends gets its turn as the others leave.
            let opts = LockOptions::new().wait_for(Duration::from_secs(60));
            let (mut waits, mut handovers, mut n) = (histogram(), histogram(), 0u64);
            while Instant::now() < end && !stop.is_stopped() {
                let t = Instant::now();
                let g = locker.acquire(&k, &opts).await?;
                let got = since_base();
                record(&mut waits, t.elapsed());
                let before = last.swap(me, Ordering::SeqCst);
                if before != me && before != usize::MAX {
                    switches.fetch_add(1, Ordering::Relaxed);
                }
                let prev = rs.load(Ordering::SeqCst);
                if prev != 0 {
                    record(
                        &mut handovers,
                        Duration::from_nanos(got.saturating_sub(prev)),
                    );
                }
                n += 1;
                rs.store(since_base(), Ordering::SeqCst);
                g.release().await?;
                // Separate clients: let the others run even when the backend never blocks.
                tokio::task::yield_now().await;
            }
            Ok::<_, Error>((n, waits, handovers))
        }));
    }
    let (mut waits, mut handovers, mut counts) = (histogram(), histogram(), Vec::new());
    for t in tasks {
        let (n, w, h) = t
            .await
            .map_err(|e| Error::backend("", None, format!("client task: {e}"), None))??;
        counts.push(n);
        waits
            .add(&w)
            .map_err(|e| Error::backend("", None, format!("histogram: {e}"), None))?;
        handovers
            .add(&h)
            .map_err(|e| Error::backend("", None, format!("histogram: {e}"), None))?;
    }
    let elapsed = base.elapsed();
    Ok(Contended {
        clients: cfg.clients,
        acquisitions_per_sec: counts.iter().sum::<u64>() as f64 / elapsed.as_secs_f64(),
        handovers_per_sec: switches.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        wait: Latency::from_histogram(&waits),
        handover: Latency::from_histogram(&handovers),
        jain: jain(&counts),
        per_client: counts,
    })
}

/// K leases held with renewal on.
async fn renewal(open: &OpenFn, prefix: &str, cfg: &Config, stop: &Stop) -> Result<Renewal> {
    let rss_before = rss_kib();
    let counting = Arc::new(CountingBackend::new(open()?));
    let calls = counting.calls();
    let locker = Locker::new(counting);
    let opts = LockOptions::new().ttl(cfg.renew_ttl);
    let mut guards = Vec::with_capacity(cfg.renew_leases);
    for i in 0..cfg.renew_leases {
        if stop.is_stopped() {
            break;
        }
        guards.push(
            locker
                .acquire(format!("{prefix}/renewal/{i}").as_str(), &opts)
                .await?,
        );
    }
    let held = guards.len();
    let c0 = calls.load(Ordering::Relaxed);
    let t0 = Instant::now();
    stop.sleep(cfg.duration).await;
    let calls_per_sec = (calls.load(Ordering::Relaxed) - c0) as f64 / t0.elapsed().as_secs_f64();
    let rss_held = rss_kib();
    let lost = guards.iter().filter(|g| !g.is_held()).count();
    for g in guards {
        g.release().await?;
    }
    Ok(Renewal {
        leases: held,
        ttl_ms: u64::try_from(cfg.renew_ttl.as_millis()).unwrap_or(u64::MAX),
        calls_per_sec,
        lost,
        rss_before_kib: rss_before,
        rss_held_kib: rss_held,
    })
}

/// Resident memory of this process from `/proc/self/statm`, KiB (0 where unavailable).
fn rss_kib() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page_kib = u64::try_from(page).unwrap_or(4096) / 1024;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page_kib)
}
