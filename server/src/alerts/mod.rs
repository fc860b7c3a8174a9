//! Alerts: rules evaluated by one evaluator per cluster (WAF bursts from `c<N>_waf`, lag and
//! stalled groups from the shared sampler, credential expiry and unapplied allowlists from the
//! database), instances moving pending → firing → resolved, and messages queued in an outbox
//! for the tenant's channels (signed webhooks, Slack, Alertmanager).
//!
//! The types here are what the evaluator hands to delivery: a [`Message`] is one rule's
//! instances that changed together (grouped within 30 s), rendered per channel kind when queued.

pub mod deliver;
pub mod engine;
pub mod evaluate;
pub mod manage;
pub mod rules;
pub mod waf;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Instances listed in one message; the rest are counted ("+N other addresses").
pub const MAX_LISTED: usize = 20;

/// Whether a message reports instances starting (or still) firing, or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Firing,
    Resolved,
}

/// One alert instance: a rule's labels (e.g. `client_ip`) with their stable hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Instance {
    /// Stable hash of the rule id and the labels: the de-duplication key everywhere.
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    /// What the rule measured (events in the window, lag, days left, seconds behind).
    pub value: f64,
    /// Unix seconds.
    pub starts_at: i64,
    /// Unix seconds; set once resolved.
    pub ends_at: Option<i64>,
}

/// One message for a rule's channels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub status: Status,
    /// `None` for an operator (cluster-wide) rule.
    pub tenant_id: Option<i64>,
    pub rule_id: i64,
    pub rule_name: String,
    /// `waf_burst`, `lag_above`, …
    pub rule_kind: String,
    /// `critical`, `warning` or `info`.
    pub severity: String,
    /// One line a person reads, e.g. "120 CRITICAL WAF events in 5 min from 203.0.113.9".
    pub summary: String,
    /// Every instance of the message; renderers list at most [`MAX_LISTED`].
    pub instances: Vec<Instance>,
    /// Where the alert is shown on the dashboard.
    pub dashboard_url: String,
    /// Unix milliseconds when the message was made.
    pub timestamp_ms: i64,
    /// A delivery sent by "Send test", not by a rule.
    #[serde(default)]
    pub test: bool,
}

/// The fingerprint of an instance: hex SHA-256 over the rule id and the sorted labels.
pub fn fingerprint(rule_id: i64, labels: &BTreeMap<String, String>) -> String {
    let mut input = format!("{rule_id}");
    for (k, v) in labels {
        // Lengths first, so no label text can forge another's boundary.
        input.push_str(&format!("\n{}:{}={}:{}", k.len(), k, v.len(), v));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, input.as_bytes());
    digest.as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_stable_and_tell_labels_apart() {
        let a: BTreeMap<String, String> = [("client_ip".to_owned(), "203.0.113.9".to_owned())].into();
        let b: BTreeMap<String, String> = [("client_ip".to_owned(), "203.0.113.90".to_owned())].into();
        assert_eq!(fingerprint(1, &a), fingerprint(1, &a.clone()));
        assert_eq!(fingerprint(1, &a).len(), 24);
        assert_ne!(fingerprint(1, &a), fingerprint(1, &b));
        assert_ne!(fingerprint(1, &a), fingerprint(2, &a));
        let tricky: BTreeMap<String, String> = [("a".to_owned(), "b\n1:c=1:d".to_owned())].into();
        let split: BTreeMap<String, String> =
            [("a".to_owned(), "b".to_owned()), ("c".to_owned(), "d".to_owned())].into();
        assert_ne!(fingerprint(1, &tricky), fingerprint(1, &split));
    }
}
