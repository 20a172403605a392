//! `redis+cluster://` beyond the conformance suite, on private 3-master Redis Clusters: the
//! names of one lock share a hash slot (asked of the server), locks on every master at once,
//! interop with plain `SET NX PX`, wake-ups across nodes, slot migration (`ASK` and `MOVED`),
//! and a master that dies or restarts empty.

use std::sync::Arc;
use std::time::Duration;

use locksmith_core::{Error, LockKey, LockOptions, Locker, LossReason, WaitPolicy};
use locksmith_redis::{FOREIGN_OWNER, RedisClusterBackend};
use locksmith_testkit::servers::redis_cluster::{RedisCluster, Security, shared};
use redis::AsyncCommands;
use redis::cluster_async::ClusterConnection;

const PATIENCE: Duration = Duration::from_secs(30);

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(RedisClusterBackend::from_url(url).expect("url")))
}

async fn raw(cluster: &RedisCluster) -> ClusterConnection {
    let seeds: Vec<String> = cluster
        .ports()
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    redis::cluster::ClusterClient::new(seeds)
        .unwrap()
        .get_async_connection()
        .await
        .unwrap()
}

fn opts() -> LockOptions {
    LockOptions::new().wait(WaitPolicy::Timeout(PATIENCE))
}

fn unique(name: &str) -> String {
    format!("cluster-test-{}-{name}", std::process::id())
}

/// A key named after `name` whose slot is served by master `node`.
fn key_on(cluster: &RedisCluster, node: usize, name: &str) -> String {
    (0..)
        .map(|i| unique(&format!("{name}-{i}")))
        .find(|k| cluster.owner_of_slot(cluster.keyslot(k), 0) == node)
        .expect("some key hashes to every master")
}

