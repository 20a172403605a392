//! The Redis Cluster backend (`redis+cluster://`, `rediss+cluster://`): the same scripts and
//! on-server layout as `redis://`, each script sent to the master of its keys' slot.

mod conn;
mod lease;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use locksmith_core::{
    AcquireRequest, Backend, Capabilities, Error, Expiry, FencingToken, Grant, HolderInfo,
    KeyedQueue, LockKey, Result, mask_url,
};

use crate::conn::Node;
use crate::layout::{Acquired, Names, ValueParts, hash_tag, holder_from_value};
use crate::scripts::{ACQUIRE, COMPARE_AND_DELETE, HOLDER, HolderRead};
use crate::wait::Attempt;
use crate::waker::Waker;
use conn::Cluster;
use lease::ClusterLease;

/// What `redis+cluster://` can do: as [`crate::capabilities`] (TTL leases, holder info, not
/// fair).
pub fn cluster_capabilities() -> Capabilities {
    crate::backend::capabilities()
}

/// The Redis Cluster backend. Cheap to clone; clones share the connections.
#[derive(Clone, Debug)]
pub struct RedisClusterBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cluster: Arc<Cluster>,
    waker: Waker,
    /// Local waiters line up per key; only the head waits on the server.
    queue: KeyedQueue<()>,
    prefix: String,
    url: String,
}

impl RedisClusterBackend {
    /// A backend for `redis+cluster://[[user]:password@]host:port,host:port,…[?options]` (or
    /// `rediss+cluster://` for TLS). The hosts are seeds: the client learns the other nodes
    /// from them. Nothing is connected yet: the first request connects.
    ///
    /// # Errors
    /// [`locksmith_core::Error::InvalidUrl`] naming what is wrong.
    pub fn from_url(url: &str) -> Result<Self> {
        let (seeds, opts) = crate::url::parse_cluster(url)?;
        let masked = mask_url(url);
        let cluster = Arc::new(Cluster::new(&seeds, masked.clone(), &opts)?);
        // Release messages are classic PUBLISH, which a cluster delivers to subscribers on
        // every node: one subscription on any seed hears every key's releases.
        let mut subscribe_at = seeds
            .iter()
            .map(|t| Node::new(t, mask_url(&t.url), &opts).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let first = subscribe_at.remove(0);
        Ok(Self {
            inner: Arc::new(Inner {
                waker: Waker::over(first, subscribe_at),
                cluster,
                queue: KeyedQueue::new(),
                prefix: opts.prefix,
                url: masked,
            }),
        })
    }

    /// The names a key uses on the server: lock key, fence counter and release channel (the
    /// key and the counter share one hash slot).
    pub fn server_names(&self, key: &LockKey) -> (String, String, String) {
        let n = Names::new(&self.inner.prefix, key);
        (
            n.lock().to_owned(),
            n.fence().to_owned(),
            n.channel().to_owned(),
        )
    }

    /// Connects now (reads the slot map from a seed), to fail early on a bad URL, a cluster
    /// that is down or a wrong password.
    ///
    /// # Errors
    /// [`locksmith_core::Error::Backend`] within the connect timeout.
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub async fn connect(&self) -> Result<()> {
        self.inner.cluster.conn().await.map(|_| ())
    }
}

impl Inner {
    /// One attempt: the acquire script on the master of the key's slot. A grant then asks
    /// that master's identity in the background (the attempt's answer does not wait for it);
    /// the first renewal asks too.
    async fn attempt(self: &Arc<Self>, names: &Names, req: &AcquireRequest) -> Result<Attempt> {
        let mut conn = self.cluster.conn().await?;
        let parts = ValueParts::new(&req.owner);
        let ttl_ms = crate::layout::whole_ms(req.ttl);
        // Armed until the answer is in: if this future is dropped (or the request fails) after
        // the script may have run, a release by the owner prefix follows.
        let mut undo = Undo {
            inner: Arc::clone(self),
            names,
            prefix: Some(parts.owner_prefix()),
        };
        let keys_and_args = (names.lock(), names.fence(), parts.value(), ttl_ms);
        let sent_at = Instant::now();
        let reply = ACQUIRE.run::<i64, _, _>(&mut conn, 2, keys_and_args).await;
        let n = reply.map_err(|e| self.cluster.error(Some(names.lock()), e))?;
        let token = match Acquired::from_reply(n) {
            Acquired::Granted(token) => token,
            Acquired::Busy(pttl) => {
                undo.prefix = None;
                return Ok(Attempt::Busy(pttl));
            }
        };
        let owner_prefix = undo.prefix.take().expect("armed");
        let master = Arc::new(Mutex::new(None));
        {
            let (cluster, master, lock) = (
                Arc::clone(&self.cluster),
                Arc::clone(&master),
                names.lock().to_owned(),
            );
            tokio::spawn(async move {
                if let Ok(Some(now)) = cluster.identity(&mut conn, &lock).await {
                    master.lock().expect("lease").get_or_insert(now);
                }
            });
        }
        let lease = ClusterLease {
            cluster: Arc::clone(&self.cluster),
            names: names.clone(),
            owner_prefix,
            master,
        };
        Ok(Attempt::Granted(Grant {
            lease: std::sync::Arc::new(lease),
            token: FencingToken(token),
            expiry: Expiry::Ttl {
                sent_at,
                ttl: Duration::from_millis(ttl_ms),
            },
        }))
    }
}

/// Releases, by the attempt's owner prefix, whatever a dropped or failed attempt may have
/// been granted. Disarmed (prefix taken) once the answer is in.
struct Undo<'a> {
    inner: Arc<Inner>,
    names: &'a Names,
    prefix: Option<Arc<str>>,
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        let Some(prefix) = self.prefix.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let lease = ClusterLease {
            cluster: Arc::clone(&self.inner.cluster),
            names: self.names.clone(),
            owner_prefix: prefix,
            master: Arc::new(Mutex::new(None)),
        };
        rt.spawn(async move {
            let _ = lease.release_script().await;
        });
    }
}

