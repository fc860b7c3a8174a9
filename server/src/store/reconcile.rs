//! The reconciler's bookkeeping: the desired state it reads, and each tenant's status row with
//! the generation every desired-state change bumps (so a pass that read an older desired state
//! never marks a newer change as applied).

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AnyConnection, FromRow};

use super::Store;
use crate::clock::now;
use crate::error::Result;
use crate::tenants::TenantId;

/// Records that `tenant`'s desired state changed and has not reached the cluster yet, inside the
/// transaction that changes it.
pub(super) async fn mark_pending(conn: &mut AnyConnection, tenant: TenantId) -> Result<()> {
    sqlx::query(
        "insert into reconcile_status (tenant_id, status, generation, updated_at) values ($1, 'pending', 1, $2) \
         on conflict (tenant_id) do update set status = 'pending', generation = reconcile_status.generation + 1, \
         updated_at = excluded.updated_at",
    )
    .bind(tenant.get())
    .bind(now())
    .execute(conn)
    .await?;
    Ok(())
}

/// A tenant's reconcile status row.
#[derive(Debug, Clone, FromRow)]
pub struct StatusRow {
    pub status: String,
    pub last_error: Option<String>,
    pub last_success_at: Option<i64>,
}

pub async fn status_of(store: &Store, tenant: TenantId) -> Result<Option<StatusRow>> {
    status_in(&mut *store.pool.acquire().await?, tenant).await
}

pub(super) async fn status_in(conn: &mut AnyConnection, tenant: TenantId) -> Result<Option<StatusRow>> {
    Ok(sqlx::query_as("select status, last_error, last_success_at from reconcile_status where tenant_id = $1")
        .bind(tenant.get())
        .fetch_optional(conn)
        .await?)
}

/// Every tenant's reconcile status, by tenant id.
pub async fn statuses(store: &Store) -> Result<BTreeMap<i64, String>> {
    let rows: Vec<(i64, String)> =
        sqlx::query_as("select tenant_id, status from reconcile_status").fetch_all(&store.pool).await?;
    Ok(rows.into_iter().collect())
}

/// The desired state as stored, read in one transaction.
#[derive(Debug, Clone, Default)]
pub struct DesiredRows {
    /// (topic, tenant, partitions) of tenants with streaming active.
    pub topics: Vec<(String, i64, i64)>,
    /// (certificate CN, tenant) of active, unexpired credentials of active tenants.
    pub principals: Vec<(String, i64)>,
    /// Each tenant's status generation at the time of reading.
    pub generations: BTreeMap<i64, i64>,
    /// Tenants' own quota values, and the cluster-wide default.
    pub quotas: Vec<(i64, crate::tenants::quota::Quota)>,
    pub default_quota: crate::tenants::quota::Quota,
}

pub async fn desired(store: &Store) -> Result<DesiredRows> {
    let mut tx = super::begin_snapshot(store).await?;
    let topics = sqlx::query_as(
        "select t.name, t.tenant_id, t.partitions from topics t join tenants n on n.id = t.tenant_id \
         where n.streaming_active = true",
    )
    .fetch_all(&mut *tx)
    .await?;
    let principals = sqlx::query_as(
        "select c.cn, c.tenant_id from credentials c join tenants n on n.id = c.tenant_id \
         where n.streaming_active = true and c.state = 'active' and c.not_after > $1",
    )
    .bind(now())
    .fetch_all(&mut *tx)
    .await?;
    let generations: Vec<(i64, i64)> =
        sqlx::query_as("select tenant_id, generation from reconcile_status").fetch_all(&mut *tx).await?;
    let quotas = super::quotas::all_in(&mut tx).await?;
    let default_quota = super::quotas::default_in(&mut tx).await?;
    tx.commit().await?;
    Ok(DesiredRows { topics, principals, generations: generations.into_iter().collect(), quotas, default_quota })
}

/// Tenants whose status is not `ready`.
pub async fn waiting(store: &Store) -> Result<Vec<i64>> {
    let rows: Vec<(i64,)> =
        sqlx::query_as("select tenant_id from reconcile_status where status <> 'ready'").fetch_all(&store.pool).await?;
    Ok(rows.into_iter().map(|(t,)| t).collect())
}

/// Why a tenant's changes failed in a pass.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Worth retrying soon (the tenant stays `pending`), else `error`.
    pub transient: bool,
    pub message: String,
}

/// Records a pass: `confirmed` tenants become `ready` (unless their desired state moved on since
/// `generations` was read), failed ones get their error.
pub async fn record(
    store: &Store,
    tenants: &BTreeSet<i64>,
    confirmed: &BTreeSet<i64>,
    generations: &BTreeMap<i64, i64>,
    failures: &BTreeMap<i64, Failure>,
    epoch: Option<i64>,
) -> Result<bool> {
    let now = now();
    let mut tx = store.pool.begin().await?;
    if !fenced(store, &mut tx, epoch).await? {
        return Ok(false);
    }
    for tenant in tenants {
        let generation = generations.get(tenant).copied().unwrap_or(0);
        match failures.get(tenant) {
            None if !confirmed.contains(tenant) => {}
            None => {
                sqlx::query(
                    "insert into reconcile_status (tenant_id, status, last_error, last_success_at, generation, updated_at) \
                     select $1, 'ready', null, $2, $3, $2 where exists (select 1 from tenants where id = $1) \
                     on conflict (tenant_id) do update set status = 'ready', last_error = null, \
                     last_success_at = excluded.last_success_at, updated_at = excluded.updated_at \
                     where reconcile_status.generation = excluded.generation",
                )
                .bind(tenant)
                .bind(now)
                .bind(generation)
                .execute(&mut *tx)
                .await?;
            }
            Some(e) => {
                let status = if e.transient { "pending" } else { "error" };
                sqlx::query(
                    "update reconcile_status set last_error = $1, updated_at = $2, \
                     status = case when generation = $3 then $4 else 'pending' end where tenant_id = $5",
                )
                .bind(&e.message)
                .bind(now)
                .bind(generation)
                .bind(status)
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// Whether this pass may write: without an epoch always, with one only while the reconciler
/// lease is held with it (see `lease::fence`).
async fn fenced(store: &Store, conn: &mut AnyConnection, epoch: Option<i64>) -> Result<bool> {
    match epoch {
        None => Ok(true),
        Some(epoch) => {
            let held = super::lease::fence(conn, store.backend, crate::store::RECONCILER_LEASE, epoch).await?;
            if !held {
                tracing::warn!(epoch, "reconciler lease lost: this pass records nothing");
            }
            Ok(held)
        }
    }
}

/// The cluster cannot be read: every tenant still waiting gets the reason.
pub async fn record_unreachable(store: &Store, reason: &str, epoch: Option<i64>) -> Result<bool> {
    let mut tx = store.pool.begin().await?;
    if !fenced(store, &mut tx, epoch).await? {
        return Ok(false);
    }
    sqlx::query("update reconcile_status set last_error = $1, updated_at = $2 where status <> 'ready'")
        .bind(reason)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}
