//! One torture client process: contends for the keys in a loop and, while holding one, does
//! read-modify-write increments on both registers of the [resource](crate::resource) with the
//! grant's fencing token, recording everything in its history.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use locksmith::{Guard, LockOptions, LossReason};

use crate::clock::now_ns;
use crate::history::{HistoryWriter, Kind};
use crate::resource::ResourceClient;

/// What a client process is told by the orchestrator.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The backend URL.
    pub url: String,
    /// The client id (unique within a run, never reused; 0 is the orchestrator).
    pub id: u32,
    /// The keys to contend for.
    pub keys: Vec<String>,
    /// Lease TTL.
    pub ttl: Duration,
    /// The resource server's socket.
    pub resource: PathBuf,
    /// Where to append this client's history.
    pub history: PathBuf,
    /// How long to run; the client finishes its current hold and exits after this.
    pub run_for: Duration,
    /// The expected-unsafe **pause-past-ttl** scenario: at most this often, the client stops
    /// itself (SIGSTOP) in a hold between reading both registers and writing them back, as a
    /// long GC pause would; the orchestrator resumes it after longer than the TTL.
    pub stall_every: Option<Duration>,
}

/// A small xorshift generator: the workload needs variety, not quality.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The lease deadline the guard reports. Once it has passed, the guard only says "zero left",
/// which must not read as a deadline of *now*: the last deadline seen (`prev`) is kept.
fn lease_end(guard: &Guard, prev: Option<u64>) -> Option<u64> {
    match guard.lease_left() {
        None => None,
        Some(left) if left.is_zero() => prev.or_else(|| Some(now_ns())),
        Some(left) => Some(crate::clock::after(left)),
    }
}

/// Runs one client until `run_for` has passed.
///
/// # Errors
/// When the backend URL is refused, or the history or the resource server cannot be reached
/// (a harness failure, not a finding).
///
/// # Cancel safety
/// Not meant to be cancelled: it is the whole body of a client process.
pub async fn client_main(cfg: ClientConfig) -> Result<(), String> {
    let locker = locksmith::open(&cfg.url).map_err(|e| e.to_string())?;
    let hist = HistoryWriter::create(&cfg.history, cfg.id)
        .map_err(|e| format!("cannot open {}: {e}", cfg.history.display()))?;
    hist.log(Kind::ClientStart {
        pid: std::process::id(),
    });
    let mut res = ResourceClient::connect(&cfg.resource, cfg.id)
        .await
        .map_err(|e| format!("cannot reach the resource server: {e}"))?;
    let until = Instant::now() + cfg.run_for;
    let mut rng = Rng((u64::from(cfg.id).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ now_ns()) | 1);
    let mut next_stall = cfg.stall_every.map(|every| Instant::now() + every / 2);
    while Instant::now() < until {
        let key = &cfg.keys[rng.below(cfg.keys.len() as u64) as usize];
        let wait = (cfg.ttl * 2).min(until.saturating_duration_since(Instant::now()));
        let opts = LockOptions::new()
            .ttl(cfg.ttl)
            .wait_for(wait.max(Duration::from_millis(1)))
            .owner(format!("torture-client-{}", cfg.id));
        hist.log(Kind::AcquireInvoke { key: key.clone() });
        match locker.acquire(key.as_str(), &opts).await {
            Ok(guard) => {
                hist.log(Kind::AcquireOk {
                    key: key.clone(),
                    token: guard.fencing_token().get(),
                    lease_end: lease_end(&guard, None),
                });
                // One hold in ten outlives the TTL, so that renewals happen.
                let hold_for = if rng.below(10) == 0 {
                    cfg.ttl + cfg.ttl / 2
                } else {
                    Duration::from_millis(20 + rng.below(60))
                };
                // A stall must end well before the run does.
                let stall_len = crate::orchestrator::pause_length(cfg.ttl);
                let stall = next_stall.is_some_and(|at| {
                    Instant::now() >= at && Instant::now() + stall_len * 2 < until
                });
                if stall {
                    next_stall = cfg
                        .stall_every
                        .map(|every| Instant::now() + stall_len + every);
                }
                hold(
                    &hist, &mut res, guard, key, hold_for, until, &mut rng, stall,
                )
                .await?;
            }
            Err(e) if e.is_timeout() => hist.log(Kind::AcquireFail { key: key.clone() }),
            Err(e) => {
                hist.log(Kind::AcquireUnknown {
                    key: key.clone(),
                    error: e.to_string(),
                });
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.below(10))).await;
    }
    hist.log(Kind::ClientExit);
    Ok(())
}

