//! Shared shape of the contention benchmarks: `n` tasks, each with its own client, take and
//! release one lock in a loop; the figures are acquisitions per second, the wait before each
//! grant (p50/p99), and Jain's fairness index over the tasks' acquisition counts. A backend's
//! bench runs the same shape for locksmith and for the raw server primitive in the same run.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A boxed future borrowed from a contender.
pub type BoxFut<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// One contending client: `lock` returns once it holds the lock, `unlock` releases it.
pub trait Contender: Send + 'static {
    /// Takes the lock, waiting as long as needed.
    fn lock(&mut self) -> BoxFut<'_>;
    /// Releases it.
    fn unlock(&mut self) -> BoxFut<'_>;
}

/// What a timed contention run measured.
#[derive(Clone, Debug)]
pub struct ContentionStats {
    /// Acquisitions per task.
    pub per_task: Vec<u64>,
    /// Every wait before a grant.
    pub waits: Vec<Duration>,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl ContentionStats {
    /// Acquisitions per second, all tasks together.
    pub fn rate(&self) -> f64 {
        self.per_task.iter().sum::<u64>() as f64 / self.elapsed.as_secs_f64()
    }

    /// The `q` quantile (0..=1) of the waits.
    pub fn wait_quantile(&self, q: f64) -> Duration {
        let mut w = self.waits.clone();
        w.sort();
        if w.is_empty() {
            return Duration::ZERO;
        }
        let i = ((w.len() - 1) as f64 * q).round() as usize;
        w[i]
    }

    /// Jain's fairness index of the per-task acquisition counts: 1 is perfectly even.
    pub fn jain(&self) -> f64 {
        let n = self.per_task.len() as f64;
        let sum: f64 = self.per_task.iter().map(|&x| x as f64).sum();
        let squares: f64 = self.per_task.iter().map(|&x| (x as f64).powi(2)).sum();
        if squares == 0.0 {
            return 0.0;
        }
        sum * sum / (n * squares)
    }

    /// Adds another run of the same contenders (alternating slices of two setups cancel the
    /// drift of a busy machine).
    pub fn merge(&mut self, other: ContentionStats) {
        if self.per_task.is_empty() {
            self.per_task = vec![0; other.per_task.len()];
        }
        for (a, b) in self.per_task.iter_mut().zip(other.per_task) {
            *a += b;
        }
        self.waits.extend(other.waits);
        self.elapsed += other.elapsed;
    }

    /// An empty record to [`ContentionStats::merge`] runs into.
    pub fn empty() -> Self {
        Self {
            per_task: Vec::new(),
            waits: Vec::new(),
            elapsed: Duration::ZERO,
        }
    }

    /// One line for the benchmark log.
    pub fn line(&self, label: &str) -> String {
        format!(
            "{label}: {:.0} acquisitions/s, wait p50 {:?} p99 {:?}, Jain {:.3} over {} tasks ({:?})",
            self.rate(),
            self.wait_quantile(0.5),
            self.wait_quantile(0.99),
            self.jain(),
            self.per_task.len(),
            self.per_task
        )
    }
}

/// Runs `contenders` against each other for `run_for`, each in its own task.
pub async fn contend_for(
    contenders: Vec<Box<dyn Contender>>,
    run_for: Duration,
) -> ContentionStats {
    contend_for_keep(contenders, run_for).await.0
}

/// As [`contend_for`], and gives the contenders back, so that the next slice runs with warm
/// clients (connected, with whatever they keep between acquisitions).
pub async fn contend_for_keep(
    contenders: Vec<Box<dyn Contender>>,
    run_for: Duration,
) -> (ContentionStats, Vec<Box<dyn Contender>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut c in contenders {
        let stop = Arc::clone(&stop);
        tasks.push(tokio::spawn(async move {
            let (mut n, mut waits) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                c.lock().await;
                waits.push(t.elapsed());
                n += 1;
                c.unlock().await;
            }
            (n, waits, c)
        }));
    }
    tokio::time::sleep(run_for).await;
    stop.store(true, Ordering::Relaxed);
    let mut stats = ContentionStats::empty();
    let mut back = Vec::new();
    for t in tasks {
        let (n, w, c) = t.await.expect("contender task");
        stats.per_task.push(n);
        stats.waits.extend(w);
        back.push(c);
    }
    stats.elapsed = start.elapsed();
    (stats, back)
}

