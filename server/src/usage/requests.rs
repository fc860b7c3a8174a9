//! Who reads from where, KIP-388 style, from what stock Kafka has: an operator turns on the
//! broker's request log (`kafka.request.logger` at DEBUG, changed at runtime through
//! IncrementalAlterConfigs on the broker's loggers) for a bounded time; the broker's agent reads
//! the lines ("Completed request:{json}") and reports them counted by principal, client address
//! and API; the `usage` lease holder turns the logger back when the time is up.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::rfc3339;
use crate::config::KafkaConfig;
use crate::error::{Error, Result};
use crate::firewall::brokers::BrokerId;
use crate::kafka::loggers::REQUEST_LOGGER;
use crate::kafka::quota::QuotaClient;
use crate::store::Store;
use crate::store::request_log::{self as stored, CountRow, WindowRow};

/// Bounds of a window, in seconds.
pub const MIN_SECS: i64 = 10;
pub const MAX_SECS: i64 = 3600;

/// Starts a window.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestLogStart {
    /// The broker's Kafka `node.id` (the agent's broker id names the host, Kafka its node).
    #[schema(example = 1)]
    pub node_id: i64,
    /// How long the request log stays on, 10–3600 seconds.
    #[schema(example = 600)]
    pub for_secs: i64,
}

/// One window of a broker.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestLogWindow {
    #[schema(example = "kafka-1")]
    pub broker_id: String,
    pub node_id: i64,
    pub started_at: String,
    pub until: String,
    /// When the broker's logger was turned back; null while the window is open.
    pub ended_at: Option<String>,
}

/// One principal from one address, and its requests by API.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestLogClient {
    #[schema(example = "User:c83.1")]
    pub principal: String,
    #[schema(example = "198.51.100.10")]
    pub client_address: String,
    pub requests: i64,
    /// Requests per API, e.g. `{"Fetch": 120, "Metadata": 2}`.
    pub apis: BTreeMap<String, i64>,
}

/// A broker's newest window and what it counted, most requests first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestLogView {
    pub window: Option<RequestLogWindow>,
    pub clients: Vec<RequestLogClient>,
}

/// What an agent counted in its broker's request log since its last report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestLogReport {
    /// Omitted: the token's broker; another one is refused (403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_id: Option<String>,
    pub counts: Vec<RequestLogCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestLogCount {
    pub principal: String,
    pub client_address: String,
    pub api: String,
    pub requests: i64,
}

/// Whether the report was added to a window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RequestLogOutcome {
    /// False when the broker has no window open (or ended within 5 minutes): nothing added.
    pub counted: bool,
}

/// Most counts one report may carry.
const MAX_COUNTS: usize = 10_000;

fn window_view(w: &WindowRow) -> RequestLogWindow {
    RequestLogWindow {
        broker_id: w.broker_id.clone(),
        node_id: w.node_id,
        started_at: rfc3339(w.started_at),
        until: rfc3339(w.until),
        ended_at: w.ended_at.map(rfc3339),
    }
}

/// The newest window of `broker` and its summary.
pub async fn view(store: &Store, broker: &BrokerId) -> Result<RequestLogView> {
    let Some(window) = stored::latest(store, broker.as_str()).await? else {
        return Ok(RequestLogView { window: None, clients: Vec::new() });
    };
    let mut clients: BTreeMap<(String, String), RequestLogClient> = BTreeMap::new();
    for row in stored::counts(store, window.id).await? {
        let client =
            clients.entry((row.principal.clone(), row.client_address.clone())).or_insert_with(|| RequestLogClient {
                principal: row.principal.clone(),
                client_address: row.client_address.clone(),
                requests: 0,
                apis: BTreeMap::new(),
            });
        client.requests += row.requests;
        *client.apis.entry(row.api).or_default() += row.requests;
    }
    let mut clients: Vec<RequestLogClient> = clients.into_values().collect();
    clients.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.principal.cmp(&b.principal)));
    Ok(RequestLogView { window: Some(window_view(&window)), clients })
}

