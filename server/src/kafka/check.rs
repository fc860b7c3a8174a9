//! Connectivity self-test: connect to the public listener with the tenant's own current
//! credential and read the metadata of `c<N>`, exactly what a customer's consumer does first.
//! Each check holds a librdkafka client (several threads) for up to `CHECK_TIMEOUT`, so a
//! [`CheckLimiter`] admits one at a time per tenant and a configured number in all.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{Error, Result};
use crate::pki::Issuer;
use crate::store::Store;
use crate::tenants::{TenantId, credentials, streaming};

const CHECK_TIMEOUT: Duration = Duration::from_secs(8);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    /// TLS handshake, authentication and topic metadata all worked.
    Ok,
    /// Connected, but the broker refused the credential or the topic.
    Denied,
    /// No broker answered (network, firewall, TLS handshake).
    Unreachable,
}

impl CheckOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Denied => "denied",
            Self::Unreachable => "unreachable",
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CheckResult {
    pub outcome: CheckOutcome,
    /// What happened, in words.
    pub detail: String,
    /// Credential used, e.g. `c83.2`.
    pub credential: String,
    pub brokers: Vec<String>,
    pub topic: String,
    /// Partitions seen in the metadata (when ok).
    pub partitions: Option<usize>,
    pub elapsed_ms: u64,
}

/// Remembers librdkafka's last error report (e.g. "SSL handshake failed"), for the detail text.
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Option<String>>>);

impl ClientContext for Recorder {
    fn log(&self, _level: RDKafkaLogLevel, _fac: &str, _log_message: &str) {}

