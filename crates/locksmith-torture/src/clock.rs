//! The one clock every history uses: `CLOCK_MONOTONIC` in nanoseconds.
//!
//! It is system-wide on Linux, so timestamps taken by different processes on one host are
//! comparable, which is what lets the checker merge the histories of separate client processes.

use std::time::Duration;

/// Nanoseconds on `CLOCK_MONOTONIC` (comparable across processes on one host).
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// A monotonic timestamp `d` from now.
pub fn after(d: Duration) -> u64 {
    now_ns().saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Nanoseconds as a duration.
pub fn ns(d: u64) -> Duration {
    Duration::from_nanos(d)
}
