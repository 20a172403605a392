//! [`ZooKeeperBackend`]: Curator's `InterProcessMutex` recipe behind locksmith's [`Backend`].

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use locksmith_core::{
    AcquireRequest, Backend, Capabilities, Error, Expiry, FencingToken, Grant, HolderInfo,
    KeyedQueue, LeaseModel, LockKey, Result, mask_url,
};
use tokio::sync::Mutex;
use zookeeper_client as zk;

use crate::lease::{NodeRef, QueuedNode};
use crate::path;
use crate::session::Session;
use crate::url::{self, Config};

/// What the ZooKeeper backend can do.
pub fn capabilities() -> Capabilities {
    Capabilities::new(LeaseModel::Session)
        .fair(true)
        .holder_info(true)
}

/// The `zookeeper://` backend: one ZooKeeper session per `ZooKeeperBackend`, shared by all its
/// locks; see the [crate docs](crate).
pub struct ZooKeeperBackend {
    cfg: Config,
    url: String,
    session: Mutex<Option<Arc<Session>>>,
    queue: KeyedQueue<()>,
}

impl std::fmt::Debug for ZooKeeperBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZooKeeperBackend")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl ZooKeeperBackend {
    /// A backend for a `zookeeper://` URL. Nothing is connected until the first lock operation.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] naming what is wrong with the URL.
    pub fn from_url(url: &str) -> Result<Self> {
        Ok(Self {
            cfg: url::parse(url)?,
            url: mask_url(url),
            session: Mutex::new(None),
            queue: KeyedQueue::new(),
        })
    }

    fn err(&self, key: Option<&str>, what: &str, e: zk::Error) -> Error {
        let hint = match e {
            zk::Error::NoAuth => {
                " (the node's ACL does not grant this client: check USER:PASSWORD@ in the URL)"
            }
            _ => "",
        };
        Error::backend(
            self.url.clone(),
            key,
            format!("{what}: {e}{hint}"),
            Some(Box::new(e) as _),
        )
    }

    fn timeout_err(&self, key: Option<&str>, what: &str) -> Error {
        Error::backend(
            self.url.clone(),
            key,
            format!(
                "{what} got no answer within {:?} (is the ensemble up and has it a quorum?)",
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
        fut: impl Future<Output = std::result::Result<T, zk::Error>>,
    ) -> Result<std::result::Result<T, zk::Error>> {
        tokio::time::timeout(self.cfg.connect_timeout, fut)
            .await
            .map_err(|_| self.timeout_err(Some(key), what))
    }

    /// The ACL of the folders and nodes this client creates: with digest credentials,
    /// everything for that identity only (so a chroot protected by the same identity stays
    /// protected below its first level); without, open to anyone (Curator's default).
    fn acls(&self) -> zk::Acls<'static> {
        if self.cfg.digest.is_some() {
            zk::Acls::creator_all()
        } else {
            zk::Acls::anyone_all()
        }
    }

    /// The client's live session, connecting a new one if there is none or it was lost.
    async fn session(&self) -> Result<Arc<Session>> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref()
            && s.lost_reason().is_none()
        {
            return Ok(Arc::clone(s));
        }
        let conn_timeout = self.cfg.session_timeout * 2 / 5;
        let mut connector = zk::Client::connector()
            .with_session_timeout(self.cfg.session_timeout)
            .with_connection_timeout(conn_timeout);
        if let Some(d) = &self.cfg.digest {
            connector = connector.with_auth("digest", d.as_bytes());
        }
        let connect = connector.connect(&self.cfg.connect_string);
        let client = match tokio::time::timeout(self.cfg.connect_timeout, connect).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.err(None, "cannot connect to ZooKeeper", e)),
            Err(_) => return Err(self.timeout_err(None, "connecting to ZooKeeper")),
        };
        let s = Arc::new(Session::new(client, conn_timeout));
        *slot = Some(Arc::clone(&s));
        Ok(s)
    }

    fn session_lost_err(&self, key: &str, when: &str, why: &str) -> Error {
        Error::backend(
            self.url.clone(),
            Some(key),
            format!("the ZooKeeper session was lost {when}: {why}"),
            None,
        )
    }

    /// After a connection loss: waits until the session is connected again (the client
    /// reconnects on its own), or fails if the session is lost first.
    async fn reconnected(&self, key: &str, session: &Session) -> Result<()> {
        session
            .connected()
            .await
            .map_err(|why| self.session_lost_err(key, "while reconnecting", &why))
    }

    /// Creates our sequential node under `dir` (creating `dir` as needed). A create whose
    /// answer was lost with the connection is looked for again, by the unique id in its name,
    /// once the session is connected again, before any new create: so there is never a second
    /// node of ours in the line.
    async fn create_node(
        &self,
        key: &LockKey,
        session: &Session,
        dir: &str,
        name_prefix: &str,
        owner: &str,
    ) -> Result<(String, i64)> {
        let client = &session.client;
        let prefix = format!("{dir}/{name_prefix}");
        let opts = zk::CreateMode::EphemeralSequential.with_acls(self.acls());
        let k = key.as_str();
        let mut maybe_created = false;
        for _ in 0..10 {
            if maybe_created {
                self.reconnected(k, session).await?;
                let list = client.list_children(dir);
                match self.bounded(k, "listing the lock folder", list).await? {
                    Ok(children) => {
                        if let Some(name) = children.iter().find(|c| c.starts_with(name_prefix)) {
                            let p = format!("{dir}/{name}");
                            let stat = client.check_stat(&p);
                            match self.bounded(k, "reading the lock node", stat).await? {
                                Ok(Some(stat)) => return Ok((p, stat.czxid)),
                                Ok(None) => {
                                    // Ours, and gone again: the session must have ended.
                                    return Err(self.session_lost_err(
                                        k,
                                        "while creating the lock node",
                                        "the new node vanished",
                                    ));
                                }
                                Err(zk::Error::ConnectionLoss) => continue,
                                Err(e) => {
                                    return Err(self.err(Some(k), "cannot read the lock node", e));
                                }
                            }
                        }
                        maybe_created = false;
                    }
                    Err(zk::Error::NoNode) => maybe_created = false,
                    Err(zk::Error::ConnectionLoss) => continue,
                    Err(e) => return Err(self.err(Some(k), "cannot list the lock folder", e)),
                }
            }
            let create = client.create(&prefix, owner.as_bytes(), &opts);
            match self.bounded(k, "creating the lock node", create).await? {
                Ok((stat, seq)) => return Ok((format!("{prefix}{seq}"), stat.czxid)),
                Err(zk::Error::NoNode) => {
                    let dir_opts = zk::CreateMode::Container.with_acls(self.acls());
                    let mk = client.mkdir(dir, &dir_opts);
                    match self.bounded(k, "creating the lock folder", mk).await? {
                        Ok(()) | Err(zk::Error::NodeExists) => {}
                        Err(zk::Error::ConnectionLoss) => self.reconnected(k, session).await?,
                        Err(e) => {
                            return Err(self.err(Some(k), "cannot create the lock folder", e));
                        }
                    }
                }
                Err(zk::Error::ConnectionLoss) => maybe_created = true,
                Err(e) => return Err(self.err(Some(k), "cannot create the lock node", e)),
            }
        }
        Err(Error::backend(
            self.url.clone(),
            Some(k),
            "cannot create the lock node (the folder keeps vanishing or the connection keeps \
             failing)",
            None,
        ))
    }

    async fn acquire_inner(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        wait: bool,
    ) -> Result<Option<Grant>> {
        let k = key.as_str();
        let turn = if wait {
            self.queue.turn(k).await
        } else {
            match self.queue.try_turn(k) {
                Some(t) => t,
                None => return Ok(None),
            }
        };
        let session = self.session().await?;
        let client = session.client.clone();
        let dir = path::lock_dir(k);
        let name_prefix = path::node_prefix(&uuid::Uuid::new_v4().to_string());
        let mut queued = QueuedNode {
            client: client.clone(),
            node: NodeRef::Maybe {
                dir: dir.clone(),
                name_prefix: name_prefix.clone(),
            },
            turn: Some(turn),
        };
        let (my_path, czxid) = self
            .create_node(key, &session, &dir, &name_prefix, &req.owner)
            .await?;
        queued.node = NodeRef::Known(my_path.clone());
        let my_name = my_path.rsplit('/').next().unwrap_or_default().to_owned();
        loop {
            let list = client.list_children(&dir);
            let children = match self.bounded(k, "listing the lock folder", list).await? {
                Ok(c) => c,
                Err(zk::Error::ConnectionLoss) => {
                    self.reconnected(k, &session).await?;
                    continue;
                }
                Err(e) => return Err(self.err(Some(k), "cannot list the lock folder", e)),
            };
            let line = path::line(children);
            let Some(i) = line.iter().position(|c| *c == my_name) else {
                return Err(Error::backend(
                    self.url.clone(),
                    Some(k),
                    "the lock node of this waiter disappeared while it waited (its session \
                     ended, or someone deleted it); not granted",
                    None,
                ));
            };
            if i == 0 {
                break;
            }
            if !wait {
                queued.leave().await;
                return Ok(None);
            }
            let pred = format!("{dir}/{}", line[i - 1]);
            let watch = client.check_and_watch_stat(&pred);
            let (stat, watcher) = match self.bounded(k, "watching the lock line", watch).await? {
                Ok(v) => v,
                Err(zk::Error::ConnectionLoss) => {
                    self.reconnected(k, &session).await?;
                    continue;
                }
                Err(e) => return Err(self.err(Some(k), "cannot watch the lock line", e)),
            };
            if stat.is_none() {
                continue;
            }
            tokio::select! {
                why = session.lost() => {
                    return Err(self.session_lost_err(k, "while waiting", &why));
                }
                _ = watcher.changed() => {}
            }
        }
        if let Some(why) = session.lost_reason() {
            return Err(self.session_lost_err(k, "just as the lock was granted", &why));
        }
        let lease = queued.into_lease(my_path, czxid, Arc::clone(&session), self.url.clone());
        Ok(Some(Grant {
            lease: std::sync::Arc::new(lease),
            token: FencingToken(czxid as u64),
            expiry: Expiry::Session,
        }))
    }
}

