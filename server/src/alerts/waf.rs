//! The alert evaluator's reader of `c<N>_waf`: one thread and one long-lived consumer
//! (read_committed, assigned, never committing), reading the topics of tenants with a
//! `waf_burst` rule. It keeps each tenant's last hour of events — time, severity, rule id,
//! client — and nothing else; after a restart it rebuilds them by seeking an hour back by time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::rules::{GroupBy, WafBurst};
use crate::config::KafkaConfig;
use crate::tenants::TenantId;
use crate::usage::OwnReads;

/// The longest window a rule may have: what the reader keeps and seeks back on start.
pub const HORIZON_MS: i64 = 3600 * 1000;

/// One WAF event, reduced to what rules count by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The record's timestamp (the raw record's, carried by the splitter), unix ms.
    pub at_ms: i64,
    /// Syslog severity number; 255 when the record has none.
    pub severity: u8,
    pub rule_id: Option<Box<str>>,
    pub client: Option<Box<str>>,
}

/// Decodes a split (or unsplit: its first message) WAF record: ModSecurity v3 and 2.9, Coraza.
pub fn decode(at_ms: i64, value: &[u8]) -> Option<Event> {
    use crate::waf::events;
    let record: serde_json::Value = serde_json::from_slice(value).ok()?;
    let event = events::event(&record);
    let severity = event.severity.as_deref().and_then(events::severity_number).map_or(255, |n| n as u8);
    Some(Event {
        at_ms,
        severity,
        rule_id: event.rule_id.map(String::into_boxed_str),
        client: event.client.map(String::into_boxed_str),
    })
}

/// An event from the splitter's headers (`waf-severity`, `waf-rule-id`, `waf-client`), without
/// reading the record; `None` for a record without `message-count` (not from outflow's
/// splitter), whose body must be decoded instead.
pub fn from_headers<'a>(at_ms: i64, headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Option<Event> {
    let mut ours = false;
    let mut event = Event { at_ms, severity: 255, rule_id: None, client: None };
    for (key, value) in headers {
        let text = || std::str::from_utf8(value).ok().map(Box::<str>::from);
        match key {
            "message-count" => ours = true,
            "waf-severity" => {
                event.severity = text().and_then(|w| crate::waf::events::severity_number(&w)).map_or(255, |n| n as u8)
            }
            "waf-rule-id" => event.rule_id = text(),
            "waf-client" => event.client = text(),
            _ => {}
        }
    }
    ours.then_some(event)
}

/// Events of `rule` in the window ending at `now_ms`, per group key (`""` without grouping).
pub fn count<'a>(events: impl IntoIterator<Item = &'a Event>, rule: &WafBurst, now_ms: i64) -> HashMap<String, u64> {
    let from = now_ms - rule.window_secs as i64 * 1000;
    let rank = rule.severity_rank();
    let mut counts: HashMap<String, u64> = HashMap::new();
    for e in events {
        if e.at_ms <= from || usize::from(e.severity) > rank || !rule.counts_rule(e.rule_id.as_deref()) {
            continue;
        }
        let key = match rule.group_by {
            GroupBy::None => "",
            GroupBy::ClientIp => e.client.as_deref().unwrap_or("unknown"),
            GroupBy::RuleId => e.rule_id.as_deref().unwrap_or("unknown"),
        };
        match counts.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                counts.insert(key.to_owned(), 1);
            }
        }
    }
    counts
}

#[derive(Default)]
struct Shared {
    /// Tenants whose topics the evaluator wants read.
    wanted: HashSet<TenantId>,
    events: HashMap<TenantId, VecDeque<Event>>,
    /// Tenants whose every partition has been read up to where it ended at assignment.
    caught_up: HashSet<TenantId>,
    problem: Option<String>,
}

/// The reader. Its thread starts with the first wanted tenant.
pub struct Reader {
    base: ClientConfig,
    timeout: Duration,
    shared: Mutex<Shared>,
    started: AtomicBool,
    stopping: AtomicBool,
    /// Counts what it fetches: outflow's reads are not the tenant's usage.
    own_reads: Arc<OwnReads>,
}

