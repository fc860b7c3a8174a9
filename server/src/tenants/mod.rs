//! Tenants (CDN customers) and their streaming service: the desired state that reconcilers and
//! the bundle read.

pub mod credentials;
pub mod domain;
pub mod partition_requests;
pub mod quota;
pub mod streaming;

use serde::Serialize;
use utoipa::ToSchema;

pub use domain::{Partitions, TenantId, TenantName};

use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::tenants::{self as stored, Deletion};

pub use crate::store::tenants::Tenant;

/// A tenant as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    #[schema(example = 83)]
    pub id: i64,
    #[schema(example = "Acme")]
    pub name: String,
    pub created_at: String,
    pub streaming_active: bool,
    /// The delivery-log topic, `c<N>`.
    pub topic: String,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id,
            topic: format!("c{}", t.id),
            name: t.name,
            created_at: rfc3339(t.created_at),
            streaming_active: t.streaming_active,
        }
    }
}

/// Creates a tenant with the alert rules every tenant starts with (credential expiry, stalled
/// consumers; no channels until the tenant adds one).
pub async fn create(store: &Store, id: TenantId, name: &TenantName) -> Result<Tenant> {
    stored::create(store, id, name, &crate::alerts::manage::default_rules()).await
}

pub async fn list(store: &Store) -> Result<Vec<Tenant>> {
    stored::list(store).await
}

pub async fn find(store: &Store, id: TenantId) -> Result<Option<Tenant>> {
    stored::find(store, id).await
}

pub async fn get(store: &Store, id: TenantId) -> Result<Tenant> {
    find(store, id).await?.ok_or_else(|| not_found(id))
}

pub fn not_found(id: TenantId) -> Error {
    Error::NotFound(format!("tenant {id} does not exist"))
}

/// Deletes a tenant. A tenant with streaming active is refused: deactivate first, so that
/// removing a customer's live service is always a deliberate step. The brokers' agents learn of
/// the removed allowlist entries at once (the store signals the commit).
pub async fn delete(store: &Store, id: TenantId) -> Result<()> {
    match stored::delete(store, id).await? {
        Deletion::Deleted => Ok(()),
        Deletion::NotFound => Err(not_found(id)),
        Deletion::Active => Err(Error::Conflict(format!(
            "tenant {id} has streaming active; deactivate streaming before deleting the tenant"
        ))),
    }
}

/// Lets operators turn the dashboard's sample of the tenant's records on or off.
pub async fn set_live_tail(store: &Store, id: TenantId, enabled: bool) -> Result<()> {
    if stored::set_live_tail(store, id, enabled).await? { Ok(()) } else { Err(not_found(id)) }
}
