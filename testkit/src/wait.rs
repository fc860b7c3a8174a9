//! Waiting for a condition that holds eventually.

use std::time::{Duration, Instant};

/// Polls `f` every `every` until it returns Some; panics naming `what` once `timeout` has
/// passed. Returns the value and how long it took.
pub async fn poll<T>(
    timeout: Duration,
    every: Duration,
    what: &str,
    mut f: impl AsyncFnMut() -> Option<T>,
) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return (v, started.elapsed());
        }
        assert!(started.elapsed() < timeout, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(every).await;
    }
}

/// [`poll`] every 100 ms.
pub async fn eventually<T>(timeout: Duration, what: &str, f: impl AsyncFnMut() -> Option<T>) -> (T, Duration) {
    poll(timeout, Duration::from_millis(100), what, f).await
}
