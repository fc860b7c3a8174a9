//! The Streaming tab's live data from one shared sampler per server process: consumer groups
//! under each watched tenant's prefix with their lag, throughput of the tenant topics, the
//! newest records and the last hour's WAF summary.
//!
//! A tenant is watched for ten minutes after someone last looked at it. One thread keeps a
//! view of every watched tenant, refreshed about once a second, with long-lived clients: one
//! for metadata, offsets and group lists, one reader assigned to every watched partition that
//! reads on from where it stopped (a new tenant's partitions are added with their start
//! positions; nothing is re-read), and one per consumer group for its committed offsets.
//! Requests only read the latest view and say how old it is, so a view costs the same whatever
//! the number of viewers, and the number of Kafka connections depends on the watched tenants
//! and their groups, not on the viewers. The reader's position (not the last message's offset)
//! tells whether it has caught up: a transactional topic ends with a commit marker no message
//! carries.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::KafkaConfig;
use crate::tenants::TenantId;
use crate::usage::OwnReads;
use crate::waf::events::{WafEvent, event};
use crate::waf::summary::{Facts, WafSummary, summarize_facts};

/// A tenant is sampled while someone looked at it within this time.
const INTEREST: Duration = Duration::from_secs(10 * 60);
/// How often the views are refreshed (sooner when a new tenant is watched).
const REFRESH: Duration = Duration::from_secs(1);
/// How often a throughput sample is taken, how long samples are kept, the rate's window.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
const SAMPLE_KEEP: Duration = Duration::from_secs(10 * 60);
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Longest a cycle spends reading records before it publishes the views.
const READ_BUDGET: Duration = Duration::from_millis(300);
/// How long a request for a tenant nobody watched yet waits for its first view.
const FIRST_VIEW_WAIT: Duration = Duration::from_secs(4);
/// Bounds of the live tail and the WAF summary. Each partition keeps the whole tail's worth:
/// the newest `TAIL_MAX` of a topic may all sit in one partition.
pub const TAIL_MAX: usize = 20;
const TAIL_VALUE_BYTES: usize = 1024;
/// WAF records are shown whole up to this size (the raw JSON behind each row).
const WAF_RAW_BYTES: usize = 16 * 1024;
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
    /// UTF-8 (lossy), cut at 1 KiB (16 KiB for WAF records).
    pub value: String,
    pub truncated: bool,
}

/// A WAF record of the tail with the fields a person reads.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WafRow {
    #[serde(flatten)]
    pub event: WafEvent,
    /// The record itself.
    pub record: TailRecord,
}

/// Lag of a committed offset against the end of the log (never negative).
pub fn lag(committed: i64, high_watermark: i64) -> i64 {
    (high_watermark - committed).max(0)
}

#[derive(Debug, Clone)]
struct Sample {
    at: Instant,
    unix: i64,
    /// Sum of the ends of the topic's partitions.
    end: i64,
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

use crate::clock::now_ms as unix_ms;

/// What the sampler last saw of one tenant.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Groups and their lag, or why they could not be read.
    pub groups: Result<Vec<GroupLag>, String>,
    pub throughput: Vec<TopicRate>,
    /// Newest records of `c<N>` and `c<N>_waf`, newest first.
    pub tail: Vec<(String, Vec<TailRecord>)>,
    /// The newest WAF records, readable, newest first.
    pub waf_rows: Vec<WafRow>,
    pub waf: WafSummary,
    /// When this view was taken (unix milliseconds).
    pub sampled_at: i64,
    /// Whether the reader had reached the end of every partition of the tenant.
    pub caught_up: bool,
    /// Why the last refresh failed, if it did (the view is then older).
    pub problem: Option<String>,
}

#[derive(Default)]
struct Shared {
    interest: HashMap<TenantId, Instant>,
    views: HashMap<TenantId, Arc<Snapshot>>,
    /// A tenant was watched for the first time since the last cycle.
    new_interest: bool,
    /// Why the last refresh (or the start) failed; cleared by a refresh that worked.
    problem: Option<String>,
}

/// The shared sampler. Its thread starts with the first watched tenant.
pub struct Sampler {
    base: ClientConfig,
    timeout: Duration,
    shared: Mutex<Shared>,
    wake: Condvar,
    started: AtomicBool,
    stopping: AtomicBool,
    /// Counts what the reader fetches: outflow's reads are not the tenant's usage.
    own_reads: Arc<OwnReads>,
}

