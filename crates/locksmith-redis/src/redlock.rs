//! The `redlock://` backend: the Redlock algorithm over N independent Redis primaries, with
//! fencing tokens (see the crate docs, "Redlock" and "Fencing tokens on Redlock").

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use locksmith_core::{
    AcquireRequest, Backend, Capabilities, Error, Expiry, FencingToken, Grant, HolderInfo,
    KeyedQueue, Lease, LeaseModel, LockKey, Result, mask_url,
};

use crate::conn::Node;
use crate::fanout::{Answers, answered, count, errors, fan_out};
use crate::layout::{Acquired, Names, ValueParts, holder_from_value, owner_prefix_of};
use crate::renew_batch::{RenewRequest, Renewer};
use crate::scripts::{ACQUIRE, FENCE_WRITEBACK, HOLDER, HolderRead, Lua, RELEASE};
use crate::url::UrlOptions;
use crate::waker::{Registration, Waker};

/// What `redlock://` can do: TTL leases, holder info, not fair.
pub fn redlock_capabilities() -> Capabilities {
    Capabilities::new(LeaseModel::Ttl).holder_info(true)
}

/// The `redlock://host:port,host:port,…` backend. Cheap to clone; clones share connections.
#[derive(Clone, Debug)]
pub struct RedlockBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Shared {
    nodes: Vec<Arc<Node>>,
    /// Per node: renewals due together go in one script call.
    renewers: Vec<Arc<Renewer>>,
    url: String,
    opts: UrlOptions,
}

#[derive(Debug)]
struct Inner {
    shared: Arc<Shared>,
    wakers: Vec<Waker>,
    queue: KeyedQueue<()>,
}

enum Attempt {
    Granted(Grant),
    /// Not granted; `split` when some nodes granted but not a majority (retry after a random
    /// delay), and the smallest PTTL among the nodes that refused (-1 when unknown).
    Busy {
        pttl: i64,
        split: bool,
    },
}

impl Shared {
    fn quorum(&self) -> usize {
        self.nodes.len() / 2 + 1
    }

    /// The per-node timeout: much smaller than the TTL.
    fn node_timeout(&self, ttl: Duration) -> Duration {
        self.opts
            .command_timeout
            .min(ttl / 10)
            .max(Duration::from_millis(2))
    }

    /// The clock-drift allowance: the URL's `drift=`, else TTL × 1% + 2 ms.
    fn drift(&self, ttl: Duration) -> Duration {
        self.opts
            .drift
            .unwrap_or_else(|| ttl / 100 + Duration::from_millis(2))
    }

    fn url_of(&self, i: usize) -> String {
        self.nodes[i].url.clone()
    }

    fn no_quorum<T>(&self, key: &str, what: &str, answers: &Answers<T>) -> Error {
        Error::backend(
            &self.url,
            Some(key),
            format!(
                "{what}: only {} of {} Redlock nodes answered, a quorum is {} ({})",
                answered(answers),
                self.nodes.len(),
                self.quorum(),
                errors(answers)
            ),
            None,
        )
    }

