//! Alert rules: the kinds, their parameters with defaults, and validation (a 422 names the
//! field). Parameters are stored as JSON beside the rule and parsed again by the evaluator.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::{Error, Result};
use crate::waf::events::SEVERITIES;

/// Rules per tenant (and for the operators' cluster-wide rules).
pub const MAX_RULES: usize = 20;
/// Shortest repeat interval of a still-firing alert.
pub const MIN_REPEAT_SECS: i64 = 600;
pub const DEFAULT_REPEAT_SECS: i64 = 4 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// WAF events at or above a severity reach a threshold in a window.
    WafBurst,
    /// A consumer group's total lag stays above a threshold.
    LagAbove,
    /// A group with lag commits nothing while its topics grow.
    GroupStalled,
    /// The tenant's newest active credential expires within some days.
    CredentialExpiring,
    /// A broker has not applied the tenant's allowlist version.
    AllowlistUnapplied,
    /// Operators: a broker's firewall agent stopped reporting.
    AgentStale,
    /// Operators: the WAF splitter's dead-letter topic grows.
    DlqGrowth,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::WafBurst,
        Kind::LagAbove,
        Kind::GroupStalled,
        Kind::CredentialExpiring,
        Kind::AllowlistUnapplied,
        Kind::AgentStale,
        Kind::DlqGrowth,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::WafBurst => "waf_burst",
            Kind::LagAbove => "lag_above",
            Kind::GroupStalled => "group_stalled",
            Kind::CredentialExpiring => "credential_expiring",
            Kind::AllowlistUnapplied => "allowlist_unapplied",
            Kind::AgentStale => "agent_stale",
            Kind::DlqGrowth => "dlq_growth",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Kinds only operators' (tenant-less) rules have.
    pub fn operator_only(self) -> bool {
        matches!(self, Kind::AgentStale | Kind::DlqGrowth)
    }

    /// The severity its messages carry.
    pub fn severity(self) -> &'static str {
        match self {
            Kind::WafBurst | Kind::GroupStalled | Kind::AgentStale => "critical",
            Kind::LagAbove | Kind::CredentialExpiring | Kind::AllowlistUnapplied | Kind::DlqGrowth => "warning",
        }
    }
}

/// What a `waf_burst` rule counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    #[default]
    None,
    ClientIp,
    RuleId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct WafBurst {
    /// Counts events at this severity or worse (ModSecurity's syslog order).
    pub min_severity: String,
    pub threshold: u64,
    /// 10–3600 seconds, by the events' own timestamps.
    pub window_secs: u64,
    pub group_by: GroupBy,
    /// Only these rule ids (a trailing `*` matches a prefix); empty: all.
    pub rule_ids: Vec<String>,
    /// Never these: by default CRS's blocking and correlation rules, which would double-count.
    pub exclude_rule_ids: Vec<String>,
}

impl Default for WafBurst {
    fn default() -> Self {
        Self {
            min_severity: "CRITICAL".into(),
            threshold: 100,
            window_secs: 300,
            group_by: GroupBy::None,
            rule_ids: Vec::new(),
            exclude_rule_ids: vec!["949*".into(), "959*".into(), "980*".into()],
        }
    }
}

impl WafBurst {
    /// The index of `min_severity` in [`SEVERITIES`]: events with a number ≤ it count.
    pub fn severity_rank(&self) -> usize {
        crate::waf::events::severity_number(&self.min_severity).unwrap_or(2)
    }

