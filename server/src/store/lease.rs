//! Leases: which replica runs a singleton worker. A lease has a holder, an epoch that moves
//! whenever the holder changes (so writes can be fenced: a paused ex-holder's epoch is stale),
//! and an expiry on the database's clock (replicas' clocks may disagree; the database's is one).

use sqlx::{AnyConnection, FromRow};

use super::{Backend, Store};
use crate::error::Result;

/// Milliseconds since the epoch on the database's clock.
pub(super) fn now_ms(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "cast(unixepoch('subsec') * 1000 as integer)",
        Backend::Postgres => "cast(extract(epoch from clock_timestamp()) * 1000 as bigint)",
    }
}

/// Takes or renews lease `name` for `holder` for `ttl_ms`. Returns the epoch held, or `None`
/// when another holder's lease has not expired. Renewing keeps the epoch; taking over bumps it.
pub async fn acquire(store: &Store, name: &str, holder: &str, ttl_ms: i64) -> Result<Option<i64>> {
    let now = now_ms(store.backend);
    let sql = format!(
        "insert into leases (name, holder, epoch, expires_at) values ($1, $2, 1, {now} + $3) \
         on conflict (name) do update set holder = excluded.holder, \
           epoch = case when leases.holder = excluded.holder and leases.expires_at > {now} \
                        then leases.epoch else leases.epoch + 1 end, \
           expires_at = excluded.expires_at \
         where leases.holder = excluded.holder or leases.expires_at <= {now} \
         returning epoch"
    );
    let row: Option<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(name)
        .bind(holder)
        .bind(ttl_ms)
        .fetch_optional(&store.pool)
        .await?;
    Ok(row.map(|(e,)| e))
}

/// Gives the lease up at once (a graceful stop), if `holder` still has it.
pub async fn release(store: &Store, name: &str, holder: &str) -> Result<()> {
    sqlx::query("update leases set expires_at = 0 where name = $1 and holder = $2")
        .bind(name)
        .bind(holder)
        .execute(&store.pool)
        .await?;
    Ok(())
}

/// A lease as stored.
#[derive(Debug, Clone, FromRow)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub epoch: i64,
    /// Milliseconds on the database clock.
    pub expires_at: i64,
    /// Whether it has not expired yet.
    #[sqlx(try_from = "super::Flag")]
    pub live: bool,
}

/// Every lease, by name.
pub async fn list(store: &Store) -> Result<Vec<LeaseRow>> {
    let sql = format!(
        "select name, holder, epoch, expires_at, expires_at > {} as live from leases order by name",
        now_ms(store.backend)
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&store.pool).await?)
}

/// Inside a transaction: whether `name` is still held with `epoch` (and locks the lease row, so
/// no takeover commits while the transaction runs). A write fenced by this check cannot land
/// after another replica took the lease over.
pub(super) async fn fence(conn: &mut AnyConnection, backend: Backend, name: &str, epoch: i64) -> Result<bool> {
    let sql =
        format!("update leases set epoch = epoch where name = $1 and epoch = $2 and expires_at > {}", now_ms(backend));
    let done = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(name).bind(epoch).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}
