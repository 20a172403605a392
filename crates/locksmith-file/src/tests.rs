//! Backend-level tests: counter persistence, errors, `flock` interop, waiting and cancelling.

use std::fs::{self, File, OpenOptions};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use locksmith_core::{AcquireRequest, Backend, Error, Grant, LockKey};

use crate::{FOREIGN_OWNER, FileBackend};

fn key(k: &str) -> LockKey {
    LockKey::new(k).unwrap()
}

fn req(owner: &str) -> AcquireRequest {
    AcquireRequest::new(Duration::from_secs(30), owner)
}

/// Opens the lock file the way `flock(1)` does and tries to lock it.
fn foreign_lock(b: &FileBackend, k: &LockKey) -> Option<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(b.lock_file_path(k))
        .unwrap();
    f.try_lock().ok().map(|()| f)
}

async fn try_get(b: &FileBackend, k: &LockKey) -> Option<Grant> {
    b.try_acquire(k, &req("t")).await.unwrap()
}

#[tokio::test]
async fn tokens_increase_across_instances_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let k = key("jobs/nightly");
    let mut last = 0;
    for _ in 0..2 {
        let b = FileBackend::new(dir.path()).unwrap();
        for _ in 0..3 {
            let g = try_get(&b, &k).await.expect("free");
            assert!(g.token.get() > last, "{} after {last}", g.token);
            last = g.token.get();
            assert!(g.lease.release().await.unwrap());
            assert!(!g.lease.release().await.unwrap(), "second release is false");
        }
    }
    assert_eq!(last, 6);
    // The counter holds the reserved ceiling, at least every token handed out.
    let token = dir.path().join("jobs%2Fnightly.token");
    let ceiling: u64 = fs::read_to_string(token).unwrap().trim().parse().unwrap();
    assert!(ceiling >= last, "ceiling {ceiling} below token {last}");
    assert!(!dir.path().join("jobs%2Fnightly.holder").exists());
}

#[tokio::test]
async fn two_backends_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        FileBackend::new(dir.path()).unwrap(),
        FileBackend::from_url(&format!("file://{}", dir.path().display())).unwrap(),
    );
    let k = key("k");
    let g = try_get(&a, &k).await.expect("free");
    assert!(try_get(&b, &k).await.is_none());
    assert!(
        try_get(&a, &k).await.is_none(),
        "one backend does not re-enter"
    );
    drop(g); // dropping a lease releases
    assert!(try_get(&b, &k).await.is_some());
}

#[tokio::test]
async fn corrupt_counter_is_a_clear_error_and_nothing_stays_held() {
    let dir = tempfile::tempdir().unwrap();
    let b = FileBackend::new(dir.path()).unwrap();
    let k = key("k");
    let token = dir.path().join("k.token");
    fs::write(&token, "not a number\n").unwrap();
    let err = b.try_acquire(&k, &req("t")).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Backend { .. }), "{msg}");
    assert!(msg.contains(&token.display().to_string()), "{msg}");
    assert!(msg.contains("\"k\"") && msg.contains("not reset"), "{msg}");
    assert!(foreign_lock(&b, &k).is_some(), "the failed grant unlocked");
    let err = b.acquire(&k, &req("t"), None).await.unwrap_err();
    assert!(err.to_string().contains("not reset"));
    fs::write(&token, "41").unwrap();
    assert_eq!(try_get(&b, &k).await.unwrap().token.get(), 42);
}

#[tokio::test]
async fn a_record_written_just_after_the_lock_is_still_seen() {
    // A locksmith holder writes its record right after it locks (and removes it right before
    // it unlocks): holder() in that instant looks again rather than calling it foreign.
    let dir = tempfile::tempdir().unwrap();
    let b = FileBackend::new(dir.path()).unwrap();
    let k = key("window");
    let f = foreign_lock(&b, &k).expect("free");
    let files = crate::layout::KeyFiles::new(dir.path(), k.as_str());
    let writer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1));
        crate::holder::write(&files, &crate::holder::HolderRecord::now("late", 7)).unwrap();
    });
    let h = b.holder(&k).await.unwrap().expect("held");
    writer.join().unwrap();
    assert_eq!(
        (h.owner.as_str(), h.token.map(|t| t.get())),
        ("late", Some(7))
    );
    drop(f);
}

