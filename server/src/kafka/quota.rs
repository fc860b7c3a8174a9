//! Client quotas over the Kafka protocol itself: DescribeClientQuotas (key 48) and
//! AlterClientQuotas (key 49). librdkafka has no API for them (KIP-546 is not supported), so
//! this module speaks them with the `kafka-protocol` crate over a TLS connection made with the
//! same settings as outflow's admin client (internal listener, outflow's own certificate).
//!
//! Blocking on purpose, like `acl.rs`: the reconciler calls it from `spawn_blocking`. One
//! connection is kept and reopened after an error; any bootstrap broker will do, since brokers
//! forward quota changes to the controller and answer describes from their metadata.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Buf, BytesMut};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, DescribeClientQuotasRequest, RequestHeader, ResponseHeader, alter_client_quotas_request,
    describe_client_quotas_request,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslStream, SslVerifyMode};

use crate::config::KafkaConfig;

/// The quota keys outflow manages on tenant principals.
pub const CONSUMER_BYTE_RATE: &str = "consumer_byte_rate";
pub const REQUEST_PERCENTAGE: &str = "request_percentage";

/// Quota values of one user entity, by key.
pub type Values = BTreeMap<String, f64>;

/// One change of a user entity's quotas: keys to set and keys to remove.
#[derive(Debug, Clone, PartialEq)]
pub struct Alteration {
    /// The user name (`c83.1`, the principal without `User:`).
    pub user: String,
    pub set: Vec<(String, f64)>,
    pub remove: Vec<String>,
}

/// Why a call failed; `transient` when the connection or a timeout is to blame.
#[derive(Debug, Clone)]
pub struct QuotaError {
    pub transient: bool,
    pub message: String,
}

impl std::fmt::Display for QuotaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

fn transient(e: anyhow::Error) -> QuotaError {
    QuotaError { transient: true, message: format!("{e:#}") }
}

/// Kafka error codes worth retrying soon (request timed out, not controller, throttling…).
fn transient_code(code: i16) -> bool {
    matches!(code, 5 | 6 | 7 | 8 | 13 | 14 | 15 | 41 | 56 | 89)
}

/// Largest response accepted (a describe of every tenant's principals is well below this).
const MAX_RESPONSE: usize = 64 << 20;

pub struct QuotaClient {
    bootstrap: Vec<String>,
    connector: SslConnector,
    timeout: Duration,
    pub(super) client_id: String,
    connection: Mutex<Option<Connection>>,
    plain: bool,
}

pub(super) struct Connection {
    pub(super) stream: Stream,
    pub(super) correlation: i32,
}

pub(super) enum Stream {
    Tls(Box<SslStream<TcpStream>>),
    Plain(TcpStream),
}

impl Stream {
    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Stream::Tls(s) => s.as_mut(),
            Stream::Plain(s) => s,
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

impl QuotaClient {
    pub fn new(config: &KafkaConfig, client_id: &str) -> anyhow::Result<Self> {
        let bootstrap = config.bootstrap.as_deref().context("kafka.bootstrap is not set")?;
        let mut builder = SslConnector::builder(SslMethod::tls_client()).context("TLS client")?;
        if let Some(ca) = &config.ca {
            builder.set_ca_file(ca).with_context(|| format!("reading {}", ca.display()))?;
            builder.set_verify(SslVerifyMode::PEER);
        }
        if let (Some(cert), Some(key)) = (&config.cert, &config.key) {
            builder.set_certificate_chain_file(cert).with_context(|| format!("reading {}", cert.display()))?;
            builder
                .set_private_key_file(key, SslFiletype::PEM)
                .with_context(|| format!("reading {}", key.display()))?;
        }
        Ok(Self {
            bootstrap: bootstrap.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
            connector: builder.build(),
            timeout: Duration::from_millis(config.request_timeout_ms),
            client_id: client_id.to_owned(),
            connection: Mutex::new(None),
            // Without a CA the admin client speaks plaintext too (a development broker).
            plain: config.ca.is_none(),
        })
    }

