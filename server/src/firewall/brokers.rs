//! What each broker's firewall agent reported: the allowlist version it enforces, when it last
//! called in, and its last error. An agent reports only for the broker its token is bound to,
//! and only versions the server has published, so "applied on k of n" counts real brokers.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::{now, rfc3339};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::firewall::{self as stored, AgentReport};

/// A broker's name as its agent reports it: 1-64 letters, digits, `.`, `_`, `-` or `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerId(String);

impl BrokerId {
    pub fn parse(text: &str) -> Result<Self, Error> {
        let ok = !text.is_empty()
            && text.len() <= 64
            && text.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'));
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Error::invalid("broker_id", "use 1-64 letters, digits, '.', '_', '-' or ':', e.g. kafka-1"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An agent's report after each poll.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusReport {
    /// The broker reported for; it must be the one the agent token is bound to (403 otherwise).
    /// Omitted: the token's broker.
    #[schema(example = "kafka-1")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_id: Option<String>,
    /// The allowlist version the broker's firewall enforces now (0 before the first apply); at
    /// most the current version (422 otherwise).
    pub version: i64,
    /// Set elements in the applied ruleset, after merging.
    #[serde(default)]
    pub entries: i64,
    /// Why the last apply failed, if it did (the previous rules stay in force).
    pub error: Option<String>,
}

/// A validated report.
#[derive(Debug, Clone)]
pub struct Report {
    /// The broker the report names, if it names one.
    pub broker: Option<BrokerId>,
    pub version: i64,
    pub entries: i64,
    pub error: Option<String>,
}

impl Report {
    pub fn parse(input: &StatusReport) -> Result<Self, Error> {
        if input.version < 0 {
            return Err(Error::invalid("version", "version must not be negative"));
        }
        if input.entries < 0 {
            return Err(Error::invalid("entries", "entries must not be negative"));
        }
        // Kept short: it is shown on the brokers page.
        let error =
            input.error.as_deref().map(str::trim).filter(|e| !e.is_empty()).map(|e| e.chars().take(1000).collect());
        let broker = input.broker_id.as_deref().map(BrokerId::parse).transpose()?;
        Ok(Self { broker, version: input.version, entries: input.entries, error })
    }

    /// The broker this report may be recorded for: the one the agent's token is bound to.
    pub fn broker_for(&self, bound: Option<&BrokerId>) -> Result<BrokerId, Error> {
        reporting_broker(self.broker.as_ref(), bound)
    }
}

/// The broker an agent's report is for: the one its token is bound to (`bound`), which the
/// report may name (`named`); 403 for another one, or for a token bound to none.
pub fn reporting_broker(named: Option<&BrokerId>, bound: Option<&BrokerId>) -> Result<BrokerId, Error> {
    let Some(bound) = bound else {
        return Err(Error::Forbidden(
            "this agent token is bound to no broker (it predates broker ids): create one with \
             `outflow token create --role agent --broker-id ID` and give it to the agent",
        ));
    };
    match named {
        Some(named) if named != bound => {
            Err(Error::Forbidden("an agent token may only report for the broker it was created for"))
        }
        _ => Ok(bound.clone()),
    }
}

/// Records `report` for `broker` unless it claims a version the server never published; the
/// first report of a broker makes it known (it then counts in "applied on k of n brokers").
pub async fn record(store: &Store, broker: &BrokerId, report: &Report, token_name: &str) -> Result<()> {
    let row = AgentReport {
        broker: broker.as_str(),
        version: report.version,
        entries: report.entries,
        error: report.error.as_deref(),
        token_name,
    };
    stored::record_report(store, &row).await?.map_err(|current| {
        Error::invalid(
            "version",
            format!("version {} was never published; the current version is {current}", report.version),
        )
    })
}

/// Forgets a decommissioned broker, so it no longer counts in "k of n".
pub async fn forget(store: &Store, broker: &BrokerId) -> Result<()> {
    if stored::forget_broker(store, broker.as_str()).await? {
        Ok(())
    } else {
        Err(Error::NotFound(format!("no broker {:?} has reported", broker.as_str())))
    }
}

/// A broker as the brokers page shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BrokerView {
    pub broker_id: String,
    pub applied_version: i64,
    pub applied_entries: i64,
    pub last_error: Option<String>,
    pub last_contact_at: String,
    pub silent_secs: i64,
    /// Silent for longer than `firewall.stale_after_secs`.
    pub stale: bool,
    /// Enforces an older version than the current one.
    pub behind: bool,
    pub token_name: String,
}

/// Every known broker, by id, judged against `current` version and the stale threshold.
pub async fn list(store: &Store, current: i64, stale_after_secs: u64) -> Result<Vec<BrokerView>> {
    let rows = stored::brokers(store).await?;
    let now = now();
    Ok(rows
        .into_iter()
        .map(|r| {
            let silent_secs = (now - r.last_contact_at).max(0);
            BrokerView {
                stale: silent_secs > i64::try_from(stale_after_secs).unwrap_or(i64::MAX),
                behind: r.applied_version < current,
                silent_secs,
                last_contact_at: rfc3339(r.last_contact_at),
                broker_id: r.broker_id,
                applied_version: r.applied_version,
                applied_entries: r.applied_entries,
                last_error: r.last_error,
                token_name: r.token_name,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_ids() {
        assert!(BrokerId::parse("kafka-1").is_ok());
        assert!(BrokerId::parse("k1.mad:9093").is_ok());
        assert!(BrokerId::parse("").is_err());
        assert!(BrokerId::parse("a b").is_err());
        assert!(BrokerId::parse(&"k".repeat(65)).is_err());
    }

    #[test]
    fn reports_are_checked() {
        let report = |version, error: Option<&str>| StatusReport {
            broker_id: Some("kafka-1".into()),
            version,
            entries: 3,
            error: error.map(String::from),
        };
        assert!(matches!(Report::parse(&report(-1, None)), Err(Error::Invalid { field, .. }) if field == "version"));
        assert_eq!(Report::parse(&report(4, Some("  "))).unwrap().error, None);
        assert_eq!(Report::parse(&report(4, Some(&"e".repeat(5000)))).unwrap().error.unwrap().len(), 1000);
    }

    #[test]
    fn reports_are_for_the_bound_broker_only() {
        let kafka1 = BrokerId::parse("kafka-1").unwrap();
        let kafka2 = BrokerId::parse("kafka-2").unwrap();
        let named = |id: Option<&str>| {
            Report::parse(&StatusReport { broker_id: id.map(String::from), version: 0, entries: 0, error: None })
                .unwrap()
        };
        assert_eq!(named(Some("kafka-1")).broker_for(Some(&kafka1)).unwrap(), kafka1);
        assert_eq!(named(None).broker_for(Some(&kafka1)).unwrap(), kafka1, "the token names the broker");
        assert!(matches!(named(Some("kafka-2")).broker_for(Some(&kafka1)), Err(Error::Forbidden(_))));
        assert!(
            matches!(named(Some("kafka-2")).broker_for(None), Err(Error::Forbidden(m)) if m.contains("--broker-id"))
        );
        assert!(matches!(named(None).broker_for(None), Err(Error::Forbidden(_))));
        assert_eq!(named(Some("kafka-2")).broker_for(Some(&kafka2)).unwrap(), kafka2);
    }
}
