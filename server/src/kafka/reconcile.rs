//! The reconciler loop: read desired (database), read actual (cluster), plan, apply, record
//! each tenant's status. Runs at start, whenever the desired state changes (a notification),
//! and periodically; retries with a short backoff while the cluster is unreachable.
//!
//! Status rows carry a generation that every desired-state change bumps, so a pass that read
//! an older desired state never marks a newer change as applied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio_util::sync::CancellationToken;

use super::admin::{Cluster, ClusterError};
use super::plan::{self, Desired};
use crate::app::AppState;
use crate::tenants::{TenantId, now};

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Wait before the pass that confirms what the previous one changed.
const CONFIRM_DELAY: Duration = Duration::from_millis(100);

/// Records that `tenant`'s desired state changed and has not reached the cluster yet.
/// Call inside the transaction that changes it; notify the reconciler after commit.
pub async fn mark_pending(tx: &mut Transaction<'_, Sqlite>, tenant: TenantId) -> sqlx::Result<()> {
    sqlx::query(
        "insert into reconcile_status (tenant_id, status, generation, updated_at) values (?, 'pending', 1, ?) \
         on conflict (tenant_id) do update set status = 'pending', generation = generation + 1, \
         updated_at = excluded.updated_at",
    )
    .bind(tenant.get())
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A tenant's reconcile status row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatusRow {
    pub status: String,
    pub last_error: Option<String>,
    pub last_success_at: Option<i64>,
}

pub async fn status_of(db: &SqlitePool, tenant: TenantId) -> sqlx::Result<Option<StatusRow>> {
    sqlx::query_as("select status, last_error, last_success_at from reconcile_status where tenant_id = ?")
        .bind(tenant.get())
        .fetch_optional(db)
        .await
}

/// Every tenant's reconcile status, by tenant id.
pub async fn statuses(db: &SqlitePool) -> sqlx::Result<BTreeMap<i64, String>> {
    Ok(sqlx::query_as("select tenant_id, status from reconcile_status").fetch_all(db).await?.into_iter().collect())
}

/// The desired state, and the generation of each tenant's status row at the time it was read.
pub async fn desired(db: &SqlitePool, delete_unwanted_topics: bool) -> sqlx::Result<(Desired, BTreeMap<i64, i64>)> {
    let mut tx = db.begin().await?;
    let topics: Vec<(String, i64, i64)> = sqlx::query_as(
        "select t.name, t.tenant_id, t.partitions from topics t join tenants n on n.id = t.tenant_id \
         where n.streaming_active = 1",
    )
    .fetch_all(&mut *tx)
    .await?;
    let principals: Vec<(String, i64)> = sqlx::query_as(
        "select c.cn, c.tenant_id from credentials c join tenants n on n.id = c.tenant_id \
         where n.streaming_active = 1 and c.state = 'active' and c.not_after > ?",
    )
    .bind(now())
    .fetch_all(&mut *tx)
    .await?;
    let generations: Vec<(i64, i64)> =
        sqlx::query_as("select tenant_id, generation from reconcile_status").fetch_all(&mut *tx).await?;
    tx.commit().await?;
    let desired = Desired {
        topics: topics.into_iter().map(|(name, tenant, partitions)| (name, (tenant, partitions as i32))).collect(),
        principals: principals.into_iter().map(|(cn, tenant)| (format!("User:{cn}"), tenant)).collect(),
        delete_unwanted_topics,
    };
    Ok((desired, generations.into_iter().collect()))
}

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    pub actions: usize,
    pub failed: usize,
    /// Tenants changed by this pass, to be confirmed by the next one.
    pub unconfirmed: usize,
    pub transient_failure: bool,
}