    fn error(&self, error: KafkaError, reason: &str) {
        *self.0.lock().expect("recorder lock") = Some(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for Recorder {}

/// Admission control for checks: one running per tenant and `global` in all. Excess checks are
/// refused at once (429), not queued: a queue would hold the same requests open for longer.
#[derive(Debug)]
pub struct CheckLimiter {
    global: usize,
    running: Mutex<HashSet<TenantId>>,
}

/// The slot of a running check; dropping it frees the slot.
#[derive(Debug)]
pub struct CheckSlot {
    limiter: Arc<CheckLimiter>,
    tenant: TenantId,
}

impl CheckLimiter {
    /// A limiter admitting `global` checks at once (at least one).
    pub fn new(global: usize) -> Arc<Self> {
        Arc::new(Self { global: global.max(1), running: Mutex::default() })
    }

    /// Takes the tenant's slot, or refuses when the tenant already runs a check or `global`
    /// checks are running.
    pub fn try_acquire(self: &Arc<Self>, tenant: TenantId) -> Result<CheckSlot> {
        let mut running = self.running.lock().expect("check limiter lock");
        if running.contains(&tenant) {
            return Err(Error::TooManyRequests(format!(
                "a connectivity check of tenant {tenant} is already running; try again when it has finished"
            )));
        }
        if running.len() >= self.global {
            return Err(Error::TooManyRequests(
                "too many connectivity checks are running; try again in a few seconds".into(),
            ));
        }
        running.insert(tenant);
        Ok(CheckSlot { limiter: self.clone(), tenant })
    }

    /// Checks running now.
    pub fn running(&self) -> usize {
        self.running.lock().expect("check limiter lock").len()
    }
}

impl Drop for CheckSlot {
    fn drop(&mut self) {
        self.limiter.running.lock().expect("check limiter lock").remove(&self.tenant);
    }
}

/// Runs `work` on the blocking pool with `slot` moved into it: the slot frees when the work
/// ends, not when the request is dropped (librdkafka's wait cannot be interrupted, so freeing
/// it earlier would let a client that disconnects and retries pile up threads again).
async fn holding<T: Send + 'static>(slot: CheckSlot, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await
    .map_err(|e| anyhow::anyhow!("check task: {e}").into())
}

/// Connects to the published `brokers` as the tenant's newest credential would.
pub async fn run(
    store: &Store,
    issuer: &Issuer,
    checks: &Arc<CheckLimiter>,
    brokers: &[String],
    tenant: TenantId,
) -> Result<CheckResult> {
    // First, so a refused check costs nothing.
    let slot = checks.try_acquire(tenant)?;
    streaming::require_active(store, tenant).await?;
    let secrets = credentials::newest_active(store, issuer, tenant)
        .await?
        .ok_or_else(|| Error::Conflict(format!("tenant {tenant} has no active credential to test with")))?;
    let brokers = brokers.to_vec();
    let topic = tenant.topic();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers.join(","))
        .set("security.protocol", "ssl")
        .set("ssl.ca.pem", &issuer.ca.cert_pem)
        .set("ssl.certificate.pem", &secrets.row.cert_pem)
        .set("ssl.key.pem", secrets.key.pair.serialize_pem())
        .set("group.id", format!("{}check", tenant.group_prefix()))
        .set("client.id", format!("outflow-check-{}", secrets.row.cn))
        .set("socket.timeout.ms", CHECK_TIMEOUT.as_millis().to_string())
        .set("reconnect.backoff.max.ms", "1000");
    let credential = secrets.row.cn.clone();
    let recorder = Recorder::default();
    let started = Instant::now();
    let (outcome, detail, partitions) = holding(slot, {
        let topic = topic.clone();
        let recorder = recorder.clone();
        move || probe(config, recorder, &topic)
    })
    .await?;
    let detail = match (outcome, recorder.0.lock().expect("recorder lock").take()) {
        (CheckOutcome::Ok, _) | (_, None) => detail,
        (_, Some(reported)) => format!("{detail} ({reported})"),
    };
    crate::store::audit::stage_read(store, Some(tenant.get()), &format!("{outcome:?} with {credential}")).await?;
    Ok(CheckResult {
        outcome,
        detail,
        credential,
        brokers,
        topic,
        partitions,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

fn probe(config: ClientConfig, recorder: Recorder, topic: &str) -> (CheckOutcome, String, Option<usize>) {
    let consumer: BaseConsumer<Recorder> = match config.create_with_context(recorder) {
        Ok(c) => c,
        Err(e) => return (CheckOutcome::Unreachable, format!("cannot create a client: {e}"), None),
    };
    match consumer.fetch_metadata(Some(topic), CHECK_TIMEOUT) {
        Ok(metadata) => match metadata.topics().iter().find(|t| t.name() == topic) {
            Some(t) => match t.error() {
                None => (
                    CheckOutcome::Ok,
                    format!("read metadata of {topic}: {} partitions", t.partitions().len()),
                    Some(t.partitions().len()),
                ),
                Some(err) => {
                    let code = RDKafkaErrorCode::from(err);
                    let detail = match code {
                        RDKafkaErrorCode::TopicAuthorizationFailed => {
                            format!(
                                "the broker refused this credential access to {topic} (revoked, expired, or not provisioned yet)"
                            )
                        }
                        RDKafkaErrorCode::UnknownTopicOrPartition => {
                            format!("topic {topic} does not exist on the cluster yet")
                        }
                        other => format!("metadata error for {topic}: {other}"),
                    };
                    (CheckOutcome::Denied, detail, None)
                }
            },
            None => (CheckOutcome::Denied, format!("topic {topic} missing from the metadata"), None),
        },
        Err(e) => {
            let code = e.rdkafka_error_code();
            let outcome = match code {
                Some(RDKafkaErrorCode::Authentication) | Some(RDKafkaErrorCode::TopicAuthorizationFailed) => {
                    CheckOutcome::Denied
                }
                _ => CheckOutcome::Unreachable,
            };
            (outcome, format!("no metadata from {}: {e}", "the brokers"), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: i64) -> TenantId {
        TenantId::parse(id).unwrap()
    }

    fn refused(result: Result<CheckSlot>) -> String {
        match result {
            Err(Error::TooManyRequests(message)) => message,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn one_check_per_tenant() {
        let limiter = CheckLimiter::new(4);
        let first = limiter.try_acquire(tenant(83)).unwrap();
        assert!(refused(limiter.try_acquire(tenant(83))).contains("tenant 83 is already running"));
        let other = limiter.try_acquire(tenant(84)).unwrap();
        assert_eq!(limiter.running(), 2);
        drop(first);
        let again = limiter.try_acquire(tenant(83)).unwrap();
        drop((again, other));
        assert_eq!(limiter.running(), 0);
    }

    #[test]
    fn a_global_cap_across_tenants() {
        let limiter = CheckLimiter::new(2);
        let a = limiter.try_acquire(tenant(1)).unwrap();
        let _b = limiter.try_acquire(tenant(2)).unwrap();
        assert!(refused(limiter.try_acquire(tenant(3))).contains("too many connectivity checks"));
        drop(a);
        let _c = limiter.try_acquire(tenant(3)).unwrap();
        assert!(CheckLimiter::new(0).try_acquire(tenant(1)).is_ok(), "a cap of 0 still admits one");
    }

    #[tokio::test]
    async fn a_dropped_request_keeps_the_slot_until_the_blocking_work_ends() {
        let limiter = CheckLimiter::new(4);
        let slot = limiter.try_acquire(tenant(83)).unwrap();
        let (started_tx, started) = std::sync::mpsc::channel();
        let (finish, finish_rx) = std::sync::mpsc::channel::<()>();
        let request = tokio::spawn(holding(slot, move || {
            started_tx.send(()).unwrap();
            let _ = finish_rx.recv();
        }));
        tokio::task::spawn_blocking(move || started.recv().unwrap()).await.unwrap();
        // The request goes away (client gone, shutdown): the probe runs on.
        request.abort();
        assert!(request.await.unwrap_err().is_cancelled());
        assert!(refused(limiter.try_acquire(tenant(83))).contains("already running"));
        finish.send(()).unwrap();
        let freed = async {
            while limiter.running() > 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(30), freed).await.expect("the slot is freed");
        assert!(limiter.try_acquire(tenant(83)).is_ok(), "freed once the work ended");
    }
}
