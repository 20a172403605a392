//! The Lua scripts, and the one way they are run: `EVALSHA` with the script's SHA1, and on
//! `NOSCRIPT` (a server that restarted, or never ran it) `EVAL` with the source on the same
//! connection, which also caches it there. (The `redis` crate's own fallback sends `SCRIPT
//! LOAD` to every master of a cluster, which waits on any master that is down, and it copies
//! every key and argument into a buffer of its own first.) Keys travel as KEYS and values as
//! ARGV: nothing is formatted into Lua. The functions several scripts share (the fencing
//! token, the fair queue) live in one file each and are prepended to the scripts that use them.

use std::sync::OnceLock;

use redis::{FromRedisValue, RedisResult, Script, ToRedisArgs};

/// Room for a script request's keys and arguments, before it would have to grow (names, the
/// value's head and tail, numbers; a batch renewal grows once).
const REQUEST_BYTES: usize = 384;

/// One of the crate's scripts: its source, and its SHA1 once first needed.
pub(crate) struct Lua {
    source: &'static str,
    script: OnceLock<Script>,
}

impl Lua {
    const fn new(source: &'static str) -> Self {
        Self {
            source,
            script: OnceLock::new(),
        }
    }

    /// The script's SHA1, as `EVALSHA` takes it.
    pub(crate) fn hash(&self) -> &str {
        self.script
            .get_or_init(|| Script::new(self.source))
            .get_hash()
    }

    /// Runs the script with `keys_and_args`: its first `numkeys` items are the KEYS (on a
    /// cluster, all in one slot: the request is routed by them), the rest the ARGV. They are
    /// written straight into the request.
    ///
    /// # Errors
    /// The server's or the connection's.
    ///
    /// # Cancel safety
    /// As a single request: dropped after sending, the script may still run.
    pub(crate) async fn run<T, A, C>(
        &self,
        conn: &mut C,
        numkeys: usize,
        keys_and_args: A,
    ) -> RedisResult<T>
    where
        T: FromRedisValue,
        A: ToRedisArgs,
        C: redis::aio::ConnectionLike,
    {
        // Sized up front: grown argument by argument, the request's buffers cost reallocations.
        let args = 3 + keys_and_args.num_of_args();
        let call = |verb: &str, body: &str| {
            let mut cmd = redis::Cmd::with_capacity(args, REQUEST_BYTES + body.len());
            cmd.arg(verb).arg(body).arg(numkeys).arg(&keys_and_args);
            cmd
        };
        match call("EVALSHA", self.hash()).query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                call("EVAL", self.source).query_async(conn).await
            }
            other => other,
        }
    }
}

/// `SET NX PX` + fence counter (lua/acquire.lua).
pub(crate) static ACQUIRE: Lua = Lua::new(concat!(
    include_str!("lua/token.lua"),
    include_str!("lua/acquire.lua")
));
/// Compare-and-delete + PUBLISH (lua/release.lua; it calls no shared function).
pub(crate) static RELEASE: Lua = Lua::new(include_str!("lua/release.lua"));
/// Fair mode: compare-and-delete and the hand-over to the next waiter (lua/release_fair.lua).
pub(crate) static RELEASE_FAIR: Lua = Lua::new(concat!(
    include_str!("lua/token.lua"),
    include_str!("lua/fair.lua"),
    include_str!("lua/release_fair.lua")
));
/// Compare-and-PEXPIRE, of one key or of many in one call (lua/renew_many.lua).
pub(crate) static RENEW_MANY: Lua = Lua::new(include_str!("lua/renew_many.lua"));
/// Redlock: raise the fence counter to the grant's token (lua/fence_writeback.lua).
pub(crate) static FENCE_WRITEBACK: Lua = Lua::new(include_str!("lua/fence_writeback.lua"));
/// Fair mode: acquire in arrival order (lua/acquire_fair.lua).
pub(crate) static ACQUIRE_FAIR: Lua = Lua::new(concat!(
    include_str!("lua/token.lua"),
    include_str!("lua/fair.lua"),
    include_str!("lua/acquire_fair.lua")
));
/// Fair mode: leave the queue (lua/leave_queue.lua).
pub(crate) static LEAVE_QUEUE: Lua = Lua::new(concat!(
    include_str!("lua/token.lua"),
    include_str!("lua/fair.lua"),
    include_str!("lua/leave_queue.lua")
));
/// Who holds a key: its value, PTTL and fence counter, read at once (lua/holder.lua).
pub(crate) static HOLDER: Lua = Lua::new(include_str!("lua/holder.lua"));
/// What [`HOLDER`] answers.
pub(crate) type HolderRead = (Option<Vec<u8>>, i64, Option<u64>);
/// Compare-and-delete of one exact value: the floor pair's release (lua/compare_and_delete.lua).
pub(crate) static COMPARE_AND_DELETE: Lua = Lua::new(include_str!("lua/compare_and_delete.lua"));