/// One reconcile pass. Fails only when the cluster could not even be read.
pub async fn pass(state: &AppState, cluster: &Cluster) -> anyhow::Result<PassReport> {
    let kafka = &state.config.kafka;
    let (desired, generations) = desired(&state.db, kafka.delete_topics_on_deactivate).await?;
    let actual = match cluster.actual().await {
        Ok(actual) => actual,
        Err(e) => {
            record_unreachable(&state.db, &e).await?;
            anyhow::bail!("reading the cluster: {e}");
        }
    };
    let actions = plan::plan(&desired, &actual);
    let failures = cluster.apply_all(&actions).await;
    for (tenant, e) in &failures {
        tracing::warn!(tenant, error = %e, "reconcile failed for tenant");
    }
    if !actions.is_empty() {
        tracing::debug!(?actions, "applied");
    }
    // A tenant is confirmed only by a pass that finds nothing to do for it: the broker answers
    // CreateTopics/CreateAcls before every node's metadata shows the change, so a tenant acted
    // on now stays pending until the next pass (run at once) reads its state back.
    let acted: BTreeSet<i64> = actions.iter().map(|a| a.tenant()).collect();
    let waiting: Vec<(i64,)> =
        sqlx::query_as("select tenant_id from reconcile_status where status != 'ready'").fetch_all(&state.db).await?;
    let mut touched: BTreeSet<i64> = desired.topics.values().map(|(t, _)| *t).collect();
    touched.extend(&acted);
    touched.extend(waiting.into_iter().map(|(t,)| t));
    let confirmed: BTreeSet<i64> = touched.difference(&acted).copied().collect();
    record(&state.db, &touched, &confirmed, &generations, &failures).await?;
    Ok(PassReport {
        actions: actions.len(),
        failed: failures.len(),
        unconfirmed: acted.iter().filter(|t| !failures.contains_key(t)).count(),
        transient_failure: failures.values().any(|e| e.transient),
    })
}

async fn record(
    db: &SqlitePool,
    tenants: &BTreeSet<i64>,
    confirmed: &BTreeSet<i64>,
    generations: &BTreeMap<i64, i64>,
    failures: &BTreeMap<i64, ClusterError>,
) -> sqlx::Result<()> {
    let now = now();
    let mut tx = db.begin().await?;
    for tenant in tenants {
        let generation = generations.get(tenant).copied().unwrap_or(0);
        match failures.get(tenant) {
            None if !confirmed.contains(tenant) => {}
            None => {
                sqlx::query(
                    "insert into reconcile_status (tenant_id, status, last_error, last_success_at, generation, updated_at) \
                     select ?1, 'ready', null, ?2, ?3, ?2 where exists (select 1 from tenants where id = ?1) \
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
                    "update reconcile_status set last_error = ?, updated_at = ?, \
                     status = case when generation = ? then ? else 'pending' end where tenant_id = ?",
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
    tx.commit().await
}

/// The cluster cannot be read: every tenant still waiting gets the reason.
async fn record_unreachable(db: &SqlitePool, e: &ClusterError) -> sqlx::Result<()> {
    sqlx::query("update reconcile_status set last_error = ?, updated_at = ? where status != 'ready'")
        .bind(format!("cluster unreachable: {e}"))
        .bind(now())
        .execute(db)
        .await?;
    Ok(())
}

/// Runs passes until cancelled: after every desired-state change, every `interval`, and with a
/// short backoff while the cluster is unreachable.
pub async fn run(state: AppState, cluster: Arc<Cluster>, cancel: CancellationToken) {
    let interval = Duration::from_secs(state.config.kafka.reconcile_interval_secs);
    let mut backoff = MIN_BACKOFF;
    loop {
        let started = Instant::now();
        let wait = match pass(&state, &cluster).await {
            Ok(report) => {
                state.metrics.reconcile_passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if report.actions > 0 {
                    tracing::info!(actions = report.actions, failed = report.failed, elapsed = ?started.elapsed(), "reconcile pass");
                }
                if report.transient_failure {
                    next_backoff(&mut backoff)
                } else if report.unconfirmed > 0 {
                    reset(&mut backoff, CONFIRM_DELAY)
                } else {
                    reset(&mut backoff, interval)
                }
            }
            Err(e) => {
                state.metrics.reconcile_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(error = %format!("{e:#}"), "reconcile pass failed; retrying");
                next_backoff(&mut backoff)
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = state.reconcile.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!("reconciler stopped");
}

fn next_backoff(backoff: &mut Duration) -> Duration {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    wait
}

fn reset(backoff: &mut Duration, interval: Duration) -> Duration {
    *backoff = MIN_BACKOFF;
    interval
}
