//! # locksmith-torture
//!
//! A Jepsen-style torture run for any locksmith backend (any URL `locksmith::open` accepts):
//! client processes contend for a few keys and do read-modify-write increments on a shared
//! [resource](resource) while holding them; the orchestrator injects faults (SIGSTOP a holder
//! past its TTL, SIGKILL a holder); every process records a [history](history) on one
//! monotonic clock; the [checker](checker) merges the histories and finds overlapping holds,
//! notification lag, token-order breaks and stale writes; the [report](report) summarises per
//! backend × fault and fails on any violation locksmith promises cannot happen.
//!
//! The `locksmith torture` command is a thin front end to [`run`] and [`client_main`].

pub mod checker;
pub mod client;
pub mod clock;
pub mod fault;
pub mod history;
pub mod orchestrator;
pub mod report;
pub mod resource;

pub use client::{ClientConfig, client_main};
pub use fault::Fault;
pub use orchestrator::{Outcome, TortureConfig, run};
