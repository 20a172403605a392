//! Running the crate's Lua scripts on a cluster: `EVALSHA` routed by the script's keys, and on
//! `NOSCRIPT` (a master that restarted, or never ran it) `EVAL` with the source on the same
//! route, which also caches it there. The `redis` crate's own fallback sends `SCRIPT LOAD` to
//! every master, which waits on any master that is down or reconnecting, stalling keys that
//! live elsewhere.

use redis::cluster_async::ClusterConnection;
use redis::{FromRedisValue, RedisResult, Script};

use crate::scripts::{ACQUIRE, RELEASE, RENEW_MANY};

/// A script this backend runs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lua {
    Acquire,
    Release,
    /// Compare-and-`PEXPIRE` of keys in one slot; here always one.
    RenewMany,
    CompareAndDelete,
}

impl Lua {
    fn script(self) -> &'static Script {
        match self {
            Lua::Acquire => &ACQUIRE,
            Lua::Release => &RELEASE,
            Lua::RenewMany => &RENEW_MANY,
            Lua::CompareAndDelete => &crate::native::COMPARE_AND_DELETE,
        }
    }

    /// The same files the `Script`s are made from, so the hashes match.
    fn source(self) -> &'static str {
        match self {
            Lua::Acquire => crate::scripts::ACQUIRE_SOURCE,
            Lua::Release => crate::scripts::RELEASE_SOURCE,
            Lua::RenewMany => include_str!("../lua/renew_many.lua"),
            Lua::CompareAndDelete => include_str!("../lua/compare_and_delete.lua"),
        }
    }

    /// Runs the script with `keys` (all in one slot) and `args`.
    ///
    /// # Errors
    /// The server's or the connection's.
    ///
    /// # Cancel safety
    /// As a single request: dropped after sending, the script may still run.
    pub(crate) async fn run<T: FromRedisValue>(
        self,
        conn: &mut ClusterConnection,
        keys: &[&str],
        args: &[&str],
    ) -> RedisResult<T> {
        let call = |verb: &str, body: &str| {
            let mut cmd = redis::cmd(verb);
            cmd.arg(body).arg(keys.len()).arg(keys).arg(args);
            cmd
        };
        match call("EVALSHA", self.script().get_hash())
            .query_async(conn)
            .await
        {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                call("EVAL", self.source()).query_async(conn).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Lua;

    #[test]
    fn sources_are_the_scripts() {
        for lua in [
            Lua::Acquire,
            Lua::Release,
            Lua::RenewMany,
            Lua::CompareAndDelete,
        ] {
            let again = redis::Script::new(lua.source());
            assert_eq!(again.get_hash(), lua.script().get_hash(), "{lua:?}");
        }
    }
}
