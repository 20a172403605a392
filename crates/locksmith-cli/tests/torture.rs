//! `locksmith torture` end to end on `file://`: client processes, pause and kill faults, and
//! the checker's verdict (the long CI run is in scripts/test.sh).

mod common;

use common::{bare, file_url, locksmith, memory_url, output};

#[tokio::test]
async fn a_short_torture_on_file_injects_pause_and_kill_and_finds_no_violation() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let mut cmd = locksmith(&file_url(&dir.path().join("locks")));
    cmd.args([
        "torture",
        "--duration",
        "9s",
        "--ttl",
        "1s",
        "--faults",
        "pause,kill",
    ])
    .arg("--out")
    .arg(&out_dir);
    let out = output(&mut cmd).await;
    out.expect_code(0);
    assert!(out.stdout.contains("**PASS**"), "{out:#?}");
    assert!(out.stdout.contains("## Violations: 0"), "{out:#?}");

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("findings.json")).unwrap()).unwrap();
    let faults = json["findings"]["faults"].as_array().unwrap();
    let paused: Vec<_> = faults.iter().filter(|f| f["fault"] == "pause").collect();
    let killed = faults.iter().filter(|f| f["fault"] == "kill").count();
    assert!(!paused.is_empty() && killed >= 1, "{json:#}");
    // file:// locks are session-bound: a paused holder keeps its flock, so nobody else gets
    // its key until it is resumed, and no holds overlap at all.
    for p in paused {
        let (start, end) = (p["start"].as_u64().unwrap(), p["end"].as_u64().unwrap());
        if let Some(rec) = p["recovery_ns"].as_u64() {
            assert!(start + rec >= end, "key granted during the pause: {p:#}");
        }
    }
    assert!(json["findings"]["acquisitions"].as_u64().unwrap() > 0);
    let kinds: Vec<_> = json["findings"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !kinds.iter().any(|k| k.starts_with("overlap")),
        "no overlap of any kind on a session-bound backend: {kinds:?}"
    );
    for file in [
        "report.md",
        "faults.jsonl",
        "resource.jsonl",
        "client-1.jsonl",
    ] {
        assert!(out_dir.join(file).exists(), "{file} missing");
    }
}

#[tokio::test]
async fn torture_refuses_in_process_backends_and_network_faults_without_a_host_port() {
    let out = output(locksmith(&memory_url("torture")).args(["torture", "--duration", "1s"])).await;
    out.expect_code(64);
    assert!(out.stderr.contains("inside one process"), "{out:#?}");

    let dir = tempfile::tempdir().unwrap();
    let out =
        output(locksmith(&file_url(dir.path())).args(["torture", "--faults", "pause,partition"]))
            .await;
    out.expect_code(64);
    assert!(
        out.stderr.contains("--faults partition") && out.stderr.contains("as host:port"),
        "{out:#?}"
    );

    // The Redlock scenario restarts nodes the run starts itself.
    let out =
        output(locksmith(&file_url(dir.path())).args(["torture", "--redlock-restart-empty"])).await;
    out.expect_code(64);
    assert!(out.stderr.contains("--servers redlock"), "{out:#?}");
}

#[tokio::test]
async fn the_expected_unsafe_split_brain_scenario_is_caught_by_the_checker() {
    // Half the clients lock in another folder: real processes really overlap, and the run
    // passes only because the checker catches it.
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let mut cmd = locksmith(&file_url(&dir.path().join("a")));
    cmd.args([
        "torture",
        "--duration",
        "4s",
        "--faults",
        "",
        "--split-brain",
    ])
    .arg(file_url(&dir.path().join("b")))
    .arg("--out")
    .arg(&out_dir);
    let out = output(&mut cmd).await;
    out.expect_code(0);
    assert!(
        out.stdout.contains("inside valid leases were caught"),
        "{out:#?}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("findings.json")).unwrap()).unwrap();
    let kinds: Vec<_> = json["findings"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        kinds.iter().any(|k| k == "overlap_in_valid_leases"),
        "{kinds:?}"
    );
    // Fencing still holds: the fenced register never took an older token.
    assert!(
        !kinds.iter().any(|k| k == "stale_write_accepted"),
        "{kinds:?}"
    );
}

/// The kinds of the findings in a run's findings.json, and the faults injected.
fn findings(out_dir: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("findings.json")).unwrap()).unwrap();
    let list = |k: &str, f: &str| -> Vec<String> {
        json["findings"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x[f].as_str().unwrap().to_owned())
            .collect()
    };
    (list("findings", "kind"), list("faults", "fault"))
}

#[tokio::test]
async fn network_faults_and_a_restart_on_a_private_redis_find_no_violation() {
    // The run starts its own redis-server, puts the fault proxy in front of it, and restarts
    // it (append-only file, fsynced: the locks and the token counter survive).
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = output(
        bare()
            .args(["torture", "--servers", "redis", "--duration", "16s"])
            .args([
                "--ttl",
                "1s",
                "--faults",
                "partition,cut,reset,latency,restart",
            ])
            .arg("--out")
            .arg(&out_dir),
    )
    .await;
    out.expect_code(0);
    assert!(out.stdout.contains("## Violations: 0"), "{out:#?}");
    let (kinds, faults) = findings(&out_dir);
    for f in ["partition", "cut", "reset", "latency", "restart"] {
        assert!(
            faults.iter().any(|x| x == f),
            "{f} not injected: {faults:?}"
        );
    }
    for k in ["overlap_in_valid_leases", "stale_write_accepted"] {
        assert!(!kinds.iter().any(|x| x == k), "{k}: {kinds:?}");
    }
}

#[tokio::test]
async fn the_expected_unsafe_pause_past_ttl_scenario_on_redis_is_caught_and_fencing_holds() {
    // A client stops between reading and writing for longer than its TTL: another takes the
    // key, so holds overlap after expiry and the unfenced register loses updates, while the
    // fenced one rejects the stale writes. The run passes only if the checker shows all that.
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = output(
        bare()
            .args(["torture", "--servers", "redis", "--duration", "10s"])
            .args(["--ttl", "1s", "--pause-past-ttl"])
            .arg("--out")
            .arg(&out_dir),
    )
    .await;
    out.expect_code(0);
    assert!(
        out.stdout.contains("pause-past-ttl") && out.stdout.contains(": caught."),
        "{out:#?}"
    );
    let (kinds, faults) = findings(&out_dir);
    assert!(faults.iter().any(|f| f == "pause"), "{faults:?}");
    for k in [
        "overlap_after_expiry",
        "lost_update_unfenced",
        "stale_write_rejected",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing: {kinds:?}");
    }
    for k in ["overlap_in_valid_leases", "stale_write_accepted"] {
        assert!(!kinds.iter().any(|x| x == k), "{k}: {kinds:?}");
    }
}
