//! The report: a summary table per backend × fault, the findings, and the files a run leaves
//! in its output folder (`report.md`, `findings.json`, `timeline.svg`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::time::Duration;

use locksmith::LeaseModel;
use serde::Serialize;

use crate::checker::{FindingKind, Findings};
use crate::fault::Fault;
use crate::history::Event;
use crate::orchestrator::Outcome;

/// One row: what happened while one kind of fault was the latest injected (`none`: before
/// the first fault).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Row {
    /// The fault's name, or `none`.
    pub fault: String,
    /// How many were injected.
    pub injected: usize,
    /// Grants seen in this row's windows.
    pub acquisitions: usize,
    /// Findings by kind (every kind present, zeros included).
    pub findings: BTreeMap<FindingKind, usize>,
    /// The longest time to recovery after one of these faults.
    pub worst_recovery_ns: Option<u64>,
    /// Faults after which no other client got the key before the run ended.
    pub unrecovered: usize,
}

/// The summary of one run: one backend, one row per fault.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// The backend's URL scheme.
    pub backend: String,
    /// `ttl` or `session`.
    pub lease_model: &'static str,
    /// The rows.
    pub rows: Vec<Row>,
}

impl Summary {
    /// Attributes every grant and finding to the latest fault injected before it.
    pub fn new(backend: &str, faults: &[Fault], findings: &Findings, model: LeaseModel) -> Self {
        let mut names: Vec<String> = vec!["none".to_owned()];
        names.extend(faults.iter().map(|f| f.name().to_owned()));
        // Faults on Redlock's nodes are named by how many nodes they hit
        // (`restart-minority`, `partition-majority`, ...): one row each instead of the fault's.
        for f in &findings.faults {
            if let Some((base, _)) = f.fault.split_once('-')
                && Fault::ALL.iter().any(|x| x.name() == base)
                && !names.contains(&f.fault)
            {
                names.retain(|n| n != base);
                names.push(f.fault.clone());
            }
        }
        let mut rows: Vec<Row> = names
            .iter()
            .map(|n| Row {
                fault: n.clone(),
                findings: FindingKind::ALL.iter().map(|k| (*k, 0)).collect(),
                ..Row::default()
            })
            .collect();
        let windows: Vec<(u64, &str)> = findings
            .faults
            .iter()
            .filter(|f| f.fault != "stop")
            .map(|f| (f.start, f.fault.as_str()))
            .collect();
        let row_of = |t: u64| -> usize {
            let n = windows.partition_point(|w| w.0 <= t);
            let name = if n == 0 { "none" } else { windows[n - 1].1 };
            names.iter().position(|x| x == name).unwrap_or(0)
        };
        for h in &findings.holds {
            rows[row_of(h.start)].acquisitions += 1;
        }
        for f in &findings.findings {
            *rows[row_of(f.t)].findings.entry(f.kind).or_default() += 1;
        }
        for f in &findings.faults {
            let Some(row) = rows.iter_mut().find(|r| r.fault == f.fault) else {
                continue;
            };
            row.injected += 1;
            match f.recovery_ns {
                Some(r) => row.worst_recovery_ns = Some(row.worst_recovery_ns.unwrap_or(0).max(r)),
                None => row.unrecovered += 1,
            }
        }
        Self {
            backend: backend.to_owned(),
            lease_model: match model {
                LeaseModel::Ttl => "ttl",
                LeaseModel::Session => "session",
            },
            rows,
        }
    }

    /// The table in Markdown.
    pub fn table(&self) -> String {
        let mut s = String::from("| backend | fault | injected | acquisitions |");
        for k in FindingKind::ALL {
            let _ = write!(
                s,
                " {}{} |",
                k.short(),
                if k.is_violation() { "*" } else { "" }
            );
        }
        s.push_str(" worst recovery |\n|---|---|--:|--:|");
        for _ in FindingKind::ALL {
            s.push_str("--:|");
        }
        s.push_str("--:|\n");
        for r in &self.rows {
            let _ = write!(
                s,
                "| {} | {} | {} | {} |",
                self.backend,
                r.fault,
                if r.fault == "none" {
                    "–".to_owned()
                } else {
                    r.injected.to_string()
                },
                r.acquisitions
            );
            for k in FindingKind::ALL {
                let _ = write!(s, " {} |", r.findings.get(&k).copied().unwrap_or(0));
            }
            let rec = match (r.worst_recovery_ns, r.unrecovered) {
                (_, n) if n > 0 => format!("{n} not recovered"),
                (Some(ns), _) => format!("{:.0} ms", Duration::from_nanos(ns).as_secs_f64() * 1e3),
                (None, _) => "–".to_owned(),
            };
            let _ = writeln!(s, " {rec} |");
        }
        s
    }
}

