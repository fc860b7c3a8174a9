//! The evaluator: on the replica holding the `alerts` lease, every few seconds, reads each
//! rule's inputs — WAF events from its own `c<N>_waf` reader, group lag from the shared
//! sampler, credentials and brokers from the database — steps the [`Engine`] and writes the
//! instance changes, their history and the queued messages in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::deliver::{LEASE, LEASE_TTL};
use super::engine::{Engine, Obs, Rule, Writes};
use super::rules::{GroupBy, Params, glob_matches};
use super::waf;
use crate::config::Config;
use crate::kafka::sampler::Sampler;
use crate::store::{self, Store, lease};
use crate::tenants::TenantId;

/// A group's committed progress as last seen (for `group_stalled`).
#[derive(Debug, Clone, Copy)]
struct Progress {
    committed: i64,
    high_watermark: i64,
    /// When the committed offsets last moved (or were first seen), unix seconds.
    since: i64,
}

pub struct Evaluator {
    store: Store,
    config: Arc<Config>,
    sampler: Option<Arc<Sampler>>,
    reader: Option<Arc<waf::Reader>>,
    engine: Engine,
    progress: HashMap<(i64, String), Progress>,
    /// Reads dead-letter topics' ends (for `dlq_growth`).
    meta: Option<Arc<rdkafka::consumer::BaseConsumer>>,
    /// Per dead-letter topic: (unix seconds, sum of its partitions' ends), oldest first.
    dlq_history: HashMap<String, VecDeque<(i64, i64)>>,
}

