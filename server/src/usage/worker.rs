//! The metering worker. On every replica it adds that process's own reads of tenant topics to
//! the open hour; on the replica holding the `usage` lease it also follows the tenants' groups'
//! committed offsets (records delivered) and closes each finished hour into its rows, once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{HOUR, OwnReads, hour_of};
use crate::config::Config;
use crate::kafka::progress::GroupProgress;
use crate::store::{Store, lease, usage as stored};

/// The lease whose holder closes hours and follows group offsets.
pub const LEASE: &str = "usage";

pub struct Meter {
    store: Store,
    config: Arc<Config>,
    own_reads: Arc<OwnReads>,
    progress: Option<Arc<Mutex<GroupProgress>>>,
}

/// The first hour still open at `now`: earlier ones are closed once `close_grace_secs` passed
/// after they ended, so reports sent just before the end of an hour are in it first.
pub fn close_before(now: i64, grace_secs: u64) -> i64 {
    hour_of(now - i64::try_from(grace_secs).unwrap_or(HOUR))
}

impl Meter {
    pub fn new(store: Store, config: Arc<Config>, own_reads: Arc<OwnReads>) -> anyhow::Result<Self> {
        let progress = match config.kafka.bootstrap {
            Some(_) => Some(Arc::new(Mutex::new(GroupProgress::new(&config.kafka)?))),
            None => None,
        };
        Ok(Self { store, config, own_reads, progress })
    }

    /// Runs until cancelled; every failure is logged and retried next interval.
    pub async fn run(self, holder: String, cancel: CancellationToken) {
        let interval = Duration::from_secs(self.config.usage.interval_secs.max(1));
        // Outlives a few missed renewals; a stopped holder releases it at once.
        let ttl_ms = (interval.as_millis() as i64 * 3).max(15_000);
        let mut leading = false;
        loop {
            if let Err(e) = self.own_reads.flush(&self.store).await {
                tracing::warn!(error = %e, "could not add outflow's own reads to usage; kept for the next try");
            }
            match lease::acquire(&self.store, LEASE, &holder, ttl_ms).await {
                Ok(Some(epoch)) => {
                    if !leading {
                        tracing::info!(holder, epoch, "took the usage lease");
                        leading = true;
                    }
                    self.lead(epoch).await;
                }
                Ok(None) => leading = false,
                Err(e) => {
                    tracing::warn!(error = %e, "could not renew the usage lease");
                    leading = false;
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
        if let Err(e) = self.own_reads.flush(&self.store).await {
            tracing::warn!(error = %e, "could not add outflow's own reads to usage at stop");
        }
        if leading && let Err(e) = lease::release(&self.store, LEASE, &holder).await {
            tracing::warn!(error = %e, "could not release the usage lease");
        }
    }

    /// One round of the lease holder's work.
    async fn lead(&self, epoch: i64) {
        if let Some(progress) = &self.progress {
            let progress = progress.clone();
            let seen = tokio::task::spawn_blocking(move || progress.lock().expect("group progress lock").read()).await;
            match seen {
                Ok(Ok(seen)) => {
                    let hour = hour_of(crate::clock::now());
                    if let Err(e) = stored::record_group_offsets(&self.store, LEASE, epoch, hour, &seen).await {
                        tracing::warn!(error = %e, "could not record the groups' committed offsets");
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = format!("{e:#}"), "could not read the groups' committed offsets"),
                Err(e) => tracing::warn!(error = %e, "the group offsets reader failed"),
            }
        }
        if let Err(e) = super::requests::end_expired(&self.store, &self.config).await {
            tracing::warn!(error = %e, "could not look for request logs to turn off");
        }
        let now = crate::clock::now();
        match stored::close_hours(&self.store, LEASE, epoch, close_before(now, self.config.usage.close_grace_secs), now)
            .await
        {
            Ok(Some(n)) if n > 0 => tracing::info!(rows = n, "usage hours closed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not close usage hours"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::close_before;

    #[test]
    fn an_hour_closes_after_its_grace() {
        let eleven = 1_699_999_200 + 3600;
        assert_eq!(close_before(eleven + 60, 120), eleven - 3600, "10:00 is still open at 11:01");
        assert_eq!(close_before(eleven + 120, 120), eleven, "and closes at 11:02");
    }
}
