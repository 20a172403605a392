//! The checker on hand-made histories: each violation kind is caught, clean ones pass.

use super::*;
use crate::history::{Event, Kind, Phase};

const MS: u64 = 1_000_000;

/// Builds a history in milliseconds.
#[derive(Default)]
struct H(Vec<Event>);

impl H {
    fn ev(mut self, ms: u64, client: u32, kind: Kind) -> Self {
        self.0.push(Event {
            t: ms * MS,
            client,
            kind,
        });
        self
    }
    /// invoke at `inv`, grant at `ok`, lease deadline `lease` ms after the grant (None: session).
    fn grant(self, inv: u64, ok: u64, c: u32, key: &str, token: u64, lease: Option<u64>) -> Self {
        self.ev(inv, c, Kind::AcquireInvoke { key: key.into() }).ev(
            ok,
            c,
            Kind::AcquireOk {
                key: key.into(),
                token,
                lease_end: lease.map(|l| (ok + l) * MS),
            },
        )
    }
    fn release(self, ms: u64, c: u32, key: &str, token: u64) -> Self {
        self.ev(
            ms,
            c,
            Kind::Release {
                key: key.into(),
                token,
                lease_end: None,
                held: Some(true),
            },
        )
    }
    fn release_invoke(self, ms: u64, c: u32, key: &str, token: u64) -> Self {
        self.ev(
            ms,
            c,
            Kind::ReleaseInvoke {
                key: key.into(),
                token,
                lease_end: None,
            },
        )
    }
    fn lost(self, ms: u64, c: u32, key: &str, token: u64) -> Self {
        self.ev(
            ms,
            c,
            Kind::Lost {
                key: key.into(),
                token,
                reason: "expired".into(),
            },
        )
    }
    fn fault(self, ms: u64, fault: &str, phase: Phase, victim: u32, key: &str) -> Self {
        self.ev(
            ms,
            0,
            Kind::Fault {
                fault: fault.into(),
                phase,
                victim: Some(victim),
                key: Some(key.into()),
                token: None,
            },
        )
    }
    #[allow(clippy::too_many_arguments)]
    fn resource(
        self,
        ms: u64,
        key: &str,
        fenced: bool,
        writer: u32,
        token: u64,
        read: u64,
        prev: u64,
        accepted: bool,
    ) -> Self {
        self.ev(
            ms,
            0,
            Kind::Resource {
                key: key.into(),
                fenced,
                writer,
                token,
                read,
                prev,
                highest: 0,
                accepted,
            },
        )
    }
    fn check(self) -> Findings {
        let events = crate::history::merge([self.0]);
        check(&events, CheckOptions::default())
    }
}

fn kinds(f: &Findings) -> Vec<FindingKind> {
    f.findings.iter().map(|x| x.kind).collect()
}

#[test]
fn a_clean_history_with_handovers_kills_and_writes_has_no_findings() {
    let f = H::default()
        .grant(0, 1, 1, "a", 1, Some(1000))
        .resource(2, "a", true, 1, 1, 0, 0, true)
        .resource(3, "a", false, 1, 1, 0, 0, true)
        .grant(2, 5, 2, "a", 2, Some(1000)) // waits while 1 holds
        .release(4, 1, "a", 1)
        .resource(6, "a", true, 2, 2, 1, 1, true)
        .resource(7, "a", false, 2, 2, 1, 1, true)
        .fault(8, "kill", Phase::Start, 2, "a")
        .grant(6, 9, 3, "a", 3, None) // session-bound; granted after the kill
        .release(20, 3, "a", 3)
        .grant(0, 1, 4, "b", 1, None) // another key, overlapping in time: fine
        .release(30, 4, "b", 1)
        .check();
    assert_eq!(kinds(&f), []);
    assert_eq!(f.acquisitions, 4);
    assert_eq!(f.faults.len(), 1);
    assert_eq!(
        f.faults[0].recovery_ns,
        Some(MS),
        "granted to client 3 1 ms after the kill"
    );
    let victim = f.holds.iter().find(|h| h.client == 2).unwrap();
    assert_eq!(victim.ended_by, "killed");
}

#[test]
fn a_holder_killed_while_its_release_is_on_the_wire_held_only_until_it_sent_it() {
    // Client 1 sends its release at 4 ms; the server passes the lock to client 2 at 5 ms;
    // client 1 is killed at 6 ms, before it could write the line after the release.
    let f = H::default()
        .grant(0, 1, 1, "a", 1, Some(1000))
        .grant(2, 5, 2, "a", 2, Some(1000))
        .release_invoke(4, 1, "a", 1)
        .fault(6, "kill", Phase::Start, 1, "a")
        .release(10, 2, "a", 2)
        .check();
    assert_eq!(kinds(&f), []);
    let first = f.holds.iter().find(|h| h.client == 1).unwrap();
    assert_eq!(first.ended_by, "release");
    // Without the line before the release, the same history is an overlap (the holder is
    // taken to act until it died): the line is what tells the two apart.
    let f = H::default()
        .grant(0, 1, 1, "a", 1, Some(1000))
        .grant(2, 5, 2, "a", 2, Some(1000))
        .fault(6, "kill", Phase::Start, 1, "a")
        .release(10, 2, "a", 2)
        .check();
    assert_eq!(kinds(&f), [FindingKind::OverlapInValidLeases]);
}

