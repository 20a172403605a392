//! The workloads behind `locksmith bench`: the same measurements against any locksmith backend,
//! one backend after the other, so that a user can read the seed's comparison table (method ·
//! speed · fairness · fencing) as numbers taken on their own servers.
//!
//! Per backend ([`bench_backend`]):
//! - **floor**: `Backend::try_acquire` + `Lease::release` on the raw backend trait, sequential
//!   — the backend's own round trips with its own client library and nothing of locksmith's
//!   shared machinery (no guard, no renewal task, no in-process queue). Every other figure is
//!   also given as a ratio to it. (It is the trait's pair, not a bare server command such as
//!   `SET NX`+`DEL`; the backend crates' criterion benchmarks compare against those.)
//! - **uncontended**: `Locker::acquire` + `Guard::release`, sequential, one client: p50/p99/p99.9.
//! - **throughput**: N clients (each its own backend instance, so its own connections) on N
//!   distinct keys: acquire+release per second, all together.
//! - **contended**: N clients on one key: acquisitions per second, the wait before each grant
//!   (p50/p99/p99.9), the hand-over (from the moment the holder starts its release to the moment
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
