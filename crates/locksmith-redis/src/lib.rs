//! # locksmith-redis
//!
//! The Redis backends of [locksmith](https://example.invalid/locksmith): `redis://` and
//! `rediss://` (one Redis primary, TLS with `rediss`), `redis+cluster://` and
//! `rediss+cluster://` (a Redis Cluster) and `redlock://` (the Redlock algorithm over several
//! independent primaries). Both hand out a **fencing token** with every grant,
//! wait by **pub/sub** rather than by polling, and tell a holder when its lock is **lost**.
//!
//! ```
//! use std::sync::Arc;
//! use locksmith_core::{Locker, LockOptions, MemoryBackend};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> locksmith_core::Result<()> {
//! // The API is the same on every backend; with a Redis server at hand this line would be
//! // `Locker::new(Arc::new(locksmith_redis::RedisBackend::from_url("redis://127.0.0.1:6379")?))`.
//! let locker = Locker::new(Arc::new(MemoryBackend::new()));
//! let guard = locker.acquire("invoice-42", &LockOptions::new()).await?;
//! let token = guard.fencing_token(); // hand it to the resource you protect
//! assert!(guard.release().await?);
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! ```no_run
//! use std::sync::Arc;
//! use locksmith_core::{Locker, LockOptions};
//! use locksmith_redis::{RedisBackend, RedlockBackend};
//!
//! # async fn demo() -> locksmith_core::Result<()> {
//! let redis = Locker::new(Arc::new(RedisBackend::from_url("redis://:pw@10.0.0.5:6379/0")?));
//! let redlock = Locker::new(Arc::new(RedlockBackend::from_url(
//!     "redlock://10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379,10.0.0.4:6379,10.0.0.5:6379",
//! )?));
//! let guard = redis.acquire("jobs/nightly", &LockOptions::new()).await?;
//! guard.release().await?;
//! # let _ = redlock; Ok(()) }
//! ```
//!
//! ## URLs
//! - `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?OPTIONS]`; `rediss://…` is the same over TLS
//!   (rustls with the ring provider, trusting the platform's root certificates or the CA file
//!   given as `tls_ca=`; cargo feature `tls`, on by default). The server name is checked.
//!   `USER` is an ACL user (Redis 6+); without it the password is for `AUTH PASSWORD`.
//!   `DB` is the database number (default 0). Percent-encode `@ : /` in passwords.
//! - `redis+cluster://[[USER]:PASSWORD@]HOST:PORT,HOST:PORT,…[?OPTIONS]`: one Redis Cluster
//!   ([`RedisClusterBackend`]); the hosts are seeds (one is enough, list a few), the client
//!   learns the other masters from them. `rediss+cluster://` is the same over TLS (`tls_ca=`
//!   as for `rediss://`). Database 0 only (a path other than `/0` is refused). See
//!   "Redis Cluster" below.
//! - `redlock://[[USER]:PASSWORD@]HOST:PORT,HOST:PORT,…[/DB][?OPTIONS]`: at least 3 hosts
//!   (5 is usual), each an independent primary (not replicas of one another), all with the same
//!   credentials and database. With `tls=true` every node is reached over TLS (as
//!   `rediss://`; `tls_ca=` then names a PEM file with the CA certificates of all nodes).
//!
//! | Option | Default | Meaning |
//! |---|---|---|
//! | `connect_timeout` | 5s | how long a connect (TCP, TLS, AUTH, `INFO`) may take |
//! | `command_timeout` | 2s | how long one request may wait for its answer |
//! | `prefix` | none | prepended to every lock key (e.g. `prefix=myapp:`) |
//! | `tls_ca` | platform roots | `rediss://`, `rediss+cluster://` (or Redlock with `tls=true`): a PEM file of CA certificates to trust |
//! | `tls` | false | Redlock only: every node over TLS |
//! | `fair` | false | `redis://` only: serve waiters in arrival order (see below) |
//! | `waiter_timeout` | 2s | fair mode: a waiter silent this long is skipped |
//! | `drift` | TTL × 1% + 2 ms | Redlock only: the clock-drift allowance |
//! | `retry_delay` | 50ms | Redlock only: the largest random delay before a retry |
//!
//! Nothing connects until the first request; [`RedisBackend::connect`] connects at once. A
//! server that is down, or a wrong password, is an error within `connect_timeout` naming the
//! URL with its password masked, never a hang.
//!
//! ## On-server layout (`redis://`)
//! For lock key `K` (after the prefix):
//!
//! | Name | Type | Holds |
//! |---|---|---|
//! | `K` | string, PX = TTL | `ls2:<secret>:<since_unix_ms>:<owner>` while held |
//! | `{K}:locksmith:fence` | string | the last fencing token granted for `K` (while `K` is held, its holder's); never expires |
//! | `{K}:locksmith:released` | pub/sub channel | a message on every release (empty, or in fair mode the next waiter's id) |
//!
//! `<secret>` is 128 random bits per grant: release and renew act only if the value starts with
//! `ls2:<secret>:` (compare-and-delete, compare-and-`PEXPIRE`; never a bare `DEL`). The fence
//! counter and channel names share `K`'s Redis Cluster hash slot: when `K` has a hash tag
//! (`{user42}:cart`) the suffix is appended to `K` and the tag stays first; otherwise `K` itself
//! is wrapped as the tag (`{K}…`). The one exception is a key with a `}` but no hash tag (`a}b`,
//! `x{}y`): no other name can share its slot, so `K` + suffix is used; such keys work on one
//! primary, and `redis+cluster://` refuses them with [`Error::InvalidKey`] naming the rule
//! (give such a key a hash tag). `redis+cluster://` runs the same scripts unchanged.
//!
//! [`Error::InvalidKey`]: locksmith_core::Error::InvalidKey
//!
//! Three Lua scripts (in `src/lua/`, run by `EVALSHA`) do the work, each in one round trip:
//! **acquire** (`SET K value NX PX ttl`, and only if that set it, `INCR` the counter for the
//! grant's token: a busy key answers its `PTTL` and changes nothing, so each grant takes the
//! next token and no other attempt does), **release** (compare, `DEL`, `PUBLISH`), **renew**
//! (compare, `PEXPIRE`; one call renews every lease of a batch, see "Loss and restarts").
//! `holder()` reads the value, its `PTTL` and the counter in one script: the counter is the
//! holder's token. (Values written by earlier builds begin `ls1:` and carry the token
//! themselves; they are still read, and released by their owners as before.)
//! Keys travel as `KEYS`, values as `ARGV`: nothing is formatted into Lua.
//!
//! ## Key mapping
//! The lock key is the locksmith key itself (UTF-8 bytes, up to 512), after the optional
//! prefix. Spaces, Unicode, quotes and `{}` are fine: Redis keys are binary-safe.
//!
//! ## Interop with other SET NX clients
//! The lock key is a plain string set with `SET K value NX PX ttl` semantics, so redis-py's
//! `Lock`, redsync, node-redlock and a hand-written `SET NX PX` exclude locksmith on the same
//! name, and locksmith excludes them. Such a lock shows in
//! [`holder`](locksmith_core::Backend::holder) as [`FOREIGN_OWNER`]. Other clients publish no
//! release message, so a locksmith waiter notices their release when the key's `PTTL` runs
//! out (or, for a key without expiry, by a backoff growing from 10 ms to 1 s). Other clients'
//! locks do not move the fence counter.
//!
//! ## Waiting and fairness
//! A waiter first tries; if the key is busy it subscribes to the key's channel, tries again
//! (so a release in between is not missed) and sleeps until a release message or the key's
//! remaining `PTTL` (the holder may have crashed and sent nothing), then tries again. Each
//! backend has **one** subscription connection shared by every key it waits for, and local
//! waiters on a key line up first come, first served, with only the first in line waiting on
//! the server. A free key costs one round trip and no subscription.
//!
//! **Default mode is not fair** between clients: whoever tries first after a release wins
//! ([`Capabilities::fair`](locksmith_core::Capabilities) is false).
//!
//! **Fair mode** (`redis://…?fair=true`, [`fair_capabilities`]) serves waiters in arrival
//! order. Each waiting `acquire` call takes a waiter id and is queued on the server:
//!
//! | Name | Type | Holds |
//! |---|---|---|
//! | `{K}:locksmith:queue` | sorted set | waiter ids, scored by arrival (last score + 1) |
//! | `{K}:locksmith:waiters` | hash | waiter id → `<alive until, server ms>\n<attempt number>\n<TTL ms>\n<value head>\n<since ms>:<owner>` |
//! | `locksmith:inbox:<random>` | pub/sub channel | one per backend: grants and wake-ups for its fair waiters |
//!
//! A waiter id is the backend's inbox channel, `#` and 128 random bits. A waiting `acquire`
//! keeps one value head (`ls2:<secret>`) for all its attempts. The fair acquire script
//! (`lua/acquire_fair.lua`) first drops waiters at the head whose deadline passed, then grants
//! only if the key is free and the caller is the head (or nobody waits); otherwise it queues
//! the caller (once) and records its grant request: its deadline (now + `waiter_timeout`,
//! default 2 s), the attempt's number, its TTL and its value. **A release hands the lock over
//! inside the server** (`lua/release_fair.lua`, calling `hand_over` in `lua/fair.lua`): it sets the key to the head waiter's
//! value with that waiter's TTL and the next fencing token, takes it out of the queue and
//! publishes `<waiter id> <token> <attempt number>` **on that waiter's inbox**, so one process
//! hears it and that waiter holds the lock without another round trip: one script, one message
//! and one wake-up per hand-over, no herd. The waiter counts its lease from when it sent the
//! numbered attempt, which the server ran before the release, so its local deadline is never
//! later than the server's. If the message is lost (the subscription connection broke), the
//! waiter's next retry finds the key holding its own value, restarts its TTL and is granted.
//! The inbox is subscribed at a backend's first fair wait and kept, so later waits cost no
//! `SUBSCRIBE`. Waiters retry at least every `waiter_timeout / 3` to stay alive, so a waiter
//! that crashed is skipped within `waiter_timeout` (a crash in the instant between its grant
//! and its hearing of it leaves the lock held until its TTL, as any holder's crash does). One
//! that gives up (timeout, dropped future) leaves the queue at once; if a release had just
//! handed it the lock, that lock is released and handed on. A holder whose lease ran out sends
//! no release: the next fair attempt on the key (a waiter's retry at the key's `PTTL`) hands
//! the free lock to the head. Both keys expire `2 × waiter_timeout` after the last waiter's
//! retry. A `try_acquire` in fair mode is granted only when nobody waits. Clients that do not
//! use fair mode (or other SET NX clients) ignore the queue, and a fair waiter hears their
//! releases only by its fallback timer, so every client of a key must use the same mode for
//! the order to hold.
//!
//! ## Fencing tokens (`redis://`)
//! The token is `INCR` of the key's fence counter, taken in the same script as the `SET`, so it
//! is unique and strictly increasing across holders as long as the counter survives. A counter
//! that is missing (never used, or lost: a restart without persistence, `FLUSHALL`, eviction)
//! restarts at the server's clock in microseconds (`TIME`), above every earlier token since no
//! key is granted more than once per microsecond; this assumes the server's wall clock does not
//! step back across the loss. Tokens are therefore large numbers (about 1.7 × 10^15).
//!
//! ## Loss and restarts
//! Renewal (by locksmith's shared keeper) is a compare-and-`PEXPIRE`; a refused renewal, or no
//! confirmed renewal before the local deadline, resolves [`lost`](locksmith_core::Guard::lost).
//! Renewals are batched: the keeper renews leases of the same TTL at the same instants (a
//! shared grid), and the renewals that reach one server together go in one script call of up
//! to 256 keys (several calls at once over the shared connection when there are more), each
//! lease still learning its own answer. 10,000 leases with a 3 s TTL cost some 70 round trips
//! per second, not 10,000 (`cargo bench -p locksmith-redis --bench many_keys`). On Redlock,
//! each node batches its own.
//! Every connection reads the server's `run_id` when it is made. When a connection is made
//! again and the `run_id` changed, the server restarted and may have lost every key: each lease
//! granted by the old process resolves `lost()` with
//! [`LossReason::BackendReset`](locksmith_core::LossReason), and its renewals fail (fail
//! closed) — also after a restart that kept its data, since locksmith cannot tell.
//!
//! ## Redis Cluster
//! `redis+cluster://` ([`RedisClusterBackend`], [`cluster_capabilities`]) keeps the layout,
//! scripts, tokens and waiting of `redis://`; what differs:
//! - **Routing.** The client (the `redis` crate's cluster client) keeps the slot map and sends
//!   each script to the master of its keys' slot; every key a script touches shares that slot
//!   (see the layout above), so no script is ever cross-slot. A master without the script
//!   (restarted, or new) gets it by `EVAL` on the same route, never by a `SCRIPT LOAD` to
//!   every master, which would wait on any master that is down. `MOVED` and `ASK` redirections
//!   during a slot migration are followed (tested with a live `CLUSTER SETSLOT` migration: a
//!   held lock whose key and counter move is renewed, seen and released through `ASK`, then
//!   `MOVED`). Redis refuses a multi-key script whose keys are only partly moved
//!   (`TRYAGAIN`): an acquire of a key that is not on the old master yet waits, retried by the
//!   client within `command_timeout`, until its slot's migration ends; its lease counts from
//!   the first send, as always.
//! - **Waking.** Releases are announced with classic `PUBLISH`, which a cluster forwards to
//!   subscribers on every node, so each backend keeps one subscription connection on one seed
//!   (the first that answers, in URL order; when that node dies, waiters subscribe again on
//!   the next) for all keys, whichever master serves them. The price: a release on another
//!   master reaches the waiter through the cluster bus, later than the releasing client can
//!   take the key again, so under contention most grants went back to the same client in a
//!   short bench on a shared 2-core machine (load 4; 3-master cluster on loopback, 8 clients
//!   on one key: 3,549 grants/s but 377 hand-overs/s; one primary in the same run: 3,173 and
//!   2,905).
//!   Sharded pub/sub (`SSUBSCRIBE`, Redis 7) would spare the cluster bus that fan-out, but needs
//!   one subscription connection per master and re-subscribing when slots move; at lock
//!   release rates the broadcast is cheap, so the one connection was kept for now; sharded
//!   pub/sub on the key's own master is the way to faster hand-overs. The timer at the
//!   key's `PTTL` stays as the fallback.
//! - **Restarts, per master.** After each grant (in the background: the acquire does not
//!   wait) and with every renewal (in the same round trip as the script), the master of the
//!   key's slot is asked its cluster node id (its own line of `CLUSTER NODES`, kept across
//!   restarts in `nodes.conf`) and its `run_id`; an answer from a node that does not serve the
//!   slot (the client sends requests for an unreachable node to another one) decides nothing.
//!   A lease whose master restarted empty before its identity was known is still lost at its
//!   next renewal, as [`LossReason::NotOwner`](locksmith_core::LossReason) (the key is gone). The same node id with a new `run_id` is a
//!   master that restarted, maybe empty: its leases fail closed as on one primary
//!   ([`LossReason::BackendReset`](locksmith_core::LossReason)) — each at its next renewal (a
//!   third of the TTL), and every lease of that master at once when any request of the same
//!   backend sees the new `run_id`. Leases on other masters are not touched. Another node id
//!   means the slot moved (resharding, or a failover to a replica): the lease follows it, and
//!   the renewal's compare-and-`PEXPIRE` decides (a replica that had not received the key
//!   makes the renewal fail, and `lost()` resolves; in the meantime another client may be
//!   granted the key there, as with a failover on one primary).
//! - A master that is down: requests for its slots fail within `command_timeout`, so its
//!   holders resolve `lost()` at their deadline and nobody is granted its keys until it is
//!   back (or failed over). Whether the rest of the cluster keeps serving depends on the
//!   cluster's `cluster-require-full-coverage`.
//! - Passwords, ACL users and TLS (`rediss+cluster://…?tls_ca=`) apply to every node the
//!   client reaches, seeds or discovered (tested on a cluster with a password and TLS on
//!   clients and the cluster bus).
//! - No fair mode yet (`fair=` is refused with an error saying so).
//!
//! ## Redlock
//! `redlock://` follows the algorithm on redis.io: the same acquire script is sent to all N
//! nodes at once, each request bounded by a per-node timeout (`min(command_timeout, TTL/10)`);
//! the grant needs a quorum of N/2+1 nodes and is valid for `TTL − elapsed − drift`, counted from
//! when the requests were sent (drift `TTL × 1% + 2 ms` unless `drift=` says otherwise). A
//! failed attempt releases on every node and is retried after a release message or a random
//! delay up to `retry_delay` (a split vote always waits the random delay). Release and renewal
//! go to every node; renewal must be confirmed by a quorum within the validity window, or the
//! holder's `lost()` resolves. A node whose `run_id` changed since the grant does not count
//! towards the renewal quorum. If fewer than a quorum of nodes answer at all, acquire fails at
//! once with an error saying how many answered.
//!
//! ### Fencing tokens on Redlock
//! Each node keeps its own counter (the same script as `redis://`: the `INCR` runs in the
//! script that sets the key, so a node's counter reaches its returned value while the grant
//! holds the key there). A grant's token is the **maximum** of the counters returned by the
//! granting quorum. Before `acquire` returns, the token must be on the counters of a
//! **majority** of nodes, each time while the grant held the key on that node:
//! - the nodes whose own `INCR` returned the token already qualify (no write-back);
//! - if they are fewer than a majority, the token is **written back**
//!   (`counter = max(counter, token)`) to the other nodes, each write conditioned on the grant
//!   still holding the key there (`lua/fence_writeback.lua`), until a majority qualifies;
//!   otherwise the attempt fails and is undone.
//!
//! *Argument.* Let grant A (token `a`) be followed by grant B. The nodes W_A whose counter
//! reached at least `a` while A held the key there are a majority; B's quorum Q_B is a
//! majority, so some node x is in both. On x, B's `SET NX` succeeded only after A's key there
//! was gone, so after x's counter reached `a`: B's `INCR` on x returns more than `a`, and B's
//! token, a maximum that includes x, is greater than `a`. Tokens are thus strictly increasing
//! (and so unique) across successive holders, under the same assumptions that give Redlock
//! mutual exclusion (bounded clock drift, process pauses shorter than the validity).
//!
//! *What breaks.* The argument needs every node in W_A to still remember its counter when B
//! asks. A node that restarts **empty** (no persistence, or `appendfsync everysec` losing the
//! last second) forgets both A's key and its counter; if it is the only member of W_A ∩ Q_B, B
//! can be granted while A still holds the lock, and B's token may not exceed `a` (the counter
//! re-seeds from the clock, which usually, but not provably, keeps it ahead). As the Redlock
//! description recommends: run the nodes with `appendonly yes` + `appendfsync always`, or keep
//! a restarted node out of service for longer than the longest TTL.
//!
//! `holder()` shows the owner held on a quorum of nodes and the grant's token: on each node
//! that holds the key, the counter is the token that node's grant took, raised by a write-back
//! to the grant's token, and nothing else moves it while the key is held there; so the nodes
//! of W_A (a majority) all show the grant's token, and no other token can be on a majority.
//! The token is shown when the nodes that answered show one token on a majority (always,
//! unless some of W_A did not answer).
//!
//! *Cost.* The counters of nodes that take part in every grant stay equal (a write-back is
//! sent to every node that granted with a lower counter, even after a majority confirmed), so
//! a grant's `INCR`s usually agree and an acquire is one fan-out. A write-back round (a second fan-out returning at a majority) is added only when
//! they disagree: the first grant of a key (each node seeds its counter from its own clock),
//! and after a node missed grants (it was down, or granted to an attempt that then failed
//! for want of a quorum and was undone).
//! Release returns once a majority confirmed it; the requests to the other nodes are already
//! sent.

