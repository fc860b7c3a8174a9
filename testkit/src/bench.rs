//! Figures for the benchmarks' reports.

use std::time::{Duration, Instant};

/// The `p` quantile (0.0–1.0) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `f` `n` times and keeps the fastest time (the least disturbed by other processes),
/// with the last result.
pub fn best_of<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best: Option<Duration> = None;
    let mut result = None;
    for _ in 0..n {
        let started = Instant::now();
        let r = std::hint::black_box(f());
        let took = started.elapsed();
        if best.is_none_or(|b| took < b) {
            best = Some(took);
        }
        result = Some(r);
    }
    (best.unwrap(), result.unwrap())
}
