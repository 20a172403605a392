//! The workloads behind `locksmith bench`: the same measurements against any locksmith backend,
//! one backend after the other, so that a user can read the seed's comparison table (method ·
//! speed · fairness · fencing) as numbers taken on their own servers.
//!
//! Per backend ([`bench_backend`]):
//! - **floor**: the backend's own cheapest acquire-and-release pair
//!   ([`locksmith_core::Backend::native_pair`]: `SET NX PX` + compare-and-delete on Redis,
//!   `pg_try_advisory_lock` + unlock, `GET_LOCK` + `RELEASE_LOCK`, the etcd recipe's put and
//!   delete transactions, a ZooKeeper create + delete, `flock` + unlock), sequential, with the
//!   backend's own client library and connections and none of locksmith's machinery (no fencing
//!   token, no guard, no lease keeping, no in-process queue): the physical limit on this
//!   deployment. Every other latency is also given as a ratio to it.
//! - **uncontended**: `Locker::acquire` + `Guard::release`, sequential, one client: p50/p99/p99.9,
//!   interleaved one for one with the floor's pairs so that both see the same machine load.
//! - **throughput**: N clients (each its own backend instance, so its own connections) on N
//!   distinct keys: acquire+release per second, all together.
//! - **contended**: N clients on one key: acquisitions per second, the wait before each grant
//!   (p50/p99/p99.9), hand-overs per second (grants to a different client than the last),
//!   the hand-over (from the moment the holder starts its release to the moment
//!   the next holder's acquire returns) and Jain's fairness index over per-client counts.
//! - **renewal load**: K leases held with renewal on for the duration: backend calls per second
//!   (counted by a wrapper around the backend) and the process's resident memory.
//!
//! Keys live under `locksmith-bench/<random>/`; every lease taken is released before the
//! workload returns. Figures are percentiles from `hdrhistogram` (nanosecond resolution, three
//! significant digits).

mod chart;
mod counting;
mod report;
mod stats;
mod stop;
mod workloads;

pub use chart::write_svg;
pub use counting::CountingBackend;
pub use report::{BackendReport, Contended, Floor, Renewal, Report, Throughput, markdown};
pub use stats::{Latency, jain};
pub use stop::Stop;
pub use workloads::{Config, OpenFn, ProgressFn, bench_backend};
