//! MariaDB's token sequence and owner records on a private MariaDB: tokens start above the
//! per-name counter table of earlier versions, a blocked wait holds up no attempt on another
//! key, and a new connection forgets the owner records of its account's closed connections.

use std::sync::Arc;
use std::time::Duration;

use locksmith_core::{LockOptions, Locker};
use locksmith_mysql::MySqlBackend;
use locksmith_testkit::servers::mariadb::{MariaDb, client_sql, mariadb};
use mysql_async::prelude::Queryable;

const PATIENCE: Duration = Duration::from_secs(60);

fn opts() -> LockOptions {
    LockOptions::new().wait_for(PATIENCE)
}

fn locker(url: &str) -> Locker {
    Locker::new(Arc::new(MySqlBackend::from_url(url).expect("url")))
}

/// A fresh database of its own on the shared server, and its URL.
fn database(db: &MariaDb, name: &str) -> String {
    client_sql(db, &format!("CREATE DATABASE IF NOT EXISTS {name}"));
    format!(
        "mysql://root@127.0.0.1:{}/{name}?prefer_socket=false",
        db.port
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_start_above_the_old_per_name_counter_table() {
    let db = mariadb();
    let url = database(db, "upgrade_from_counter_table");
    client_sql(
        db,
        &format!(
            "USE upgrade_from_counter_table; {}; \
             INSERT INTO locksmith_fencing VALUES ('jobs', 5000, 'old', 1), ('other', 7, 'old', 2)",
            locksmith_mysql::CREATE_COUNTER
        ),
    );
    let l = locker(&url);
    let g = l.acquire("jobs", &opts()).await.unwrap();
    assert!(g.fencing_token().get() > 5000, "{}", g.fencing_token());
    let first = g.fencing_token();
    assert!(g.release().await.unwrap());
    let g = l.acquire("other", &opts()).await.unwrap();
    assert!(g.fencing_token() > first, "one sequence for every name");
    assert!(g.release().await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_wait_holds_up_no_attempt_on_another_key() {
    let db = mariadb();
    let url = database(db, "blocked_wait");
    let (a, b, c) = (locker(&url), locker(&url), locker(&url));
    let held = a.acquire("busy", &opts()).await.unwrap();
    let waiter = tokio::spawn(async move {
        let g = b.acquire("busy", &opts()).await.unwrap();
        let t = g.fencing_token();
        assert!(g.release().await.unwrap());
        t
    });
    // Let the waiter's blocking statement reach the server.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Still held by `a` and waited for by `b`: an attempt on another key must not queue
    // behind that wait (it would hang until `a` releases, which happens only after this).
    let other = tokio::time::timeout(PATIENCE, c.try_acquire("free", &opts()))
        .await
        .expect("an attempt on a free key answered while another key's wait was blocked")
        .unwrap()
        .expect("the free key is granted");
    assert!(c.holder("busy").await.unwrap().is_some());
    assert!(other.release().await.unwrap());
    let token = held.fencing_token();
    assert!(held.release().await.unwrap());
    assert!(waiter.await.unwrap() > token);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connection_forgets_owner_records_of_closed_connections() {
    let db = mariadb();
    let url = database(db, "owner_records");
    let l = locker(&url);
    // Creates the objects.
    l.acquire("k", &opts())
        .await
        .unwrap()
        .release()
        .await
        .unwrap();
    // Records of connection ids that are not open (ids never get that large here): one under
    // the account locksmith's connections use, one under another account.
    let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap())
        .await
        .unwrap();
    c.query_drop(
        "INSERT INTO locksmith_owners VALUES (987654321, 'gone', CURRENT_USER()), \
         (987654322, 'other account', 'someone@%')",
    )
    .await
    .unwrap();
    c.disconnect().await.unwrap();
    let g = locker(&url)
        .acquire("k", &opts().owner("fresh-owner"))
        .await
        .unwrap();
    assert_eq!(
        l.holder("k").await.unwrap().expect("held").owner,
        "fresh-owner"
    );
    // This account's record of a closed connection is gone; the other account's stays (this
    // account cannot see whether that account's connections are open).
    let left = client_sql(
        db,
        "SELECT holder_id FROM owner_records.locksmith_owners WHERE holder_id > 987654320 \
         ORDER BY holder_id",
    );
    assert_eq!(left, "987654322");
    assert!(g.release().await.unwrap());
}
