//! TLS against private PostgreSQL clusters: `verify-full` with the test CA locks, waits and
//! fences over encrypted sessions only (checked in `pg_stat_ssl`); a wrong CA, a wrong host
//! name, a missing CA file and `require` against a server without TLS are clear errors that
//! never show the password; `disable` and the default `prefer` still work.

use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, Instant};

use locksmith_core::{LockOptions, Locker, WaitPolicy};
use locksmith_postgres::PgBackend;
use locksmith_testkit::errors::attempt_error;
use locksmith_testkit::servers::postgres::{Postgres, postgres, postgres_tls, psql_command};
use locksmith_testkit::servers::temp_dir;
use locksmith_testkit::servers::tls::{make_client_cert, make_server_certs};

/// Generous bound for waits that should end quickly; only a hang exceeds it.
const PATIENCE: Duration = Duration::from_secs(60);
const PASSWORD: &str = "hunter2-Pw";

fn opts() -> LockOptions {
    LockOptions::new().wait(WaitPolicy::Timeout(PATIENCE))
}

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(PgBackend::from_url(url).expect("url")))
}

/// `postgres://postgres:PASSWORD@HOST:PORT/postgres?OPTIONS` (trust authentication ignores
/// the password; it is there to check that no message shows it).
fn url(pg: &Postgres, host: &str, options: &str) -> String {
    format!(
        "postgres://postgres:{PASSWORD}@{host}:{}/postgres?connect_timeout=10s&{options}",
        pg.port
    )
}

fn ca(pg: &Postgres) -> String {
    pg.tls
        .as_ref()
        .expect("a TLS cluster")
        .ca
        .display()
        .to_string()
}