#[tokio::test]
async fn the_names_of_one_lock_share_a_hash_slot() {
    let cluster = shared();
    let url = cluster.url("redis+cluster");
    let prefixed = RedisClusterBackend::from_url(&format!("{url}?prefix=app:")).unwrap();
    let plain = RedisClusterBackend::from_url(&url).unwrap();
    for name in [
        "jobs/nightly",
        "{user42}:cart",
        "a{b",
        "{",
        "x{y}z",
        "ключ 🔒",
        "with spaces",
    ] {
        for backend in [&plain, &prefixed] {
            let (lock, fence, channel) = backend.server_names(&LockKey::new(name).unwrap());
            let slot = cluster.keyslot(&lock);
            assert_eq!(cluster.keyslot(&fence), slot, "{lock:?} / {fence:?}");
            assert_eq!(cluster.keyslot(&channel), slot, "{lock:?} / {channel:?}");
        }
        // And the scripts run there: a grant and its release.
        let l = locker(&url);
        let g = l.acquire(&unique(name), &opts()).await.unwrap();
        assert!(g.release().await.unwrap());
    }
    // A `}` without a hash tag leaves no name in the key's slot: refused, with the rule.
    for name in ["a}b", "x{}y", "}{", "{}{tag}"] {
        match locker(&url).try_acquire(name, &opts()).await {
            Err(Error::InvalidKey { rule, .. }) => assert!(rule.contains("hash tag"), "{rule}"),
            other => panic!("{name:?}: expected InvalidKey, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn keys_on_every_master_are_held_at_once() {
    let cluster = shared();
    let url = cluster.url("redis+cluster");
    let (a, b) = (locker(&url), locker(&url));
    let keys: Vec<String> = (0..3).map(|n| key_on(cluster, n, "every")).collect();
    let mut guards = Vec::new();
    for k in &keys {
        guards.push(a.acquire(k, &opts().owner("holder-a")).await.unwrap());
    }
    for (k, g) in keys.iter().zip(&guards) {
        assert!(b.try_acquire(k, &opts()).await.unwrap().is_none(), "{k}");
        let h = b.holder(k).await.unwrap().expect("held");
        assert_eq!(h.owner, "holder-a");
        assert_eq!(h.token, Some(g.fencing_token()));
    }
    for g in guards {
        assert!(g.release().await.unwrap());
    }
    for k in &keys {
        let g = b
            .try_acquire(k, &opts())
            .await
            .unwrap()
            .expect("free again");
        assert!(g.release().await.unwrap());
    }
}

#[tokio::test]
async fn plain_set_nx_px_and_locksmith_exclude_each_other() {
    let cluster = shared();
    let locker = locker(&cluster.url("redis+cluster"));
    let mut conn = raw(cluster).await;
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
    let ok: Option<String> = set_nx(1000).query_async(&mut conn).await.unwrap();
    assert_eq!(ok.as_deref(), Some("OK"));
    assert!(locker.try_acquire(&key, &opts()).await.unwrap().is_none());
    let holder = locker.holder(&key).await.unwrap().expect("held");
    assert_eq!(holder.owner, FOREIGN_OWNER);
    // Nothing is published when it ends: the waiter's timer at the key's PTTL wakes it.
    let g = locker.acquire(&key, &opts()).await.expect("after the PX");
    let ok: Option<String> = set_nx(1000).query_async(&mut conn).await.unwrap();
    assert_eq!(ok, None, "SET NX must fail while locksmith holds the key");
    assert!(g.release().await.unwrap());
    let ok: Option<String> = set_nx(1000).query_async(&mut conn).await.unwrap();
    assert_eq!(ok.as_deref(), Some("OK"));
    let _: () = conn.del(&key).await.unwrap();
}

#[tokio::test]
async fn a_release_on_one_master_wakes_a_waiter_subscribed_on_another() {
    let cluster = shared();
    let ports = cluster.ports();
    // The waiter's URL lists node 0 first: it subscribes there. The key lives on node 1.
    let url = cluster.url("redis+cluster");
    let key = key_on(cluster, 1, "wake");
    let holder = locker(&url);
    let waiter = locker(&url);
    // A TTL far beyond the wait bound: only the release message can wake the waiter in time.
    let long = opts().ttl(Duration::from_secs(300));
    let g = holder.acquire(&key, &long).await.unwrap();
    let backend = RedisClusterBackend::from_url(&url).unwrap();
    let (_, _, channel) = backend.server_names(&LockKey::new(&key).unwrap());
    let task = {
        let key = key.clone();
        tokio::spawn(async move { waiter.acquire(&key, &opts()).await })
    };
    // Wait until the waiter's subscription is on node 0 (PUBSUB NUMSUB is per node).
    let numsub = |port: u16| {
        let out =
            locksmith_testkit::servers::redis_cluster::cli(port, &["pubsub", "numsub", &channel]);
        out.lines().nth(1).unwrap_or("0").trim().to_owned()
    };
    while numsub(ports[0]) != "1" {
        assert!(!task.is_finished(), "the waiter ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(numsub(ports[1]), "0", "the key's master has no subscriber");
    assert_eq!(cluster.owner_of_slot(cluster.keyslot(&key), 0), 1);
    let before = g.fencing_token();
    assert!(g.release().await.unwrap());
    let next = tokio::time::timeout(PATIENCE, task)
        .await
        .expect("woken by the release, long before the 300 s TTL")
        .unwrap()
        .unwrap();
    assert!(next.fencing_token() > before);
    assert!(next.release().await.unwrap());
}

// The cluster is driven by blocking calls (redis-cli) while renewals must go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_survive_a_slot_migration_with_ask_and_moved_redirections() {
    let cluster = RedisCluster::start(3, &[]);
    // Redis answers TRYAGAIN to a script whose keys are only partly moved; the client retries
    // within command_timeout, which must outlast the migration's steps here.
    let url = format!("{}?command_timeout=20s", cluster.url("redis+cluster"));
    let (a, b) = (locker(&url), locker(&url));
    let tag = unique("migrating");
    let held = format!("{{{tag}}}held");
    let fresh = format!("{{{tag}}}fresh");
    let slot = cluster.keyslot(&held);
    let from = cluster.owner_of_slot(slot, 0);
    let to = (from + 1) % 3;
    let ttl = opts().ttl(Duration::from_millis(1500));
    let g = a.acquire(&held, &ttl).await.unwrap();
    let token = g.fencing_token();
    // The new key's lease counts from when its request was first sent, before it waited for
    // the migration: a TTL that outlasts the wait.
    let long = opts().ttl(Duration::from_secs(20));

    cluster.begin_migration(slot, from, to);
    // A new key of the migrating slot: its script waits (ASK, then TRYAGAIN) until the slot
    // has moved.
    let fresh_task = {
        let (a, fresh) = (a.clone(), fresh.clone());
        tokio::spawn(async move { a.acquire(&fresh, &long).await })
    };
    cluster.move_keys(slot, from, to);
    // The held key and its counter are on the new master, the slot still the old one's: every
    // request for them is answered ASK by the old master and runs on the new one.
    assert!(b.try_acquire(&held, &opts()).await.unwrap().is_none());
    let h = b
        .holder(&held)
        .await
        .unwrap()
        .expect("held, seen through ASK");
    assert_eq!(h.token, Some(token));
    // A renewal goes the same way (a third of the TTL).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(g.is_held());

    cluster.finish_migration(slot, to);
    assert_eq!(cluster.owner_of_slot(slot, 0), to);
    let g2 = tokio::time::timeout(PATIENCE, fresh_task)
        .await
        .expect("the new key is granted once the slot has moved")
        .unwrap()
        .unwrap();
    // Renewals now go to the new master directly (MOVED updated the client's slot map).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(g.is_held() && g2.is_held());
    assert!(b.try_acquire(&held, &opts()).await.unwrap().is_none());
    assert!(g.release().await.unwrap());
    assert!(g2.release().await.unwrap());
    let next = b.acquire(&held, &opts()).await.unwrap();
    assert!(
        next.fencing_token() > token,
        "the counter moved with the slot"
    );
    assert!(next.release().await.unwrap());
}

// The cluster is driven by blocking calls (redis-cli) while renewals must go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_restarted_empty_fails_its_holders_closed_and_no_others() {
    let mut cluster = RedisCluster::start(3, &["--cluster-require-full-coverage", "no"]);
    // A request to the restarting master may hang until command_timeout: renewals (every
    // two seconds here) must outlast one such request for the next to see the new run_id.
    let url = format!("{}?command_timeout=1s", cluster.url("redis+cluster"));
    let locker = locker(&url);
    let ttl = opts().ttl(Duration::from_secs(6));
    let keys: Vec<String> = (0..3).map(|n| key_on(&cluster, n, "restart")).collect();
    let mut guards = Vec::new();
    for k in &keys {
        guards.push(locker.acquire(k, &ttl).await.unwrap());
    }
    let victim = guards.remove(1);
    // Each grant asks its master's identity in the background; give it a moment (a restart
    // before that is still lost, but as NotOwner: the emptied key refuses the renewal).
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.restart_empty(1);
    cluster.wait_ok(PATIENCE);
    let reason = tokio::time::timeout(PATIENCE, victim.lost())
        .await
        .expect("the restart is noticed at the next renewal");
    match &reason {
        LossReason::BackendReset(why) => assert!(why.contains("restarted"), "{why}"),
        LossReason::NotOwner => eprintln!("restart seen as NotOwner (identity not yet known)"),
        other => panic!("expected BackendReset, got {other:?}"),
    }
    assert!(!victim.is_held());
    // The other masters' holders were not touched: each still releases its own lock.
    for g in guards {
        assert!(g.is_held());
        match g.release().await {
            Ok(released) => assert!(released),
            Err(e) => panic!("release on an untouched master: {e}"),
        }
    }
    // The counter was lost with the key; the next token still comes out larger (TIME seed).
    let next = match locker.acquire(&keys[1], &opts()).await {
        Ok(g) => g,
        Err(e) => panic!("after the restart: {e}"),
    };
    assert!(next.fencing_token() > victim.fencing_token());
    assert!(next.release().await.unwrap());
}

// The cluster is driven by blocking calls (redis-cli) while renewals must go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_master_loses_its_holders_and_grants_nothing_while_down() {
    let mut cluster = RedisCluster::start(3, &["--cluster-require-full-coverage", "no"]);
    let url = format!("{}?command_timeout=300ms", cluster.url("redis+cluster"));
    let (a, b) = (locker(&url), locker(&url));
    let ttl = opts().ttl(Duration::from_millis(1500));
    let keys: Vec<String> = (0..3).map(|n| key_on(&cluster, n, "kill")).collect();
    let mut guards = Vec::new();
    for k in &keys {
        guards.push(a.acquire(k, &ttl).await.unwrap());
    }
    let victim = guards.remove(2);
    cluster.kill(2);
    tokio::time::timeout(PATIENCE, victim.lost())
        .await
        .expect("renewals fail while the master is down: lost at the deadline");
    // While it is down nobody else gets its key: an error, never a second grant.
    let other = b.try_acquire(&keys[2], &opts()).await;
    assert!(other.is_err(), "{other:?}");
    // Holders on the other masters keep their locks (full coverage not required).
    for g in guards {
        assert!(g.is_held());
        assert!(g.release().await.unwrap());
    }
    cluster.restart_empty(2);
    cluster.wait_ok(PATIENCE);
    let next = b.acquire(&keys[2], &opts()).await.unwrap();
    assert!(next.fencing_token() > victim.fencing_token());
    assert!(next.release().await.unwrap());
}

#[tokio::test]
async fn bad_urls_and_a_down_cluster_fail_clearly() {
    let port = locksmith_testkit::servers::free_port();
    let url = format!("redis+cluster://:hunter2@127.0.0.1:{port}?connect_timeout=1s");
    let err = locker(&url).try_acquire("k", &opts()).await.unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains("hunter2") && msg.contains(":***@"), "{msg}");
    let err = RedisClusterBackend::from_url("redis+cluster://127.0.0.1:1/2").unwrap_err();
    assert!(err.to_string().contains("only database 0"), "{err}");
}

#[tokio::test]
async fn password_and_tls_seeds_and_subscription_use_the_url_settings() {
    let security = Security {
        password: Some("s3cret".into()),
        tls: true,
    };
    let (cluster, ca) = RedisCluster::start_secured(3, &[], &security);
    let ca = ca.expect("a TLS cluster has a CA").display().to_string();
    let hosts = cluster.url("x").trim_start_matches("x://").to_owned();
    let url = format!("rediss+cluster://:s3cret@{hosts}?tls_ca={ca}");
    let (holder, waiter) = (locker(&url), locker(&url));
    let key = unique("secured");
    let long = opts().ttl(Duration::from_secs(300));
    let g = holder.acquire(&key, &long).await.unwrap();
    let task = {
        let key = key.clone();
        tokio::spawn(async move { waiter.acquire(&key, &opts()).await })
    };
    // Released while the waiter waits (or before it subscribed: it tries again after).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(g.release().await.unwrap());
    let next = tokio::time::timeout(PATIENCE, task)
        .await
        .expect("woken over the TLS subscription, long before the 300 s TTL")
        .unwrap()
        .unwrap();
    assert!(next.release().await.unwrap());

    let wrong = format!("rediss+cluster://:wrong@{hosts}?tls_ca={ca}&connect_timeout=2s");
    let msg = locker(&wrong)
        .try_acquire("k", &opts())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("credentials") && !msg.contains("wrong@"),
        "{msg}"
    );
    let plain = format!("redis+cluster://:s3cret@{hosts}?connect_timeout=2s&command_timeout=1s");
    let msg = locker(&plain)
        .try_acquire("k", &opts())
        .await
        .unwrap_err()
        .to_string();
    assert!(!msg.contains("s3cret"), "{msg}");
}

