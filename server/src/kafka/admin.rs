//! outflow's admin connection to the cluster (internal listener, its own mTLS identity): reads
//! the actual state and applies planned actions. Every mutating call is counted, so tests and
//! `/metrics` can see that a pass with nothing to change changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::acl::{self, AclBinding, AclError};
use super::plan::{Action, Actual, principal_tenant, topic_tenant};
use super::quota::{Alteration, QuotaClient, QuotaError};
use crate::config::KafkaConfig;

/// Why an action or a read failed, and whether waiting may fix it.
#[derive(Debug, Clone)]
pub struct ClusterError {
    /// Connectivity or timeouts: retried with backoff, tenant stays `pending`.
    pub transient: bool,
    pub message: String,
}

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<KafkaError> for ClusterError {
    fn from(e: KafkaError) -> Self {
        let transient = match e.rdkafka_error_code() {
            Some(code) => matches!(
                code,
                RDKafkaErrorCode::BrokerTransportFailure
                    | RDKafkaErrorCode::AllBrokersDown
                    | RDKafkaErrorCode::OperationTimedOut
                    | RDKafkaErrorCode::RequestTimedOut
                    | RDKafkaErrorCode::BrokerNotAvailable
                    | RDKafkaErrorCode::NotController
                    | RDKafkaErrorCode::LeaderNotAvailable
                    | RDKafkaErrorCode::NetworkException
                    | RDKafkaErrorCode::Resolve
            ),
            None => true,
        };
        Self { transient, message: e.to_string() }
    }
}

impl From<AclError> for ClusterError {
    fn from(e: AclError) -> Self {
        let transient = match &e {
            AclError::Timeout(_) => true,
            AclError::Invalid(_) => false,
            // Broker-side refusals carry no structured code here; timeouts and transport errors
            // mention themselves, anything else is a real refusal.
            AclError::Kafka { message, .. } => {
                let m = message.to_ascii_lowercase();
                m.contains("timed out")
                    || m.contains("transport")
                    || m.contains("brokers are down")
                    || m.contains("not available")
            }
        };
        Self { transient, message: e.to_string() }
    }
}

impl From<QuotaError> for ClusterError {
    fn from(e: QuotaError) -> Self {
        Self { transient: e.transient, message: e.message }
    }
}

fn task_error(e: tokio::task::JoinError) -> ClusterError {
    ClusterError { transient: true, message: format!("admin task failed: {e}") }
}

/// Client settings for outflow's own identity on the internal listener.
pub fn client_config(config: &KafkaConfig, client_id: &str) -> anyhow::Result<ClientConfig> {
    let bootstrap = config.bootstrap.as_deref().context("kafka.bootstrap is not set")?;
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", bootstrap)
        .set("client.id", client_id)
        .set("socket.timeout.ms", config.request_timeout_ms.to_string())
        // Reconnect quickly after a broker outage so a pending tenant becomes ready soon.
        .set("reconnect.backoff.max.ms", "1000");
    if let Some(ca) = &config.ca {
        client.set("security.protocol", "ssl").set("ssl.ca.location", ca.display().to_string());
        if let (Some(cert), Some(key)) = (&config.cert, &config.key) {
            client
                .set("ssl.certificate.location", cert.display().to_string())
                .set("ssl.key.location", key.display().to_string());
        }
    }
    Ok(client)
}

pub struct Cluster {
    client: Arc<AdminClient<DefaultClientContext>>,
    quotas: Arc<QuotaClient>,
    timeout: Duration,
    replication: i32,
    mutations: AtomicU64,
}

impl Cluster {
    pub fn connect(config: &KafkaConfig) -> anyhow::Result<Self> {
        let client = client_config(config, "outflow-reconciler")?;
        let admin: AdminClient<DefaultClientContext> = client.create().context("creating the Kafka admin client")?;
        Ok(Self {
            client: Arc::new(admin),
            quotas: Arc::new(QuotaClient::new(config, "outflow-reconciler")?),
            timeout: Duration::from_millis(config.request_timeout_ms),
            replication: config.replication_factor,
            mutations: AtomicU64::new(0),
        })
    }

    /// Mutating admin calls made so far.
    pub fn mutations(&self) -> u64 {
        self.mutations.load(Ordering::Relaxed)
    }

