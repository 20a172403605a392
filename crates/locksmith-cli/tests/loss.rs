//! Loss of the lock while the command runs: SIGTERM, SIGKILL after the grace, exit 76.
//! `memory://` locks live in the locksmith process, so `--no-renew` with a short TTL is the
//! way to lose one.

mod common;

use std::time::{Duration, Instant};

use common::{locksmith, memory_url, output};

#[tokio::test]
async fn expiry_without_renewal_stops_the_command_with_76() {
    let url = memory_url("loss");
    let started = Instant::now();
    let out = output(locksmith(&url).args([
        "run",
        "--key",
        "k",
        "--ttl",
        "300ms",
        "--no-renew",
        "--",
        "sleep",
        "30",
    ]))
    .await;
    out.expect_code(76);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "sleep was not stopped"
    );
    assert!(out.stderr.contains("\"k\""), "{out:#?}");
    assert!(out.stderr.contains("was lost"), "{out:#?}");
    assert!(out.stderr.contains("expired"), "{out:#?}");
    assert!(out.stderr.contains("SIGTERM"), "{out:#?}");
    assert!(
        !out.stderr.contains("sending SIGKILL"),
        "sleep obeys SIGTERM: {out:#?}"
    );
}

#[tokio::test]
async fn a_command_ignoring_sigterm_is_killed_after_the_grace() {
    let url = memory_url("grace");
    let started = Instant::now();
    let out = output(locksmith(&url).args([
        "run",
        "--key",
        "k",
        "--ttl",
        "300ms",
        "--no-renew",
        "--grace",
        "500ms",
        "--",
        "sh",
        "-c",
        "trap '' TERM; exec sleep 30",
    ]))
    .await;
    let took = started.elapsed();
    out.expect_code(76);
    assert!(
        took >= Duration::from_millis(700),
        "grace not given: {took:?}"
    );
    assert!(took < Duration::from_secs(20), "not killed: {took:?}");
    assert!(out.stderr.contains("was lost"), "{out:#?}");
    assert!(out.stderr.contains("SIGKILL"), "{out:#?}");
}

#[tokio::test]
async fn with_renewal_a_short_ttl_is_kept() {
    let url = memory_url("renew");
    let out = output(locksmith(&url).args([
        "run",
        "--key",
        "k",
        "--ttl",
        "300ms",
        "--",
        "sh",
        "-c",
        "sleep 1; exit 4",
    ]))
    .await;
    out.expect_code(4);
    assert!(!out.stderr.contains("lost"), "{out:#?}");
}
