//! # locksmith-testkit
//!
//! The conformance suite every locksmith backend runs against its real server, through one
//! entry point: a backend's test file (with `harness = false`) is
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     locksmith_testkit::conformance_main(|| async {
//!         // Start or locate the real server here, then describe it:
//!         # let target: locksmith_testkit::Target = unimplemented!();
//!         target
//!     })
//! }
//! ```
//!
//! Every case is listed by name; a case the backend cannot support is reported as ignored
//! (skipped) with the reason, never counted as passed.

pub mod bench;
mod cases;
pub mod errors;
pub mod failover;
pub mod proxy;
mod runner;
pub mod servers;
pub mod sql;
mod target;

pub use runner::conformance_main;
pub use target::Target;
