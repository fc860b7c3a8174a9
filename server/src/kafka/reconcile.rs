//! The reconciler loop: read desired (database), read actual (cluster), plan, apply, record
//! each tenant's status. Runs at start, whenever the desired state changes (a notification),
//! and periodically; retries with a short backoff while the cluster is unreachable.
//!
//! Status rows carry a generation that every desired-state change bumps, so a pass that read
//! an older desired state never marks a newer change as applied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::admin::Cluster;
use super::plan::{self, Desired};
use crate::config::KafkaConfig;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::store::lease;
use crate::store::reconcile::{self, Failure};
use crate::tenants::quota::Quota;

pub use crate::store::reconcile::{StatusRow, status_of, statuses};

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Wait before the pass that confirms what the previous one changed.
const CONFIRM_DELAY: Duration = Duration::from_millis(100);

/// What one pass did.
#[derive(Debug, Default)]
pub struct PassReport {
    pub actions: usize,
    pub failed: usize,
    /// Tenants changed by this pass, to be confirmed by the next one.
    pub unconfirmed: usize,
    pub transient_failure: bool,
}

/// Reads the desired state from the store.
async fn desired(store: &Store, delete_unwanted_topics: bool) -> Result<(Desired, BTreeMap<i64, i64>)> {
    let rows = reconcile::desired(store).await?;
    let own: BTreeMap<i64, Quota> = rows.quotas.into_iter().collect();
    // Effective values for every tenant with a principal: its own, each unset one the default's.
    let quotas = rows
        .principals
        .iter()
        .map(|(_, tenant)| *tenant)
        .collect::<BTreeSet<i64>>()
        .into_iter()
        .map(|tenant| (tenant, own.get(&tenant).copied().unwrap_or_default().over(rows.default_quota)))
        .filter(|(_, q)| !q.is_empty())
        .map(|(tenant, q)| (tenant, plan::quota_values(&q)))
        .collect();
    let desired = Desired {
        topics: rows.topics.into_iter().map(|(name, tenant, partitions)| (name, (tenant, partitions as i32))).collect(),
        principals: rows.principals.into_iter().map(|(cn, tenant)| (format!("User:{cn}"), tenant)).collect(),
        quotas,
        delete_unwanted_topics,
    };
    Ok((desired, rows.generations))
}

/// One reconcile pass. Fails only when the cluster could not even be read. With `epoch`, the
/// status writes are fenced by the reconciler lease: a pass that lost the lease records nothing.
pub async fn pass(
    store: &Store,
    cluster: &Cluster,
    delete_unwanted_topics: bool,
    epoch: Option<i64>,
) -> anyhow::Result<PassReport> {
    let (desired, generations) = desired(store, delete_unwanted_topics).await?;
    let actual = match cluster.actual().await {
        Ok(actual) => actual,
        Err(e) => {
            reconcile::record_unreachable(store, &format!("cluster unreachable: {e}"), epoch).await?;
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
    let mut touched: BTreeSet<i64> = desired.topics.values().map(|(t, _)| *t).collect();
    touched.extend(&acted);
    touched.extend(reconcile::waiting(store).await?);
    let confirmed: BTreeSet<i64> = touched.difference(&acted).copied().collect();
    let recorded: BTreeMap<i64, Failure> =
        failures.iter().map(|(t, e)| (*t, Failure { transient: e.transient, message: e.message.clone() })).collect();
    reconcile::record(store, &touched, &confirmed, &generations, &recorded, epoch).await?;
    Ok(PassReport {
        actions: actions.len(),
        failed: failures.len(),
        unconfirmed: acted.iter().filter(|t| !failures.contains_key(t)).count(),
        transient_failure: failures.values().any(|e| e.transient),
    })
}

/// Runs passes until cancelled: after every desired-state change, every `interval`, and with a
/// short backoff while the cluster is unreachable.
/// Only the replica holding this lease reconciles.
pub const LEASE: &str = crate::store::RECONCILER_LEASE;
/// How long a lease lasts unless renewed, and how often the holder renews it.
pub const LEASE_TTL: Duration = Duration::from_secs(15);
pub const LEASE_RENEW: Duration = Duration::from_secs(5);

/// Runs passes until cancelled while this replica (`holder`) holds the reconciler lease: after
/// every desired-state change, every `interval`, and with a short backoff while the cluster is
/// unreachable. Replicas without the lease try to take it every few seconds.
pub async fn run(
    store: Store,
    cluster: Arc<Cluster>,
    config: &KafkaConfig,
    metrics: Arc<Metrics>,
    holder: String,
    cancel: CancellationToken,
) {
    let interval = Duration::from_secs(config.reconcile_interval_secs);
    let delete_unwanted_topics = config.delete_topics_on_deactivate;
    let mut backoff = MIN_BACKOFF;
    let mut leading: Option<(i64, Instant)> = None;
    loop {
        let started = Instant::now();
        if leading.is_none_or(|(_, renewed)| renewed.elapsed() >= LEASE_RENEW) {
            let ttl = LEASE_TTL.as_millis() as i64;
            leading = match lease::acquire(&store, LEASE, &holder, ttl).await {
                Ok(Some(epoch)) => {
                    if leading.is_none_or(|(e, _)| e != epoch) {
                        tracing::info!(epoch, holder, "took the reconciler lease");
                    }
                    Some((epoch, Instant::now()))
                }
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "could not renew the reconciler lease");
                    None
                }
            };
        }
        let Some((epoch, _)) = leading else {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(LEASE_RENEW) => continue,
            }
        };
        let wait = match pass(&store, &cluster, delete_unwanted_topics, Some(epoch)).await {
            Ok(report) => {
                metrics.reconcile_passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
                metrics.reconcile_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(error = %format!("{e:#}"), "reconcile pass failed; retrying");
                next_backoff(&mut backoff)
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = store.signals().desired_notified() => {}
            // Woken in time to renew the lease.
            _ = tokio::time::sleep(wait.min(LEASE_RENEW)) => {}
        }
    }
    if leading.is_some()
        && let Err(e) = lease::release(&store, LEASE, &holder).await
    {
        tracing::warn!(error = %e, "could not release the reconciler lease");
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