#[tokio::test]
async fn foreign_flock_excludes_and_shows_as_unknown_holder() {
    let dir = tempfile::tempdir().unwrap();
    let b = FileBackend::new(dir.path()).unwrap();
    let k = key("a b/c");
    let f = foreign_lock(&b, &k).expect("free");
    assert!(try_get(&b, &k).await.is_none());
    let h = b.holder(&k).await.unwrap().expect("held");
    assert_eq!(h.owner, FOREIGN_OWNER);
    assert_eq!(h.token, None);
    drop(f);
    assert!(b.holder(&k).await.unwrap().is_none());
    let g = try_get(&b, &k).await.expect("free again");
    assert!(
        foreign_lock(&b, &k).is_none(),
        "locksmith excludes a flock(1)-style locker"
    );
    let h = b.holder(&k).await.unwrap().expect("held");
    assert_eq!((h.owner.as_str(), h.token), ("t", Some(g.token)));
    assert!(h.since.is_some());
    drop(g);
    assert!(foreign_lock(&b, &k).is_some());
}

#[tokio::test]
async fn interop_with_flock_command() {
    if std::process::Command::new("flock")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("flock(1) not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let b = FileBackend::new(dir.path()).unwrap();
    let k = key("jobs/nightly");
    let path = b.lock_file_path(&k);
    let flock_n = |path: &std::path::Path| {
        std::process::Command::new("flock")
            .args(["-n", "-E", "75"])
            .arg(path)
            .arg("true")
            .status()
            .unwrap()
            .code()
    };
    let g = try_get(&b, &k).await.expect("free");
    assert_eq!(flock_n(&path), Some(75), "flock(1) sees the lock busy");
    drop(g);
    assert_eq!(flock_n(&path), Some(0));

    // `-o`: only flock(1) itself holds the lock, not `cat` (which would inherit it).
    let mut child = std::process::Command::new("flock")
        .arg("-o")
        .arg(&path)
        .arg("cat")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while try_get(&b, &k).await.is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "flock(1) never took it"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.holder(&k).await.unwrap().unwrap().owner, FOREIGN_OWNER);
    let b = Arc::new(b);
    let waiter = tokio::spawn({
        let b = Arc::clone(&b);
        async move { b.acquire(&key("jobs/nightly"), &req("w"), None).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());
    child.kill().unwrap();
    child.wait().unwrap(); // also closes `cat`'s input, so it ends too
    let g = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .expect("granted when flock(1) exits")
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(g.token.get() >= 2);
    assert_eq!(b.holder(&k).await.unwrap().unwrap().owner, "w");
}

#[tokio::test]
async fn waits_for_release_and_honours_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        FileBackend::new(dir.path()).unwrap(),
        FileBackend::new(dir.path()).unwrap(),
    );
    let k = key("k");
    let g = try_get(&a, &k).await.unwrap();
    let deadline = Instant::now() + Duration::from_millis(100);
    assert!(
        b.acquire(&k, &req("b"), Some(deadline))
            .await
            .unwrap()
            .is_none()
    );
    assert!(Instant::now() >= deadline);
    let waiter = tokio::spawn(async move {
        let g = b
            .acquire(&key("k"), &req("b"), None)
            .await
            .unwrap()
            .unwrap();
        (g, b)
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let first = g.token;
    assert!(g.lease.release().await.unwrap());
    let (g2, b) = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(g2.token > first);
    assert_eq!(b.waits().started(), 1, "the timed-out wait was reused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_local_waiters_cost_one_thread_and_go_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let b = Arc::new(FileBackend::new(dir.path()).unwrap());
    let k = key("busy");
    let f = foreign_lock(&b, &k).unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let (b, order) = (Arc::clone(&b), Arc::clone(&order));
        tasks.push(tokio::spawn(async move {
            let g = b
                .acquire(&key("busy"), &req("w"), None)
                .await
                .unwrap()
                .unwrap();
            order.lock().unwrap().push((i, g.token.get()));
            g.lease.release().await.unwrap();
        }));
        if i < 3 {
            // Let the first ones line up in a known order.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.waits().started(), 1);
    drop(f);
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .unwrap()
            .unwrap();
    }
    let order = order.lock().unwrap();
    assert_eq!(order.len(), 1000);
    assert_eq!(
        order[..3].iter().map(|x| x.0).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    assert!(order.windows(2).all(|w| w[0].1 < w[1].1), "tokens increase");
    assert_eq!(b.waits().started(), 1);
}

#[tokio::test]
async fn cancelled_acquires_leave_nothing_held_and_reuse_one_thread() {
    let dir = tempfile::tempdir().unwrap();
    let b = FileBackend::new(dir.path()).unwrap();
    let k = key("k");
    let f = foreign_lock(&b, &k).unwrap();
    for _ in 0..20 {
        let r =
            tokio::time::timeout(Duration::from_millis(5), b.acquire(&k, &req("c"), None)).await;
        assert!(r.is_err());
    }
    assert!(b.waits().started() <= 2, "started {}", b.waits().started());
    assert!(try_get(&b, &k).await.is_none());
    drop(f);
    // The orphaned wait gets the lock and lets it go at once.
    let start = Instant::now();
    let g = loop {
        if let Some(g) = try_get(&b, &k).await {
            break g;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the orphan kept the lock"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    drop(g);
    // The orphan may only now get its turn (its blocking flock can lose the race to the try
    // above): it lets the lock go at once, so the lock soon comes free for good.
    let start = Instant::now();
    while foreign_lock(&b, &k).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nothing is held: the orphan kept the lock"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn renew_notices_a_deleted_lock_file() {
    let dir = tempfile::tempdir().unwrap();
    let b = FileBackend::new(dir.path()).unwrap();
    let k = key("k");
    let g = try_get(&b, &k).await.unwrap();
    assert!(g.lease.renew(Duration::from_secs(1)).await.unwrap());
    fs::remove_file(b.lock_file_path(&k)).unwrap();
    assert!(!g.lease.renew(Duration::from_secs(1)).await.unwrap());
    let reason = tokio::time::timeout(Duration::from_secs(5), g.lease.session_lost())
        .await
        .expect("loss reported");
    assert!(reason.to_string().contains("deleted"), "{reason}");
    assert!(!g.lease.release().await.unwrap());
    assert!(!g.lease.renew(Duration::from_secs(1)).await.unwrap());
}

#[tokio::test]
async fn stale_holder_record_is_not_reported() {
    let dir = tempfile::tempdir().unwrap();
    let b = FileBackend::new(dir.path()).unwrap();
    let k = key("k");
    let rec = r#"{"owner":"crashed","token":3,"since_unix_ms":0,"pid":1}"#;
    fs::write(dir.path().join("k.holder"), rec).unwrap();
    assert!(b.holder(&k).await.unwrap().is_none(), "no lock file yet");
    fs::write(b.lock_file_path(&k), "").unwrap();
    assert!(b.holder(&k).await.unwrap().is_none());
    assert!(
        !dir.path().join("k.holder").exists(),
        "the stale record was removed"
    );
}

#[test]
fn bad_folders_and_urls_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    fs::write(&file, "").unwrap();
    let err = FileBackend::new(file.join("sub")).unwrap_err().to_string();
    assert!(
        err.contains(&file.join("sub").display().to_string()),
        "{err}"
    );
    let err = FileBackend::new(&file).unwrap_err().to_string();
    assert!(err.contains("plain-file"), "{err}");
    let err = FileBackend::from_url("file://relative/dir").unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
    let err = FileBackend::from_url("file:///tmp?x=1")
        .unwrap_err()
        .to_string();
    assert!(err.contains("`x`"), "{err}");

    let b = FileBackend::new(dir.path().join("new/nested")).unwrap();
    assert!(b.dir().is_dir());
    assert_eq!(b.display_url(), format!("file://{}", b.dir().display()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(b.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
    let url = crate::dir_url(&dir.path().join("a b#c")).unwrap();
    let b = FileBackend::from_url(&url).unwrap();
    assert!(b.dir().ends_with("a b#c"), "{}", b.dir().display());
}
