//! TLS against private MariaDB servers. A user created `REQUIRE SSL` proves that every
//! connection the backend makes (holder, waiter, counter creation) is encrypted:
//! the server refuses that user any other. `VERIFY_IDENTITY` with the test CA locks, waits and
//! fences; a wrong CA, a missing CA file and `REQUIRED` against a server without TLS are clear
//! errors that never show the password; `DISABLED` and the default `PREFERRED` still work.

use std::sync::{Arc, Once};
use std::time::Duration;

use locksmith_core::{Error, LockOptions, Locker, WaitPolicy};
use locksmith_mysql::MySqlBackend;
use locksmith_testkit::errors::attempt_error;
use locksmith_testkit::servers::mariadb::{MariaDb, client_sql, mariadb, mariadb_tls};
use locksmith_testkit::servers::temp_dir;
use locksmith_testkit::servers::tls::{make_client_cert, make_server_certs};

/// Generous bound for waits that should end quickly; only a hang exceeds it.
const PATIENCE: Duration = Duration::from_secs(60);
const PASSWORD: &str = "hunter2-Pw";

fn opts() -> LockOptions {
    LockOptions::new().wait(WaitPolicy::Timeout(PATIENCE))
}

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(MySqlBackend::from_url(url).expect("url")))
}

/// The TLS server, with a user `tlsonly` (password [`PASSWORD`]) that may connect over TLS
/// only.
fn tls_server() -> &'static MariaDb {
    static USER: Once = Once::new();
    let db = mariadb_tls();
    USER.call_once(|| {
        client_sql(
            db,
            &format!(
                "CREATE USER 'tlsonly'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL; \
                 GRANT ALL ON locksmith.* TO 'tlsonly'@'127.0.0.1'"
            ),
        );
    });
    db
}

/// `mysql://USER@127.0.0.1:PORT/locksmith?prefer_socket=false&OPTIONS`.
fn url(db: &MariaDb, user: &str, options: &str) -> String {
    format!(
        "mysql://{user}@127.0.0.1:{}/locksmith?prefer_socket=false&connect_timeout=10s&{options}",
        db.port
    )
}

fn tls_user() -> String {
    format!("tlsonly:{PASSWORD}")
}

fn ca(db: &MariaDb) -> String {
    db.tls
        .as_ref()
        .expect("a TLS server")
        .ca
        .display()
        .to_string()
}

/// The error of a lock attempt through `url`, which must fail (within `PATIENCE`), without
/// the password in it.
async fn lock_error(url: &str, key: &str) -> String {
    attempt_error(&locker(url), key, &opts(), PATIENCE, PASSWORD).await
}

