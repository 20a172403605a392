//! `kill -9` of locksmith kills its command too (PR_SET_PDEATHSIG), and frees the lock.

mod common;

use std::time::{Duration, Instant};

use common::{file_url, first_line, locksmith, output};

/// Whether `pid` still runs: gone or a zombie counts as not running.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        // The state follows the parenthesised command name, which may contain spaces.
        Ok(stat) => {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !(state.starts_with('Z') || state.starts_with('X'))
        }
    }
}

#[tokio::test]
async fn sigkill_of_locksmith_kills_the_command_and_frees_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path());
    let mut parent = locksmith(&url)
        .args([
            "run",
            "--key",
            "k",
            "--",
            "sh",
            "-c",
            "echo $$; exec sleep 60",
        ])
        .spawn()
        .unwrap();
    let pid: u32 = first_line(&mut parent).await.parse().expect("child pid");
    assert!(running(pid));

    parent.kill().await.expect("SIGKILL locksmith");

    let deadline = Instant::now() + Duration::from_secs(10);
    while running(pid) {
        assert!(
            Instant::now() < deadline,
            "command {pid} outlived locksmith"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let out = output(locksmith(&url).args(["run", "--key", "k", "--no-wait", "--", "true"])).await;
    out.expect_code(0);
}