    /// The acquire script on node `i` (an owned future: see `fan_out`).
    fn acquire_on(
        self: &Arc<Self>,
        i: usize,
        names: &Arc<Names>,
        parts: &Arc<ValueParts>,
        ttl_ms: u64,
    ) -> impl Future<Output = Result<(Acquired, Arc<str>)>> + Send + 'static {
        let (this, names, parts) = (Arc::clone(self), Arc::clone(names), Arc::clone(parts));
        async move {
            let node = &this.nodes[i];
            let live = node.live().await?;
            let mut conn = live.conn.clone();
            let keys_and_args = (names.lock(), names.fence(), parts.value(), ttl_ms);
            let n: i64 = ACQUIRE
                .run(&mut conn, 2, keys_and_args)
                .await
                .map_err(|e| node.failed(&live, Some(names.lock()), e))?;
            Ok((Acquired::from_reply(n), live.run_id))
        }
    }

    /// Runs an owner-checked script (release, renew, write-back) on node `i`: `Ok(true)` when
    /// it acted. With `run_id`, a node that restarted since (it lost its copy) answers
    /// `Ok(false)` without being asked. An owned future: see `fan_out`.
    #[allow(clippy::too_many_arguments)]
    fn owner_script_on(
        self: &Arc<Self>,
        i: usize,
        script: &'static Lua,
        names: &Arc<Names>,
        prefix: &Arc<str>,
        arg: &Arc<str>,
        with_fence: bool,
        run_id: Option<Arc<str>>,
    ) -> impl Future<Output = Result<bool>> + Send + 'static {
        let (this, names, prefix, arg) = (
            Arc::clone(self),
            Arc::clone(names),
            Arc::clone(prefix),
            Arc::clone(arg),
        );
        async move {
            let node = &this.nodes[i];
            let live = node.live().await?;
            if run_id.is_some_and(|r| r != live.run_id) {
                return Ok(false);
            }
            let mut conn = live.conn.clone();
            let done: i64 = if with_fence {
                let keys_and_args = (names.lock(), names.fence(), &*prefix, &*arg);
                script.run(&mut conn, 2, keys_and_args).await
            } else {
                script
                    .run(&mut conn, 1, (names.lock(), &*prefix, &*arg))
                    .await
            }
            .map_err(|e| node.failed(&live, Some(names.lock()), e))?;
            Ok(done == 1)
        }
    }

    /// Releases on every node: `Ok(true)` when a quorum released it. Returns as soon as the
    /// answers decide that; the requests to the other nodes are finished in the background.
    async fn release_all(
        self: &Arc<Self>,
        names: &Arc<Names>,
        prefix: &Arc<str>,
        timeout: Duration,
    ) -> Result<bool> {
        let (n, quorum) = (self.nodes.len(), self.quorum());
        let channel: Arc<str> = Arc::from(names.channel());
        let answers = fan_out(
            n,
            timeout,
            |i| self.url_of(i),
            |i| self.owner_script_on(i, &RELEASE, names, prefix, &channel, false, None),
            |a| count(a, |r| *r) >= quorum || count(a, |r| !*r) > n - quorum,
        )
        .await;
        let released = count(&answers, |r| *r);
        let refused = count(&answers, |r| !*r);
        if released >= quorum {
            Ok(true)
        } else if released + refused >= quorum || refused > n - quorum {
            Ok(false)
        } else {
            Err(self.no_quorum(names.lock(), "release not confirmed", &answers))
        }
    }

    async fn attempt_now(
        self: &Arc<Self>,
        names: &Arc<Names>,
        req: &AcquireRequest,
    ) -> Result<Attempt> {
        let n = self.nodes.len();
        let quorum = self.quorum();
        let ttl_ms = crate::layout::whole_ms(req.ttl);
        let ttl = Duration::from_millis(ttl_ms);
        let timeout = self.node_timeout(ttl);
        let parts = Arc::new(ValueParts::new(&req.owner));
        let prefix: Arc<str> = parts.owner_prefix();
        // Armed until the outcome is known: if this future is dropped, or the attempt fails,
        // after a node may have granted, the grant is released on every node.
        let mut undo = Undo {
            shared: self,
            names,
            prefix: Some(&prefix),
            timeout,
        };
        let sent_at = Instant::now();
        let answers = fan_out(
            n,
            timeout,
            |i| self.url_of(i),
            |i| self.acquire_on(i, names, &parts, ttl_ms),
            // Stop early on a quorum, or when enough nodes answered "busy" that no quorum is
            // possible; unreachable nodes are waited for (bounded), so that the error can say
            // how many answered.
            |a| {
                let granted = count(a, |(g, _)| matches!(g, Acquired::Granted(_)));
                let busy = count(a, |(g, _)| matches!(g, Acquired::Busy(_)));
                granted >= quorum || busy > n - quorum
            },
        )
        .await;
        let granted = count(&answers, |(g, _)| matches!(g, Acquired::Granted(_)));
        if granted < quorum {
            // Undo wherever it was granted (or may still land): `undo` stays armed.
            if granted == 0 && answered(&answers) == n {
                undo.disarm();
            }
            if answered(&answers) < quorum {
                return Err(self.no_quorum(names.lock(), "cannot acquire", &answers));
            }
            let pttl = answers
                .iter()
                .filter_map(|a| match a {
                    Some(Ok((Acquired::Busy(p), _))) if *p >= 0 => Some(*p),
                    _ => None,
                })
                .min()
                .unwrap_or(-1);
            return Ok(Attempt::Busy {
                pttl,
                split: granted > 0,
            });
        }
        let token = answers
            .iter()
            .filter_map(|a| match a {
                Some(Ok((Acquired::Granted(t), _))) => Some(*t),
                _ => None,
            })
            .max()
            .expect("a quorum granted");
        let run_ids: Vec<Option<Arc<str>>> = answers
            .iter()
            .map(|a| match a {
                Some(Ok((_, r))) => Some(Arc::clone(r)),
                _ => None,
            })
            .collect();
        // The token must be on the counters of a majority (while this grant holds the key
        // there) before anyone may use it. A node whose own INCR returned the token already
        // has it, set in the same script as the grant; in the usual case (the counters agree)
        // the granting quorum is such a majority and no write-back is needed. Otherwise the
        // token is written back to the other nodes until a majority has it.
        let at_token = count(
            &answers,
            |(g, _)| matches!(g, Acquired::Granted(t) if *t == token),
        );
        let written_ok = if at_token >= quorum {
            true
        } else {
            let token_arg: Arc<str> = Arc::from(token.to_string());
            let already: Vec<bool> = answers
                .iter()
                .map(|a| matches!(a, Some(Ok((Acquired::Granted(t), _))) if *t == token))
                .collect();
            let written = fan_out(
                n,
                timeout,
                |i| self.url_of(i),
                |i| {
                    let write = (!already[i]).then(|| {
                        self.owner_script_on(
                            i,
                            &FENCE_WRITEBACK,
                            names,
                            &prefix,
                            &token_arg,
                            true,
                            None,
                        )
                    });
                    async move {
                        match write {
                            Some(w) => w.await,
                            None => Ok(true),
                        }
                    }
                },
                |a| count(a, |r| *r) >= quorum || count(a, |r| !*r) > n - quorum,
            )
            .await;
            count(&written, |r| *r) >= quorum
        };
        let drift = self.drift(ttl);
        let elapsed = sent_at.elapsed();
        let valid = written_ok && elapsed + drift < ttl;
        if !valid {
            return Ok(Attempt::Busy {
                pttl: -1,
                split: true,
            });
        }
        undo.disarm();
        drop(undo);
        let lease = RedlockLease {
            shared: Arc::clone(self),
            names: Arc::clone(names),
            owner_prefix: prefix,
            ttl,
            run_ids,
        };
        Ok(Attempt::Granted(Grant {
            lease: std::sync::Arc::new(lease),
            token: FencingToken(token),
            expiry: Expiry::Ttl {
                sent_at,
                ttl: ttl - drift,
            },
        }))
    }

    /// One attempt; cancel-safe (see `Undo`).
    async fn attempt(
        self: &Arc<Self>,
        names: &Arc<Names>,
        req: &AcquireRequest,
    ) -> Result<Attempt> {
        self.attempt_now(names, req).await
    }
}

