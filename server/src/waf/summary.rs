//! What the WAF topic holds, summarised for the Streaming tab: rule ids and client addresses
//! of split records (ModSecurity v3, ModSecurity 2.9 and Coraza shapes), counted.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema, Default)]
pub struct WafSummary {
    /// Records of the last hour read (at most 5,000 per partition, newest kept).
    pub records: usize,
    /// Rule ids by count, most frequent first (top 10).
    pub top_rules: Vec<(String, u64)>,
    /// Client addresses by count, most frequent first (top 10).
    pub top_clients: Vec<(String, u64)>,
    /// Messages by severity, most severe first.
    pub by_severity: Vec<(String, u64)>,
}

/// What the summary counts of one record.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub rules: Vec<String>,
    pub client: Option<String>,
    pub severities: Vec<String>,
}

impl Facts {
    pub fn of(value: &[u8]) -> Facts {
        serde_json::from_slice::<serde_json::Value>(value).map(|json| Facts::from_json(&json)).unwrap_or_default()
    }

    pub fn from_json(json: &serde_json::Value) -> Facts {
        let (rules, client) = waf_fields(json);
        Facts { rules, client, severities: super::events::severities(json) }
    }
}

/// The rank of a severity word (unknown words after the known ones).
fn severity_rank(word: &str) -> usize {
    super::events::severity_number(word).unwrap_or(usize::MAX)
}

/// The summary of records already reduced to their facts.
pub fn summarize_facts<'a>(facts: impl IntoIterator<Item = &'a Facts>) -> WafSummary {
    let (mut rules, mut clients, mut severities, mut records) = (HashMap::new(), HashMap::new(), HashMap::new(), 0);
    for f in facts {
        records += 1;
        for id in &f.rules {
            *rules.entry(id.clone()).or_insert(0) += 1;
        }
        if let Some(c) = &f.client {
            *clients.entry(c.clone()).or_insert(0) += 1;
        }
        for s in &f.severities {
            *severities.entry(s.clone()).or_insert(0u64) += 1;
        }
    }
    let mut by_severity: Vec<(String, u64)> = severities.into_iter().collect();
    by_severity.sort_by(|a, b| severity_rank(&a.0).cmp(&severity_rank(&b.0)).then_with(|| a.0.cmp(&b.0)));
    WafSummary { records, top_rules: top(rules, 10), top_clients: top(clients, 10), by_severity }
}

/// The WAF rule id and client address of one split record: ModSecurity v3
/// (`.transaction.messages.details.ruleId`, `.transaction.client_ip`), ModSecurity 2.9 (the
/// `[id "…"]` tag of the `.audit_data.messages` string) or Coraza (`.messages.data.id`,
/// `.transaction.client_ip`). Arrays (unsplit records) count each message.
pub fn waf_fields(record: &serde_json::Value) -> (Vec<String>, Option<String>) {
    (super::events::rule_ids(record), super::events::client(record))
}

/// Counts, most frequent first (ties by value), at most `n`.
fn top(counts: HashMap<String, u64>, n: usize) -> Vec<(String, u64)> {
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v.truncate(n);
    v
}

pub fn summarize<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> WafSummary {
    let facts: Vec<Facts> = values.into_iter().map(Facts::of).collect();
    summarize_facts(&facts)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn waf_fields_of_both_formats() {
        let modsec = json!({"transaction": {"client_ip": "198.51.100.7",
            "messages": {"message": "SQLi", "details": {"ruleId": "942100"}}}});
        assert_eq!(waf_fields(&modsec), (vec!["942100".into()], Some("198.51.100.7".into())));
        let coraza = json!({"transaction": {"client_ip": "2001:db8::1"}, "messages": {"data": {"id": 920350}}});
        assert_eq!(waf_fields(&coraza), (vec!["920350".into()], Some("2001:db8::1".into())));
        let unsplit =
            json!({"transaction": {"messages": [{"details": {"ruleId": "1"}}, {"details": {"ruleId": "2"}}]}});
        assert_eq!(waf_fields(&unsplit).0, vec!["1".to_string(), "2".to_string()]);
        let modsec2 = json!({"audit_data": {"messages": "Warning. Pattern match [id \"942100\"] [msg \"SQLi\"]"}});
        assert_eq!(waf_fields(&modsec2).0, vec!["942100".to_string()]);
    }

    #[test]
    fn summary_counts_and_orders() {
        let records: Vec<Vec<u8>> = [("942100", "a"), ("942100", "b"), ("920350", "a"), ("942100", "a")]
            .iter()
            .map(|(rule, ip)| {
                json!({"transaction": {"client_ip": ip, "messages": {"details": {"ruleId": rule}}}})
                    .to_string()
                    .into_bytes()
            })
            .chain([b"not json".to_vec()])
            .collect();
        let summary = summarize(records.iter().map(Vec::as_slice));
        assert_eq!(summary.records, 5);
        assert_eq!(summary.top_rules, vec![("942100".into(), 3), ("920350".into(), 1)]);
        assert_eq!(summary.top_clients, vec![("a".into(), 3), ("b".into(), 1)]);
        let severities: Vec<Vec<u8>> = ["4", "2", "2", "7"]
            .iter()
            .map(|s| {
                json!({"transaction": {"messages": {"details": {"ruleId": "1", "severity": s}}}})
                    .to_string()
                    .into_bytes()
            })
            .collect();
        let summary = summarize(severities.iter().map(Vec::as_slice));
        assert_eq!(
            summary.by_severity,
            vec![("CRITICAL".into(), 2), ("WARNING".into(), 1), ("DEBUG".into(), 1)],
            "most severe first"
        );
    }
}