impl Reader {
    pub fn new(config: &KafkaConfig, own_reads: Arc<OwnReads>) -> anyhow::Result<Arc<Self>> {
        let mut base = crate::kafka::admin::client_config(config, "outflow-alerts")?;
        base.set("enable.auto.commit", "false")
            .set("enable.partition.eof", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("group.id", "outflow-alerts");
        Ok(Arc::new(Self {
            base,
            timeout: Duration::from_millis(config.request_timeout_ms),
            shared: Mutex::default(),
            started: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            own_reads,
        }))
    }

    /// Sets the tenants to read (starting the thread on first use).
    pub fn want(self: &Arc<Self>, tenants: HashSet<TenantId>) {
        let any = !tenants.is_empty();
        self.shared.lock().expect("reader lock").wanted = tenants;
        if any && !self.started.swap(true, Ordering::SeqCst) {
            let me = self.clone();
            std::thread::Builder::new()
                .name("alerts-waf".into())
                .spawn(move || me.run())
                .expect("spawning the alerts WAF reader");
        }
    }

    /// Runs `f` over a tenant's events (oldest first, roughly: partitions interleave), and says
    /// whether the reader has caught up with the tenant's topic (its counts are complete).
    pub fn with_events<T>(&self, tenant: TenantId, f: impl FnOnce(&VecDeque<Event>) -> T) -> (T, bool) {
        let shared = self.shared.lock().expect("reader lock");
        let empty = VecDeque::new();
        let events = shared.events.get(&tenant).unwrap_or(&empty);
        (f(events), shared.caught_up.contains(&tenant))
    }

    pub fn problem(&self) -> Option<String> {
        self.shared.lock().expect("reader lock").problem.clone()
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn run(self: Arc<Self>) {
        let consumer: BaseConsumer = match self.base.create() {
            Ok(c) => c,
            Err(e) => {
                self.shared.lock().expect("reader lock").problem = Some(format!("cannot create a consumer: {e}"));
                return;
            }
        };
        // (topic, partition) → the offset it ended at when assigned, until reached.
        let mut assigned: HashMap<(String, i32), Option<i64>> = HashMap::new();
        let mut owners: HashMap<String, TenantId> = HashMap::new();
        let mut last_sync = std::time::Instant::now() - Duration::from_secs(60);
        while !self.stopping.load(Ordering::SeqCst) {
            if last_sync.elapsed() >= Duration::from_secs(2) {
                last_sync = std::time::Instant::now();
                let wanted = self.shared.lock().expect("reader lock").wanted.clone();
                let result = self.sync(&consumer, &wanted, &mut assigned, &mut owners);
                let mut shared = self.shared.lock().expect("reader lock");
                shared.problem = result.err().map(|e| format!("{e:#}"));
                shared.events.retain(|t, _| wanted.contains(t));
            }
            let mut batch: Vec<(TenantId, Event)> = Vec::new();
            if let Some(result) = consumer.poll(Duration::from_millis(200)) {
                let mut next = Some(result);
                while let Some(result) = next.take() {
                    if let Ok(m) = result {
                        let size = m.payload().map_or(0, <[u8]>::len) + m.key().map_or(0, <[u8]>::len);
                        self.own_reads.add(m.topic(), size);
                        let at = m.timestamp().to_millis().unwrap_or(0);
                        let headers = m.headers().map(|h| h.iter().map(|h| (h.key, h.value.unwrap_or_default())));
                        let event = headers
                            .and_then(|h| from_headers(at, h))
                            .or_else(|| decode(at, m.payload().unwrap_or_default()));
                        if let (Some(&tenant), Some(event)) = (owners.get(m.topic()), event) {
                            batch.push((tenant, event));
                        }
                    }
                    if batch.len() < 10_000 {
                        next = consumer.poll(Duration::ZERO);
                    }
                }
            }
            // Caught up: every partition's position at or past where it ended when assigned.
            let positions = consumer.position().ok();
            for (key, end) in assigned.iter_mut() {
                if let (Some(e), Some(pos)) = (*end, positions.as_ref()) {
                    let at = pos.find_partition(&key.0, key.1).and_then(|p| match p.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    });
                    if at.is_some_and(|o| o >= e) {
                        *end = None;
                    }
                }
            }
            let now = crate::clock::now_ms();
            let mut shared = self.shared.lock().expect("reader lock");
            for (tenant, event) in batch {
                shared.events.entry(tenant).or_default().push_back(event);
            }
            for events in shared.events.values_mut() {
                while events.front().is_some_and(|e| e.at_ms < now - HORIZON_MS) {
                    events.pop_front();
                }
            }
            let mut caught = HashSet::new();
            for (topic, tenant) in &owners {
                if assigned.iter().filter(|((t, _), _)| t == topic).all(|(_, end)| end.is_none()) {
                    caught.insert(*tenant);
                }
            }
            shared.caught_up = caught;
        }
    }

    /// Assigns the partitions of wanted tenants' WAF topics (an hour back by time) and drops
    /// the others.
    fn sync(
        &self,
        consumer: &BaseConsumer,
        wanted: &HashSet<TenantId>,
        assigned: &mut HashMap<(String, i32), Option<i64>>,
        owners: &mut HashMap<String, TenantId>,
    ) -> anyhow::Result<()> {
        let topics: HashMap<String, TenantId> = wanted.iter().map(|t| (t.waf_topic(), *t)).collect();
        let mut gone = TopicPartitionList::new();
        for (topic, partition) in assigned.keys() {
            if !topics.contains_key(topic) {
                gone.add_partition(topic, *partition);
            }
        }
        if gone.count() > 0 {
            consumer.incremental_unassign(&gone).context("unassigning")?;
            assigned.retain(|(t, _), _| topics.contains_key(t));
        }
        owners.retain(|t, _| topics.contains_key(t));
        let since = crate::clock::now_ms() - HORIZON_MS;
        for (topic, tenant) in &topics {
            let metadata = consumer.fetch_metadata(Some(topic), self.timeout).context("reading metadata")?;
            let Some(t) = metadata.topics().first() else { continue };
            let new: Vec<i32> = t
                .partitions()
                .iter()
                .map(|p| p.id())
                .filter(|p| !assigned.contains_key(&(topic.clone(), *p)))
                .collect();
            if new.is_empty() {
                owners.insert(topic.clone(), *tenant);
                continue;
            }
            let mut at = TopicPartitionList::new();
            for p in &new {
                at.add_partition_offset(topic, *p, Offset::Offset(since))?;
            }
            let starts = consumer.offsets_for_times(at, self.timeout).context("listing offsets by time")?;
            let mut tpl = TopicPartitionList::new();
            for p in &new {
                let (_, high) = consumer.fetch_watermarks(topic, *p, self.timeout).context("reading watermarks")?;
                let start = starts
                    .find_partition(topic, *p)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    // Nothing that recent: start at the end.
                    .unwrap_or(high);
                tpl.add_partition_offset(topic, *p, Offset::Offset(start))?;
                assigned.insert((topic.clone(), *p), (start < high).then_some(high));
            }
            consumer.incremental_assign(&tpl).context("assigning")?;
            owners.insert(topic.clone(), *tenant);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at_ms: i64, severity: u8, rule: &str, client: &str) -> Event {
        Event { at_ms, severity, rule_id: Some(rule.into()), client: Some(client.into()) }
    }

    #[test]
    fn counts_by_window_severity_rules_and_group() {
        let now = 1_000_000;
        let events = [
            ev(now - 10_000, 2, "942100", "a"),
            ev(now - 20_000, 2, "942100", "b"),
            ev(now - 30_000, 4, "920350", "a"),  // WARNING: below CRITICAL
            ev(now - 40_000, 2, "949110", "a"),  // excluded by default
            ev(now - 400_000, 2, "942100", "a"), // outside 300 s
            ev(now + 5_000, 0, "942100", "a"),   // a clock ahead still counts
        ];
        let rule = WafBurst::default();
        assert_eq!(count(&events, &rule, now), HashMap::from([(String::new(), 3)]));
        let by_client = WafBurst { group_by: GroupBy::ClientIp, ..WafBurst::default() };
        assert_eq!(count(&events, &by_client, now), HashMap::from([("a".into(), 2), ("b".into(), 1)]));
        let warnings = WafBurst { min_severity: "WARNING".into(), group_by: GroupBy::RuleId, ..WafBurst::default() };
        assert_eq!(count(&events, &warnings, now)["920350"], 1);
    }

    #[test]
    fn decodes_the_three_shapes() {
        let v3 = br#"{"transaction":{"client_ip":"203.0.113.9","messages":{"message":"SQLi","details":{"ruleId":"942100","severity":"2"}}}}"#;
        assert_eq!(decode(5, v3), Some(ev(5, 2, "942100", "203.0.113.9")));
        let v29 = br#"{"transaction":{"remote_address":"203.0.113.7"},"audit_data":{"messages":"Warning. [id \"942100\"] [severity \"CRITICAL\"]"}}"#;
        assert_eq!(decode(5, v29), Some(ev(5, 2, "942100", "203.0.113.7")));
        let coraza = br#"{"transaction":{"client_ip":"198.51.100.1"},"messages":{"data":{"id":942100,"severity":2}}}"#;
        assert_eq!(decode(5, coraza), Some(ev(5, 2, "942100", "198.51.100.1")));
        assert_eq!(decode(5, b"not json"), None);
    }
}
