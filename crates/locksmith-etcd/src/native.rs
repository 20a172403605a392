//! The bare pair `locksmith bench` measures as the etcd floor: the put of the lock recipe (a
//! transaction that puts the key with the client's lease only if it does not exist yet), then a
//! transaction that deletes it only if it is still that put's key — the two round trips every
//! etcd lock needs, with no read of the line and no watch.

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};

/// What the pair is called in reports.
pub(crate) const NAME: &str = "txn put-if-absent (lease reused) + txn delete-if-same-revision";

/// Runs the pair on `key` with `lease`: `Ok(false)` when the key already existed.
pub(crate) async fn pair(
    client: &mut Client,
    key: &[u8],
    lease: i64,
) -> Result<bool, etcd_client::Error> {
    let put = Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            key,
            "",
            Some(PutOptions::new().with_lease(lease)),
        )]);
    let r = client.txn(put).await?;
    if !r.succeeded() {
        return Ok(false);
    }
    let rev = r.header().map_or(0, |h| h.revision());
    let del = Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, rev)])
        .and_then([TxnOp::delete(key, None)]);
    client.txn(del).await?;
    Ok(true)
}
