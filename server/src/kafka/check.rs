//! Connectivity self-test: connect to the public listener with the tenant's own current
//! credential and read the metadata of `c<N>`, exactly what a customer's consumer does first.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppState;
use crate::error::{Error, Result};
use crate::pki::credentials;
use crate::tenants::{TenantId, streaming};

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

pub async fn run(state: &AppState, tenant: TenantId) -> Result<CheckResult> {
    streaming::require_active(state, tenant).await?;
    let secrets = credentials::newest_active(state, tenant)
        .await?
        .ok_or_else(|| Error::Conflict(format!("tenant {tenant} has no active credential to test with")))?;
    let brokers = state.config.brokers.clone();
    let topic = tenant.topic();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers.join(","))
        .set("security.protocol", "ssl")
        .set("ssl.ca.pem", &state.ca.cert_pem)
        .set("ssl.certificate.pem", &secrets.row.cert_pem)
        .set("ssl.key.pem", secrets.key.pair.serialize_pem())
        .set("group.id", format!("{}check", tenant.group_prefix()))
        .set("client.id", format!("outflow-check-{}", secrets.row.cn))
        .set("socket.timeout.ms", CHECK_TIMEOUT.as_millis().to_string())
        .set("reconnect.backoff.max.ms", "1000");
    let credential = secrets.row.cn.clone();
    let recorder = Recorder::default();
    let started = Instant::now();
    let (outcome, detail, partitions) = tokio::task::spawn_blocking({
        let topic = topic.clone();
        let recorder = recorder.clone();
        move || probe(config, recorder, &topic)
    })
    .await
    .map_err(|e| anyhow::anyhow!("check task: {e}"))?;
    let detail = match (outcome, recorder.0.lock().expect("recorder lock").take()) {
        (CheckOutcome::Ok, _) | (_, None) => detail,
        (_, Some(reported)) => format!("{detail} ({reported})"),
    };
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
