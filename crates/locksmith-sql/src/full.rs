//! A server without a free connection, worded once for every SQL backend.

/// What to say when the server refuses a new connection because its limit (`limits`, as the
/// server names them) is reached: the cause, what uses connections here, and what to do.
pub fn no_free_connection(limits: &str) -> String {
    format!(
        "the server has no connection free ({limits}): this process holds one connection per \
         held lock and per key it waits on, so hold or wait on fewer keys at once, or raise \
         the limit"
    )
}
