//! Usage metering: the brokers' cumulative counters as last reported, the tenants' groups'
//! committed offsets as last seen, the running totals of open hours and the closed hours.
//!
//! Every change of a running total happens in the transaction that moves its baseline (the
//! counter's last value, the group's last offset), so a report or an observation is counted
//! once whatever is retried, and replicas sharing the database agree.

use std::collections::BTreeMap;

use sqlx::{AnyConnection, FromRow};

use super::{Store, audit, lease};
use crate::error::Result;

/// One of a broker's per-topic counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    /// `BytesOutPerSec`: bytes sent to consumers (followers' fetches are counted apart, in
    /// `ReplicationBytesOutPerSec`).
    BytesOut,
    /// `BytesInPerSec`: bytes produced into the topic.
    BytesIn,
    /// `MessagesInPerSec`: records produced (counted on the partition leader only).
    RecordsIn,
}

impl Counter {
    pub fn as_str(self) -> &'static str {
        match self {
            Counter::BytesOut => "bytes_out",
            Counter::BytesIn => "bytes_in",
            Counter::RecordsIn => "records_in",
        }
    }
}

/// A counter's cumulative value in a report.
#[derive(Debug, Clone)]
pub struct CounterValue {
    pub tenant: i64,
    pub topic: String,
    pub counter: Counter,
    pub value: i64,
}

/// How much a cumulative counter grew since `last`: the difference, or all of `value` when it
/// went backwards (the broker restarted and counts from zero again).
pub fn delta(last: Option<i64>, value: i64) -> i64 {
    match last {
        Some(last) if value >= last => value - last,
        Some(_) => value,
        None => value,
    }
}

/// The running totals of one tenant's open hour that a change adds to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub bytes_out: i64,
    pub records_out: i64,
    pub bytes_in: i64,
    pub records_in: i64,
    pub outflow_bytes: i64,
}

impl Totals {
    fn add(&mut self, counter: Counter, n: i64) {
        match counter {
            Counter::BytesOut => self.bytes_out += n,
            Counter::BytesIn => self.bytes_in += n,
            Counter::RecordsIn => self.records_in += n,
        }
    }

    fn is_zero(&self) -> bool {
        *self == Totals::default()
    }
}

/// Where [`add_totals`] adds: the running totals of open hours, or the closed hours' rows.
#[derive(Debug, Clone, Copy)]
enum Hours {
    Open,
    Closed { closed_at: i64 },
}

/// Adds `totals` to tenant `tenant`'s row of the hour starting at `hour` in `into`, making the
/// row if there is none.
async fn add_totals(conn: &mut AnyConnection, into: Hours, tenant: i64, hour: i64, totals: &Totals) -> Result<()> {
    if totals.is_zero() {
        return Ok(());
    }
    let (table, closed_at) = match into {
        Hours::Open => ("usage_open", None),
        Hours::Closed { closed_at } => ("usage_hourly", Some(closed_at)),
    };
    let (column, value) = if closed_at.is_some() { (", closed_at", ", $8") } else { ("", "") };
    let sum = |c: &str| format!("{c} = {table}.{c} + excluded.{c}");
    let sql = format!(
        "insert into {table} (tenant_id, hour_start, bytes_out, records_out, bytes_in, records_in, outflow_bytes{column}) \
         values ($1, $2, $3, $4, $5, $6, $7{value}) \
         on conflict (tenant_id, hour_start) do update set {}",
        ["bytes_out", "records_out", "bytes_in", "records_in", "outflow_bytes"].map(sum).join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(hour)
        .bind(totals.bytes_out)
        .bind(totals.records_out)
        .bind(totals.bytes_in)
        .bind(totals.records_in)
        .bind(totals.outflow_bytes);
    if let Some(at) = closed_at {
        query = query.bind(at);
    }
    query.execute(conn).await?;
    Ok(())
}

/// When a report's counters were scraped, and when the broker that counted them started (unix
/// milliseconds); a broker with another start time than in its last report was restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scrape {
    pub scraped_at_ms: i64,
    pub started_at_ms: Option<i64>,
}

/// What recording a broker's report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The deltas were added to the open hour.
    Counted,
    /// The broker's first report: its values are the baselines, nothing is added (they hold
    /// everything since the broker started, most of it from before metering).
    Baseline,
    /// Not newer than the broker's last report (a retry): nothing changed.
    Stale,
}

