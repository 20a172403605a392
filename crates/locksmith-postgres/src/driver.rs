//! [`PgDriver`]: PostgreSQL's advisory-lock primitives for the shared SQL engine.

use std::sync::Mutex;

use locksmith_core::{Error, HolderInfo, LockKey, Result};
use locksmith_sql::{Driver, Settings, counter_setup_error, no_free_connection};
use tokio::sync::{OnceCell, watch};
use tokio_postgres::error::SqlState;
use tokio_postgres::{CancelToken, Client, Statement};

use crate::key::{advisory_id, numeric_id};

const TRY_LOCK: &str = include_str!("../sql/try_lock.sql");
const TRY_LOCK_SAME_OWNER: &str = include_str!("../sql/try_lock_same_owner.sql");
const LOCK_WAIT: &str = include_str!("../sql/lock_wait.sql");
const LOCK_WAIT_SAME_OWNER: &str = include_str!("../sql/lock_wait_same_owner.sql");
const UNLOCK: &str = include_str!("../sql/unlock.sql");
const HOLDER: &str = include_str!("../sql/holder.sql");
const COUNTER_EXISTS: &str = include_str!("../sql/counter_exists.sql");
/// The SQL that creates the fencing counter.
pub const CREATE_COUNTER: &str = include_str!("../sql/create_counter.sql");

/// PostgreSQL's dialect of the shared engine.
#[derive(Debug)]
pub struct PgDriver {
    config: tokio_postgres::Config,
    /// Every connection (and every cancel request) negotiates TLS with this.
    tls: crate::tls::PgTls,
    masked: String,
}

/// The statements of one connection, prepared on first use.
struct Statements {
    try_lock: Statement,
    try_lock_same_owner: Statement,
    lock_wait: Statement,
    lock_wait_same_owner: Statement,
    unlock: Statement,
    holder: Statement,
}

/// One PostgreSQL session.
pub struct PgConn {
    client: Client,
    cancel: CancelToken,
    /// `Some(reason)` once the connection task has ended.
    ended: watch::Receiver<Option<String>>,
    statements: OnceCell<Statements>,
    /// `pg_try_advisory_lock($1)` and `pg_advisory_unlock($1)`, prepared when the benchmark
    /// floor first runs on this session.
    native: OnceCell<(Statement, Statement)>,
    /// The owner label this session's `application_name` carries now.
    owner: Mutex<String>,
}

impl PgDriver {
    fn err(&self, key: Option<&str>, what: &str, e: tokio_postgres::Error) -> Error {
        let detail = match e.as_db_error() {
            Some(db) => format!("{what}: {} ({})", db.message(), db.code().code()),
            None => format!("{what}: {e}"),
        };
        Error::backend(
            &self.masked,
            key,
            detail,
            Box::new(e) as locksmith_core::BoxError,
        )
    }

    async fn statements<'c>(&self, conn: &'c PgConn) -> Result<&'c Statements> {
        if let Some(st) = conn.statements.get() {
            return Ok(st);
        }
        // The first use on a connection prepares them all: boxed, so that the future of every
        // statement is not as large as that (it was copied into each call's box).
        Box::pin(self.prepare_statements(conn)).await
    }

    async fn prepare_statements<'c>(&self, conn: &'c PgConn) -> Result<&'c Statements> {
        conn.statements
            .get_or_try_init(|| async {
                let c = &conn.client;
                // PostgreSQL 14+ then notices a vanished client even while it waits for a
                // lock; sent in the same round trip as the statements.
                let check = async {
                    if let Err(e) = c
                        .batch_execute("SET client_connection_check_interval = 1000")
                        .await
                    {
                        tracing::debug!(error = %e, "client_connection_check_interval not set (PostgreSQL < 14?)");
                    }
                    Ok(())
                };
                let (_, a, b, w, ws, u, h) = tokio::try_join!(
                    check,
                    c.prepare(TRY_LOCK),
                    c.prepare(TRY_LOCK_SAME_OWNER),
                    c.prepare(LOCK_WAIT),
                    c.prepare(LOCK_WAIT_SAME_OWNER),
                    c.prepare(UNLOCK),
                    c.prepare(HOLDER),
                )
                .map_err(|e| self.err(None, "preparing locksmith's statements", e))?;
                Ok(Statements {
                    try_lock: a,
                    try_lock_same_owner: b,
                    lock_wait: w,
                    lock_wait_same_owner: ws,
                    unlock: u,
                    holder: h,
                })
            })
            .await
    }

    fn owner_is(conn: &PgConn, owner: &str) -> bool {
        *conn
            .owner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            == owner
    }

    fn set_owner(conn: &PgConn, owner: &str) {
        *conn
            .owner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = owner.to_owned();
    }
}