    fn connect(&self) -> anyhow::Result<Connection> {
        let mut last = None;
        for server in &self.bootstrap {
            match self.connect_to(server) {
                Ok(stream) => return Ok(Connection { stream, correlation: 0 }),
                Err(e) => last = Some(e.context(format!("connecting to {server}"))),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no bootstrap server")))
    }

    pub(super) fn connect_to(&self, server: &str) -> anyhow::Result<Stream> {
        let (host, _) = server.rsplit_once(':').context("bootstrap server without a port")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let address = server.to_socket_addrs()?.next().context("address did not resolve")?;
        let tcp = TcpStream::connect_timeout(&address, self.timeout)?;
        tcp.set_read_timeout(Some(self.timeout))?;
        tcp.set_write_timeout(Some(self.timeout))?;
        tcp.set_nodelay(true)?;
        if self.plain {
            return Ok(Stream::Plain(tcp));
        }
        let tls = self.connector.connect(host, tcp).map_err(|e| anyhow::anyhow!("TLS handshake: {e}"))?;
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// Sends one request and reads its response, on the kept connection (opened when needed,
    /// dropped after any error so the next call starts afresh).
    pub(super) fn call<R: Request>(&self, version: i16, request: &R) -> anyhow::Result<R::Response> {
        let mut guard = self.connection.lock().expect("quota connection lock");
        if guard.is_none() {
            *guard = Some(self.connect()?);
        }
        let connection = guard.as_mut().expect("connected");
        let result = exchange(connection, &self.client_id, version, request);
        if result.is_err() {
            *guard = None;
        }
        result
    }

    /// Every user entity (user alone, not user + client id) with quotas, by user name.
    pub fn describe_users(&self) -> Result<BTreeMap<String, Values>, QuotaError> {
        let request = DescribeClientQuotasRequest::default()
            .with_components(vec![
                describe_client_quotas_request::ComponentData::default()
                    .with_entity_type(StrBytes::from_static_str("user"))
                    // 2 = any specified name; the match string must be null, not "" (error 42).
                    .with_match_type(2)
                    .with_match(None),
            ])
            .with_strict(true);
        let response = self.call(1, &request).map_err(transient)?;
        if response.error_code != 0 {
            return Err(QuotaError {
                transient: transient_code(response.error_code),
                message: format!(
                    "DescribeClientQuotas: error {}: {}",
                    response.error_code,
                    response.error_message.as_deref().unwrap_or("")
                ),
            });
        }
        let mut users = BTreeMap::new();
        for entry in response.entries.unwrap_or_default() {
            let [entity] = entry.entity.as_slice() else { continue };
            let (Some(name), "user") = (entity.entity_name.as_ref(), entity.entity_type.as_str()) else { continue };
            let values: Values = entry.values.iter().map(|v| (v.key.to_string(), v.value)).collect();
            users.insert(name.to_string(), values);
        }
        Ok(users)
    }

    /// Applies alterations in one request; per alteration, its error if the broker refused it.
    pub fn alter(&self, alterations: &[Alteration]) -> Result<Vec<Result<(), String>>, QuotaError> {
        let entries = alterations
            .iter()
            .map(|a| {
                let ops = a
                    .set
                    .iter()
                    .map(|(key, value)| op(key).with_value(*value))
                    .chain(a.remove.iter().map(|key| op(key).with_remove(true)))
                    .collect();
                alter_client_quotas_request::EntryData::default()
                    .with_entity(vec![
                        alter_client_quotas_request::EntityData::default()
                            .with_entity_type(StrBytes::from_static_str("user"))
                            .with_entity_name(Some(StrBytes::from_string(a.user.clone()))),
                    ])
                    .with_ops(ops)
            })
            .collect();
        let request = AlterClientQuotasRequest::default().with_entries(entries).with_validate_only(false);
        let response = self.call(1, &request).map_err(transient)?;
        // Answers carry their entity; match them back by user name.
        let mut outcome: BTreeMap<String, Result<(), String>> = BTreeMap::new();
        for entry in response.entries {
            let user = entry.entity.iter().find_map(|e| e.entity_name.as_ref().map(|n| n.to_string()));
            let result = if entry.error_code == 0 {
                Ok(())
            } else {
                Err(format!("error {}: {}", entry.error_code, entry.error_message.as_deref().unwrap_or("")))
            };
            if let Some(user) = user {
                outcome.insert(user, result);
            }
        }
        Ok(alterations
            .iter()
            .map(|a| outcome.remove(&a.user).unwrap_or_else(|| Err("no answer for this entity".into())))
            .collect())
    }
}

fn op(key: &str) -> alter_client_quotas_request::OpData {
    alter_client_quotas_request::OpData::default().with_key(StrBytes::from_string(key.to_owned()))
}

pub(super) fn exchange<R: Request>(
    connection: &mut Connection,
    client_id: &str,
    version: i16,
    request: &R,
) -> anyhow::Result<R::Response> {
    connection.correlation = connection.correlation.wrapping_add(1);
    let correlation = connection.correlation;
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_string(client_id.to_owned())));
    let mut body = BytesMut::new();
    header.encode(&mut body, R::header_version(version))?;
    request.encode(&mut body, version)?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&(body.len() as i32).to_be_bytes());
    frame.extend_from_slice(&body);
    let io = connection.stream.io();
    io.write_all(&frame).context("sending the request")?;
    io.flush()?;
    let mut size = [0u8; 4];
    io.read_exact(&mut size).context("reading the response size")?;
    let size = i32::from_be_bytes(size);
    if size < 0 || size as usize > MAX_RESPONSE {
        bail!("response of {size} bytes refused");
    }
    let mut response = vec![0u8; size as usize];
    io.read_exact(&mut response).context("reading the response")?;
    let mut buf = bytes::Bytes::from(response);
    let header = ResponseHeader::decode(&mut buf, R::Response::header_version(version))?;
    if header.correlation_id != correlation {
        bail!("response {} to request {correlation}", header.correlation_id);
    }
    let decoded = R::Response::decode(&mut buf, version)?;
    if buf.has_remaining() {
        tracing::debug!(left = buf.remaining(), "quota response had bytes left over");
    }
    Ok(decoded)
}