/// Runs `f` with a protocol client for the cluster on a blocking thread; 503 for no Kafka or a
/// broker that refused or could not be reached.
async fn with_kafka<T: Send + 'static>(
    kafka: &KafkaConfig,
    f: impl FnOnce(&QuotaClient) -> anyhow::Result<T> + Send + 'static,
) -> Result<T> {
    if kafka.bootstrap.is_none() {
        return Err(Error::Unavailable("kafka.bootstrap is not set: no broker to change".into()));
    }
    let kafka = kafka.clone();
    tokio::task::spawn_blocking(move || f(&QuotaClient::new(&kafka, "outflow-request-log")?))
        .await
        .map_err(|e| Error::Internal(e.into()))?
        .map_err(|e| Error::Unavailable(format!("{e:#}")))
}

/// Sets broker `node`'s request logger back to what it was before `window`.
async fn turn_back(kafka: &KafkaConfig, window: &WindowRow) -> Result<()> {
    let (node, level) = (window.node_id as i32, window.previous_level.clone());
    with_kafka(kafka, move |c| c.set_logger(node, REQUEST_LOGGER, level.as_deref())).await
}

/// Opens a window on `broker` and turns its request log on; 409 while one is open.
pub async fn start(
    store: &Store,
    kafka: &KafkaConfig,
    broker: &BrokerId,
    input: &RequestLogStart,
) -> Result<RequestLogView> {
    if !(0..=i64::from(i32::MAX)).contains(&input.node_id) {
        return Err(Error::invalid("node_id", "node_id must be a Kafka node id (0 or more)"));
    }
    if !(MIN_SECS..=MAX_SECS).contains(&input.for_secs) {
        return Err(Error::invalid("for_secs", format!("for_secs must be between {MIN_SECS} and {MAX_SECS}")));
    }
    let node = input.node_id as i32;
    let previous = with_kafka(kafka, move |c| c.logger_level(node, REQUEST_LOGGER)).await?;
    let now = crate::clock::now();
    let until = now + input.for_secs;
    let window = match stored::open(store, broker.as_str(), input.node_id, now, until, previous.as_deref()).await? {
        Ok(window) => window,
        Err(open) => {
            return Err(Error::Conflict(format!(
                "the request log of {} is on until {}; stop it first",
                open.broker_id,
                rfc3339(open.until)
            )));
        }
    };
    if let Err(e) = with_kafka(kafka, move |c| c.set_logger(node, REQUEST_LOGGER, Some("DEBUG"))).await {
        stored::end(store, window.id, crate::clock::now()).await?;
        return Err(e);
    }
    view(store, broker).await
}

/// Turns `broker`'s request log back to its level before and ends its window; 404 when none is
/// open.
pub async fn stop(store: &Store, kafka: &KafkaConfig, broker: &BrokerId) -> Result<RequestLogView> {
    let window = stored::latest(store, broker.as_str()).await?.filter(|w| w.ended_at.is_none());
    let Some(window) = window else {
        return Err(Error::NotFound(format!("no request log is on for {}", broker.as_str())));
    };
    turn_back(kafka, &window).await?;
    stored::end(store, window.id, crate::clock::now()).await?;
    view(store, broker).await
}

/// Turns back every window whose time is up (the `usage` lease holder's round); a broker that
/// cannot be reached is tried again next round, its window left open.
pub async fn end_expired(store: &Store, config: &Arc<crate::config::Config>) -> Result<()> {
    for window in stored::expired(store, crate::clock::now()).await? {
        match turn_back(&config.kafka, &window).await {
            Ok(()) => {
                stored::end(store, window.id, crate::clock::now()).await?;
                tracing::info!(broker = window.broker_id, node = window.node_id, "request log turned off");
            }
            Err(e) => tracing::warn!(broker = window.broker_id, error = %e, "could not turn the request log off"),
        }
    }
    Ok(())
}

