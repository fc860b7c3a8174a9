//! What the Streaming tab shows about live traffic, read from the cluster with outflow's own
//! identity: consumer groups under the tenant's prefix with lag per partition, throughput of
//! the tenant topics, a bounded sample of the newest records, and the most frequent WAF rules
//! and client addresses of the last hour. Reads only; every read is bounded in records and time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::KafkaConfig;
use crate::tenants::TenantId;
use crate::waf::summary::{WafSummary, summarize};

/// How long throughput samples are kept, and the window a rate is computed over.
const SAMPLE_KEEP: Duration = Duration::from_secs(10 * 60);
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Tenants are sampled while someone looked at them within this time.
const INTEREST: Duration = Duration::from_secs(10 * 60);
/// Bounds of the live tail and the WAF summary.
pub const TAIL_PER_PARTITION: i64 = 10;
pub const TAIL_MAX: usize = 20;
const TAIL_VALUE_BYTES: usize = 1024;
const WAF_MAX_PER_PARTITION: i64 = 5000;
const WAF_WINDOW: Duration = Duration::from_secs(3600);

/// One partition of a group: committed offset, end of the log, and the difference.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed: i64,
    pub high_watermark: i64,
    pub lag: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GroupLag {
    #[schema(example = "c83_filebeat")]
    pub group: String,
    /// The coordinator's view: `Stable`, `Empty`, `PreparingRebalance`, ...
    pub state: String,
    pub members: usize,
    pub partitions: Vec<PartitionLag>,
    pub total_lag: i64,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopicRate {
    pub topic: String,
    /// Records per second over the last minute (null until two samples exist).
    pub records_per_sec: Option<f64>,
    /// Estimated from the rate and the mean size of the newest records.
    pub bytes_per_sec: Option<f64>,
    /// Per-sample history, oldest first: (unix seconds, records/s), for a sparkline.
    pub history: Vec<(i64, f64)>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TailRecord {
    pub partition: i32,
    pub offset: i64,
    /// Producer or log-append time, unix milliseconds.
    pub timestamp: Option<i64>,
    pub key: Option<String>,
    /// UTF-8 (lossy), cut at 1 KiB.
    pub value: String,
    pub truncated: bool,
}

/// One record read by the monitor.
struct Read {
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    unix: i64,
    /// Sum of the high watermarks of the topic's partitions.
    end: i64,
}

/// Lag of a committed offset against the end of the log (never negative).
pub fn lag(committed: i64, high_watermark: i64) -> i64 {
    (high_watermark - committed).max(0)
}

/// Records per second between the first sample inside `window` and the last one.
fn rate(samples: &VecDeque<Sample>, window: Duration) -> Option<f64> {
    let last = samples.back()?;
    let first = samples.iter().find(|s| last.at.duration_since(s.at) <= window)?;
    let secs = last.at.duration_since(first.at).as_secs_f64();
    (secs > 0.0).then(|| (last.end - first.end).max(0) as f64 / secs)
}

fn history(samples: &VecDeque<Sample>) -> Vec<(i64, f64)> {
    samples
        .iter()
        .zip(samples.iter().skip(1))
        .filter_map(|(a, b)| {
            let secs = b.at.duration_since(a.at).as_secs_f64();
            (secs > 0.0).then(|| (b.unix, (b.end - a.end).max(0) as f64 / secs))
        })
        .collect()
}

/// Reads the cluster for the Streaming tab. Blocking librdkafka calls run on the blocking pool.
pub struct Monitor {
    base: ClientConfig,
    /// One long-lived connection for metadata, watermarks, group lists and offset lookups, so
    /// the sampler and every live refresh do not open a new TLS connection each; reading records
    /// (assign and poll) takes a consumer of its own.
    meta: BaseConsumer,
    timeout: Duration,
    samples: Mutex<HashMap<String, VecDeque<Sample>>>,
    mean_size: Mutex<HashMap<String, f64>>,
    interest: Mutex<HashMap<TenantId, Instant>>,
}

impl Monitor {
    pub fn new(config: &KafkaConfig) -> anyhow::Result<Self> {
        let mut base = super::admin::client_config(config, "outflow-monitor")?;
        base.set("enable.auto.commit", "false").set("enable.partition.eof", "false");
        let meta = base.clone().set("group.id", "outflow-monitor").create().context("creating the monitor client")?;
        Ok(Self {
            base,
            meta,
            timeout: Duration::from_millis(config.request_timeout_ms),
            samples: Mutex::default(),
            mean_size: Mutex::default(),
            interest: Mutex::default(),
        })
    }

    fn consumer(&self, group: &str) -> anyhow::Result<BaseConsumer> {
        let mut config = self.base.clone();
        config.set("group.id", group);
        config.create().context("creating a monitor consumer")
    }

    /// Marks a tenant as watched, so the sampler measures its throughput.
    pub fn watch(&self, tenant: TenantId) {
        self.interest.lock().expect("interest lock").insert(tenant, Instant::now());
    }

    /// Tenants watched recently.
    fn watched(&self) -> Vec<TenantId> {
        let mut interest = self.interest.lock().expect("interest lock");
        interest.retain(|_, at| at.elapsed() < INTEREST);
        interest.keys().copied().collect()
    }

    /// Partition ids of `topic` (none when the topic does not exist).
    fn partitions(&self, topic: &str) -> anyhow::Result<Vec<i32>> {
        let metadata = self.meta.fetch_metadata(Some(topic), self.timeout)?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else { return Ok(vec![]) };
        if let Some(err) = t.error() {
            anyhow::bail!("topic {topic}: {:?}", rdkafka::types::RDKafkaErrorCode::from(err));
        }
        Ok(t.partitions().iter().map(|p| p.id()).collect())
    }

    /// Partitions of `topic` with their (low, high) watermarks.
    fn watermarks(&self, topic: &str) -> anyhow::Result<Vec<(i32, i64, i64)>> {
        self.partitions(topic)?
            .into_iter()
            .map(|partition| {
                let (low, high) = self.meta.fetch_watermarks(topic, partition, self.timeout)?;
                Ok((partition, low, high))
            })
            .collect()
    }

    /// Consumer groups under the tenant's prefix with their lag on `c<N>` and `c<N>_waf`.
    pub fn groups(&self, tenant: TenantId) -> anyhow::Result<Vec<GroupLag>> {
        let prefix = tenant.group_prefix();
        let list = self.meta.fetch_group_list(None, self.timeout).context("listing consumer groups")?;
        let groups: Vec<(String, String, usize)> = list
            .groups()
            .iter()
            .filter(|g| g.name().starts_with(&prefix))
            .map(|g| (g.name().to_owned(), g.state().to_owned(), g.members().len()))
            .collect();
        let mut ends = BTreeMap::new();
        for topic in [tenant.topic(), tenant.waf_topic()] {
            for (partition, low, high) in self.watermarks(&topic)? {
                ends.insert((topic.clone(), partition), (low, high));
            }
        }
        let mut out = Vec::new();
        for (group, state, members) in groups {
            let consumer = self.consumer(&group)?;
            let mut tpl = TopicPartitionList::new();
            for (topic, partition) in ends.keys() {
                tpl.add_partition(topic, *partition);
            }
            let committed = consumer.committed_offsets(tpl, self.timeout).context("reading committed offsets")?;
            let elements = committed.elements();
            // Topics the group reads: those it committed on. A partition of such a topic without a
            // commit yet (no record reached it in the group's first run) starts at the oldest
            // record, as every bundle config says, so all it holds is lag.
            let consumed: std::collections::BTreeSet<String> = elements
                .iter()
                .filter(|e| matches!(e.offset(), Offset::Offset(_)))
                .map(|e| e.topic().to_owned())
                .collect();
            let partitions: Vec<PartitionLag> = elements
                .iter()
                .filter_map(|e| {
                    let (low, high) = ends[&(e.topic().to_owned(), e.partition())];
                    let committed = match e.offset() {
                        Offset::Offset(committed) => committed,
                        _ if consumed.contains(e.topic()) => low,
                        _ => return None,
                    };
                    Some(PartitionLag {
                        topic: e.topic().to_owned(),
                        partition: e.partition(),
                        committed,
                        high_watermark: high,
                        lag: lag(committed, high),
                    })
                })
                .collect();
            let total_lag = partitions.iter().map(|p| p.lag).sum();
            out.push(GroupLag { group, state, members, partitions, total_lag });
        }
        out.sort_by(|a, b| a.group.cmp(&b.group));
        Ok(out)
    }

    /// Takes one throughput sample of every watched tenant's topics.
    pub fn sample_watched(&self) -> anyhow::Result<()> {
        let tenants = self.watched();
        if tenants.is_empty() {
            return Ok(());
        }
        for tenant in tenants {
            for topic in [tenant.topic(), tenant.waf_topic()] {
                let end: i64 = self.watermarks(&topic)?.iter().map(|(_, _, high)| high).sum();
                let unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
                let mut samples = self.samples.lock().expect("samples lock");
                let series = samples.entry(topic).or_default();
                series.push_back(Sample { at: Instant::now(), unix, end });
                while series.front().is_some_and(|s| s.at.elapsed() > SAMPLE_KEEP) {
                    series.pop_front();
                }
            }
        }
        Ok(())
    }

    /// Throughput of the tenant's topics from the samples taken so far.
    pub fn throughput(&self, tenant: TenantId) -> Vec<TopicRate> {
        let samples = self.samples.lock().expect("samples lock");
        let sizes = self.mean_size.lock().expect("sizes lock");
        [tenant.topic(), tenant.waf_topic()]
            .into_iter()
            .map(|topic| {
                let series = samples.get(&topic);
                let records_per_sec = series.and_then(|s| rate(s, RATE_WINDOW));
                let bytes_per_sec = records_per_sec.zip(sizes.get(&topic)).map(|(r, size)| r * size);
                TopicRate { history: series.map(history).unwrap_or_default(), topic, records_per_sec, bytes_per_sec }
            })
            .collect()
    }

    /// Reads from `start(partition, low, high)` to the end of each partition of `topic`,
    /// within the timeout; returns the messages read.
    fn read_to_end(&self, topic: &str, start: impl Fn(i32, i64, i64) -> i64) -> anyhow::Result<Vec<Read>> {
        let mut tpl = TopicPartitionList::new();
        let mut remaining = HashMap::new();
        for (partition, low, high) in self.watermarks(topic)? {
            let from = start(partition, low, high).clamp(low, high);
            if from < high {
                tpl.add_partition_offset(topic, partition, Offset::Offset(from))?;
                remaining.insert(partition, high);
            }
        }
        let mut out = Vec::new();
        if remaining.is_empty() {
            return Ok(out);
        }
        let consumer = self.consumer("outflow-monitor")?;
        consumer.assign(&tpl)?;
        let deadline = Instant::now() + self.timeout;
        while !remaining.is_empty() && Instant::now() < deadline {
            let Some(message) = consumer.poll(Duration::from_millis(200)) else { continue };
            let message = message?;
            if let Some(high) = remaining.get(&message.partition())
                && message.offset() + 1 >= *high
            {
                remaining.remove(&message.partition());
            }
            out.push(Read {
                partition: message.partition(),
                offset: message.offset(),
                timestamp: message.timestamp().to_millis(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// The newest records of `topic`: up to 10 per partition, 20 in all, newest first.
    pub fn tail(&self, topic: &str) -> anyhow::Result<Vec<TailRecord>> {
        let mut read = self.read_to_end(topic, |_, _, high| high - TAIL_PER_PARTITION)?;
        if !read.is_empty() {
            let mean = read.iter().map(|r| r.value.len() as f64).sum::<f64>() / read.len() as f64;
            self.mean_size.lock().expect("sizes lock").insert(topic.to_owned(), mean);
        }
        read.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then(b.offset.cmp(&a.offset)));
        read.truncate(TAIL_MAX);
        Ok(read
            .into_iter()
            .map(|Read { partition, offset, timestamp, key, value }| {
                let truncated = value.len() > TAIL_VALUE_BYTES;
                let cut = &value[..value.len().min(TAIL_VALUE_BYTES)];
                TailRecord {
                    partition,
                    offset,
                    timestamp,
                    key: key.map(|k| String::from_utf8_lossy(&k).into_owned()),
                    value: String::from_utf8_lossy(cut).into_owned(),
                    truncated,
                }
            })
            .collect())
    }

    /// The most frequent rule ids and client addresses in the tenant's WAF topic over the last
    /// hour (at most the newest 5,000 records per partition).
    pub fn waf_summary(&self, tenant: TenantId) -> anyhow::Result<WafSummary> {
        let topic = tenant.waf_topic();
        let since = SystemTime::now().checked_sub(WAF_WINDOW).unwrap_or(UNIX_EPOCH);
        let since_ms = since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        let mut tpl = TopicPartitionList::new();
        for partition in self.partitions(&topic)? {
            tpl.add_partition_offset(&topic, partition, Offset::Offset(since_ms))?;
        }
        let by_time = self.meta.offsets_for_times(tpl, self.timeout).context("finding the last hour's offsets")?;
        let first: HashMap<i32, Option<i64>> = by_time
            .elements()
            .iter()
            .map(|e| (e.partition(), if let Offset::Offset(o) = e.offset() { Some(o) } else { None }))
            .collect();
        // No offset for the time means nothing that recent: start at the end.
        let read = self.read_to_end(&topic, |partition, _, high| {
            first.get(&partition).copied().flatten().unwrap_or(high).max(high - WAF_MAX_PER_PARTITION)
        })?;
        Ok(summarize(read.iter().map(|r| r.value.as_slice())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn lag_is_never_negative() {
        assert_eq!(lag(10, 15), 5);
        assert_eq!(lag(15, 15), 0);
        assert_eq!(lag(16, 15), 0);
    }

    #[test]
    fn rate_uses_the_window() {
        let t0 = Instant::now();
        let s = |secs: u64, end: i64| Sample { at: t0 + Duration::from_secs(secs), unix: secs as i64, end };
        let samples: VecDeque<_> = [s(0, 0), s(100, 1000), s(130, 1300), s(160, 1600)].into_iter().collect();
        assert_eq!(rate(&samples, Duration::from_secs(60)), Some(10.0));
        assert_eq!(history(&samples), vec![(100, 10.0), (130, 10.0), (160, 10.0)]);
        assert_eq!(rate(&[s(0, 0)].into_iter().collect(), Duration::from_secs(60)), None);
    }
}