#[test]
fn overlapping_valid_leases_are_caught() {
    let f = H::default()
        .grant(0, 1, 1, "a", 1, Some(1000))
        .grant(0, 5, 2, "a", 2, Some(1000))
        .release(10, 1, "a", 1)
        .release(11, 2, "a", 2)
        .check();
    assert_eq!(kinds(&f), [FindingKind::OverlapInValidLeases]);
    assert!(
        f.violations()
            .next()
            .unwrap()
            .detail
            .contains("client 1 (token 1")
    );
}

#[test]
fn a_session_bound_holder_overlapped_while_paused_is_a_violation() {
    // file:// semantics: a paused holder keeps its lock; nobody may get it meanwhile.
    let f = H::default()
        .grant(0, 1, 1, "a", 1, None)
        .fault(2, "pause", Phase::Start, 1, "a")
        .grant(3, 4, 2, "a", 2, None)
        .release(6, 2, "a", 2)
        .fault(10, "pause", Phase::End, 1, "a")
        .release(11, 1, "a", 1)
        .check();
    assert_eq!(kinds(&f), [FindingKind::OverlapInValidLeases]);
}

#[test]
fn overlap_after_a_paused_lease_expired_is_an_observation_not_a_violation() {
    // Lease of client 1 ends at 101 ms; it is paused 50..300 ms and told at 301 ms.
    let f = H::default()
        .grant(0, 1, 1, "a", 1, Some(100))
        .fault(50, "pause", Phase::Start, 1, "a")
        .grant(2, 150, 2, "a", 2, Some(1000))
        .resource(160, "a", true, 2, 2, 0, 0, true)
        .fault(300, "pause", Phase::End, 1, "a")
        .resource(300, "a", true, 1, 1, 0, 1, false) // its stale write is fenced off
        .resource(300, "a", false, 1, 1, 0, 1, true) // and lost on the unfenced register
        .lost(301, 1, "a", 1)
        .release(400, 2, "a", 2)
        .check();
    let mut k = kinds(&f);
    k.sort();
    assert_eq!(
        k,
        [
            FindingKind::OverlapAfterExpiry,
            FindingKind::LostUpdateUnfenced,
            FindingKind::StaleWriteRejected
        ]
    );
    assert_eq!(f.violations().count(), 0);
    assert_eq!(f.faults[0].recovery_ns, Some(100 * MS));
    assert_eq!(f.faults[0].end, Some(300 * MS));
}

#[test]
fn a_running_holder_not_told_of_its_expiry_is_notification_lag() {
    let f = H::default()
        .grant(0, 1, 1, "a", 1, Some(100))
        .lost(1000, 1, "a", 1) // told 899 ms late, never paused
        .check();
    assert_eq!(kinds(&f), [FindingKind::NotificationLag]);
    // The same lateness inside a pause is not lag.
    let f = H::default()
        .grant(0, 1, 1, "a", 1, Some(100))
        .fault(50, "pause", Phase::Start, 1, "a")
        .fault(990, "pause", Phase::End, 1, "a")
        .lost(1000, 1, "a", 1)
        .check();
    assert_eq!(kinds(&f), []);
}

#[test]
fn overlap_after_an_unnotified_expiry_is_both_observed_and_lag() {
    let f = H::default()
        .grant(0, 1, 1, "a", 1, Some(100))
        .grant(2, 200, 2, "a", 2, Some(1000))
        .release(900, 1, "a", 1) // acted as holder until 900 ms, never told
        .release(950, 2, "a", 2)
        .check();
    let mut k = kinds(&f);
    k.sort();
    assert_eq!(
        k,
        [
            FindingKind::NotificationLag,
            FindingKind::OverlapAfterExpiry
        ]
    );
}

#[test]
fn tokens_that_do_not_increase_in_real_time_order_are_caught() {
    let f = H::default()
        .grant(0, 1, 1, "a", 5, None)
        .release(2, 1, "a", 5)
        .grant(3, 4, 2, "a", 4, None) // began after token 5 was granted, got 4
        .release(5, 2, "a", 4)
        .check();
    assert_eq!(kinds(&f), [FindingKind::TokenOrder]);
    let f = H::default()
        .grant(0, 1, 1, "a", 5, None)
        .release(2, 1, "a", 5)
        .grant(3, 4, 2, "a", 5, None) // the same token twice
        .release(5, 2, "a", 5)
        .check();
    assert!(kinds(&f).contains(&FindingKind::TokenOrder));
    // Concurrent acquires may be granted in either order.
    let f = H::default()
        .grant(0, 10, 1, "a", 2, None)
        .release(11, 1, "a", 2)
        .grant(0, 5, 2, "a", 1, None)
        .release(6, 2, "a", 1)
        .check();
    assert_eq!(kinds(&f), []);
}

#[test]
fn a_stale_write_accepted_by_the_fenced_register_is_caught() {
    let f = H::default()
        .resource(1, "a", true, 2, 7, 0, 0, true)
        .resource(2, "a", true, 1, 6, 0, 1, true)
        .check();
    assert_eq!(kinds(&f), [FindingKind::StaleWriteAccepted]);
    assert!(
        f.findings[0]
            .detail
            .contains("accepted token 6 from client 1")
    );
}

#[test]
fn lost_updates_on_the_unfenced_register_are_counted() {
    let f = H::default()
        .resource(1, "a", false, 1, 1, 0, 0, true)
        .resource(2, "a", false, 2, 2, 0, 1, true)
        .resource(3, "a", false, 2, 2, 1, 1, true)
        .check();
    assert_eq!(kinds(&f), [FindingKind::LostUpdateUnfenced]);
}
