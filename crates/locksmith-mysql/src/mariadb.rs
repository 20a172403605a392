//! MariaDB 10.3+'s fencing tokens and owner records: the next token comes from a SEQUENCE
//! in the lock statement itself, and no table is written per grant (MySQL has no sequences
//! and keeps the InnoDB counter table of [`crate::CREATE_COUNTER`]).
//!
//! - `locksmith_fencing_seq` hands out tokens from blocks of 1,000 kept in server memory,
//!   shared by every session, so tokens strictly increase across all holders of all names.
//!   A server crash skips the rest of the block in memory; it never hands a value out twice.
//! - `locksmith_owners` (`ENGINE=MEMORY`: gone when the server restarts, like the locks
//!   themselves) records each connection's owner label for `holder()`; a connection writes its
//!   row before its first attempt and again only when its label changes.

use locksmith_core::{Error, HolderInfo, Result};
use mysql_async::prelude::Queryable;

use crate::driver::{MyConn, MySqlDriver, is_denied};

const OBJECTS: &str = include_str!("../sql/mariadb/objects.sql");
const OLD_FLOOR: &str = include_str!("../sql/mariadb/old_floor.sql");
pub(crate) const TRY_LOCK: &str = include_str!("../sql/mariadb/try_lock.sql");
pub(crate) const LOCK_WAIT: &str = include_str!("../sql/mariadb/lock_wait.sql");
const SET_OWNER: &str = include_str!("../sql/mariadb/set_owner.sql");
const PRUNE_OWNERS: &str = include_str!("../sql/mariadb/prune_owners.sql");
const HOLDER: &str = include_str!("../sql/mariadb/holder.sql");

/// The SQL that creates the token sequence and the owners table on MariaDB (starting at
/// token 1; where an earlier version's `locksmith_fencing` table exists, locksmith starts
/// the sequence above its largest token).
pub const CREATE_COUNTER_MARIADB: &str = include_str!("../sql/mariadb/create_counter.sql");

/// The create SQL with its first token filled in (a number, never user input).
fn create_sql(start: u64) -> String {
    CREATE_COUNTER_MARIADB.replace("{start}", &start.to_string())
}

/// True for a server that has sequences: MariaDB 10.3 or later (`VERSION()` reads e.g.
/// `10.11.6-MariaDB-0+deb12u1`).
pub(crate) fn has_sequences(version: &str) -> bool {
    if !version.contains("MariaDB") {
        return false;
    }
    let mut parts = version.split(|c: char| !c.is_ascii_digit());
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor) >= (10, 3)
}

/// Makes sure the sequence and the owners table exist, creating what is missing.
pub(crate) async fn prepare(d: &MySqlDriver, c: &mut mysql_async::Conn) -> Result<()> {
    let row: Option<(Option<String>, u64, u64, u64)> = c
        .query_first(OBJECTS)
        .await
        .map_err(|e| d.err(None, "looking for the fencing sequence", e))?;
    let Some((Some(db), seq, owners, old)) = row else {
        return Err(d.no_database());
    };
    if seq > 0 && owners > 0 {
        return Ok(());
    }
    // Tokens never go backwards for a name an earlier version counted per name.
    let floor = if old > 0 {
        let max: Option<u64> = c
            .query_first(OLD_FLOOR)
            .await
            .map_err(|e| d.err(None, "reading the earlier counter table", e))?;
        max.unwrap_or(0)
    } else {
        0
    };
    let sql = create_sql(floor + 1);
    match c.query_drop(&sql).await {
        Ok(()) => Ok(()),
        Err(e) if is_denied(&e) => {
            let run = format!(
                "USE `{}`; {}; GRANT SELECT, INSERT ON locksmith_fencing_seq TO <this user>; \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON locksmith_owners TO <this user>;",
                db.replace('`', "``"),
                sql.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            Err(locksmith_sql::counter_setup_error(
                d.display(),
                "sequence `locksmith_fencing_seq` (or the table `locksmith_owners`)",
                &run,
                Box::new(e),
            ))
        }
        Err(e) => Err(d.err(None, "creating the fencing sequence", e)),
    }
}

/// Records `owner` as this connection's label unless it already is. A new connection first
/// forgets the labels of this account's connections that are gone (best effort).
async fn record_owner(
    d: &MySqlDriver,
    conn: &MyConn,
    c: &mut mysql_async::Conn,
    owner: &str,
) -> Result<()> {
    let first = {
        let known = conn.owner();
        if known.as_deref() == Some(owner) {
            return Ok(());
        }
        known.is_none()
    };
    if first && let Err(e) = c.query_drop(PRUNE_OWNERS).await {
        tracing::debug!(error = %e, "could not prune the owner records of closed connections");
    }
    c.exec_drop(SET_OWNER, (owner,))
        .await
        .map_err(|e| d.err(None, "recording the owner label", e))?;
    *conn.owner() = Some(owner.to_owned());
    Ok(())
}

fn token(t: Option<Option<i64>>) -> Option<u64> {
    t.flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|t| *t > 0)
}

