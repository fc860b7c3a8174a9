//! Activation of a tenant's streaming service: records the desired topics and issues the first
//! credential, exactly once however many activations race.

use serde::Serialize;
use utoipa::ToSchema;

use super::credentials::CredentialView;
use super::{Partitions, TenantId, not_found};
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::pki::Issuer;
use crate::store::Store;
use crate::store::reconcile::StatusRow;
use crate::store::tenants::{self as stored, Activation, PartitionChange, Topic};

/// What the status shows besides the stored state: where clients connect, and whether a Kafka
/// cluster is configured at all.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// Public bootstrap brokers (`host:port`).
    pub brokers: Vec<String>,
    pub kafka_configured: bool,
}

/// A desired topic.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopicView {
    #[schema(example = "c83")]
    pub name: String,
    /// `logs` for `c<N>`, `waf` for `c<N>_waf`.
    pub kind: String,
    #[schema(example = 2)]
    pub partitions: i64,
}

impl From<Topic> for TopicView {
    fn from(t: Topic) -> Self {
        Self { name: t.name, kind: t.kind, partitions: t.partitions }
    }
}

/// Whether Kafka matches the desired state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconcileView {
    /// `pending` (changes not yet on the cluster; `last_error` says why if a try failed),
    /// `ready` (topics and ACLs match), `error` (the cluster refused a change), or `inactive`.
    pub status: String,
    pub last_error: Option<String>,
    pub last_success_at: Option<String>,
}

impl ReconcileView {
    fn new(kafka_configured: bool, active: bool, row: Option<StatusRow>) -> Self {
        let (status, last_error, last_success_at) = match row {
            Some(r) => (r.status, r.last_error, r.last_success_at),
            None => ("pending".to_owned(), None, None),
        };
        let status = match (active, status.as_str()) {
            // Deprovisioned (ACLs gone) and nothing pending.
            (false, "ready") => "inactive".to_owned(),
            _ => status,
        };
        let last_error = match (kafka_configured, status.as_str()) {
            (false, "pending") => {
                Some("no Kafka cluster is configured (OUTFLOW_KAFKA_BOOTSTRAP); nothing is provisioned".into())
            }
            _ => last_error,
        };
        Self { status, last_error, last_success_at: last_success_at.map(rfc3339) }
    }
}

/// Everything a tenant needs to know about its streaming service.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamingStatus {
    pub tenant_id: i64,
    pub active: bool,
    pub activated_at: Option<String>,
    pub topics: Vec<TopicView>,
    /// Consumer groups must start with this prefix, e.g. `c83_filebeat`.
    #[schema(example = "c83_")]
    pub group_prefix: String,
    /// Public bootstrap brokers (`host:port`).
    pub brokers: Vec<String>,
    pub credentials: Vec<CredentialView>,
    pub reconcile: ReconcileView,
    /// The tenant's name (for pages; not part of the API answer).
    #[serde(skip)]
    pub tenant_name: String,
    #[serde(skip)]
    pub created_at: i64,
    /// Whether operators let the dashboard sample the tenant's records.
    #[serde(skip)]
    pub live_tail: bool,
}

fn inactive(tenant: TenantId) -> Error {
    Error::Conflict(format!("streaming is not active for tenant {tenant}; activate it first"))
}

/// Activates streaming. Returns the status and whether this call did the activation.
pub async fn activate(
    store: &Store,
    issuer: &Issuer,
    published: &Published,
    tenant: TenantId,
) -> Result<(StreamingStatus, bool)> {
    // Generated before the transaction so the write lock is held only for the inserts; wasted
    // (one key) when the tenant turns out to be active already.
    let key = issuer.generate_key().await?;
    let activated = match stored::activate(store, tenant, |k| issuer.issue(&tenant.credential_cn(k), &key)).await? {
        Activation::Activated { .. } => {
            tracing::info!(tenant = %tenant, "streaming activated");
            true
        }
        Activation::AlreadyActive => false,
        Activation::NotFound => return Err(not_found(tenant)),
    };
    Ok((status(store, published, tenant).await?, activated))
}

/// Deactivates streaming: every credential is revoked; topics stay recorded.
pub async fn deactivate(store: &Store, published: &Published, tenant: TenantId) -> Result<StreamingStatus> {
    match stored::deactivate(store, tenant).await? {
        None => return Err(not_found(tenant)),
        Some(true) => tracing::info!(tenant = %tenant, "streaming deactivated"),
        Some(false) => {}
    }
    status(store, published, tenant).await
}

/// Raises the partition count of both tenant topics. Kafka cannot remove partitions, so a
/// lower count is refused; the same count is a no-op.
pub async fn set_partitions(
    store: &Store,
    published: &Published,
    tenant: TenantId,
    partitions: Partitions,
) -> Result<StreamingStatus> {
    match stored::set_partitions(store, tenant, partitions).await? {
        PartitionChange::NotFound => return Err(not_found(tenant)),
        PartitionChange::Inactive => return Err(inactive(tenant)),
        PartitionChange::Lower { current } => {
            return Err(Error::invalid(
                "partitions",
                format!("partitions can only increase: tenant {tenant} has {current}, asked for {}", partitions.get()),
            ));
        }
        PartitionChange::Set { before } if before < partitions.get() => {
            tracing::info!(tenant = %tenant, partitions = partitions.get(), "partitions increased");
        }
        PartitionChange::Set { .. } => {}
    }
    status(store, published, tenant).await
}

/// The status, read in one transaction.
pub async fn status(store: &Store, published: &Published, tenant: TenantId) -> Result<StreamingStatus> {
    let s = stored::streaming(store, tenant).await?.ok_or_else(|| not_found(tenant))?;
    let active = s.tenant.streaming_active;
    Ok(StreamingStatus {
        tenant_id: s.tenant.id,
        active,
        activated_at: s.tenant.activated_at.map(rfc3339),
        topics: if active { s.topics.into_iter().map(TopicView::from).collect() } else { Vec::new() },
        group_prefix: tenant.group_prefix(),
        brokers: published.brokers.clone(),
        credentials: s.credentials.iter().map(CredentialView::from).collect(),
        reconcile: ReconcileView::new(published.kafka_configured, active, s.reconcile),
        tenant_name: s.tenant.name,
        created_at: s.tenant.created_at,
        live_tail: s.tenant.live_tail_enabled,
    })
}

/// Fails with 409 unless streaming is active.
pub async fn require_active(store: &Store, tenant: TenantId) -> Result<super::Tenant> {
    let row = super::get(store, tenant).await?;
    if row.streaming_active { Ok(row) } else { Err(inactive(tenant)) }
}
