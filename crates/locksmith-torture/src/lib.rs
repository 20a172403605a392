//! # locksmith-torture
//!
//! A Jepsen-style torture run for any locksmith backend (any URL `locksmith::open` accepts
//! that separate processes can share):
//!
//! - **Workload** ([`client`]): C client processes contend for K keys; a holder does
//!   read-modify-write increments on both registers of the [`resource`] server with its
//!   fencing token, checking `Guard::is_held` before each.
//! - **History** ([`history`]): every process appends JSON lines stamped with
//!   `CLOCK_MONOTONIC` nanoseconds ([`clock`]), comparable across processes on one host:
//!   acquire invoke/ok/fail/unknown, renew, lost, release, writes (client side and as the
//!   resource judged them), faults.
//! - **Faults** ([`fault`], [`orchestrator`]): `pause` SIGSTOPs a current holder for longer
//!   than its TTL, then SIGCONTs it; `kill` SIGKILLs a holder and starts a replacement client.
//!   `partition` (blackhole), `latency`, `cut` (after a request, before its reply) and `reset`
//!   go through TCP fault proxies ([`locksmith_testkit::proxy::FaultProxy`]), one in front of
//!   each of the URL's `host:port`s (the URL is rewritten to the proxies'), and hit every
//!   client at once; partition and latency last longer than the TTL. With several servers
//!   (Redlock's nodes), each network fault hits a minority (2 of 5) of them, then the next
//!   time a majority (3), in rows of their own (`partition-minority`, ...). `restart` kills a
//!   server the run started itself (`--servers`) and starts it again over its data after
//!   longer than the TTL ([`network`]): `redis` (an fsynced append-only file), `redlock` (five
//!   of them; a minority, then a majority), `postgres` (an immediate shutdown: the WAL is
//!   replayed as after a crash), `mysql` (MariaDB, SIGKILL), `etcd` (one member, SIGKILL) and
//!   `zookeeper` (standalone, SIGKILL). Sessions end with the server; the fencing counters
//!   survive, so tokens keep rising.
//! - **Session lengths follow `--ttl`** ([`network::follow_ttl`]): an `etcd://` URL without
//!   `lease_ttl` gets `lease_ttl=TTL` (whole seconds), a `zookeeper://` URL without
//!   `session_timeout` gets `session_timeout=TTL` (at least 1 s), so a killed holder's locks
//!   go after about the TTL rather than the backends' 10 s default.
//! - **Checker** ([`checker`]): overlapping holds inside valid leases, notification lag, token
//!   order, stale writes accepted by the fenced register (violations), overlaps after an
//!   expired lease, lost updates on the unfenced register, stale writes rejected
//!   (observations), and time to recovery after each fault.
//! - **Expected-unsafe scenario** `split-brain` ([`TortureConfig::split_brain`]): every
//!   even-numbered client locks on a second URL, so real processes really overlap; the run
//!   passes only if the checker catches overlaps inside valid leases. It shows the checker
//!   catching what it claims to on live processes, not only on hand-made histories.
//! - **Expected-unsafe scenario** `pause-past-ttl` ([`TortureConfig::pause_past_ttl`]):
//!   client 1 stops itself (SIGSTOP) between reading the registers and writing them back, for
//!   longer than the TTL, as a GC pause would. On a TTL-lease backend another client takes the
//!   key meanwhile; the run passes only if the checker shows overlaps after expiry and lost
//!   updates on the unfenced register while the fenced register rejected every stale write.
//! - **Expected-unsafe scenario** `redlock-restart-empty`
//!   ([`TortureConfig::redlock_restart_empty`], `--servers redlock`): the five nodes run
//!   without persistence, and while a client holds a key a majority of them restarts empty,
//!   so another client gets a quorum for the same key while the first one's lease is valid.
//!   The run passes only if the checker catches overlaps inside valid leases.
//! - **Report** ([`report`]): a table per backend × fault, the findings, and `findings.json`,
//!   written to the output folder with the histories.
//!
//! The `locksmith torture` command is a thin front end to [`run`] and [`client_main`].
//!
//! ## Known findings
//! - The SQL backends see a reset or cut connection at once (PostgreSQL's driver reads in the
//!   background; locksmith-mysql watches the pinned connection's socket), so `reset` and `cut`
//!   show no overlap there.
//! - **pause on session-bound backends**: a holder SIGSTOPped for longer than its session
//!   loses the session on the server, and another client takes the key. The etcd and ZooKeeper
//!   guards report until when their session is provably alive (`Lease::session_valid_until`:
//!   the last keep-alive or answered request the server confirmed, plus the session timeout,
//!   less a margin), so the resumed holder is not held any more and the overlap counts as after
//!   expiry. (Before ZooKeeper had it, the checker counted such overlaps inside valid holds.)
//!
//! ## Limits
//! - One host: the histories share one monotonic clock, so the clients and the orchestrator
//!   must run on the same machine (the backend may be anywhere).
//! - A hold is what the client *saw*: from the grant's reply to the release being sent. The
//!   lease deadline of a hold is the latest one the guard reported (at the grant, before each
//!   write, every 5–20 ms, and at the release). A renewal not yet observed makes a lease look
//!   shorter, so an overlap in that gap would be classed as after-expiry instead of inside a
//!   valid lease; the gap is one write interval, unless the holder was paused.
//! - On session-bound backends (`file://`) a paused holder keeps its lock: there a pause must
//!   show no overlap at all, and the time to recovery is at least the pause.

pub mod checker;
pub mod client;
pub mod clock;
pub mod fault;
pub mod history;
pub mod network;
pub mod orchestrator;
pub mod report;
pub mod resource;
pub mod timeline;

pub use client::{ClientConfig, client_main};
pub use fault::Fault;
pub use orchestrator::{Outcome, TortureConfig, run};
