//! Waking waiters by pub/sub: ONE subscription connection per backend (per server), shared by
//! every key this process waits for. Each waited-for channel has a generation counter that the
//! reader task bumps on every release message; a waiter notes the generation before its
//! attempt and sleeps until it moves (or its fallback timer fires), so a release that lands
//! between the attempt and the sleep is never missed.
//!
//! Fair mode wakes one waiter at a time, by name: each backend also has an **inbox** channel
//! (`locksmith:inbox:<random>`), subscribed once and kept, and a fair waiter's id starts with
//! it (`<inbox>#<random>`). A release publishes the id of the waiter whose turn it is on that
//! waiter's inbox, so only its process hears it, and the reader task wakes only that waiter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use futures_util::StreamExt;
use locksmith_core::Result;
use redis::aio::PubSubSink;
use tokio::sync::watch;

use crate::conn::Node;
use crate::error::connect_timeout;

/// The wake-ups on a channel so far.
#[derive(Clone, Debug, Default)]
pub(crate) struct Wake {
    pub(crate) count: u64,
}

#[derive(Debug)]
struct Channel {
    refs: usize,
    subscribed: bool,
    generation: watch::Sender<Wake>,
}

#[derive(Default)]
struct Shared {
    channels: Mutex<HashMap<String, Channel>>,
    /// This backend's inbox channel, and the fair waiters listening on it, by waiter id.
    inbox: String,
    addressed: Mutex<HashMap<String, watch::Sender<Inbox>>>,
    /// The subscription connection; subscribe/unsubscribe are ordered by this lock.
    sink: tokio::sync::Mutex<Option<(u64, PubSubSink)>>,
    connections: Mutex<u64>,
    /// Redis Cluster: the other seed nodes, tried in turn when the first cannot be reached (a
    /// `PUBLISH` on any node of a cluster reaches subscribers on every node).
    others: Vec<Arc<Node>>,
}

/// The pub/sub side of one server.
pub(crate) struct Waker {
    node: Arc<Node>,
    shared: Arc<Shared>,
    /// The inbox subscription, made at the first fair wait and kept.
    inbox: tokio::sync::OnceCell<Registration>,
}

impl std::fmt::Debug for Waker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waker").field("node", &self.node).finish()
    }
}

/// One waiter's interest in a channel; dropping it unsubscribes when nobody else listens.
pub(crate) struct Registration {
    node: Arc<Node>,
    shared: Arc<Shared>,
    channel: String,
    pub(crate) rx: watch::Receiver<Wake>,
}

impl Waker {
    pub(crate) fn new(node: Arc<Node>) -> Self {
        Self::over(node, Vec::new())
    }

    /// Subscribes on `node`, or on the first of `others` that can be reached when it cannot
    /// (Redis Cluster: any node hears every `PUBLISH`).
    pub(crate) fn over(node: Arc<Node>, others: Vec<Arc<Node>>) -> Self {
        let shared = Shared {
            inbox: format!("{INBOX_PREFIX}{}", crate::layout::secret()),
            others,
            ..Shared::default()
        };
        Self {
            node,
            shared: Arc::new(shared),
            inbox: tokio::sync::OnceCell::new(),
        }
    }

    /// A new fair-waiter id: this backend's inbox channel, `#`, and 128 random bits.
    pub(crate) fn waiter_id(&self) -> String {
        format!("{}#{}", self.shared.inbox, crate::layout::secret())
    }

    /// Listens for wake-ups addressed to waiter `id` (from [`Waker::waiter_id`]). Nothing is
    /// sent to the server here: [`Addressed::ensure_subscribed`] subscribes the inbox if needed.
    pub(crate) fn address(&self, id: &str) -> Addressed<'_> {
        let (tx, rx) = watch::channel(Inbox::default());
        self.shared
            .addressed
            .lock()
            .expect("waker")
            .insert(id.to_owned(), tx);
        Addressed {
            waker: self,
            id: id.to_owned(),
            rx,
        }
    }

    /// Listens on `channel` (subscribing on the server if this process was not yet).
    ///
    /// # Errors
    /// When the subscription connection cannot be made.
    ///
    /// # Cancel safety
    /// Cancel-safe: a dropped registration is undone.
    pub(crate) async fn register(&self, channel: &str) -> Result<Registration> {
        let rx = {
            let mut map = self.shared.channels.lock().expect("waker");
            let ch = map.entry(channel.to_owned()).or_insert_with(|| Channel {
                refs: 0,
                subscribed: false,
                generation: watch::channel(Wake::default()).0,
            });
            ch.refs += 1;
            ch.generation.subscribe()
        };
        let reg = Registration {
            node: Arc::clone(&self.node),
            shared: Arc::clone(&self.shared),
            channel: channel.to_owned(),
            rx,
        };
        reg.ensure_subscribed().await?;
        Ok(reg)
    }
}