impl Sampler {
    pub fn new(config: &KafkaConfig, own_reads: Arc<OwnReads>) -> anyhow::Result<Arc<Self>> {
        let mut base = super::admin::client_config(config, "outflow-sampler")?;
        base.set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            // Only committed records of transactional topics, as customers read them.
            .set("isolation.level", "read_committed")
            // A start position already deleted by retention: the oldest record.
            .set("auto.offset.reset", "earliest");
        Ok(Arc::new(Self {
            base,
            timeout: Duration::from_millis(config.request_timeout_ms),
            shared: Mutex::default(),
            wake: Condvar::new(),
            started: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            own_reads,
        }))
    }

    /// Marks `tenant` as watched (starting the thread on first use).
    pub fn watch(self: &Arc<Self>, tenant: TenantId) {
        let mut shared = self.shared.lock().expect("sampler lock");
        if shared.interest.insert(tenant, Instant::now()).is_none() {
            shared.new_interest = true;
            self.wake.notify_all();
        }
        drop(shared);
        if !self.started.swap(true, Ordering::SeqCst) {
            let sampler = self.clone();
            std::thread::Builder::new()
                .name("outflow-sampler".into())
                .spawn(move || sampler.run())
                .expect("spawning the sampler thread");
        }
    }

    /// The latest view of `tenant`, marking it watched; for a tenant nobody watched yet, waits
    /// a little for the first view (None when it did not come in time).
    /// The newest view of `tenant` without waiting (watching it, for the next cycles).
    pub fn latest(self: &Arc<Self>, tenant: TenantId) -> Option<Arc<Snapshot>> {
        self.watch(tenant);
        self.shared.lock().expect("sampler lock").views.get(&tenant).cloned()
    }

