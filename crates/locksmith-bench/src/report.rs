//! What a run measured, as data (serialised to JSON as is) and as the markdown table.

use std::fmt::Write as _;

use serde::Serialize;

use crate::stats::Latency;

/// The floor: the backend's cheapest operation pair, and which pair that was.
#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    /// Which operations were timed.
    pub method: String,
    /// Latency of one pair.
    pub latency: Latency,
}

/// N clients on N keys.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    /// Concurrent clients.
    pub clients: usize,
    /// acquire+release pairs per second, all clients together.
    pub ops_per_sec: f64,
    /// Latency of one pair.
    pub latency: Latency,
}

/// N clients on one key.
#[derive(Clone, Debug, Serialize)]
pub struct Contended {
    /// Concurrent clients.
    pub clients: usize,
    /// Grants per second, all clients together.
    pub acquisitions_per_sec: f64,
    /// Hand-overs per second: grants to a different client than the one that held the lock
    /// before (a client re-taking its own lock is not one).
    pub handovers_per_sec: f64,
    /// Wait before each grant.
    pub wait: Latency,
    /// From the holder starting its release to the next holder's acquire returning.
    pub handover: Latency,
    /// Jain's fairness index over `per_client`.
    pub jain: f64,
    /// Grants per client.
    pub per_client: Vec<u64>,
}

/// K leases held with renewal on.
#[derive(Clone, Debug, Serialize)]
pub struct Renewal {
    /// Leases held.
    pub leases: usize,
    /// Their TTL (renewed every third of it), ms.
    pub ttl_ms: u64,
    /// Calls into the backend per second while holding (renewals, mostly).
    pub calls_per_sec: f64,
    /// Leases that were lost while held (should be 0).
    pub lost: usize,
    /// Resident memory before taking the leases, KiB.
    pub rss_before_kib: u64,
    /// Resident memory while holding them, KiB.
    pub rss_held_kib: u64,
}

/// Everything measured on one backend.
#[derive(Clone, Debug, Serialize)]
pub struct BackendReport {
    /// The URL as given, password masked.
    pub url: String,
    /// The backend's scheme.
    pub scheme: String,
    /// A short name for charts: the scheme, unless the caller names the row otherwise.
    pub label: String,
    /// Whether the backend grants waiters in arrival order (its declared capability).
    pub fair: bool,
    /// TTL lease or session-bound.
    pub lease_model: String,
    /// Whether every grant carries a fencing token (true for every locksmith backend; false
    /// for comparison rows of other libraries).
    pub fencing: bool,
    /// The floor.
    pub floor: Option<Floor>,
    /// Sequential acquire+release.
    pub uncontended: Option<Latency>,
    /// N clients on N keys.
    pub throughput: Option<Throughput>,
    /// N clients on one key.
    pub contended: Option<Contended>,
    /// Renewal load.
    pub renewal: Option<Renewal>,
    /// Workloads that failed, with the error.
    pub errors: Vec<String>,
    /// Whether Ctrl-C ended this backend's run early.
    pub interrupted: bool,
}

impl BackendReport {
    /// An empty report for the (already masked) URL.
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            scheme: String::new(),
            label: String::new(),
            fair: false,
            lease_model: String::new(),
            fencing: true,
            floor: None,
            uncontended: None,
            throughput: None,
            contended: None,
            renewal: None,
            errors: Vec::new(),
            interrupted: false,
        }
    }

    /// The method's name in the seed's words.
    pub fn method(&self) -> &'static str {
        match self.scheme.as_str() {
            "memory" => "Memory (in-process)",
            "file" => "File (flock)",
            "redis" | "rediss" => "Redis (SET NX)",
            "redis+cluster" | "rediss+cluster" => "Redis Cluster (SET NX)",
            "redlock" => "Redlock (multi-Redis)",
            "postgres" | "postgresql" => "PostgreSQL advisory locks",
            "mysql" | "mariadb" => "MySQL/MariaDB GET_LOCK",
            "etcd" => "etcd (lease + revision)",
            "zookeeper" => "ZooKeeper (sequential nodes)",
            "rslock" => "rslock crate (Redlock)",
            _ => "?",
        }
    }
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Seconds each workload ran.
    pub duration_secs: f64,
    /// Clients of the throughput and contended workloads.
    pub clients: usize,
    /// Leases of the renewal workload.
    pub renew_leases: usize,
    /// One entry per backend, in the order given.
    pub backends: Vec<BackendReport>,
    /// Whether Ctrl-C ended the run early.
    pub interrupted: bool,
}

