//! The alert delivery outbox: one row per (message, channel), queued in the transaction that
//! decided to send it, then sent by the delivery worker (one at a time per channel, oldest
//! first) until it is delivered, fails, or is given up. Times here are unix milliseconds.

use sqlx::{AnyConnection, FromRow};

use super::Store;
use crate::error::Result;

/// A delivery to queue.
#[derive(Debug, Clone)]
pub struct NewDelivery<'a> {
    pub channel_id: i64,
    pub tenant_id: Option<i64>,
    pub rule_id: Option<i64>,
    pub webhook_id: &'a str,
    pub event_type: &'a str,
    pub body: &'a str,
}

/// Queues a delivery inside the caller's transaction, due at once.
pub async fn insert(conn: &mut AnyConnection, d: &NewDelivery<'_>, now_ms: i64) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "insert into alert_deliveries (channel_id, tenant_id, rule_id, webhook_id, event_type, body, created_at, \
           next_attempt_at) values ($1, $2, $3, $4, $5, $6, $7, $7) returning id",
    )
    .bind(d.channel_id)
    .bind(d.tenant_id)
    .bind(d.rule_id)
    .bind(d.webhook_id)
    .bind(d.event_type)
    .bind(d.body)
    .bind(now_ms)
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// How an attempt ended, as recorded.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status: Option<u16>,
    pub error: String,
    pub latency_ms: i64,
    pub at_ms: i64,
}

/// Records a delivery sent directly (a channel test), already finished in `state`.
pub async fn insert_finished(store: &Store, d: &NewDelivery<'_>, state: &str, attempt: &Attempt) -> Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "insert into alert_deliveries (channel_id, tenant_id, rule_id, webhook_id, event_type, body, created_at, \
           next_attempt_at, attempts, state, last_status, last_error, last_latency_ms, finished_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $7, 1, $8, $9, $10, $11, $7) returning id",
    )
    .bind(d.channel_id)
    .bind(d.tenant_id)
    .bind(d.rule_id)
    .bind(d.webhook_id)
    .bind(d.event_type)
    .bind(d.body)
    .bind(attempt.at_ms)
    .bind(state)
    .bind(attempt.status.map(i64::from))
    .bind(&attempt.error)
    .bind(attempt.latency_ms)
    .fetch_one(&store.pool)
    .await?;
    Ok(id)
}

/// A delivery the worker may send now.
#[derive(Debug, Clone, FromRow)]
pub struct DueRow {
    pub id: i64,
    pub channel_id: i64,
    pub webhook_id: String,
    pub event_type: String,
    pub body: String,
    pub created_at: i64,
    pub attempts: i64,
}

/// The oldest pending delivery of each channel, if it is due; `busy` channels (a request in
/// flight) are left out by the caller. Later deliveries of a channel wait for the oldest, so a
/// channel's messages arrive in order.
pub async fn due(store: &Store, now_ms: i64) -> Result<Vec<DueRow>> {
    Ok(sqlx::query_as(
        "select d.id, d.channel_id, d.webhook_id, d.event_type, d.body, d.created_at, d.attempts \
         from alert_deliveries d \
         where d.state = 'pending' and d.next_attempt_at <= $1 \
           and d.id = (select min(p.id) from alert_deliveries p where p.channel_id = d.channel_id and p.state = 'pending') \
         order by d.id limit 500",
    )
    .bind(now_ms)
    .fetch_all(&store.pool)
    .await?)
}

/// Whether delivery `id` is still pending and due with `attempts` made: a worker holding its
/// channel re-checks this before sending, because the list it picked the row from may have been
/// read before the channel's previous request recorded its result (the same row, sent twice).
pub async fn still_due(store: &Store, id: i64, attempts: i64, now_ms: i64) -> Result<bool> {
    let row: Option<(i64,)> = sqlx::query_as(
        "select id from alert_deliveries where id = $1 and state = 'pending' and attempts = $2 \
         and next_attempt_at <= $3",
    )
    .bind(id)
    .bind(attempts)
    .bind(now_ms)
    .fetch_optional(&store.pool)
    .await?;
    Ok(row.is_some())
}

