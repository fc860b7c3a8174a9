//! The replicas serving on this database: each records a heartbeat every few seconds.

use sqlx::FromRow;

use super::{Flag, Store, lease};
use crate::error::Result;

/// A replica whose last heartbeat is older than this is shown as gone.
pub const LIVE_MS: i64 = 15_000;
/// Rows of replicas silent for longer than this are removed by the others' heartbeats.
const FORGET_MS: i64 = 3_600_000;

/// Records that replica `id` is alive (and forgets replicas silent for an hour).
pub async fn heartbeat(store: &Store, id: &str, address: &str, version: &str) -> Result<()> {
    let now = lease::now_ms(store.backend);
    let mut tx = store.pool.begin().await?;
    let upsert = format!(
        "insert into replicas (id, address, version, started_at, heartbeat_at) values ($1, $2, $3, {now}, {now}) \
         on conflict (id) do update set address = excluded.address, version = excluded.version, \
         heartbeat_at = excluded.heartbeat_at"
    );
    sqlx::query(sqlx::AssertSqlSafe(upsert)).bind(id).bind(address).bind(version).execute(&mut *tx).await?;
    let forget = format!("delete from replicas where heartbeat_at < {now} - $1");
    sqlx::query(sqlx::AssertSqlSafe(forget)).bind(FORGET_MS).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Removes replica `id` (a graceful stop).
pub async fn leave(store: &Store, id: &str) -> Result<()> {
    sqlx::query("delete from replicas where id = $1").bind(id).execute(&store.pool).await?;
    Ok(())
}

#[derive(Debug, Clone, FromRow)]
pub struct ReplicaRow {
    pub id: String,
    pub address: String,
    pub version: String,
    pub started_at: i64,
    pub heartbeat_at: i64,
    /// Milliseconds since the last heartbeat, on the database clock.
    pub silent_ms: i64,
    #[sqlx(try_from = "Flag")]
    pub live: bool,
}

/// Every known replica, newest first.
pub async fn list(store: &Store) -> Result<Vec<ReplicaRow>> {
    let now = lease::now_ms(store.backend);
    let sql = format!(
        "select id, address, version, started_at, heartbeat_at, {now} - heartbeat_at as silent_ms, \
         heartbeat_at > {now} - $1 as live from replicas order by started_at desc, id"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(LIVE_MS).fetch_all(&store.pool).await?)
}
