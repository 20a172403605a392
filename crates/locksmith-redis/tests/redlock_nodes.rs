//! `redlock://` with nodes failing: five private redis-servers per test, some killed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use locksmith_core::{LockKey, LockOptions, Locker, WaitPolicy};
use locksmith_redis::{RedisBackend, RedlockBackend};
use locksmith_testkit::servers::redis::RedisServer;

const PATIENCE: Duration = Duration::from_secs(30);

fn five() -> Vec<RedisServer> {
    (0..5).map(|_| RedisServer::start()).collect()
}

fn url(servers: &[RedisServer]) -> String {
    let hosts: Vec<String> = servers
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port()))
        .collect();
    format!("redlock://{}?connect_timeout=1s", hosts.join(","))
}

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(RedlockBackend::from_url(url).unwrap()))
}

fn opts() -> LockOptions {
    LockOptions::new().wait(WaitPolicy::Timeout(PATIENCE))
}

#[tokio::test]
async fn two_of_five_down_still_grants_and_excludes() {
    let mut servers = five();
    servers[0].kill();
    servers[3].kill();
    let url = url(&servers);
    let (a, b) = (locker(&url), locker(&url));
    let g = a.acquire("k", &opts()).await.expect("3 of 5 is a quorum");
    assert!(
        b.try_acquire("k", &opts()).await.unwrap().is_none(),
        "excluded"
    );
    let t = g.fencing_token();
    assert!(g.release().await.unwrap());
    let g = b.acquire("k", &opts()).await.unwrap();
    assert!(g.fencing_token() > t);
    assert!(g.release().await.unwrap());
}

#[tokio::test]
async fn three_of_five_down_refuses_and_says_how_many_answered() {
    let mut servers = five();
    for i in [1, 2, 4] {
        servers[i].kill();
    }
    let url = url(&servers);
    let bound = Duration::from_secs(3);
    let start = Instant::now();
    let err = locker(&url)
        .acquire("k", &opts().wait_for(bound))
        .await
        .expect_err("2 of 5 is no quorum");
    assert!(start.elapsed() < PATIENCE, "refused within the wait bound");
    let msg = err.to_string();
    assert!(msg.contains("only 2 of 5 Redlock nodes answered"), "{msg}");
    assert!(msg.contains("quorum is 3"), "{msg}");
}

#[tokio::test]
async fn a_holder_whose_quorum_is_lost_is_told() {
    let mut servers = five();
    let url = url(&servers);
    let g = locker(&url)
        .acquire("k", &opts().ttl(Duration::from_millis(1500)))
        .await
        .unwrap();
    for i in [0, 2, 4] {
        servers[i].kill();
    }
    let reason = tokio::time::timeout(PATIENCE, g.lost())
        .await
        .expect("lost() once renewals cannot reach a quorum");
    assert!(!g.is_held(), "{reason}");
}

#[tokio::test]
async fn tokens_rise_when_the_granting_quorum_changes() {
    let mut servers = five();
    let url = url(&servers);
    let locker = locker(&url);
    // Push node 0's counter far ahead of the others.
    let key = LockKey::new("fenced").unwrap();
    let node0 = format!("redis://127.0.0.1:{}", servers[0].port());
    let (_, fence, _) = RedisBackend::from_url(&node0).unwrap().server_names(&key);
    let mut conn = redis::Client::open(node0.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let high: u64 = 9_000_000_000_000_000;
    let _: () = redis::cmd("SET")
        .arg(&fence)
        .arg(high)
        .query_async(&mut conn)
        .await
        .unwrap();
    // Acquire until a grant's quorum includes node 0 (the fan-out returns at the first 3 of 5
    // grants, so node 0 may be left out of some); its token is then above node 0's counter.
    let mut first = None;
    for _ in 0..200 {
        let g = locker.acquire(&key, &opts()).await.unwrap();
        let token = g.fencing_token();
        assert!(g.release().await.unwrap());
        if token.get() > high {
            first = Some(token);
            break;
        }
    }
    let first = first.expect("some grant's quorum included node 0");
    // Without node 0, the other nodes were raised to that token before the grant returned.
    servers[0].kill();
    let g = locker.acquire(&key, &opts()).await.unwrap();
    assert!(
        g.fencing_token() > first,
        "{} after {first}",
        g.fencing_token()
    );
    assert!(g.release().await.unwrap());
}

#[tokio::test]
async fn redlock_over_tls_with_a_private_ca() {
    let started: Vec<(RedisServer, std::path::PathBuf)> =
        (0..3).map(|_| RedisServer::start_tls()).collect();
    // Each test server has its own CA: trust all three from one PEM file.
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("cas.pem");
    let pems: Vec<u8> = started
        .iter()
        .flat_map(|(_, ca)| std::fs::read(ca).unwrap())
        .collect();
    std::fs::write(&bundle, pems).unwrap();
    let hosts: Vec<String> = started
        .iter()
        .map(|(s, _)| format!("127.0.0.1:{}", s.port()))
        .collect();
    let ca: String =
        ::url::form_urlencoded::byte_serialize(bundle.to_string_lossy().as_bytes()).collect();
    let url = format!("redlock://{}?tls=true&tls_ca={ca}", hosts.join(","));
    let (a, b) = (locker(&url), locker(&url));
    let g = a.acquire("tls", &opts()).await.expect("Redlock over TLS");
    assert!(b.try_acquire("tls", &opts()).await.unwrap().is_none());
    let t = g.fencing_token();
    assert!(g.release().await.unwrap());
    let g = b.acquire("tls", &opts()).await.unwrap();
    assert!(g.fencing_token() > t);
    assert!(g.release().await.unwrap());
    // Plain text to TLS ports: a clear error naming how many nodes answered, no hang.
    let plain = format!(
        "redlock://{}?connect_timeout=2s&command_timeout=1s",
        hosts.join(",")
    );
    let err = locker(&plain)
        .try_acquire("tls", &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("0 of 3"), "{err}");
}

#[tokio::test]
async fn holder_shows_the_grant_token_also_after_a_write_back() {
    let servers = five();
    let url = url(&servers);
    let locker = locker(&url);
    let key = LockKey::new("holder-token").unwrap();
    // A fresh key: each node seeds its counter from its own clock, so the first grant's
    // counters disagree and the token is written back.
    for _ in 0..3 {
        let g = locker.acquire(&key, &opts()).await.unwrap();
        let info = locker.holder(&key).await.unwrap().expect("held");
        assert_eq!(info.token, Some(g.fencing_token()));
        assert!(g.release().await.unwrap());
    }
}
