//! The client's one ZooKeeper session, shared by all its locks, and the proof that it lives.
//!
//! ZooKeeper expires a session when the server has not heard from the client for the session
//! timeout. The client concludes a connection is lost after `connection_timeout` of silence
//! (2/5 of the session timeout by default), so when it reports `Disconnected`, the server may
//! already be that far into the timeout. The session is treated as lost unless it reconnects
//! within the rest (minus a margin): every lock of the client then resolves `lost()` before the
//! server can expire the session and delete the lock nodes. `Expired`, `Closed` and
//! `AuthFailed` are losses at once.

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zookeeper_client::{self as zk, SessionState};

/// One session and its monitor task.
pub(crate) struct Session {
    pub(crate) client: zk::Client,
    lost: watch::Receiver<Option<String>>,
    monitor: JoinHandle<()>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.client.session_id().to_string())
            .field("lost", &self.lost_reason())
            .finish()
    }
}

impl Session {
    /// Watches `client`'s state; `connection_timeout` is the silence after which it reports
    /// a disconnection.
    pub(crate) fn new(client: zk::Client, connection_timeout: Duration) -> Self {
        let (tx, rx) = watch::channel(None);
        let timeout = client.session_timeout();
        let grace = timeout
            .saturating_sub(connection_timeout)
            .saturating_sub((timeout / 10).max(Duration::from_millis(100)));
        let states = client.state_watcher();
        let monitor = tokio::spawn(async move {
            let reason = watch_states(states, grace).await;
            tracing::warn!(%reason, "ZooKeeper session lost");
            let _ = tx.send(Some(reason));
        });
        Self {
            client,
            lost: rx,
            monitor,
        }
    }

    /// Why the session is lost, if it is.
    pub(crate) fn lost_reason(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Waits until the session is connected (at once if it is): `Err` with the reason if it
    /// is lost first. A request that failed with a connection loss is retried after this.
    pub(crate) async fn connected(&self) -> Result<(), String> {
        let mut states = self.client.state_watcher();
        loop {
            if let Some(why) = self.lost_reason() {
                return Err(why);
            }
            match states.peek_state() {
                SessionState::SyncConnected => return Ok(()),
                s if s.is_terminated() => return Err(format!("session {s}")),
                _ => {}
            }
            tokio::select! {
                why = self.lost() => return Err(why),
                _ = states.changed() => {}
            }
        }
    }

    /// Resolves when the session is lost.
    pub(crate) async fn lost(&self) -> String {
        let mut rx = self.lost.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or_default(),
            Err(_) => "the session monitor stopped".to_owned(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // The session itself closes when its last client handle is dropped.
        self.monitor.abort();
    }
}

async fn watch_states(mut states: zk::StateWatcher, grace: Duration) -> String {
    loop {
        match states.changed().await {
            SessionState::Disconnected => {
                let until = Instant::now() + grace;
                loop {
                    tokio::select! {
                        s = states.changed() => match s {
                            SessionState::SyncConnected => break,
                            s if s.is_terminated() => return format!("session {s}"),
                            _ => {}
                        },
                        () = tokio::time::sleep_until(until.into()) => {
                            return format!(
                                "disconnected, and not reconnected within {grace:?}: the session \
                                 cannot be proven alive"
                            );
                        }
                    }
                }
            }
            s if s.is_terminated() => return format!("session {s}"),
            _ => {}
        }
    }
}
