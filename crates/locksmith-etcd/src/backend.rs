//! [`EtcdBackend`]: the etcd concurrency Mutex recipe behind locksmith's [`Backend`] trait.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use etcd_client::{Client, ConnectOptions};
use locksmith_core::{
    AcquireRequest, Backend, Capabilities, Error, Expiry, FencingToken, Grant, HolderInfo,
    KeyedQueue, LeaseModel, LockKey, Result, mask_url,
};
use tokio::sync::{Mutex, OnceCell, broadcast};

use crate::lease::QueuedKey;
use crate::line_watch::{Deleted, LineWatches};
use crate::ops::{self, Checked, Contender, Enqueued};
use crate::session::{self, Session};
use crate::url::{self, Config};

/// What the etcd backend can do.
pub fn capabilities() -> Capabilities {
    Capabilities::new(LeaseModel::Session)
        .fair(true)
        .holder_info(true)
}

/// The `etcd://` backend. One client (a gRPC channel to the cluster) and one etcd lease per
/// `EtcdBackend`, shared by all its locks; see the [crate docs](crate).
pub struct EtcdBackend {
    cfg: Config,
    url: String,
    client: OnceCell<Client>,
    session: Mutex<Option<Arc<Session>>>,
    queue: KeyedQueue<()>,
    watches: LineWatches,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Why enqueuing failed.
enum Enqueue {
    /// The server does not know our lease (expired or revoked): grant a new one and retry.
    LeaseGone,
    Failed(Error),
}

/// How a wait in line ended.
enum Line {
    /// Every key ahead was deleted, and ours was not.
    Clear,
    /// Our own key was deleted (its lease expired or was revoked, or someone deleted it).
    Vanished,
    /// Deletions may have been missed (the watch broke or fell behind): read the line again.
    Recheck,
}

/// Follows the deletions on the line until every key in `ahead` is gone (`Clear`) or ours is
/// (`Vanished`). Deletions at or before revision `since` (the line's snapshot) are old news.
async fn wait_line(
    sub: &mut broadcast::Receiver<Deleted>,
    ahead: &mut HashSet<Vec<u8>>,
    mine: &[u8],
    since: i64,
) -> Line {
    loop {
        match sub.recv().await {
            Ok(d) if d.rev <= since => {}
            Ok(d) if d.key == mine => return Line::Vanished,
            Ok(d) => {
                ahead.remove(&d.key);
                if ahead.is_empty() {
                    return Line::Clear;
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => return Line::Recheck,
            Err(broadcast::error::RecvError::Closed) => {
                // A broken watch: pause, so that a server that keeps breaking it is not
                // hammered, then read the line and watch anew.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return Line::Recheck;
            }
        }
    }
}

impl EtcdBackend {
    /// A backend for an `etcd://` URL. Nothing is connected until the first lock operation.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] naming what is wrong with the URL.
    pub fn from_url(url: &str) -> Result<Self> {
        let cfg = url::parse(url)?;
        Ok(Self {
            cfg,
            url: mask_url(url),
            client: OnceCell::new(),
            session: Mutex::new(None),
            queue: KeyedQueue::new(),
            watches: LineWatches::default(),
        })
    }

    fn err(
        &self,
        key: Option<&str>,
        what: &str,
        e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        let e = e.into();
        let text = e.to_string();
        // etcd answers a request without a login, on a cluster with authentication on, with
        // just "user name is empty": say what to do about it.
        let hint = if self.cfg.user.is_none() && text.contains("user name is empty") {
            " (the cluster has authentication on: log in with etcd://USER:PASSWORD@HOST)"
        } else {
            ""
        };
        Error::backend(
            self.url.clone(),
            key,
            format!("{what}: {text}{hint}"),
            Some(e),
        )
    }

    /// The client, connected on first use.
    async fn client(&self) -> Result<Client> {
        let c = self
            .client
            .get_or_try_init(|| async {
                let mut opts = ConnectOptions::new()
                    .with_connect_timeout(self.cfg.connect_timeout)
                    .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
                    .with_keep_alive_while_idle(true);
                if let Some((u, p)) = &self.cfg.user {
                    opts = opts.with_user(u.clone(), p.clone());
                }
                if self.cfg.tls {
                    let mut tls = etcd_client::TlsOptions::new();
                    if let Some(ca) = &self.cfg.ca_file {
                        let pem = std::fs::read(ca).map_err(|e| {
                            self.err(None, &format!("cannot read the CA file {ca}"), e)
                        })?;
                        tls = tls.ca_certificate(etcd_client::Certificate::from_pem(pem));
                    }
                    if let Some(d) = &self.cfg.tls_domain {
                        tls = tls.domain_name(d.clone());
                    }
                    opts = opts.with_tls(tls);
                }
                let connect = Client::connect(&self.cfg.endpoints, Some(opts));
                match tokio::time::timeout(self.cfg.connect_timeout, connect).await {
                    Ok(Ok(c)) => Ok(c),
                    Ok(Err(e)) => Err(self.err(None, "cannot connect to etcd", e)),
                    Err(_) => Err(Error::backend(
                        self.url.clone(),
                        None,
                        format!(
                            "cannot connect to etcd within {:?} (is the cluster up?)",
                            self.cfg.connect_timeout
                        ),
                        None,
                    )),
                }
            })
            .await?;
        Ok(c.clone())
    }

    /// The client's live lease, granting a new one if there is none or it was lost.
    async fn session(&self, client: &Client) -> Result<Arc<Session>> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref()
            && s.lost_reason().is_none()
        {
            return Ok(Arc::clone(s));
        }
        let grant = Session::grant(client, self.cfg.lease_ttl);
        let s = match tokio::time::timeout(self.cfg.connect_timeout, grant).await {
            Ok(Ok(s)) => Arc::new(s),
            Ok(Err(e)) => {
                // The first request of a client: a transport failure over plain HTTP is most
                // often a member that serves TLS only.
                let transport = matches!(&e, etcd_client::Error::GRpcStatus(s) if matches!(
                    s.code(),
                    tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
                ));
                // Over TLS, the same failure without a certificate complaint is most often a
                // member that speaks plain HTTP (it resets the connection, or answers garbage).
                let what = if transport && !self.cfg.tls {
                    "cannot grant an etcd lease (if the members serve TLS only, add `?tls=true`, \
                     and `ca_file=` for a private CA)"
                } else if transport && !e.to_string().contains("certificate") {
                    "cannot grant an etcd lease (the TLS handshake failed: if the members serve \
                     plain HTTP, drop `tls=true`)"
                } else {
                    "cannot grant an etcd lease"
                };
                return Err(self.err(None, what, e));
            }
            Err(_) => return Err(self.timeout_err(None, "granting an etcd lease")),
        };
        *slot = Some(Arc::clone(&s));
        Ok(s)
    }

    fn timeout_err(&self, key: Option<&str>, what: &str) -> Error {
        Error::backend(
            self.url.clone(),
            key,
            format!(
                "{what} got no answer within {:?} (is the cluster up and has it a leader?)",
                self.cfg.connect_timeout
            ),
            None,
        )
    }

    /// Runs one request with the connect timeout as its bound.
    async fn bounded<T>(
        &self,
        key: &str,
        what: &str,
        fut: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.cfg.connect_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.err(Some(key), what, e)),
            Err(_) => Err(self.timeout_err(Some(key), what)),
        }
    }