    fn options(&self) -> AdminOptions {
        AdminOptions::new().request_timeout(Some(self.timeout)).operation_timeout(Some(self.timeout))
    }

    /// Tenant topics, tenant-principal ACLs and tenant-principal quotas on the cluster.
    pub async fn actual(&self) -> Result<Actual, ClusterError> {
        let client = self.client.clone();
        let quotas = self.quotas.clone();
        let timeout = self.timeout;
        tokio::task::spawn_blocking(move || {
            let metadata = client.inner().fetch_metadata(None, timeout)?;
            let topics = metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none() && topic_tenant(t.name()).is_some())
                .map(|t| (t.name().to_owned(), t.partitions().len() as i32))
                .collect();
            let acls = acl::describe_acls(client.inner(), None, timeout)?
                .into_iter()
                .filter(|a| principal_tenant(&a.principal).is_some())
                .collect();
            let quotas = quotas
                .describe_users()?
                .into_iter()
                .map(|(user, values)| (format!("User:{user}"), values))
                .filter(|(principal, _)| principal_tenant(principal).is_some())
                .collect();
            Ok(Actual { topics, acls, quotas })
        })
        .await
        .map_err(task_error)?
    }

    /// Applies planned actions, batched by kind (one admin request per kind and chunk, so a
    /// thousand new tenants do not mean thousands of round trips), in plan order: revocations,
    /// topics, partitions, deletions, quotas, grants. Returns the tenants whose changes failed; a tenant
    /// that failed at one step is skipped in the later ones.
    pub async fn apply_all(&self, actions: &[Action]) -> BTreeMap<i64, ClusterError> {
        let mut failed: BTreeMap<i64, ClusterError> = BTreeMap::new();

        let revoke: Vec<(i64, AclBinding)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::DeleteAcls { tenant, acls } => Some(acls.iter().map(move |acl| (*tenant, acl.clone()))),
                _ => None,
            })
            .flatten()
            .collect();
        for chunk in revoke.chunks(ACL_CHUNK) {
            let acls: Vec<AclBinding> = chunk.iter().map(|(_, a)| a.clone()).collect();
            let (client, timeout) = (self.client.clone(), self.timeout);
            let result = self.mutate(move || acl::delete_acls(client.inner(), &acls, timeout)).await;
            fold_items(chunk.iter().map(|(t, _)| *t), result, &mut failed);
        }

        let creates: Vec<(i64, &str, i32)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateTopic { tenant, name, partitions } => Some((*tenant, name.as_str(), *partitions)),
                _ => None,
            })
            .filter(|(t, _, _)| !failed.contains_key(t))
            .collect();
        for chunk in creates.chunks(TOPIC_CHUNK) {
            let topics: Vec<NewTopic> = chunk
                .iter()
                .map(|(_, name, p)| NewTopic::new(name, *p, TopicReplication::Fixed(self.replication)))
                .collect();
            self.mutations.fetch_add(1, Ordering::Relaxed);
            let result = self.client.create_topics(&topics, &self.options()).await;
            fold_topics(
                chunk.iter().map(|(t, n, _)| (*t, *n)),
                result,
                RDKafkaErrorCode::TopicAlreadyExists,
                &mut failed,
            );
        }

        let grow: Vec<(i64, &str, i32)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::CreatePartitions { tenant, name, total } => Some((*tenant, name.as_str(), *total)),
                _ => None,
            })
            .filter(|(t, _, _)| !failed.contains_key(t))
            .collect();
        for chunk in grow.chunks(TOPIC_CHUNK) {
            let parts: Vec<NewPartitions> =
                chunk.iter().map(|(_, name, total)| NewPartitions::new(name, *total as usize)).collect();
            self.mutations.fetch_add(1, Ordering::Relaxed);
            let result = self.client.create_partitions(&parts, &self.options()).await;
            fold_topics(chunk.iter().map(|(t, n, _)| (*t, *n)), result, RDKafkaErrorCode::NoError, &mut failed);
        }

        let deletes: Vec<(i64, &str)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::DeleteTopic { tenant, name } => Some((*tenant, name.as_str())),
                _ => None,
            })
            .filter(|(t, _)| !failed.contains_key(t))
            .collect();
        for chunk in deletes.chunks(TOPIC_CHUNK) {
            let names: Vec<&str> = chunk.iter().map(|(_, n)| *n).collect();
            self.mutations.fetch_add(1, Ordering::Relaxed);
            let result = self.client.delete_topics(&names, &self.options()).await;
            fold_topics(chunk.iter().copied(), result, RDKafkaErrorCode::UnknownTopicOrPartition, &mut failed);
        }

        let quotas: Vec<(i64, Alteration)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::AlterQuotas { tenant, alteration } => Some((*tenant, alteration.clone())),
                _ => None,
            })
            .filter(|(t, _)| !failed.contains_key(t))
            .collect();
        for chunk in quotas.chunks(QUOTA_CHUNK) {
            let alterations: Vec<Alteration> = chunk.iter().map(|(_, a)| a.clone()).collect();
            let client = self.quotas.clone();
            let result = self.mutate(move || client.alter(&alterations)).await;
            fold_items(chunk.iter().map(|(t, _)| *t), result, &mut failed);
        }

        let grants: Vec<(i64, AclBinding)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::CreateAcls { tenant, acls } => Some(acls.iter().map(move |acl| (*tenant, acl.clone()))),
                _ => None,
            })
            .flatten()
            .filter(|(t, _)| !failed.contains_key(t))
            .collect();
        for chunk in grants.chunks(ACL_CHUNK) {
            let acls: Vec<AclBinding> = chunk.iter().map(|(_, a)| a.clone()).collect();
            let (client, timeout) = (self.client.clone(), self.timeout);
            let result = self.mutate(move || acl::create_acls(client.inner(), &acls, timeout)).await;
            fold_items(chunk.iter().map(|(t, _)| *t), result, &mut failed);
        }
        failed
    }

    /// Runs a blocking mutating ACL or quota call off the runtime, counting it.
    async fn mutate<T: Send + 'static, E: Into<ClusterError> + Send + 'static>(
        &self,
        call: impl FnOnce() -> Result<Vec<Result<T, String>>, E> + Send + 'static,
    ) -> Result<Vec<Result<T, String>>, ClusterError> {
        self.mutations.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(call).await.map_err(task_error)?.map_err(Into::into)
    }
}

