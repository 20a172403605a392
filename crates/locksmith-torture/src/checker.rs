//! The checker: reads the merged history and finds what went wrong.
//!
//! A **hold** is the interval in which a client acted as holder of a key: from its
//! `acquire_ok` until it sent its release, saw the lock lost, exited, or was killed (the
//! orchestrator's `kill` fault). Its **valid part** ends at the last lease deadline the guard
//! reported (`lease_end`); a session-bound hold (no deadline) is valid throughout.
//!
//! Violations (locksmith promises these cannot happen; any one fails the run):
//! - [`FindingKind::OverlapInValidLeases`]: two holds of one key whose valid parts overlap.
//! - [`FindingKind::NotificationLag`]: a holder kept acting more than the tolerance past its
//!   lease deadline without being told, not counting time it spent paused (SIGSTOP).
//! - [`FindingKind::TokenOrder`]: a grant that began after another ended got a token that is
//!   not larger, or two grants share a token.
//! - [`FindingKind::StaleWriteAccepted`]: the fenced resource accepted a token below the
//!   highest it had accepted (the fencing check failed).
//!
//! Observations (expected under some faults, reported, never failing):
//! - [`FindingKind::OverlapAfterExpiry`]: holds overlap only after one of them passed its lease
//!   deadline (a holder paused past its TTL: the case fencing exists for).
//! - [`FindingKind::LostUpdateUnfenced`]: the unfenced register accepted a write based on a
//!   value that another write had already replaced (the damage fencing prevents).
//! - [`FindingKind::StaleWriteRejected`]: the fenced register refused an old token (fencing
//!   working).
//!
//! And for every fault that hit a holder: the **time to recovery**, from the fault until
//! another client was granted the victim's key; for a fault that hit every client (network,
//! server restart): from its start until the first grant after it healed.

use std::collections::HashMap;

use serde::Serialize;

use crate::history::{Event, Kind, Phase};

/// What the checker found, one kind per check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Two holds of one key overlap while both leases were valid.
    OverlapInValidLeases,
    /// A holder acted past its lease deadline without being notified (pauses excluded).
    NotificationLag,
    /// Tokens did not increase in the real-time order of grants.
    TokenOrder,
    /// The fenced resource accepted a stale token.
    StaleWriteAccepted,
    /// Holds overlapped only after a lease deadline passed (expected under a pause > TTL).
    OverlapAfterExpiry,
    /// The unfenced resource lost an update.
    LostUpdateUnfenced,
    /// The fenced resource rejected a stale token.
    StaleWriteRejected,
}

impl FindingKind {
    /// Every kind, violations first.
    pub const ALL: [FindingKind; 7] = [
        FindingKind::OverlapInValidLeases,
        FindingKind::NotificationLag,
        FindingKind::TokenOrder,
        FindingKind::StaleWriteAccepted,
        FindingKind::OverlapAfterExpiry,
        FindingKind::LostUpdateUnfenced,
        FindingKind::StaleWriteRejected,
    ];

    /// True for what locksmith promises cannot happen.
    pub fn is_violation(self) -> bool {
        matches!(
            self,
            FindingKind::OverlapInValidLeases
                | FindingKind::NotificationLag
                | FindingKind::TokenOrder
                | FindingKind::StaleWriteAccepted
        )
    }

    /// A short column name.
    pub fn short(self) -> &'static str {
        match self {
            FindingKind::OverlapInValidLeases => "overlap-valid",
            FindingKind::NotificationLag => "notify-lag",
            FindingKind::TokenOrder => "token-order",
            FindingKind::StaleWriteAccepted => "stale-accepted",
            FindingKind::OverlapAfterExpiry => "overlap-expired",
            FindingKind::LostUpdateUnfenced => "lost-upd-unfenced",
            FindingKind::StaleWriteRejected => "stale-rejected",
        }
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What.
    pub kind: FindingKind,
    /// When (ns, `CLOCK_MONOTONIC`).
    pub t: u64,
    /// The key.
    pub key: String,
    /// A sentence for people.
    pub detail: String,
}

/// One hold (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hold {
    /// The holder.
    pub client: u32,
    /// The key.
    pub key: String,
    /// The grant's fencing token.
    pub token: u64,
    /// When the acquire was sent.
    pub invoke: u64,
    /// When the grant was seen.
    pub start: u64,
    /// When the client stopped acting as holder.
    pub end: u64,
    /// The latest lease deadline reported (`None`: session-bound).
    pub lease_end: Option<u64>,
    /// Why it ended: `release`, `lost`, `killed`, `exit` or `end-of-history`.
    pub ended_by: &'static str,
}