    /// The prefix of `key`'s contenders: `namespace + key + "/"`.
    fn prefix(&self, key: &LockKey) -> Vec<u8> {
        format!("{}{}/", self.cfg.namespace, key.as_str()).into_bytes()
    }

    /// Puts our key in `key`'s line. Returns its create revision and the line at that moment.
    async fn enqueue(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        queued: &mut QueuedKey,
        session: &Session,
        prefix: &[u8],
    ) -> Result<(i64, Vec<Contender>), Enqueue> {
        let mut c = queued.client.clone();
        // A leftover key of ours (a release whose answer was lost) is deleted first, so that
        // every grant has a fresh create revision and so a fresh fencing token.
        for _ in 0..3 {
            let task = {
                let (mut c, prefix, my_key) = (c.clone(), prefix.to_vec(), queued.key.clone());
                let (owner, lease) = (req.owner.clone(), session.id);
                tokio::spawn(
                    async move { ops::enqueue(&mut c, &prefix, &my_key, &owner, lease).await },
                )
            };
            // Kept in `queued` until its answer is in: a waiter dropped meanwhile learns from
            // it what to delete (see `cleanup`).
            let put = queued.put.insert(task);
            let answer = tokio::time::timeout(self.cfg.connect_timeout, put)
                .await
                .map(|joined| {
                    joined.unwrap_or_else(|e| {
                        Err(etcd_client::Error::Internal(format!(
                            "the enqueue task ended: {e}"
                        )))
                    })
                });
            if answer.is_ok() {
                queued.put = None; // answered: nothing left in flight
            }
            let put = match answer {
                Ok(Err(e)) if session::is_lease_not_found(&e) => {
                    session.mark_lost(format!("the server no longer knows the lease ({e})"));
                    return Err(Enqueue::LeaseGone);
                }
                Ok(r) => {
                    r.map_err(|e| self.err(Some(key.as_str()), "cannot enqueue the lock key", e))
                }
                Err(_) => Err(self.timeout_err(Some(key.as_str()), "enqueuing the lock key")),
            };
            match put.map_err(Enqueue::Failed)? {
                Enqueued::Created { rev, contenders } => {
                    queued.rev = Some(rev);
                    return Ok((rev, contenders));
                }
                Enqueued::Exists { rev } => {
                    let del = ops::delete_if(&mut c, &queued.key, rev);
                    self.bounded(key.as_str(), "cannot delete a leftover lock key", del)
                        .await
                        .map_err(Enqueue::Failed)?;
                }
            }
        }
        Err(Enqueue::Failed(Error::backend(
            self.url.clone(),
            Some(key.as_str()),
            "the lock key of this client keeps reappearing; is another process using the same \
             etcd lease?",
            None,
        )))
    }

