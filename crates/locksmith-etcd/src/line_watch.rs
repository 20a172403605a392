//! One watch per lock line per client, shared by the client's waiters on that lock and kept
//! for a while after the last of them is done.
//!
//! Why not a fresh watch on the predecessor for each wait: etcd starts a watch that asks for
//! "now" at the revision it read just before registering it; when a write lands in between,
//! the watch starts in the past and is served by etcd's catch-up loop, which runs every
//! 100 ms, so the hand-over stalls for up to 100 ms. Under contention (a watch created at
//! every hand-over, writes at every hand-over) that hit more than one wait in a hundred
//! (8 contenders: p99 wait ~95 ms). A long-lived watch runs that risk once and is served at once ever after; and since it sees
//! every deletion on the line, including the waiter's own key, a waiter needs no read of the
//! line after a deletion (see the crate docs).
//!
//! The watch covers the lock's prefix and reports deletions only: every client with a waiter
//! on a lock hears of every hand-over on it, one small event each.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use etcd_client::{Client, EventType, WatchFilterType, WatchOptions, WatchStream};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// How often an idle watch checks whether anyone still listens; it ends after two idle checks.
const IDLE_CHECK: Duration = Duration::from_secs(5);
/// Deletions buffered per listener; a listener that falls further behind re-reads the line.
const BUFFER: usize = 256;

/// A deletion on a line: the key, and the revision of the delete.
#[derive(Clone, Debug)]
pub(crate) struct Deleted {
    pub(crate) key: Vec<u8>,
    pub(crate) rev: i64,
}

struct LineWatch {
    /// Weak: the task holds the only strong sender, so that its end closes every listener.
    deleted: broadcast::WeakSender<Deleted>,
    task: JoinHandle<()>,
}

impl LineWatch {
    fn subscribe(&self) -> Option<broadcast::Receiver<Deleted>> {
        if self.task.is_finished() {
            return None;
        }
        self.deleted.upgrade().map(|s| s.subscribe())
    }
}

/// The client's line watches, by lock prefix.
#[derive(Default)]
pub(crate) struct LineWatches {
    by_prefix: Mutex<HashMap<Vec<u8>, LineWatch>>,
}

impl std::fmt::Debug for LineWatches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineWatches").finish_non_exhaustive()
    }
}

impl LineWatches {
    /// A subscription to the deletions under `prefix` if a watch on it is already in place
    /// (no request is made): it reports every deletion committed after this call.
    pub(crate) fn subscribe_live(&self, prefix: &[u8]) -> Option<broadcast::Receiver<Deleted>> {
        let mut map = self.by_prefix.lock().expect("line watches");
        map.retain(|_, w| !w.task.is_finished());
        map.get(prefix).and_then(LineWatch::subscribe)
    }

    /// A subscription to the deletions under `prefix`, from a watch that is registered on the
    /// server when this returns: it reports every deletion committed after any read sent
    /// after this returns. The receiver closes when the watch breaks; `Lagged` means some
    /// deletions were missed.
    pub(crate) async fn subscribe(
        &self,
        client: &mut Client,
        prefix: &[u8],
    ) -> Result<broadcast::Receiver<Deleted>, etcd_client::Error> {
        if let Some(rx) = self.subscribe_live(prefix) {
            return Ok(rx);
        }
        let opts = WatchOptions::new()
            .with_prefix()
            .with_filters([WatchFilterType::NoPut]);
        let mut stream = client.watch(prefix, Some(opts)).await?;
        match stream.message().await? {
            Some(r) if r.created() && !r.canceled() => {}
            _ => {
                return Err(etcd_client::Error::WatchError(
                    "the server did not create the watch".into(),
                ));
            }
        }
        let mut map = self.by_prefix.lock().expect("line watches");
        map.retain(|_, w| !w.task.is_finished());
        if let Some(rx) = map.get(prefix).and_then(LineWatch::subscribe) {
            // Another waiter of this client made one meanwhile: share it, drop ours.
            return Ok(rx);
        }
        let (deleted, rx) = broadcast::channel(BUFFER);
        let weak = deleted.downgrade();
        let task = tokio::spawn(run(stream, deleted));
        map.insert(
            prefix.to_vec(),
            LineWatch {
                deleted: weak,
                task,
            },
        );
        Ok(rx)
    }
}

impl Drop for LineWatches {
    fn drop(&mut self) {
        let map = self.by_prefix.get_mut().unwrap_or_else(|p| p.into_inner());
        for w in map.values() {
            w.task.abort();
        }
    }
}

/// Forwards deletions until the watch breaks or nobody has listened for two idle checks.
async fn run(mut stream: WatchStream, deleted: broadcast::Sender<Deleted>) {
    let mut tick = tokio::time::interval(IDLE_CHECK);
    tick.tick().await;
    let mut idle = 0;
    loop {
        tokio::select! {
            msg = stream.message() => match msg {
                Ok(Some(resp)) if !resp.canceled() => {
                    for e in resp.events() {
                        if e.event_type() == EventType::Delete
                            && let Some(kv) = e.kv()
                        {
                            let _ = deleted.send(Deleted {
                                key: kv.key().to_vec(),
                                rev: kv.mod_revision(),
                            });
                        }
                    }
                }
                // Broken or cancelled: dropping the sender closes every listener, and each
                // reads the line again.
                _ => return,
            },
            _ = tick.tick() => {
                if deleted.receiver_count() == 0 {
                    idle += 1;
                    if idle >= 2 {
                        return;
                    }
                } else {
                    idle = 0;
                }
            }
        }
    }
}
