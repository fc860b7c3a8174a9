//! Tenant quotas and the cluster-wide default. A change marks the affected tenants pending and
//! wakes the reconciler, like any other desired-state change.

use sqlx::AnyConnection;

use super::notify::{self, Notice};
use super::{Flag, Store, audit, reconcile};
use crate::clock::now;
use crate::error::Result;
use crate::tenants::TenantId;
use crate::tenants::quota::Quota;

type Row = (Option<i64>, Option<f64>);

fn quota((consumer_byte_rate, request_percentage): Row) -> Quota {
    Quota { consumer_byte_rate, request_percentage }
}

/// A tenant's own values (unset ones take the default); `None` when the tenant does not exist.
pub async fn of_tenant(store: &Store, tenant: TenantId) -> Result<Option<Quota>> {
    let mut conn = store.pool.acquire().await?;
    let exists: Option<(i64,)> =
        sqlx::query_as("select id from tenants where id = $1").bind(tenant.get()).fetch_optional(&mut *conn).await?;
    if exists.is_none() {
        return Ok(None);
    }
    let row: Option<Row> =
        sqlx::query_as("select consumer_byte_rate, request_percentage from tenant_quotas where tenant_id = $1")
            .bind(tenant.get())
            .fetch_optional(&mut *conn)
            .await?;
    Ok(Some(row.map(quota).unwrap_or_default()))
}

/// The cluster-wide default.
pub async fn default(store: &Store) -> Result<Quota> {
    default_in(&mut *store.pool.acquire().await?).await
}

pub(super) async fn default_in(conn: &mut AnyConnection) -> Result<Quota> {
    let row: Option<Row> =
        sqlx::query_as("select consumer_byte_rate, request_percentage from quota_defaults where id = 1")
            .fetch_optional(conn)
            .await?;
    Ok(row.map(quota).unwrap_or_default())
}

/// Every tenant's own values, for the reconciler's desired state (read in its snapshot).
pub(super) async fn all_in(conn: &mut AnyConnection) -> Result<Vec<(i64, Quota)>> {
    let rows: Vec<(i64, Option<i64>, Option<f64>)> =
        sqlx::query_as("select tenant_id, consumer_byte_rate, request_percentage from tenant_quotas")
            .fetch_all(conn)
            .await?;
    Ok(rows.into_iter().map(|(t, c, r)| (t, quota((c, r)))).collect())
}

/// Replaces a tenant's own values (all unset removes them). `None` when the tenant does not
/// exist; otherwise the values before.
pub async fn set(store: &Store, tenant: TenantId, new: Quota) -> Result<Option<Quota>> {
    let mut tx = store.pool.begin().await?;
    // A write first, so the row read below cannot change before the commit (SQLite's lock).
    sqlx::query("update tenants set streaming_active = streaming_active where id = $1")
        .bind(tenant.get())
        .execute(&mut *tx)
        .await?;
    let active: Option<(Flag,)> = sqlx::query_as("select streaming_active from tenants where id = $1")
        .bind(tenant.get())
        .fetch_optional(&mut *tx)
        .await?;
    let Some((Flag(active),)) = active else { return Ok(None) };
    let before: Option<Row> =
        sqlx::query_as("select consumer_byte_rate, request_percentage from tenant_quotas where tenant_id = $1")
            .bind(tenant.get())
            .fetch_optional(&mut *tx)
            .await?;
    let before = before.map(quota).unwrap_or_default();
    if new.is_empty() {
        sqlx::query("delete from tenant_quotas where tenant_id = $1").bind(tenant.get()).execute(&mut *tx).await?;
    } else {
        sqlx::query(
            "insert into tenant_quotas (tenant_id, consumer_byte_rate, request_percentage, updated_at) \
             values ($1, $2, $3, $4) on conflict (tenant_id) do update set \
             consumer_byte_rate = excluded.consumer_byte_rate, request_percentage = excluded.request_percentage, \
             updated_at = excluded.updated_at",
        )
        .bind(tenant.get())
        .bind(new.consumer_byte_rate)
        .bind(new.request_percentage)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    }
    let changed = before != new;
    // Only an active tenant has principals to change; an inactive one gets its quota on activation.
    if changed && active {
        reconcile::mark_pending(&mut tx, tenant).await?;
        notify::send(&mut tx, store.backend, Notice::Desired).await?;
    }
    audit::stage(&mut tx, Some(tenant.get()), &format!("{} -> {}", before.describe(), new.describe())).await?;
    tx.commit().await?;
    if changed && active {
        store.signals.desired_changed();
    }
    Ok(Some(before))
}

/// Replaces the cluster-wide default; every active tenant becomes pending until the reconciler
/// has applied it. Returns the values before.
pub async fn set_default(store: &Store, new: Quota) -> Result<Quota> {
    let mut tx = store.pool.begin().await?;
    // A write first (an empty row, "no default", if there is none) takes the write lock.
    sqlx::query(
        "insert into quota_defaults (id, consumer_byte_rate, request_percentage, updated_at) \
         values (1, null, null, $1) on conflict (id) do nothing",
    )
    .bind(now())
    .execute(&mut *tx)
    .await?;
    let before = default_in(&mut tx).await?;
    sqlx::query(
        "update quota_defaults set consumer_byte_rate = $1, request_percentage = $2, updated_at = $3 where id = 1",
    )
    .bind(new.consumer_byte_rate)
    .bind(new.request_percentage)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    let changed = before != new;
    if changed {
        sqlx::query(
            "update reconcile_status set status = 'pending', generation = generation + 1, updated_at = $1 \
             where tenant_id in (select id from tenants where streaming_active = true)",
        )
        .bind(now())
        .execute(&mut *tx)
        .await?;
        notify::send(&mut tx, store.backend, Notice::Desired).await?;
    }
    audit::stage(&mut tx, None, &format!("default {} -> {}", before.describe(), new.describe())).await?;
    tx.commit().await?;
    if changed {
        store.signals.desired_changed();
    }
    Ok(before)
}
