//! [`MySqlDriver`]: MySQL/MariaDB named locks for the shared SQL engine.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use locksmith_core::{BoxError, Error, HolderInfo, LockKey, Result};
use locksmith_sql::{Driver, Settings, counter_setup_error};
use mysql_async::prelude::Queryable;
use tokio::sync::Mutex;

use crate::hangup::{HangUp, Mark};
use crate::name::lock_name;

const TRY_LOCK: &str = include_str!("../sql/try_lock.sql");
const LOCK_WAIT: &str = include_str!("../sql/lock_wait.sql");
const UNLOCK: &str = include_str!("../sql/unlock.sql");
const HOLDER: &str = include_str!("../sql/holder.sql");
const COUNTER_EXISTS: &str = include_str!("../sql/counter_exists.sql");
/// The SQL that creates the fencing counter table.
pub const CREATE_COUNTER: &str = include_str!("../sql/create_counter.sql");

/// Seconds one blocking `GET_LOCK` waits before it is simply issued again.
const WAIT_CHUNK_SECS: u32 = 3600;

/// MySQL's and MariaDB's dialect of the shared engine.
#[derive(Debug)]
pub struct MySqlDriver {
    /// Every connection (the KILL QUERY one too) is made with these, TLS included.
    opts: crate::tls::TlsOpts,
    masked: String,
}

/// One MySQL session.
pub struct MyConn {
    conn: Mutex<mysql_async::Conn>,
    id: u32,
    /// A watch on the session's socket that sees a hang-up at once, where one could be set.
    hangup: Option<HangUp>,
}

/// Server errors meaning "you may not create this table".
fn is_denied(e: &mysql_async::Error) -> bool {
    // 1142 command denied, 1044 access denied to database, 1290 read-only.
    matches!(e, mysql_async::Error::Server(s) if matches!(s.code, 1142 | 1044 | 1290))
}

impl MySqlDriver {
    fn err(&self, name: Option<&str>, what: &str, e: mysql_async::Error) -> Error {
        let detail = match &e {
            mysql_async::Error::Server(s) => format!("{what}: {} (error {})", s.message, s.code),
            other => format!("{what}: {other}"),
        };
        Error::backend(&self.masked, name, detail, Box::new(e) as BoxError)
    }
}

#[async_trait]
impl Driver for MySqlDriver {
    type Conn = MyConn;
    type Name = String;

    fn from_url(url: &str) -> Result<(Self, Settings)> {
        let p = crate::url::parse(url)?;
        let driver = Self {
            opts: p.opts,
            masked: p.masked,
        };
        Ok((driver, p.settings))
    }

