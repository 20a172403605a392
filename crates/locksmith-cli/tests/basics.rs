//! Exit codes, bad input, `status`, the environment of the command, and `elect`.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{bare, file_url, finish, first_line, locksmith, memory_url, output};

/// Runs the same checks on `memory://` and on the default backend, `file://`.
async fn both(test: &str, check: impl AsyncFn(&str)) {
    check(&memory_url(test)).await;
    let dir = tempfile::tempdir().unwrap();
    check(&file_url(dir.path())).await;
}

#[tokio::test]
async fn the_commands_exit_code_is_passed_through() {
    both("exit-codes", async |url: &str| {
        let run = |script: &'static str| {
            let mut cmd = locksmith(url);
            cmd.args(["run", "--key", "k", "--", "sh", "-c", script]);
            cmd
        };
        output(&mut run("exit 3")).await.expect_code(3);
        output(&mut run("exit 0")).await.expect_code(0);
        output(&mut run("kill -9 $$")).await.expect_code(128 + 9);
        let out = output(&mut run("echo $LOCKSMITH_KEY $LOCKSMITH_FENCING_TOKEN")).await;
        out.expect_code(0);
        let words: Vec<&str> = out.stdout.split_whitespace().collect();
        assert_eq!(words[0], "k", "{out:#?}");
        assert!(words[1].parse::<u64>().is_ok_and(|t| t >= 1), "{out:#?}");
    })
    .await;
}

#[tokio::test]
async fn commands_that_cannot_run_give_127_and_126() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\ntrue\n").unwrap();
    std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
    both("cannot-run", async |url: &str| {
        let out =
            output(locksmith(url).args(["run", "--key", "k", "--", "no-such-command-xyz"])).await;
        out.expect_code(127);
        assert!(out.stderr.contains("no-such-command-xyz"), "{out:#?}");
        let out = output(locksmith(url).args(["run", "--key", "k", "--"]).arg(&plain)).await;
        out.expect_code(126);
        // The lock was released after the failed start.
        let out =
            output(locksmith(url).args(["run", "--key", "k", "--no-wait", "--", "true"])).await;
        out.expect_code(0);
    })
    .await;
}

#[tokio::test]
async fn bad_input_is_a_clear_error_with_64() {
    let url = memory_url("bad-input");
    let out =
        output(locksmith(&url).args(["run", "--key", "k", "--ttl", "5parsecs", "--", "true"]))
            .await;
    out.expect_code(64);
    assert!(
        out.stderr.contains("--ttl") && out.stderr.contains("5parsecs"),
        "{out:#?}"
    );

    let out =
        output(locksmith(&url).args(["run", "--key", "k", "--wait", "soon", "--", "true"])).await;
    out.expect_code(64);
    assert!(out.stderr.contains("--wait"), "{out:#?}");

    for (option, value) in [("--wait", "500000000000years"), ("--ttl", "1e9years")] {
        let out =
            output(locksmith(&url).args(["run", "--key", "k", option, value, "--", "true"])).await;
        out.expect_code(64);
        assert!(out.stderr.contains(option), "{out:#?}");
    }

    let out = output(locksmith(&url).args(["run", "--key", "", "--", "true"])).await;
    out.expect_code(64);
    assert!(out.stderr.contains("must not be empty"), "{out:#?}");

    let out =
        output(locksmith(&url).args(["run", "--key", "k", "--ttl", "0s", "--", "true"])).await;
    out.expect_code(64);
    assert!(out.stderr.contains("ttl"), "{out:#?}");

    let out = output(locksmith("not-a-url").args(["status", "--key", "k"])).await;
    out.expect_code(64);
    assert!(out.stderr.contains("not-a-url"), "{out:#?}");

    // Redis is compiled into the CLI now: an unreachable host is a backend error (69), and its
    // message still never shows the password.
    let out = output(locksmith("redis://app:hunter2@db:6379").args(["status", "--key", "k"])).await;
    out.expect_code(69);
    assert!(out.stderr.contains("redis://app:***@db"), "{out:#?}");
    assert!(!out.stderr.contains("hunter2"), "{out:#?}");

    // Usage errors: a missing command, and --wait with --no-wait.
    output(locksmith(&url).args(["run", "--key", "k"]))
        .await
        .expect_code(64);
    let out = output(locksmith(&url).args([
        "run",
        "--key",
        "k",
        "--wait",
        "1s",
        "--no-wait",
        "--",
        "true",
    ]))
    .await;
    out.expect_code(64);
}

