//! A tenant's Alerts tab: current alerts, the rules (with presets to add one, mute and delete),
//! the channels (add, send a test, their last deliveries, delete) and the recent history.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::Form;
use serde::Deserialize;

use super::{Nav, NoticeQuery, PageResult, see_other};
use crate::alerts::deliver::TestOutcome;
use crate::alerts::deliver::channels::{self, ChannelInput, ChannelView};
use crate::alerts::manage::{self, AlertEventView, AlertView, PRESETS, RuleView};
use crate::auth::Session;
use crate::error::Error;
use crate::http::{TenantForm, WebSession};
use crate::state::AppState;
use crate::tenants::{self, TenantId};

#[derive(Template, WebTemplate)]
#[template(path = "pages/alerts.html")]
pub struct AlertsPage {
    csrf: String,
    nav: Nav,
    tenant_id: i64,
    tenant_name: String,
    notice: Option<&'static str>,
    firing: usize,
    alerts: Vec<(AlertView, String)>,
    rules: Vec<RuleView>,
    events: Vec<(AlertEventView, String)>,
    presets: Vec<(&'static str, &'static str)>,
    channels: Vec<ChannelView>,
    error: Option<String>,
    /// A new webhook channel's signing secret, shown this once.
    new_secret: Option<(String, String)>,
    /// The answer of a "Send test": channel name and outcome.
    tested: Option<(String, TestOutcome)>,
}

async fn page(
    state: &AppState,
    session: &Session,
    id: TenantId,
    notice: Option<&'static str>,
) -> PageResult<AlertsPage> {
    let tenant = tenants::get(&state.store, id).await?;
    let owner = Some(id.get());
    let rules = manage::list(&state.store, owner).await?;
    let name_of = |rule: i64| rules.iter().find(|r| r.id == rule).map(|r| r.name.clone()).unwrap_or_default();
    let alerts: Vec<(AlertView, String)> = manage::alerts(&state.store, owner, None)
        .await?
        .into_iter()
        .filter(|a| a.state != "resolved")
        .map(|a| {
            let n = name_of(a.rule_id);
            (a, n)
        })
        .collect();
    let events = manage::events(&state.store, owner, None, Some(20))
        .await?
        .events
        .into_iter()
        .map(|e| {
            let n = name_of(e.rule_id);
            (e, n)
        })
        .collect();
    Ok(AlertsPage {
        csrf: session.csrf.clone(),
        nav: Nav::of(session),
        tenant_id: id.get(),
        tenant_name: tenant.name,
        notice,
        firing: alerts.iter().filter(|(a, _)| a.state == "firing").count(),
        alerts,
        rules,
        events,
        presets: PRESETS.iter().map(|(k, label, ..)| (*k, *label)).collect(),
        channels: channels::list(&state.deliverer, Some(id)).await?,
        error: None,
        new_secret: None,
        tested: None,
    })
}

pub async fn alerts(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> PageResult<AlertsPage> {
    let id = TenantId::parse_str(&id)?;
    session.principal.may_access(id)?;
    page(&state, &session, id, q.text()).await
}

#[derive(Debug, Deserialize)]
pub struct RuleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    preset: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    channels: Vec<i64>,
}

pub async fn create_rule(
    State(state): State<AppState>,
    form: TenantForm,
    Form(f): Form<RuleForm>,
) -> PageResult<Response> {
    let id = form.authorize(&f.csrf)?;
    let created = async {
        let body = manage::from_preset(&f.preset, f.name.trim(), f.channels.clone())?;
        manage::create(&state.store, Some(id.get()), &body).await
    }
    .await;
    match created {
        Ok(_) => Ok(see_other(&format!("/tenants/{id}/alerts?notice=rule-created#rules"))),
        Err(e @ Error::Invalid { .. }) => {
            let mut p = page(&state, &form.session, id, None).await?;
            p.error = Some(e.public_message());
            Ok((crate::http::status(&e), p).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct RuleAction {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    hours: Option<i64>,
}

/// `mute` (for `hours`), `unmute` or `delete` a rule.
pub async fn rule_action(
    State(state): State<AppState>,
    form: TenantForm,
    Path((_id, rule, action)): Path<(String, i64, String)>,
    Form(f): Form<RuleAction>,
) -> PageResult<Response> {
    let id = form.authorize(&f.csrf)?;
    let owner = Some(id.get());
    let notice = match action.as_str() {
        "mute" => {
            let hours = f.hours.unwrap_or(1).clamp(1, 24 * 30);
            manage::mute(&state.store, owner, rule, None, Some(hours * 3600)).await?;
            "rule-muted"
        }
        "unmute" => {
            manage::unmute(&state.store, owner, rule).await?;
            "rule-unmuted"
        }
        "delete" => {
            crate::store::alerts::delete_rule(&state.store, owner, rule).await?;
            "rule-deleted"
        }
        _ => return Err(Error::NotFound("no such action".into()).into()),
    };
    Ok(see_other(&format!("/tenants/{id}/alerts?notice={notice}#rules")))
}

/// Labels as `k=v, …` for a table cell.
pub fn label_text(labels: &std::collections::BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

/// Parameters as `k=v, …` for a table cell.
pub fn params_text(params: &serde_json::Value) -> String {
    params
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

#[derive(Debug, Deserialize)]
pub struct ChannelForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    url: String,
}

/// Adds a channel; the page answers directly (no redirect), so a webhook's secret is shown
/// once and never travels in a URL.
pub async fn create_channel(
    State(state): State<AppState>,
    form: TenantForm,
    Form(f): Form<ChannelForm>,
) -> PageResult<Response> {
    let id = form.authorize(&f.csrf)?;
    let input = ChannelInput { kind: f.kind.clone(), name: f.name.trim().to_owned(), url: f.url.trim().to_owned() };
    match channels::create(&state.deliverer, Some(id), &input).await {
        Ok(created) => {
            let mut p = page(&state, &form.session, id, Some("Channel added.")).await?;
            p.new_secret = created.secret.map(|secret| (created.name, secret));
            Ok(p.into_response())
        }
        Err(e @ Error::Invalid { .. }) => {
            let mut p = page(&state, &form.session, id, None).await?;
            p.error = Some(e.public_message());
            Ok((crate::http::status(&e), p).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `test` (one delivery now, the receiver's answer shown) or `delete` a channel.
pub async fn channel_action(
    State(state): State<AppState>,
    form: TenantForm,
    Path((_id, channel, action)): Path<(String, i64, String)>,
    Form(f): Form<RuleAction>,
) -> PageResult<Response> {
    let id = form.authorize(&f.csrf)?;
    match action.as_str() {
        "test" => {
            let dashboard = format!("{}/tenants/{id}/alerts", state.config.public_url());
            let outcome = channels::test(&state.deliverer, Some(id), channel, &dashboard).await?;
            let mut p = page(&state, &form.session, id, None).await?;
            let name = p.channels.iter().find(|c| c.id == channel).map(|c| c.name.clone()).unwrap_or_default();
            p.tested = Some((name, outcome));
            Ok(p.into_response())
        }
        "delete" => {
            channels::delete(&state.deliverer, Some(id), channel).await?;
            Ok(see_other(&format!("/tenants/{id}/alerts?notice=channel-deleted#channels")))
        }
        _ => Err(Error::NotFound("no such action".into()).into()),
    }
}
