//! The exactly-once Kafka worker: consume raw audit records, split them, produce each message to
//! its tenant's `c<N>_waf` (or the record to the dead-letter topic), and commit the input
//! offsets inside the same transaction.
//!
//! One loop on a dedicated thread: poll a batch (up to `batch_records` or `batch_ms`), producing
//! as it goes inside an open transaction, then `send_offsets_to_transaction` and commit. Any
//! failure aborts the transaction and rewinds the consumer to the batch's first offsets, so
//! the batch is redone as a whole. A rebalance in the middle of a batch aborts it too: the
//! partitions' next owner starts from the last committed offsets. Restarting a worker with the
//! same `instance_id` reuses its transactional id (fencing its previous incarnation and
//! aborting whatever it left open) and its static group membership (taking its partitions back
//! without waiting for a session timeout).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::events;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::metrics::{BatchCounts, Metrics};
use super::route::{self, DeadLetter, Directory, TenantSource};
use super::split::{Limits, Splitter};
use crate::config::KafkaConfig;

/// Everything the worker needs besides the tenant directory.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub kafka: KafkaConfig,
    pub raw_topic: String,
    pub dlq_topic: String,
    pub group: String,
    /// Stable name of this worker: its transactional id and static group membership.
    pub instance_id: String,
    pub tenant_source: TenantSource,
    pub limits: Limits,
    pub batch_records: usize,
    pub batch_ms: u64,
    /// How often the tenant directory is reread.
    pub refresh: Duration,
}

/// Reads the tenant directory (database and cluster topics); called on the worker thread.
pub type Refresh<'a> = dyn FnMut(&BaseConsumer<WorkerContext>) -> anyhow::Result<Directory> + 'a;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Notes rebalances (so the loop aborts a batch that spans one) and consumer lag from the
/// client's statistics.
pub struct WorkerContext {
    rebalanced: AtomicBool,
    raw_topic: String,
    metrics: Arc<Metrics>,
}

impl ClientContext for WorkerContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(topic) = statistics.topics.get(&self.raw_topic) {
            // The committed offsets travel in transactions the consumer does not see, so its
            // own `consumer_lag` would stay stale: measure from what the loop has read instead,
            // up to the last stable offset (what read_committed can reach).
            let lag: i64 = topic
                .partitions
                .values()
                .filter(|p| p.partition >= 0)
                .map(
                    |p| if p.app_offset >= 0 && p.ls_offset >= 0 { p.ls_offset - p.app_offset } else { p.consumer_lag },
                )
                .map(|lag| lag.max(0))
                .sum();
            self.metrics.set_lag(lag as u64);
        }
    }
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        tracing::info!(?rebalance, "rebalance");
        self.rebalanced.store(true, Ordering::SeqCst);
    }
}

/// The `rdkafka` settings of outflow's own identity on the internal listener.
fn client_config(kafka: &KafkaConfig) -> anyhow::Result<ClientConfig> {
    let Some(bootstrap) = &kafka.bootstrap else {
        bail!("no Kafka bootstrap servers configured (OUTFLOW_KAFKA_BOOTSTRAP)");
    };
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    if let Some(ca) = &kafka.ca {
        config.set("security.protocol", "ssl").set("ssl.ca.location", ca.display().to_string());
        if let (Some(cert), Some(key)) = (&kafka.cert, &kafka.key) {
            config
                .set("ssl.certificate.location", cert.display().to_string())
                .set("ssl.key.location", key.display().to_string());
        }
    }
    Ok(config)
}

/// Offsets of the records in the open transaction, per raw partition: first and next.
#[derive(Debug, Default)]
struct Batch {
    offsets: BTreeMap<i32, (i64, i64)>,
    counts: BatchCounts,
    open: bool,
}

