//! The alert lifecycle, without I/O: observations in, instance writes, history and messages
//! out. pending → firing → resolved, with a hold before firing (`fire_after`), hysteresis before
//! resolving (`clear_after`), repeats while firing, and grouping: the instances of one rule that
//! fire (or resolve) within `group_wait` of each other go out as one message.
//!
//! An instance becomes `firing` in the database only in the write that also queues its message,
//! so a restarted evaluator (which loads the open instances) never announces a firing twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::rules::{Kind, Params};
use super::{Instance, Message, Status, fingerprint};
use crate::store::alerts::{InstanceRow, RuleRow};

/// What a rule's inputs say about one instance right now.
#[derive(Debug, Clone, PartialEq)]
pub struct Obs {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    /// The firing condition holds.
    pub active: bool,
    /// The resolving condition holds (for WAF bursts: below half the threshold).
    pub clear: bool,
}

/// Seconds a condition must hold before firing, and before resolving.
pub fn timing(params: &Params) -> (i64, i64) {
    match params {
        Params::WafBurst(p) => (0, p.window_secs as i64),
        Params::LagAbove(p) => (p.for_secs as i64, p.for_secs as i64),
        Params::GroupStalled(_) | Params::CredentialExpiring(_) => (0, 0),
        Params::AllowlistUnapplied(p) | Params::AgentStale(p) => (p.for_secs as i64, 0),
        Params::DlqGrowth(p) => (0, p.window_secs as i64),
    }
}

/// One sentence for an instance.
pub fn describe(kind: Kind, params: &Params, labels: &BTreeMap<String, String>, value: f64) -> String {
    let label = |k: &str| labels.get(k).map(String::as_str).unwrap_or("?");
    match (kind, params) {
        (Kind::WafBurst, Params::WafBurst(p)) => {
            let scope = labels.iter().next().map(|(k, v)| format!(" from {k} {v}")).unwrap_or_default();
            format!("{value} WAF events at {} or worse in {} s{scope}", p.min_severity, p.window_secs)
        }
        (Kind::LagAbove, _) => format!("consumer group {} is {value} records behind", label("group")),
        (Kind::GroupStalled, _) => {
            format!("consumer group {} has committed nothing for {value} s while its topics grew", label("group"))
        }
        (Kind::CredentialExpiring, _) => {
            format!("credential {} expires in {value:.1} days (within {})", label("credential"), label("within_days"))
        }
        (Kind::AllowlistUnapplied, _) => {
            format!("broker {} has not applied the allowlist ({value} versions behind)", label("broker"))
        }
        (Kind::DlqGrowth, Params::DlqGrowth(p)) => {
            format!("{value} WAF records dead-lettered to {} in {} s", label("topic"), p.window_secs)
        }
        (Kind::AgentStale, _) => {
            format!("the firewall agent of broker {} has been silent for {value} s", label("broker"))
        }
        _ => format!("{} {value}", kind.as_str()),
    }
}

#[derive(Debug, Default)]
struct Group {
    opened_ms: i64,
    fire: BTreeSet<String>,
    repeat: BTreeSet<String>,
    resolve: BTreeSet<String>,
}

impl Group {
    fn is_empty(&self) -> bool {
        self.fire.is_empty() && self.repeat.is_empty() && self.resolve.is_empty()
    }
}