    /// Whether an event of `rule` counts.
    pub fn counts_rule(&self, rule: Option<&str>) -> bool {
        let matches = |patterns: &[String], id: &str| {
            patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => id.starts_with(prefix),
                None => p == id,
            })
        };
        let id = rule.unwrap_or("");
        (self.rule_ids.is_empty() || matches(&self.rule_ids, id)) && !matches(&self.exclude_rule_ids, id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct LagAbove {
    /// Glob over the group id, which must lie under `c<N>_` (`*` matches any run).
    pub group: String,
    pub threshold: i64,
    pub for_secs: u64,
}

impl Default for LagAbove {
    fn default() -> Self {
        Self { group: "*".into(), threshold: 10_000, for_secs: 300 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct GroupStalled {
    pub group: String,
    pub for_secs: u64,
}

impl Default for GroupStalled {
    fn default() -> Self {
        Self { group: "*".into(), for_secs: 900 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialExpiring {
    /// Each is its own alert: "expires within 30 days", then "within 7 days".
    pub days: Vec<u64>,
}

impl Default for CredentialExpiring {
    fn default() -> Self {
        Self { days: vec![30, 7] }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ForSecs {
    pub for_secs: u64,
}

impl Default for ForSecs {
    fn default() -> Self {
        Self { for_secs: 60 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DlqGrowth {
    /// The splitter's dead-letter topic (`outflow waf-split --dlq-topic`).
    pub topic: String,
    /// Records dead-lettered within the window.
    pub threshold: u64,
    pub window_secs: u64,
}

impl Default for DlqGrowth {
    fn default() -> Self {
        Self { topic: "waf.audit.dlq".into(), threshold: 100, window_secs: 300 }
    }
}

/// A rule's parameters, one variant per kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Params {
    WafBurst(WafBurst),
    LagAbove(LagAbove),
    GroupStalled(GroupStalled),
    CredentialExpiring(CredentialExpiring),
    AllowlistUnapplied(ForSecs),
    AgentStale(ForSecs),
    DlqGrowth(DlqGrowth),
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value.clone()).map_err(|e| {
        // serde names an unknown field but not the field of a wrong type: try them one by one.
        let text = e.to_string();
        let culprit = value.as_object().and_then(|fields| {
            fields.iter().find_map(|(k, v)| {
                let alone = Value::Object([(k.clone(), v.clone())].into_iter().collect());
                serde_json::from_value::<T>(alone).is_err().then(|| k.clone())
            })
        });
        Error::invalid(culprit.unwrap_or_else(|| "params".into()), text)
    })
}

fn check_group_glob(glob: &str, tenant: Option<i64>) -> Result<()> {
    if glob.is_empty() || glob.len() > 200 || !glob.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::invalid("group", "a group id glob of 1–200 printable ASCII characters"));
    }
    if let Some(t) = tenant {
        let prefix = format!("c{t}_");
        if glob != "*" && !glob.starts_with(&prefix) {
            return Err(Error::invalid(
                "group",
                format!("groups of tenant {t} start with `{prefix}`; use `*` for all"),
            ));
        }
    }
    Ok(())
}

fn check_for_secs(for_secs: u64) -> Result<()> {
    if !(0..=7 * 86_400).contains(&for_secs) {
        return Err(Error::invalid("for_secs", "0 to 604800 seconds"));
    }
    Ok(())
}

impl Params {
    /// Parses and checks `params` (an object of the kind's fields; missing ones take defaults).
    pub fn parse(kind: Kind, params: Value, tenant: Option<i64>) -> Result<Params> {
        let parsed = match kind {
            Kind::WafBurst => {
                let p: WafBurst = from_json(params)?;
                if !SEVERITIES.contains(&p.min_severity.as_str()) {
                    return Err(Error::invalid("min_severity", format!("one of {}", SEVERITIES.join(", "))));
                }
                if !(10..=3600).contains(&p.window_secs) {
                    return Err(Error::invalid("window_secs", "10 to 3600 seconds"));
                }
                if !(1..=10_000_000).contains(&p.threshold) {
                    return Err(Error::invalid("threshold", "1 to 10000000 events"));
                }
                for (field, ids) in [("rule_ids", &p.rule_ids), ("exclude_rule_ids", &p.exclude_rule_ids)] {
                    if ids.len() > 100
                        || ids.iter().any(|id| {
                            id.is_empty()
                                || id.len() > 20
                                || !id.trim_end_matches('*').chars().all(|c| c.is_ascii_digit())
                        })
                    {
                        return Err(Error::invalid(
                            field,
                            "at most 100 numeric rule ids, each optionally ending in `*`",
                        ));
                    }
                }
                Params::WafBurst(p)
            }
            Kind::LagAbove => {
                let p: LagAbove = from_json(params)?;
                check_group_glob(&p.group, tenant)?;
                check_for_secs(p.for_secs)?;
                if p.threshold < 0 {
                    return Err(Error::invalid("threshold", "a number of records, 0 or more"));
                }
                Params::LagAbove(p)
            }
            Kind::GroupStalled => {
                let p: GroupStalled = from_json(params)?;
                check_group_glob(&p.group, tenant)?;
                check_for_secs(p.for_secs)?;
                Params::GroupStalled(p)
            }
            Kind::CredentialExpiring => {
                let p: CredentialExpiring = from_json(params)?;
                if p.days.is_empty() || p.days.len() > 5 || p.days.iter().any(|d| !(1..=365).contains(d)) {
                    return Err(Error::invalid("days", "1 to 5 thresholds of 1–365 days"));
                }
                Params::CredentialExpiring(p)
            }
            Kind::AllowlistUnapplied => {
                let p: ForSecs = from_json(params)?;
                check_for_secs(p.for_secs)?;
                Params::AllowlistUnapplied(p)
            }
            Kind::AgentStale => {
                let p: ForSecs = from_json(params)?;
                check_for_secs(p.for_secs)?;
                Params::AgentStale(p)
            }
            Kind::DlqGrowth => {
                let p: DlqGrowth = from_json(params)?;
                let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
                if p.topic.is_empty() || p.topic.len() > 249 || !p.topic.chars().all(legal) {
                    return Err(Error::invalid("topic", "a Kafka topic name (letters, digits, `.`, `_`, `-`)"));
                }
                if !(10..=3600).contains(&p.window_secs) {
                    return Err(Error::invalid("window_secs", "10 to 3600 seconds"));
                }
                if !(1..=100_000_000).contains(&p.threshold) {
                    return Err(Error::invalid("threshold", "1 to 100000000 records"));
                }
                Params::DlqGrowth(p)
            }
        };
        Ok(parsed)
    }

    /// The parameters as stored and shown (every field, defaults filled in).
    pub fn to_json(&self) -> Value {
        match self {
            Params::WafBurst(p) => serde_json::to_value(p),
            Params::LagAbove(p) => serde_json::to_value(p),
            Params::GroupStalled(p) => serde_json::to_value(p),
            Params::CredentialExpiring(p) => serde_json::to_value(p),
            Params::AllowlistUnapplied(p) | Params::AgentStale(p) => serde_json::to_value(p),
            Params::DlqGrowth(p) => serde_json::to_value(p),
        }
        .expect("parameters serialize")
    }
}

/// A glob with `*` as "any run of characters".
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_fill_in_and_bad_values_name_their_field() {
        let Params::WafBurst(p) = Params::parse(Kind::WafBurst, json!({}), Some(83)).unwrap() else { panic!() };
        assert_eq!((p.threshold, p.window_secs, p.min_severity.as_str()), (100, 300, "CRITICAL"));
        assert!(!p.counts_rule(Some("949110")) && p.counts_rule(Some("942100")));
        let field = |kind, v| match Params::parse(kind, v, Some(83)) {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(field(Kind::WafBurst, json!({"window_secs": 5})), "window_secs");
        assert_eq!(field(Kind::WafBurst, json!({"min_severity": "LOUD"})), "min_severity");
        assert_eq!(field(Kind::WafBurst, json!({"threshold": "many"})), "threshold");
        assert_eq!(field(Kind::WafBurst, json!({"colour": 1})), "colour");
        assert_eq!(field(Kind::WafBurst, json!({"group_by": "country"})), "group_by");
        assert_eq!(field(Kind::LagAbove, json!({"group": "c84_x"})), "group");
        assert_eq!(field(Kind::CredentialExpiring, json!({"days": [0]})), "days");
    }

    #[test]
    fn globs() {
        assert!(glob_matches("*", "c83_python"));
        assert!(glob_matches("c83_*", "c83_python"));
        assert!(!glob_matches("c83_*", "c84_python"));
        assert!(glob_matches("c83_*_prod", "c83_filebeat_prod"));
        assert!(!glob_matches("c83_*_prod", "c83_prod"));
        assert!(glob_matches("c83_python", "c83_python"));
    }

    #[test]
    fn rule_id_filters() {
        let p = WafBurst { rule_ids: vec!["942*".into()], ..WafBurst::default() };
        assert!(p.counts_rule(Some("942100")) && !p.counts_rule(Some("920350")) && !p.counts_rule(None));
        let all = WafBurst { exclude_rule_ids: vec![], ..WafBurst::default() };
        assert!(all.counts_rule(None));
    }
}
