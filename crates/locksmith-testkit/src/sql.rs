//! Checks the SQL backends' own tests share (each test adds what only its server can show):
//! keys that look like SQL are data, a crowd of waiters in one process is served one at a
//! time, and a server without a free connection is named as the cause.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use locksmith_core::{Error, LockOptions, Locker};

const PATIENCE: Duration = Duration::from_secs(60);

/// Each of `keys` taken through `a` excludes `b`, shows a holder to `b`, and is released; a
/// key with a NUL byte is refused as an invalid key.
///
/// # Panics
/// When any of that does not hold.
pub async fn keys_are_data(a: &Locker, b: &Locker, keys: &[&str]) {
    let opts = LockOptions::new().wait_for(PATIENCE);
    for key in keys {
        let g = a
            .acquire(*key, &opts)
            .await
            .unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert!(
            b.try_acquire(*key, &opts).await.unwrap().is_none(),
            "{key:?}"
        );
        assert!(b.holder(*key).await.unwrap().is_some(), "{key:?}");
        assert!(g.release().await.unwrap(), "{key:?}");
    }
    let err = a.acquire("nul\0byte", &opts).await.unwrap_err();
    assert!(matches!(err, Error::InvalidKey { .. }), "{err}");
}

/// `n` tasks of `l` wait for `key` while `other` holds it, then are all served, never two at
/// once; returns their fencing tokens in the order the tasks were started.
///
/// # Panics
/// When a waiter fails or two hold the key at once.
pub async fn crowd_is_served(
    l: &Locker,
    other: &Locker,
    key: &str,
    n: usize,
) -> Vec<locksmith_core::FencingToken> {
    let gate = other
        .acquire(key, &LockOptions::new().wait_for(PATIENCE))
        .await
        .unwrap();
    let inside = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (l, inside, key) = (l.clone(), inside.clone(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let g = l
                .acquire(
                    key.as_str(),
                    &LockOptions::new().wait_for(Duration::from_secs(240)),
                )
                .await
                .unwrap_or_else(|e| panic!("waiter {i}: {e}"));
            assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
            let t = g.fencing_token();
            inside.store(false, Ordering::SeqCst);
            assert!(g.release().await.unwrap());
            t
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(gate.release().await.unwrap());
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    tokens
}

/// Through `l`, whose account may open one connection only: a lock is taken; a second key,
/// which needs a second connection, fails with an error that names the full server and what
/// uses connections (and the server's own text, `server_says`); the first lock is still held
/// and releases; then the second key can be locked.
///
/// # Panics
/// When any of that does not hold.
pub async fn one_connection_only(l: &Locker, server_says: &str) {
    let opts = LockOptions::new().wait_for(PATIENCE);
    let held = l.acquire("first", &opts).await.expect("the first lock");
    let err = l.try_acquire("second", &opts).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("no connection free")
            && msg.contains("per held lock")
            && msg.contains(server_says),
        "{msg}"
    );
    assert!(
        held.is_held(),
        "the failed connection disturbed the held lock"
    );
    assert!(held.release().await.unwrap());
    // The first lock's connection is free again: the second key can be locked now.
    let g = l.try_acquire("second", &opts).await.unwrap().expect("free");
    assert!(g.release().await.unwrap());
}