#[tokio::test]
async fn help_documents_exit_codes_and_hides_the_url_password() {
    let out = output(
        bare()
            .env("LOCKSMITH_URL", "redis://app:hunter2@db:6379")
            .args(["run", "--help"]),
    )
    .await;
    out.expect_code(0);
    for text in [
        "Exit codes",
        "75",
        "76",
        "127",
        "--no-renew",
        "LOCKSMITH_URL",
    ] {
        assert!(out.stdout.contains(text), "{text} missing: {out:#?}");
    }
    assert!(!out.stdout.contains("hunter2"), "{out:#?}");
}

#[tokio::test]
async fn the_url_comes_from_the_environment_too() {
    let out = output(
        bare()
            .env("LOCKSMITH_URL", memory_url("from-env"))
            .args(["run", "--key", "k", "--", "sh", "-c", "exit 5"]),
    )
    .await;
    out.expect_code(5);
}

#[tokio::test]
async fn status_of_a_free_key() {
    both("status-free", async |url: &str| {
        let out = output(locksmith(url).args(["status", "--key", "free key"])).await;
        out.expect_code(0);
        assert_eq!(out.stdout.trim(), "\"free key\" is free");
        let out = output(locksmith(url).args(["status", "--key", "free key", "--json"])).await;
        out.expect_code(0);
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"key": "free key", "held": false, "owner": null,
                "fencing_token": null, "since_unix_ms": null, "lease_left_ms": null})
        );
    })
    .await;
}

#[tokio::test]
async fn the_default_url_is_the_per_user_file_backend() {
    let state = tempfile::tempdir().unwrap();
    let default = |args: &[&str]| {
        let mut cmd = bare();
        cmd.env("XDG_STATE_HOME", state.path()).args(args);
        cmd
    };
    let mut holder = default(&["run", "--key", "d", "--owner", "default-holder", "--"])
        .args(["sh", "-c", "echo ready; exec sleep 30"])
        .spawn()
        .unwrap();
    assert_eq!(first_line(&mut holder).await, "ready");
    // Seen through the explicit file:// URL of the same folder.
    let url = file_url(&state.path().join("locksmith"));
    let out = output(locksmith(&url).args(["status", "--key", "d"])).await;
    out.expect_code(0);
    assert!(out.stdout.contains("held by default-holder"), "{out:#?}");
    let out = output(&mut default(&[
        "run",
        "--key",
        "d",
        "--no-wait",
        "--",
        "true",
    ]))
    .await;
    out.expect_code(75);
    holder.kill().await.unwrap();
}

#[tokio::test]
async fn elect_runs_the_leader_and_hands_over_when_it_exits() {
    let locks = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let url = file_url(locks.path());
    let log = data.path().join("log");
    let script = r#"echo "start $LOCKSMITH_FENCING_TOKEN" >> "$LOG"
echo "leader $LOCKSMITH_KEY $LOCKSMITH_FENCING_TOKEN"
sleep 3
echo "end $LOCKSMITH_FENCING_TOKEN" >> "$LOG"
exit 9"#;
    let elect = |owner: &str| {
        locksmith(&url)
            .args([
                "elect", "--key", "e", "--owner", owner, "--", "sh", "-c", script,
            ])
            .env("LOG", &log)
            .spawn()
            .unwrap()
    };
    let mut first = elect("first");
    let line = first_line(&mut first).await;
    assert!(line.starts_with("leader e "), "{line}");
    let first_token: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();

    let out = output(locksmith(&url).args(["status", "--key", "e", "--json"])).await;
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(v["owner"], "first", "{v}");

    let second = elect("second");
    let (first, second) = tokio::join!(finish(first), finish(second));
    first.expect_code(9);
    second.expect_code(9);
    assert!(
        second.stderr.contains("waiting for leadership of \"e\""),
        "{second:#?}"
    );

    let second_token: u64 = second
        .stdout
        .split_whitespace()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    assert!(second_token > first_token);
    let log = std::fs::read_to_string(&log).unwrap();
    let expected = format!(
        "start {first_token}\nend {first_token}\nstart {second_token}\nend {second_token}\n"
    );
    assert_eq!(log, expected, "the leaders overlapped");
}
