//! Waiting: bounds, wake-ups, cancellation, crowds, order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use locksmith_core::{LockOptions, WaitPolicy};

use super::{Ctx, PATIENCE, opts};

pub(crate) async fn wait_with_timeout_fails_in_bound(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let key = cx.key("timeout");
    let held = a
        .acquire(&key, &opts().owner("timeout-holder"))
        .await
        .unwrap();
    let bound = Duration::from_millis(300);
    let start = Instant::now();
    let err = b
        .acquire(&key, &opts().wait_for(bound))
        .await
        .expect_err("busy for the whole wait");
    let waited = start.elapsed();
    assert!(err.is_timeout(), "expected a timeout, got {err}");
    assert!(
        waited >= bound,
        "gave up after {waited:?}, before the {bound:?} bound"
    );
    assert!(waited < PATIENCE, "wait bound ignored: {waited:?}");
    let msg = err.to_string();
    assert!(msg.contains(&key), "message names the key: {msg}");
    if cx.target.capabilities.holder_info {
        assert!(
            msg.contains("timeout-holder"),
            "message names the holder: {msg}"
        );
    }
    assert!(held.release().await.unwrap());
    let got = b.acquire(&key, &opts()).await.unwrap();
    assert!(got.release().await.unwrap());
}

pub(crate) async fn no_wait_policy_fails_at_once(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let key = cx.key("nowait");
    let held = a.acquire(&key, &opts()).await.unwrap();
    let err = b
        .acquire(&key, &opts().wait(WaitPolicy::NoWait))
        .await
        .expect_err("busy");
    assert!(err.is_timeout(), "{err}");
    assert!(held.release().await.unwrap());
    let got = b
        .acquire(&key, &opts().wait(WaitPolicy::NoWait))
        .await
        .expect("free now");
    assert!(got.release().await.unwrap());
}

pub(crate) async fn waiter_is_woken_by_release(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let key = cx.key("wake");
    let held = a.acquire(&key, &opts()).await.unwrap();
    let t1 = held.fencing_token();
    let released = Arc::new(AtomicBool::new(false));
    let waiter = {
        let (key, released) = (key.clone(), released.clone());
        tokio::spawn(async move {
            let g = b.acquire(&key, &LockOptions::new()).await.unwrap();
            assert!(
                released.load(Ordering::SeqCst),
                "granted before the release"
            );
            g
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "waiter got a held lock");
    released.store(true, Ordering::SeqCst);
    assert!(held.release().await.unwrap());
    let g = tokio::time::timeout(PATIENCE, waiter)
        .await
        .expect("waiter woken after the release")
        .unwrap();
    assert!(g.fencing_token() > t1);
    assert!(g.release().await.unwrap());
}

pub(crate) async fn acquire_is_cancel_safe(cx: Ctx) {
    let (a, b, c) = (cx.client().await, cx.client().await, cx.client().await);
    let key = cx.key("cancel");
    for round in 0..20u64 {
        let held = a.acquire(&key, &opts()).await.unwrap();
        // Drop b's acquire at a moment that moves around the release.
        let forever = LockOptions::new();
        let mut pending = Box::pin(b.acquire(&key, &forever));
        let release = async {
            tokio::time::sleep(Duration::from_millis(round % 7)).await;
            held.release().await.unwrap()
        };
        let cut = tokio::time::sleep(Duration::from_millis((round * 3) % 11));
        tokio::pin!(release, cut);
        let mut released = false;
        let mut b_guard = None;
        loop {
            tokio::select! {
                r = &mut release, if !released => { assert!(r); released = true; }
                g = &mut pending, if b_guard.is_none() => { b_guard = Some(g.unwrap()); }
                _ = &mut cut => break,
            }
            if released && b_guard.is_some() {
                break;
            }
        }
        if !released {
            assert!(release.await);
        }
        // An unfinished acquire is dropped here; a finished one is released explicitly.
        drop(pending);
        if let Some(g) = b_guard {
            assert!(g.release().await.unwrap());
        }
        // Nothing may stay held: c gets the lock well within the 30 s default TTL.
        let g = c
            .acquire(&key, &opts().wait_for(Duration::from_secs(10)))
            .await
            .unwrap_or_else(|e| {
                panic!("round {round}: a cancelled acquire left the lock held: {e}")
            });
        assert!(g.release().await.unwrap());
    }
}

pub(crate) async fn thousand_waiters_all_served(cx: Ctx) {
    let clients = [cx.client().await, cx.client().await];
    let key = cx.key("crowd");
    let gate = clients[0].acquire(&key, &opts()).await.unwrap();
    let inside = Arc::new(AtomicBool::new(false));
    let tokens = Arc::new(std::sync::Mutex::new(Vec::with_capacity(1000)));
    let mut tasks = Vec::with_capacity(1000);
    for i in 0..1000 {
        let (locker, key) = (clients[i % 2].clone(), key.clone());
        let (inside, tokens) = (inside.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let g = locker
                .acquire(&key, &LockOptions::new().wait_for(Duration::from_secs(240)))
                .await
                .unwrap_or_else(|e| panic!("waiter {i} not served: {e}"));
            assert!(!inside.swap(true, Ordering::SeqCst), "two holders at once");
            tokens.lock().unwrap().push(g.fencing_token().get());
            inside.store(false, Ordering::SeqCst);
            assert!(g.release().await.unwrap());
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(gate.release().await.unwrap());
    for t in tasks {
        t.await.expect("waiter task");
    }
    let tokens = tokens.lock().unwrap();
    assert_eq!(tokens.len(), 1000, "every waiter served once");
    assert!(
        tokens.windows(2).all(|w| w[0] < w[1]),
        "tokens increase in grant order"
    );
}

pub(crate) async fn waiters_are_served_in_order(cx: Ctx) {
    let holder = cx.client().await;
    let key = cx.key("fifo");
    let gate = holder.acquire(&key, &opts()).await.unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..5 {
        let locker = cx.client().await;
        let (key, order) = (key.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            let g = locker.acquire(&key, &opts()).await.unwrap();
            order.lock().unwrap().push(i);
            assert!(g.release().await.unwrap());
        }));
        // Generous spacing so that arrival order is unambiguous even on a slow machine.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(gate.release().await.unwrap());
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        *order.lock().unwrap(),
        vec![0, 1, 2, 3, 4],
        "first come, first served"
    );
}
