//! Exclusion, tokens, release.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::{Ctx, opts};

pub(crate) async fn concurrent_tasks_never_overlap(cx: Ctx) {
    let clients = [cx.client().await, cx.client().await];
    let key = cx.key("overlap");
    let inside = Arc::new(AtomicBool::new(false));
    let last_token = Arc::new(std::sync::Mutex::new(0u64));
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (locker, key) = (clients[i % 2].clone(), key.clone());
        let (inside, last_token, done) = (inside.clone(), last_token.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let guard = locker.acquire(&key, &opts()).await.expect("acquire");
                assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
                {
                    let mut last = last_token.lock().unwrap();
                    let t = guard.fencing_token().get();
                    assert!(t > *last, "token {t} after {}", *last);
                    *last = t;
                }
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
                inside.store(false, Ordering::SeqCst);
                assert!(guard.release().await.expect("release"), "lost while held");
                done.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(done.load(Ordering::SeqCst), 80);
}

pub(crate) async fn try_acquire_while_held_is_none(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let key = cx.key("busy");
    let held = a
        .try_acquire(&key, &opts())
        .await
        .unwrap()
        .expect("free key");
    for _ in 0..3 {
        assert!(b.try_acquire(&key, &opts()).await.unwrap().is_none());
    }
    assert!(held.is_held());
    assert!(held.release().await.unwrap());
}

pub(crate) async fn release_then_acquire(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let key = cx.key("handover");
    let first = a.acquire(&key, &opts()).await.unwrap();
    let t1 = first.fencing_token();
    assert!(
        first.release().await.unwrap(),
        "release of a held lock reports true"
    );
    let second = b.acquire(&key, &opts()).await.unwrap();
    assert!(second.fencing_token() > t1);
    assert!(second.release().await.unwrap());
}

pub(crate) async fn tokens_strictly_increase(cx: Ctx) {
    let key = cx.key("tokens");
    let mut last = 0;
    for i in 0..20 {
        // A new client now and then: the counter lives on the backend, not in the client.
        let locker = cx.client().await;
        let guard = locker.acquire(&key, &opts()).await.unwrap();
        let t = guard.fencing_token().get();
        assert!(t > last, "grant {i}: token {t} not above {last}");
        last = t;
        assert!(guard.release().await.unwrap());
    }
}

pub(crate) async fn dropped_guard_releases(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let key = cx.key("dropped");
    let guard = a.acquire(&key, &opts()).await.unwrap();
    let t1 = guard.fencing_token();
    drop(guard);
    // The default TTL is 30 s: getting it well before that shows the drop released it.
    let next = b
        .acquire(&key, &opts().wait_for(Duration::from_secs(10)))
        .await
        .expect("a dropped guard's lock is released in the background");
    assert!(next.fencing_token() > t1);
    assert!(next.release().await.unwrap());
}

pub(crate) async fn with_lock_runs_and_releases(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let key = cx.key("with-lock");
    let (k2, b2) = (key.clone(), b.clone());
    let out = a
        .with_lock(&key, &opts(), |token| async move {
            let busy = b2.try_acquire(&k2, &opts()).await.unwrap();
            assert!(busy.is_none(), "held during the work");
            token.get()
        })
        .await
        .unwrap();
    assert!(out > 0);
    let after = b.try_acquire(&key, &opts()).await.unwrap();
    let after = after.expect("released after the work");
    assert!(after.fencing_token().get() > out);
    assert!(after.release().await.unwrap());
}

pub(crate) async fn holder_info_names_owner(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let key = cx.key("holder");
    assert!(
        b.holder(&key).await.unwrap().is_none(),
        "free key has no holder"
    );
    let guard = a
        .acquire(&key, &opts().owner("conformance-owner-7"))
        .await
        .unwrap();
    let info = b
        .holder(&key)
        .await
        .unwrap()
        .expect("held key has a holder");
    assert_eq!(info.owner, "conformance-owner-7");
    if let Some(t) = info.token {
        assert_eq!(t, guard.fencing_token());
    }
    if let Some(left) = info.lease_left {
        assert!(left <= locksmith_core::DEFAULT_TTL);
    }
    assert!(guard.release().await.unwrap());
    assert!(
        b.holder(&key).await.unwrap().is_none(),
        "released key has no holder"
    );
}

/// The native pair `locksmith bench` times as its floor is offered and leaves nothing behind.
pub(crate) async fn native_pair_leaves_the_key_free(cx: Ctx) {
    let backend = cx
        .target
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", cx.target.url));
    let key = locksmith_core::LockKey::new(cx.key("native")).expect("key");
    for _ in 0..3 {
        let name = backend.native_pair(&key).await.expect("native pair");
        assert!(
            name.is_some_and(|n| !n.is_empty()),
            "every locksmith backend offers its native pair (the bench floor)"
        );
    }
    let held = cx
        .client()
        .await
        .try_acquire(&key, &opts())
        .await
        .expect("try_acquire")
        .expect("the native pair left the key held");
    assert!(held.release().await.expect("release"), "lost while held");
}