/// Times `n` interleaved rounds of `raw` and `ours` (each a complete operation), so that the
/// load of a busy machine hits both alike; returns the two medians. Their ratio is the figure
/// to compare. The order alternates from round to round (raw first, then ours first), so
/// that whatever an operation leaves behind for the next one (a server thread still awake, a
/// warm cache) is not always charged to the same side.
pub async fn interleaved_medians<R, RF, O, OF>(
    n: usize,
    mut raw: R,
    mut ours: O,
) -> (Duration, Duration)
where
    R: FnMut() -> RF,
    RF: Future<Output = ()>,
    O: FnMut() -> OF,
    OF: Future<Output = ()>,
{
    let (mut raw_t, mut ours_t) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for round in 0..n {
        if round % 2 == 0 {
            let t = Instant::now();
            raw().await;
            raw_t.push(t.elapsed());
        }
        let t = Instant::now();
        ours().await;
        ours_t.push(t.elapsed());
        if round % 2 == 1 {
            let t = Instant::now();
            raw().await;
            raw_t.push(t.elapsed());
        }
    }
    (median(&mut raw_t), median(&mut ours_t))
}

/// Median of `samples` (zero when empty).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

/// Runs `contenders` until they have made `total` acquisitions together; returns the time.
/// For criterion's `iter_custom`.
pub async fn contend_count(contenders: Vec<Box<dyn Contender>>, total: u64) -> Duration {
    let left = Arc::new(AtomicU64::new(total));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for mut c in contenders {
        let left = Arc::clone(&left);
        tasks.push(tokio::spawn(async move {
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |l| l.checked_sub(1))
                .is_ok()
            {
                c.lock().await;
                c.unlock().await;
            }
            c
        }));
    }
    for t in tasks {
        t.await.expect("contender task");
    }
    start.elapsed()
}

/// A locksmith client as a contender on `key`.
pub struct LockerContender {
    locker: locksmith_core::Locker,
    key: String,
    guard: Option<locksmith_core::Guard>,
}

impl LockerContender {
    /// Contends on `key` through `locker`.
    pub fn boxed(locker: locksmith_core::Locker, key: &str) -> Box<dyn Contender> {
        Box::new(Self {
            locker,
            key: key.to_owned(),
            guard: None,
        })
    }
}

impl Contender for LockerContender {
    fn lock(&mut self) -> BoxFut<'_> {
        Box::pin(async move {
            let g = self
                .locker
                .acquire(self.key.as_str(), &locksmith_core::LockOptions::new())
                .await
                .expect("acquire");
            self.guard = Some(g);
        })
    }
    fn unlock(&mut self) -> BoxFut<'_> {
        Box::pin(async move {
            if let Some(g) = self.guard.take() {
                assert!(g.release().await.expect("release"));
            }
        })
    }
}

/// `n` contenders on `key`, each a [`locksmith_core::Locker`] over a backend of its own
/// (`backend` is called once per contender).
pub fn locker_contenders(
    n: usize,
    key: &str,
    backend: impl Fn() -> Arc<dyn locksmith_core::Backend>,
) -> Vec<Box<dyn Contender>> {
    (0..n)
        .map(|_| LockerContender::boxed(locksmith_core::Locker::new(backend()), key))
        .collect()
}

