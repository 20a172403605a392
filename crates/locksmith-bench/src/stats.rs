//! Latency summaries from histograms, and Jain's fairness index.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency histogram in nanoseconds, 1 ns to 10 minutes, three significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("valid histogram bounds")
}

/// Records `d` (clamped into the histogram's range).
pub(crate) fn record(h: &mut Histogram<u64>, d: Duration) {
    let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
    h.saturating_record(ns);
}

/// Percentiles of a set of latencies, in microseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// How many were measured.
    pub count: u64,
    /// Median, µs.
    pub p50_us: f64,
    /// 90th percentile, µs.
    pub p90_us: f64,
    /// 99th percentile, µs.
    pub p99_us: f64,
    /// 99.9th percentile, µs.
    pub p999_us: f64,
    /// Largest, µs.
    pub max_us: f64,
    /// The distribution for charts: (percentile 0..100, µs) pairs.
    pub curve: Vec<(f64, f64)>,
}

impl Latency {
    /// Summarises a histogram of nanoseconds.
    pub(crate) fn from_histogram(h: &Histogram<u64>) -> Self {
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let curve = [
            0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99,
        ]
        .iter()
        .filter(|&&p| {
            !h.is_empty() && (p < 99.0 || h.len() >= 100) && (p < 99.9 || h.len() >= 1000)
        })
        .map(|&p| (p, us(p / 100.0)))
        .collect();
        Self {
            count: h.len(),
            p50_us: us(0.5),
            p90_us: us(0.9),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: h.max() as f64 / 1000.0,
            curve,
        }
    }
}

/// Jain's fairness index of per-client counts: 1 when all are equal, 1/n when one client got
/// everything; 0 when nothing was counted.
pub fn jain(counts: &[u64]) -> f64 {
    let n = counts.len() as f64;
    let sum: f64 = counts.iter().map(|&x| x as f64).sum();
    let squares: f64 = counts.iter().map(|&x| (x as f64).powi(2)).sum();
    if squares == 0.0 {
        return 0.0;
    }
    sum * sum / (n * squares)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jain_bounds() {
        assert!((jain(&[5, 5, 5, 5]) - 1.0).abs() < 1e-9);
        assert!((jain(&[8, 0, 0, 0]) - 0.25).abs() < 1e-9);
        assert_eq!(jain(&[0, 0]), 0.0);
    }

    #[test]
    fn percentiles_are_ordered() {
        let mut h = histogram();
        for i in 1..=10_000u64 {
            record(&mut h, Duration::from_micros(i));
        }
        let l = Latency::from_histogram(&h);
        assert_eq!(l.count, 10_000);
        assert!(l.p50_us <= l.p99_us && l.p99_us <= l.p999_us && l.p999_us <= l.max_us);
        assert!(l.curve.windows(2).all(|w| w[0].1 <= w[1].1));
    }
}
