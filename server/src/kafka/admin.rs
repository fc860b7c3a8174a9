//! outflow's admin connection to the cluster (internal listener, its own mTLS identity): reads
//! the actual state and applies planned actions. Every mutating call is counted, so tests and
//! `/metrics` can see that a pass with nothing to change changes nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use super::acl::{self, AclError};
use super::plan::{Action, Actual, principal_tenant, topic_tenant};
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

fn task_error(e: tokio::task::JoinError) -> ClusterError {
    ClusterError { transient: true, message: format!("admin task failed: {e}") }
}

pub struct Cluster {
    client: Arc<AdminClient<DefaultClientContext>>,
    timeout: Duration,
    replication: i32,
    mutations: AtomicU64,
}

impl Cluster {
    pub fn connect(config: &KafkaConfig) -> anyhow::Result<Self> {
        let bootstrap = config.bootstrap.as_deref().context("kafka.bootstrap is not set")?;
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", bootstrap)
            .set("client.id", "outflow-reconciler")
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
        let admin: AdminClient<DefaultClientContext> = client.create().context("creating the Kafka admin client")?;
        Ok(Self {
            client: Arc::new(admin),
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

    /// Tenant topics and tenant-principal ACLs on the cluster.
    pub async fn actual(&self) -> Result<Actual, ClusterError> {
        let client = self.client.clone();
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
            Ok(Actual { topics, acls })
        })
        .await
        .map_err(task_error)?
    }

    /// Applies one planned action. Re-applying an action that already took effect succeeds.
    pub async fn apply(&self, action: &Action) -> Result<(), ClusterError> {
        self.mutations.fetch_add(1, Ordering::Relaxed);
        match action {
            Action::CreateTopic { name, partitions, .. } => {
                let topic = NewTopic::new(name, *partitions, TopicReplication::Fixed(self.replication));
                let results = self.client.create_topics([&topic], &self.options()).await?;
                per_topic(results, RDKafkaErrorCode::TopicAlreadyExists)
            }
            Action::CreatePartitions { name, total, .. } => {
                let partitions = NewPartitions::new(name, *total as usize);
                let results = self.client.create_partitions([&partitions], &self.options()).await?;
                per_topic(results, RDKafkaErrorCode::NoError)
            }
            Action::DeleteTopic { name, .. } => {
                let results = self.client.delete_topics(&[name.as_str()], &self.options()).await?;
                per_topic(results, RDKafkaErrorCode::UnknownTopicOrPartition)
            }
            Action::CreateAcls { acls, .. } => {
                let (client, acls, timeout) = (self.client.clone(), acls.clone(), self.timeout);
                tokio::task::spawn_blocking(move || acl::create_acls(client.inner(), &acls, timeout))
                    .await
                    .map_err(task_error)??;
                Ok(())
            }
            Action::DeleteAcls { acls, .. } => {
                let (client, acls, timeout) = (self.client.clone(), acls.clone(), self.timeout);
                tokio::task::spawn_blocking(move || acl::delete_acls(client.inner(), &acls, timeout))
                    .await
                    .map_err(task_error)??;
                Ok(())
            }
        }
    }
}

/// Folds per-topic admin results; `already_done` is the error code meaning "nothing to do".
fn per_topic(
    results: Vec<Result<String, (String, RDKafkaErrorCode)>>,
    already_done: RDKafkaErrorCode,
) -> Result<(), ClusterError> {
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
            return Err(ClusterError { transient, message: format!("{topic}: {code}") });
        }
    }
    Ok(())
}