const TOPIC_CHUNK: usize = 100;
const ACL_CHUNK: usize = 500;
const QUOTA_CHUNK: usize = 500;

/// Maps per-item results of a batched ACL call back to tenants.
fn fold_items<T>(
    tenants: impl Iterator<Item = i64>,
    result: Result<Vec<Result<T, String>>, ClusterError>,
    failed: &mut BTreeMap<i64, ClusterError>,
) {
    match result {
        Ok(items) => {
            for (tenant, item) in tenants.zip(items) {
                if let Err(message) = item {
                    failed.entry(tenant).or_insert(ClusterError { transient: false, message });
                }
            }
        }
        Err(e) => {
            for tenant in tenants {
                failed.entry(tenant).or_insert_with(|| e.clone());
            }
        }
    }
}

/// What rdkafka answers for a batched topic call: per topic, its name or its name and error.
type TopicResults = Result<Vec<Result<String, (String, RDKafkaErrorCode)>>, KafkaError>;

/// Maps per-topic results of a batched topic call back to tenants; `already_done` is the error
/// code meaning "nothing to do" (e.g. the topic exists already).
fn fold_topics<'a>(
    topics: impl Iterator<Item = (i64, &'a str)>,
    result: TopicResults,
    already_done: RDKafkaErrorCode,
    failed: &mut BTreeMap<i64, ClusterError>,
) {
    let results = match result {
        Ok(results) => results,
        Err(e) => {
            let e = ClusterError::from(e);
            for (tenant, _) in topics {
                failed.entry(tenant).or_insert_with(|| e.clone());
            }
            return;
        }
    };
    let tenant_of: BTreeMap<&str, i64> = topics.map(|(t, n)| (n, t)).collect();
    for result in results {
        if let Err((topic, code)) = result
            && code != already_done
        {
            let transient = matches!(
                code,
                RDKafkaErrorCode::RequestTimedOut
                    | RDKafkaErrorCode::OperationTimedOut
                    | RDKafkaErrorCode::NotController
                    | RDKafkaErrorCode::BrokerNotAvailable
            );
            if let Some(tenant) = tenant_of.get(topic.as_str()) {
                failed.entry(*tenant).or_insert(ClusterError { transient, message: format!("{topic}: {code}") });
            }
        }
    }
}
