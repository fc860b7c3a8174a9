//! Rules, alerts and their history as the API and the dashboard show them. An owner is a tenant
//! (`Some(id)`) or the operators (`None`, cluster-wide rules).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::rules::{DEFAULT_REPEAT_SECS, Kind, MAX_RULES, MIN_REPEAT_SECS, Params};
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::alerts::{self as stored, EventRow, InstanceRow, RuleInput, RuleRow};

/// A rule to create or replace: its kind, name, channels, and the kind's parameters beside them.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RuleBody {
    #[schema(example = "waf_burst")]
    pub kind: String,
    #[schema(example = "SQL-injection burst")]
    pub name: String,
    /// Channel ids of the same owner; none: the alert shows on the dashboard only.
    #[serde(default)]
    pub channels: Vec<i64>,
    /// How often a still-firing alert is sent again (≥ 600 s; default 4 h).
    #[schema(minimum = 600, maximum = 604800)]
    pub repeat_secs: Option<i64>,
    /// The kind's parameters (e.g. `threshold`, `window_secs`), missing ones take defaults.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub params: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleView {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub kind: String,
    pub name: String,
    /// Every parameter, defaults filled in.
    #[schema(value_type = Object)]
    pub params: Value,
    pub channels: Vec<i64>,
    pub repeat_secs: i64,
    /// RFC 3339; while in the future the rule is evaluated but sends nothing.
    pub muted_until: Option<String>,
    pub muted: bool,
    /// Created with the tenant.
    pub is_default: bool,
    pub created_at: String,
}

impl RuleView {
    pub fn new(r: RuleRow, now: i64) -> Self {
        Self {
            id: r.id,
            tenant_id: r.tenant_id,
            kind: r.kind,
            name: r.name,
            params: serde_json::from_str(&r.params).unwrap_or(Value::Null),
            channels: r.channels,
            repeat_secs: r.repeat_secs,
            muted: r.muted_until.is_some_and(|t| t > now),
            muted_until: r.muted_until.map(rfc3339),
            is_default: r.is_default,
            created_at: rfc3339(r.created_at),
        }
    }
}

/// One alert instance: the rule it belongs to, its labels and where it stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertView {
    pub rule_id: i64,
    pub fingerprint: String,
    pub labels: BTreeMap<String, String>,
    /// `pending`, `firing` or `resolved`.
    pub state: String,
    pub value: f64,
    pub pending_since: Option<String>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    pub updated_at: String,
}

