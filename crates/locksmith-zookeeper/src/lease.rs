//! Our lock node while queued ([`QueuedNode`]) and once held ([`ZkLease`]). Both delete the
//! node when dropped without release, in the background, keeping this process's turn on the
//! key until the delete is done.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use locksmith_core::{Error, Lease, LossReason, QueueTurn, Result};
use zookeeper_client as zk;

use crate::session::Session;

const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// Where our node is, or may be: its path once the create answered, else the folder and the
/// unique name prefix to look for (a create sent before a cancellation still happens, and the
/// server runs one session's requests in order, so a later listing sees it).
#[derive(Clone, Debug)]
pub(crate) enum NodeRef {
    Known(String),
    Maybe { dir: String, name_prefix: String },
}

async fn delete_node(client: &zk::Client, node: &NodeRef) -> Result<(), zk::Error> {
    let path = match node {
        NodeRef::Known(p) => p.clone(),
        NodeRef::Maybe { dir, name_prefix } => {
            let children = match client.list_children(dir).await {
                Ok(c) => c,
                Err(zk::Error::NoNode) => return Ok(()),
                Err(e) => return Err(e),
            };
            match children
                .iter()
                .find(|c| c.starts_with(name_prefix.as_str()))
            {
                Some(name) => format!("{dir}/{name}"),
                None => return Ok(()),
            }
        }
    };
    match client.delete(&path, None).await {
        Ok(()) | Err(zk::Error::NoNode) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes our node in the background, then gives up the turn.
fn cleanup(client: zk::Client, node: NodeRef, turn: QueueTurn<()>) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return; // No runtime: the session's end removes the node.
    };
    rt.spawn(async move {
        let del = delete_node(&client, &node);
        if !matches!(tokio::time::timeout(CLEANUP_TIMEOUT, del).await, Ok(Ok(()))) {
            tracing::warn!("could not delete an abandoned lock node; the session's end will");
        }
        drop(turn);
    });
}

/// Our node while we wait in line.
pub(crate) struct QueuedNode {
    pub(crate) client: zk::Client,
    pub(crate) node: NodeRef,
    pub(crate) turn: Option<QueueTurn<()>>,
}

impl Drop for QueuedNode {
    fn drop(&mut self) {
        if let Some(turn) = self.turn.take() {
            cleanup(self.client.clone(), self.node.clone(), turn);
        }
    }
}

impl QueuedNode {
    /// Deletes the node now, then gives up the turn (or, if dropped, in the background).
    pub(crate) async fn leave(mut self) {
        let del = delete_node(&self.client, &self.node);
        if let Ok(Ok(())) = tokio::time::timeout(CLEANUP_TIMEOUT, del).await {
            drop(self.turn.take());
        }
    }

    pub(crate) fn into_lease(
        mut self,
        path: String,
        czxid: i64,
        session: Arc<Session>,
        url: String,
    ) -> ZkLease {
        ZkLease {
            client: self.client.clone(),
            path,
            czxid,
            session,
            url,
            turn: Mutex::new(self.turn.take()),
        }
    }
}

/// A held lock: our node, whose creation zxid is the fencing token.
pub(crate) struct ZkLease {
    client: zk::Client,
    path: String,
    czxid: i64,
    session: Arc<Session>,
    url: String,
    turn: Mutex<Option<QueueTurn<()>>>,
}

impl std::fmt::Debug for ZkLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZkLease")
            .field("path", &self.path)
            .field("czxid", &self.czxid)
            .field("session", &self.session)
            .finish()
    }
}

impl ZkLease {
    fn err(&self, what: &str, e: zk::Error) -> Error {
        Error::backend(
            self.url.clone(),
            Some(&self.path),
            format!("{what}: {e}"),
            Some(Box::new(e) as _),
        )
    }
}

#[async_trait]
impl Lease for ZkLease {
    async fn renew(&self, _ttl: Duration) -> Result<bool> {
        if self.session.lost_reason().is_some() {
            return Ok(false);
        }
        match self.client.check_stat(&self.path).await {
            Ok(stat) => Ok(stat.is_some_and(|s| s.czxid == self.czxid)),
            Err(e) => Err(self.err("cannot check the lock node", e)),
        }
    }

    async fn release(&self) -> Result<bool> {
        // The node's name holds a unique id: deleting it never touches another holder's node.
        let out = match self.client.delete(&self.path, None).await {
            Ok(()) => Ok(true),
            Err(zk::Error::NoNode) => Ok(false),
            Err(e) => Err(self.err("cannot delete the lock node", e)),
        };
        if out.is_ok() {
            drop(self.turn.lock().expect("turn").take());
        }
        out
    }

    async fn session_lost(&self) -> LossReason {
        tokio::select! {
            why = self.session.lost() => LossReason::SessionEnded(why),
            () = watch_deletion(&self.client, &self.path, &self.session) => LossReason::NotOwner,
        }
    }

    fn session_valid_until(&self) -> Option<std::time::Instant> {
        Some(self.session.alive_until())
    }
}

/// Resolves when our node is deleted by anyone else (an operator, say).
async fn watch_deletion(client: &zk::Client, path: &str, session: &Session) {
    // Short holds cost no watch.
    tokio::time::sleep(Duration::from_millis(500)).await;
    loop {
        match client.check_and_watch_stat(path).await {
            Ok((None, _)) => return,
            Ok((Some(_), watcher)) => {
                let ev = watcher.changed().await;
                if ev.event_type == zk::EventType::NodeDeleted {
                    return;
                }
            }
            Err(_) => {
                if session.lost_reason().is_some() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

impl Drop for ZkLease {
    fn drop(&mut self) {
        if let Some(turn) = self.turn.get_mut().expect("turn").take() {
            cleanup(
                self.client.clone(),
                NodeRef::Known(std::mem::take(&mut self.path)),
                turn,
            );
        }
    }
}