/// Runs until `stop` is cancelled, then commits the batch in progress and returns.
pub fn run(
    config: &WorkerConfig,
    metrics: Arc<Metrics>,
    refresh: &mut Refresh<'_>,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let context = WorkerContext {
        rebalanced: AtomicBool::new(false),
        raw_topic: config.raw_topic.clone(),
        metrics: metrics.clone(),
    };
    let consumer: BaseConsumer<WorkerContext> = client_config(&config.kafka)?
        .set("group.id", &config.group)
        .set("group.instance.id", &config.instance_id)
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("statistics.interval.ms", "2000")
        .create_with_context(context)
        .context("creating the consumer")?;
    let producer: ThreadedProducer<DefaultProducerContext> = client_config(&config.kafka)?
        .set("transactional.id", format!("outflow-waf-split-{}", config.instance_id))
        .set("transaction.timeout.ms", "30000")
        .set("linger.ms", "5")
        // One record per message repeats the rest of the record: it compresses very well.
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .context("creating the transactional producer")?;
    producer.init_transactions(TIMEOUT).context("initialising transactions")?;
    consumer.subscribe(&[&config.raw_topic]).context("subscribing to the raw topic")?;
    tracing::info!(topic = %config.raw_topic, group = %config.group, instance = %config.instance_id, "waf-split worker running");

    let mut splitter = Splitter::new(config.limits);
    let mut directory = refresh(&consumer)?;
    for topic in [&config.raw_topic, &config.dlq_topic] {
        // Producing to a missing topic would only fail after the message timeout, holding the
        // transaction open that long: refuse to start instead.
        if !directory.topics.contains(topic) {
            bail!("topic {topic} does not exist; create it before starting the worker");
        }
    }
    let mut refreshed = Instant::now();
    let mut batch = Batch::default();
    loop {
        if refreshed.elapsed() >= config.refresh {
            match refresh(&consumer) {
                Ok(d) => directory = d,
                Err(e) => tracing::warn!("keeping the previous tenant directory: {e:#}"),
            }
            refreshed = Instant::now();
        }
        let deadline = Instant::now() + Duration::from_millis(config.batch_ms);
        while !stop.is_cancelled() && batch.counts.records_in < config.batch_records as u64 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let polled = consumer.poll(left.min(Duration::from_millis(100)));
            if consumer.context().rebalanced.swap(false, Ordering::SeqCst) && batch.open {
                // Positions now come from the committed offsets; the batch's work is redone.
                abort(&producer, &metrics, &mut batch)?;
            }
            match polled {
                None => {}
                Some(Err(e)) => tracing::warn!("consumer: {e}"),
                Some(Ok(message)) => {
                    if !batch.open {
                        producer.begin_transaction().context("beginning a transaction")?;
                        batch.open = true;
                    }
                    process(config, &mut splitter, &directory, &producer, &message, &mut batch.counts)?;
                    let entry = batch.offsets.entry(message.partition()).or_insert((message.offset(), 0));
                    entry.1 = message.offset() + 1;
                }
            }
        }
        if batch.open {
            commit(config, &consumer, &producer, &metrics, &mut batch)?;
        }
        if stop.is_cancelled() {
            tracing::info!("waf-split worker stopped after committing its last batch");
            return Ok(());
        }
    }
}