//! ## Limits
//! - One primary per `redis://` URL, one cluster per `redis+cluster://` URL; no Sentinel. A
//!   failover to an asynchronously replicated replica (Sentinel's or a cluster's) can lose a
//!   held lock; use `redlock://` or a consensus-backed backend where that matters.
//! - A master that restarts empty forgets its keys: until its holders' next renewal (or any
//!   request of their backend to it) another client can be granted a key they still think
//!   they hold. Delay a restart past the longest TTL, or persist (`appendfsync always`).
//! - The fence counter of every key ever locked stays on the server (one small string each).
//! - No fair mode for `redlock://` (`fair=` is refused with an error saying so): a FIFO queue
//!   would have to be kept consistent across independent nodes, which Redlock does not give.

mod backend;
mod cluster;
mod conn;
mod error;
mod fanout;
mod layout;
mod lease;
mod native;
mod redlock;
mod renew_batch;
mod scripts;
mod url;
mod wait;
mod waker;

pub use backend::{RedisBackend, capabilities, fair_capabilities};
pub use cluster::{RedisClusterBackend, cluster_capabilities};
pub use layout::FOREIGN_OWNER;
pub use redlock::{RedlockBackend, redlock_capabilities};
pub use url::{DEFAULT_COMMAND_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, DEFAULT_WAITER_TIMEOUT};
