//! A per-key FIFO queue inside one process, for backends whose native wait costs a server
//! resource per waiter (a connection, a thread). Local waiters line up here, and only the head
//! of each key's line waits on the server, so a thousand waiters cost one server-side wait.

use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

use crate::key::LockKey;

/// Keys are shared with the entries that refer to them (one allocation per active key), and
/// hashed with foldhash: this map is touched twice by every acquire, and SipHash of the key
/// was most of that cost. foldhash is seeded per process, so keys still cannot be chosen to
/// collide.
type Map<T> = Arc<Mutex<HashMap<Arc<str>, Arc<AsyncMutex<T>>, foldhash::fast::RandomState>>>;

/// What a [`KeyedQueue`] can be keyed by: a string, or a [`LockKey`] (whose shared string the
/// queue keeps without a copy).
pub trait QueueKey {
    /// The key as text.
    fn key_str(&self) -> &str;
    /// The key as the queue keeps it while the key has a holder or waiters.
    fn to_shared(&self) -> Arc<str>;
}

impl QueueKey for str {
    fn key_str(&self) -> &str {
        self
    }
    fn to_shared(&self) -> Arc<str> {
        Arc::from(self)
    }
}

impl QueueKey for LockKey {
    fn key_str(&self) -> &str {
        self.as_str()
    }
    fn to_shared(&self) -> Arc<str> {
        self.shared()
    }
}

/// Per-key FIFO turns, each carrying backend state `T` that outlives a cancelled waiter (for
/// example a server-side wait still in flight, for the next waiter to pick up).
#[derive(Debug)]
pub struct KeyedQueue<T> {
    map: Map<T>,
}

impl<T> Default for KeyedQueue<T> {
    fn default() -> Self {
        Self {
            map: Arc::default(),
        }
    }
}

/// The turn of the head of one key's line. Dropping it lets the next waiter in; the key's
/// state is dropped when nobody holds or awaits a turn.
#[derive(Debug)]
pub struct QueueTurn<T> {
    guard: Option<OwnedMutexGuard<T>>,
    entry: Entry<T>,
}

/// A reference to one key's entry; removes the entry when it is the last reference.
#[derive(Debug)]
struct Entry<T> {
    map: Map<T>,
    key: Arc<str>,
    cell: Option<Arc<AsyncMutex<T>>>,
}

impl<T> Drop for Entry<T> {
    fn drop(&mut self) {
        let mut map = self.map.lock().expect("keyed queue");
        drop(self.cell.take());
        if map
            .get(&*self.key)
            .is_some_and(|c| Arc::strong_count(c) == 1)
        {
            map.remove(&*self.key);
        }
    }
}

impl<T: Default> KeyedQueue<T> {
    /// A new, empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry<K: QueueKey + ?Sized>(&self, key: &K) -> Entry<T> {
        let mut map = self.map.lock().expect("keyed queue");
        let (key, cell) = match map.get_key_value(key.key_str()) {
            Some((k, cell)) => (Arc::clone(k), Arc::clone(cell)),
            None => {
                let (k, cell) = (key.to_shared(), Arc::default());
                map.insert(Arc::clone(&k), Arc::clone(&cell));
                (k, cell)
            }
        };
        Entry {
            map: Arc::clone(&self.map),
            key,
            cell: Some(cell),
        }
    }

    /// Waits for this key's turn, first come first served.
    ///
    /// # Errors
    /// None: waiting for a turn cannot fail.
    ///
    /// # Cancel safety
    /// Cancel-safe: a dropped waiter leaves the line and the key's state stays for others.
    pub async fn turn<K: QueueKey + ?Sized>(&self, key: &K) -> QueueTurn<T> {
        let entry = self.entry(key);
        let cell = Arc::clone(entry.cell.as_ref().expect("cell"));
        let guard = cell.lock_owned().await;
        QueueTurn {
            guard: Some(guard),
            entry,
        }
    }

    /// This key's turn if nobody holds or awaits it.
    pub fn try_turn<K: QueueKey + ?Sized>(&self, key: &K) -> Option<QueueTurn<T>> {
        let entry = self.entry(key);
        let cell = Arc::clone(entry.cell.as_ref().expect("cell"));
        let guard = cell.try_lock_owned().ok()?;
        Some(QueueTurn {
            guard: Some(guard),
            entry,
        })
    }

    /// Number of keys with a holder or waiters (for tests and metrics).
    pub fn active_keys(&self) -> usize {
        self.map.lock().expect("keyed queue").len()
    }
}

impl<T> QueueTurn<T> {
    /// True when nobody else in this process holds or awaits a turn on this key.
    pub fn is_alone(&self) -> bool {
        // References: the map, this turn's entry, and the guard's own Arc.
        self.entry
            .cell
            .as_ref()
            .is_some_and(|c| Arc::strong_count(c) <= 3)
    }
}

impl<T> Deref for QueueTurn<T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard")
    }
}

impl<T> DerefMut for QueueTurn<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard")
    }
}

impl<T> Drop for QueueTurn<T> {
    fn drop(&mut self) {
        // Release the turn before the entry checks whether it was the last reference.
        drop(self.guard.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fifo_and_cleanup() {
        let q: Arc<KeyedQueue<u32>> = Arc::new(KeyedQueue::new());
        let mut first = q.turn("k").await;
        *first += 1;
        assert!(q.try_turn("k").is_none());
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (q, order) = (Arc::clone(&q), Arc::clone(&order));
            tasks.push(tokio::spawn(async move {
                let mut t = q.turn("k").await;
                *t += 1;
                order.lock().unwrap().push(i);
            }));
            tokio::task::yield_now().await;
        }
        // A cancelled waiter leaves the line without disturbing it.
        let cancelled = tokio::spawn({
            let q = Arc::clone(&q);
            async move {
                let _t = q.turn("k").await;
                unreachable!("cancelled before its turn");
            }
        });
        tokio::task::yield_now().await;
        cancelled.abort();
        let _ = cancelled.await;
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        let t = q.try_turn("k").expect("free");
        assert_eq!(*t, 0, "an idle key's state was dropped with its last turn");
        assert!(t.is_alone());
        drop(t);
        assert_eq!(q.active_keys(), 0);
    }
}