    pub async fn view(self: &Arc<Self>, tenant: TenantId) -> Option<Arc<Snapshot>> {
        self.watch(tenant);
        let deadline = Instant::now() + FIRST_VIEW_WAIT;
        loop {
            if let Some(view) = self.shared.lock().expect("sampler lock").views.get(&tenant) {
                return Some(view.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Why the sampler's last refresh failed, when it did.
    pub fn problem(&self) -> Option<String> {
        self.shared.lock().expect("sampler lock").problem.clone()
    }

    /// Ends the thread after its current cycle.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake.notify_all();
    }

    fn run(self: Arc<Self>) {
        let mut worker = loop {
            match Worker::new(&self.base, self.timeout, self.own_reads.clone()) {
                Ok(w) => break w,
                Err(e) => {
                    let problem = format!("the live sampler cannot start: {e:#}");
                    tracing::error!(%problem);
                    let shared = self.shared.lock().expect("sampler lock");
                    let mut shared = self.wake.wait_timeout(shared, Duration::from_secs(5)).expect("sampler lock").0;
                    shared.problem = Some(problem);
                    if self.stopping.load(Ordering::SeqCst) {
                        return;
                    }
                }
            }
        };
        while !self.stopping.load(Ordering::SeqCst) {
            let watched: Vec<TenantId> = {
                let mut shared = self.shared.lock().expect("sampler lock");
                shared.interest.retain(|_, at| at.elapsed() < INTEREST);
                shared.new_interest = false;
                let watched: BTreeSet<TenantId> = shared.interest.keys().copied().collect();
                shared.views.retain(|t, _| watched.contains(t));
                watched.into_iter().collect()
            };
            let views = worker.cycle(&watched);
            {
                let mut shared = self.shared.lock().expect("sampler lock");
                shared.problem = views.as_ref().err().cloned();
                match views {
                    Ok(views) => {
                        for (tenant, view) in views {
                            if shared.interest.contains_key(&tenant) {
                                shared.views.insert(tenant, Arc::new(view));
                            }
                        }
                    }
                    // Keep what was seen; the views say why they are not newer.
                    Err(problem) => {
                        for view in shared.views.values_mut() {
                            if view.problem.as_ref() != Some(&problem) {
                                *view = Arc::new(Snapshot { problem: Some(problem.clone()), ..(**view).clone() });
                            }
                        }
                    }
                }
                if !shared.new_interest && !self.stopping.load(Ordering::SeqCst) {
                    let _ = self.wake.wait_timeout(shared, REFRESH).expect("sampler lock");
                }
            }
        }
    }
}

/// One record as the reader kept it.
struct Read {
    partition: i32,
    offset: i64,
    timestamp: Option<i64>,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    /// The length before the value was cut.
    len: usize,
    waf: Option<WafEvent>,
}

impl Read {
    fn record(&self, limit: usize) -> TailRecord {
        TailRecord {
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.as_ref().map(|k| String::from_utf8_lossy(k).into_owned()),
            value: String::from_utf8_lossy(&self.value[..self.value.len().min(limit)]).into_owned(),
            truncated: self.len > limit,
        }
    }
}

#[derive(Default)]
struct TenantState {
    /// Newest records per (topic, partition).
    tail: HashMap<(String, i32), VecDeque<Read>>,
    /// The last hour's WAF facts with their record time, oldest first.
    waf: VecDeque<(i64, Facts)>,
    samples: HashMap<String, VecDeque<Sample>>,
    mean_size: HashMap<String, f64>,
    last_sample: Option<Instant>,
    /// A read since the last view (the summary needs recomputing).
    changed: bool,
    summary: WafSummary,
}

/// The sampler thread's clients and state.
struct Worker {
    base: ClientConfig,
    timeout: Duration,
    meta: BaseConsumer,
    reader: BaseConsumer,
    groups: HashMap<String, BaseConsumer>,
    tenants: HashMap<TenantId, TenantState>,
    /// Partitions the reader is assigned with the offset each started at, and whose tenant
    /// each topic is.
    assigned: BTreeMap<(String, i32), i64>,
    topic_tenant: HashMap<String, TenantId>,
    own_reads: Arc<OwnReads>,
}

/// Partition → offset answers of one ListOffsets round.
type Offsets = HashMap<(String, i32), i64>;

impl Worker {
    fn new(base: &ClientConfig, timeout: Duration, own_reads: Arc<OwnReads>) -> anyhow::Result<Self> {
        let client = |group: &str| -> anyhow::Result<BaseConsumer> {
            base.clone().set("group.id", group).create().context("creating a sampler client")
        };
        Ok(Self {
            base: base.clone(),
            timeout,
            meta: client("outflow-sampler")?,
            reader: client("outflow-sampler")?,
            groups: HashMap::new(),
            tenants: HashMap::new(),
            assigned: BTreeMap::new(),
            topic_tenant: HashMap::new(),
            own_reads,
        })
    }

    /// One refresh of every watched tenant: their new views, or why there are none.
    fn cycle(&mut self, watched: &[TenantId]) -> Result<Vec<(TenantId, Snapshot)>, String> {
        self.refresh(watched).map_err(|e| {
            let problem = format!("{e:#}");
            tracing::debug!(error = %problem, "live sampler refresh failed");
            problem
        })
    }

    /// Offsets of `partitions` at `time` (-1: the end, -2: the start), one batched request.
    fn offsets_at(&self, partitions: impl IntoIterator<Item = (String, i32)>, time: i64) -> anyhow::Result<Offsets> {
        let mut tpl = TopicPartitionList::new();
        for (topic, partition) in partitions {
            // ListOffsets' special times travel as librdkafka's logical offsets.
            let at = match time {
                -1 => Offset::End,
                -2 => Offset::Beginning,
                t => Offset::Offset(t),
            };
            tpl.add_partition_offset(&topic, partition, at)?;
        }
        if tpl.count() == 0 {
            return Ok(Offsets::new());
        }
        let answer = self.meta.offsets_for_times(tpl, self.timeout).context("listing offsets")?;
        Ok(answer
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(((e.topic().to_owned(), e.partition()), o)),
                _ => None,
            })
            .collect())
    }

    fn refresh(&mut self, watched: &[TenantId]) -> anyhow::Result<Vec<(TenantId, Snapshot)>> {
        let watched_set: BTreeSet<TenantId> = watched.iter().copied().collect();
        self.tenants.retain(|t, _| watched_set.contains(t));
        for &tenant in watched {
            self.tenants.entry(tenant).or_default();
        }
        // Partitions of the watched tenants' topics, from one metadata request.
        let metadata = self.meta.fetch_metadata(None, self.timeout).context("reading the cluster's metadata")?;
        let mut wanted: BTreeSet<(String, i32)> = BTreeSet::new();
        self.topic_tenant.clear();
        for &tenant in watched {
            for topic in [tenant.topic(), tenant.waf_topic()] {
                self.topic_tenant.insert(topic.clone(), tenant);
            }
        }
        for t in metadata.topics() {
            if t.error().is_none() && self.topic_tenant.contains_key(t.name()) {
                wanted.extend(t.partitions().iter().map(|p| (t.name().to_owned(), p.id())));
            }
        }
        let ends = self.offsets_at(wanted.iter().cloned(), -1)?;
        self.reassign(&wanted, &ends)?;
        self.read();
        let now = Instant::now();
        for (&tenant, state) in &mut self.tenants {
            if state.last_sample.is_none_or(|at| now.duration_since(at) >= SAMPLE_EVERY) {
                state.last_sample = Some(now);
                let unix = unix_ms() / 1000;
                for topic in [tenant.topic(), tenant.waf_topic()] {
                    let end = ends.iter().filter(|((t, _), _)| *t == topic).map(|(_, o)| o).sum();
                    let series = state.samples.entry(topic).or_default();
                    series.push_back(Sample { at: now, unix, end });
                    while series.front().is_some_and(|s| s.at.elapsed() > SAMPLE_KEEP) {
                        series.pop_front();
                    }
                }
            }
        }
        let groups = self.group_lags(watched, &wanted, &ends);
        let positions = self.positions();
        let mut views = Vec::with_capacity(watched.len());
        for &tenant in watched {
            let Some(state) = self.tenants.get_mut(&tenant) else { continue };
            let caught_up = wanted
                .iter()
                .filter(|(topic, _)| self.topic_tenant.get(topic) == Some(&tenant))
                .all(|key| positions.get(key).zip(ends.get(key)).is_some_and(|(pos, end)| pos >= end));
            views.push((tenant, state.view(tenant, groups.get(&tenant).cloned(), caught_up)));
        }
        Ok(views)
    }

    /// Adds the partitions of newly watched tenants at their start positions and removes those
    /// of tenants no longer watched; the others keep reading where they are.
    fn reassign(&mut self, wanted: &BTreeSet<(String, i32)>, ends: &Offsets) -> anyhow::Result<()> {
        let gone: Vec<(String, i32)> = self.assigned.keys().filter(|k| !wanted.contains(*k)).cloned().collect();
        if !gone.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for (topic, partition) in &gone {
                tpl.add_partition(topic, *partition);
            }
            self.reader.incremental_unassign(&tpl).context("unassigning partitions")?;
            for key in gone {
                self.assigned.remove(&key);
            }
        }
        let new: Vec<(String, i32)> = wanted.iter().filter(|k| !self.assigned.contains_key(*k)).cloned().collect();
        if new.is_empty() {
            return Ok(());
        }
        // WAF topics start an hour back (at most 5,000 records per partition), for the summary;
        // the others at their newest records, for the tail.
        let hour_ago = unix_ms() - WAF_WINDOW.as_millis() as i64;
        let waf_new: Vec<(String, i32)> = new.iter().filter(|(t, _)| t.ends_with("_waf")).cloned().collect();
        let since = self.offsets_at(waf_new, hour_ago)?;
        let mut tpl = TopicPartitionList::new();
        let mut started = Vec::with_capacity(new.len());
        for key in new {
            let end = ends.get(&key).copied().unwrap_or(0);
            let start = if key.0.ends_with("_waf") {
                // No offset for the time: nothing that recent.
                since.get(&key).copied().filter(|o| *o >= 0).unwrap_or(end).max(end - WAF_MAX_PER_PARTITION)
            } else {
                end - TAIL_MAX as i64
            };
            tpl.add_partition_offset(&key.0, key.1, Offset::Offset(start.max(0)))?;
            started.push((key, start.max(0)));
        }
        self.reader.incremental_assign(&tpl).context("assigning partitions")?;
        self.assigned.extend(started);
        Ok(())
    }

