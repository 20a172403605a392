//! Turning `redis` errors into locksmith errors that say what to check.

use std::time::Duration;

use locksmith_core::Error;
use redis::{ErrorKind, RedisError};

/// True when the error means the connection is gone and must be made again.
pub(crate) fn is_connection_error(err: &RedisError) -> bool {
    err.is_io_error()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_timeout()
        || err.is_unrecoverable_error()
}

fn is_auth_error(err: &RedisError) -> bool {
    err.kind() == ErrorKind::AuthenticationFailed
        || matches!(err.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
        // The cluster client reports a refused AUTH on its first connections as an I/O error
        // whose text names the cause.
        || err.to_string().contains("AuthenticationFailed")
}

/// A backend error for a failed request to the Redis at `url` (already masked).
pub(crate) fn request_error(
    url: &str,
    key: Option<&str>,
    err: RedisError,
    timeout: Duration,
) -> Error {
    let message = if is_auth_error(&err) {
        format!(
            "Redis refused the credentials ({err}): check the user and password in the URL \
             (redis://USER:PASSWORD@host or redis://:PASSWORD@host)"
        )
    } else if err.is_timeout() {
        format!(
            "Redis did not answer within {timeout:?}; raise command_timeout= in the URL if it \
             is slow, or check the server"
        )
    } else if err.is_connection_refusal() || err.is_io_error() || err.is_connection_dropped() {
        format!("cannot reach Redis ({err}); is redis-server running and listening there?")
    } else {
        format!("Redis error: {err}")
    };
    Error::backend(url, key, message, Some(Box::new(err) as _))
}

/// A backend error for a connect that did not finish within the connect timeout.
pub(crate) fn connect_timeout(url: &str, timeout: Duration) -> Error {
    Error::backend(
        url,
        None,
        format!(
            "no connection to Redis within the connect timeout ({timeout:?}); is the host \
             reachable? (set connect_timeout= in the URL to wait longer)"
        ),
        None,
    )
}