/// The pause-past-ttl scenario's stall: read both registers, stop this process (the
/// orchestrator resumes it after longer than the TTL), then write both back as if nothing had
/// happened — what a holder does when a GC pause hits between its check and its write.
async fn stall_between_read_and_write(
    hist: &HistoryWriter,
    res: &mut ResourceClient,
    key: &str,
    token: u64,
    end: Option<u64>,
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("resource server: {e}");
    let t = now_ns();
    let fenced = res.read(key, true).await.map_err(io)?;
    let unfenced = res.read(key, false).await.map_err(io)?;
    hist.log(Kind::Fault {
        fault: "pause".to_owned(),
        phase: crate::history::Phase::Start,
        victim: Some(hist.client()),
        key: Some(key.to_owned()),
        token: Some(token),
    });
    // SAFETY: raise(3) on this process; the orchestrator sends SIGCONT.
    unsafe { libc::raise(libc::SIGSTOP) };
    for (is_fenced, v) in [(true, fenced), (false, unfenced)] {
        let accepted = res.write(key, is_fenced, token, v).await.map_err(io)?;
        hist.log_at(
            t,
            Kind::Write {
                key: key.to_owned(),
                token,
                fenced: is_fenced,
                accepted,
                lease_end: end,
            },
        );
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn hold(
    hist: &HistoryWriter,
    res: &mut ResourceClient,
    guard: Guard,
    key: &str,
    hold_for: Duration,
    until: Instant,
    rng: &mut Rng,
    mut stall: bool,
) -> Result<(), String> {
    let token = guard.fencing_token().get();
    let watch = {
        let lost = guard.lost();
        let hist = hist.clone();
        let key = key.to_owned();
        tokio::spawn(async move {
            let reason = lost.await;
            if reason != LossReason::Released {
                hist.log(Kind::Lost {
                    key,
                    token,
                    reason: reason.to_string(),
                });
            }
        })
    };
    let stop = Instant::now() + hold_for;
    let mut seen_end = lease_end(&guard, None);
    let mut lost = false;
    while Instant::now() < stop && Instant::now() < until {
        if !guard.is_held() {
            lost = true;
            break;
        }
        let end = lease_end(&guard, seen_end);
        if let (Some(new), Some(old)) = (end, seen_end)
            && new > old + 1_000_000
        {
            hist.log(Kind::Renew {
                key: key.to_owned(),
                token,
                lease_end: end,
            });
        }
        seen_end = end;
        if std::mem::take(&mut stall) {
            stall_between_read_and_write(hist, res, key, token, end).await?;
            continue;
        }
        for fenced in [true, false] {
            let t = now_ns();
            let io = |e: std::io::Error| format!("resource server: {e}");
            let v = res.read(key, fenced).await.map_err(io)?;
            let accepted = res.write(key, fenced, token, v).await.map_err(io)?;
            hist.log_at(
                t,
                Kind::Write {
                    key: key.to_owned(),
                    token,
                    fenced,
                    accepted,
                    lease_end: end,
                },
            );
        }
        tokio::time::sleep(Duration::from_millis(5 + rng.below(15))).await;
    }
    if lost {
        // Let the watcher record the loss before the release line.
        let _ = watch.await;
        let t = now_ns();
        hist.log_at(
            t,
            Kind::ReleaseInvoke {
                key: key.to_owned(),
                token,
                lease_end: None,
            },
        );
        let held = guard.release().await.ok();
        hist.log_at(
            t,
            Kind::Release {
                key: key.to_owned(),
                token,
                lease_end: None,
                held,
            },
        );
        return Ok(());
    }
    let t = now_ns();
    let end = lease_end(&guard, seen_end);
    hist.log_at(
        t,
        Kind::ReleaseInvoke {
            key: key.to_owned(),
            token,
            lease_end: end,
        },
    );
    let held = guard.release().await.ok();
    hist.log_at(
        t,
        Kind::Release {
            key: key.to_owned(),
            token,
            lease_end: end,
            held,
        },
    );
    watch.abort();
    Ok(())
}