    /// Reads what arrived, within the cycle's budget.
    fn read(&mut self) {
        let deadline = Instant::now() + READ_BUDGET;
        let mut quiet = 0;
        while Instant::now() < deadline && quiet < 2 && !self.assigned.is_empty() {
            let Some(message) = self.reader.poll(Duration::from_millis(20)) else {
                quiet += 1;
                continue;
            };
            quiet = 0;
            let Ok(message) = message else { continue };
            let Some(&tenant) = self.topic_tenant.get(message.topic()) else { continue };
            let Some(state) = self.tenants.get_mut(&tenant) else { continue };
            let payload = message.payload().unwrap_or_default();
            self.own_reads.add(message.topic(), payload.len() + message.key().map_or(0, <[u8]>::len));
            let is_waf = message.topic().ends_with("_waf");
            let limit = if is_waf { WAF_RAW_BYTES } else { TAIL_VALUE_BYTES };
            let timestamp = message.timestamp().to_millis();
            let json = if is_waf { serde_json::from_slice::<serde_json::Value>(payload).ok() } else { None };
            if is_waf {
                let facts = json.as_ref().map(Facts::from_json).unwrap_or_default();
                state.waf.push_back((timestamp.unwrap_or_else(unix_ms), facts));
            }
            let mean = state.mean_size.entry(message.topic().to_owned()).or_insert(payload.len() as f64);
            *mean = 0.9 * *mean + 0.1 * payload.len() as f64;
            let ring = state.tail.entry((message.topic().to_owned(), message.partition())).or_default();
            ring.push_back(Read {
                partition: message.partition(),
                offset: message.offset(),
                timestamp,
                key: message.key().map(<[u8]>::to_vec),
                value: payload[..payload.len().min(limit)].to_vec(),
                len: payload.len(),
                waf: json.as_ref().map(event),
            });
            while ring.len() > TAIL_MAX {
                ring.pop_front();
            }
            state.changed = true;
        }
    }

