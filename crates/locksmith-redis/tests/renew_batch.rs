//! Renewals that reach one server together go in one script call of up to 256 keys, and each
//! lease still learns its own answer, on a private redis-server.

use std::time::Duration;

use locksmith_core::{AcquireRequest, Backend, LockKey};
use locksmith_redis::RedisBackend;
use locksmith_testkit::servers::redis::RedisServer;

/// Calls of `command` the server counted (commands run by scripts count too).
async fn calls(conn: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(conn)
        .await
        .unwrap();
    let field = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|l| l.strip_prefix(field.as_str()))
        .and_then(|v| v.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "current_thread")]
async fn renewals_due_together_share_round_trips_and_each_gets_its_answer() {
    const LEASES: usize = 300;
    let server = RedisServer::start();
    let backend = RedisBackend::from_url(&server.url()).unwrap();
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let req = AcquireRequest::new(Duration::from_secs(30), "batch-test");
    let mut grants = Vec::new();
    for i in 0..LEASES {
        let key = LockKey::new(format!("batch-{i}")).unwrap();
        grants.push(backend.try_acquire(&key, &req).await.unwrap().unwrap());
    }
    // The script is loaded by a first renewal, so that the counts below are batches only.
    assert!(
        grants[0]
            .lease
            .renew(Duration::from_secs(30))
            .await
            .unwrap()
    );
    // Another client takes one key over (as if the lease had expired meanwhile).
    let stolen = 7;
    let _: () = redis::cmd("SET")
        .arg(format!("batch-{stolen}"))
        .arg("someone-else")
        .query_async(&mut conn)
        .await
        .unwrap();

    let (evalsha0, pexpire0) = (
        calls(&mut conn, "evalsha").await,
        calls(&mut conn, "pexpire").await,
    );
    let answers = futures_util::future::join_all(
        grants
            .iter()
            .map(|g| g.lease.renew(Duration::from_secs(60))),
    )
    .await;
    let (evalsha1, pexpire1) = (
        calls(&mut conn, "evalsha").await,
        calls(&mut conn, "pexpire").await,
    );

    for (i, answer) in answers.into_iter().enumerate() {
        assert_eq!(answer.unwrap(), i != stolen, "lease {i}");
    }
    // 300 renewals queued at once: one call of 256 keys and one of 44.
    assert_eq!(evalsha1 - evalsha0, 2, "script calls for {LEASES} renewals");
    assert_eq!(pexpire1 - pexpire0, LEASES as u64 - 1, "keys extended");
    let renewed: i64 = redis::cmd("PTTL")
        .arg("batch-0")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        renewed > 30_000,
        "batch-0 renewed to 60 s, PTTL {renewed} ms"
    );
    let (value, pttl): (String, i64) = redis::pipe()
        .get(format!("batch-{stolen}"))
        .pttl(format!("batch-{stolen}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        (value.as_str(), pttl),
        ("someone-else", -1),
        "the new owner is untouched"
    );

    for g in &grants {
        let _ = g.lease.release().await;
    }
}