fn token(t: i64) -> u64 {
    // A sequence with MINVALUE 1 never yields less than 1.
    u64::try_from(t).unwrap_or(0)
}

fn key_of(name: &i64) -> String {
    format!("#{name}")
}

impl Driver for PgDriver {
    type Conn = PgConn;
    type Name = i64;

    fn from_url(url: &str) -> Result<(Self, Settings)> {
        let p = crate::url::parse(url)?;
        let tls = crate::tls::PgTls::new(p.tls, &p.config, &p.masked)?;
        let driver = Self {
            config: p.config,
            tls,
            masked: p.masked,
        };
        Ok((driver, p.settings))
    }

    fn scheme(&self) -> &'static str {
        "postgres"
    }

    fn display_url(&self) -> &str {
        &self.masked
    }

    fn name_of(&self, key: &LockKey) -> Result<i64> {
        advisory_id(key)
    }

    fn check_name(&self, key: &LockKey) -> Result<()> {
        numeric_id(key).map(drop)
    }

    async fn connect(&self) -> Result<PgConn> {
        let (client, connection) =
            self.config
                .connect(self.tls.connector())
                .await
                .map_err(|e| match self.tls.explain(&e) {
                    Some(why) => Error::backend(
                        &self.masked,
                        None,
                        why,
                        Box::new(e) as locksmith_core::BoxError,
                    ),
                    None if e.code() == Some(&SqlState::TOO_MANY_CONNECTIONS) => self.err(
                        None,
                        &no_free_connection("max_connections, or the role's CONNECTION LIMIT"),
                        e,
                    ),
                    None => self.err(
                        None,
                        "cannot connect (is the server running, and are the host, port, user, \
                     password and database right?)",
                        e,
                    ),
                })?;
        let (tx, ended) = watch::channel(None);
        tokio::spawn(async move {
            let why = match connection.await {
                Ok(()) => "the connection was closed".to_owned(),
                Err(e) => match e.as_db_error() {
                    Some(db) => format!("{} ({})", db.message(), db.code().code()),
                    None => e.to_string(),
                },
            };
            let _ = tx.send(Some(why));
        });
        Ok(PgConn {
            cancel: client.cancel_token(),
            client,
            ended,
            statements: OnceCell::new(),
            native: OnceCell::new(),
            owner: Mutex::new(String::new()),
        })
    }

    async fn warm_up(&self, conn: &PgConn) -> Result<()> {
        self.statements(conn).await.map(drop)
    }

    async fn prepare(&self, conn: &PgConn) -> Result<()> {
        let c = &conn.client;
        let present: bool = c
            .query_one(COUNTER_EXISTS, &[])
            .await
            .map_err(|e| self.err(None, "looking for the fencing counter", e))?
            .get(0);
        if present {
            return Ok(());
        }
        match c.batch_execute(CREATE_COUNTER).await {
            Ok(()) => Ok(()),
            Err(e) => match e.code() {
                // Created meanwhile by another session.
                Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::DUPLICATE_TABLE => {
                    Ok(())
                }
                Some(c)
                    if *c == SqlState::INSUFFICIENT_PRIVILEGE
                        || *c == SqlState::READ_ONLY_SQL_TRANSACTION =>
                {
                    let sql = format!(
                        "{}; GRANT USAGE ON SEQUENCE locksmith_fencing_token TO {};",
                        CREATE_COUNTER.trim(),
                        self.config.get_user().unwrap_or("<this role>")
                    );
                    Err(counter_setup_error(
                        &self.masked,
                        "sequence `locksmith_fencing_token`",
                        &sql,
                        Box::new(e),
                    ))
                }
                _ => Err(self.err(None, "creating the fencing counter", e)),
            },
        }
    }

    async fn try_lock(&self, conn: &PgConn, name: &i64, owner: &str) -> Result<Option<u64>> {
        let st = self.statements(conn).await?;
        let row = if Self::owner_is(conn, owner) {
            conn.client
                .query_one(&st.try_lock_same_owner, &[name])
                .await
        } else {
            let r = conn.client.query_one(&st.try_lock, &[name, &owner]).await;
            if r.is_ok() {
                Self::set_owner(conn, owner);
            }
            r
        }
        .map_err(|e| self.err(Some(&key_of(name)), "the lock attempt failed", e))?;
        Ok(row.get::<_, Option<i64>>(0).map(token))
    }

    async fn lock_wait(&self, conn: &PgConn, name: &i64, owner: &str) -> Result<u64> {
        let st = self.statements(conn).await?;
        let row = if Self::owner_is(conn, owner) {
            conn.client
                .query_one(&st.lock_wait_same_owner, &[name])
                .await
        } else {
            let r = conn.client.query_one(&st.lock_wait, &[name, &owner]).await;
            if r.is_ok() {
                Self::set_owner(conn, owner);
            }
            r
        }
        .map_err(|e| self.err(Some(&key_of(name)), "waiting for the lock failed", e))?;
        Ok(token(row.get(0)))
    }

    async fn unlock(&self, conn: &PgConn, name: &i64) -> Result<bool> {
        let st = self.statements(conn).await?;
        let released = conn
            .client
            .execute(&st.unlock, &[name])
            .await
            .map_err(|e| self.err(Some(&key_of(name)), "the unlock failed", e))?;
        Ok(released == 1)
    }

    async fn holder(&self, conn: &PgConn, name: &i64) -> Result<Option<HolderInfo>> {
        let st = self.statements(conn).await?;
        let (classid, objid) = ((*name as u64 >> 32) as u32, *name as u64 as u32);
        let row = conn
            .client
            .query_opt(&st.holder, &[&classid, &objid])
            .await
            .map_err(|e| self.err(Some(&key_of(name)), "the holder query failed", e))?;
        Ok(row.map(|r| {
            let pid: i32 = r.get("pid");
            let owner: Option<String> = r.get("owner");
            match owner.filter(|o| !o.is_empty()) {
                Some(o) => HolderInfo::new(o),
                None => HolderInfo::new(format!("backend pid {pid}")),
            }
        }))
    }

    async fn native_pair(&self, conn: &PgConn, name: &i64) -> Result<bool> {
        let fail = |e| self.err(Some(&key_of(name)), "the native pair failed", e);
        let (lock, unlock) = conn
            .native
            .get_or_try_init(|| async {
                tokio::try_join!(
                    conn.client.prepare("SELECT pg_try_advisory_lock($1)"),
                    conn.client.prepare("SELECT pg_advisory_unlock($1)"),
                )
            })
            .await
            .map_err(fail)?;
        let took: bool = conn
            .client
            .query_one(lock, &[name])
            .await
            .map_err(fail)?
            .get(0);
        if took {
            conn.client.query_one(unlock, &[name]).await.map_err(fail)?;
        }
        Ok(took)
    }

    fn native_pair_name(&self) -> &'static str {
        "pg_try_advisory_lock + pg_advisory_unlock (prepared)"
    }

    async fn ping(&self, conn: &PgConn) -> Result<()> {
        conn.client
            .simple_query("")
            .await
            .map(drop)
            .map_err(|e| self.err(None, "the health check failed", e))
    }

    async fn closed(&self, conn: &PgConn) -> String {
        let mut rx = conn.ended.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            Err(_) => "the connection task ended".to_owned(),
        }
    }

    async fn cancel_wait(&self, conn: &PgConn) {
        if let Err(e) = conn.cancel.cancel_query(self.tls.connector()).await {
            tracing::debug!(error = %e, "could not cancel a server-side lock wait");
        }
    }

    fn is_closed(&self, conn: &PgConn) -> bool {
        conn.client.is_closed()
    }
}