/// Prefix of every inbox channel name.
pub(crate) const INBOX_PREFIX: &str = "locksmith:inbox:";

/// What a fair waiter heard on its inbox.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Inbox {
    /// Moves with every message (and when the subscription connection broke).
    pub(crate) count: u64,
    /// A release handed the lock to this waiter (see `lua/fair.lua`).
    pub(crate) handed: Option<Handed>,
}

/// A lock handed to a waiter inside the server: its fencing token, and the number of the
/// waiter's attempt from whose sending its lease counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Handed {
    pub(crate) token: u64,
    pub(crate) seq: u64,
}

impl Handed {
    /// An inbox message: `<waiter id>` (retry) or `<waiter id> <token> <seq>` (granted).
    pub(crate) fn parse(payload: &str) -> (&str, Option<Handed>) {
        let mut parts = payload.split(' ');
        let to = parts.next().unwrap_or_default();
        let handed = match (parts.next(), parts.next(), parts.next()) {
            (Some(token), Some(seq), None) => token
                .parse()
                .ok()
                .zip(seq.parse().ok())
                .map(|(token, seq)| Handed { token, seq }),
            _ => None,
        };
        (to, handed)
    }
}

/// One fair waiter's wake-ups: `rx` moves when a release names it (or the subscription
/// connection broke). Dropping it stops listening.
pub(crate) struct Addressed<'a> {
    waker: &'a Waker,
    id: String,
    pub(crate) rx: watch::Receiver<Inbox>,
}

impl Addressed<'_> {
    /// True when the inbox is subscribed now, so that a release from here on is heard.
    pub(crate) fn is_subscribed(&self) -> bool {
        self.waker
            .inbox
            .get()
            .is_some_and(Registration::is_subscribed)
    }

    /// Subscribes the inbox (at the first fair wait, or again after its connection broke).
    ///
    /// # Errors
    /// When the subscription connection cannot be made.
    ///
    /// # Cancel safety
    /// Cancel-safe.
    pub(crate) async fn ensure_subscribed(&self) -> Result<()> {
        let w = self.waker;
        let reg = w
            .inbox
            .get_or_try_init(|| w.register(&w.shared.inbox))
            .await?;
        reg.ensure_subscribed().await
    }
}

impl Drop for Addressed<'_> {
    fn drop(&mut self) {
        self.waker
            .shared
            .addressed
            .lock()
            .expect("waker")
            .remove(&self.id);
    }
}

impl Registration {
    /// True when the channel is subscribed on the current subscription connection.
    pub(crate) fn is_subscribed(&self) -> bool {
        self.shared
            .channels
            .lock()
            .expect("waker")
            .get(&self.channel)
            .is_some_and(|c| c.subscribed)
    }

    /// Subscribes again if the subscription connection broke since.
    ///
    /// # Errors
    /// When the subscription connection cannot be made.
    pub(crate) async fn ensure_subscribed(&self) -> Result<()> {
        let subscribed = |shared: &Shared| {
            shared
                .channels
                .lock()
                .expect("waker")
                .get(&self.channel)
                .is_some_and(|c| c.subscribed)
        };
        if subscribed(&self.shared) {
            return Ok(());
        }
        let mut sink = self.shared.sink.lock().await;
        if subscribed(&self.shared) {
            return Ok(());
        }
        if sink.is_none() {
            *sink = Some(connect(&self.node, &self.shared).await?);
        }
        let (_, s) = sink.as_mut().expect("sink");
        let done =
            tokio::time::timeout(self.node.command_timeout, s.subscribe(&self.channel)).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                *sink = None;
                return Err(self.node.error(None, e));
            }
            Err(_) => {
                *sink = None;
                return Err(connect_timeout(&self.node.url, self.node.command_timeout));
            }
        }
        if let Some(c) = self
            .shared
            .channels
            .lock()
            .expect("waker")
            .get_mut(&self.channel)
        {
            c.subscribed = true;
        }
        Ok(())
    }
}

