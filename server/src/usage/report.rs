//! What the usage routes answer: the range asked for, each hour, totals, and the CSV form.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use super::{HOUR, hour_label, hour_of};
use crate::error::{Error, Result};
use crate::store::usage::HourRow;

/// The default range: the last 7 days.
pub const DEFAULT_DAYS: i64 = 7;

/// A range of whole hours, `[from, to)` in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: i64,
    pub to: i64,
}

/// The range as the query gives it.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeQuery<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
}

fn parse_time(field: &str, text: &str) -> Result<i64> {
    OffsetDateTime::parse(text, &Rfc3339).map(|t| t.unix_timestamp()).map_err(|_| {
        Error::invalid(field, format!("{field} must be an RFC 3339 time such as 2026-12-01T00:00:00Z, got {text:?}"))
    })
}

impl Range {
    /// `from` truncated to its hour, `to` rounded up to one; by default the 7 days up to the end
    /// of the current hour. At most `max_days` long.
    pub fn parse(query: &RangeQuery<'_>, now: i64, max_days: i64) -> Result<Self> {
        let to = match query.to {
            Some(text) => {
                let t = parse_time("to", text)?;
                let h = hour_of(t);
                if h == t { h } else { h + HOUR }
            }
            None => hour_of(now) + HOUR,
        };
        let from = match query.from {
            Some(text) => hour_of(parse_time("from", text)?),
            None => to - DEFAULT_DAYS * 24 * HOUR,
        };
        if from >= to {
            return Err(Error::invalid("from", "from must be before to (by at least an hour, after rounding)"));
        }
        if to - from > max_days * 24 * HOUR {
            return Err(Error::invalid("to", format!("the range may span at most {max_days} days")));
        }
        Ok(Self { from, to })
    }

    /// Whole hours in the range.
    pub fn hours(&self) -> i64 {
        (self.to - self.from) / HOUR
    }
}

/// One hour of one tenant.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct UsageHour {
    #[schema(example = "2026-12-01T10:00:00Z")]
    pub hour_start: String,
    /// Bytes delivered to the tenant's consumers: what the brokers sent for its two topics
    /// minus outflow's own reads of them (never below zero).
    pub bytes_out: i64,
    /// What the brokers counted as sent (`BytesOutPerSec` of the tenant's topics).
    pub broker_bytes_out: i64,
    /// What outflow itself read of the topics (live tail, alerts), subtracted from bytes out.
    pub outflow_bytes: i64,
    /// Records delivered: the forward progress of the committed offsets of its groups.
    pub records_out: i64,
    /// Bytes written into its topics (`BytesInPerSec`).
    pub bytes_in: i64,
    /// Records written into its topics (`MessagesInPerSec`).
    pub records_in: i64,
    /// The hour is still open (its figures still grow).
    pub partial: bool,
}

/// Sums over a range.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct UsageTotals {
    pub bytes_out: i64,
    pub broker_bytes_out: i64,
    pub outflow_bytes: i64,
    pub records_out: i64,
    pub bytes_in: i64,
    pub records_in: i64,
}

impl UsageTotals {
    fn add(&mut self, h: &UsageHour) {
        self.bytes_out += h.bytes_out;
        self.broker_bytes_out += h.broker_bytes_out;
        self.outflow_bytes += h.outflow_bytes;
        self.records_out += h.records_out;
        self.bytes_in += h.bytes_in;
        self.records_in += h.records_in;
    }
}

fn hour_of_row(row: &HourRow) -> UsageHour {
    UsageHour {
        hour_start: hour_label(row.hour_start),
        bytes_out: (row.bytes_out - row.outflow_bytes).max(0),
        broker_bytes_out: row.bytes_out,
        outflow_bytes: row.outflow_bytes,
        records_out: row.records_out,
        bytes_in: row.bytes_in,
        records_in: row.records_in,
        partial: row.partial,
    }
}

/// A tenant's usage over a range: only the hours something was metered in.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantUsage {
    #[schema(example = 83)]
    pub tenant_id: i64,
    pub from: String,
    pub to: String,
    pub hours: Vec<UsageHour>,
    pub total: UsageTotals,
    /// Unix seconds of each hour's start, beside `hours` (for the chart).
    #[serde(skip)]
    pub starts: Vec<i64>,
}

impl TenantUsage {
    pub fn new(tenant_id: i64, range: &Range, rows: Vec<HourRow>) -> Self {
        let starts = rows.iter().map(|r| r.hour_start).collect();
        let hours: Vec<UsageHour> = rows.iter().map(hour_of_row).collect();
        let mut total = UsageTotals::default();
        hours.iter().for_each(|h| total.add(h));
        Self { tenant_id, from: hour_label(range.from), to: hour_label(range.to), hours, total, starts }
    }