impl Hold {
    /// The end of the valid part.
    pub fn valid_end(&self) -> u64 {
        self.lease_end.map_or(self.end, |l| l.min(self.end))
    }
}

/// A fault and how long the system took to recover from it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultRecord {
    /// The fault's name.
    pub fault: String,
    /// Injected at.
    pub start: u64,
    /// Healed at (faults with a duration).
    pub end: Option<u64>,
    /// The client hit.
    pub victim: Option<u32>,
    /// The key it held.
    pub key: Option<String>,
    /// From `start` until another client was granted `key` (`None`: not within the run).
    pub recovery_ns: Option<u64>,
}

/// Everything the checker found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Findings {
    /// Granted acquires.
    pub acquisitions: usize,
    /// Every hold.
    pub holds: Vec<Hold>,
    /// Every finding, violations and observations, in time order.
    pub findings: Vec<Finding>,
    /// Every fault injected.
    pub faults: Vec<FaultRecord>,
}

impl Findings {
    /// The violations only.
    pub fn violations(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.kind.is_violation())
    }

    /// How many findings of `kind`.
    pub fn count(&self, kind: FindingKind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }
}

/// Checker settings.
#[derive(Clone, Copy, Debug)]
pub struct CheckOptions {
    /// How long past its lease deadline a running (not paused) holder may go on before being
    /// told; beyond it, [`FindingKind::NotificationLag`].
    pub notify_tolerance_ns: u64,
}

impl Default for CheckOptions {
    fn default() -> Self {
        Self {
            notify_tolerance_ns: 250_000_000,
        }
    }
}

struct OpenHold {
    idx: usize,
}