/// Validates and records an agent's counts for `broker`.
pub async fn record(store: &Store, broker: &BrokerId, report: &RequestLogReport) -> Result<RequestLogOutcome> {
    if report.counts.len() > MAX_COUNTS {
        return Err(Error::invalid("counts", format!("at most {MAX_COUNTS} counts per report")));
    }
    let mut rows = Vec::with_capacity(report.counts.len());
    for c in &report.counts {
        for (field, text) in [("principal", &c.principal), ("client_address", &c.client_address), ("api", &c.api)] {
            if text.is_empty() || text.len() > 256 || text.chars().any(char::is_control) {
                return Err(Error::invalid("counts", format!("{field} must be 1-256 printable characters")));
            }
        }
        if c.requests < 1 {
            return Err(Error::invalid("counts", "requests must be at least 1"));
        }
        rows.push(CountRow {
            principal: c.principal.clone(),
            client_address: c.client_address.clone(),
            api: c.api.clone(),
            requests: c.requests,
        });
    }
    let counted = stored::add(store, broker.as_str(), crate::clock::now(), &rows).await?;
    Ok(RequestLogOutcome { counted })
}

/// Names of the APIs consumers and producers use; others by number.
fn api_name(key: i64) -> String {
    let name = match key {
        0 => "Produce",
        1 => "Fetch",
        2 => "ListOffsets",
        3 => "Metadata",
        8 => "OffsetCommit",
        9 => "OffsetFetch",
        10 => "FindCoordinator",
        11 => "JoinGroup",
        12 => "Heartbeat",
        13 => "LeaveGroup",
        14 => "SyncGroup",
        15 => "DescribeGroups",
        16 => "ListGroups",
        17 => "SaslHandshake",
        18 => "ApiVersions",
        22 => "InitProducerId",
        24 => "AddPartitionsToTxn",
        25 => "AddOffsetsToTxn",
        26 => "EndTxn",
        28 => "TxnOffsetCommit",
        19 => "CreateTopics",
        29 => "DescribeAcls",
        30 => "CreateAcls",
        31 => "DeleteAcls",
        32 => "DescribeConfigs",
        37 => "CreatePartitions",
        44 => "IncrementalAlterConfigs",
        48 => "DescribeClientQuotas",
        49 => "AlterClientQuotas",
        60 => "DescribeCluster",
        63 => "BrokerHeartbeat",
        _ => return format!("api {key}"),
    };
    name.to_owned()
}

/// The principal, client address and API of one request-log line, if it is one.
pub fn parse_line(line: &str) -> Option<(String, String, String)> {
    let (_, rest) = line.split_once("Completed request:")?;
    let value: serde_json::Value = serde_json::Deserializer::from_str(rest).into_iter().next()?.ok()?;
    let principal = value["principal"].as_str()?.to_owned();
    // "local-host:port-remote-host:port-index": hosts hold no '-', IPv6 ones hold ':'.
    let mut parts = value["connection"].as_str()?.rsplitn(3, '-');
    let (_index, remote) = (parts.next()?, parts.next()?);
    let (client, _port) = remote.rsplit_once(':')?;
    let api = api_name(value["requestHeader"]["requestApiKey"].as_i64()?);
    Some((principal, client.to_owned(), api))
}

#[cfg(test)]
mod tests {
    use super::parse_line;

    #[test]
    fn request_log_lines_name_principal_address_and_api() {
        let line = r#"[2026-12-03 18:50:01,123] DEBUG Completed request:{"isForwarded":false,"requestHeader":{"requestApiKey":1,"requestApiVersion":16,"correlationId":42,"clientId":"rdkafka"},"request":{},"response":{},"connection":"127.0.0.1:9093-127.0.0.1:54812-3","totalTimeMs":500.1,"securityProtocol":"SSL","principal":"User:c83.1","listener":"PUBLIC","clientInformation":{"softwareName":"librdkafka","softwareVersion":"2.6.1"}} (kafka.request.logger)"#;
        assert_eq!(parse_line(line), Some(("User:c83.1".into(), "127.0.0.1".into(), "Fetch".into())));
        let v6 = line.replace("127.0.0.1:9093-127.0.0.1:54812-3", "0:0:0:0:0:0:0:1:9093-2001:db8:0:0:0:0:0:10:40000-0");
        assert_eq!(parse_line(&v6).unwrap().1, "2001:db8:0:0:0:0:0:10");
        assert_eq!(parse_line("[x] INFO started (kafka.server.KafkaServer)"), None);
        assert_eq!(parse_line("Completed request:{not json"), None);
    }
}
