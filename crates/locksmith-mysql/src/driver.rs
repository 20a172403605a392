//! [`MySqlDriver`]: MySQL/MariaDB named locks for the shared SQL engine.

use std::sync::{MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use locksmith_core::{BoxError, Error, HolderInfo, LockKey, Result};
use locksmith_sql::{Driver, Settings, counter_setup_error, no_free_connection};
use mysql_async::prelude::Queryable;
use tokio::sync::Mutex;

use crate::hangup::{HangUp, Mark};
use crate::mariadb;
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
    /// How tokens are made on this server, learnt from `VERSION()` by the first `prepare`.
    tokens: OnceLock<Tokens>,
}

/// Where fencing tokens come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tokens {
    /// MySQL (and MariaDB before 10.3): the InnoDB counter table, one row per name.
    CounterTable,
    /// MariaDB 10.3+: the sequence, with owner labels in a MEMORY table (see `mariadb.rs`).
    Sequence,
}

/// One MySQL session.
pub struct MyConn {
    pub(crate) conn: Mutex<mysql_async::Conn>,
    id: u32,
    /// A watch on the session's socket that sees a hang-up at once, where one could be set.
    hangup: Option<HangUp>,
    /// The owner label this connection recorded on MariaDB (`None`: none yet).
    owner: std::sync::Mutex<Option<String>>,
    /// locksmith's statements prepared on this connection, by their text.
    prepared: std::sync::Mutex<Vec<(&'static str, mysql_async::Statement)>>,
}

/// The driver's statement cache must hold every statement locksmith keeps prepared (see
/// [`MyConn::prepared`]): a statement it evicts is closed on the server.
pub(crate) const MIN_STMT_CACHE: usize = 32;

impl MyConn {
    pub(crate) fn owner(&self) -> MutexGuard<'_, Option<String>> {
        self.owner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `sql` (one of locksmith's statements) prepared on this connection, once. Executing the
    /// prepared statement skips what executing by text costs on every call: the driver parses
    /// the whole text (documentation comments included) before its cache lookup.
    ///
    /// # Errors
    /// The driver's, when preparing fails.
    pub(crate) async fn prepared(
        &self,
        c: &mut mysql_async::Conn,
        sql: &'static str,
    ) -> std::result::Result<mysql_async::Statement, mysql_async::Error> {
        let known = self
            .held()
            .iter()
            // locksmith's statements are constants: the same text is the same pointer.
            .find(|(text, _)| std::ptr::eq(*text, sql) || *text == sql)
            .map(|(_, s)| s.clone());
        if let Some(stmt) = known {
            return Ok(stmt);
        }
        let stmt = c.prep(sql).await?;
        self.held().push((sql, stmt.clone()));
        Ok(stmt)
    }

    fn held(&self) -> MutexGuard<'_, Vec<(&'static str, mysql_async::Statement)>> {
        self.prepared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Server errors meaning "you may not create this table".
pub(crate) fn is_denied(e: &mysql_async::Error) -> bool {
    // 1142 command denied, 1044 access denied to database, 1290 read-only.
    matches!(e, mysql_async::Error::Server(s) if matches!(s.code, 1142 | 1044 | 1290))
}

impl MySqlDriver {
    pub(crate) fn err(&self, name: Option<&str>, what: &str, e: mysql_async::Error) -> Error {
        let detail = match &e {
            mysql_async::Error::Server(s) => format!("{what}: {} (error {})", s.message, s.code),
            other => format!("{what}: {other}"),
        };
        Error::backend(&self.masked, name, detail, Box::new(e) as BoxError)
    }
}

impl Driver for MySqlDriver {
    type Conn = MyConn;
    type Name = String;

    fn from_url(url: &str) -> Result<(Self, Settings)> {
        let p = crate::url::parse(url)?;
        let driver = Self {
            opts: p.opts,
            masked: p.masked,
            tokens: OnceLock::new(),
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
                        // ER_CON_COUNT_ERROR, ER_TOO_MANY_USER_CONNECTIONS,
                        // ER_USER_LIMIT_REACHED.
                        None if matches!(&e, mysql_async::Error::Server(s)
                            if matches!(s.code, 1040 | 1203 | 1226)) =>
                        {
                            self.err(
                                None,
                                &no_free_connection(
                                    "max_connections, or the account's max_user_connections",
                                ),
                                e,
                            )
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
            owner: std::sync::Mutex::new(None),
            prepared: std::sync::Mutex::new(Vec::new()),
        })
    }

    async fn warm_up(&self, conn: &MyConn) -> Result<()> {
        let mut c = conn.conn.lock().await;
        let (try_lock, lock_wait) = match self.tokens() {
            Tokens::CounterTable => (TRY_LOCK, LOCK_WAIT),
            Tokens::Sequence => (mariadb::TRY_LOCK, mariadb::LOCK_WAIT),
        };
        for sql in [try_lock, lock_wait, UNLOCK] {
            conn.prepared(&mut c, sql)
                .await
                .map_err(|e| self.err(None, "preparing locksmith's statements", e))?;
        }
        Ok(())
    }

    async fn prepare(&self, conn: &MyConn) -> Result<()> {
        let mut c = conn.conn.lock().await;
        let version: Option<String> = c
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| self.err(None, "asking the server's version", e))?;
        let tokens = match version {
            Some(v) if mariadb::has_sequences(&v) => Tokens::Sequence,
            _ => Tokens::CounterTable,
        };
        let _ = self.tokens.set(tokens);
        if tokens == Tokens::Sequence {
            return mariadb::prepare(self, &mut c).await;
        }
        let row: Option<(Option<String>, u64)> = c
            .query_first(COUNTER_EXISTS)
            .await
            .map_err(|e| self.err(None, "looking for the fencing counter", e))?;
        match row {
            Some((None, _)) | None => Err(self.no_database()),
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
        if self.tokens() == Tokens::Sequence {
            return mariadb::try_lock(self, conn, name, owner).await;
        }
        let mut c = conn.conn.lock().await;
        let fail = |e| self.err(Some(name), "the lock attempt failed", e);
        let stmt = conn.prepared(&mut c, TRY_LOCK).await.map_err(fail)?;
        c.exec_drop(&stmt, (name, owner, name))
            .await
            .map_err(fail)?;
        if c.affected_rows() == 0 {
            return Ok(None);
        }
        token(&c).map(Some).ok_or_else(|| self.no_token(name))
    }

    async fn lock_wait(&self, conn: &MyConn, name: &String, owner: &str) -> Result<u64> {
        let mut c = conn.conn.lock().await;
        loop {
            let started = Instant::now();
            if self.tokens() == Tokens::Sequence {
                let granted =
                    mariadb::lock_wait_once(self, conn, &mut c, name, owner, WAIT_CHUNK_SECS)
                        .await?;
                if let Some(t) = granted {
                    return Ok(t);
                }
                if started.elapsed() < Duration::from_secs(u64::from(WAIT_CHUNK_SECS) / 2) {
                    return Err(mariadb::ended_early(self, name));
                }
                continue;
            }
            let fail = |e| self.err(Some(name), "waiting for the lock failed", e);
            let stmt = conn.prepared(&mut c, LOCK_WAIT).await.map_err(fail)?;
            c.exec_drop(&stmt, (name, owner, name, WAIT_CHUNK_SECS))
                .await
                .map_err(fail)?;
            if c.affected_rows() > 0 {
                return token(&c).ok_or_else(|| self.no_token(name));
            }
            // Not granted: the chunk timed out (wait again), or GET_LOCK returned NULL early.
            if started.elapsed() < Duration::from_secs(u64::from(WAIT_CHUNK_SECS) / 2) {
                return Err(mariadb::ended_early(self, name));
            }
        }
    }

    async fn unlock(&self, conn: &MyConn, name: &String) -> Result<bool> {
        let mut c = conn.conn.lock().await;
        let fail = |e| self.err(Some(name), "the unlock failed", e);
        let stmt = conn.prepared(&mut c, UNLOCK).await.map_err(fail)?;
        let r: Option<Option<i64>> = c.exec_first(&stmt, (name,)).await.map_err(fail)?;
        Ok(r.flatten() == Some(1))
    }

    async fn holder(&self, conn: &MyConn, name: &String) -> Result<Option<HolderInfo>> {
        if self.tokens() == Tokens::Sequence {
            return mariadb::holder(self, conn, name).await;
        }
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
    /// The token scheme learnt by `prepare` (which the engine runs before any lock).
    fn tokens(&self) -> Tokens {
        self.tokens.get().copied().unwrap_or(Tokens::CounterTable)
    }

    /// The URL with the password masked.
    pub(crate) fn display(&self) -> &str {
        &self.masked
    }

    pub(crate) fn no_database(&self) -> Error {
        Error::backend(
            &self.masked,
            None,
            "no database selected: name one in the URL (mysql://USER@HOST/DATABASE); the \
             fencing counter lives there",
            None,
        )
    }

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