/// Checks a merged history (ordered by time, as [`crate::history::merge`] makes it).
pub fn check(events: &[Event], opts: CheckOptions) -> Findings {
    let mut out = Findings::default();
    let history_end = events.last().map_or(0, |e| e.t);
    let mut open: HashMap<u32, Vec<OpenHold>> = HashMap::new();
    let mut invokes: HashMap<(u32, &str), u64> = HashMap::new();
    let mut paused: HashMap<u32, Vec<(u64, u64)>> = HashMap::new();
    let mut pause_open: HashMap<u32, u64> = HashMap::new();
    let mut fenced_highest: HashMap<&str, (u64, u32)> = HashMap::new();

    let close = |out: &mut Findings,
                 open: &mut HashMap<u32, Vec<OpenHold>>,
                 client,
                 t,
                 by,
                 key: Option<&str>,
                 token: Option<u64>| {
        if let Some(list) = open.get_mut(&client) {
            list.retain(|h| {
                let hold = &mut out.holds[h.idx];
                let hit =
                    key.is_none_or(|k| k == hold.key) && token.is_none_or(|tk| tk == hold.token);
                if hit {
                    hold.end = t;
                    hold.ended_by = by;
                }
                !hit
            });
        }
    };

    for e in events {
        match &e.kind {
            Kind::AcquireInvoke { key } => {
                invokes.insert((e.client, key.as_str()), e.t);
            }
            Kind::AcquireOk {
                key,
                token,
                lease_end,
            } => {
                out.acquisitions += 1;
                let invoke = invokes
                    .get(&(e.client, key.as_str()))
                    .copied()
                    .unwrap_or(e.t);
                out.holds.push(Hold {
                    client: e.client,
                    key: key.clone(),
                    token: *token,
                    invoke,
                    start: e.t,
                    end: history_end,
                    lease_end: *lease_end,
                    ended_by: "end-of-history",
                });
                open.entry(e.client).or_default().push(OpenHold {
                    idx: out.holds.len() - 1,
                });
            }
            Kind::Renew {
                key,
                token,
                lease_end,
            }
            | Kind::Write {
                key,
                token,
                lease_end,
                ..
            } => {
                if let Some(list) = open.get(&e.client) {
                    for h in list {
                        let hold = &mut out.holds[h.idx];
                        if &hold.key == key && hold.token == *token {
                            hold.lease_end = match (hold.lease_end, lease_end) {
                                (Some(a), Some(b)) => Some(a.max(*b)),
                                (a, b) => a.or(*b),
                            };
                        }
                    }
                }
            }
            Kind::Lost { key, token, .. } => {
                close(
                    &mut out,
                    &mut open,
                    e.client,
                    e.t,
                    "lost",
                    Some(key),
                    Some(*token),
                );
            }
            // The hold ends when the release is sent (the line before it); the line after it
            // closes nothing more, or the hold of an older history without the first line.
            Kind::ReleaseInvoke {
                key,
                token,
                lease_end,
            }
            | Kind::Release {
                key,
                token,
                lease_end,
                ..
            } => {
                if let Some(list) = open.get(&e.client) {
                    for h in list {
                        let hold = &mut out.holds[h.idx];
                        if &hold.key == key && hold.token == *token && lease_end.is_some() {
                            hold.lease_end = hold.lease_end.max(*lease_end);
                        }
                    }
                }
                close(
                    &mut out,
                    &mut open,
                    e.client,
                    e.t,
                    "release",
                    Some(key),
                    Some(*token),
                );
            }
            Kind::ClientExit => close(&mut out, &mut open, e.client, e.t, "exit", None, None),
            Kind::Fault {
                fault,
                phase,
                victim,
                key,
                ..
            } => match phase {
                Phase::Start => {
                    if let Some(v) = victim {
                        if fault == "kill" || fault == "stop" {
                            close(&mut out, &mut open, *v, e.t, "killed", None, None);
                        }
                        if fault == "pause" {
                            pause_open.insert(*v, e.t);
                        }
                    }
                    out.faults.push(FaultRecord {
                        fault: fault.clone(),
                        start: e.t,
                        end: None,
                        victim: *victim,
                        key: key.clone(),
                        recovery_ns: None,
                    });
                }
                Phase::End => {
                    if let Some(v) = victim
                        && let Some(s) = pause_open.remove(v)
                    {
                        paused.entry(*v).or_default().push((s, e.t));
                    }
                    if let Some(rec) = out
                        .faults
                        .iter_mut()
                        .rev()
                        .find(|r| r.fault == *fault && r.victim == *victim && r.end.is_none())
                    {
                        rec.end = Some(e.t);
                    }
                }
            },
            Kind::Resource {
                key,
                fenced,
                writer,
                token,
                read,
                prev,
                accepted,
                ..
            } => {
                if *fenced {
                    let high = fenced_highest.entry(key.as_str()).or_insert((0, 0));
                    if *accepted && *token < high.0 {
                        out.findings.push(Finding {
                            kind: FindingKind::StaleWriteAccepted,
                            t: e.t,
                            key: key.clone(),
                            detail: format!(
                                "the fenced register accepted token {token} from client {writer} \
                                 after accepting token {} from client {}",
                                high.0, high.1
                            ),
                        });
                    } else if !*accepted {
                        out.findings.push(Finding {
                            kind: FindingKind::StaleWriteRejected,
                            t: e.t,
                            key: key.clone(),
                            detail: format!(
                                "the fenced register rejected token {token} from client {writer} \
                                 (highest {})",
                                high.0
                            ),
                        });
                    }
                    if *accepted && *token >= high.0 {
                        *high = (*token, *writer);
                    }
                } else if *accepted && read != prev {
                    out.findings.push(Finding {
                        kind: FindingKind::LostUpdateUnfenced,
                        t: e.t,
                        key: key.clone(),
                        detail: format!(
                            "client {writer} (token {token}) wrote {} based on {read}, \
                             overwriting {prev}",
                            read + 1
                        ),
                    });
                }
            }
            Kind::ClientStart { .. } | Kind::AcquireFail { .. } | Kind::AcquireUnknown { .. } => {}
        }
    }
    for (v, s) in pause_open {
        paused.entry(v).or_default().push((s, history_end));
    }

    check_overlaps(&mut out);
    check_notification(&mut out, &paused, opts);
    check_tokens(&mut out);
    recoveries(&mut out);
    out.findings.sort_by_key(|f| f.t);
    out
}

fn check_overlaps(out: &mut Findings) {
    let mut by_key: HashMap<&str, Vec<&Hold>> = HashMap::new();
    for h in &out.holds {
        by_key.entry(h.key.as_str()).or_default().push(h);
    }
    let mut found = Vec::new();
    for (key, mut holds) in by_key {
        holds.sort_by_key(|h| h.start);
        for (i, a) in holds.iter().enumerate() {
            for b in &holds[i + 1..] {
                if b.start >= a.end {
                    break;
                }
                if b.start == b.end || a.start == a.end {
                    continue;
                }
                let from = b.start;
                let valid = from < a.valid_end().min(b.valid_end());
                let kind = if valid {
                    FindingKind::OverlapInValidLeases
                } else {
                    FindingKind::OverlapAfterExpiry
                };
                let to = a.end.min(b.end);
                found.push(Finding {
                    kind,
                    t: from,
                    key: key.to_owned(),
                    detail: format!(
                        "client {} (token {}, {}) and client {} (token {}, {}) both acted as \
                         holder for {:?}",
                        a.client,
                        a.token,
                        lease_desc(a),
                        b.client,
                        b.token,
                        lease_desc(b),
                        crate::clock::ns(to - from)
                    ),
                });
            }
        }
    }
    out.findings.extend(found);
}

