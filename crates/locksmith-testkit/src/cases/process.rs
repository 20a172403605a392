//! Crash = release: a holder process killed with SIGKILL frees the lock.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::{Ctx, PATIENCE, opts};

/// The `locksmith` binary: `$LOCKSMITH_BIN`, else next to the test binary's folder.
pub(crate) fn locksmith_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("LOCKSMITH_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let candidate = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("locksmith"))
        .expect("target dir");
    assert!(
        candidate.exists(),
        "the `locksmith` binary is not at {}: run `cargo build -p locksmith-cli` first or set \
         LOCKSMITH_BIN",
        candidate.display()
    );
    candidate
}

fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie has exited; only its exit status is left for its parent to collect.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

pub(crate) async fn killed_holder_process_frees_lock(cx: Ctx) {
    let key = cx.key("killed");
    let mut cli = Command::new(locksmith_bin())
        .args([
            "--url",
            &cx.target.url,
            "run",
            "--key",
            &key,
            "--ttl",
            "2s",
            "--",
        ])
        .args([
            "sh",
            "-c",
            "echo \"held $$ $LOCKSMITH_FENCING_TOKEN\"; exec sleep 300",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn locksmith");
    let mut lines = BufReader::new(cli.stdout.take().expect("stdout")).lines();
    let line = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("the child starts under the lock")
        .expect("read")
        .expect("a line");
    let mut words = line.split_whitespace().skip(1);
    let child_pid: u32 = words.next().and_then(|w| w.parse().ok()).expect("pid");
    let cli_token: u64 = words.next().and_then(|w| w.parse().ok()).expect("token");

    let other = cx.client().await;
    assert!(
        other.try_acquire(&key, &opts()).await.unwrap().is_none(),
        "held by the CLI"
    );

    cli.start_kill().expect("SIGKILL");
    cli.wait().await.expect("reap");

    let freed = other
        .acquire(&key, &opts())
        .await
        .expect("a killed holder's lock is freed");
    assert!(freed.fencing_token().get() > cli_token);

    // The child must not outlive its lock.
    let start = Instant::now();
    while !process_gone(child_pid) {
        assert!(
            start.elapsed() < PATIENCE,
            "child {child_pid} still running after its locksmith was killed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(freed.release().await.unwrap());
}
