//! `redis://` behaviour beyond the conformance suite, on private redis-servers: a restart that
//! empties the server, awkward keys, interop with plain `SET NX PX` clients, URL options and
//! clear errors, and the one shared subscription connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use locksmith_core::{Backend, LockKey, LockOptions, Locker, LossReason, WaitPolicy};
use locksmith_redis::{FOREIGN_OWNER, RedisBackend};
use locksmith_testkit::servers::redis::{RedisServer, shared};
use redis::AsyncCommands;

const PATIENCE: Duration = Duration::from_secs(30);

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(RedisBackend::from_url(url).expect("url")))
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

fn opts() -> LockOptions {
    LockOptions::new().wait(WaitPolicy::Timeout(PATIENCE))
}

fn unique(name: &str) -> String {
    format!("redis-test-{}-{name}", std::process::id())
}

#[tokio::test]
async fn restart_empty_is_detected_and_tokens_keep_rising() {
    let mut server = RedisServer::start();
    let locker = locker(&server.url());
    let key = unique("restart");
    let ttl = Duration::from_millis(1500);
    let guard = locker.acquire(&key, &opts().ttl(ttl)).await.unwrap();
    let before = guard.fencing_token();
    server.restart();
    let reason = tokio::time::timeout(PATIENCE, guard.lost())
        .await
        .expect("the restart is noticed at the next renewal");
    match &reason {
        LossReason::BackendReset(why) => assert!(why.contains("restarted"), "{why}"),
        other => panic!("expected BackendReset, got {other:?}"),
    }
    assert!(!guard.is_held());
    // The counter was lost with everything else; the next token still comes out larger.
    let next = locker.acquire(&key, &opts()).await.unwrap();
    assert!(
        next.fencing_token() > before,
        "{} after {before}",
        next.fencing_token()
    );
    assert!(next.release().await.unwrap());
    // A released, lost guard cannot touch the new holder.
    assert!(!guard.release().await.unwrap());
}