/// Releases, by the attempt's owner prefix and on every node, whatever an attempt that was
/// dropped, failed or was refused may have been granted. Disarmed once it is granted, or when
/// every node answered that it refused.
struct Undo<'a> {
    shared: &'a Arc<Shared>,
    names: &'a Arc<Names>,
    prefix: Option<&'a Arc<str>>,
    timeout: Duration,
}

impl Undo<'_> {
    fn disarm(&mut self) {
        self.prefix = None;
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        let Some(prefix) = self.prefix.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (shared, names, prefix, timeout) = (
            Arc::clone(self.shared),
            Arc::clone(self.names),
            Arc::clone(prefix),
            self.timeout,
        );
        rt.spawn(async move {
            let _ = shared.release_all(&names, &prefix, timeout).await;
        });
    }
}

impl RedlockBackend {
    /// A backend for `redlock://[[user]:password@]host:port,host:port,…[/db][?options]`
    /// (at least 3 hosts; 5 is usual). Nothing is connected yet.
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] naming what is wrong.
    pub fn from_url(url: &str) -> Result<Self> {
        let (targets, opts) = crate::url::parse_redlock(url)?;
        let nodes = targets
            .iter()
            .map(|t| Node::new(t, mask_url(&t.url), &opts).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let wakers = nodes.iter().map(|n| Waker::new(Arc::clone(n))).collect();
        Ok(Self {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    renewers: nodes.iter().map(|n| Renewer::new(Arc::clone(n))).collect(),
                    nodes,
                    url: mask_url(url),
                    opts,
                }),
                wakers,
                queue: KeyedQueue::new(),
            }),
        })
    }

    /// The number of nodes and the quorum.
    pub fn quorum(&self) -> (usize, usize) {
        (self.inner.shared.nodes.len(), self.inner.shared.quorum())
    }

    /// The waiting part of `acquire`, after the first attempt found the key held: listens for
    /// releases on every node that answers (a dead node is simply not heard) and retries.
    async fn wait_for_release(
        &self,
        names: &Arc<Names>,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        let shared = &self.inner.shared;
        let timeout = shared.node_timeout(req.ttl);
        let regs: Vec<Registration> = futures_util::future::join_all(
            self.inner
                .wakers
                .iter()
                .map(|w| tokio::time::timeout(timeout, w.register(names.channel()))),
        )
        .await
        .into_iter()
        .filter_map(|r| r.ok().and_then(Result::ok))
        .collect();
        let mut rxs: Vec<_> = regs.iter().map(|r| r.rx.clone()).collect();
        loop {
            for r in &regs {
                let _ = r.ensure_subscribed().await;
            }
            for rx in &mut rxs {
                rx.borrow_and_update();
            }
            let (pttl, split) = match shared.attempt(names, req).await? {
                Attempt::Granted(g) => return Ok(Some(g)),
                Attempt::Busy { pttl, split } => (pttl, split),
            };
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            // A split vote (several clients each got some nodes): back off for a random delay,
            // as the algorithm says. Otherwise sleep until a release message or the key's
            // expiry on the nodes, plus a random delay so that contenders do not collide.
            let jitter = random_delay(shared.opts.retry_delay);
            let fallback = if split || pttl < 0 {
                jitter
            } else {
                Duration::from_millis(pttl as u64) + jitter
            };
            let changed = any_changed(&mut rxs);
            tokio::select! {
                _ = changed, if !split => {}
                _ = tokio::time::sleep(fallback) => {}
                _ = sleep_until(deadline) => return Ok(None),
            }
        }
    }
}

