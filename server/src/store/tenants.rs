//! Tenants, their desired topics, activation and partition changes, and partition requests.

use sqlx::{AnyConnection, FromRow};

use super::credentials::{self, CredentialRow};
use super::notify::{self, Notice};
use super::reconcile::{self, StatusRow};
use super::{Flag, Store, audit, unique_violation};
use crate::clock::now;
use crate::error::{Error, Result};
use crate::pki::SealedCredential;
use crate::tenants::{Partitions, TenantId, TenantName};

/// A tenant row.
#[derive(Debug, Clone, FromRow)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    #[sqlx(try_from = "Flag")]
    pub streaming_active: bool,
    pub activated_at: Option<i64>,
    #[sqlx(try_from = "Flag")]
    pub live_tail_enabled: bool,
}

/// A desired topic.
#[derive(Debug, Clone, FromRow)]
pub struct Topic {
    pub name: String,
    /// `logs` for `c<N>`, `waf` for `c<N>_waf`.
    pub kind: String,
    pub partitions: i64,
}

macro_rules! select_tenants {
    () => {
        "select id, name, created_at, streaming_active, activated_at, live_tail_enabled from tenants"
    };
}

/// Creates a tenant; `Conflict` when the id is taken.
pub async fn create(
    store: &Store,
    id: TenantId,
    name: &TenantName,
    default_rules: &[(&str, &str, String)],
) -> Result<Tenant> {
    let mut tx = store.pool.begin().await?;
    let result = sqlx::query_as::<_, Tenant>(concat!(
        "insert into tenants (id, name, created_at) values ($1, $2, $3) returning ",
        "id, name, created_at, streaming_active, activated_at, live_tail_enabled"
    ))
    .bind(id.get())
    .bind(name.as_str())
    .bind(now())
    .fetch_one(&mut *tx)
    .await;
    let tenant = match result {
        Err(e) if unique_violation(&e) => return Err(Error::Conflict(format!("tenant {id} already exists"))),
        other => other?,
    };
    super::alerts::create_defaults(&mut tx, id.get(), default_rules).await?;
    audit::stage(&mut tx, Some(id.get()), "").await?;
    tx.commit().await?;
    Ok(tenant)
}

pub async fn list(store: &Store) -> Result<Vec<Tenant>> {
    Ok(sqlx::query_as(concat!(select_tenants!(), " order by id")).fetch_all(&store.pool).await?)
}

pub async fn find(store: &Store, id: TenantId) -> Result<Option<Tenant>> {
    find_in(&mut *store.pool.acquire().await?, id).await
}

async fn find_in(conn: &mut AnyConnection, id: TenantId) -> Result<Option<Tenant>> {
    Ok(sqlx::query_as(concat!(select_tenants!(), " where id = $1")).bind(id.get()).fetch_optional(conn).await?)
}

/// The ids of every tenant with whether its streaming is active (for the WAF router).
pub async fn activity(store: &Store) -> Result<Vec<(i64, bool)>> {
    let rows: Vec<(i64, Flag)> =
        sqlx::query_as("select id, streaming_active from tenants").fetch_all(&store.pool).await?;
    Ok(rows.into_iter().map(|(id, active)| (id, active.0)).collect())
}

/// What [`delete`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    NotFound,
    /// Streaming is active: nothing was deleted.
    Active,
}

/// Deletes a tenant whose streaming is inactive. The allowlist version moves (a trigger) when
/// the tenant had entries; the agents are told after the commit.
pub async fn delete(store: &Store, id: TenantId) -> Result<Deletion> {
    let mut tx = store.pool.begin().await?;
    let deleted = sqlx::query("delete from tenants where id = $1 and streaming_active = false")
        .bind(id.get())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        let found = find_in(&mut tx, id).await?;
        return Ok(if found.is_some() { Deletion::Active } else { Deletion::NotFound });
    }
    let version = super::firewall::version_in(&mut tx).await?;
    audit::stage(&mut tx, Some(id.get()), "").await?;
    notify::send(&mut tx, store.backend, Notice::Allowlist(version)).await?;
    tx.commit().await?;
    store.signals.allowlist_committed(version);
    Ok(Deletion::Deleted)
}

/// What [`activate`] did.
#[derive(Debug)]
pub enum Activation {
    /// This call activated streaming and issued credential `k`.
    Activated {
        k: i64,
    },
    AlreadyActive,
    NotFound,
}