fn psql(pg: &Postgres, sql: &str) -> String {
    let out: Output = psql_command(pg)
        .args(["-A", "-t", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// `ssl` of every session holding or waiting for an advisory lock, as `t`/`f` lines.
fn ssl_of_lock_sessions(pg: &Postgres) -> Vec<String> {
    let out = psql(
        pg,
        "SELECT s.ssl FROM pg_locks l JOIN pg_stat_ssl s ON s.pid = l.pid \
         WHERE l.locktype = 'advisory' ORDER BY l.granted DESC",
    );
    out.lines().map(str::to_owned).collect()
}

/// The error of a lock attempt through `url`, which must fail (within `PATIENCE`), without
/// the password in it.
async fn lock_error(url: &str, key: &str) -> String {
    attempt_error(&locker(url), key, &opts(), PATIENCE, PASSWORD).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_locks_waits_and_fences_over_tls_sessions_only() {
    let pg = postgres_tls();
    let u = url(
        pg,
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", ca(pg)),
    );
    let (a, b) = (locker(&u), locker(&u));
    let key = "tls-fenced";
    let first = a.acquire(key, &opts()).await.expect("acquire over TLS");
    let t1 = first.fencing_token();
    let waiter = tokio::spawn({
        let b = b.clone();
        async move { b.acquire(key, &opts()).await.expect("the waiter's grant") }
    });
    // The waiter's blocking call is on the server (its own connection) before the release.
    let start = Instant::now();
    while ssl_of_lock_sessions(pg).len() < 2 {
        assert!(
            start.elapsed() < PATIENCE,
            "the waiter never queued on the server"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        ssl_of_lock_sessions(pg),
        ["t", "t"],
        "the holder's and the waiter's sessions are both encrypted"
    );
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
    assert!(a.holder(key).await.expect("holder").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_ca_and_wrong_host_name_are_clear_errors_and_verify_ca_skips_the_name() {
    let pg = postgres_tls();
    let other = temp_dir("locksmith-wrong-ca-");
    let wrong = make_server_certs(other.path()).ca.display().to_string();
    for mode in ["verify-full", "verify-ca", "require"] {
        let e = lock_error(
            &url(
                pg,
                "127.0.0.1",
                &format!("sslmode={mode}&sslrootcert={wrong}"),
            ),
            "tls-wrong-ca",
        )
        .await;
        assert!(
            e.contains(&format!("not signed by the CA in sslrootcert={wrong}")),
            "{mode}: the error names the problem and the file: {e}"
        );
    }

    // The certificate names 127.0.0.1 and localhost; connect by another name (hostaddr
    // gives the address, the host is what the certificate must name).
    let by_other_name = |mode: &str| {
        url(
            pg,
            "db.invalid",
            &format!("hostaddr=127.0.0.1&sslmode={mode}&sslrootcert={}", ca(pg)),
        )
    };
    let e = lock_error(&by_other_name("verify-full"), "tls-wrong-name").await;
    assert!(
        e.contains("does not name the host `db.invalid`") && e.contains("sslmode=verify-ca"),
        "the error names the problem and the way out: {e}"
    );
    let l = locker(&by_other_name("verify-ca"));
    let g = l
        .acquire("tls-verify-ca", &opts())
        .await
        .expect("verify-ca checks the chain only");
    assert!(g.release().await.expect("release"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_against_a_server_without_tls_is_a_clear_error() {
    let plain = postgres();
    let e = lock_error(&url(plain, "127.0.0.1", "sslmode=require"), "tls-to-plain").await;
    assert!(
        e.contains("the server does not support TLS")
            && e.contains("sslmode=disable")
            && e.contains("ssl=on"),
        "the error names the problem and the fixes: {e}"
    );
    let certs = temp_dir("locksmith-ca-");
    let ca = make_server_certs(certs.path()).ca.display().to_string();
    let options = format!("sslmode=verify-full&sslrootcert={ca}");
    let e = lock_error(&url(plain, "127.0.0.1", &options), "tls-to-plain").await;
    assert!(e.contains("the server does not support TLS"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disable_and_prefer_still_work() {
    // prefer (the default) against a server without TLS: plain TCP.
    let plain = postgres();
    for options in ["", "sslmode=prefer", "sslmode=disable"] {
        let l = locker(&url(plain, "127.0.0.1", options));
        let g = l.acquire("tls-plain", &opts()).await.expect(options);
        assert!(g.release().await.expect("release"));
    }
    // Against a server with TLS: disable stays plain, prefer encrypts (without verifying).
    let pg = postgres_tls();
    for (options, ssl) in [("sslmode=disable", "f"), ("", "t"), ("sslmode=prefer", "t")] {
        let l = locker(&url(pg, "127.0.0.1", options));
        let g = l.acquire("tls-mixed", &opts()).await.expect(options);
        assert_eq!(ssl_of_lock_sessions(pg), [ssl], "`{options}`");
        assert!(g.release().await.expect("release"));
    }
}

#[test]
fn missing_or_useless_certificate_files_are_clear_errors() {
    for (options, says) in [
        (
            "sslmode=verify-full&sslrootcert=/nonexistent/locksmith-ca.pem",
            "sslrootcert: cannot read /nonexistent/locksmith-ca.pem",
        ),
        (
            "sslmode=verify-full&sslrootcert=/etc/hostname",
            "holds no PEM certificate",
        ),
        (
            "sslmode=prefer&sslrootcert=/etc/hostname",
            "sslrootcert is used only to verify the server",
        ),
        ("sslmode=verify-everything", "not a TLS mode"),
        ("sslcert=/etc/hostname", "sslcert and sslkey go together"),
    ] {
        let u = format!("postgres://u:{PASSWORD}@127.0.0.1:1/d?{options}");
        let e = PgBackend::from_url(&u).expect_err(options).to_string();
        assert!(e.contains(says), "{options}: {e}");
        assert!(!e.contains(PASSWORD), "password printed: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_logs_in_where_the_server_requires_one() {
    let pg = postgres_tls();
    let certs = pg.tls.as_ref().expect("a TLS cluster");
    // The fencing counter exists before certuser (who may not create it) comes.
    let l = locker(&url(pg, "127.0.0.1", "sslmode=disable"));
    l.acquire("tls-client-cert", &opts())
        .await
        .expect("counter")
        .release()
        .await
        .expect("release");
    psql(pg, "CREATE ROLE certuser LOGIN SUPERUSER");
    let hba = pg.dir.join("data").join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).expect("pg_hba.conf");
    std::fs::write(
        &hba,
        format!(
            "hostssl all certuser 127.0.0.1/32 cert\nhost all certuser 127.0.0.1/32 reject\n{rules}"
        ),
    )
    .expect("pg_hba.conf");
    assert_eq!(psql(pg, "SELECT pg_reload_conf()"), "t");

    let dir = temp_dir("locksmith-client-cert-");
    let (cert, key) = make_client_cert(dir.path(), certs, "certuser");
    let as_certuser = |options: &str| {
        format!(
            "postgres://certuser@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}{options}",
            pg.port,
            ca(pg)
        )
    };
    let with_cert = as_certuser(&format!(
        "&sslcert={}&sslkey={}",
        cert.display(),
        key.display()
    ));
    let l = locker(&with_cert);
    let g = l
        .acquire("tls-client-cert", &opts())
        .await
        .expect("certificate login");
    assert!(g.release().await.expect("release"));

    let e = lock_error(&as_certuser(""), "tls-client-cert").await;
    assert!(
        e.contains("certificate"),
        "the server says what is missing: {e}"
    );
}
