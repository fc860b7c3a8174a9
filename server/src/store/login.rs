//! Sign-in attempts counted per key (an account or an address) in a sliding window, on the
//! database clock so that every replica counts the same attempts.

use super::{Store, lease};
use crate::error::Result;

/// A key to count an attempt against, with its limit.
#[derive(Debug, Clone)]
pub struct Key {
    pub key: String,
    pub limit: usize,
}

/// Counts an attempt against every key, unless one already has `limit` attempts in the last
/// `window_ms`: then `Err((index of that key, ms until its oldest attempt leaves the window))`.
pub async fn reserve(store: &Store, keys: &[Key], window_ms: i64) -> Result<Result<Vec<i64>, (usize, i64)>> {
    let now = lease::now_ms(store.backend);
    let mut tx = store.pool.begin().await?;
    // Lock the keys' rows first, in one order, so concurrent attempts on a key take turns.
    let mut order: Vec<&Key> = keys.iter().collect();
    order.sort_by(|a, b| a.key.cmp(&b.key));
    for k in &order {
        sqlx::query("insert into login_keys (key) values ($1) on conflict (key) do update set key = excluded.key")
            .bind(&k.key)
            .execute(&mut *tx)
            .await?;
    }
    for (i, k) in keys.iter().enumerate() {
        let prune = format!("delete from login_attempts where key = $1 and at <= {now} - $2");
        sqlx::query(sqlx::AssertSqlSafe(prune)).bind(&k.key).bind(window_ms).execute(&mut *tx).await?;
        let count = format!("select count(*), coalesce(min(at), 0), {now} from login_attempts where key = $1");
        let (n, oldest, at): (i64, i64, i64) =
            sqlx::query_as(sqlx::AssertSqlSafe(count)).bind(&k.key).fetch_one(&mut *tx).await?;
        if usize::try_from(n).unwrap_or(usize::MAX) >= k.limit {
            return Ok(Err((i, (window_ms - (at - oldest)).max(0))));
        }
    }
    let mut ids = Vec::with_capacity(keys.len());
    for k in keys {
        let insert = format!("insert into login_attempts (key, at) values ($1, {now}) returning id");
        let (id,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(insert)).bind(&k.key).fetch_one(&mut *tx).await?;
        ids.push(id);
    }
    tx.commit().await?;
    Ok(Ok(ids))
}

/// Takes back the attempts `reserve` counted.
pub async fn release(store: &Store, ids: &[i64]) -> Result<()> {
    let mut tx = store.pool.begin().await?;
    for id in ids {
        sqlx::query("delete from login_attempts where id = $1").bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Forgets every attempt on `key` (a successful sign-in clears its account).
pub async fn clear(store: &Store, key: &str) -> Result<()> {
    sqlx::query("delete from login_attempts where key = $1").bind(key).execute(&store.pool).await?;
    Ok(())
}