    /// Subscribes to the deletions on the line, then reads the line, atomically with the
    /// proof that our key (`mine`, created at `rev`) still exists: every deletion after that
    /// read reaches the subscription. A member that cannot be reached (killed while the
    /// cluster elects, say) is retried within the connect timeout: the client sends the next
    /// request to another member.
    async fn line_snapshot(
        &self,
        key: &LockKey,
        client: &mut Client,
        prefix: &[u8],
        mine: &[u8],
        rev: i64,
    ) -> Result<(broadcast::Receiver<Deleted>, Checked)> {
        const RETRY: Duration = Duration::from_millis(100);
        let until = Instant::now() + self.cfg.connect_timeout;
        loop {
            let attempt = async {
                let sub = self.watches.subscribe(client, prefix).await?;
                let checked = ops::check(client, prefix, mine, rev).await?;
                Ok::<_, etcd_client::Error>((sub, checked))
            };
            match tokio::time::timeout_at(until.into(), attempt).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) if session::is_unavailable(&e) && Instant::now() + RETRY < until => {
                    tokio::time::sleep(RETRY).await;
                }
                Ok(Err(e)) => {
                    return Err(self.err(Some(key.as_str()), "cannot read the lock line", e));
                }
                Err(_) => return Err(self.timeout_err(Some(key.as_str()), "reading the lock line")),
            }
        }
    }

    async fn acquire_inner(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        wait: bool,
    ) -> Result<Option<Grant>> {
        let prefix = self.prefix(key);
        let turn = if wait {
            self.queue.turn(key.as_str()).await
        } else {
            match self.queue.try_turn(key.as_str()) {
                Some(t) => t,
                None => return Ok(None), // held or awaited by this very client
            }
        };
        let mut client = self.client().await?;
        // A line watch already in place, subscribed to before enqueuing, reports every
        // deletion after the enqueue: then no read of the line is needed at all.
        let mut early = if wait {
            self.watches.subscribe_live(&prefix)
        } else {
            None
        };
        let mut turn = Some(turn);
        let mut attempts = 0;
        let (session, queued, rev, line) = loop {
            let session = self.session(&client).await?;
            let mut my_key = prefix.clone();
            my_key.extend_from_slice(format!("{:x}", session.id).as_bytes());
            let mut queued = QueuedKey {
                client: client.clone(),
                key: my_key,
                rev: None,
                put: None,
                turn: turn.take(),
            };
            match self.enqueue(key, req, &mut queued, &session, &prefix).await {
                Ok((rev, line)) => break (session, queued, rev, line),
                // Our lease is gone (nothing of it can be in line): once more with a new one.
                Err(Enqueue::LeaseGone) if attempts == 0 => {
                    attempts += 1;
                    turn = queued.turn.take();
                }
                Err(Enqueue::LeaseGone) => {
                    return Err(Error::backend(
                        self.url.clone(),
                        Some(key.as_str()),
                        "etcd keeps forgetting this client's new lease",
                        None,
                    ));
                }
                Err(Enqueue::Failed(e)) => return Err(e),
            }
        };
        let mut ahead: HashSet<Vec<u8>> = line
            .into_iter()
            .filter(|c| c.create_rev < rev)
            .map(|c| c.key)
            .collect();
        if !ahead.is_empty() && !wait {
            queued.leave().await;
            return Ok(None);
        }
        let vanished = || {
            Error::backend(
                self.url.clone(),
                Some(key.as_str()),
                "the lock key of this waiter disappeared while it waited (its etcd lease \
                 expired, or someone deleted it); not granted",
                None,
            )
        };
        // The line as of revision `since`; every deletion after it reaches `sub`.
        let mut since = rev;
        while !ahead.is_empty() {
            let mut sub = match early.take() {
                Some(sub) => sub,
                None => {
                    let (sub, checked) = self
                        .line_snapshot(key, &mut client, &prefix, &queued.key, rev)
                        .await?;
                    match checked {
                        Checked::Vanished => return Err(vanished()),
                        Checked::Ahead { ahead: a, at } => {
                            ahead = a.into_iter().map(|c| c.key).collect();
                            since = at;
                        }
                    }
                    if ahead.is_empty() {
                        break;
                    }
                    sub
                }
            };
            // Our key's own deletion is seen on the same watch, in revision order: when the
            // last key ahead goes and ours has not, ours existed with nobody ahead (a waiter
            // whose lease expired while queued is never told it holds).
            tokio::select! {
                why = session.lost() => {
                    return Err(Error::backend(
                        self.url.clone(),
                        Some(key.as_str()),
                        format!("the etcd lease of this client was lost while waiting: {why}"),
                        None,
                    ));
                }
                line = wait_line(&mut sub, &mut ahead, &queued.key, since) => match line {
                    Line::Clear => {}
                    Line::Vanished => return Err(vanished()),
                    Line::Recheck => {}
                },
            }
        }
        // Granted: nobody was ahead at a revision where our key provably existed. The lease
        // must also still be provable, or the key may vanish at any moment.
        if !session.provably_alive() {
            let why = session
                .lost_reason()
                .unwrap_or_else(|| "no keep-alive confirmed in time".into());
            return Err(Error::backend(
                self.url.clone(),
                Some(key.as_str()),
                format!("the etcd lease of this client was lost: {why}"),
                None,
            ));
        }
        let lease = queued.into_lease(rev, Arc::clone(&session), self.url.clone());
        Ok(Some(Grant {
            lease: std::sync::Arc::new(lease),
            token: FencingToken(rev as u64),
            expiry: Expiry::Session,
        }))
    }
}

