//! A key held by another `locksmith run`: `--no-wait` and `--wait` exit 75 naming the holder;
//! `status` reports the holder; SIGTERM to the holder is forwarded and frees the lock.

mod common;

use common::{file_url, finish, first_line, locksmith, output};

#[tokio::test]
async fn busy_key_gives_75_and_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let url = file_url(dir.path());
    let mut holder = locksmith(&url)
        .args(["run", "--key", "k", "--owner", "holder-x", "--"])
        .args(["sh", "-c", "echo ready; exec sleep 30"])
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut holder).await, "ready");

    let out = output(locksmith(&url).args(["run", "--key", "k", "--no-wait", "--", "true"])).await;
    out.expect_code(75);
    assert!(out.stderr.contains("holder-x"), "{out:#?}");

    let out =
        output(locksmith(&url).args(["run", "--key", "k", "--wait", "300ms", "--", "true"])).await;
    out.expect_code(75);
    assert!(out.stderr.contains("held by holder-x"), "{out:#?}");
    assert!(out.stderr.contains("\"k\""), "{out:#?}");

    let out =
        output(locksmith(&url).args(["elect", "--key", "k", "--wait", "300ms", "--", "true"]))
            .await;
    out.expect_code(75);

    let out = output(locksmith(&url).args(["status", "--key", "k"])).await;
    out.expect_code(0);
    assert!(
        out.stdout.starts_with("\"k\" is held by holder-x"),
        "{out:#?}"
    );

    let out = output(locksmith(&url).args(["status", "--key", "k", "--json"])).await;
    out.expect_code(0);
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["key"], "k");
    assert_eq!(v["held"], true);
    assert_eq!(v["owner"], "holder-x");
    assert!(v["fencing_token"].as_u64().is_some_and(|t| t >= 1), "{v}");
    for field in ["since_unix_ms", "lease_left_ms"] {
        assert!(v[field].is_null() || v[field].is_u64(), "{v}");
    }

    // SIGTERM to locksmith reaches the command; locksmith exits with its status, lock freed.
    let pid = holder.id().unwrap() as libc::pid_t;
    // SAFETY: kill has no memory effects; the pid is our unreaped child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    finish(holder).await.expect_code(128 + libc::SIGTERM);

    let out = output(locksmith(&url).args(["run", "--key", "k", "--no-wait", "--", "true"])).await;
    out.expect_code(0);
    let out = output(locksmith(&url).args(["status", "--key", "k"])).await;
    out.expect_code(0);
    assert_eq!(out.stdout.trim(), "\"k\" is free");
}