/// Splits one raw record and produces its outputs (or its dead letter) into the transaction.
fn process(
    config: &WorkerConfig,
    splitter: &mut Splitter,
    directory: &Directory,
    producer: &ThreadedProducer<DefaultProducerContext>,
    message: &BorrowedMessage<'_>,
    counts: &mut BatchCounts,
) -> anyhow::Result<()> {
    counts.records_in += 1;
    let value = message.payload().unwrap_or_default();
    let (partition, offset) = (message.partition().to_string(), message.offset().to_string());
    // Split records carry the raw record's timestamp: alert windows count by when the event
    // happened, so a splitter catching up on a backlog is not a burst.
    let raw_time = message.timestamp().to_millis();
    let topic = route::tenant_of(&config.tenant_source, message.key(), value)
        .and_then(|tenant| route::destination(directory, tenant));
    let dead = match topic {
        Err(dead) => Some(dead),
        Ok(topic) => {
            let mut failed = None;
            let result = splitter.split(value, |part, record| {
                if failed.is_some() {
                    return;
                }
                // `message-count` tells a record without messages (0) from the first of several.
                let mut headers = OwnedHeaders::new_with_capacity(7)
                    .insert(Header { key: "source-partition", value: Some(partition.as_str()) })
                    .insert(Header { key: "source-offset", value: Some(offset.as_str()) })
                    .insert(Header { key: "message-index", value: Some(part.index.to_string().as_str()) })
                    .insert(Header { key: "message-count", value: Some(part.count.to_string().as_str()) });
                // The message's facts, so consumers (and the alert evaluator) can filter
                // without parsing the record.
                let (rule, severity) =
                    part.message.map(|(s, e)| events::message_facts(&record[s..e])).unwrap_or_default();
                let client = part.client.and_then(|(s, e)| events::string_literal(&value[s..e]));
                for (key, v) in [("waf-rule-id", rule), ("waf-severity", severity), ("waf-client", client)] {
                    if let Some(v) = v {
                        headers = headers.insert(Header { key, value: Some(v.as_str()) });
                    }
                }
                let mut out = BaseRecord::<[u8], [u8]>::to(&topic).payload(record).headers(headers);
                if let Some(ms) = raw_time {
                    out = out.timestamp(ms);
                }
                if let Err(e) = send(producer, out) {
                    failed = Some(e);
                }
            });
            if let Some(e) = failed {
                return Err(e).context("producing a split record");
            }
            match result {
                Ok(n) => {
                    counts.records_out += n as u64;
                    None
                }
                Err(e) => Some(DeadLetter::new(e.reason(), e.to_string())),
            }
        }
    };
    if let Some(dead) = dead {
        let headers = OwnedHeaders::new_with_capacity(4)
            .insert(Header { key: "reason", value: Some(dead.reason) })
            .insert(Header { key: "detail", value: Some(dead.detail.as_str()) })
            .insert(Header { key: "source-partition", value: Some(partition.as_str()) })
            .insert(Header { key: "source-offset", value: Some(offset.as_str()) });
        let mut record = BaseRecord::<[u8], [u8]>::to(&config.dlq_topic).payload(value).headers(headers);
        if let Some(ms) = raw_time {
            record = record.timestamp(ms);
        }
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        send(producer, record).context("producing a dead letter")?;
        counts.dead(dead.reason);
    }
    Ok(())
}

/// Queues a record, waiting for room when the producer's queue is full.
fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> Result<(), KafkaError> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Commits the batch's input offsets and outputs together; on an abortable failure, aborts
/// and rewinds so the batch is redone.
fn commit(
    config: &WorkerConfig,
    consumer: &BaseConsumer<WorkerContext>,
    producer: &ThreadedProducer<DefaultProducerContext>,
    metrics: &Metrics,
    batch: &mut Batch,
) -> anyhow::Result<()> {
    let mut offsets = TopicPartitionList::new();
    for (&partition, &(_, next)) in &batch.offsets {
        offsets.add_partition_offset(&config.raw_topic, partition, Offset::Offset(next))?;
    }
    let result = consumer
        .group_metadata()
        .context("the consumer has no group metadata")
        .and_then(|group| Ok(producer.send_offsets_to_transaction(&offsets, &group, TIMEOUT)?))
        .and_then(|()| Ok(producer.commit_transaction(TIMEOUT)?));
    match result {
        Ok(()) => {
            metrics.committed(&batch.counts);
            *batch = Batch::default();
            Ok(())
        }
        Err(e) => {
            if is_fatal(&e) {
                return Err(e).context("committing a transaction");
            }
            tracing::warn!("transaction failed, redoing the batch: {e:#}");
            let rewind: Vec<(i32, i64)> = batch.offsets.iter().map(|(&p, &(first, _))| (p, first)).collect();
            abort(producer, metrics, batch)?;
            for (partition, first) in rewind {
                if let Err(e) = consumer.seek(&config.raw_topic, partition, Offset::Offset(first), TIMEOUT) {
                    // The partition may have moved to another worker in a rebalance; its new
                    // owner starts from the committed offset.
                    tracing::warn!(partition, "cannot rewind: {e}");
                }
            }
            Ok(())
        }
    }
}

fn abort(
    producer: &ThreadedProducer<DefaultProducerContext>,
    metrics: &Metrics,
    batch: &mut Batch,
) -> anyhow::Result<()> {
    producer.abort_transaction(TIMEOUT).context("aborting a transaction")?;
    metrics.aborted();
    *batch = Batch::default();
    Ok(())
}

/// A fenced or otherwise fatal producer cannot continue; anything else is worth a retry.
fn is_fatal(e: &anyhow::Error) -> bool {
    match e.downcast_ref::<KafkaError>() {
        Some(KafkaError::Transaction(err)) => err.is_fatal(),
        _ => false,
    }
}
