//! Partition requests: tenants cannot change their partition count, but can ask for more;
//! operators see the open requests on the tenant's page and in the API.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Partitions, TenantId, not_found};
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::tenants::{self as stored, PartitionRequestRow};

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

impl From<PartitionRequestRow> for PartitionRequest {
    fn from(r: PartitionRequestRow) -> Self {
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
    store: &Store,
    tenant: TenantId,
    partitions: Partitions,
    note: &str,
    requested_by: &str,
) -> Result<PartitionRequest> {
    let note = note.trim();
    if note.chars().count() > 500 {
        return Err(Error::invalid("note", "note must be at most 500 characters"));
    }
    let row = stored::file_partition_request(store, tenant, partitions, note, requested_by).await?;
    row.map(PartitionRequest::from).ok_or_else(|| not_found(tenant))
}

/// A tenant's requests, newest first.
pub async fn list(store: &Store, tenant: TenantId) -> Result<Vec<PartitionRequest>> {
    Ok(stored::partition_requests(store, tenant).await?.into_iter().map(PartitionRequest::from).collect())
}