/// When the next pending delivery falls due, if any is pending.
pub async fn next_due_at(store: &Store) -> Result<Option<i64>> {
    let (at,): (Option<i64>,) =
        sqlx::query_as("select min(next_attempt_at) from alert_deliveries where state = 'pending'")
            .fetch_one(&store.pool)
            .await?;
    Ok(at)
}

/// Ends a pending delivery in `state` (`delivered`, `failed` or `gave_up`).
pub async fn finish(store: &Store, id: i64, state: &str, attempt: &Attempt) -> Result<()> {
    sqlx::query(
        "update alert_deliveries set state = $1, attempts = attempts + 1, last_status = $2, last_error = $3, \
           last_latency_ms = $4, finished_at = $5 where id = $6 and state = 'pending'",
    )
    .bind(state)
    .bind(attempt.status.map(i64::from))
    .bind(&attempt.error)
    .bind(attempt.latency_ms)
    .bind(attempt.at_ms)
    .bind(id)
    .execute(&store.pool)
    .await?;
    Ok(())
}

/// Records a failed attempt of a delivery to retry at `next_ms`.
pub async fn retry_at(store: &Store, id: i64, next_ms: i64, attempt: &Attempt) -> Result<()> {
    sqlx::query(
        "update alert_deliveries set attempts = attempts + 1, next_attempt_at = $1, last_status = $2, \
           last_error = $3, last_latency_ms = $4 where id = $5 and state = 'pending'",
    )
    .bind(next_ms)
    .bind(attempt.status.map(i64::from))
    .bind(&attempt.error)
    .bind(attempt.latency_ms)
    .bind(id)
    .execute(&store.pool)
    .await?;
    Ok(())
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, FromRow)]
pub struct DeliveryRow {
    pub id: i64,
    pub channel_id: i64,
    pub tenant_id: Option<i64>,
    pub rule_id: Option<i64>,
    pub webhook_id: String,
    pub event_type: String,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub attempts: i64,
    pub state: String,
    pub last_status: Option<i64>,
    pub last_error: String,
    pub last_latency_ms: Option<i64>,
    pub finished_at: Option<i64>,
}

/// Which deliveries to list: an owner's (a tenant, or 0 for the operators' channels), newest
/// first, optionally of one channel, older than `before`.
#[derive(Debug, Clone)]
pub struct Query {
    pub tenant: Option<i64>,
    pub channel: Option<i64>,
    pub before: Option<i64>,
    pub limit: i64,
}

pub async fn list(store: &Store, q: &Query) -> Result<Vec<DeliveryRow>> {
    Ok(sqlx::query_as(
        "select d.id, d.channel_id, d.tenant_id, d.rule_id, d.webhook_id, d.event_type, d.created_at, \
           d.next_attempt_at, d.attempts, d.state, d.last_status, d.last_error, d.last_latency_ms, d.finished_at \
         from alert_deliveries d join alert_channels c on c.id = d.channel_id \
         where coalesce(c.tenant_id, 0) = $1 and ($2 = 0 or d.channel_id = $2) and d.id < $3 \
         order by d.id desc limit $4",
    )
    .bind(q.tenant.unwrap_or(0))
    .bind(q.channel.unwrap_or(0))
    .bind(q.before.unwrap_or(i64::MAX))
    .bind(q.limit)
    .fetch_all(&store.pool)
    .await?)
}

/// Deliveries by state, and those that failed or were given up since `since_ms`, for `/metrics`.
pub async fn counts(store: &Store, since_ms: i64) -> Result<(Vec<(String, i64)>, i64)> {
    let by_state = sqlx::query_as("select state, count(*) from alert_deliveries group by state order by state")
        .fetch_all(&store.pool)
        .await?;
    let (failed,): (i64,) = sqlx::query_as(
        "select count(*) from alert_deliveries where state in ('failed', 'gave_up') and finished_at >= $1",
    )
    .bind(since_ms)
    .fetch_one(&store.pool)
    .await?;
    Ok((by_state, failed))
}