/// A pub/sub connection to `node` (or, failing that, to the first of `shared.others` that
/// answers).
async fn pubsub(node: &Node, shared: &Shared) -> Result<redis::aio::PubSub> {
    let mut first_error = None;
    for n in std::iter::once(node).chain(shared.others.iter().map(|n| &**n)) {
        let made = tokio::time::timeout(n.connect_timeout, n.client.get_async_pubsub())
            .await
            .map_err(|_| connect_timeout(&n.url, n.connect_timeout))
            .and_then(|r| r.map_err(|e| n.error(None, e)));
        match made {
            Ok(p) => return Ok(p),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.expect("at least one node"))
}

async fn connect(node: &Node, shared: &Arc<Shared>) -> Result<(u64, PubSubSink)> {
    let pubsub = pubsub(node, shared).await?;
    let (sink, mut stream) = pubsub.split();
    let id = {
        let mut n = shared.connections.lock().expect("waker");
        *n += 1;
        *n
    };
    let weak: Weak<Shared> = Arc::downgrade(shared);
    tokio::spawn(async move {
        while let Some(msg) = stream.next().await {
            let Some(shared) = weak.upgrade() else { return };
            if msg.get_channel_name() == shared.inbox {
                // Only the waiter named wakes.
                let payload: String = msg.get_payload().unwrap_or_default();
                let (to, handed) = Handed::parse(&payload);
                if let Some(tx) = shared.addressed.lock().expect("waker").get(to) {
                    tx.send_modify(|inbox| {
                        inbox.count += 1;
                        inbox.handed = inbox.handed.or(handed);
                    });
                }
                continue;
            }
            let map = shared.channels.lock().expect("waker");
            if let Some(c) = map.get(msg.get_channel_name()) {
                c.generation.send_modify(|w| w.count += 1);
            }
        }
        // The connection ended: forget it, and wake every waiter so it retries (and
        // subscribes again on a new connection).
        let Some(shared) = weak.upgrade() else { return };
        {
            let mut sink = shared.sink.lock().await;
            if sink.as_ref().is_some_and(|(i, _)| *i == id) {
                *sink = None;
            }
        }
        for c in shared.channels.lock().expect("waker").values_mut() {
            c.subscribed = false;
            c.generation.send_modify(|w| w.count += 1);
        }
        for tx in shared.addressed.lock().expect("waker").values() {
            tx.send_modify(|inbox| inbox.count += 1);
        }
    });
    Ok((id, sink))
}

impl Drop for Registration {
    fn drop(&mut self) {
        let last = {
            let mut map = self.shared.channels.lock().expect("waker");
            match map.get_mut(&self.channel) {
                Some(c) => {
                    c.refs -= 1;
                    if c.refs == 0 {
                        map.remove(&self.channel);
                        true
                    } else {
                        false
                    }
                }
                None => false,
            }
        };
        if !last {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let shared = Arc::clone(&self.shared);
        let channel = std::mem::take(&mut self.channel);
        let timeout = self.node.command_timeout;
        rt.spawn(async move {
            let mut sink = shared.sink.lock().await;
            // A new waiter may have subscribed again meanwhile (under this same lock).
            let again = shared
                .channels
                .lock()
                .expect("waker")
                .get(&channel)
                .is_some_and(|c| c.subscribed);
            if again {
                return;
            }
            if let Some((_, s)) = sink.as_mut() {
                let _ = tokio::time::timeout(timeout, s.unsubscribe(&channel)).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::Handed;

    #[test]
    fn inbox_messages_are_wake_ups_or_grants() {
        assert_eq!(
            Handed::parse("locksmith:inbox:a#b"),
            ("locksmith:inbox:a#b", None)
        );
        assert_eq!(
            Handed::parse("locksmith:inbox:a#b 1700000000000001 3"),
            (
                "locksmith:inbox:a#b",
                Some(Handed {
                    token: 1_700_000_000_000_001,
                    seq: 3
                })
            )
        );
        assert_eq!(Handed::parse("x 12 not-a-number").1, None);
        assert_eq!(Handed::parse("x 1 2 3").1, None);
    }
}
