//! The bare pair `locksmith bench` measures as the Redis floor: `SET key value NX PX ttl`, then
//! a compare-and-delete script (EVALSHA) — the two round trips any safe SET-NX lock needs, with
//! no fencing counter, no channel and no owner record.

use locksmith_core::{Error, Result};

use crate::conn::Node;
pub(crate) use crate::layout::secret;
use crate::scripts::COMPARE_AND_DELETE;

/// What the pair is called in reports.
pub(crate) const NAME: &str = "SET NX PX + EVALSHA compare-and-delete";

/// The lease the floor's `SET` asks for; the pair deletes the key at once.
const TTL_MS: u64 = 30_000;

/// `SET lock value NX PX` on `node`: `true` when set, `false` when the key was held.
pub(crate) async fn set_nx(node: &Node, lock: &str, value: &str) -> Result<bool> {
    let live = node.live().await?;
    let mut conn = live.conn.clone();
    let set: Option<String> = redis::cmd("SET")
        .arg(lock)
        .arg(value)
        .arg("NX")
        .arg("PX")
        .arg(TTL_MS)
        .query_async(&mut conn)
        .await
        .map_err(|e| node.failed(&live, Some(lock), e))?;
    Ok(set.is_some())
}

/// The compare-and-delete script on `node`: `true` when the key held `value` and is gone.
pub(crate) async fn compare_and_delete(node: &Node, lock: &str, value: &str) -> Result<bool> {
    let live = node.live().await?;
    let mut conn = live.conn.clone();
    let deleted: i64 = COMPARE_AND_DELETE
        .run(&mut conn, 1, (lock, value))
        .await
        .map_err(|e| node.failed(&live, Some(lock), e))?;
    Ok(deleted == 1)
}

/// The error for a floor key that someone else holds.
pub(crate) fn busy(url: &str, lock: &str) -> Error {
    Error::backend(
        url,
        Some(lock),
        "the key is held; the native pair does not wait",
        None,
    )
}

/// The pair on one node.
pub(crate) async fn pair(node: &Node, url: &str, lock: &str) -> Result<()> {
    let value = secret();
    if !set_nx(node, lock, &value).await? {
        return Err(busy(url, lock));
    }
    compare_and_delete(node, lock, &value).await?;
    Ok(())
}