async fn lock_and_release(url: &str, key: &str) {
    let l = locker(url);
    let g = tokio::time::timeout(PATIENCE, l.acquire(key, &opts()))
        .await
        .expect("no hang")
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(g.release().await.expect("release"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_identity_locks_waits_and_fences_over_tls_connections_only() {
    let db = tls_server();
    let u = url(
        db,
        &tls_user(),
        &format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", ca(db)),
    );
    let (a, b) = (locker(&u), locker(&u));
    let key = "tls-fenced";
    let first = a.acquire(key, &opts()).await.expect("acquire over TLS");
    let t1 = first.fencing_token();
    // A waiter that gives up (its wait connection is TLS too).
    let e = b
        .acquire(
            key,
            &LockOptions::new().wait_for(Duration::from_millis(300)),
        )
        .await
        .expect_err("busy");
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    let waiter = tokio::spawn({
        let b = b.clone();
        async move { b.acquire(key, &opts()).await.expect("the waiter's grant") }
    });
    assert!(a.holder(key).await.expect("holder over TLS").is_some());
    assert!(first.release().await.expect("release over TLS"));
    let second = tokio::time::timeout(PATIENCE, waiter)
        .await
        .expect("the waiter is granted after the release")
        .expect("waiter task");
    assert!(
        second.fencing_token() > t1,
        "token {} after {t1}",
        second.fencing_token()
    );
    assert!(second.release().await.expect("release"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_that_encrypts_gets_in_and_disabled_does_not() {
    let db = tls_server();
    for options in [
        String::new(),
        "ssl-mode=PREFERRED".to_owned(),
        "ssl-mode=required".to_owned(),
        format!("ssl-mode=VERIFY_CA&ssl-ca={}", ca(db)),
        format!("ssl-mode=verify_identity&ssl-ca={}", ca(db)),
    ] {
        lock_and_release(&url(db, &tls_user(), &options), "tls-modes").await;
    }
    // The same user without TLS is refused by the server: DISABLED really is plain.
    let e = lock_error(&url(db, &tls_user(), "ssl-mode=DISABLED"), "tls-disabled").await;
    assert!(e.contains("Access denied"), "{e}");
    lock_and_release(&url(db, "root", "ssl-mode=DISABLED"), "tls-disabled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ca_is_a_clear_error() {
    let db = tls_server();
    let other = temp_dir("locksmith-wrong-ca-");
    let wrong = make_server_certs(other.path()).ca.display().to_string();
    for mode in ["VERIFY_IDENTITY", "VERIFY_CA"] {
        let e = lock_error(
            &url(db, &tls_user(), &format!("ssl-mode={mode}&ssl-ca={wrong}")),
            "tls-wrong-ca",
        )
        .await;
        assert!(
            e.contains(&format!("not signed by the CA in ssl-ca={wrong}")),
            "{mode}: the error names the problem and the file: {e}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_against_a_server_without_tls_is_a_clear_error_and_preferred_goes_plain() {
    let plain = mariadb();
    let e = lock_error(&url(plain, "root", "ssl-mode=REQUIRED"), "tls-to-plain").await;
    assert!(
        e.contains("the server does not support TLS")
            && e.contains("ssl-mode=DISABLED")
            && e.contains("ssl_cert"),
        "the error names the problem and the fixes: {e}"
    );
    for options in ["", "ssl-mode=PREFERRED", "ssl-mode=DISABLED"] {
        lock_and_release(&url(plain, "root", options), "tls-plain").await;
    }
}

#[test]
fn missing_or_unused_certificate_files_and_driver_tls_options_are_clear_errors() {
    for (options, says) in [
        (
            "ssl-mode=VERIFY_IDENTITY&ssl-ca=/nonexistent/locksmith-ca.pem",
            "ssl-ca: cannot read /nonexistent/locksmith-ca.pem",
        ),
        (
            "ssl-mode=VERIFY_CA&ssl-ca=/etc/hostname",
            "holds no PEM certificate",
        ),
        (
            "ssl-mode=REQUIRED&ssl-ca=/etc/hostname",
            "ssl-ca is used only to verify the server",
        ),
        ("ssl-mode=SOMETIMES", "not a TLS mode"),
        ("ssl-key=/etc/hostname", "ssl-cert and ssl-key go together"),
        ("require_ssl=true", "ssl-mode="),
    ] {
        let u = format!("mysql://u:{PASSWORD}@127.0.0.1:1/d?{options}");
        let e = MySqlBackend::from_url(&u).expect_err(options).to_string();
        assert!(e.contains(says), "{options}: {e}");
        assert!(!e.contains(PASSWORD), "password printed: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_logs_in_where_the_server_requires_one() {
    let db = tls_server();
    client_sql(
        db,
        "CREATE USER 'certuser'@'127.0.0.1' REQUIRE X509; \
         GRANT ALL ON locksmith.* TO 'certuser'@'127.0.0.1'",
    );
    let dir = temp_dir("locksmith-client-cert-");
    let certs = db.tls.as_ref().expect("a TLS server");
    let (cert, key) = make_client_cert(dir.path(), certs, "certuser");
    let verified = format!("ssl-mode=VERIFY_IDENTITY&ssl-ca={}", ca(db));
    lock_and_release(
        &url(
            db,
            "certuser",
            &format!(
                "{verified}&ssl-cert={}&ssl-key={}",
                cert.display(),
                key.display()
            ),
        ),
        "tls-client-cert",
    )
    .await;
    let e = lock_error(&url(db, "certuser", &verified), "tls-client-cert").await;
    assert!(e.contains("Access denied"), "{e}");
}
