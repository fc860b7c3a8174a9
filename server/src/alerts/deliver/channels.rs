//! Alert channels as tenants and operators manage them: validated input, the URL checked by the
//! SSRF guard before it is saved, URL and signing secrets sealed with the KEK, the views the
//! API shows (a Slack URL is a secret, so it is masked), and the channel test.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::guard::{Guard, Refusal};
use super::{ChannelKind, Deliverer, TestOutcome, sign};
use crate::alerts::{Instance, Message, Status};
use crate::clock::{now, now_ms, rfc3339, rfc3339_ms};
use crate::error::{Error, Result};
use crate::store::alert_channels::{self as stored, ChannelRow, Created, Rotation, Sealed, Update};
use crate::store::alert_deliveries::{self as outbox, DeliveryRow};
use crate::tenants::{self, TenantId};

/// Channels per tenant (and for the operators).
pub const MAX_CHANNELS: usize = 20;
/// How long the previous signing secret keeps signing after a rotation.
pub const ROTATION_OVERLAP_SECS: i64 = 24 * 3600;
/// Deliveries shown with each channel.
const LAST_DELIVERIES: i64 = 5;

pub fn url_context(id: i64) -> String {
    format!("alert channel {id} url")
}

pub fn secret_context(id: i64) -> String {
    format!("alert channel {id} secret")
}

pub fn previous_secret_context(id: i64) -> String {
    format!("alert channel {id} previous secret")
}

/// A new channel as a client submits it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelInput {
    /// `webhook`, `slack`, `alertmanager`, or (operators only) `alertmanager_api`.
    #[schema(example = "webhook")]
    pub kind: String,
    #[schema(example = "on-call")]
    pub name: String,
    /// https, to a public address (unless the operator allows the network).
    #[schema(example = "https://hooks.acme.example/outflow")]
    pub url: String,
}

/// A change to a channel; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    pub name: Option<String>,
    pub url: Option<String>,
    /// Enabling a channel a 410 disabled clears the reason.
    pub enabled: Option<bool>,
    /// A new signing secret (webhooks), shown once in the answer; the previous one keeps
    /// signing alongside for 24 hours.
    #[serde(default)]
    pub rotate_secret: bool,
}

/// A delivery as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AlertDelivery)]
pub struct DeliveryView {
    pub id: i64,
    pub channel_id: i64,
    /// The rule that sent it; null for a channel test.
    pub rule_id: Option<i64>,
    /// The `webhook-id` header, the same on every attempt.
    pub webhook_id: String,
    /// `alert.firing`, `alert.resolved` or `alert.test`.
    pub event_type: String,
    /// `pending`, `delivered`, `failed` or `gave_up`.
    pub outcome: String,
    pub attempts: i64,
    /// The receiver's last HTTP status; null when it did not answer.
    pub last_status: Option<i64>,
    pub last_error: String,
    pub last_latency_ms: Option<i64>,
    pub created_at: String,
    /// When the next attempt is due, while pending.
    pub next_attempt_at: Option<String>,
    pub finished_at: Option<String>,
}

impl From<DeliveryRow> for DeliveryView {
    fn from(row: DeliveryRow) -> Self {
        let pending = row.state == "pending";
        Self {
            id: row.id,
            channel_id: row.channel_id,
            rule_id: row.rule_id,
            webhook_id: row.webhook_id,
            event_type: row.event_type,
            outcome: row.state,
            attempts: row.attempts,
            last_status: row.last_status,
            last_error: row.last_error,
            last_latency_ms: row.last_latency_ms,
            created_at: rfc3339_ms(row.created_at),
            next_attempt_at: pending.then(|| rfc3339_ms(row.next_attempt_at)),
            finished_at: row.finished_at.map(rfc3339_ms),
        }
    }
}

/// A channel as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AlertChannel)]
pub struct ChannelView {
    pub id: i64,
    /// Null for an operators' channel.
    pub tenant_id: Option<i64>,
    pub kind: ChannelKind,
    pub name: String,
    /// The destination; a Slack URL (a secret) shows only its scheme and host.
    pub url: String,
    pub enabled: bool,
    /// Why delivery disabled the channel (its receiver answered 410); empty otherwise.
    pub disabled_reason: String,
    pub created_at: String,
    /// Until when the previous signing secret still signs, after a rotation.
    pub previous_secret_until: Option<String>,
    /// The signing secret: only in the answer to a creation or a rotation, never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The newest deliveries, newest first.
    pub last_deliveries: Vec<DeliveryView>,
}

/// A page of deliveries, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AlertDeliveryPage)]
pub struct DeliveryPage {
    pub deliveries: Vec<DeliveryView>,
    /// Pass as `before` for the next page; null on the last.
    pub next_before: Option<i64>,
}