    /// The reader's position in each assigned partition: where it started until it read a
    /// record there (an empty partition has no position of its own).
    fn positions(&self) -> Offsets {
        let mut out: Offsets = self.assigned.clone().into_iter().collect();
        if let Ok(tpl) = self.reader.position() {
            for e in tpl.elements() {
                if let Offset::Offset(o) = e.offset() {
                    out.insert((e.topic().to_owned(), e.partition()), o);
                }
            }
        }
        out
    }

    /// The consumer groups of each watched tenant with their lag.
    fn group_lags(
        &mut self,
        watched: &[TenantId],
        partitions: &BTreeSet<(String, i32)>,
        ends: &Offsets,
    ) -> HashMap<TenantId, Result<Vec<GroupLag>, String>> {
        let listed = match self.meta.fetch_group_list(None, self.timeout) {
            Ok(list) => list,
            Err(e) => {
                let problem = format!("listing consumer groups: {e}");
                return watched.iter().map(|t| (*t, Err(problem.clone()))).collect();
            }
        };
        let by_prefix: Vec<(TenantId, String)> = watched.iter().map(|t| (*t, t.group_prefix())).collect();
        let mut found: BTreeMap<TenantId, Vec<(String, String, usize)>> = BTreeMap::new();
        for g in listed.groups() {
            if let Some((tenant, _)) = by_prefix.iter().find(|(_, prefix)| g.name().starts_with(prefix.as_str())) {
                found.entry(*tenant).or_default().push((g.name().to_owned(), g.state().to_owned(), g.members().len()));
            }
        }
        // Clients of groups that are gone (or whose tenant is no longer watched) are closed.
        let live: BTreeSet<String> = found.values().flatten().map(|(name, _, _)| name.clone()).collect();
        self.groups.retain(|name, _| live.contains(name));
        let starts = self.offsets_at(partitions.iter().cloned(), -2).unwrap_or_default();
        let mut out = HashMap::new();
        for &tenant in watched {
            let mut lags = Vec::new();
            let mut problem = None;
            for (group, state, members) in found.remove(&tenant).unwrap_or_default() {
                match self.committed(&group, tenant, partitions, ends, &starts) {
                    Ok(partitions) => {
                        let total_lag = partitions.iter().map(|p| p.lag).sum();
                        lags.push(GroupLag { group, state, members, partitions, total_lag });
                    }
                    Err(e) => problem = Some(format!("{e:#}")),
                }
            }
            lags.sort_by(|a, b| a.group.cmp(&b.group));
            out.insert(
                tenant,
                match problem {
                    Some(p) if lags.is_empty() => Err(p),
                    _ => Ok(lags),
                },
            );
        }
        out
    }

