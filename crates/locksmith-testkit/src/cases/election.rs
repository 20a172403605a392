//! Leader election on top of the lock.

use std::time::Duration;

use locksmith_core::LossReason;

use super::{Ctx, PATIENCE, opts};

pub(crate) async fn leader_handover(cx: Ctx) {
    let (a, b) = (cx.client().await, cx.client().await);
    let key = cx.key("leader");
    let ea = a.election(&key, opts().owner("leader-a")).unwrap();
    let eb = b.election(&key, opts().owner("leader-b")).unwrap();
    let first = ea.campaign().await.unwrap();
    assert!(first.is_leader());
    if cx.target.capabilities.holder_info {
        let seen = eb.leader().await.unwrap().expect("a leader");
        assert_eq!(seen.owner, "leader-a");
    }
    let challenger = tokio::spawn(async move { eb.campaign().await.map(|l| (l, eb)) });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!challenger.is_finished(), "two leaders at once");
    let t1 = first.fencing_token();
    assert!(first.resign().await.unwrap());
    let (second, eb) = tokio::time::timeout(PATIENCE, challenger)
        .await
        .expect("hand-over")
        .unwrap()
        .unwrap();
    assert!(second.fencing_token() > t1, "a new term has a larger token");
    if cx.target.capabilities.holder_info {
        let seen = ea.leader().await.unwrap().expect("a leader");
        assert_eq!(seen.owner, "leader-b");
    }
    assert!(second.resign().await.unwrap());
    if cx.target.capabilities.holder_info {
        assert!(
            eb.leader().await.unwrap().is_none(),
            "no leader after resigning"
        );
    }
}

pub(crate) async fn leadership_loss_is_reported(cx: Ctx) {
    let a = cx.client().await;
    let key = cx.key("leader-loss");
    let e = a
        .election(&key, opts().ttl(Duration::from_millis(300)).renew(false))
        .unwrap();
    let term = e.campaign().await.unwrap();
    let reason = tokio::time::timeout(PATIENCE, term.lost())
        .await
        .expect("loss reported");
    assert_eq!(reason, LossReason::Expired);
    assert!(!term.is_leader());
}
