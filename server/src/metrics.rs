//! Counters of one server process, shown on `/metrics`.

use std::sync::atomic::AtomicU64;

#[derive(Debug, Default)]
pub struct Metrics {
    pub reconcile_passes: AtomicU64,
    pub reconcile_failures: AtomicU64,
    /// Successful audited requests whose change staged no audit entry in its transaction.
    pub audit_unstaged: AtomicU64,
    /// Alert deliveries sent by this process, by channel kind and outcome.
    pub alert_deliveries: std::sync::Arc<crate::alerts::deliver::Counters>,
}