// The cluster is driven by blocking calls (redis-cli) while renewals must go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_moves_to_another_seed_when_its_node_dies() {
    let mut cluster = RedisCluster::start(3, &["--cluster-require-full-coverage", "no"]);
    let ports = cluster.ports();
    let url = cluster.url("redis+cluster");
    let key = key_on(&cluster, 1, "resubscribe");
    let (holder, waiter) = (locker(&url), locker(&url));
    let g = holder
        .acquire(&key, &opts().ttl(Duration::from_secs(300)))
        .await
        .unwrap();
    let (_, _, channel) = RedisClusterBackend::from_url(&url)
        .unwrap()
        .server_names(&LockKey::new(&key).unwrap());
    let numsub = |port: u16| {
        let out =
            locksmith_testkit::servers::redis_cluster::cli(port, &["pubsub", "numsub", &channel]);
        out.lines().nth(1).unwrap_or("0").trim().to_owned()
    };
    let task = {
        let key = key.clone();
        tokio::spawn(async move { waiter.acquire(&key, &opts()).await })
    };
    while numsub(ports[0]) != "1" {
        assert!(!task.is_finished(), "the waiter ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The first seed, where the waiter listens, dies: it subscribes on another seed.
    cluster.kill(0);
    while numsub(ports[1]) != "1" && numsub(ports[2]) != "1" {
        assert!(!task.is_finished(), "the waiter ended early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(g.release().await.unwrap());
    let next = tokio::time::timeout(PATIENCE, task)
        .await
        .expect("woken by the release, long before the 300 s TTL")
        .unwrap()
        .unwrap();
    assert!(next.release().await.unwrap());
}
