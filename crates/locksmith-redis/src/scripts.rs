//! The Lua scripts, loaded once per process and run by EVALSHA (EVAL when the server does not
//! have them yet). Keys travel as KEYS and values as ARGV: nothing is formatted into Lua.
//! The functions several scripts share (the fencing token, the fair queue) live in one file
//! each and are prepended to the scripts that use them.

use std::sync::LazyLock;

use redis::Script;

/// The source of lua/acquire.lua, with the shared functions it calls.
pub(crate) const ACQUIRE_SOURCE: &str = concat!(
    include_str!("lua/token.lua"),
    include_str!("lua/acquire.lua")
);
/// The source of lua/release.lua (it calls no shared function).
pub(crate) const RELEASE_SOURCE: &str = include_str!("lua/release.lua");

/// `SET NX PX` + fence counter (lua/acquire.lua).
pub(crate) static ACQUIRE: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE_SOURCE));
/// Compare-and-delete + PUBLISH (lua/release.lua).
pub(crate) static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE_SOURCE));
/// Fair mode: compare-and-delete and the hand-over to the next waiter (lua/release_fair.lua).
pub(crate) static RELEASE_FAIR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/token.lua"),
        include_str!("lua/fair.lua"),
        include_str!("lua/release_fair.lua")
    ))
});
/// Compare-and-PEXPIRE, of one key or of many in one call (lua/renew_many.lua).
pub(crate) static RENEW_MANY: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/renew_many.lua")));
/// Redlock: raise the fence counter to the grant's token (lua/fence_writeback.lua).
pub(crate) static FENCE_WRITEBACK: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/fence_writeback.lua")));
/// Fair mode: acquire in arrival order (lua/acquire_fair.lua).
pub(crate) static ACQUIRE_FAIR: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/token.lua"),
        include_str!("lua/fair.lua"),
        include_str!("lua/acquire_fair.lua")
    ))
});
/// Fair mode: leave the queue (lua/leave_queue.lua).
pub(crate) static LEAVE_QUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("lua/token.lua"),
        include_str!("lua/fair.lua"),
        include_str!("lua/leave_queue.lua")
    ))
});