/// One attempt: the token when granted, `None` when busy.
pub(crate) async fn try_lock(
    d: &MySqlDriver,
    conn: &MyConn,
    name: &str,
    owner: &str,
) -> Result<Option<u64>> {
    let mut c = conn.conn.lock().await;
    record_owner(d, conn, &mut c, owner).await?;
    let fail = |e| d.err(Some(name), "the lock attempt failed", e);
    let stmt = conn.prepared(&mut c, TRY_LOCK).await.map_err(fail)?;
    let t: Option<Option<i64>> = c.exec_first(&stmt, (name,)).await.map_err(fail)?;
    Ok(token(t))
}

/// One blocking wait of up to `secs`: the token when granted, `None` when it ended without
/// the lock (timed out, or killed).
pub(crate) async fn lock_wait_once(
    d: &MySqlDriver,
    conn: &MyConn,
    c: &mut mysql_async::Conn,
    name: &str,
    owner: &str,
    secs: u32,
) -> Result<Option<u64>> {
    record_owner(d, conn, c, owner).await?;
    let fail = |e| d.err(Some(name), "waiting for the lock failed", e);
    let stmt = conn.prepared(c, LOCK_WAIT).await.map_err(fail)?;
    let t: Option<Option<i64>> = c.exec_first(&stmt, (name, secs)).await.map_err(fail)?;
    Ok(token(t))
}

/// Who holds `name`: the owner label its connection recorded, else the connection id.
pub(crate) async fn holder(
    d: &MySqlDriver,
    conn: &MyConn,
    name: &str,
) -> Result<Option<HolderInfo>> {
    let mut c = conn.conn.lock().await;
    let row: Option<(Option<u64>, Option<String>)> = c
        .exec_first(HOLDER, (name,))
        .await
        .map_err(|e| d.err(Some(name), "the holder query failed", e))?;
    Ok(match row {
        Some((Some(_), Some(owner))) => Some(HolderInfo::new(owner)),
        Some((Some(id), None)) => Some(HolderInfo::new(format!("connection {id}"))),
        _ => None,
    })
}

/// An error for a wait that ended early without the lock.
pub(crate) fn ended_early(d: &MySqlDriver, name: &str) -> Error {
    Error::backend(
        d.display(),
        Some(name),
        "GET_LOCK returned without the lock (the wait was killed or failed on the server)",
        None,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_from_mariadb_10_3() {
        assert!(has_sequences("10.11.6-MariaDB-0+deb12u1"));
        assert!(has_sequences("10.3.39-MariaDB"));
        assert!(has_sequences("11.4.2-MariaDB"));
        assert!(!has_sequences("10.2.44-MariaDB"));
        assert!(!has_sequences("8.0.36"));
        assert!(!has_sequences("5.7.44-log"));
    }

    #[test]
    fn create_sql_starts_where_asked() {
        let sql = create_sql(42);
        assert!(sql.contains("START WITH 42 "), "{sql}");
        assert!(!sql.contains('{'), "{sql}");
    }
}
