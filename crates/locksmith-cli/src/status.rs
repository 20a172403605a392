//! `locksmith status`: who holds a key.

use std::time::{Duration, UNIX_EPOCH};

use locksmith::{LockKey, Locker, show_key};
use serde::Serialize;

use crate::args::StatusArgs;
use crate::exit::Failure;

/// `--json` output: one object, `null` where the backend cannot tell.
#[derive(Debug, Serialize)]
struct Report<'a> {
    key: &'a str,
    held: bool,
    owner: Option<&'a str>,
    fencing_token: Option<u64>,
    since_unix_ms: Option<u64>,
    lease_left_ms: Option<u64>,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Prints who holds the key. Exit 0 whether it is held or free.
///
/// # Errors
/// 64 for an invalid key, 69 when the backend cannot be reached or cannot tell.
pub(crate) async fn status(
    locker: &Locker,
    key: LockKey,
    args: &StatusArgs,
) -> Result<u8, Failure> {
    let holder = locker.holder(&key).await?;
    if args.json {
        let h = holder.as_ref();
        let report = Report {
            key: key.as_str(),
            held: h.is_some(),
            owner: h.map(|h| h.owner.as_str()),
            fencing_token: h.and_then(|h| h.token).map(|t| t.get()),
            since_unix_ms: h
                .and_then(|h| h.since)
                .and_then(|s| s.duration_since(UNIX_EPOCH).ok())
                .map(millis),
            lease_left_ms: h.and_then(|h| h.lease_left).map(millis),
        };
        let line = serde_json::to_string(&report).map_err(|e| {
            Failure::new(crate::exit::UNAVAILABLE, format!("cannot write JSON: {e}"))
        })?;
        println!("{line}");
    } else {
        match holder {
            Some(h) => println!("{} is held by {h}", show_key(key.as_str())),
            None => println!("{} is free", show_key(key.as_str())),
        }
    }
    Ok(0)
}