    fn scheme(&self) -> &'static str {
        "mysql"
    }

    fn display_url(&self) -> &str {
        &self.masked
    }

    fn name_of(&self, key: &LockKey) -> Result<String> {
        Ok(lock_name(key.as_str()))
    }

    async fn connect(&self) -> Result<MyConn> {
        let (conn, mark) = loop {
            let (opts, mark) = Mark::new(self.opts.current());
            match mysql_async::Conn::new(opts).await {
                Ok(conn) => break (conn, mark),
                Err(e) if self.opts.fall_back(&e) => continue,
                Err(e) => {
                    return Err(match self.opts.explain(&e) {
                        Some(why) => {
                            Error::backend(&self.masked, None, why, Box::new(e) as BoxError)
                        }
                        None => self.err(
                            None,
                            "cannot connect (is the server running, and are the host, port, \
                             user, password and database right?)",
                            e,
                        ),
                    });
                }
            }
        };
        Ok(MyConn {
            id: conn.id(),
            conn: Mutex::new(conn),
            hangup: mark.watch(),
        })
    }

    async fn warm_up(&self, conn: &MyConn) -> Result<()> {
        let mut c = conn.conn.lock().await;
        for sql in [TRY_LOCK, LOCK_WAIT, UNLOCK] {
            // Prepared statements stay in the connection's statement cache.
            c.prep(sql)
                .await
                .map_err(|e| self.err(None, "preparing locksmith's statements", e))?;
        }
        Ok(())
    }

    async fn prepare(&self, conn: &MyConn) -> Result<()> {
        let mut c = conn.conn.lock().await;
        let row: Option<(Option<String>, u64)> = c
            .query_first(COUNTER_EXISTS)
            .await
            .map_err(|e| self.err(None, "looking for the fencing counter", e))?;
        match row {
            Some((None, _)) | None => Err(Error::backend(
                &self.masked,
                None,
                "no database selected: name one in the URL (mysql://USER@HOST/DATABASE); the \
                 fencing counter table lives there",
                None,
            )),
            Some((Some(_), n)) if n > 0 => Ok(()),
            Some((Some(db), _)) => match c.query_drop(CREATE_COUNTER).await {
                Ok(()) => Ok(()),
                Err(e) if is_denied(&e) => {
                    let sql = format!(
                        "USE `{}`; {}; GRANT SELECT, INSERT, UPDATE ON locksmith_fencing TO <this user>;",
                        db.replace('`', "``"),
                        CREATE_COUNTER
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    );
                    Err(counter_setup_error(
                        &self.masked,
                        "table `locksmith_fencing`",
                        &sql,
                        Box::new(e),
                    ))
                }
                Err(e) => Err(self.err(None, "creating the fencing counter", e)),
            },
        }
    }

    async fn try_lock(&self, conn: &MyConn, name: &String, owner: &str) -> Result<Option<u64>> {
        let mut c = conn.conn.lock().await;
        c.exec_drop(TRY_LOCK, (name, owner, name))
            .await
            .map_err(|e| self.err(Some(name), "the lock attempt failed", e))?;
        if c.affected_rows() == 0 {
            return Ok(None);
        }
        token(&c).map(Some).ok_or_else(|| self.no_token(name))
    }

    async fn lock_wait(&self, conn: &MyConn, name: &String, owner: &str) -> Result<u64> {
        let mut c = conn.conn.lock().await;
        loop {
            let started = Instant::now();
            c.exec_drop(LOCK_WAIT, (name, owner, name, WAIT_CHUNK_SECS))
                .await
                .map_err(|e| self.err(Some(name), "waiting for the lock failed", e))?;
            if c.affected_rows() > 0 {
                return token(&c).ok_or_else(|| self.no_token(name));
            }
            // Not granted: the chunk timed out (wait again), or GET_LOCK returned NULL early.
            if started.elapsed() < Duration::from_secs(u64::from(WAIT_CHUNK_SECS) / 2) {
                return Err(Error::backend(
                    &self.masked,
                    Some(name),
                    "GET_LOCK returned without the lock (the wait was killed or failed on the \
                     server)",
                    None,
                ));
            }
        }
    }

    async fn unlock(&self, conn: &MyConn, name: &String) -> Result<bool> {
        let mut c = conn.conn.lock().await;
        let r: Option<Option<i64>> = c
            .exec_first(UNLOCK, (name,))
            .await
            .map_err(|e| self.err(Some(name), "the unlock failed", e))?;
        Ok(r.flatten() == Some(1))
    }

    async fn holder(&self, conn: &MyConn, name: &String) -> Result<Option<HolderInfo>> {
        let mut c = conn.conn.lock().await;
        let row: Option<(Option<u64>, Option<String>, Option<u64>)> = c
            .exec_first(HOLDER, (name, name))
            .await
            .map_err(|e| self.err(Some(name), "the holder query failed", e))?;
        Ok(match row {
            Some((Some(id), owner, token)) => Some(match owner {
                Some(o) => {
                    let info = HolderInfo::new(o);
                    match token {
                        Some(t) => info.token(locksmith_core::FencingToken(t)),
                        None => info,
                    }
                }
                None => HolderInfo::new(format!("connection {id}")),
            }),
            _ => None,
        })
    }

    async fn native_pair(&self, conn: &MyConn, name: &String) -> Result<bool> {
        let mut c = conn.conn.lock().await;
        let fail = |e| self.err(Some(name), "the native pair failed", e);
        // Prepared once per connection by the driver's statement cache, like every statement here.
        let took: Option<Option<i64>> = c
            .exec_first("SELECT GET_LOCK(?, 0)", (name,))
            .await
            .map_err(fail)?;
        let took = took.flatten() == Some(1);
        if took {
            c.exec_drop("SELECT RELEASE_LOCK(?)", (name,))
                .await
                .map_err(fail)?;
        }
        Ok(took)
    }

    fn native_pair_name(&self) -> &'static str {
        "GET_LOCK(name, 0) + RELEASE_LOCK (prepared)"
    }

    async fn ping(&self, conn: &MyConn) -> Result<()> {
        let mut c = conn.conn.lock().await;
        c.ping()
            .await
            .map_err(|e| self.err(None, "the health check failed", e))
    }

    async fn closed(&self, conn: &MyConn) -> String {
        match &conn.hangup {
            Some(h) => h.wait().await,
            None => std::future::pending().await,
        }
    }

    fn is_closed(&self, conn: &MyConn) -> bool {
        conn.hangup.as_ref().is_some_and(HangUp::seen)
    }

    async fn cancel_wait(&self, conn: &MyConn) {
        // KILL QUERY from a second connection ends the blocked GET_LOCK at once.
        let kill = async {
            let mut other = mysql_async::Conn::new(self.opts.current().clone()).await?;
            other.query_drop(format!("KILL QUERY {}", conn.id)).await?;
            other.disconnect().await
        };
        if let Err(e) = kill.await {
            tracing::debug!(error = %e, "could not cancel a server-side lock wait");
        }
    }
}

fn token(c: &mysql_async::Conn) -> Option<u64> {
    c.last_insert_id().filter(|t| *t > 0)
}

impl MySqlDriver {
    fn no_token(&self, name: &str) -> Error {
        Error::backend(
            &self.masked,
            Some(name),
            "the fencing counter update returned no token (LAST_INSERT_ID); the lock is \
             released by closing the connection",
            None,
        )
    }
}