    /// CSV, one line per hour, with a header line.
    pub fn csv(&self) -> String {
        let mut out = String::from(CSV_HEADER);
        for h in &self.hours {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{}",
                self.tenant_id,
                h.hour_start,
                h.bytes_out,
                h.broker_bytes_out,
                h.outflow_bytes,
                h.records_out,
                h.bytes_in,
                h.records_in,
                h.partial
            );
        }
        out
    }
}

/// The CSV columns of a tenant's usage (docs/usage.md).
pub const CSV_HEADER: &str =
    "tenant_id,hour_start,bytes_out,broker_bytes_out,outflow_bytes,records_out,bytes_in,records_in,partial\n";

/// One tenant in the operators' ranking.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RankedTenant {
    #[schema(example = 83)]
    pub tenant_id: i64,
    /// Empty for a tenant deleted since.
    pub name: String,
    #[serde(flatten)]
    pub total: UsageTotals,
}

/// Every tenant metered in a range, most bytes out first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UsageRanking {
    pub from: String,
    pub to: String,
    pub tenants: Vec<RankedTenant>,
}

impl UsageRanking {
    pub fn new(range: &Range, rows: Vec<HourRow>, names: &HashMap<i64, String>) -> Self {
        let mut totals: BTreeMap<i64, UsageTotals> = BTreeMap::new();
        for row in &rows {
            totals.entry(row.tenant_id).or_default().add(&hour_of_row(row));
        }
        let mut tenants: Vec<RankedTenant> = totals
            .into_iter()
            .map(|(tenant_id, total)| RankedTenant {
                tenant_id,
                name: names.get(&tenant_id).cloned().unwrap_or_default(),
                total,
            })
            .collect();
        tenants.sort_by(|a, b| b.total.bytes_out.cmp(&a.total.bytes_out).then(a.tenant_id.cmp(&b.tenant_id)));
        Self { from: hour_label(range.from), to: hour_label(range.to), tenants }
    }

    /// CSV, one line per tenant, with a header line.
    pub fn csv(&self) -> String {
        let mut out =
            String::from("tenant_id,bytes_out,broker_bytes_out,outflow_bytes,records_out,bytes_in,records_in\n");
        for t in &self.tenants {
            let s = &t.total;
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{}",
                t.tenant_id, s.bytes_out, s.broker_bytes_out, s.outflow_bytes, s.records_out, s.bytes_in, s.records_in
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn parse(from: Option<&str>, to: Option<&str>) -> Result<Range> {
        Range::parse(&RangeQuery { from, to }, NOW, 366)
    }

    #[test]
    fn the_default_is_the_last_seven_days_with_the_open_hour() {
        let r = parse(None, None).unwrap();
        assert_eq!(r.to, 1_700_002_800, "the end of the current hour");
        assert_eq!(r.hours(), 7 * 24);
    }

    #[test]
    fn times_are_aligned_to_hours() {
        let r = parse(Some("2023-11-14T10:30:00Z"), Some("2023-11-14T12:00:01Z")).unwrap();
        assert_eq!(hour_label(r.from), "2023-11-14T10:00:00Z");
        assert_eq!(hour_label(r.to), "2023-11-14T13:00:00Z");
        let r = parse(Some("2023-11-14T10:00:00+02:00"), Some("2023-11-14T09:00:00Z")).unwrap();
        assert_eq!(r.hours(), 1);
    }

    #[test]
    fn bad_ranges_name_their_field() {
        let field = |r: Result<Range>| match r {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(parse(Some("yesterday"), None)), "from");
        assert_eq!(field(parse(None, Some("2023-13-01T00:00:00Z"))), "to");
        assert_eq!(field(parse(Some("2023-11-14T10:00:00Z"), Some("2023-11-14T10:00:00Z"))), "from");
        assert_eq!(field(parse(Some("2020-01-01T00:00:00Z"), Some("2023-01-01T00:00:00Z"))), "to");
    }

    #[test]
    fn bytes_out_is_net_of_outflows_reads_and_csv_has_a_line_per_hour() {
        let row = |hour, bytes_out, outflow_bytes, partial| HourRow {
            tenant_id: 83,
            hour_start: hour,
            bytes_out,
            records_out: 10,
            bytes_in: 500,
            records_in: 10,
            outflow_bytes,
            partial,
        };
        let range = Range { from: 1_699_992_000, to: 1_700_002_800 };
        let usage =
            TenantUsage::new(83, &range, vec![row(1_699_992_000, 1000, 300, false), row(1_699_999_200, 50, 80, true)]);
        assert_eq!(usage.hours[0].bytes_out, 700);
        assert_eq!(usage.hours[1].bytes_out, 0, "never below zero");
        assert_eq!(usage.total.bytes_out, 700);
        assert_eq!(usage.total.broker_bytes_out, 1050);
        assert_eq!(
            usage.csv(),
            format!(
                "{CSV_HEADER}83,2023-11-14T20:00:00Z,700,1000,300,10,500,10,false\n\
                 83,2023-11-14T22:00:00Z,0,50,80,10,500,10,true\n"
            )
        );
    }
}