/// The whole report in Markdown.
pub fn render(outcome: &Outcome) -> String {
    let f = &outcome.findings;
    let sum = &outcome.summary;
    let violations = f.violations().count();
    let mut s = format!(
        "# locksmith torture: {} ({} locks)\n\n{}\n\\* a violation: locksmith promises it cannot \
         happen.\n\n",
        sum.backend,
        if sum.lease_model == "session" {
            "session-bound"
        } else {
            "TTL-lease"
        },
        sum.table()
    );
    if sum.lease_model == "session" {
        s.push_str(
            "Session-bound locks: a paused holder keeps its lock unless the server ends its \
             session meanwhile. Where the guard reports until when its session is provably \
             alive (etcd's lease, ZooKeeper's session), an overlap past that counts as \
             overlap-expired; otherwise any overlap counts as overlap-valid.\n\n",
        );
    }
    if outcome.expected_unsafe == Some(crate::orchestrator::PAUSE_PAST_TTL) {
        let n = |k| f.count(k);
        let _ = writeln!(
            s,
            "Expected-unsafe scenario **{}**: a client stops between reading and writing for \
             longer than its TTL, so another client takes the key meanwhile; the run passes only \
             if the checker catches it: {} overlap(s) after expiry, {} lost update(s) on the \
             unfenced register (the damage), {} stale write(s) rejected and {} accepted by the \
             fenced register (what fencing prevents): {}.\n",
            crate::orchestrator::PAUSE_PAST_TTL,
            n(FindingKind::OverlapAfterExpiry),
            n(FindingKind::LostUpdateUnfenced),
            n(FindingKind::StaleWriteRejected),
            n(FindingKind::StaleWriteAccepted),
            if outcome.passed() {
                "caught"
            } else {
                "NOT caught"
            }
        );
    } else if outcome.expected_unsafe == Some(crate::orchestrator::REDLOCK_RESTART_EMPTY) {
        let _ = writeln!(
            s,
            "Expected-unsafe scenario **{}**: Redlock nodes without persistence; while a lock \
             is held a majority of them restarts empty, so another client gets a quorum for the \
             same key; the run passes only if the checker catches it: {} overlap(s) inside valid \
             leases (and {} token(s) out of order, {} stale write(s) rejected by the fenced \
             register) were {}.\n",
            crate::orchestrator::REDLOCK_RESTART_EMPTY,
            f.count(FindingKind::OverlapInValidLeases),
            f.count(FindingKind::TokenOrder),
            f.count(FindingKind::StaleWriteRejected),
            if outcome.passed() {
                "caught"
            } else {
                "NOT caught"
            }
        );
    } else if let Some(name) = outcome.expected_unsafe {
        let _ = writeln!(
            s,
            "Expected-unsafe scenario **{name}**: half the clients lock on another backend, so \
             holders overlap by design; the run passes only if the checker catches it: {} \
             overlap(s) inside valid leases were {}.\n",
            f.count(FindingKind::OverlapInValidLeases),
            if f.count(FindingKind::OverlapInValidLeases) > 0 {
                "caught"
            } else {
                "NOT caught"
            }
        );
    }
    let stops = f.faults.iter().filter(|x| x.fault == "stop").count();
    if stops > 0 {
        let _ = writeln!(
            s,
            "{stops} client(s) did not stop at the end and were killed.\n"
        );
    }
    if f.acquisitions == 0 {
        s.push_str("No lock was granted during the run: it proves nothing and fails.\n\n");
    }
    for e in &outcome.client_failures {
        let _ = writeln!(s, "harness error: {e}");
    }
    let expected = match outcome.expected_unsafe {
        Some(name) => format!(" (expected in the {name} scenario)"),
        None => String::new(),
    };
    let _ = writeln!(s, "## Violations: {violations}{expected}\n");
    for v in f.violations().take(50) {
        let _ = writeln!(
            s,
            "- `{}` key `{}` at t={}: {}",
            v.kind.short(),
            v.key,
            v.t,
            v.detail
        );
    }
    let observed: Vec<_> = f
        .findings
        .iter()
        .filter(|x| !x.kind.is_violation())
        .collect();
    if !observed.is_empty() {
        let _ = writeln!(
            s,
            "\n## Observations (expected under faults): {}\n",
            observed.len()
        );
        for v in observed.iter().take(20) {
            let _ = writeln!(
                s,
                "- `{}` key `{}` at t={}: {}",
                v.kind.short(),
                v.key,
                v.t,
                v.detail
            );
        }
    }
    let _ = writeln!(
        s,
        "\n**{}**",
        if outcome.passed() { "PASS" } else { "FAIL" }
    );
    s
}

/// Writes `report.md`, `findings.json` and `timeline.svg` into `out`.
///
/// # Errors
/// When a file cannot be written.
pub fn write(out: &Path, events: &[Event], outcome: &Outcome) -> io::Result<()> {
    std::fs::write(crate::orchestrator::report_path(out), render(outcome))?;
    let json = serde_json::json!({
        "summary": outcome.summary,
        "findings": outcome.findings,
        "client_failures": outcome.client_failures,
    });
    std::fs::write(out.join("findings.json"), serde_json::to_vec_pretty(&json)?)?;
    let origin = events.first().map_or(0, |e| e.t);
    let title = format!(
        "locksmith torture: {} ({} violations)",
        outcome.summary.backend,
        outcome.findings.violations().count()
    );
    crate::timeline::draw(&out.join("timeline.svg"), &outcome.findings, origin, &title)
        .map_err(io::Error::other)
}
