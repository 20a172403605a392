//! Two `locksmith run` on one file:// directory: the commands never overlap, the second says
//! who holds the lock while it waits, and it gets the larger fencing token.

mod common;

use common::{file_url, finish, locksmith};

/// One hold: (token, start ns, end ns).
fn holds(log: &str) -> Vec<(u64, u128, u128)> {
    let lines: Vec<Vec<&str>> = log
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 4, "expected two starts and two ends:\n{log}");
    lines
        .chunks(2)
        .map(|pair| {
            let (start, end) = (&pair[0], &pair[1]);
            assert_eq!(start[0], "start", "commands overlapped:\n{log}");
            assert_eq!(end[0], "end", "commands overlapped:\n{log}");
            assert_eq!(start[1], end[1], "commands overlapped:\n{log}");
            (
                start[1].parse().unwrap(),
                start[2].parse().unwrap(),
                end[2].parse().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn two_runs_on_one_file_dir_take_turns() {
    let locks = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let url = file_url(locks.path());
    let log = data.path().join("log");
    let script = r#"t=$LOCKSMITH_FENCING_TOKEN
echo "start $t $(date +%s%N)" >> "$LOG"
echo "token $t key $LOCKSMITH_KEY"
sleep 3
echo "end $t $(date +%s%N)" >> "$LOG""#;
    let start = |owner: &str| {
        locksmith(&url)
            .args([
                "run", "--key", "k", "--owner", owner, "--", "sh", "-c", script,
            ])
            .env("LOG", &log)
            .spawn()
            .expect("start locksmith")
    };
    let (a, b) = (start("holder-a"), start("holder-b"));
    let (a, b) = tokio::join!(finish(a), finish(b));
    a.expect_code(0);
    b.expect_code(0);

    let log = std::fs::read_to_string(&log).unwrap();
    let holds = holds(&log);
    let (first, second) = (holds[0], holds[1]);
    assert!(first.2 <= second.1, "intervals overlap:\n{log}");
    assert!(second.0 > first.0, "second token not larger:\n{log}");

    // The one that got the larger token waited, and said who held the lock meanwhile.
    let token_of = |out: &common::Out| -> u64 {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("token "))
            .unwrap();
        assert!(line.ends_with(" key k"), "{line}");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let (waiter, holder, holder_label) = if token_of(&a) > token_of(&b) {
        (&a, &b, "holder-b")
    } else {
        (&b, &a, "holder-a")
    };
    assert_eq!(token_of(waiter), second.0);
    let expected = format!("locksmith: waiting for lock \"k\" held by {holder_label}");
    assert!(
        waiter.stderr.contains(&expected),
        "waiter's stderr: {waiter:#?}"
    );
    assert_eq!(
        waiter.stderr.matches("waiting for lock").count(),
        1,
        "the holder did not change, so one message: {waiter:#?}"
    );
    assert!(!holder.stderr.contains("waiting"), "{holder:#?}");
}