/// Activates streaming: records the desired topics and stores credential `k`, which `sign`
/// makes once the transaction has fixed `k`. Exactly one of several racing calls activates.
pub async fn activate(
    store: &Store,
    tenant: TenantId,
    sign: impl FnOnce(i64) -> Result<SealedCredential>,
) -> Result<Activation> {
    let mut tx = store.pool.begin().await?;
    // The conditional update is the first statement: it takes SQLite's write lock, and only one
    // of several concurrent activations can flip the flag.
    let won: Option<(i64,)> = sqlx::query_as(
        "update tenants set streaming_active = true, activated_at = $1, credential_seq = credential_seq + 1 \
         where id = $2 and streaming_active = false returning credential_seq",
    )
    .bind(now())
    .bind(tenant.get())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((k,)) = won else {
        let found = find_in(&mut tx, tenant).await?;
        // Release the write lock the no-op update took before using another connection:
        // holding it while waiting for the pool can deadlock with other writers.
        tx.rollback().await?;
        if found.is_none() {
            return Ok(Activation::NotFound);
        }
        audit::stage_read(store, Some(tenant.get()), "already active").await?;
        return Ok(Activation::AlreadyActive);
    };
    for (name, kind) in [(tenant.topic(), "logs"), (tenant.waf_topic(), "waf")] {
        // Topics survive deactivation (partition counts only grow), so re-activation keeps them.
        sqlx::query(
            "insert into topics (name, tenant_id, kind, partitions) values ($1, $2, $3, $4) on conflict do nothing",
        )
        .bind(name)
        .bind(tenant.get())
        .bind(kind)
        .bind(Partitions::DEFAULT.get())
        .execute(&mut *tx)
        .await?;
    }
    credentials::insert(&mut tx, tenant, k, &sign(k)?).await?;
    reconcile::mark_pending(&mut tx, tenant).await?;
    audit::stage(&mut tx, Some(tenant.get()), &format!("credential {k} issued")).await?;
    notify::send(&mut tx, store.backend, Notice::Desired).await?;
    tx.commit().await?;
    store.signals.desired_changed();
    Ok(Activation::Activated { k })
}

/// Deactivates streaming and revokes every credential. `None` when the tenant does not exist,
/// else whether this call changed anything.
pub async fn deactivate(store: &Store, tenant: TenantId) -> Result<Option<bool>> {
    let mut tx = store.pool.begin().await?;
    let changed = sqlx::query("update tenants set streaming_active = false where id = $1 and streaming_active = true")
        .bind(tenant.get())
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if changed {
        sqlx::query(
            "update credentials set state = 'revoked', revoked_at = $1 where tenant_id = $2 and state = 'active'",
        )
        .bind(now())
        .bind(tenant.get())
        .execute(&mut *tx)
        .await?;
        reconcile::mark_pending(&mut tx, tenant).await?;
    } else if find_in(&mut tx, tenant).await?.is_none() {
        return Ok(None);
    }
    audit::stage(&mut tx, Some(tenant.get()), if changed { "" } else { "already inactive" }).await?;
    if changed {
        notify::send(&mut tx, store.backend, Notice::Desired).await?;
    }
    tx.commit().await?;
    if changed {
        store.signals.desired_changed();
    }
    Ok(Some(changed))
}

/// What [`set_partitions`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionChange {
    NotFound,
    Inactive,
    /// Refused: partitions only grow. Carries the current count.
    Lower {
        current: i64,
    },
    /// Done (or the same count, a no-op). Carries the count before.
    Set {
        before: i64,
    },
}

