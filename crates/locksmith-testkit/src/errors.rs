//! Checks on the errors a user sees.

use std::time::Duration;

use locksmith_core::{LockOptions, Locker};

/// The error of a `try_acquire` of `key` that must fail: within `patience` (a clear error,
/// not a hang), and without `secret` (the URL's password) anywhere in its text or debug form.
/// Returns both forms, joined by ` / `, for the caller's own checks.
pub async fn attempt_error(
    locker: &Locker,
    key: &str,
    opts: &LockOptions,
    patience: Duration,
    secret: &str,
) -> String {
    let r = tokio::time::timeout(patience, locker.try_acquire(key, opts))
        .await
        .expect("a clear error, not a hang");
    match r {
        Ok(got) => panic!("expected an error, got {got:?}"),
        Err(e) => {
            let text = format!("{e} / {e:?}");
            eprintln!("{key}: {text}");
            assert!(!text.contains(secret), "password printed: {text}");
            text
        }
    }
}