fn random_delay(max: Duration) -> Duration {
    let ms = crate::layout::whole_ms(max);
    Duration::from_millis(rand::random_range(0..ms))
}

#[async_trait]
impl Backend for RedlockBackend {
    fn scheme(&self) -> &'static str {
        "redlock"
    }

    fn display_url(&self) -> String {
        self.inner.shared.url.clone()
    }

    fn capabilities(&self) -> Capabilities {
        redlock_capabilities()
    }

    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>> {
        let names = Arc::new(Names::new(&self.inner.shared.opts.prefix, key));
        match self.inner.shared.attempt(&names, req).await? {
            Attempt::Granted(g) => Ok(Some(g)),
            Attempt::Busy { .. } => Ok(None),
        }
    }

    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        let shared = &self.inner.shared;
        let names = Arc::new(Names::new(&shared.opts.prefix, key));
        let _turn = self.inner.queue.turn(names.lock()).await;
        // Fast path: a free key needs no subscriptions.
        match shared.attempt(&names, req).await? {
            Attempt::Granted(g) => return Ok(Some(g)),
            Attempt::Busy { .. } if deadline.is_some_and(|d| Instant::now() >= d) => {
                return Ok(None);
            }
            Attempt::Busy { .. } => {}
        }
        // Boxed: the waiting state would otherwise make every acquire future (allocated per
        // call) as large as itself, the uncontended one included.
        Box::pin(self.wait_for_release(&names, req, deadline)).await
    }

    /// The majority-reply limit: `SET NX PX` to every node at once, returning when a majority
    /// answered, then the compare-and-delete the same way (see `native.rs`).
    async fn native_pair(&self, key: &LockKey) -> Result<Option<&'static str>> {
        let shared = &self.inner.shared;
        let names = Names::new(&shared.opts.prefix, key);
        let (n, quorum) = (shared.nodes.len(), shared.quorum());
        let timeout = shared.node_timeout(Duration::from_secs(30));
        let lock: Arc<str> = names.lock().into();
        // One random value on every node, as Redlock does, so the delete can go to all of them.
        let value: Arc<str> = crate::native::secret().into();
        let request = |i: usize, set: bool| {
            let (node, lock, value) = (
                Arc::clone(&shared.nodes[i]),
                Arc::clone(&lock),
                Arc::clone(&value),
            );
            async move {
                if set {
                    crate::native::set_nx(&node, &lock, &value).await
                } else {
                    crate::native::compare_and_delete(&node, &lock, &value).await
                }
            }
        };
        let set = fan_out(
            n,
            timeout,
            |i| shared.url_of(i),
            |i| request(i, true),
            |a| count(a, |s| *s) >= quorum || count(a, |s| !*s) > n - quorum,
        )
        .await;
        let granted = count(&set, |s| *s);
        // Nodes that have not answered when a majority has get their delete in the background
        // (`fan_out` finishes them), so a late `SET` cannot leave the key behind.
        fan_out(
            n,
            timeout,
            |i| shared.url_of(i),
            |i| request(i, false),
            |a| answered(a) >= quorum,
        )
        .await;
        if granted < quorum {
            return Err(if answered(&set) < quorum {
                shared.no_quorum(&lock, "native pair", &set)
            } else {
                crate::native::busy(&shared.url, &lock)
            });
        }
        Ok(Some(
            "SET NX PX + compare-and-delete, each fanned out until a majority answered",
        ))
    }

    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>> {
        let shared = &self.inner.shared;
        let names = Arc::new(Names::new(&shared.opts.prefix, key));
        let answers = fan_out(
            shared.nodes.len(),
            shared.opts.command_timeout,
            |i| shared.url_of(i),
            |i| {
                let (shared, names) = (Arc::clone(shared), Arc::clone(&names));
                async move {
                    let node = &shared.nodes[i];
                    let live = node.live().await?;
                    let mut conn = live.conn.clone();
                    let got: HolderRead = HOLDER
                        .run(&mut conn, 2, (names.lock(), names.fence()))
                        .await
                        .map_err(|e| node.failed(&live, Some(names.lock()), e))?;
                    Ok(got)
                }
            },
            |_| false,
        )
        .await;
        if answered(&answers) < shared.quorum() {
            return Err(shared.no_quorum(names.lock(), "cannot tell the holder", &answers));
        }
        // The holder is whoever holds the key on a quorum (by the owner prefix: values of
        // earlier versions differ per node in the node's own token).
        let values: Vec<(&[u8], i64, Option<u64>)> = answers
            .iter()
            .filter_map(|a| match a {
                Some(Ok((Some(v), p, c))) => Some((v.as_slice(), *p, *c)),
                _ => None,
            })
            .collect();
        for (v, _, c) in &values {
            let id = owner_prefix_of(v).unwrap_or(v);
            let same: Vec<&(&[u8], i64, Option<u64>)> = values
                .iter()
                .filter(|(w, _, _)| owner_prefix_of(w).unwrap_or(w) == id)
                .collect();
            if same.len() >= shared.quorum() {
                let pttl = same.iter().map(|(_, p, _)| *p).min().unwrap_or(-1);
                let mut info = holder_from_value(v, pttl, *c);
                // Each node holding the key knows the token as its counter: the one its own
                // grant took, raised to the grant's token on the nodes written back (nothing
                // else moves it while the key is held there). A majority (W_A in the crate
                // docs) has the grant's token; no other token can be on a majority. Shown
                // when the nodes seen show it on a majority, else unknown.
                let tokens: Vec<_> = same
                    .iter()
                    .filter_map(|(w, p, c)| holder_from_value(w, *p, *c).token)
                    .collect();
                info.token = tokens
                    .iter()
                    .copied()
                    .find(|t| tokens.iter().filter(|u| *u == t).count() >= shared.quorum());
                return Ok(Some(info));
            }
        }
        Ok(None)
    }
}

