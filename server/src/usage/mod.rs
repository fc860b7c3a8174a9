//! Usage metering: per tenant and hour, the bytes and records delivered to its consumers and
//! written into its topics (docs/usage.md).
//!
//! - Bytes out, bytes in and records in come from the brokers' per-topic counters, scraped by
//!   each broker's agent ([`scrape`]) and reported with [`record_report`]; the store keeps the
//!   last value per broker, so a restarted broker's counters (back at zero) lose nothing.
//! - Records out come from the tenants' groups' committed-offset progress ([`worker`]).
//! - outflow's own reads of tenant topics ([`OwnReads`]) are counted apart and subtracted.
//! - The [`worker`] closes finished hours into rows, once.

pub mod chart;
pub mod report;
pub mod requests;
pub mod scrape;
pub mod tail;
pub mod worker;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::firewall::brokers::BrokerId;
use crate::kafka::plan::topic_tenant;
use crate::store::Store;
use crate::store::usage::{self as stored, Counter, CounterValue, Recorded, Scrape};

pub use report::{Range, RangeQuery, TenantUsage, UsageHour, UsageRanking};

/// Seconds in an hour; usage rows are per hour starting at a multiple of it (UTC).
pub const HOUR: i64 = 3600;

/// The start of the hour `unix` falls in.
pub fn hour_of(unix: i64) -> i64 {
    unix.div_euclid(HOUR) * HOUR
}

/// Most counters one report may carry (three per topic, two topics per tenant).
const MAX_COUNTERS: usize = 60_000;

/// One counter as an agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportedCounter {
    /// A tenant topic, `c<N>` or `c<N>_waf`.
    #[schema(example = "c83")]
    pub topic: String,
    /// `bytes_out` (BytesOutPerSec), `bytes_in` (BytesInPerSec) or `records_in`
    /// (MessagesInPerSec).
    #[schema(example = "bytes_out")]
    pub counter: String,
    /// The broker's cumulative count since it started.
    pub value: i64,
}

/// What an agent reports after each scrape of its broker's counters.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    /// The broker reported for; it must be the one the agent token is bound to (403
    /// otherwise). Omitted: the token's broker.
    #[schema(example = "kafka-1")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_id: Option<String>,
    /// When the agent scraped the counters, unix milliseconds. A report not newer than the
    /// broker's last is a retry and changes nothing.
    pub scraped_at_ms: i64,
    /// When the broker process started, unix milliseconds (Kafka's `app-info` `start-time-ms`).
    /// Another value than in the broker's last report means it restarted, and every counter
    /// counts again from zero; without it only a counter that went down shows a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_started_at_ms: Option<i64>,
    pub counters: Vec<ReportedCounter>,
}

/// What the server did with a report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReportOutcome {
    /// `counted` (the growth since the last report was added), `baseline` (the broker's first
    /// report: its values are where counting starts) or `duplicate` (not newer than the last
    /// report: nothing changed).
    #[schema(example = "counted")]
    pub outcome: String,
}

fn parse_counter(name: &str) -> Option<Counter> {
    match name {
        "bytes_out" => Some(Counter::BytesOut),
        "bytes_in" => Some(Counter::BytesIn),
        "records_in" => Some(Counter::RecordsIn),
        _ => None,
    }
}

/// Validates `report` and records it for `broker`; the growth goes to the current hour.
pub async fn record_report(store: &Store, broker: &BrokerId, report: &UsageReport) -> Result<ReportOutcome> {
    if report.scraped_at_ms <= 0 {
        return Err(Error::invalid("scraped_at_ms", "scraped_at_ms must be a positive unix time in milliseconds"));
    }
    if report.counters.len() > MAX_COUNTERS {
        return Err(Error::invalid("counters", format!("at most {MAX_COUNTERS} counters per report")));
    }
    if report.broker_started_at_ms.is_some_and(|t| t <= 0) {
        return Err(Error::invalid(
            "broker_started_at_ms",
            "broker_started_at_ms must be a positive unix time in milliseconds",
        ));
    }
    let mut values = Vec::with_capacity(report.counters.len());
    for c in &report.counters {
        let tenant = topic_tenant(&c.topic).ok_or_else(|| {
            Error::invalid("counters", format!("{:?} is not a tenant topic (c<N> or c<N>_waf)", c.topic))
        })?;
        let counter = parse_counter(&c.counter).ok_or_else(|| {
            Error::invalid(
                "counters",
                format!("unknown counter {:?}: use bytes_out, bytes_in or records_in", c.counter),
            )
        })?;
        if c.value < 0 {
            return Err(Error::invalid("counters", "counter values must not be negative"));
        }
        values.push(CounterValue { tenant, topic: c.topic.clone(), counter, value: c.value });
    }
    let now = crate::clock::now();
    let scrape = Scrape { scraped_at_ms: report.scraped_at_ms, started_at_ms: report.broker_started_at_ms };
    let outcome = stored::record_counters(store, broker.as_str(), scrape, hour_of(now), now, &values).await?;
    let outcome = match outcome {
        Recorded::Counted => "counted",
        Recorded::Baseline => "baseline",
        Recorded::Stale => "duplicate",
    };
    Ok(ReportOutcome { outcome: outcome.into() })
}

