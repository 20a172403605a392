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
//!   go through a TCP fault proxy ([`locksmith_testkit::proxy::FaultProxy`]) the run puts
//!   between the clients and the backend (the URL's `host:port` is rewritten to the proxy's),
//!   and hit every client at once; partition and latency last longer than the TTL. `restart`
//!   SIGKILLs and restarts a server the run started itself (`--servers redis`: a private
//!   `redis-server` with an fsynced append-only file) ([`network`]). `--servers redlock`
//!   starts five such servers, and its `restart` kills a minority (2), then on the next turn a
//!   majority (3), for longer than the TTL before starting them again. `--servers postgres`,
//!   `mysql` and `etcd` start the testkit's private servers (not restartable yet).
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
//! - **Report** ([`report`]): a table per backend × fault, the findings, and `findings.json`,
//!   written to the output folder with the histories.
//!
//! The `locksmith torture` command is a thin front end to [`run`] and [`client_main`].
//!
//! ## Known findings
//! - None open. The SQL backends see a reset or cut connection at once (PostgreSQL's driver
//!   reads in the background; locksmith-mysql watches the pinned connection's socket), so
//!   `reset` and `cut` show no overlap there.
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
