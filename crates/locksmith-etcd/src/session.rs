//! The client's one etcd lease, kept alive in the background, and the proof that it lives.
//!
//! The lease is alive on the server at least until `sent + TTL`, where `sent` is when the
//! last confirmed keep-alive (or the grant) was sent: the server starts the TTL when it
//! receives the request. Locally the session counts as alive only until `sent + TTL - margin`;
//! past that without a newer confirmation it is lost, so `lost()` resolves before the server
//! can expire the lease and delete the lock keys.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// One lease and its keeper task.
pub(crate) struct Session {
    pub(crate) id: i64,
    lost: watch::Receiver<Option<String>>,
    lost_tx: Arc<watch::Sender<Option<String>>>,
    /// Until when the lease is provably alive (updated by the keeper).
    alive_until: Arc<Mutex<Instant>>,
    keeper: JoinHandle<()>,
    client: Client,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("lease", &format_args!("{:x}", self.id))
            .field("lost", &self.lost_reason())
            .finish()
    }
}

/// The safety margin taken off the TTL: a tenth, at least 100 ms (clock-rate drift and
/// scheduling delay of this process).
fn margin(ttl: Duration) -> Duration {
    (ttl / 10).max(Duration::from_millis(100))
}

impl Session {
    /// Grants a lease of `ttl` and starts keeping it alive.
    pub(crate) async fn grant(client: &Client, ttl: Duration) -> Result<Self, etcd_client::Error> {
        let mut c = client.clone();
        let sent = Instant::now();
        let resp = c.lease_grant(ttl.as_secs() as i64, None).await?;
        let granted = Duration::from_secs(resp.ttl().max(0) as u64);
        let (tx, rx) = watch::channel(None);
        let tx = Arc::new(tx);
        let alive_until = Arc::new(Mutex::new(sent + granted.saturating_sub(margin(granted))));
        let keeper = tokio::spawn(keep(
            client.clone(),
            resp.id(),
            sent,
            granted,
            Arc::clone(&tx),
            Arc::clone(&alive_until),
        ));
        Ok(Self {
            id: resp.id(),
            lost: rx,
            lost_tx: tx,
            alive_until,
            keeper,
            client: client.clone(),
        })
    }

    /// Why the session is lost, if it is.
    pub(crate) fn lost_reason(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// True while the lease is provably alive on the server: not lost, and the last
    /// confirmed keep-alive is recent enough (checked against the clock, not only the flag the
    /// keeper sets, which a busy scheduler may delay).
    pub(crate) fn provably_alive(&self) -> bool {
        self.lost_reason().is_none() && Instant::now() < self.alive_until()
    }

    /// Until when the lease is provably alive (the last confirmed keep-alive's send time plus
    /// the TTL, less the margin).
    pub(crate) fn alive_until(&self) -> Instant {
        *self.alive_until.lock().expect("alive_until")
    }

    /// Marks the session lost (the server said it does not know the lease).
    pub(crate) fn mark_lost(&self, reason: String) {
        self.keeper.abort();
        mark(&self.lost_tx, reason);
    }

    /// Resolves when the session is lost, with the reason.
    pub(crate) async fn lost(&self) -> String {
        let mut rx = self.lost.clone();
        match rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().unwrap_or_default(),
            Err(_) => "the lease keeper stopped".to_owned(),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.keeper.abort();
        // Revoke so that this client's lock keys go at once rather than after the TTL.
        if self.lost_reason().is_none()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let (mut c, id) = (self.client.clone(), self.id);
            rt.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(2), c.lease_revoke(id)).await;
            });
        }
    }
}

/// Keeps lease `id` alive until it cannot be proven alive, then reports why and returns.
async fn keep(
    client: Client,
    id: i64,
    granted_sent: Instant,
    granted_ttl: Duration,
    lost: Arc<watch::Sender<Option<String>>>,
    shared_until: Arc<Mutex<Instant>>,
) {
    let reason = keep_until_lost(client, id, granted_sent, granted_ttl, &shared_until).await;
    tracing::warn!(lease = format!("{id:x}"), %reason, "etcd lease lost");
    mark(&lost, reason);
}

/// First loss wins.
fn mark(lost: &watch::Sender<Option<String>>, reason: String) {
    lost.send_if_modified(|slot| {
        if slot.is_none() {
            *slot = Some(reason);
            true
        } else {
            false
        }
    });
}

/// True when etcd answered that the lease does not exist (expired or revoked).
pub(crate) fn is_lease_not_found(e: &etcd_client::Error) -> bool {
    match e {
        etcd_client::Error::GRpcStatus(s) => s.message().contains("requested lease not found"),
        etcd_client::Error::LeaseKeepAliveError(m) => m.contains("not found"),
        _ => false,
    }
}

/// True when the member that got the request could not be reached (killed, say, while the
/// cluster elects a new leader): the client sends the next request to another member.
pub(crate) fn is_unavailable(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.code() == tonic::Code::Unavailable)
}

async fn keep_until_lost(
    mut client: Client,
    id: i64,
    granted_sent: Instant,
    granted_ttl: Duration,
    shared_until: &Mutex<Instant>,
) -> String {
    let publish = |until: Instant| {
        let mut slot = shared_until.lock().expect("alive_until");
        if until > *slot {
            *slot = until;
        }
    };
    let mut ttl = granted_ttl;
    // Alive (provably) until here.
    let mut alive_until = granted_sent + ttl.saturating_sub(margin(ttl));
    let mut last_sent;
    loop {
        // (Re)open the keep-alive stream; opening it sends one keep-alive and awaits its answer.
        let sent = Instant::now();
        let opened = tokio::time::timeout_at(alive_until.into(), client.lease_keep_alive(id)).await;
        let (mut keeper, mut stream) = match opened {
            Err(_) => return "no keep-alive confirmed before the lease could expire".into(),
            Ok(Err(etcd_client::Error::LeaseKeepAliveError(msg))) => {
                return format!("the server no longer knows the lease ({msg})");
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "etcd keep-alive stream failed; retrying");
                let retry = Instant::now() + Duration::from_millis(100);
                if retry >= alive_until {
                    return format!("keep-alive failed until the lease could expire ({e})");
                }
                tokio::time::sleep_until(retry.into()).await;
                continue;
            }
            Ok(Ok(pair)) => pair,
        };
        alive_until = sent + ttl.saturating_sub(margin(ttl));
        publish(alive_until);
        last_sent = sent;
        loop {
            tokio::time::sleep_until((last_sent + ttl / 3).into()).await;
            let sent = Instant::now();
            if keeper.keep_alive().await.is_err() {
                break;
            }
            match tokio::time::timeout_at(alive_until.into(), stream.message()).await {
                Err(_) => return "no keep-alive confirmed before the lease could expire".into(),
                Ok(Ok(Some(resp))) if resp.ttl() <= 0 => {
                    return "the server says the lease expired".into();
                }
                Ok(Ok(Some(resp))) => {
                    ttl = Duration::from_secs(resp.ttl() as u64);
                    alive_until = sent + ttl.saturating_sub(margin(ttl));
                    publish(alive_until);
                    last_sent = sent;
                }
                Ok(Ok(None)) | Ok(Err(_)) => break,
            }
        }
    }
}