/// Records `broker`'s counters scraped at `scraped_at_ms`, adding their growth to the hour
/// starting at `hour` (the hour the report arrived in). A report not newer than the last one
/// recorded for the broker changes nothing, so a retried report is never counted twice.
pub async fn record_counters(
    store: &Store,
    broker: &str,
    scrape: Scrape,
    hour: i64,
    received_at: i64,
    values: &[CounterValue],
) -> Result<Recorded> {
    let Scrape { scraped_at_ms, started_at_ms } = scrape;
    let mut tx = store.pool.begin().await?;
    // A write first: it takes the lock (SQLite's database lock, PostgreSQL's row lock) that
    // orders concurrent reports of one broker, so what is read next is the last report's.
    sqlx::query("update usage_reports set received_at = received_at where broker_id = $1")
        .bind(broker)
        .execute(&mut *tx)
        .await?;
    let known: Option<(i64, Option<i64>)> =
        sqlx::query_as("select scraped_at_ms, started_at_ms from usage_reports where broker_id = $1")
            .bind(broker)
            .fetch_optional(&mut *tx)
            .await?;
    // Refuses a report not newer than the last. A report without a start time keeps the last
    // one: a restarting broker's exporter answers before Kafka has registered its start time.
    let moved = sqlx::query(
        "insert into usage_reports (broker_id, scraped_at_ms, started_at_ms, received_at) values ($1, $2, $3, $4) \
         on conflict (broker_id) do update set scraped_at_ms = excluded.scraped_at_ms, \
           started_at_ms = coalesce(excluded.started_at_ms, usage_reports.started_at_ms), \
           received_at = excluded.received_at \
         where usage_reports.scraped_at_ms < excluded.scraped_at_ms",
    )
    .bind(broker)
    .bind(scraped_at_ms)
    .bind(started_at_ms)
    .bind(received_at)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 {
        audit::stage(&mut tx, None, &format!("{broker} repeated a report (scraped at {scraped_at_ms} ms); ignored"))
            .await?;
        tx.commit().await?;
        return Ok(Recorded::Stale);
    }
    let first = known.is_none();
    // Another start time: the broker restarted and every counter began again at zero, so all of
    // each value is new, even one that has grown past its value before the restart.
    let restarted = matches!(known, Some((_, Some(before))) if started_at_ms.is_some_and(|now| now != before));
    if restarted {
        sqlx::query("delete from usage_counters where broker_id = $1").bind(broker).execute(&mut *tx).await?;
    }
    let last: BTreeMap<(String, String), i64> = sqlx::query_as::<_, (String, String, i64)>(
        "select topic, counter, value from usage_counters where broker_id = $1",
    )
    .bind(broker)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(topic, counter, value)| ((topic, counter), value))
    .collect();
    let mut totals: BTreeMap<i64, Totals> = BTreeMap::new();
    for v in values {
        let previous = last.get(&(v.topic.clone(), v.counter.as_str().to_owned())).copied();
        if previous == Some(v.value) {
            continue;
        }
        // A counter this broker never reported before appeared since its last scrape (the
        // broker creates a topic's counters with its first traffic): all of it is new.
        totals.entry(v.tenant).or_default().add(v.counter, delta(previous, v.value));
        sqlx::query(
            "insert into usage_counters (broker_id, topic, counter, value) values ($1, $2, $3, $4) \
             on conflict (broker_id, topic, counter) do update set value = excluded.value",
        )
        .bind(broker)
        .bind(&v.topic)
        .bind(v.counter.as_str())
        .bind(v.value)
        .execute(&mut *tx)
        .await?;
    }
    if !first {
        for (tenant, t) in &totals {
            add_totals(&mut tx, Hours::Open, *tenant, hour, t).await?;
        }
    }
    let counted: i64 = totals.values().map(|t| t.bytes_out).sum();
    audit::stage(&mut tx, None, &format!("{broker} reported {} counters, {counted} bytes out", values.len())).await?;
    tx.commit().await?;
    Ok(if first { Recorded::Baseline } else { Recorded::Counted })
}