#[async_trait]
impl Backend for ZooKeeperBackend {
    fn scheme(&self) -> &'static str {
        "zookeeper"
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

    /// Creates the key's `EPHEMERAL_SEQUENTIAL` lock node and deletes it: the recipe's two
    /// writes, without listing the line or watching a predecessor.
    async fn native_pair(&self, key: &LockKey) -> Result<Option<&'static str>> {
        let k = key.as_str();
        let session = self.session().await?;
        let name_prefix = path::node_prefix(&uuid::Uuid::new_v4().to_string());
        let (node, _) = self
            .create_node(key, &session, &path::lock_dir(k), &name_prefix, "")
            .await?;
        let delete = session.client.delete(&node, None);
        if let Err(e) = self.bounded(k, "deleting the lock node", delete).await? {
            return Err(self.err(Some(k), "cannot delete the lock node", e));
        }
        Ok(Some("create EPHEMERAL_SEQUENTIAL + delete"))
    }

    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>> {
        let k = key.as_str();
        let session = self.session().await?;
        let client = &session.client;
        let dir = path::lock_dir(k);
        loop {
            let list = client.list_children(&dir);
            let children = match self.bounded(k, "listing the lock folder", list).await? {
                Ok(c) => c,
                Err(zk::Error::NoNode) => return Ok(None),
                Err(e) => return Err(self.err(Some(k), "cannot list the lock folder", e)),
            };
            let Some(first) = path::line(children).into_iter().next() else {
                return Ok(None);
            };
            let get = client.get_data(&format!("{dir}/{first}"));
            match self.bounded(k, "reading the lock node", get).await? {
                Ok((data, stat)) => {
                    let owner = match String::from_utf8(data) {
                        Ok(s) if !s.is_empty() => s,
                        _ => format!("session {:#x} (no owner label)", stat.ephemeral_owner),
                    };
                    return Ok(Some(
                        HolderInfo::new(owner).token(FencingToken(stat.czxid as u64)),
                    ));
                }
                Err(zk::Error::NoNode) => continue, // released meanwhile: look again
                Err(e) => return Err(self.err(Some(k), "cannot read the lock node", e)),
            }
        }
    }
}
