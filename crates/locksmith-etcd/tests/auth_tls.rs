//! User/password authentication and TLS against real etcd members: the right credentials or
//! CA lock and unlock; wrong or missing ones are clear errors, never a hang, and never print
//! the password.

use std::sync::Arc;
use std::time::Duration;

use locksmith_core::{LockOptions, Locker, WaitPolicy};
use locksmith_etcd::EtcdBackend;
use locksmith_testkit::errors::attempt_error;
use locksmith_testkit::servers::etcd::{EtcdCluster, start_etcd_cluster, start_etcd_tls};
use locksmith_testkit::servers::temp_dir;
use locksmith_testkit::servers::tls::make_server_certs;

/// Generous bound for waits that should end quickly; only a hang exceeds it.
const PATIENCE: Duration = Duration::from_secs(30);
const PASSWORD: &str = "s3cret-Pw-4711";

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(EtcdBackend::from_url(url).expect("url")))
}

fn opts() -> LockOptions {
    LockOptions::new().wait(WaitPolicy::Timeout(PATIENCE))
}

/// `etcd://[userinfo@]HOST:PORT?connect_timeout=2` (plus `extra` options) for member 0.
fn url(cluster: &EtcdCluster, userinfo: &str, extra: &str) -> String {
    format!(
        "etcd://{userinfo}{}?connect_timeout=2{extra}",
        cluster.members[0].client_addr
    )
}

/// Locks, checks the holder, and releases `key`, all within `PATIENCE`.
async fn lock_and_release(url: &str, key: &str) {
    let l = locker(url);
    tokio::time::timeout(PATIENCE, async {
        let g = l.acquire(key, &opts()).await.expect("acquire");
        assert!(l.holder(key).await.expect("holder").is_some());
        g.release().await.expect("release");
        assert!(l.holder(key).await.expect("holder").is_none());
    })
    .await
    .expect("no hang");
}

/// The error of a lock attempt through `url`, which must fail (within `PATIENCE`), without
/// the password in it.
async fn lock_error(url: &str, key: &str) -> String {
    attempt_error(&locker(url), key, &opts(), PATIENCE, PASSWORD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_password_locks_and_wrong_or_missing_ones_are_clear_errors() {
    let mut cluster = start_etcd_cluster(1);
    cluster.enable_auth(PASSWORD);

    lock_and_release(&url(&cluster, &format!("root:{PASSWORD}@"), ""), "auth-ok").await;
    // The lock really went through etcd, under root's login.
    assert!(
        cluster
            .etcdctl(&["get", "--prefix", "auth-ok/", "--keys-only"])
            .trim()
            .is_empty()
    );

    let e = lock_error(&url(&cluster, "root:not-the-password@", ""), "auth-bad").await;
    assert!(
        e.contains("authentication failed"),
        "the error names the problem: {e}"
    );
    assert!(!e.contains("not-the-password"), "password printed: {e}");
    assert!(!e.contains(PASSWORD), "password printed: {e}");

    let e = lock_error(&url(&cluster, "", ""), "auth-none").await;
    assert!(
        e.contains("user name is empty") && e.contains("USER:PASSWORD@"),
        "the error names the problem and the fix: {e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_the_right_ca_locks_and_a_wrong_ca_is_a_clear_error() {
    let cluster = start_etcd_tls();
    let ca = cluster
        .tls_ca()
        .expect("a TLS cluster")
        .display()
        .to_string();
    lock_and_release(
        &url(&cluster, "", &format!("&tls=true&ca_file={ca}")),
        "tls-ok",
    )
    .await;

    // A CA that did not sign the server's certificate.
    let other = temp_dir("locksmith-wrong-ca-");
    let wrong = make_server_certs(other.path()).ca.display().to_string();
    let e = lock_error(
        &url(&cluster, "", &format!("&tls=true&ca_file={wrong}")),
        "tls-bad",
    )
    .await;
    assert!(
        e.contains("invalid peer certificate"),
        "the error names the problem: {e}"
    );

    // Plain HTTP to a TLS-only member.
    let e = lock_error(&url(&cluster, "", ""), "tls-plain").await;
    assert!(
        e.contains("tls=true"),
        "the error names the likely fix: {e}"
    );

    // TLS to a member that speaks plain HTTP.
    let plain = start_etcd_cluster(1);
    let e = lock_error(
        &url(&plain, "", &format!("&tls=true&ca_file={ca}")),
        "tls-to-plain",
    )
    .await;
    assert!(
        e.to_lowercase().contains("tls handshake") && e.contains("drop `tls=true`"),
        "the error names the problem and the likely fix: {e}"
    );

    // A CA file that does not exist.
    let e = lock_error(
        &url(&cluster, "", "&ca_file=/nonexistent/locksmith-ca.pem"),
        "tls-missing",
    )
    .await;
    assert!(e.contains("CA file"), "{e}");
}