/// What one tick decided: rows to write, history to append and messages to queue, for one
/// transaction.
#[derive(Debug, Default)]
pub struct Writes {
    pub instances: Vec<InstanceRow>,
    /// (tenant, instance as written, event kind)
    pub events: Vec<(Option<i64>, InstanceRow, &'static str)>,
    /// (rule id, message) for the rule's channels.
    pub messages: Vec<(i64, Message)>,
}

/// A rule with its parsed parameters.
#[derive(Debug, Clone)]
pub struct Rule {
    pub row: RuleRow,
    pub kind: Kind,
    pub params: Params,
}

impl Rule {
    pub fn parse(row: RuleRow) -> Option<Rule> {
        let kind = Kind::parse(&row.kind)?;
        let value: serde_json::Value = serde_json::from_str(&row.params).ok()?;
        let params = Params::parse(kind, value, row.tenant_id).ok()?;
        Some(Rule { row, kind, params })
    }
}

#[derive(Debug, Default)]
pub struct Engine {
    instances: HashMap<(i64, String), InstanceRow>,
    groups: HashMap<i64, Group>,
    pub group_wait_ms: i64,
    /// Base URL of the dashboard, for links in messages.
    pub public_url: String,
}

impl Engine {
    pub fn new(group_wait_ms: i64, public_url: &str) -> Self {
        Self { group_wait_ms, public_url: public_url.trim_end_matches('/').to_owned(), ..Self::default() }
    }

    /// Takes up the open instances (pending, firing) from the database.
    pub fn load(&mut self, rows: Vec<InstanceRow>) {
        self.instances = rows.into_iter().map(|r| ((r.rule_id, r.fingerprint.clone()), r)).collect();
        self.groups.clear();
    }

    /// The open instances of a rule, for tests and diagnostics.
    pub fn open(&self, rule: i64) -> Vec<&InstanceRow> {
        let mut out: Vec<&InstanceRow> = self.instances.values().filter(|i| i.rule_id == rule).collect();
        out.sort_by(|a, b| a.fingerprint.cmp(&b.fingerprint));
        out
    }

    /// Forgets rules that no longer exist.
    pub fn retain_rules(&mut self, rules: &BTreeSet<i64>) {
        self.instances.retain(|(r, _), _| rules.contains(r));
        self.groups.retain(|r, _| rules.contains(r));
    }

    /// Applies `obs` (everything the rule's inputs show now) to the rule's instances. Rules
    /// whose inputs are incomplete must not be stepped (an absent instance counts as cleared).
    pub fn step(&mut self, rule: &Rule, obs: Vec<Obs>, now_ms: i64, out: &mut Writes) {
        let now = now_ms / 1000;
        let id = rule.row.id;
        let (fire_after, clear_after) = timing(&rule.params);
        let mut seen: BTreeMap<String, Obs> = BTreeMap::new();
        for o in obs {
            seen.insert(fingerprint(id, &o.labels), o);
        }
        let mut fps: BTreeSet<String> = seen.keys().cloned().collect();
        fps.extend(self.instances.keys().filter(|(r, _)| *r == id).map(|(_, fp)| fp.clone()));
        let group = self.groups.entry(id).or_default();
        let queue = |group: &mut Group, set: fn(&mut Group) -> &mut BTreeSet<String>, fp: &str| {
            if group.is_empty() {
                group.opened_ms = now_ms;
            }
            set(group).insert(fp.to_owned());
        };
        for fp in fps {
            let o = seen.get(&fp);
            let (active, clear, value) = o.map_or((false, true, 0.0), |o| (o.active, o.clear, o.value));
            let key = (id, fp.clone());
            let Some(inst) = self.instances.get_mut(&key) else {
                if active {
                    let row = InstanceRow {
                        rule_id: id,
                        fingerprint: fp.clone(),
                        labels: serde_json::to_string(&o.expect("active means observed").labels).expect("labels"),
                        state: "pending".into(),
                        value,
                        pending_since: Some(now),
                        starts_at: None,
                        ends_at: None,
                        notified_at: None,
                        clearing_since: None,
                        updated_at: now,
                    };
                    out.instances.push(row.clone());
                    out.events.push((rule.row.tenant_id, row.clone(), "pending"));
                    if fire_after == 0 {
                        queue(group, |g| &mut g.fire, &fp);
                    }
                    self.instances.insert(key, row);
                }
                continue;
            };
            let changed_value = inst.value != value && o.is_some();
            if o.is_some() {
                inst.value = value;
            }
            match inst.state.as_str() {
                "pending" => {
                    if !active {
                        // Never fired: it goes quietly.
                        group.fire.remove(&fp);
                        inst.state = "resolved".into();
                        inst.ends_at = Some(now);
                        inst.updated_at = now;
                        out.instances.push(inst.clone());
                        self.instances.remove(&key);
                        continue;
                    }
                    if now - inst.pending_since.unwrap_or(now) >= fire_after {
                        queue(group, |g| &mut g.fire, &fp);
                    }
                    if changed_value {
                        inst.updated_at = now;
                        out.instances.push(inst.clone());
                    }
                }
                "firing" => {
                    let mut write = changed_value;
                    if clear {
                        let since = *inst.clearing_since.get_or_insert_with(|| {
                            write = true;
                            now
                        });
                        if now - since >= clear_after {
                            group.repeat.remove(&fp);
                            queue(group, |g| &mut g.resolve, &fp);
                        }
                    } else {
                        if inst.clearing_since.take().is_some() {
                            write = true;
                        }
                        group.resolve.remove(&fp);
                        if inst.notified_at.unwrap_or(0) + rule.row.repeat_secs <= now && !group.resolve.contains(&fp) {
                            queue(group, |g| &mut g.repeat, &fp);
                        }
                    }
                    if write {
                        inst.updated_at = now;
                        out.instances.push(inst.clone());
                    }
                }
                _ => {
                    self.instances.remove(&key);
                }
            }
        }
        if !group.is_empty() && now_ms >= group.opened_ms + self.group_wait_ms {
            let group = std::mem::take(group);
            self.flush(rule, group, now_ms, out);
        }
    }

