//! Activation of a tenant's streaming service: records the desired topics and issues the first
//! credential, exactly once however many activations race.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{Partitions, TenantId, rfc3339};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::kafka::reconcile;
use crate::pki::credentials::{self, CredentialView};

/// A desired topic.
#[derive(Debug, Clone, FromRow, Serialize, ToSchema)]
pub struct TopicView {
    #[schema(example = "c83")]
    pub name: String,
    /// `logs` for `c<N>`, `waf` for `c<N>_waf`.
    pub kind: String,
    #[schema(example = 2)]
    pub partitions: i64,
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
    fn new(state: &AppState, active: bool, row: Option<reconcile::StatusRow>) -> Self {
        let (status, last_error, last_success_at) = match row {
            Some(r) => (r.status, r.last_error, r.last_success_at),
            None => ("pending".to_owned(), None, None),
        };
        let status = match (active, status.as_str()) {
            // Deprovisioned (ACLs gone) and nothing pending.
            (false, "ready") => "inactive".to_owned(),
            _ => status,
        };
        let last_error = match (&state.cluster, status.as_str()) {
            (None, "pending") => {
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
}

/// Activates streaming. Returns the status and whether this call did the activation.
pub async fn activate(state: &AppState, tenant: TenantId) -> Result<(StreamingStatus, bool)> {
    // Generated before the transaction so the write lock is held only for the inserts; wasted
    // (one key) when the tenant turns out to be active already.
    let key = credentials::generate_key(state.config.credentials.key_algorithm).await?;
    let mut tx = state.db.begin().await?;
    // The conditional update is the first statement: it takes SQLite's write lock, and only one
    // of several concurrent activations can flip the flag.
    let won: Option<(i64,)> = sqlx::query_as(
        "update tenants set streaming_active = 1, activated_at = ?, credential_seq = credential_seq + 1 \
         where id = ? and streaming_active = 0 returning credential_seq",
    )
    .bind(super::now())
    .bind(tenant.get())
    .fetch_optional(&mut *tx)
    .await?;
    let activated = match won {
        Some((k,)) => {
            for (name, kind) in [(tenant.topic(), "logs"), (tenant.waf_topic(), "waf")] {
                // Topics survive deactivation (partition counts only grow), so re-activation keeps them.
                sqlx::query(
                    "insert into topics (name, tenant_id, kind, partitions) values (?, ?, ?, ?) on conflict do nothing",
                )
                .bind(name)
                .bind(tenant.get())
                .bind(kind)
                .bind(Partitions::DEFAULT.get())
                .execute(&mut *tx)
                .await?;
            }
            credentials::issue(state, &mut tx, tenant, k, &key).await?;
            reconcile::mark_pending(&mut tx, tenant).await?;
            crate::audit::stage(&mut tx, Some(tenant), &format!("credential {k} issued")).await?;
            tx.commit().await?;
            state.desired_changed();
            tracing::info!(tenant = %tenant, "streaming activated");
            true
        }
        None => {
            super::get(&mut *tx, tenant).await?;
            // Release the write lock the no-op update took before using another connection:
            // holding it while waiting for the pool can deadlock with other writers.
            tx.rollback().await?;
            crate::audit::stage_read(&state.db, Some(tenant), "already active").await?;
            false
        }
    };
    Ok((status(state, tenant).await?, activated))
}

/// Deactivates streaming: every credential is revoked; topics stay recorded.
pub async fn deactivate(state: &AppState, tenant: TenantId) -> Result<StreamingStatus> {
    let mut tx = state.db.begin().await?;
    let changed = sqlx::query("update tenants set streaming_active = 0 where id = ? and streaming_active = 1")
        .bind(tenant.get())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 1 {
        sqlx::query(
            "update credentials set state = 'revoked', revoked_at = ? where tenant_id = ? and state = 'active'",
        )
        .bind(super::now())
        .bind(tenant.get())
        .execute(&mut *tx)
        .await?;
        reconcile::mark_pending(&mut tx, tenant).await?;
        tracing::info!(tenant = %tenant, "streaming deactivated");
    } else {
        super::get(&mut *tx, tenant).await?;
    }
    crate::audit::stage(&mut tx, Some(tenant), if changed == 1 { "" } else { "already inactive" }).await?;
    tx.commit().await?;
    state.desired_changed();
    status(state, tenant).await
}

/// Raises the partition count of both tenant topics. Kafka cannot remove partitions, so a
/// lower count is refused; the same count is a no-op.
pub async fn set_partitions(state: &AppState, tenant: TenantId, partitions: Partitions) -> Result<StreamingStatus> {
    let mut tx = state.db.begin().await?;
    // A write first (a no-op update) takes the write lock before the current count is read.
    sqlx::query("update tenants set streaming_active = streaming_active where id = ?")
        .bind(tenant.get())
        .execute(&mut *tx)
        .await?;
    if !super::get(&mut *tx, tenant).await?.streaming_active {
        return Err(Error::Conflict(format!("streaming is not active for tenant {tenant}; activate it first")));
    }
    let (current,): (i64,) = sqlx::query_as("select coalesce(max(partitions), 0) from topics where tenant_id = ?")
        .bind(tenant.get())
        .fetch_one(&mut *tx)
        .await?;
    if partitions.get() < current {
        return Err(Error::invalid(
            "partitions",
            format!("partitions can only increase: tenant {tenant} has {current}, asked for {}", partitions.get()),
        ));
    }
    if partitions.get() > current {
        sqlx::query("update topics set partitions = ? where tenant_id = ?")
            .bind(partitions.get())
            .bind(tenant.get())
            .execute(&mut *tx)
            .await?;
        reconcile::mark_pending(&mut tx, tenant).await?;
        tracing::info!(tenant = %tenant, partitions = partitions.get(), "partitions increased");
    }
    crate::audit::stage(&mut tx, Some(tenant), &format!("partitions {current} -> {}", partitions.get())).await?;
    tx.commit().await?;
    state.desired_changed();
    status(state, tenant).await
}

pub async fn status(state: &AppState, tenant: TenantId) -> Result<StreamingStatus> {
    let row = super::get(&state.db, tenant).await?;
    let topics: Vec<TopicView> =
        sqlx::query_as("select name, kind, partitions from topics where tenant_id = ? order by kind")
            .bind(tenant.get())
            .fetch_all(&state.db)
            .await?;
    let credentials = credentials::list(&state.db, tenant).await?;
    let reconcile = reconcile::status_of(&state.db, tenant).await?;
    Ok(StreamingStatus {
        tenant_id: row.id,
        active: row.streaming_active,
        activated_at: row.activated_at.map(rfc3339),
        topics: if row.streaming_active { topics } else { Vec::new() },
        group_prefix: tenant.group_prefix(),
        brokers: state.config.brokers.clone(),
        credentials: credentials.iter().map(CredentialView::from).collect(),
        reconcile: ReconcileView::new(state, row.streaming_active, reconcile),
    })
}

/// Fails with 409 unless streaming is active.
pub async fn require_active(state: &AppState, tenant: TenantId) -> Result<()> {
    if super::get(&state.db, tenant).await?.streaming_active {
        Ok(())
    } else {
        Err(Error::Conflict(format!("streaming is not active for tenant {tenant}; activate it first")))
    }
}