#[tokio::test]
async fn awkward_keys_map_to_the_documented_names() {
    let url = shared().url();
    let (a, b) = (locker(&url), locker(&url));
    let backend = RedisBackend::from_url(&url).unwrap();
    let mut conn = raw(&url).await;
    for name in ["with spaces", "ключ 🔒", "{tag}:x", "a{}b", "}{", "{", "}"] {
        let key = unique(name);
        let g = a.acquire(&key, &opts().owner("awkward")).await.unwrap();
        let (lock, fence, _) = backend.server_names(&LockKey::new(&key).unwrap());
        let counter: u64 = conn.get(&fence).await.unwrap();
        assert_eq!(counter, g.fencing_token().get());
        assert!(
            b.try_acquire(&key, &opts()).await.unwrap().is_none(),
            "{key:?}"
        );
        // An attempt that finds the key held takes no token: the counter stays the holder's.
        let counter: u64 = conn.get(&fence).await.unwrap();
        assert_eq!(counter, g.fencing_token().get());
        assert_eq!(lock, key, "the lock key is the plain key");
        let value: String = conn.get(&lock).await.unwrap();
        assert!(value.ends_with(":awkward"), "{value}");
        let holder = b.holder(&key).await.unwrap().expect("held");
        assert_eq!(holder.owner, "awkward");
        assert_eq!(holder.token, Some(g.fencing_token()));
        assert!(g.release().await.unwrap());
        assert!(b.holder(&key).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn plain_set_nx_px_and_locksmith_exclude_each_other() {
    let url = shared().url();
    let locker = locker(&url);
    let mut conn = raw(&url).await;
    let key = unique("interop");
    let set_nx = |ms: u64| {
        redis::cmd("SET")
            .arg(&key)
            .arg("redis-py-token")
            .arg("NX")
            .arg("PX")
            .arg(ms)
            .clone()
    };

    // A plain SET NX PX lock blocks locksmith and shows as foreign.
    let ok: Option<String> = set_nx(1000).query_async(&mut conn).await.unwrap();
    assert_eq!(ok.as_deref(), Some("OK"));
    assert!(locker.try_acquire(&key, &opts()).await.unwrap().is_none());
    let holder = locker.holder(&key).await.unwrap().expect("held");
    assert_eq!(holder.owner, FOREIGN_OWNER);
    // It publishes nothing when it ends: the waiter's fallback timer (the key's PTTL) wakes it.
    let g = locker.acquire(&key, &opts()).await.expect("after the PX");
    let value: String = conn.get(&key).await.unwrap();
    assert_ne!(value, "redis-py-token");

    // A locksmith lock blocks a plain SET NX PX, until it is released.
    let ok: Option<String> = set_nx(1000).query_async(&mut conn).await.unwrap();
    assert_eq!(ok, None, "SET NX must fail while locksmith holds the key");
    assert!(g.release().await.unwrap());
    let ok: Option<String> = set_nx(60_000).query_async(&mut conn).await.unwrap();
    assert_eq!(ok.as_deref(), Some("OK"));
    // A foreign lock without expiry: the waiter keeps retrying (a growing backoff) until it goes.
    let _: () = conn.persist(&key).await.unwrap();
    let waiter = {
        let (locker, key) = (locker.clone(), key.clone());
        tokio::spawn(async move { locker.acquire(&key, &opts()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiter.is_finished());
    let _: () = conn.del(&key).await.unwrap();
    let g = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(g.release().await.unwrap());
}

#[tokio::test]
async fn down_server_and_wrong_password_fail_fast_and_clearly() {
    let port = locksmith_testkit::servers::free_port();
    let url = format!("redis://:hunter2@127.0.0.1:{port}?connect_timeout=2s");
    let start = Instant::now();
    let err = locker(&url).try_acquire("k", &opts()).await.unwrap_err();
    let msg = err.to_string();
    assert!(start.elapsed() < PATIENCE);
    assert!(
        msg.contains("cannot reach Redis") && !msg.contains("hunter2"),
        "{msg}"
    );
    assert!(msg.contains(":***@"), "{msg}");

    let server = RedisServer::start_with(&["--requirepass", "right"]);
    let url = format!(
        "redis://:wrong@127.0.0.1:{}?connect_timeout=2s",
        server.port()
    );
    let err = locker(&url).try_acquire("k", &opts()).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("credentials") && !msg.contains("wrong@"),
        "{msg}"
    );
    let url = format!("redis://:right@127.0.0.1:{}", server.port());
    let g = locker(&url).acquire("k", &opts()).await.unwrap();
    assert!(g.release().await.unwrap());
}

#[tokio::test]
async fn acl_user_and_database_index_are_used() {
    let server = RedisServer::start_with(&["--user", "app", "on", ">pw", "~*", "&*", "+@all"]);
    let url = format!("redis://app:pw@127.0.0.1:{}/3", server.port());
    let g = locker(&url).acquire("in-db-3", &opts()).await.unwrap();
    let mut db3 = raw(&format!("redis://app:pw@127.0.0.1:{}/3", server.port())).await;
    let mut db0 = raw(&format!("redis://app:pw@127.0.0.1:{}/0", server.port())).await;
    assert!(db3.exists::<_, bool>("in-db-3").await.unwrap());
    assert!(!db0.exists::<_, bool>("in-db-3").await.unwrap());
    assert!(g.release().await.unwrap());
    let err = locker(&format!("redis://app:nope@127.0.0.1:{}", server.port()))
        .try_acquire("k", &opts())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("credentials"), "{err}");
}

#[tokio::test]
async fn one_subscription_connection_serves_every_waiting_key() {
    // A server of its own: no other test's subscribers to count.
    let server = RedisServer::start();
    let url = server.url();
    let (holder, waiter) = (locker(&url), locker(&url));
    let mut conn = raw(&url).await;
    let subscribers = |list: String| list.lines().filter(|l| l.contains("cmd=subscribe")).count();
    let mut guards = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let key = unique(&format!("sub-{i}"));
        guards.push(holder.acquire(&key, &opts()).await.unwrap());
        let waiter = waiter.clone();
        tasks.push(tokio::spawn(
            async move { waiter.acquire(&key, &opts()).await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .unwrap();
    let during = subscribers(list);
    assert_eq!(during, 1, "one subscription connection for 20 waiting keys");
    for g in guards {
        assert!(g.release().await.unwrap());
    }
    for t in tasks {
        let g = tokio::time::timeout(PATIENCE, t)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(g.release().await.unwrap());
    }
}

#[tokio::test]
async fn the_cli_url_reaches_the_same_locks() {
    // The facade opens redis:// for the CLI; a lock taken through it is seen here.
    let url = shared().url();
    let backend: Arc<dyn Backend> = Arc::new(RedisBackend::from_url(&url).unwrap());
    assert_eq!(backend.scheme(), "redis");
    let key = unique("facade");
    let g = locker(&url).acquire(&key, &opts()).await.unwrap();
    let other = Locker::new(backend);
    assert!(other.try_acquire(&key, &opts()).await.unwrap().is_none());
    assert!(g.release().await.unwrap());
}

#[tokio::test]
async fn rediss_with_a_private_ca() {
    let (server, ca) = RedisServer::start_tls();
    let ca = ca.to_string_lossy().into_owned();
    let url = format!(
        "rediss://127.0.0.1:{}?tls_ca={}",
        server.port(),
        ::url::form_urlencoded::byte_serialize(ca.as_bytes()).collect::<String>()
    );
    let (a, b) = (locker(&url), locker(&url));
    let g = a
        .acquire("tls", &opts())
        .await
        .expect("TLS with the test CA");
    assert!(b.try_acquire("tls", &opts()).await.unwrap().is_none());
    assert!(g.release().await.unwrap());
    // Without the CA the server's certificate is not trusted: a clear error, no hang.
    let err = locker(&format!(
        "rediss://127.0.0.1:{}?connect_timeout=3s",
        server.port()
    ))
    .try_acquire("tls", &opts())
    .await
    .unwrap_err();
    assert!(err.to_string().contains("Redis"), "{err}");
    // Plain text to a TLS port is refused too.
    let err = locker(&format!(
        "redis://127.0.0.1:{}?connect_timeout=3s&command_timeout=1s",
        server.port()
    ))
    .try_acquire("tls", &opts())
    .await
    .unwrap_err();
    assert!(err.to_string().contains("Redis"), "{err}");
}

#[tokio::test]
async fn fair_mode_skips_a_dead_waiter_and_tries_respect_the_queue() {
    let server = RedisServer::start();
    let url = format!("{}?fair=true&waiter_timeout=600ms", server.url());
    let (a, b) = (locker(&url), locker(&url));
    let mut conn = raw(&server.url()).await;
    let key = "fair-dead";
    // A waiter that queued and died: first in line, alive for 600 ms more, then never again.
    let now: (u64, u64) = redis::cmd("TIME").query_async(&mut conn).await.unwrap();
    let alive_until = now.0 * 1000 + now.1 / 1000 + 600;
    let _: () = redis::pipe()
        .zadd("{fair-dead}:locksmith:queue", "dead-waiter", 1)
        .hset("{fair-dead}:locksmith:waiters", "dead-waiter", alive_until)
        .query_async(&mut conn)
        .await
        .unwrap();
    // The key is free, but someone waits: a try is refused.
    assert!(a.try_acquire(key, &opts()).await.unwrap().is_none());
    // A real waiter is served once the dead one's bound passed (not at its own TTL).
    let g = tokio::time::timeout(PATIENCE, b.acquire(key, &opts()))
        .await
        .expect("the dead waiter is skipped after its bound")
        .unwrap();
    let queued: u64 = conn.zcard("{fair-dead}:locksmith:queue").await.unwrap();
    assert_eq!(
        queued, 0,
        "the dead waiter and the granted one left the queue"
    );
    assert!(g.release().await.unwrap());
    // A waiter that gives up leaves the queue.
    let held = a.acquire(key, &opts()).await.unwrap();
    let err = b
        .acquire(key, &opts().wait_for(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let queued: u64 = conn.zcard("{fair-dead}:locksmith:queue").await.unwrap();
        if queued == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a waiter that gave up stayed queued"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(held.release().await.unwrap());
}

#[tokio::test]
async fn fair_waiters_of_many_keys_share_one_inbox_and_each_is_woken() {
    // A server of its own: no other test's channels to count.
    let server = RedisServer::start();
    let url = format!("{}?fair=true", server.url());
    let (holder, waiter) = (locker(&url), locker(&url));
    let mut conn = raw(&server.url()).await;
    let mut guards = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let key = format!("inbox-{i}");
        guards.push(holder.acquire(&key, &opts()).await.unwrap());
        let waiter = waiter.clone();
        tasks.push(tokio::spawn(
            async move { waiter.acquire(&key, &opts()).await },
        ));
    }
    // Wait until all ten are queued on the server.
    for i in 0..10 {
        let queue = format!("{{inbox-{i}}}:locksmith:queue");
        while conn.zcard::<_, u64>(&queue).await.unwrap() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let inboxes: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("locksmith:inbox:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        inboxes.len(),
        1,
        "one inbox for ten waiting keys: {inboxes:?}"
    );
    let key_channels: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("*:locksmith:released")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(key_channels.is_empty(), "fair waiters need no key channel");
    // Releases land back to back, each naming its own waiter on the one inbox: every
    // waiter is woken and granted.
    for g in guards {
        assert!(g.release().await.unwrap());
    }
    for t in tasks {
        let g = tokio::time::timeout(PATIENCE, t)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(g.release().await.unwrap());
    }
    // The inbox stays subscribed for the next wait.
    let inboxes: Vec<String> = redis::cmd("PUBSUB")
        .arg("CHANNELS")
        .arg("locksmith:inbox:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(inboxes.len(), 1);
}

#[tokio::test]
async fn a_fair_release_hands_the_lock_to_the_next_waiter_inside_the_server() {
    let server = RedisServer::start();
    let url = format!("{}?fair=true", server.url());
    let (a, b) = (locker(&url), locker(&url));
    let mut conn = raw(&server.url()).await;
    let key = "fair-handover";
    let held = a.acquire(key, &opts()).await.unwrap();
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.acquire(key, &opts().owner("waiter-b")).await })
    };
    while conn
        .zcard::<_, u64>("{fair-handover}:locksmith:queue")
        .await
        .unwrap()
        == 0
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = held.fencing_token();
    assert!(held.release().await.unwrap());
    // No gap: the release itself made the waiter the holder, before the waiter did anything.
    let value: Option<String> = conn.get(key).await.unwrap();
    let value = value.expect("the key passed straight to the waiter");
    assert!(value.ends_with(":waiter-b"), "{value}");
    let queued: u64 = conn.zcard("{fair-handover}:locksmith:queue").await.unwrap();
    assert_eq!(queued, 0, "the granted waiter left the queue");
    let pttl: i64 = conn.pttl(key).await.unwrap();
    assert!(pttl > 0, "the waiter's TTL is set: {pttl}");
    let g = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The waiter holds it under the token the release took (the counter's), above the last
    // holder's.
    let counter: u64 = conn.get("{fair-handover}:locksmith:fence").await.unwrap();
    assert_eq!(g.fencing_token().0, counter);
    assert!(g.fencing_token() > first);
    assert!(g.is_held());
    let info = b.holder(key).await.unwrap().expect("held");
    assert_eq!(info.owner, "waiter-b");
    assert_eq!(info.token, Some(g.fencing_token()));
    // Its lease is its own: renewal and release compare its value.
    assert!(g.renew().await.unwrap());
    assert!(g.release().await.unwrap());
    let left: Option<String> = conn.get(key).await.unwrap();
    assert_eq!(left, None);
}

#[tokio::test]
async fn a_fair_waiter_handed_the_lock_as_it_gives_up_hands_it_on() {
    let server = RedisServer::start();
    let url = format!("{}?fair=true", server.url());
    let (a, b, c) = (locker(&url), locker(&url), locker(&url));
    let mut conn = raw(&server.url()).await;
    let key = "fair-giveup";
    let queue = "{fair-giveup}:locksmith:queue";
    let held = a.acquire(key, &opts()).await.unwrap();
    // b waits first, c behind it. b's TTL is far beyond the test's patience: if a lock handed
    // to b as it gave up were not handed on, c would only get it when b's lease ran out.
    let b_wait = {
        let b = b.clone();
        let long = opts().owner("waiter-b").ttl(Duration::from_secs(300));
        tokio::spawn(async move { b.acquire(key, &long).await })
    };
    while conn.zcard::<_, u64>(queue).await.unwrap() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let c_wait = {
        let c = c.clone();
        tokio::spawn(async move { c.acquire(key, &opts().owner("waiter-c")).await })
    };
    while conn.zcard::<_, u64>(queue).await.unwrap() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // b's wait is dropped right as the release hands it the lock: whichever happens first on
    // the server, the lock must end with c, never stuck with b.
    assert!(held.release().await.unwrap());
    b_wait.abort();
    let _ = b_wait.await;
    let outcome: Option<String> = conn.get(key).await.unwrap();
    let g = tokio::time::timeout(PATIENCE, async {
        // b may have been granted before the abort landed; then its dropped guard releases.
        c_wait.await.unwrap().unwrap()
    })
    .await
    .unwrap_or_else(|_| panic!("c never got the lock; key held by {outcome:?}"));
    assert_eq!(b.holder(key).await.unwrap().unwrap().owner, "waiter-c");
    assert!(g.release().await.unwrap());
}
