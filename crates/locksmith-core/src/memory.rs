//! `memory://NAME` — an in-process backend with TTL leases and FIFO hand-over, for tests and docs.
//!
//! Every `MemoryBackend::named(NAME)` in one process shares one lock table while any handle on
//! it is alive. Fencing tokens come from one counter per table, so they are unique and strictly
//! increasing per key. A release hands the lock straight to the oldest waiter (one wake-up);
//! a lease that expires is handed over by the first waiter whose timer sees it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::backend::{
    AcquireRequest, Backend, Capabilities, Expiry, Grant, HolderInfo, Lease, LeaseModel,
};
use crate::error::Result;
use crate::key::LockKey;
use crate::token::FencingToken;

/// The in-process backend. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MemoryBackend {
    table: Arc<Table>,
}

#[derive(Debug, Default)]
struct Table {
    name: String,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, Slot>,
    last_token: u64,
    last_id: u64,
}

#[derive(Debug, Default)]
struct Slot {
    holder: Option<Holder>,
    waiters: VecDeque<Waiter>,
}

#[derive(Debug)]
struct Holder {
    id: u64,
    owner: Arc<str>,
    token: u64,
    since: SystemTime,
    expires: Instant,
}

#[derive(Debug)]
struct Waiter {
    id: u64,
    req: AcquireRequest,
    tx: oneshot::Sender<Grant>,
}

fn registry() -> &'static Mutex<HashMap<String, Weak<Table>>> {
    static REG: OnceLock<Mutex<HashMap<String, Weak<Table>>>> = OnceLock::new();
    REG.get_or_init(Default::default)
}

impl MemoryBackend {
    /// A private table nobody else can see.
    pub fn new() -> Self {
        Self {
            table: Arc::new(Table::default()),
        }
    }

    /// The process-wide table called `name` (`memory://name`), shared while any handle lives.
    pub fn named(name: &str) -> Self {
        let mut reg = registry().lock().expect("memory registry");
        reg.retain(|_, t| t.strong_count() > 0);
        if let Some(table) = reg.get(name).and_then(Weak::upgrade) {
            return Self { table };
        }
        let table = Arc::new(Table {
            name: name.to_owned(),
            state: Mutex::default(),
        });
        reg.insert(name.to_owned(), Arc::downgrade(&table));
        Self { table }
    }
}

impl Default for MemoryBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl Table {
    /// Grants `key` to a new holder. Caller holds the state lock.
    fn grant(self: &Arc<Self>, st: &mut State, key: &str, req: &AcquireRequest) -> Grant {
        st.last_token += 1;
        st.last_id += 1;
        let now = Instant::now();
        let (id, token) = (st.last_id, st.last_token);
        st.keys.entry(key.to_owned()).or_default().holder = Some(Holder {
            id,
            owner: req.owner.clone(),
            token,
            since: SystemTime::now(),
            expires: now + req.ttl,
        });
        Grant {
            lease: std::sync::Arc::new(MemoryLease {
                table: Arc::clone(self),
                key: key.to_owned(),
                id,
            }),
            token: FencingToken(token),
            expiry: Expiry::Ttl {
                sent_at: now,
                ttl: req.ttl,
            },
        }
    }

    /// Expires a lapsed holder and hands a free key to the oldest live waiter. Grants that
    /// could not be delivered are returned, to be dropped after the state lock is released.
    fn settle(self: &Arc<Self>, st: &mut State, key: &str) -> Vec<Grant> {
        let mut undelivered = Vec::new();
        let Some(slot) = st.keys.get_mut(key) else {
            return undelivered;
        };
        if slot
            .holder
            .as_ref()
            .is_some_and(|h| h.expires <= Instant::now())
        {
            slot.holder = None;
        }
        while st.keys[key].holder.is_none() {
            let Some(w) = st.keys.get_mut(key).and_then(|s| s.waiters.pop_front()) else {
                break;
            };
            let grant = self.grant(st, key, &w.req);
            if let Err(grant) = w.tx.send(grant) {
                st.keys.get_mut(key).expect("slot").holder = None;
                undelivered.push(grant);
            }
        }
        let slot = &st.keys[key];
        if slot.holder.is_none() && slot.waiters.is_empty() {
            st.keys.remove(key);
        }
        undelivered
    }

    fn release(self: &Arc<Self>, key: &str, id: u64) -> bool {
        let mut st = self.state.lock().expect("memory state");
        let mine = st
            .keys
            .get(key)
            .and_then(|s| s.holder.as_ref())
            .is_some_and(|h| h.id == id && h.expires > Instant::now());
        if mine {
            st.keys.get_mut(key).expect("slot").holder = None;
        }
        let undelivered = self.settle(&mut st, key);
        drop(st);
        drop(undelivered);
        mine
    }
}

#[derive(Debug)]
struct MemoryLease {
    table: Arc<Table>,
    key: String,
    id: u64,
}

