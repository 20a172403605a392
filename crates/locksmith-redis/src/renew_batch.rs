//! Renewals that come due together go to the server together: one `EVALSHA` of
//! `lua/renew_many.lua` per batch instead of one per lease.
//!
//! locksmith's keeper renews every lease on a shared grid, so leases with the same TTL call
//! `renew` at the same instants. Each call queues its request here; the first request into an
//! empty queue spawns a flush task, which lets the other calls of that instant arrive (it
//! yields to the runtime until the queue stops growing), then takes the whole queue and sends
//! it in batches of at most [`MAX_BATCH`] keys, all at once over the shared multiplexed
//! connection. Each caller gets its own answer (renewed, or not the owner any more) through
//! a one-shot channel.
//!
//! One server holds every key here (redis:// and each Redlock node); the Redis Cluster lease
//! renews on its own, since one request there may only touch keys of one hash slot.

use std::sync::{Arc, Mutex};

use locksmith_core::{Error, Result};
use tokio::sync::oneshot;

use crate::conn::{Live, Node};
use crate::lease::reset_reason;
use crate::scripts::RENEW_MANY;

/// The most keys one script call renews: bounds how long the server runs one script (a few
/// hundred microseconds) while other clients wait.
pub(crate) const MAX_BATCH: usize = 256;

/// How many times the flush task yields to let more renewals of the same instant arrive.
const MAX_GATHER_ROUNDS: usize = 8;

/// One lease's renewal request.
pub(crate) struct RenewRequest {
    /// The lock key.
    pub(crate) lock: Arc<str>,
    /// The holder's value prefix (`ls2:<secret>:`), compared by the script.
    pub(crate) owner_prefix: Arc<str>,
    /// The new TTL in ms.
    pub(crate) ttl_ms: u64,
    /// The `run_id` of the server that granted the lease (`None`: not known, not checked).
    /// A server that restarted since lost the key: the request is not sent.
    pub(crate) run_id: Option<Arc<str>>,
    /// What a restarted server answers: an error, so that a `redis://` guard fails closed
    /// (its `session_lost` reports the reset), or `Ok(false)` (a Redlock node that cannot
    /// count towards the quorum).
    pub(crate) restart_is_error: bool,
}

struct Pending {
    req: RenewRequest,
    reply: oneshot::Sender<Result<bool>>,
}

/// The renewal queue of one Redis server.
pub(crate) struct Renewer {
    node: Arc<Node>,
    queue: Mutex<Vec<Pending>>,
}

impl std::fmt::Debug for Renewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renewer")
            .field("server", &self.node.url)
            .finish()
    }
}

impl Renewer {
    pub(crate) fn new(node: Arc<Node>) -> Arc<Self> {
        Arc::new(Self {
            node,
            queue: Mutex::new(Vec::new()),
        })
    }

    /// Renews one lease, in a batch with every other renewal queued meanwhile. `Ok(true)`
    /// when it was still this holder's and its TTL is reset, `Ok(false)` when not.
    ///
    /// # Errors
    /// When the server cannot be reached, or restarted since the grant (`run_id` changed).
    ///
    /// # Cancel safety
    /// Cancel-safe: a dropped call's request may still be sent (the renewal happened or it did
    /// not); its answer is discarded.
    pub(crate) async fn renew(self: &Arc<Self>, req: RenewRequest) -> Result<bool> {
        let (reply, answer) = oneshot::channel();
        let first = {
            let mut queue = self.queue.lock().expect("renew queue");
            queue.push(Pending { req, reply });
            queue.len() == 1
        };
        if first {
            tokio::spawn(Arc::clone(self).flush());
        }
        answer.await.unwrap_or_else(|_| {
            Err(Error::backend(
                &self.node.url,
                None,
                "the renewal was dropped before it was sent (the runtime is shutting down)",
                None,
            ))
        })
    }

    async fn flush(self: Arc<Self>) {
        // Let the renewals of this instant queue up: the keeper started the renewals that came
        // due together at once, and their tasks are ready to run now.
        let mut seen = 0;
        for _ in 0..MAX_GATHER_ROUNDS {
            tokio::task::yield_now().await;
            let len = self.queue.lock().expect("renew queue").len();
            if len == seen || len >= MAX_BATCH {
                break;
            }
            seen = len;
        }
        let pending = std::mem::take(&mut *self.queue.lock().expect("renew queue"));
        let live = match self.node.live().await {
            Ok(live) => live,
            Err(err) => {
                for p in pending {
                    let _ = p
                        .reply
                        .send(Err(copy_error(&self.node.url, &p.req.lock, &err)));
                }
                return;
            }
        };
        let mut ready = Vec::with_capacity(pending.len());
        for p in pending {
            if let Some(granted) = p.req.run_id.as_ref().filter(|r| **r != live.run_id) {
                let answer = if p.req.restart_is_error {
                    let why = reset_reason(&self.node.url, granted, &live.run_id);
                    Err(Error::backend(&self.node.url, Some(&p.req.lock), why, None))
                } else {
                    Ok(false)
                };
                let _ = p.reply.send(answer);
                continue;
            }
            ready.push(p);
        }
        let mut batches = Vec::new();
        while !ready.is_empty() {
            let rest = ready.split_off(ready.len().min(MAX_BATCH));
            batches.push(send(&self.node, &live, std::mem::replace(&mut ready, rest)));
        }
        futures_util::future::join_all(batches).await;
    }
}

/// Sends one batch and answers each of its callers.
async fn send(node: &Node, live: &Live, batch: Vec<Pending>) {
    let keys: Vec<&str> = batch.iter().map(|p| &*p.req.lock).collect();
    let args: Vec<(&str, u64)> = batch
        .iter()
        .map(|p| (&*p.req.owner_prefix, p.req.ttl_ms))
        .collect();
    let mut conn = live.conn.clone();
    let reply: redis::RedisResult<Vec<i64>> =
        RENEW_MANY.run(&mut conn, keys.len(), (keys, args)).await;
    match reply {
        Ok(done) if done.len() == batch.len() => {
            for (p, done) in batch.into_iter().zip(done) {
                let _ = p.reply.send(Ok(done == 1));
            }
        }
        Ok(done) => {
            let why = format!(
                "the batch renewal script answered {} results for {} keys",
                done.len(),
                batch.len()
            );
            for p in batch {
                let err = Error::backend(&node.url, Some(&p.req.lock), why.clone(), None);
                let _ = p.reply.send(Err(err));
            }
        }
        Err(err) => {
            // `failed` drops a broken connection once; each caller gets its own error.
            let _ = node.failed(live, None, err.clone());
            for p in batch {
                let _ = p
                    .reply
                    .send(Err(node.error(Some(&p.req.lock), err.clone())));
            }
        }
    }
}

/// A caller's own copy, about its `lock`, of a connect error that several callers share.
fn copy_error(url: &str, lock: &str, err: &Error) -> Error {
    match err {
        Error::Backend { message, .. } => Error::backend(url, Some(lock), message.clone(), None),
        other => Error::backend(url, Some(lock), other.to_string(), None),
    }
}