/// A Slack URL with its path hidden.
fn mask(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or_default()),
        Err(_) => "…".into(),
    }
}

fn parse_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid("name", "the name must be 1-100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid("name", "the name must not contain control characters"));
    }
    Ok(name.to_owned())
}

fn parse_kind(kind: &str, owner: Option<TenantId>) -> Result<ChannelKind> {
    let parsed = ChannelKind::parse(kind).ok_or_else(|| {
        Error::invalid("kind", format!("unknown kind {kind:?}; use webhook, slack, alertmanager or alertmanager_api"))
    })?;
    if parsed == ChannelKind::AlertmanagerApi && owner.is_some() {
        return Err(Error::invalid("kind", "alertmanager_api channels are for operators only"));
    }
    Ok(parsed)
}

/// Checks `url` with the guard now (it is checked again at every send).
async fn check_url(guard: &Guard, url: &str) -> Result<String> {
    match guard.resolve(url).await {
        Ok(dest) => Ok(dest.url.to_string()),
        Err(Refusal::Refused(why) | Refusal::Unresolved(why)) => Err(Error::invalid("url", why)),
    }
}

async fn owner_exists(d: &Deliverer, owner: Option<TenantId>) -> Result<()> {
    match owner {
        Some(tenant) => tenants::get(d.store(), tenant).await.map(|_| ()),
        None => Ok(()),
    }
}

async fn view(d: &Deliverer, row: ChannelRow, secret: Option<String>) -> Result<ChannelView> {
    let kind = ChannelKind::parse(&row.kind)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("channel {} has kind {:?}", row.id, row.kind)))?;
    let url = d.url_of(&row)?;
    let query = outbox::Query { tenant: row.tenant_id, channel: Some(row.id), before: None, limit: LAST_DELIVERIES };
    let last = outbox::list(d.store(), &query).await?;
    Ok(ChannelView {
        id: row.id,
        tenant_id: row.tenant_id,
        kind,
        name: row.name,
        url: if kind == ChannelKind::Slack { mask(&url) } else { url },
        enabled: row.enabled,
        disabled_reason: row.disabled_reason,
        created_at: rfc3339(row.created_at),
        previous_secret_until: row.previous_until.filter(|until| *until > now()).map(rfc3339),
        secret,
        last_deliveries: last.into_iter().map(DeliveryView::from).collect(),
    })
}

fn owner_id(owner: Option<TenantId>) -> Option<i64> {
    owner.map(TenantId::get)
}

fn no_channel() -> Error {
    Error::NotFound("no such alert channel".into())
}

/// Creates a channel; a webhook's answer carries its signing secret, shown this once.
pub async fn create(d: &Deliverer, owner: Option<TenantId>, input: &ChannelInput) -> Result<ChannelView> {
    let kind = parse_kind(&input.kind, owner)?;
    let name = parse_name(&input.name)?;
    owner_exists(d, owner).await?;
    let url = check_url(d.guard(), &input.url).await?;
    let secret = (kind == ChannelKind::Webhook).then(sign::generate_secret);
    let kek = d.kek();
    let seal = |id| Sealed {
        url: kek.seal(&url_context(id), url.as_bytes()),
        secret: secret.as_ref().map(|s| kek.seal(&secret_context(id), s.as_bytes())),
    };
    match stored::create(d.store(), owner_id(owner), kind.as_str(), &name, MAX_CHANNELS, seal).await? {
        Created::Done(row) => view(d, row, secret).await,
        Created::NoTenant => Err(Error::NotFound(format!("no tenant {}", owner_id(owner).unwrap_or_default()))),
        Created::Full => {
            Err(Error::invalid("kind", format!("at most {MAX_CHANNELS} alert channels; delete one first")))
        }
    }
}

/// The owner's channels.
pub async fn list(d: &Deliverer, owner: Option<TenantId>) -> Result<Vec<ChannelView>> {
    owner_exists(d, owner).await?;
    let mut views = Vec::new();
    for row in stored::list(d.store(), owner_id(owner)).await? {
        views.push(view(d, row, None).await?);
    }
    Ok(views)
}

async fn row(d: &Deliverer, owner: Option<TenantId>, id: i64) -> Result<ChannelRow> {
    owner_exists(d, owner).await?;
    stored::get(d.store(), owner_id(owner), id).await?.ok_or_else(no_channel)
}

/// One of the owner's channels.
pub async fn get(d: &Deliverer, owner: Option<TenantId>, id: i64) -> Result<ChannelView> {
    let row = row(d, owner, id).await?;
    view(d, row, None).await
}