#[async_trait]
impl Lease for MemoryLease {
    async fn renew(&self, ttl: Duration) -> Result<bool> {
        let mut st = self.table.state.lock().expect("memory state");
        let now = Instant::now();
        let holder = st.keys.get_mut(&self.key).and_then(|s| s.holder.as_mut());
        Ok(match holder {
            Some(h) if h.id == self.id && h.expires > now => {
                h.expires = now + ttl;
                true
            }
            _ => false,
        })
    }

    async fn release(&self) -> Result<bool> {
        Ok(self.table.release(&self.key, self.id))
    }
}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        self.table.release(&self.key, self.id);
    }
}

/// Removes a waiter from the queue when its acquire future ends, however it ends.
struct WaitEntry<'a> {
    table: &'a Arc<Table>,
    key: &'a str,
    id: u64,
}

impl Drop for WaitEntry<'_> {
    fn drop(&mut self) {
        let mut st = self.table.state.lock().expect("memory state");
        if let Some(slot) = st.keys.get_mut(self.key) {
            slot.waiters.retain(|w| w.id != self.id);
        }
        let undelivered = self.table.settle(&mut st, self.key);
        drop(st);
        drop(undelivered);
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    fn scheme(&self) -> &'static str {
        "memory"
    }

    fn display_url(&self) -> String {
        format!("memory://{}", self.table.name)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(LeaseModel::Ttl)
            .fair(true)
            .holder_info(true)
            .cross_process(false)
    }

    async fn try_acquire(&self, key: &LockKey, req: &AcquireRequest) -> Result<Option<Grant>> {
        let table = &self.table;
        let mut st = table.state.lock().expect("memory state");
        let undelivered = table.settle(&mut st, key.as_str());
        let grant = match st.keys.get(key.as_str()) {
            Some(_) => None,
            None => Some(table.grant(&mut st, key.as_str(), req)),
        };
        drop(st);
        drop(undelivered);
        Ok(grant)
    }

    async fn acquire(
        &self,
        key: &LockKey,
        req: &AcquireRequest,
        deadline: Option<Instant>,
    ) -> Result<Option<Grant>> {
        let table = &self.table;
        let (tx, mut rx) = oneshot::channel();
        let (entry, mut expires) = {
            let mut st = table.state.lock().expect("memory state");
            let undelivered = table.settle(&mut st, key.as_str());
            if !st.keys.contains_key(key.as_str()) {
                let grant = table.grant(&mut st, key.as_str(), req);
                drop(st);
                drop(undelivered);
                return Ok(Some(grant));
            }
            st.last_id += 1;
            let id = st.last_id;
            let slot = st.keys.get_mut(key.as_str()).expect("slot");
            slot.waiters.push_back(Waiter {
                id,
                req: req.clone(),
                tx,
            });
            let expires = slot.holder.as_ref().map(|h| h.expires);
            drop(st);
            drop(undelivered);
            let entry = WaitEntry {
                table,
                key: key.as_str(),
                id,
            };
            (entry, expires)
        };
        loop {
            tokio::select! {
                biased;
                got = &mut rx => {
                    drop(entry);
                    return Ok(got.ok());
                }
                _ = sleep_until(expires) => {
                    let mut st = table.state.lock().expect("memory state");
                    let undelivered = table.settle(&mut st, key.as_str());
                    expires = st
                        .keys
                        .get(key.as_str())
                        .and_then(|s| s.holder.as_ref())
                        .map(|h| h.expires);
                    drop(st);
                    drop(undelivered);
                }
                _ = sleep_until(deadline) => {
                    drop(entry);
                    return Ok(rx.try_recv().ok());
                }
            }
        }
    }

    async fn holder(&self, key: &LockKey) -> Result<Option<HolderInfo>> {
        let table = &self.table;
        let mut st = table.state.lock().expect("memory state");
        let undelivered = table.settle(&mut st, key.as_str());
        let now = Instant::now();
        let info = st
            .keys
            .get(key.as_str())
            .and_then(|s| s.holder.as_ref())
            .map(|h| {
                HolderInfo::new(&*h.owner)
                    .token(FencingToken(h.token))
                    .since(h.since)
                    .lease_left(h.expires.saturating_duration_since(now))
            });
        drop(st);
        drop(undelivered);
        Ok(info)
    }

    async fn native_pair(&self, key: &LockKey) -> Result<Option<&'static str>> {
        // The table's own primitive: an entry put into and taken out of the shared map, each
        // under the table's mutex.
        {
            let mut st = self.table.state.lock().expect("memory state");
            if st
                .keys
                .get(key.as_str())
                .is_some_and(|s| s.holder.is_some())
            {
                return Err(crate::Error::backend(
                    self.display_url(),
                    Some(key.as_str()),
                    "the key is held; the native pair does not wait",
                    None,
                ));
            }
            st.keys.entry(key.as_str().to_owned()).or_default();
        }
        let mut st = self.table.state.lock().expect("memory state");
        if st
            .keys
            .get(key.as_str())
            .is_some_and(|s| s.holder.is_none() && s.waiters.is_empty())
        {
            st.keys.remove(key.as_str());
        }
        Ok(Some("map insert + remove under the table mutex"))
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
