//! The etcd transactions of the lock recipe: enqueue, check, release, look up the holder.
//! Keys and values travel as request fields; nothing is ever formatted into a query.

use etcd_client::{
    Client, Compare, CompareOp, GetOptions, KeyValue, PutOptions, SortOrder, SortTarget, Txn,
    TxnOp, TxnOpResponse, TxnResponse,
};

/// A lock contender as seen on the server: its key and create revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Contender {
    pub(crate) key: Vec<u8>,
    pub(crate) create_rev: i64,
}

/// The contenders of the lock under `prefix`: its direct children (no `/` after the prefix),
/// in create-revision order. Deeper keys belong to other locks (`a/b` under `a/`) and must not
/// count, or locks `a` and `a/b` could wait on each other.
pub(crate) fn contenders(prefix: &[u8], kvs: &[KeyValue]) -> Vec<Contender> {
    let mut out: Vec<Contender> = kvs
        .iter()
        .filter(|kv| {
            kv.key()
                .strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty() && !rest.contains(&b'/'))
        })
        .map(|kv| Contender {
            key: kv.key().to_vec(),
            create_rev: kv.create_revision(),
        })
        .collect();
    out.sort_by_key(|c| c.create_rev);
    out
}

fn list_opts() -> GetOptions {
    GetOptions::new()
        .with_prefix()
        .with_sort(SortTarget::Create, SortOrder::Ascend)
        .with_keys_only()
}

fn get_kvs(resp: &TxnResponse, index: usize) -> Vec<KeyValue> {
    match resp.op_responses().into_iter().nth(index) {
        Some(TxnOpResponse::Get(mut g)) => g.take_kvs(),
        _ => Vec::new(),
    }
}

fn revision(resp: &TxnResponse) -> i64 {
    resp.header().map(|h| h.revision()).unwrap_or_default()
}

/// What enqueuing found.
pub(crate) enum Enqueued {
    /// Our key was created at `rev`; `contenders` is the lock's line at that revision.
    Created {
        rev: i64,
        contenders: Vec<Contender>,
    },
    /// Our key already existed (a leftover of this client) with this create revision.
    Exists { rev: i64 },
}

/// Puts `my_key` with our lease if it does not exist, and lists the line in the same txn.
pub(crate) async fn enqueue(
    client: &mut Client,
    prefix: &[u8],
    my_key: &[u8],
    owner: &str,
    lease: i64,
) -> Result<Enqueued, etcd_client::Error> {
    let txn = Txn::new()
        .when([Compare::create_revision(my_key, CompareOp::Equal, 0)])
        .and_then([
            TxnOp::put(my_key, owner, Some(PutOptions::new().with_lease(lease))),
            TxnOp::get(prefix, Some(list_opts())),
        ])
        .or_else([TxnOp::get(my_key, None)]);
    let resp = client.txn(txn).await?;
    if resp.succeeded() {
        Ok(Enqueued::Created {
            rev: revision(&resp),
            contenders: contenders(prefix, &get_kvs(&resp, 1)),
        })
    } else {
        let rev = get_kvs(&resp, 0)
            .first()
            .map(KeyValue::create_revision)
            .unwrap_or_default();
        Ok(Enqueued::Exists { rev })
    }
}

/// The line ahead of us, read atomically with the proof that our key still exists.
pub(crate) enum Checked {
    /// Our key is gone (its lease expired, or it was deleted): we are not in the line.
    Vanished,
    /// The contenders created before us (empty: we hold the lock), at revision `at`.
    Ahead { ahead: Vec<Contender>, at: i64 },
}

/// Lists the contenders ahead of `my_key` (created at `my_rev`) only if it still exists with
/// that create revision: a waiter whose lease expired while queued is never told it holds.
pub(crate) async fn check(
    client: &mut Client,
    prefix: &[u8],
    my_key: &[u8],
    my_rev: i64,
) -> Result<Checked, etcd_client::Error> {
    let txn = Txn::new()
        .when([Compare::create_revision(my_key, CompareOp::Equal, my_rev)])
        .and_then([TxnOp::get(
            prefix,
            Some(list_opts().with_max_create_revision(my_rev - 1)),
        )]);
    let resp = client.txn(txn).await?;
    if !resp.succeeded() {
        return Ok(Checked::Vanished);
    }
    let ahead = contenders(prefix, &get_kvs(&resp, 0));
    Ok(Checked::Ahead {
        ahead,
        at: revision(&resp),
    })
}

/// Deletes `key` if its create revision is `rev`; `Ok(true)` if it did.
pub(crate) async fn delete_if(
    client: &mut Client,
    key: &[u8],
    rev: i64,
) -> Result<bool, etcd_client::Error> {
    let txn = Txn::new()
        .when([Compare::create_revision(key, CompareOp::Equal, rev)])
        .and_then([TxnOp::delete(key, None)]);
    Ok(client.txn(txn).await?.succeeded())
}

/// True if `key` exists with create revision `rev`.
pub(crate) async fn exists(
    client: &mut Client,
    key: &[u8],
    rev: i64,
) -> Result<bool, etcd_client::Error> {
    let resp = client
        .get(key, Some(GetOptions::new().with_keys_only()))
        .await?;
    Ok(resp
        .kvs()
        .first()
        .is_some_and(|kv| kv.create_revision() == rev))
}

/// The holder of the lock under `prefix`: the first direct child, with its value (the owner
/// label locksmith writes; empty for `etcdctl lock`).
pub(crate) async fn first(
    client: &mut Client,
    prefix: &[u8],
) -> Result<Option<KeyValue>, etcd_client::Error> {
    let resp = client
        .get(
            prefix,
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Create, SortOrder::Ascend),
            ),
        )
        .await?;
    let line = contenders(prefix, resp.kvs());
    Ok(line
        .first()
        .and_then(|c| resp.kvs().iter().find(|kv| kv.key() == c.key).cloned()))
}