impl From<InstanceRow> for AlertView {
    fn from(i: InstanceRow) -> Self {
        Self {
            rule_id: i.rule_id,
            fingerprint: i.fingerprint,
            labels: serde_json::from_str(&i.labels).unwrap_or_default(),
            state: i.state,
            value: i.value,
            pending_since: i.pending_since.map(rfc3339),
            starts_at: i.starts_at.map(rfc3339),
            ends_at: i.ends_at.map(rfc3339),
            updated_at: rfc3339(i.updated_at),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertEventView {
    pub id: i64,
    pub rule_id: i64,
    pub fingerprint: String,
    pub at: String,
    /// `pending`, `firing`, `repeat` or `resolved`.
    pub kind: String,
    pub value: f64,
    pub labels: BTreeMap<String, String>,
}

impl From<EventRow> for AlertEventView {
    fn from(e: EventRow) -> Self {
        Self {
            id: e.id,
            rule_id: e.rule_id,
            fingerprint: e.fingerprint,
            at: rfc3339(e.at),
            kind: e.kind,
            value: e.value,
            labels: serde_json::from_str(&e.labels).unwrap_or_default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertEventPage {
    pub events: Vec<AlertEventView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next_before: Option<i64>,
}

fn checked(owner: Option<i64>, body: &RuleBody) -> Result<(Kind, String, i64)> {
    let kind = Kind::parse(&body.kind).ok_or_else(|| {
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        Error::invalid("kind", format!("one of {}", kinds.join(", ")))
    })?;
    if owner.is_some() && kind.operator_only() {
        return Err(Error::invalid("kind", format!("{} rules are the operators'", kind.as_str())));
    }
    if owner.is_none() && !kind.operator_only() && kind != Kind::AllowlistUnapplied {
        return Err(Error::invalid("kind", format!("{} rules belong to a tenant", kind.as_str())));
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid("name", "1 to 100 characters, no control characters"));
    }
    let repeat = body.repeat_secs.unwrap_or(DEFAULT_REPEAT_SECS);
    if !(MIN_REPEAT_SECS..=7 * 86_400).contains(&repeat) {
        return Err(Error::invalid("repeat_secs", "600 to 604800 seconds"));
    }
    if body.channels.len() > 20 {
        return Err(Error::invalid("channels", "at most 20 channels"));
    }
    let params = Params::parse(kind, Value::Object(body.params.clone()), owner)?;
    Ok((kind, params.to_json().to_string(), repeat))
}

pub async fn create(store: &Store, owner: Option<i64>, body: &RuleBody) -> Result<RuleView> {
    save(store, owner, None, body).await
}

pub async fn replace(store: &Store, owner: Option<i64>, id: i64, body: &RuleBody) -> Result<RuleView> {
    save(store, owner, Some(id), body).await
}

/// Creates (`id` none) or replaces a rule from a checked body.
async fn save(store: &Store, owner: Option<i64>, id: Option<i64>, body: &RuleBody) -> Result<RuleView> {
    let (kind, params, repeat_secs) = checked(owner, body)?;
    let input = RuleInput {
        kind: kind.as_str(),
        name: body.name.trim(),
        params: &params,
        repeat_secs,
        channels: &body.channels,
    };
    let row = match id {
        None => stored::create_rule(store, owner, &input, MAX_RULES).await?,
        Some(id) => stored::update_rule(store, owner, id, &input).await?,
    };
    Ok(RuleView::new(row, crate::clock::now()))
}

pub async fn list(store: &Store, owner: Option<i64>) -> Result<Vec<RuleView>> {
    let now = crate::clock::now();
    Ok(stored::list_rules(store, owner).await?.into_iter().map(|r| RuleView::new(r, now)).collect())
}

pub async fn get(store: &Store, owner: Option<i64>, id: i64) -> Result<RuleView> {
    Ok(RuleView::new(stored::find_rule(store, owner, id).await?, crate::clock::now()))
}

/// Mutes until `until` (RFC 3339) or for `for_secs` from now: in the future, within 30 days.
pub async fn mute(
    store: &Store,
    owner: Option<i64>,
    id: i64,
    until: Option<&str>,
    for_secs: Option<i64>,
) -> Result<RuleView> {
    let now = crate::clock::now();
    let at = match (until, for_secs) {
        (Some(until), None) => time::OffsetDateTime::parse(until, &time::format_description::well_known::Rfc3339)
            .map_err(|e| Error::invalid("until", format!("an RFC 3339 time ({e})")))?
            .unix_timestamp(),
        (None, Some(secs)) => now.saturating_add(secs),
        _ => return Err(Error::invalid("until", "give `until` (RFC 3339) or `for_secs`, not both")),
    };
    if at <= now || at > now + 30 * 86_400 {
        return Err(Error::invalid("until", "a time in the next 30 days"));
    }
    Ok(RuleView::new(stored::mute_rule(store, owner, id, Some(at)).await?, now))
}

pub async fn unmute(store: &Store, owner: Option<i64>, id: i64) -> Result<RuleView> {
    Ok(RuleView::new(stored::mute_rule(store, owner, id, None).await?, crate::clock::now()))
}

pub async fn alerts(store: &Store, owner: Option<i64>, state: Option<&str>) -> Result<Vec<AlertView>> {
    if let Some(s) = state
        && !["pending", "firing", "resolved"].contains(&s)
    {
        return Err(Error::invalid("state", "pending, firing or resolved"));
    }
    Ok(stored::list_instances(store, owner, state).await?.into_iter().map(AlertView::from).collect())
}

pub async fn events(
    store: &Store,
    owner: Option<i64>,
    before: Option<i64>,
    limit: Option<i64>,
) -> Result<AlertEventPage> {
    let limit = limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Error::invalid("limit", "1 to 500"));
    }
    let rows = stored::list_events(store, owner, before, limit).await?;
    let next_before = (rows.len() as i64 == limit).then(|| rows.last().map(|e| e.id)).flatten();
    Ok(AlertEventPage { events: rows.into_iter().map(AlertEventView::from).collect(), next_before })
}

/// The rules a new tenant starts with: its credential's expiry and stalled consumers.
pub fn default_rules() -> Vec<(&'static str, &'static str, String)> {
    let json = |kind| Params::parse(kind, Value::Object(Map::new()), None).expect("defaults are valid").to_json();
    vec![
        ("credential_expiring", "Credential expiring", json(Kind::CredentialExpiring).to_string()),
        ("group_stalled", "Consumer stalled", json(Kind::GroupStalled).to_string()),
    ]
}

/// The dashboard's ready-made rules: (key, label, kind, parameters).
pub const PRESETS: [(&str, &str, &str, &str); 6] = [
    ("sqli-burst", "SQL-injection burst: 100 CRITICAL in 5 min", "waf_burst", r#"{"rule_ids": ["942*"]}"#),
    (
        "scanner",
        "One scanner address: 50/min",
        "waf_burst",
        r#"{"group_by": "client_ip", "threshold": 50, "window_secs": 60, "min_severity": "WARNING"}"#,
    ),
    ("stalled", "Consumer stalled 15 min", "group_stalled", r#"{"for_secs": 900}"#),
    ("lag", "Consumer 100,000 records behind for 5 min", "lag_above", r#"{"threshold": 100000, "for_secs": 300}"#),
    ("expiring", "Credential expiring (30 and 7 days)", "credential_expiring", "{}"),
    ("allowlist", "Allowlist not applied within 60 s", "allowlist_unapplied", r#"{"for_secs": 60}"#),
];

/// A rule body from a preset, named `name` (or the preset's label), sent to `channels`.
pub fn from_preset(key: &str, name: &str, channels: Vec<i64>) -> Result<RuleBody> {
    let (_, label, kind, params) = PRESETS
        .iter()
        .find(|(k, ..)| *k == key)
        .ok_or_else(|| Error::invalid("preset", "one of the listed presets"))?;
    let params: Map<String, Value> = serde_json::from_str(params).expect("presets are JSON objects");
    let name = if name.trim().is_empty() { (*label).to_owned() } else { name.to_owned() };
    Ok(RuleBody { kind: (*kind).to_owned(), name, channels, repeat_secs: None, params })
}