    fn flush(&mut self, rule: &Rule, group: Group, now_ms: i64, out: &mut Writes) {
        let now = now_ms / 1000;
        let id = rule.row.id;
        let tenant = rule.row.tenant_id;
        let mut firing = Vec::new();
        let mut resolved = Vec::new();
        for (fp, kind) in group.fire.iter().map(|f| (f, "firing")).chain(group.repeat.iter().map(|f| (f, "repeat"))) {
            let Some(inst) = self.instances.get_mut(&(id, fp.clone())) else { continue };
            if kind == "firing" {
                inst.state = "firing".into();
                inst.starts_at = Some(now);
            }
            inst.notified_at = Some(now);
            inst.updated_at = now;
            out.instances.push(inst.clone());
            out.events.push((tenant, inst.clone(), kind));
            firing.push(instance(inst));
        }
        for fp in &group.resolve {
            let Some(mut inst) = self.instances.remove(&(id, fp.clone())) else { continue };
            inst.state = "resolved".into();
            inst.ends_at = Some(now);
            inst.updated_at = now;
            out.instances.push(inst.clone());
            out.events.push((tenant, inst.clone(), "resolved"));
            resolved.push(instance(&inst));
        }
        let muted = rule.row.muted_until.is_some_and(|t| t > now);
        if muted || rule.row.channels.is_empty() {
            return;
        }
        for (status, instances) in [(Status::Firing, firing), (Status::Resolved, resolved)] {
            if instances.is_empty() {
                continue;
            }
            let first = &instances[0];
            let mut summary = describe(rule.kind, &rule.params, &first.labels, first.value);
            if instances.len() > 1 {
                summary.push_str(&format!(" (and {} more)", instances.len() - 1));
            }
            let dashboard_url = match tenant {
                Some(t) => format!("{}/tenants/{t}/alerts", self.public_url),
                None => format!("{}/alerts", self.public_url),
            };
            out.messages.push((
                id,
                Message {
                    status,
                    tenant_id: tenant,
                    rule_id: id,
                    rule_name: rule.row.name.clone(),
                    rule_kind: rule.kind.as_str().to_owned(),
                    severity: rule.kind.severity().to_owned(),
                    summary,
                    instances,
                    dashboard_url,
                    timestamp_ms: now_ms,
                    test: false,
                },
            ));
        }
    }
}

fn instance(row: &InstanceRow) -> Instance {
    Instance {
        fingerprint: row.fingerprint.clone(),
        labels: serde_json::from_str(&row.labels).unwrap_or_default(),
        value: row.value,
        starts_at: row.starts_at.or(row.pending_since).unwrap_or(row.updated_at),
        ends_at: row.ends_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::{GroupBy, LagAbove, WafBurst};

    fn rule(id: i64, params: Params, channels: Vec<i64>) -> Rule {
        let kind = match params {
            Params::WafBurst(_) => Kind::WafBurst,
            Params::LagAbove(_) => Kind::LagAbove,
            _ => unreachable!(),
        };
        Rule {
            row: RuleRow {
                id,
                tenant_id: Some(83),
                kind: kind.as_str().into(),
                name: "r".into(),
                params: params.to_json().to_string(),
                repeat_secs: 600,
                muted_until: None,
                is_default: false,
                version: 1,
                created_at: 0,
                channels,
            },
            kind,
            params,
        }
    }

    fn obs(client: Option<&str>, value: f64, threshold: f64) -> Obs {
        let labels = client.map(|c| BTreeMap::from([("client_ip".to_owned(), c.to_owned())])).unwrap_or_default();
        Obs { labels, value, active: value >= threshold, clear: value < threshold / 2.0 }
    }

    fn states(e: &Engine, rule: i64) -> Vec<String> {
        e.open(rule).iter().map(|i| i.state.clone()).collect()
    }

    #[test]
    fn a_burst_fires_once_after_the_group_wait_repeats_and_resolves_after_a_calm_window() {
        let r = rule(1, Params::WafBurst(WafBurst { threshold: 10, window_secs: 60, ..WafBurst::default() }), vec![7]);
        let mut e = Engine::new(30_000, "http://x/");
        let t0 = 1_000_000_000;
        let mut w = Writes::default();
        e.step(&r, vec![obs(None, 12.0, 10.0)], t0, &mut w);
        assert_eq!(states(&e, 1), ["pending"]);
        assert!(w.messages.is_empty(), "waits for the group");
        let mut w = Writes::default();
        e.step(&r, vec![obs(None, 15.0, 10.0)], t0 + 30_000, &mut w);
        assert_eq!(w.messages.len(), 1);
        let m = &w.messages[0].1;
        assert_eq!((m.status, m.instances.len(), m.instances[0].value), (Status::Firing, 1, 15.0));
        assert_eq!(m.dashboard_url, "http://x/tenants/83/alerts");
        assert!(w.events.iter().any(|(_, _, k)| *k == "firing"));
        assert_eq!(states(&e, 1), ["firing"]);
        // Still above: no second message until the repeat interval (600 s).
        let mut w = Writes::default();
        e.step(&r, vec![obs(None, 20.0, 10.0)], t0 + 120_000, &mut w);
        assert!(w.messages.is_empty());
        // Between half and the threshold: neither fires nor clears (hysteresis).
        let mut w = Writes::default();
        e.step(&r, vec![obs(None, 6.0, 10.0)], t0 + 200_000, &mut w);
        assert!(w.messages.is_empty());
        assert_eq!(states(&e, 1), ["firing"]);
        // The repeat.
        let mut w = Writes::default();
        e.step(&r, vec![obs(None, 11.0, 10.0)], t0 + 631_000, &mut w);
        assert!(w.messages.is_empty(), "grouped for 30 s");
        e.step(&r, vec![obs(None, 11.0, 10.0)], t0 + 661_000, &mut w);
        assert_eq!(w.messages.len(), 1);
        assert!(w.events.iter().any(|(_, _, k)| *k == "repeat"));
        // Calm: resolved after a whole window below half, then the group wait.
        let mut w = Writes::default();
        e.step(&r, vec![], t0 + 700_000, &mut w);
        e.step(&r, vec![], t0 + 759_000, &mut w);
        assert!(w.messages.is_empty());
        e.step(&r, vec![], t0 + 760_000, &mut w);
        e.step(&r, vec![], t0 + 790_000, &mut w);
        assert_eq!(w.messages.len(), 1);
        assert_eq!(w.messages[0].1.status, Status::Resolved);
        assert!(e.open(1).is_empty());
    }

    #[test]
    fn instances_firing_together_go_out_as_one_message() {
        let p = WafBurst { threshold: 5, window_secs: 60, group_by: GroupBy::ClientIp, ..WafBurst::default() };
        let r = rule(2, Params::WafBurst(p), vec![7]);
        let mut e = Engine::new(30_000, "http://x");
        let mut w = Writes::default();
        let clients: Vec<String> = (1..=40).map(|i| format!("203.0.113.{i}")).collect();
        e.step(&r, clients[..10].iter().map(|c| obs(Some(c), 6.0, 5.0)).collect(), 0, &mut w);
        e.step(&r, clients.iter().map(|c| obs(Some(c), 6.0, 5.0)).collect(), 10_000, &mut w);
        assert!(w.messages.is_empty());
        e.step(&r, clients.iter().map(|c| obs(Some(c), 6.0, 5.0)).collect(), 30_000, &mut w);
        assert_eq!(w.messages.len(), 1);
        assert_eq!(w.messages[0].1.instances.len(), 40);
        assert!(w.messages[0].1.summary.contains("and 39 more"), "{}", w.messages[0].1.summary);
    }

    #[test]
    fn a_restart_with_the_instance_firing_sends_no_second_firing() {
        let r = rule(3, Params::WafBurst(WafBurst { threshold: 10, window_secs: 60, ..WafBurst::default() }), vec![7]);
        let mut e = Engine::new(0, "http://x");
        let mut w = Writes::default();
        e.step(&r, vec![obs(None, 12.0, 10.0)], 1_000_000, &mut w);
        assert_eq!(w.messages.len(), 1);
        let stored: Vec<InstanceRow> = e.open(3).into_iter().cloned().collect();
        let mut again = Engine::new(0, "http://x");
        again.load(stored);
        let mut w = Writes::default();
        again.step(&r, vec![obs(None, 14.0, 10.0)], 1_010_000, &mut w);
        assert!(w.messages.is_empty());
        again.step(&r, vec![], 1_020_000, &mut w);
        again.step(&r, vec![], 1_080_000, &mut w);
        assert_eq!(w.messages.iter().map(|(_, m)| m.status).collect::<Vec<_>>(), [Status::Resolved]);
    }

    #[test]
    fn held_conditions_muting_and_quiet_pending() {
        let lag = Params::LagAbove(LagAbove { group: "*".into(), threshold: 100, for_secs: 60 });
        let mut r = rule(4, lag, vec![7]);
        let mut e = Engine::new(0, "http://x");
        let g = |v: f64| Obs {
            labels: BTreeMap::from([("group".to_owned(), "c83_python".to_owned())]),
            value: v,
            active: v > 100.0,
            clear: v <= 100.0,
        };
        let mut w = Writes::default();
        e.step(&r, vec![g(500.0)], 0, &mut w);
        e.step(&r, vec![g(10.0)], 30_000, &mut w);
        assert!(e.open(4).is_empty() && w.messages.is_empty(), "pending that clears goes quietly");
        r.row.muted_until = Some(i64::MAX);
        e.step(&r, vec![g(500.0)], 100_000, &mut w);
        e.step(&r, vec![g(500.0)], 160_000, &mut w);
        assert_eq!(states(&e, 4), ["firing"], "muted rules still track");
        assert!(w.messages.is_empty(), "muted: nothing sent");
    }
}
