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

fn lease_end(guard: &Guard) -> Option<u64> {
    guard.lease_left().map(crate::clock::after)
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
                    lease_end: lease_end(&guard),
                });
                // One hold in ten outlives the TTL, so that renewals happen.
                let hold_for = if rng.below(10) == 0 {
                    cfg.ttl + cfg.ttl / 2
                } else {
                    Duration::from_millis(20 + rng.below(60))
                };
                hold(&hist, &mut res, guard, key, hold_for, until, &mut rng).await?;
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

async fn hold(
    hist: &HistoryWriter,
    res: &mut ResourceClient,
    guard: Guard,
    key: &str,
    hold_for: Duration,
    until: Instant,
    rng: &mut Rng,
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
    let mut seen_end = lease_end(&guard);
    let mut lost = false;
    while Instant::now() < stop && Instant::now() < until {
        if !guard.is_held() {
            lost = true;
            break;
        }
        let end = lease_end(&guard);
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
    let end = lease_end(&guard);
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