fn labels(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

impl Evaluator {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        sampler: Option<Arc<Sampler>>,
        own_reads: Arc<crate::usage::OwnReads>,
    ) -> anyhow::Result<Self> {
        let (reader, meta) = match config.kafka.bootstrap {
            Some(_) => {
                let meta: rdkafka::consumer::BaseConsumer =
                    crate::kafka::admin::client_config(&config.kafka, "outflow-alerts-meta")?.create()?;
                (Some(waf::Reader::new(&config.kafka, own_reads)?), Some(Arc::new(meta)))
            }
            None => (None, None),
        };
        let engine = Engine::new(config.alerts.group_wait_secs as i64 * 1000, &config.public_url());
        Ok(Self { store, config, sampler, reader, engine, progress: HashMap::new(), meta, dlq_history: HashMap::new() })
    }

    /// Evaluates until cancelled, while holding the lease.
    pub async fn run(mut self, holder: String, cancel: CancellationToken) {
        let interval = Duration::from_millis(self.config.alerts.evaluate_interval_ms.max(100));
        let mut leading = false;
        loop {
            // Delivery's lease: evaluation and delivery run on the same replica.
            match lease::acquire(&self.store, LEASE, &holder, LEASE_TTL.as_millis() as i64).await {
                Ok(Some(_)) => {
                    if !leading {
                        match store::alerts::open_instances(&self.store).await {
                            Ok(rows) => {
                                self.engine.load(rows);
                                self.progress.clear();
                                leading = true;
                                tracing::info!(holder, "took the alerts lease");
                            }
                            Err(e) => tracing::warn!(error = %e, "could not load alert state"),
                        }
                    }
                    if leading && let Err(e) = self.tick().await {
                        // Memory may now be ahead of the database: reload it next time.
                        tracing::warn!(error = %e, "alert evaluation failed");
                        leading = false;
                    }
                }
                Ok(None) => leading = false,
                Err(e) => {
                    tracing::warn!(error = %e, "could not renew the alerts lease");
                    leading = false;
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(interval) => {}
            }
        }
        if let Some(reader) = &self.reader {
            reader.stop();
        }
        if leading && let Err(e) = lease::release(&self.store, LEASE, &holder).await {
            tracing::warn!(error = %e, "could not release the alerts lease");
        }
    }

    /// One evaluation of every rule.
    pub async fn tick(&mut self) -> anyhow::Result<()> {
        let now_ms = crate::clock::now_ms();
        let rules: Vec<Rule> =
            store::alerts::all_rules(&self.store).await?.into_iter().filter_map(Rule::parse).collect();
        self.engine.retain_rules(&rules.iter().map(|r| r.row.id).collect());
        if let Some(reader) = &self.reader {
            let wanted: HashSet<TenantId> = rules
                .iter()
                .filter(|r| matches!(r.params, Params::WafBurst(_)))
                .filter_map(|r| r.row.tenant_id.and_then(|t| TenantId::parse(t).ok()))
                .collect();
            reader.want(wanted);
        }
        let mut writes = Writes::default();
        for rule in &rules {
            match self.observe(rule, now_ms).await {
                Ok(Some(obs)) => self.engine.step(rule, obs, now_ms, &mut writes),
                Ok(None) => {}
                Err(e) => tracing::warn!(rule = rule.row.id, error = %e, "alert rule inputs unreadable"),
            }
        }
        if writes.instances.is_empty() && writes.messages.is_empty() {
            return Ok(());
        }
        let mut tx = store::alerts::begin(&self.store).await?;
        for row in &writes.instances {
            store::alerts::write_instance(&mut tx, row).await?;
        }
        for (tenant, row, kind) in &writes.events {
            store::alerts::write_event(&mut tx, *tenant, row, kind).await?;
        }
        let queued = !writes.messages.is_empty();
        for (rule, message) in &writes.messages {
            let channels = store::alert_channels::of_rule(&mut tx, *rule).await?;
            super::deliver::enqueue(&mut tx, &channels, message, now_ms).await?;
        }
        tx.commit().await?;
        if queued {
            self.store.signals().alert_deliveries_queued();
        }
        Ok(())
    }

    /// What a rule's inputs show now; `None` while they are incomplete (the step would take
    /// missing instances for cleared).
    async fn observe(&mut self, rule: &Rule, now_ms: i64) -> anyhow::Result<Option<Vec<Obs>>> {
        let now = now_ms / 1000;
        let tenant = rule.row.tenant_id.and_then(|t| TenantId::parse(t).ok());
        match &rule.params {
            Params::WafBurst(p) => {
                let (Some(reader), Some(tenant)) = (&self.reader, tenant) else { return Ok(None) };
                let (counts, caught_up) = reader.with_events(tenant, |events| waf::count(events, p, now_ms));
                if !caught_up {
                    return Ok(None);
                }
                let half = p.threshold.div_ceil(2);
                Ok(Some(
                    counts
                        .into_iter()
                        .filter(|(_, n)| *n >= half)
                        .map(|(key, n)| Obs {
                            labels: match p.group_by {
                                GroupBy::None => BTreeMap::new(),
                                GroupBy::ClientIp => labels(&[("client_ip", key)]),
                                GroupBy::RuleId => labels(&[("rule_id", key)]),
                            },
                            value: n as f64,
                            active: n >= p.threshold,
                            clear: n < half,
                        })
                        .collect(),
                ))
            }
            Params::LagAbove(_) | Params::GroupStalled(_) => {
                let (Some(sampler), Some(tenant)) = (&self.sampler, tenant) else { return Ok(None) };
                let Some(view) = sampler.latest(tenant) else { return Ok(None) };
                let Ok(groups) = &view.groups else { return Ok(None) };
                let glob = match &rule.params {
                    Params::LagAbove(p) => &p.group,
                    Params::GroupStalled(p) => &p.group,
                    _ => unreachable!(),
                };
                let mut out = Vec::new();
                let mut seen = BTreeSet::new();
                for g in groups.iter().filter(|g| glob_matches(glob, &g.group)) {
                    let l = labels(&[("group", g.group.clone())]);
                    match &rule.params {
                        Params::LagAbove(p) => out.push(Obs {
                            labels: l,
                            value: g.total_lag as f64,
                            active: g.total_lag > p.threshold,
                            clear: g.total_lag <= p.threshold,
                        }),
                        Params::GroupStalled(p) => {
                            seen.insert(g.group.clone());
                            let committed: i64 = g.partitions.iter().map(|x| x.committed.max(0)).sum();
                            let high: i64 = g.partitions.iter().map(|x| x.high_watermark).sum();
                            let entry = self.progress.entry((rule.row.id, g.group.clone())).or_insert(Progress {
                                committed,
                                high_watermark: high,
                                since: now,
                            });
                            if entry.committed != committed {
                                *entry = Progress { committed, high_watermark: high, since: now };
                            }
                            let idle = now - entry.since;
                            let grew = high > entry.high_watermark || g.state == "Empty";
                            let stalled = g.total_lag > 0 && grew && idle >= p.for_secs as i64;
                            out.push(Obs { labels: l, value: idle as f64, active: stalled, clear: !stalled });
                        }
                        _ => {}
                    }
                }
                if matches!(rule.params, Params::GroupStalled(_)) {
                    self.progress.retain(|(r, g), _| *r != rule.row.id || seen.contains(g));
                }
                Ok(Some(out))
            }
            Params::CredentialExpiring(p) => {
                let Some(tenant) = tenant else { return Ok(None) };
                let credentials = store::credentials::list(&self.store, tenant).await?;
                let newest = credentials.iter().filter(|c| c.state == "active").max_by_key(|c| c.k);
                let Some(c) = newest else { return Ok(Some(Vec::new())) };
                let left = c.not_after - now;
                Ok(Some(
                    p.days
                        .iter()
                        .filter(|d| left <= **d as i64 * 86_400)
                        .map(|d| Obs {
                            labels: labels(&[("credential", c.cn.clone()), ("within_days", d.to_string())]),
                            value: (left as f64 / 86_400.0 * 10.0).round() / 10.0,
                            active: true,
                            clear: false,
                        })
                        .collect(),
                ))
            }
            Params::DlqGrowth(p) => {
                let Some(meta) = self.meta.clone() else { return Ok(None) };
                let (topic, timeout) = (p.topic.clone(), Duration::from_millis(self.config.kafka.request_timeout_ms));
                let total = tokio::task::spawn_blocking(move || -> anyhow::Result<Option<i64>> {
                    use rdkafka::consumer::Consumer;
                    let metadata = meta.fetch_metadata(Some(&topic), timeout)?;
                    let Some(t) = metadata.topics().first().filter(|t| t.error().is_none()) else { return Ok(None) };
                    let mut sum = 0;
                    for partition in t.partitions() {
                        sum += meta.fetch_watermarks(&topic, partition.id(), timeout)?.1;
                    }
                    Ok(Some(sum))
                })
                .await??;
                // No such topic (yet): nothing dead-lettered.
                let Some(total) = total else { return Ok(Some(Vec::new())) };
                let history = self.dlq_history.entry(p.topic.clone()).or_default();
                history.push_back((now, total));
                // Keep the newest sample at or before the window's start as the base.
                while history.len() >= 2 && history[1].0 <= now - p.window_secs as i64 {
                    history.pop_front();
                }
                let growth = (total - history.front().map_or(total, |h| h.1)).max(0) as u64;
                Ok(Some(vec![Obs {
                    labels: labels(&[("topic", p.topic.clone())]),
                    value: growth as f64,
                    active: growth >= p.threshold,
                    clear: growth < p.threshold.div_ceil(2),
                }]))
            }
            Params::AllowlistUnapplied(_) | Params::AgentStale(_) => {
                let needed = match (&rule.params, tenant) {
                    (Params::AgentStale(_), _) => None,
                    (_, Some(t)) => match store::firewall::listing(&self.store, t).await? {
                        Some(listing) => listing.entries.iter().map(|e| e.added_version).max(),
                        None => None,
                    },
                    (_, None) => Some(store::firewall::version(&self.store).await?),
                };
                let stale_after = self.config.firewall.stale_after_secs as i64;
                let brokers = store::firewall::brokers(&self.store).await?;
                let mut out = Vec::new();
                for b in brokers {
                    let silent = (now - b.last_contact_at).max(0);
                    let stale = silent > stale_after;
                    let (active, value) = match (&rule.params, needed) {
                        (Params::AgentStale(_), _) => (stale, silent as f64),
                        (_, Some(v)) => (stale || b.applied_version < v, (v - b.applied_version).max(0) as f64),
                        (_, None) => (false, 0.0),
                    };
                    out.push(Obs { labels: labels(&[("broker", b.broker_id)]), value, active, clear: !active });
                }
                Ok(Some(out))
            }
        }
    }
}