/// Changes a channel; a rotation's answer carries the new secret, shown this once.
pub async fn update(d: &Deliverer, owner: Option<TenantId>, id: i64, patch: &ChannelPatch) -> Result<ChannelView> {
    let current = row(d, owner, id).await?;
    let name = patch.name.as_deref().map(parse_name).transpose()?;
    let url = match &patch.url {
        Some(url) => Some(check_url(d.guard(), url).await?),
        None => None,
    };
    if patch.rotate_secret && current.kind != ChannelKind::Webhook.as_str() {
        return Err(Error::invalid("rotate_secret", "only webhook channels have a signing secret"));
    }
    let secret = patch.rotate_secret.then(sign::generate_secret);
    let kek = d.kek();
    let rotate = match &secret {
        // The current secret becomes the previous one: sealed again for that context.
        Some(new) => Some(Rotation {
            secret: kek.seal(&secret_context(id), new.as_bytes()),
            previous: match &current.secret_sealed {
                Some(sealed) => Some(kek.seal(&previous_secret_context(id), &kek.open(&secret_context(id), sealed)?)),
                None => None,
            },
            until: now() + ROTATION_OVERLAP_SECS,
        }),
        None => None,
    };
    let change = Update {
        name,
        url_sealed: url.map(|u| kek.seal(&url_context(id), u.as_bytes())),
        enabled: patch.enabled,
        rotate,
    };
    let row = stored::update(d.store(), owner_id(owner), id, change).await?.ok_or_else(no_channel)?;
    view(d, row, secret).await
}

/// Deletes a channel and its deliveries.
pub async fn delete(d: &Deliverer, owner: Option<TenantId>, id: i64) -> Result<()> {
    owner_exists(d, owner).await?;
    if stored::delete(d.store(), owner_id(owner), id).await? { Ok(()) } else { Err(no_channel()) }
}

/// The message a channel test sends.
pub fn test_message(channel: &ChannelRow, dashboard_url: &str) -> Message {
    let labels: BTreeMap<String, String> = [("test".to_owned(), "true".to_owned())].into();
    let at = now();
    Message {
        status: Status::Firing,
        tenant_id: channel.tenant_id,
        rule_id: 0,
        rule_name: "outflow test".into(),
        rule_kind: "test".into(),
        severity: "info".into(),
        summary: format!("A test delivery to channel {:?}", channel.name),
        instances: vec![Instance {
            fingerprint: crate::alerts::fingerprint(0, &labels),
            labels,
            value: 0.0,
            starts_at: at,
            ends_at: None,
        }],
        dashboard_url: dashboard_url.to_owned(),
        timestamp_ms: now_ms(),
        test: true,
    }
}

/// Sends one test delivery to a channel now and answers with the receiver's status and latency.
pub async fn test(d: &Deliverer, owner: Option<TenantId>, id: i64, dashboard_url: &str) -> Result<TestOutcome> {
    let row = row(d, owner, id).await?;
    crate::store::audit::stage_read(d.store(), owner_id(owner), &format!("test delivery to channel {id}")).await?;
    d.send_test(&row, &test_message(&row, dashboard_url)).await
}

/// Which deliveries to list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only this channel's deliveries.
    #[param(minimum = 1)]
    pub channel: Option<i64>,
    /// Deliveries with an id below this (the previous page's `next_before`).
    #[param(minimum = 1)]
    pub before: Option<i64>,
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// A page of the owner's deliveries, newest first.
pub async fn deliveries(d: &Deliverer, owner: Option<TenantId>, q: &DeliveryQuery) -> Result<DeliveryPage> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(Error::invalid("limit", "limit must be 1-200"));
    }
    for (field, value) in [("channel", q.channel), ("before", q.before)] {
        if value.is_some_and(|v| v < 1) {
            return Err(Error::invalid(field, format!("{field} must be a positive id")));
        }
    }
    owner_exists(d, owner).await?;
    let query = outbox::Query { tenant: owner_id(owner), channel: q.channel, before: q.before, limit: limit + 1 };
    let mut rows = outbox::list(d.store(), &query).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_before = if more { rows.last().map(|r| r.id) } else { None };
    Ok(DeliveryPage { deliveries: rows.into_iter().map(DeliveryView::from).collect(), next_before })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_urls_are_masked_and_names_and_kinds_checked() {
        assert_eq!(mask("https://hooks.slack.com/services/T000/B000/XXXXXXXX"), "https://hooks.slack.com/…");
        assert!(parse_name("  ").is_err());
        assert!(parse_name(&"x".repeat(101)).is_err());
        assert!(parse_name("on\ncall").is_err());
        assert_eq!(parse_name(" on-call ").unwrap(), "on-call");
        let tenant = Some(TenantId::parse(83).unwrap());
        assert!(matches!(parse_kind("alertmanager_api", tenant), Err(Error::Invalid { field, .. }) if field == "kind"));
        assert_eq!(parse_kind("alertmanager_api", None).unwrap(), ChannelKind::AlertmanagerApi);
        assert!(parse_kind("email", None).is_err());
    }
}