#[async_trait]
impl Backend for EtcdBackend {
    fn scheme(&self) -> &'static str {
        "etcd"
    }

    fn display_url(&self) -> String {
        self.url.clone()
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>> {
        self.acquire_inner(key, req, false).await
    }

    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        locksmith_core::wait_until(deadline, self.acquire_inner(key, req, true)).await
    }

    /// The recipe's put and delete transactions, without the line read and the watch (see
    /// `native.rs`), on the key locksmith itself would use, with this client's lease.
    async fn native_pair(&self, key: &LockKey) -> Result<Option<&'static str>> {
        let mut client = self.client().await?;
        let session = self.session(&client).await?;
        let mut my_key = self.prefix(key);
        my_key.extend_from_slice(format!("{:x}", session.id).as_bytes());
        let pair = crate::native::pair(&mut client, &my_key, session.id);
        if !self
            .bounded(key.as_str(), "the native pair failed", pair)
            .await?
        {
            return Err(Error::backend(
                self.url.clone(),
                Some(key.as_str()),
                "the key is held; the native pair does not wait",
                None,
            ));
        }
        Ok(Some(crate::native::NAME))
    }

    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>> {
        let mut client = self.client().await?;
        let prefix = self.prefix(key);
        let first = ops::first(&mut client, &prefix);
        let Some(kv) = self
            .bounded(key.as_str(), "cannot read the lock line", first)
            .await?
        else {
            return Ok(None);
        };
        let owner = match std::str::from_utf8(kv.value()) {
            Ok(v) if !v.is_empty() => v.to_owned(),
            _ => format!("etcd lease {:x} (no owner label)", kv.lease()),
        };
        Ok(Some(
            HolderInfo::new(owner).token(FencingToken(kv.create_revision() as u64)),
        ))
    }
}