fn lease_desc(h: &Hold) -> String {
    match h.lease_end {
        None => "session-bound".to_owned(),
        Some(l) if l >= h.end => "lease valid throughout".to_owned(),
        Some(l) => format!(
            "lease ended {:?} after the grant",
            crate::clock::ns(l.saturating_sub(h.start))
        ),
    }
}

fn overlap_len(a: (u64, u64), b: (u64, u64)) -> u64 {
    a.1.min(b.1).saturating_sub(a.0.max(b.0))
}

fn check_notification(
    out: &mut Findings,
    paused: &HashMap<u32, Vec<(u64, u64)>>,
    opts: CheckOptions,
) {
    let mut found = Vec::new();
    for h in &out.holds {
        let Some(l) = h.lease_end else { continue };
        if h.end <= l || h.ended_by == "end-of-history" {
            continue;
        }
        let stopped: u64 = paused
            .get(&h.client)
            .map_or(0, |ps| ps.iter().map(|p| overlap_len(*p, (l, h.end))).sum());
        let unnotified = (h.end - l).saturating_sub(stopped);
        if unnotified > opts.notify_tolerance_ns {
            found.push(Finding {
                kind: FindingKind::NotificationLag,
                t: l,
                key: h.key.clone(),
                detail: format!(
                    "client {} (token {}) went on {:?} past its lease deadline while running \
                     before it {}",
                    h.client,
                    h.token,
                    crate::clock::ns(unnotified),
                    match h.ended_by {
                        "lost" => "was told",
                        "release" => "released (never told)",
                        other => other,
                    }
                ),
            });
        }
    }
    out.findings.extend(found);
}

fn check_tokens(out: &mut Findings) {
    let mut by_key: HashMap<&str, Vec<&Hold>> = HashMap::new();
    for h in &out.holds {
        by_key.entry(h.key.as_str()).or_default().push(h);
    }
    let mut found = Vec::new();
    for (key, mut grants) in by_key {
        let mut seen: HashMap<u64, &Hold> = HashMap::new();
        for g in &grants {
            if let Some(first) = seen.insert(g.token, g) {
                found.push(Finding {
                    kind: FindingKind::TokenOrder,
                    t: g.start,
                    key: key.to_owned(),
                    detail: format!(
                        "token {} was granted twice (clients {} and {})",
                        g.token, first.client, g.client
                    ),
                });
            }
        }
        // Prefix maxima over grants ordered by when they were seen.
        grants.sort_by_key(|g| g.start);
        let mut prefix: Vec<(u64, &Hold)> = Vec::with_capacity(grants.len());
        for g in &grants {
            let best = match prefix.last() {
                Some(&(m, h)) if m >= g.token => (m, h),
                _ => (g.token, *g),
            };
            prefix.push(best);
        }
        for b in &grants {
            // Grants seen strictly before b was invoked.
            let n = grants.partition_point(|g| g.start < b.invoke);
            if n == 0 {
                continue;
            }
            let (max, a) = prefix[n - 1];
            if max >= b.token && a.token != b.token {
                found.push(Finding {
                    kind: FindingKind::TokenOrder,
                    t: b.start,
                    key: key.to_owned(),
                    detail: format!(
                        "client {} was granted token {} although client {} had been granted \
                         token {} before that acquire began",
                        b.client, b.token, a.client, a.token
                    ),
                });
            }
        }
    }
    out.findings.extend(found);
}

fn recoveries(out: &mut Findings) {
    for f in &mut out.faults {
        let (Some(key), Some(victim)) = (&f.key, f.victim) else {
            // A fault that hit every client (network, server): from its start until the
            // first grant of any key after it healed.
            if f.victim.is_none() {
                let healed = f.end.unwrap_or(f.start);
                f.recovery_ns = out
                    .holds
                    .iter()
                    .filter(|h| h.start > healed)
                    .map(|h| h.start - f.start)
                    .min();
            }
            continue;
        };
        f.recovery_ns = out
            .holds
            .iter()
            .filter(|h| &h.key == key && h.client != victim && h.start > f.start)
            .map(|h| h.start - f.start)
            .min();
    }
}

#[cfg(test)]
#[path = "checker_tests.rs"]
mod tests;
