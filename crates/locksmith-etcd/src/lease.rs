//! A lock key of this client on the server: while queued ([`QueuedKey`]) and once held
//! ([`EtcdLease`]). Both delete the key when dropped without release, in the background, and
//! keep this process's turn on the lock until the delete is done, so that the next local
//! waiter never finds (and mistakes for its own) a key that is about to go.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Client, EventType, WatchFilterType, WatchOptions};
use locksmith_core::{Error, Lease, LossReason, QueueTurn, Result};
use tokio::task::JoinHandle;

use crate::ops::{self, Enqueued};
use crate::session::Session;

/// How long a background delete may take before it is given up (the lease then ends it).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Deletes `key` (if `rev` is known, only with that create revision) in the background, then
/// gives up the turn.
fn cleanup(
    client: Client,
    key: Vec<u8>,
    rev: Option<i64>,
    put: Option<PendingPut>,
    turn: QueueTurn<()>,
) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return; // No runtime: the lease's revocation or expiry removes the key.
    };
    rt.spawn(async move {
        let mut c = client;
        let del = async {
            // A put still on its way is waited for first: a delete sent now could reach the
            // cluster before it (through another member) and leave the key behind for good,
            // kept alive by this client's lease.
            let rev = match (rev, put) {
                (Some(rev), _) => Some(rev),
                (None, Some(put)) => match put.await {
                    Ok(Ok(Enqueued::Created { rev, .. } | Enqueued::Exists { rev })) => Some(rev),
                    // Refused or failed: nothing of it is there; a leftover of ours is deleted.
                    _ => None,
                },
                (None, None) => None,
            };
            match rev {
                Some(rev) => ops::delete_if(&mut c, &key, rev).await.map(drop),
                None => c.delete(key.as_slice(), None).await.map(drop),
            }
        };
        if let Err(e) = tokio::time::timeout(CLEANUP_TIMEOUT, del).await.unwrap_or_else(|_| {
            Err(etcd_client::Error::Internal("timed out".into()))
        }) {
            tracing::warn!(error = %e, "could not delete an abandoned etcd lock key; its lease will");
        }
        drop(turn);
    });
}

/// The put that enqueues a waiter's key, run as a task of its own so that its outcome is
/// learnt even when the waiter is dropped meanwhile.
pub(crate) type PendingPut = JoinHandle<Result<Enqueued, etcd_client::Error>>;

/// Our key while we wait in line; deleted if dropped before it becomes a grant.
pub(crate) struct QueuedKey {
    pub(crate) client: Client,
    pub(crate) key: Vec<u8>,
    /// The create revision, once known.
    pub(crate) rev: Option<i64>,
    /// The put in flight, if any.
    pub(crate) put: Option<PendingPut>,
    pub(crate) turn: Option<QueueTurn<()>>,
}

impl Drop for QueuedKey {
    fn drop(&mut self) {
        if let Some(turn) = self.turn.take() {
            cleanup(
                self.client.clone(),
                std::mem::take(&mut self.key),
                self.rev,
                self.put.take(),
                turn,
            );
        }
    }
}

impl QueuedKey {
    /// Deletes the key now (so that this client's next try sees a clean line), then gives up
    /// the turn. If this future is dropped, `Drop` deletes it in the background instead.
    pub(crate) async fn leave(mut self) {
        let mut c = self.client.clone();
        let del = async {
            match self.rev {
                Some(rev) => ops::delete_if(&mut c, &self.key, rev).await.map(drop),
                None => c.delete(self.key.as_slice(), None).await.map(drop),
            }
        };
        if let Ok(Ok(())) = tokio::time::timeout(CLEANUP_TIMEOUT, del).await {
            drop(self.turn.take());
        }
    }

    /// Turns the queued key into a held lease.
    pub(crate) fn into_lease(mut self, rev: i64, session: Arc<Session>, url: String) -> EtcdLease {
        EtcdLease {
            client: self.client.clone(),
            key: std::mem::take(&mut self.key),
            rev,
            session,
            url,
            turn: Mutex::new(self.turn.take()),
        }
    }
}

/// A held lock: our key, with the create revision that is also the fencing token.
pub(crate) struct EtcdLease {
    client: Client,
    key: Vec<u8>,
    rev: i64,
    session: Arc<Session>,
    url: String,
    turn: Mutex<Option<QueueTurn<()>>>,
}

impl std::fmt::Debug for EtcdLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdLease")
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("rev", &self.rev)
            .field("session", &self.session)
            .finish()
    }
}

impl EtcdLease {
    fn err(&self, what: &str, e: etcd_client::Error) -> Error {
        Error::backend(
            self.url.clone(),
            Some(&String::from_utf8_lossy(&self.key)),
            format!("{what}: {e}"),
            Some(Box::new(e) as _),
        )
    }
}

#[async_trait]
impl Lease for EtcdLease {
    async fn renew(&self, _ttl: Duration) -> Result<bool> {
        // The client's one lease is kept alive in the background; here we only check that
        // our key still exists, with our create revision, and that the lease is provable.
        if self.session.lost_reason().is_some() {
            return Ok(false);
        }
        let mut c = self.client.clone();
        ops::exists(&mut c, &self.key, self.rev)
            .await
            .map_err(|e| self.err("cannot check the lock key", e))
    }

    async fn release(&self) -> Result<bool> {
        let mut c = self.client.clone();
        let out = ops::delete_if(&mut c, &self.key, self.rev)
            .await
            .map_err(|e| self.err("cannot delete the lock key", e));
        if out.is_ok() {
            // Deleted or already gone: this process may line up again.
            drop(self.turn.lock().expect("turn").take());
        }
        out
    }

    async fn session_lost(&self) -> LossReason {
        tokio::select! {
            why = self.session.lost() => LossReason::SessionEnded(why),
            () = watch_deletion(self.client.clone(), &self.key, self.rev) => LossReason::NotOwner,
        }
    }

    fn session_valid_until(&self) -> Option<std::time::Instant> {
        Some(self.session.alive_until())
    }
}

/// Resolves when `key` (created at `rev`) is deleted by anyone else: an operator's
/// `etcdctl del`, or a lease revoked from outside. Retries a broken watch from where it was.
async fn watch_deletion(mut client: Client, key: &[u8], rev: i64) {
    // Short holds never pay for a watch: it starts a little later, from the revision after
    // the grant, so a deletion in between is still reported (by etcd's catch-up).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut from = rev + 1;
    loop {
        let opts = WatchOptions::new()
            .with_start_revision(from)
            .with_filters([WatchFilterType::NoPut]);
        if let Ok(mut stream) = client.watch(key, Some(opts)).await {
            while let Ok(Some(resp)) = stream.message().await {
                if resp.canceled() {
                    // Compacted past `from`: read the key instead, then watch from now on.
                    match ops::exists(&mut client, key, rev).await {
                        Ok(false) => return,
                        Ok(true) => from = resp.compact_revision().max(from),
                        Err(_) => {}
                    }
                    break;
                }
                if resp
                    .events()
                    .iter()
                    .any(|e| e.event_type() == EventType::Delete)
                {
                    return;
                }
                if let Some(h) = resp.header() {
                    from = from.max(h.revision() + 1);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Drop for EtcdLease {
    fn drop(&mut self) {
        if let Some(turn) = self.turn.get_mut().expect("turn").take() {
            cleanup(
                self.client.clone(),
                std::mem::take(&mut self.key),
                Some(self.rev),
                None,
                turn,
            );
        }
    }
}
