//! The worker's counters, exposed as Prometheus text on its own metrics endpoint.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What one transaction did; added to the totals only when it commits.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchCounts {
    pub records_in: u64,
    pub records_out: u64,
    pub dead_lettered: BTreeMap<&'static str, u64>,
}

impl BatchCounts {
    pub fn dead(&mut self, reason: &'static str) {
        *self.dead_lettered.entry(reason).or_default() += 1;
    }
}

/// Totals of committed work since start, plus the consumer lag.
#[derive(Debug, Default)]
pub struct Metrics {
    records_in: AtomicU64,
    records_out: AtomicU64,
    dead_lettered: Mutex<BTreeMap<&'static str, u64>>,
    transactions: AtomicU64,
    aborted: AtomicU64,
    lag: AtomicU64,
}

impl Metrics {
    pub fn committed(&self, batch: &BatchCounts) {
        self.records_in.fetch_add(batch.records_in, Ordering::Relaxed);
        self.records_out.fetch_add(batch.records_out, Ordering::Relaxed);
        self.transactions.fetch_add(1, Ordering::Relaxed);
        let mut dead = self.dead_lettered.lock().expect("metrics lock");
        for (reason, n) in &batch.dead_lettered {
            *dead.entry(reason).or_default() += n;
        }
    }

    pub fn aborted(&self) {
        self.aborted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_lag(&self, lag: u64) {
        self.lag.store(lag, Ordering::Relaxed);
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(
            "outflow_waf_records_in_total",
            "Raw records consumed and committed.",
            self.records_in.load(Ordering::Relaxed),
        );
        counter(
            "outflow_waf_records_out_total",
            "Split records produced and committed.",
            self.records_out.load(Ordering::Relaxed),
        );
        counter("outflow_waf_transactions_total", "Committed transactions.", self.transactions.load(Ordering::Relaxed));
        counter(
            "outflow_waf_transactions_aborted_total",
            "Aborted (and redone) transactions.",
            self.aborted.load(Ordering::Relaxed),
        );
        let dead = self.dead_lettered.lock().expect("metrics lock");
        let _ = writeln!(
            out,
            "# HELP outflow_waf_dead_lettered_total Raw records sent to the dead-letter topic, by reason.\n# TYPE outflow_waf_dead_lettered_total counter"
        );
        let _ = writeln!(out, "outflow_waf_dead_lettered_total {}", dead.values().sum::<u64>());
        for (reason, n) in dead.iter() {
            let _ = writeln!(out, "outflow_waf_dead_lettered_total{{reason=\"{reason}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP outflow_waf_consumer_lag Records of the raw topic's assigned partitions this worker has not read yet.\n# TYPE outflow_waf_consumer_lag gauge\noutflow_waf_consumer_lag {}",
            self.lag.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_committed_batches_count() {
        let metrics = Metrics::default();
        let mut batch = BatchCounts { records_in: 3, records_out: 7, ..BatchCounts::default() };
        batch.dead("invalid-json");
        batch.dead("unknown-tenant");
        batch.dead("invalid-json");
        metrics.committed(&batch);
        metrics.aborted();
        metrics.set_lag(12);
        let text = metrics.render();
        for line in [
            "outflow_waf_records_in_total 3",
            "outflow_waf_records_out_total 7",
            "outflow_waf_transactions_total 1",
            "outflow_waf_transactions_aborted_total 1",
            "outflow_waf_dead_lettered_total 3",
            "outflow_waf_dead_lettered_total{reason=\"invalid-json\"} 2",
            "outflow_waf_dead_lettered_total{reason=\"unknown-tenant\"} 1",
            "outflow_waf_consumer_lag 12",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
