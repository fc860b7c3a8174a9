//! Partition requests: tenants cannot change their partition count, but can ask for more;
//! operators see the open requests on the tenant's page and in the API.

use serde::Serialize;
use sqlx::{FromRow, SqlitePool};
use utoipa::ToSchema;

use super::{Partitions, TenantId, now, rfc3339};
use crate::error::{Error, Result};

#[derive(Debug, Clone, FromRow)]
struct Row {
    id: i64,
    partitions: i64,
    note: String,
    requested_by: String,
    created_at: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PartitionRequest {
    pub id: i64,
    #[schema(example = 4)]
    pub partitions: i64,
    #[schema(example = "we are adding consumers for the holiday peak")]
    pub note: String,
    pub requested_by: String,
    pub created_at: String,
}

impl From<Row> for PartitionRequest {
    fn from(r: Row) -> Self {
        Self {
            id: r.id,
            partitions: r.partitions,
            note: r.note,
            requested_by: r.requested_by,
            created_at: rfc3339(r.created_at),
        }
    }
}

/// Records a request; the note is at most 500 characters.
pub async fn file(
    db: &SqlitePool,
    tenant: TenantId,
    partitions: Partitions,
    note: &str,
    requested_by: &str,
) -> Result<PartitionRequest> {
    let note = note.trim();
    if note.chars().count() > 500 {
        return Err(Error::invalid("note", "note must be at most 500 characters"));
    }
    let mut tx = db.begin().await?;
    super::get(&mut *tx, tenant).await?;
    let row: Row = sqlx::query_as(
        "insert into partition_requests (tenant_id, partitions, note, requested_by, created_at) values (?, ?, ?, ?, ?) \
         returning id, partitions, note, requested_by, created_at",
    )
    .bind(tenant.get())
    .bind(partitions.get())
    .bind(note)
    .bind(requested_by)
    .bind(now())
    .fetch_one(&mut *tx)
    .await?;
    crate::audit::stage(&mut tx, Some(tenant), &format!("{} partitions", partitions.get())).await?;
    tx.commit().await?;
    Ok(row.into())
}

/// A tenant's requests, newest first.
pub async fn list(db: &SqlitePool, tenant: TenantId) -> Result<Vec<PartitionRequest>> {
    let rows: Vec<Row> = sqlx::query_as(
        "select id, partitions, note, requested_by, created_at from partition_requests where tenant_id = ? order by id desc",
    )
    .bind(tenant.get())
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(PartitionRequest::from).collect())
}