/// Resolves when any node announces a release (never, when no node could be subscribed to).
async fn any_changed(rxs: &mut [tokio::sync::watch::Receiver<crate::waker::Wake>]) {
    if rxs.is_empty() {
        return std::future::pending().await;
    }
    let all = rxs.iter_mut().map(|rx| Box::pin(rx.changed()));
    let _ = futures_util::future::select_all(all).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// A lock held on a quorum of Redlock nodes.
struct RedlockLease {
    shared: Arc<Shared>,
    names: Arc<Names>,
    owner_prefix: Arc<str>,
    /// The TTL set on the nodes (the guard's TTL is this minus the drift allowance).
    ttl: Duration,
    /// The `run_id` of each node that answered the acquire.
    run_ids: Vec<Option<Arc<str>>>,
}

impl std::fmt::Debug for RedlockLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedlockLease")
            .field("servers", &self.shared.url)
            .field("key", &self.names.lock())
            .finish()
    }
}

#[async_trait]
impl Lease for RedlockLease {
    async fn renew(&self, _ttl: Duration) -> Result<bool> {
        let shared = &self.shared;
        let (n, quorum) = (shared.nodes.len(), shared.quorum());
        let ttl_ms = crate::layout::whole_ms(self.ttl);
        let answers = fan_out(
            n,
            shared.node_timeout(self.ttl),
            |i| shared.url_of(i),
            // Each node's renewals that come due together share one script call. A node that
            // restarted since the grant lost its copy: it cannot count.
            |i| {
                let renewer = Arc::clone(&shared.renewers[i]);
                let req = RenewRequest {
                    lock: Arc::from(self.names.lock()),
                    owner_prefix: Arc::clone(&self.owner_prefix),
                    ttl_ms,
                    run_id: self.run_ids[i].clone(),
                    restart_is_error: false,
                };
                async move { renewer.renew(req).await }
            },
            |a| {
                let yes = count(a, |r| *r);
                yes >= quorum || count(a, |r| !*r) > n - quorum
            },
        )
        .await;
        if count(&answers, |r| *r) >= quorum {
            Ok(true)
        } else if count(&answers, |r| !*r) > n - quorum {
            Ok(false)
        } else {
            Err(shared.no_quorum(self.names.lock(), "renewal not confirmed", &answers))
        }
    }

    async fn release(&self) -> Result<bool> {
        let timeout = self.shared.node_timeout(self.ttl);
        self.shared
            .release_all(&self.names, &self.owner_prefix, timeout)
            .await
    }
}