/// The `contended_8` figures criterion does not give (rate, wait quantiles, fairness), printed
/// under `label`: 8 locksmith clients (a backend each) against 8 raw contenders, then one
/// locksmith client shared by the 8 tasks, and 8 raw contenders whose lock statement is
/// locksmith's wait statement (the blocking lock and the fencing token in one statement;
/// `raw_token`), which tells how much of a gap is the token's cost on the server.
///
/// The four are timed in alternating half-second slices over [`CONTENDED_ROUNDS`] rounds, the
/// order rotating from round to round, so that a busy machine's load hits all alike. Each
/// round makes every contender anew (new connections, so new server sessions), connects it
/// and takes the lock once with it before the clock starts: on these VMs a connection's speed
/// depends on where its server thread or process lands, and that stays with the connection,
/// so a run that kept one set of connections per side compared two draws of that luck.
pub fn print_contended_8<Raw, RawFut, RawToken, RawTokenFut>(
    rt: &tokio::runtime::Runtime,
    label: &str,
    raw: Raw,
    raw_token: RawToken,
    backend: impl Fn() -> Arc<dyn locksmith_core::Backend>,
) where
    Raw: Fn() -> RawFut,
    RawFut: Future<Output = Vec<Box<dyn Contender>>>,
    RawToken: Fn() -> RawTokenFut,
    RawTokenFut: Future<Output = Vec<Box<dyn Contender>>>,
{
    let slice = Duration::from_millis(500);
    let mut stats: [ContentionStats; 4] = std::array::from_fn(|_| ContentionStats::empty());
    for round in 0..CONTENDED_ROUNDS {
        // Made and warmed in this order: the token's counter exists once locksmith took a lock.
        let shared = locksmith_core::Locker::new(backend());
        let mut sides: [Vec<Box<dyn Contender>>; 4] = [
            rt.block_on(warm(rt.block_on(raw()))),
            rt.block_on(warm(locker_contenders(8, "bench-c-ls", &backend))),
            rt.block_on(warm(
                (0..8)
                    .map(|_| LockerContender::boxed(shared.clone(), "bench-c-shared"))
                    .collect(),
            )),
            rt.block_on(warm(rt.block_on(raw_token()))),
        ];
        for i in 0..4 {
            let side = (round + i) % 4;
            let s = rt.block_on(contend_for(std::mem::take(&mut sides[side]), slice));
            stats[side].merge(s);
        }
    }
    let [raw_stats, ours, shared_stats, token_stats] = stats;
    println!("{}", raw_stats.line(&format!("{label} contended_8 raw")));
    println!("{}", ours.line(&format!("{label} contended_8 locksmith")));
    println!(
        "{label} contended_8 locksmith/raw acquisitions/s: {:.2}",
        ours.rate() / raw_stats.rate()
    );
    println!(
        "{}",
        shared_stats.line(&format!(
            "{label} contended_8 locksmith, one client shared by the 8 tasks"
        ))
    );
    println!(
        "{label} contended_8 locksmith (one shared client)/raw acquisitions/s: {:.2}",
        shared_stats.rate() / raw_stats.rate()
    );
    println!(
        "{}",
        token_stats.line(&format!(
            "{label} contended_8 raw with locksmith's wait statement (token)"
        ))
    );
    println!(
        "{label} contended_8 raw with token/raw acquisitions/s: {:.2}; locksmith/raw with \
         token: {:.2}",
        token_stats.rate() / raw_stats.rate(),
        ours.rate() / token_stats.rate()
    );
}

/// Rounds of [`print_contended_8`]: each times every side for half a second, on new
/// connections.
pub const CONTENDED_ROUNDS: usize = 12;

/// Takes and releases the lock once with each contender, one after the other, so that each
/// has connected (and prepared whatever it keeps) before it is timed.
pub async fn warm(mut contenders: Vec<Box<dyn Contender>>) -> Vec<Box<dyn Contender>> {
    for c in &mut contenders {
        c.lock().await;
        c.unlock().await;
    }
    contenders
}

/// `n` tasks of one [`locksmith_core::Locker`] each take and release `key` once, all at once;
/// returns the time until all were served.
pub async fn serve_crowd(locker: &locksmith_core::Locker, key: &str, n: usize) -> Duration {
    let start = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (l, key) = (locker.clone(), key.to_owned());
            tokio::spawn(async move {
                let g = l
                    .acquire(key.as_str(), &locksmith_core::LockOptions::new())
                    .await
                    .expect("acquire");
                assert!(g.release().await.expect("release"));
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("crowd task");
    }
    start.elapsed()
}
