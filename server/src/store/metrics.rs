//! The counts `/metrics` shows.

use super::Store;
use crate::error::Result;

#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub tenants: i64,
    pub streaming_active: i64,
    pub credentials_active: i64,
    /// Tenants by reconcile status.
    pub by_status: Vec<(String, i64)>,
}

pub async fn counts(store: &Store) -> Result<Counts> {
    let mut tx = super::begin_snapshot(store).await?;
    let (tenants, streaming_active): (i64, i64) =
        sqlx::query_as("select count(*), count(*) filter (where streaming_active) from tenants")
            .fetch_one(&mut *tx)
            .await?;
    let (credentials_active,): (i64,) =
        sqlx::query_as("select count(*) from credentials where state = 'active'").fetch_one(&mut *tx).await?;
    let by_status = sqlx::query_as("select status, count(*) from reconcile_status group by status order by status")
        .fetch_all(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Counts { tenants, streaming_active, credentials_active, by_status })
}