/// Raises the partition count of both tenant topics.
pub async fn set_partitions(store: &Store, tenant: TenantId, partitions: Partitions) -> Result<PartitionChange> {
    let mut tx = store.pool.begin().await?;
    // A write first (a no-op update) takes the write lock before the current count is read.
    sqlx::query("update tenants set streaming_active = streaming_active where id = $1")
        .bind(tenant.get())
        .execute(&mut *tx)
        .await?;
    match find_in(&mut tx, tenant).await? {
        None => return Ok(PartitionChange::NotFound),
        Some(t) if !t.streaming_active => return Ok(PartitionChange::Inactive),
        Some(_) => {}
    }
    let (current,): (i64,) = sqlx::query_as("select coalesce(max(partitions), 0) from topics where tenant_id = $1")
        .bind(tenant.get())
        .fetch_one(&mut *tx)
        .await?;
    if partitions.get() < current {
        return Ok(PartitionChange::Lower { current });
    }
    let raised = partitions.get() > current;
    if raised {
        sqlx::query("update topics set partitions = $1 where tenant_id = $2")
            .bind(partitions.get())
            .bind(tenant.get())
            .execute(&mut *tx)
            .await?;
        reconcile::mark_pending(&mut tx, tenant).await?;
    }
    audit::stage(&mut tx, Some(tenant.get()), &format!("partitions {current} -> {}", partitions.get())).await?;
    if raised {
        notify::send(&mut tx, store.backend, Notice::Desired).await?;
    }
    tx.commit().await?;
    if raised {
        store.signals.desired_changed();
    }
    Ok(PartitionChange::Set { before: current })
}

/// A tenant's streaming service as stored, read in one transaction.
#[derive(Debug, Clone)]
pub struct Streaming {
    pub tenant: Tenant,
    pub topics: Vec<Topic>,
    pub credentials: Vec<CredentialRow>,
    pub reconcile: Option<StatusRow>,
}

/// Everything the streaming status shows, or `None` when the tenant does not exist.
pub async fn streaming(store: &Store, tenant: TenantId) -> Result<Option<Streaming>> {
    let mut tx = super::begin_snapshot(store).await?;
    let Some(row) = find_in(&mut tx, tenant).await? else { return Ok(None) };
    let topics = sqlx::query_as("select name, kind, partitions from topics where tenant_id = $1 order by kind")
        .bind(tenant.get())
        .fetch_all(&mut *tx)
        .await?;
    let credentials = credentials::list_in(&mut tx, tenant).await?;
    let reconcile = reconcile::status_in(&mut tx, tenant).await?;
    tx.commit().await?;
    Ok(Some(Streaming { tenant: row, topics, credentials, reconcile }))
}

/// Turns the live sample of a tenant's records on or off; `false` when the tenant does not exist.
pub async fn set_live_tail(store: &Store, tenant: TenantId, enabled: bool) -> Result<bool> {
    let mut tx = store.pool.begin().await?;
    let changed = sqlx::query("update tenants set live_tail_enabled = $1 where id = $2")
        .bind(enabled)
        .bind(tenant.get())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    audit::stage(&mut tx, Some(tenant.get()), if enabled { "live tail on" } else { "live tail off" }).await?;
    tx.commit().await?;
    Ok(true)
}

/// A partition request row.
#[derive(Debug, Clone, FromRow)]
pub struct PartitionRequestRow {
    pub id: i64,
    pub partitions: i64,
    pub note: String,
    pub requested_by: String,
    pub created_at: i64,
}

/// Records a tenant's request for more partitions; `None` when the tenant does not exist.
pub async fn file_partition_request(
    store: &Store,
    tenant: TenantId,
    partitions: Partitions,
    note: &str,
    requested_by: &str,
) -> Result<Option<PartitionRequestRow>> {
    let mut tx = store.pool.begin().await?;
    if find_in(&mut tx, tenant).await?.is_none() {
        return Ok(None);
    }
    let row: PartitionRequestRow = sqlx::query_as(
        "insert into partition_requests (tenant_id, partitions, note, requested_by, created_at) \
         values ($1, $2, $3, $4, $5) returning id, partitions, note, requested_by, created_at",
    )
    .bind(tenant.get())
    .bind(partitions.get())
    .bind(note)
    .bind(requested_by)
    .bind(now())
    .fetch_one(&mut *tx)
    .await?;
    audit::stage(&mut tx, Some(tenant.get()), &format!("{} partitions", partitions.get())).await?;
    tx.commit().await?;
    Ok(Some(row))
}

/// A tenant's partition requests, newest first.
pub async fn partition_requests(store: &Store, tenant: TenantId) -> Result<Vec<PartitionRequestRow>> {
    Ok(sqlx::query_as(
        "select id, partitions, note, requested_by, created_at from partition_requests \
         where tenant_id = $1 order by id desc",
    )
    .bind(tenant.get())
    .fetch_all(&store.pool)
    .await?)
}
