//! TTL leases: renewal, the local deadline, stale holders.

use std::time::Duration;

use locksmith_core::{AcquireRequest, LockKey, LossReason, default_owner};

use super::{Ctx, PATIENCE, opts};

pub(crate) async fn stopped_renewal_loses_lease(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let key = cx.key("no-renew");
    let guard = a
        .acquire(&key, &opts().ttl(Duration::from_secs(1)).renew(false))
        .await
        .unwrap();
    assert!(guard.is_held(), "held right after the grant");
    let reason = tokio::time::timeout(PATIENCE, guard.lost())
        .await
        .expect("lost() fires once the lease runs out");
    assert_eq!(reason, LossReason::Expired);
    assert!(!guard.is_held());
    let next = b
        .acquire(&key, &opts())
        .await
        .expect("the expired lease is free");
    assert!(next.fencing_token() > guard.fencing_token());
    assert!(next.release().await.unwrap());
}

pub(crate) async fn renewal_keeps_lease(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let key = cx.key("renew");
    let ttl = Duration::from_millis(400);
    let guard = a.acquire(&key, &opts().ttl(ttl)).await.unwrap();
    let lost = guard.lost();
    tokio::pin!(lost);
    // Five TTLs: only renewals keep it.
    tokio::select! {
        r = &mut lost => panic!("renewed lease lost: {r}"),
        _ = tokio::time::sleep(ttl * 5) => {}
    }
    assert!(guard.is_held());
    assert!(
        b.try_acquire(&key, &opts()).await.unwrap().is_none(),
        "still exclusive"
    );
    assert!(guard.release().await.unwrap());
}

pub(crate) async fn stale_holder_is_rejected(cx: Ctx) {
    let (a, b, c) = (cx.client().await, cx.client().await, cx.client().await);
    let key = cx.key("stale");
    let ttl = Duration::from_millis(300);
    let stale = a
        .acquire(&key, &opts().ttl(ttl).renew(false))
        .await
        .unwrap();
    tokio::time::timeout(PATIENCE, stale.lost())
        .await
        .expect("expires");
    let fresh = b.acquire(&key, &opts()).await.unwrap();
    assert!(
        !stale.renew().await.unwrap(),
        "renewal after expiry is rejected"
    );
    assert!(
        !stale.release().await.unwrap(),
        "release after expiry reports false"
    );
    assert!(
        c.try_acquire(&key, &opts()).await.unwrap().is_none(),
        "the stale release left the new holder alone"
    );

    // The same at the backend level, below the guard's local bookkeeping.
    let lk = LockKey::new(cx.key("stale-raw")).unwrap();
    let backend = a.backend();
    let req = AcquireRequest::new(ttl, default_owner());
    let old = backend.try_acquire(&lk, &req).await.unwrap().expect("free");
    let newer = b
        .acquire(&lk, &opts())
        .await
        .expect("the raw lease expires on the server");
    assert!(
        !old.lease.renew(ttl).await.unwrap(),
        "backend refuses a stale renewal"
    );
    assert!(
        !old.lease.release().await.unwrap(),
        "backend refuses a stale release"
    );
    assert!(c.try_acquire(&lk, &opts()).await.unwrap().is_none());
    assert!(newer.release().await.unwrap(), "new holder untouched");
    assert!(fresh.release().await.unwrap(), "new holder untouched");
}

pub(crate) async fn protect_cancels_work_on_loss(cx: Ctx) {
    let a = cx.client().await;
    let key = cx.key("protect");
    let guard = a
        .acquire(&key, &opts().ttl(Duration::from_millis(300)).renew(false))
        .await
        .unwrap();
    let out = tokio::time::timeout(
        PATIENCE,
        guard.protect(tokio::time::sleep(Duration::from_secs(3600))),
    )
    .await
    .expect("work cancelled at loss");
    let err = out.expect_err("lost");
    assert!(err.is_lost(), "{err}");
    assert!(err.to_string().contains(&key), "{err}");
}