/// Adds outflow's own reads of tenant topics (bytes per tenant) to the hour starting at `hour`.
pub async fn add_outflow_reads(store: &Store, hour: i64, bytes: &BTreeMap<i64, i64>) -> Result<()> {
    let mut tx = store.pool.begin().await?;
    for (tenant, n) in bytes {
        add_totals(&mut tx, Hours::Open, *tenant, hour, &Totals { outflow_bytes: *n, ..Totals::default() }).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A group's committed offset on one partition, and where the partition's log starts.
#[derive(Debug, Clone)]
pub struct GroupOffset {
    pub tenant: i64,
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    /// The oldest offset the partition holds: where a group first seen started reading.
    pub log_start: i64,
}

/// Records the tenants' groups' committed offsets (`seen`: every group listed, all partitions
/// it committed on), adding their forward progress as records delivered to the hour starting
/// at `hour`. A commit that went backwards (an offset reset) adds nothing and becomes the new
/// baseline; groups no longer listed are forgotten. Fenced by the `lease` held at `epoch`:
/// `false` when that lease was lost (nothing written).
pub async fn record_group_offsets(
    store: &Store,
    lease_name: &str,
    epoch: i64,
    hour: i64,
    seen: &[GroupOffset],
) -> Result<bool> {
    let mut tx = store.pool.begin().await?;
    if !lease::fence(&mut tx, store.backend, lease_name, epoch).await? {
        return Ok(false);
    }
    let last: BTreeMap<(String, String, i32), i64> = sqlx::query_as::<_, (String, String, i64, i64)>(
        "select group_id, topic, partition, committed from usage_group_offsets",
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|(g, t, p, c)| ((g, t, p as i32), c))
    .collect();
    let mut totals: BTreeMap<i64, Totals> = BTreeMap::new();
    for o in seen {
        let key = (o.group.clone(), o.topic.clone(), o.partition);
        let previous = last.get(&key).copied();
        if previous == Some(o.committed) {
            continue;
        }
        let progress = match previous {
            Some(p) => (o.committed - p).max(0),
            None => (o.committed - o.log_start).max(0),
        };
        totals.entry(o.tenant).or_default().records_out += progress;
        sqlx::query(
            "insert into usage_group_offsets (group_id, topic, partition, committed) values ($1, $2, $3, $4) \
             on conflict (group_id, topic, partition) do update set committed = excluded.committed",
        )
        .bind(&o.group)
        .bind(&o.topic)
        .bind(i64::from(o.partition))
        .bind(o.committed)
        .execute(&mut *tx)
        .await?;
    }
    let listed: std::collections::BTreeSet<&str> = seen.iter().map(|o| o.group.as_str()).collect();
    let gone: Vec<&String> = last.keys().map(|(g, _, _)| g).filter(|g| !listed.contains(g.as_str())).collect();
    for group in gone.into_iter().collect::<std::collections::BTreeSet<_>>() {
        sqlx::query("delete from usage_group_offsets where group_id = $1").bind(group).execute(&mut *tx).await?;
    }
    for (tenant, t) in &totals {
        add_totals(&mut tx, Hours::Open, *tenant, hour, t).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Closes every open hour that starts before `before`: its totals become the tenant's row of
/// that hour, in one transaction. Taking the open rows by deleting them first means two closers
/// cannot both move the same totals; a straggler added to a closed hour after it was closed is
/// added to its row, never lost. Fenced like [`record_group_offsets`]. Returns the hours closed
/// (None when the lease was lost).
pub async fn close_hours(store: &Store, lease_name: &str, epoch: i64, before: i64, now: i64) -> Result<Option<u64>> {
    let mut tx = store.pool.begin().await?;
    if !lease::fence(&mut tx, store.backend, lease_name, epoch).await? {
        return Ok(None);
    }
    let rows: Vec<(i64, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "delete from usage_open where hour_start < $1 \
         returning tenant_id, hour_start, bytes_out, records_out, bytes_in, records_in, outflow_bytes",
    )
    .bind(before)
    .fetch_all(&mut *tx)
    .await?;
    for &(tenant, hour, bytes_out, records_out, bytes_in, records_in, outflow_bytes) in &rows {
        let totals = Totals { bytes_out, records_out, bytes_in, records_in, outflow_bytes };
        add_totals(&mut tx, Hours::Closed { closed_at: now }, tenant, hour, &totals).await?;
    }
    tx.commit().await?;
    Ok(Some(rows.len() as u64))
}

/// One tenant's hour as stored: closed, or still open (`partial`).
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct HourRow {
    pub tenant_id: i64,
    pub hour_start: i64,
    pub bytes_out: i64,
    pub records_out: i64,
    pub bytes_in: i64,
    pub records_in: i64,
    pub outflow_bytes: i64,
    #[sqlx(try_from = "super::Flag")]
    pub partial: bool,
}

const HOUR_COLUMNS: &str = "tenant_id, hour_start, bytes_out, records_out, bytes_in, records_in, outflow_bytes";

/// The hours in `[from, to)` of `tenant` (every tenant when None), closed and open, by tenant
/// and hour. Read in one snapshot, so an hour being closed is seen once.
pub async fn hours(store: &Store, tenant: Option<i64>, from: i64, to: i64) -> Result<Vec<HourRow>> {
    let mut tx = super::begin_snapshot(store).await?;
    let filter = if tenant.is_some() { "and tenant_id = $3" } else { "and $3 = $3" };
    let sql = format!(
        "select {HOUR_COLUMNS}, false as partial from usage_hourly where hour_start >= $1 and hour_start < $2 {filter} \
         union all \
         select {HOUR_COLUMNS}, true as partial from usage_open where hour_start >= $1 and hour_start < $2 {filter} \
         order by tenant_id, hour_start"
    );
    let rows: Vec<HourRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .bind(tenant.unwrap_or(0))
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    // A straggler after its hour closed sits in both tables for a moment: one hour, summed.
    let mut merged: Vec<HourRow> = Vec::with_capacity(rows.len());
    for row in rows {
        match merged.last_mut() {
            Some(last) if last.tenant_id == row.tenant_id && last.hour_start == row.hour_start => {
                last.bytes_out += row.bytes_out;
                last.records_out += row.records_out;
                last.bytes_in += row.bytes_in;
                last.records_in += row.records_in;
                last.outflow_bytes += row.outflow_bytes;
                last.partial |= row.partial;
            }
            _ => merged.push(row),
        }
    }
    Ok(merged)
}