    /// `group`'s committed offsets on the tenant's partitions, through a client kept for it.
    fn committed(
        &mut self,
        group: &str,
        tenant: TenantId,
        partitions: &BTreeSet<(String, i32)>,
        ends: &Offsets,
        starts: &Offsets,
    ) -> anyhow::Result<Vec<PartitionLag>> {
        if !self.groups.contains_key(group) {
            let client: BaseConsumer =
                self.base.clone().set("group.id", group).create().context("creating a group client")?;
            self.groups.insert(group.to_owned(), client);
        }
        let mut tpl = TopicPartitionList::new();
        let topics = [tenant.topic(), tenant.waf_topic()];
        for (topic, partition) in partitions.iter().filter(|(t, _)| topics.contains(t)) {
            tpl.add_partition(topic, *partition);
        }
        let committed = self.groups[group].committed_offsets(tpl, self.timeout).context("reading committed offsets")?;
        let elements = committed.elements();
        // Topics the group reads: those it committed on. A partition of such a topic without a
        // commit yet starts at the oldest record, as every bundle config says: all it holds is lag.
        let consumed: BTreeSet<String> =
            elements.iter().filter(|e| matches!(e.offset(), Offset::Offset(_))).map(|e| e.topic().to_owned()).collect();
        Ok(elements
            .iter()
            .filter_map(|e| {
                let key = (e.topic().to_owned(), e.partition());
                let high = ends.get(&key).copied().unwrap_or(0);
                let committed = match e.offset() {
                    Offset::Offset(committed) => committed,
                    _ if consumed.contains(e.topic()) => starts.get(&key).copied().unwrap_or(0),
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
            .collect())
    }
}

impl TenantState {
    fn view(&mut self, tenant: TenantId, groups: Option<Result<Vec<GroupLag>, String>>, caught_up: bool) -> Snapshot {
        let cutoff = unix_ms() - WAF_WINDOW.as_millis() as i64;
        let cap = (WAF_MAX_PER_PARTITION as usize) * 8;
        while self.waf.front().is_some_and(|(at, _)| *at < cutoff) || self.waf.len() > cap {
            self.waf.pop_front();
            self.changed = true;
        }
        if self.changed {
            self.summary = summarize_facts(self.waf.iter().map(|(_, f)| f));
            self.changed = false;
        }
        let newest = |topic: &str| -> Vec<&Read> {
            let mut reads: Vec<&Read> =
                self.tail.iter().filter(|((t, _), _)| t == topic).flat_map(|(_, ring)| ring.iter()).collect();
            reads.sort_by(|a, b| b.timestamp.cmp(&a.timestamp).then(b.offset.cmp(&a.offset)));
            reads.truncate(TAIL_MAX);
            reads
        };
        let waf_topic = tenant.waf_topic();
        let tail = [tenant.topic(), waf_topic.clone()]
            .into_iter()
            .map(|topic| {
                let limit = if topic == waf_topic { WAF_RAW_BYTES } else { TAIL_VALUE_BYTES };
                let records = newest(&topic).into_iter().map(|r| r.record(limit)).collect();
                (topic, records)
            })
            .collect();
        let waf_rows = newest(&waf_topic)
            .into_iter()
            .map(|r| WafRow { event: r.waf.clone().unwrap_or_default(), record: r.record(WAF_RAW_BYTES) })
            .collect();
        let throughput = [tenant.topic(), waf_topic]
            .into_iter()
            .map(|topic| {
                let series = self.samples.get(&topic);
                let records_per_sec = series.and_then(|s| rate(s, RATE_WINDOW));
                let bytes_per_sec = records_per_sec.zip(self.mean_size.get(&topic)).map(|(r, size)| r * size);
                TopicRate { history: series.map(history).unwrap_or_default(), topic, records_per_sec, bytes_per_sec }
            })
            .collect();
        Snapshot {
            groups: groups.unwrap_or_else(|| Ok(Vec::new())),
            throughput,
            tail,
            waf_rows,
            waf: self.summary.clone(),
            sampled_at: unix_ms(),
            caught_up,
            problem: None,
        }
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
