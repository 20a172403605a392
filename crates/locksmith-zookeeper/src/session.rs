//! The client's one ZooKeeper session, shared by all its locks, and the proof that it lives.
//!
//! ZooKeeper expires a session when the server has not heard from the client for the session
//! timeout. The client concludes a connection is lost after `connection_timeout` of silence
//! (2/5 of the session timeout by default), so when it reports `Disconnected`, the server may
//! already be that far into the timeout. The session is treated as lost unless it reconnects
//! within the rest (minus a margin): every lock of the client then resolves `lost()` before the
//! server can expire the session and delete the lock nodes. `Expired`, `Closed` and
//! `AuthFailed` are losses at once.
//!
//! Besides, a prover task asks the server a cheap question (`exists /`) every third of the
//! session timeout and keeps *until when the session is provably alive*: the send time of the
//! last answered request plus the session timeout, less a margin. Guards report it
//! ([`Lease::session_valid_until`](locksmith_core::Lease::session_valid_until)), so a holder
//! that resumes after a pause longer than the session timeout is not held any more even
//! before the state watcher has run.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use zookeeper_client::{self as zk, SessionState};

/// One session and its monitor task.
pub(crate) struct Session {
    pub(crate) client: zk::Client,
    lost: watch::Receiver<Option<String>>,
    monitor: JoinHandle<()>,
    /// Until when the session is provably alive (updated by the prover).
    alive_until: Arc<Mutex<Instant>>,
    prover: JoinHandle<()>,
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
        // The session was just established: the server heard from us a moment ago.
        let margin = (timeout / 10).max(Duration::from_millis(100));
        let alive_until = Arc::new(Mutex::new(Instant::now() + timeout.saturating_sub(margin)));
        let prover = tokio::spawn(prove(
            client.clone(),
            Arc::clone(&alive_until),
            timeout,
            margin,
        ));
        Self {
            client,
            lost: rx,
            monitor,
            alive_until,
            prover,
        }
    }

    /// Until when the session is provably alive: the last answered request's send time plus
    /// the session timeout, less a margin.
    pub(crate) fn alive_until(&self) -> Instant {
        *self.alive_until.lock().unwrap_or_else(|e| e.into_inner())
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
        self.prover.abort();
    }
}

/// Every third of the session timeout, one cheap request; an answer proves the server heard
/// from this session at or after the send time, so it cannot expire the session before that
/// time plus the session timeout. Requests overlap (a slow answer does not delay the next
/// one), and an answer counts as long as it still proves something.
async fn prove(
    client: zk::Client,
    alive_until: Arc<Mutex<Instant>>,
    timeout: Duration,
    margin: Duration,
) {
    let every = timeout / 3;
    let useful = timeout.saturating_sub(margin);
    loop {
        tokio::time::sleep(every).await;
        let sent = Instant::now();
        let (client, alive_until) = (client.clone(), Arc::clone(&alive_until));
        tokio::spawn(async move {
            if let Ok(Ok(_)) = tokio::time::timeout(useful, client.check_stat("/")).await {
                let proven = sent + useful;
                let mut slot = alive_until.lock().unwrap_or_else(|e| e.into_inner());
                *slot = (*slot).max(proven);
            }
        });
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