fn us(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0} ms", v / 1000.0)
    } else if v >= 1000.0 {
        format!("{:.2} ms", v / 1000.0)
    } else if v >= 10.0 {
        format!("{v:.0} µs")
    } else {
        format!("{v:.1} µs")
    }
}

fn rate(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}k/s", v / 1000.0)
    } else {
        format!("{v:.0}/s")
    }
}

/// The seed's comparison table with measurements: one row per backend.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let n = r.clients;
    let _ = writeln!(
        s,
        "| **Method** | **Floor** p50 | **Uncontended** p50 / p99 / p99.9 (p50 × floor) | \
         **Throughput** {n} keys | **Contended** {n} clients | **Wait** p50 / p99 / p99.9 | \
         **Hand-over** p50 / p99 | **Fairness** (Jain; FIFO?) | **Fencing** | **Renewal** {} leases |",
        r.renew_leases
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|");
    for b in &r.backends {
        let floor = b.floor.as_ref().map(|f| f.latency.p50_us);
        let na = || "—".to_owned();
        let _ = writeln!(
            s,
            "| **{}** `{}`{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            b.method(),
            b.url,
            if b.interrupted { " (interrupted)" } else { "" },
            floor.map_or_else(na, us),
            b.uncontended.as_ref().map_or_else(na, |u| format!(
                "{} / {} / {}{}",
                us(u.p50_us),
                us(u.p99_us),
                us(u.p999_us),
                floor
                    .filter(|f| *f > 0.0)
                    .map_or(String::new(), |f| format!(" (×{:.1})", u.p50_us / f))
            )),
            b.throughput
                .as_ref()
                .map_or_else(na, |t| rate(t.ops_per_sec)),
            b.contended.as_ref().map_or_else(na, |c| format!(
                "{} ({} hand-overs)",
                rate(c.acquisitions_per_sec),
                rate(c.handovers_per_sec)
            )),
            b.contended.as_ref().map_or_else(na, |c| format!(
                "{} / {} / {}",
                us(c.wait.p50_us),
                us(c.wait.p99_us),
                us(c.wait.p999_us)
            )),
            b.contended.as_ref().map_or_else(na, |c| format!(
                "{} / {}",
                us(c.handover.p50_us),
                us(c.handover.p99_us)
            )),
            b.contended.as_ref().map_or_else(na, |c| format!(
                "{:.2}; {}",
                c.jain,
                if b.fair { "FIFO" } else { "no order" }
            )),
            if b.fencing {
                "✅ token per grant"
            } else {
                "❌ none"
            },
            b.renewal.as_ref().map_or_else(na, |w| format!(
                "{:.0} calls/s, RSS +{} KiB",
                w.calls_per_sec,
                w.rss_held_kib.saturating_sub(w.rss_before_kib)
            )),
        );
    }
    let floors: Vec<String> = r
        .backends
        .iter()
        .filter_map(|b| {
            b.floor
                .as_ref()
                .map(|f| format!("{}: {}", b.method(), f.method))
        })
        .collect();
    if !floors.is_empty() {
        let _ = writeln!(s, "\nFloor = {}.", floors.join("; "));
    }
    for b in &r.backends {
        for e in &b.errors {
            let _ = writeln!(s, "\n{}: {e}", b.url);
        }
    }
    s
}