/// Bytes outflow itself fetched from tenant topics (the live tail, the alert reader), per
/// topic, since the last [`OwnReads::flush`]. Each process counts its own readers and adds them
/// to the shared totals, where they are subtracted from the brokers' bytes out.
#[derive(Debug, Default)]
pub struct OwnReads {
    bytes: Mutex<HashMap<String, i64>>,
}

impl OwnReads {
    /// Counts a fetched record of `topic`: its key and value bytes.
    pub fn add(&self, topic: &str, bytes: usize) {
        if topic_tenant(topic).is_none() {
            return;
        }
        let mut map = self.bytes.lock().expect("own reads lock");
        *map.entry(topic.to_owned()).or_default() += bytes as i64;
    }

    /// Adds what was counted to the current hour; kept for the next flush if that fails.
    pub async fn flush(&self, store: &Store) -> Result<()> {
        let taken = std::mem::take(&mut *self.bytes.lock().expect("own reads lock"));
        let mut per_tenant: BTreeMap<i64, i64> = BTreeMap::new();
        for (topic, n) in &taken {
            if let Some(tenant) = topic_tenant(topic) {
                *per_tenant.entry(tenant).or_default() += n;
            }
        }
        if per_tenant.is_empty() {
            return Ok(());
        }
        if let Err(e) = stored::add_outflow_reads(store, hour_of(crate::clock::now()), &per_tenant).await {
            let mut map = self.bytes.lock().expect("own reads lock");
            for (topic, n) in taken {
                *map.entry(topic).or_default() += n;
            }
            return Err(e);
        }
        Ok(())
    }
}

/// Query of the usage routes: the range, and the answer's format.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Start, RFC 3339 (truncated to its hour). Default: 7 days before `to`.
    #[param(example = "2026-12-01T00:00:00Z")]
    pub from: Option<String>,
    /// End (exclusive), RFC 3339 (rounded up to an hour). Default: the end of the current hour,
    /// so the open hour is included, marked `partial`.
    #[param(example = "2026-12-08T00:00:00Z")]
    pub to: Option<String>,
    /// `json` (the default) or `csv`; `Accept: text/csv` also selects CSV.
    #[param(example = "csv")]
    pub format: Option<String>,
}

impl UsageQuery {
    pub fn range(&self, max_days: i64) -> Result<Range> {
        Range::parse(&RangeQuery { from: self.from.as_deref(), to: self.to.as_deref() }, crate::clock::now(), max_days)
    }
}

/// One tenant's hours in `range`.
pub async fn tenant_usage(store: &Store, tenant: crate::tenants::TenantId, range: &Range) -> Result<TenantUsage> {
    let rows = stored::hours(store, Some(tenant.get()), range.from, range.to).await?;
    Ok(TenantUsage::new(tenant.get(), range, rows))
}

/// Every tenant's totals in `range`, most bytes out first.
pub async fn ranking(store: &Store, range: &Range) -> Result<UsageRanking> {
    let rows = stored::hours(store, None, range.from, range.to).await?;
    let names: HashMap<i64, String> = crate::tenants::list(store).await?.into_iter().map(|t| (t.id, t.name)).collect();
    Ok(UsageRanking::new(range, rows, &names))
}

/// RFC 3339 of an hour start.
pub(crate) fn hour_label(hour: i64) -> String {
    rfc3339(hour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_start_at_multiples_of_3600() {
        assert_eq!(hour_of(1_700_000_000), 1_699_999_200);
        assert_eq!(hour_of(1_699_999_200), 1_699_999_200);
        assert_eq!(hour_of(-1), -3600);
    }

    #[test]
    fn counters_grow_reset_aware() {
        use crate::store::usage::delta;
        assert_eq!(delta(Some(100), 150), 50);
        assert_eq!(delta(Some(100), 100), 0);
        // The broker restarted: everything since is new.
        assert_eq!(delta(Some(100), 30), 30);
        assert_eq!(delta(None, 30), 30);
    }
}
