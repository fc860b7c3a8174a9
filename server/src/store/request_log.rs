//! Request-log windows and what the brokers' agents counted in them (docs/usage.md).

use sqlx::FromRow;

use super::{Store, audit};
use crate::error::Result;

/// How long after a window ended its broker's agent may still report lines of it (the agent
/// reads the log every interval, the last lines arrive after the logger was turned back).
pub const LATE_SECS: i64 = 300;

#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct WindowRow {
    pub id: i64,
    pub broker_id: String,
    pub node_id: i64,
    pub started_at: i64,
    pub until: i64,
    pub previous_level: Option<String>,
    pub ended_at: Option<i64>,
}

const WINDOW: &str = "id, broker_id, node_id, started_at, until, previous_level, ended_at";

/// Opens a window on `broker`; `Err(open)` when one is open there already.
pub async fn open(
    store: &Store,
    broker: &str,
    node: i64,
    now: i64,
    until: i64,
    previous_level: Option<&str>,
) -> Result<std::result::Result<WindowRow, WindowRow>> {
    let mut tx = store.pool.begin().await?;
    // The write lock first (SQLite's database lock; on PostgreSQL two opens of one broker may
    // both pass, and each is then a window of its own, ended in turn).
    let sql = format!("select {WINDOW} from request_log_windows where broker_id = $1 and ended_at is null");
    if let Some(open) =
        sqlx::query_as::<_, WindowRow>(sqlx::AssertSqlSafe(sql)).bind(broker).fetch_optional(&mut *tx).await?
    {
        return Ok(Err(open));
    }
    let sql = format!(
        "insert into request_log_windows (broker_id, node_id, started_at, until, previous_level) \
         values ($1, $2, $3, $4, $5) returning {WINDOW}"
    );
    let row: WindowRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(broker)
        .bind(node)
        .bind(now)
        .bind(until)
        .bind(previous_level)
        .fetch_one(&mut *tx)
        .await?;
    audit::stage(&mut tx, None, &format!("request log on {broker} (node {node}) until {until}")).await?;
    tx.commit().await?;
    Ok(Ok(row))
}

/// Marks window `id` ended at `now` (its broker's logger is back); false when it had ended.
pub async fn end(store: &Store, id: i64, now: i64) -> Result<bool> {
    let mut tx = store.pool.begin().await?;
    let done = sqlx::query("update request_log_windows set ended_at = $1 where id = $2 and ended_at is null")
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        > 0;
    audit::stage(&mut tx, None, &format!("request log window {id} ended")).await?;
    tx.commit().await?;
    Ok(done)
}

/// The newest window of `broker`, open or not.
pub async fn latest(store: &Store, broker: &str) -> Result<Option<WindowRow>> {
    let sql = format!("select {WINDOW} from request_log_windows where broker_id = $1 order by id desc limit 1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(broker).fetch_optional(&store.pool).await?)
}

/// Open windows whose time is up at `now`.
pub async fn expired(store: &Store, now: i64) -> Result<Vec<WindowRow>> {
    let sql = format!("select {WINDOW} from request_log_windows where ended_at is null and until <= $1 order by id");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(now).fetch_all(&store.pool).await?)
}

/// One line of the summary: requests of one principal from one address, per API.
#[derive(Debug, Clone, FromRow, PartialEq, Eq)]
pub struct CountRow {
    pub principal: String,
    pub client_address: String,
    pub api: String,
    pub requests: i64,
}

/// Adds an agent's counts to `broker`'s newest window if it is open or ended within
/// [`LATE_SECS`]; false (nothing added) otherwise.
pub async fn add(store: &Store, broker: &str, now: i64, counts: &[CountRow]) -> Result<bool> {
    let mut tx = store.pool.begin().await?;
    let window: Option<(i64, Option<i64>)> =
        sqlx::query_as("select id, ended_at from request_log_windows where broker_id = $1 order by id desc limit 1")
            .bind(broker)
            .fetch_optional(&mut *tx)
            .await?;
    let Some((id, _)) = window.filter(|(_, ended)| ended.is_none_or(|at| now - at <= LATE_SECS)) else {
        audit::stage(&mut tx, None, &format!("{broker} reported request-log lines outside any window; ignored"))
            .await?;
        tx.commit().await?;
        return Ok(false);
    };
    for c in counts {
        sqlx::query(
            "insert into request_log_counts (window_id, principal, client_address, api, requests) \
             values ($1, $2, $3, $4, $5) on conflict (window_id, principal, client_address, api) \
             do update set requests = request_log_counts.requests + excluded.requests",
        )
        .bind(id)
        .bind(&c.principal)
        .bind(&c.client_address)
        .bind(&c.api)
        .bind(c.requests)
        .execute(&mut *tx)
        .await?;
    }
    audit::stage(&mut tx, None, &format!("{broker} reported {} request-log counts for window {id}", counts.len()))
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// What window `id` counted, most requests first.
pub async fn counts(store: &Store, id: i64) -> Result<Vec<CountRow>> {
    Ok(sqlx::query_as(
        "select principal, client_address, api, requests from request_log_counts where window_id = $1 \
         order by requests desc, principal, client_address, api",
    )
    .bind(id)
    .fetch_all(&store.pool)
    .await?)
}