#[async_trait]
impl Backend for RedisClusterBackend {
    fn scheme(&self) -> &'static str {
        "redis+cluster"
    }

    fn display_url(&self) -> String {
        self.inner.url.clone()
    }

    fn capabilities(&self) -> Capabilities {
        cluster_capabilities()
    }

    /// A key whose name has a `}` but no hash tag (`a}b`, `x{}y`) cannot share its hash slot
    /// with its fence counter, so the scripts cannot run on a cluster: refused.
    fn check_key(&self, key: &LockKey) -> Result<()> {
        let lock = Names::new(&self.inner.prefix, key).lock().to_owned();
        if hash_tag(&lock).is_none() && lock.contains('}') {
            return Err(Error::InvalidKey {
                key: key.as_str().to_owned(),
                rule: "on Redis Cluster a key (after the prefix) with a `}` must carry a \
                       hash tag (`{tag}…`, tag not empty), so that its fence counter can \
                       share its hash slot; write e.g. `{tag}a}b`"
                    .into(),
            });
        }
        Ok(())
    }

    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>> {
        self.check_key(key)?;
        let names = Names::new(&self.inner.prefix, key);
        match self.inner.attempt(&names, req).await? {
            Attempt::Granted(g) => Ok(Some(g)),
            Attempt::Busy(_) => Ok(None),
        }
    }

    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        self.check_key(key)?;
        let names = Names::new(&self.inner.prefix, key);
        let inner = &self.inner;
        let _turn = inner.queue.turn(names.lock()).await;
        // Fast path: a free key costs one round trip, no subscription.
        match inner.attempt(&names, req).await? {
            Attempt::Granted(g) => return Ok(Some(g)),
            Attempt::Busy(_) if deadline.is_some_and(|d| Instant::now() >= d) => return Ok(None),
            Attempt::Busy(_) => {}
        }
        crate::wait::until_released(&inner.waker, names.channel(), deadline, || {
            inner.attempt(&names, req)
        })
        .await
    }

    /// `SET NX PX` + an EVALSHA compare-and-delete on the key's lock name, each sent to the
    /// master of its slot.
    async fn native_pair(&self, key: &LockKey) -> Result<Option<&'static str>> {
        let names = Names::new(&self.inner.prefix, key);
        let cluster = &self.inner.cluster;
        let mut conn = cluster.conn().await?;
        let value = crate::layout::secret();
        let set: Option<String> = redis::cmd("SET")
            .arg(names.lock())
            .arg(&value)
            .arg("NX")
            .arg("PX")
            .arg(30_000)
            .query_async(&mut conn)
            .await
            .map_err(|e| cluster.error(Some(names.lock()), e))?;
        if set.is_none() {
            return Err(crate::native::busy(&self.inner.url, names.lock()));
        }
        let _: i64 = COMPARE_AND_DELETE
            .run(&mut conn, 1, (names.lock(), &value))
            .await
            .map_err(|e| cluster.error(Some(names.lock()), e))?;
        Ok(Some(crate::native::NAME))
    }

    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>> {
        let names = Names::new(&self.inner.prefix, key);
        let mut conn = self.inner.cluster.conn().await?;
        // One script (a single command: the client follows ASK only for those).
        let (value, pttl, counter): HolderRead = HOLDER
            .run(&mut conn, 2, (names.lock(), names.fence()))
            .await
            .map_err(|e| self.inner.cluster.error(Some(names.lock()), e))?;
        Ok(value.map(|v| holder_from_value(&v, pttl, counter)))
    }
}
