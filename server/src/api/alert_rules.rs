//! Alert rules, current alerts and their history: tenant routes under `/tenants/{id}` and the
//! operators' cluster-wide ones at the top level, with the same shapes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::doc::TenantPath;
use crate::alerts::manage::{self, AlertEventPage, AlertView, RuleBody, RuleView};
use crate::error::{Error, Result};
use crate::http::{AppJson, AppPath, AppQuery, Operator, TenantScope};
use crate::state::AppState;

fn rule_id(raw: &str) -> Result<i64> {
    raw.parse::<i64>().ok().filter(|id| *id > 0).ok_or_else(|| Error::invalid("rule", "a rule id (a positive integer)"))
}

/// `PUT …/mute`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteBody {
    /// RFC 3339, within the next 30 days.
    #[schema(example = "2026-12-04T08:00:00Z")]
    pub until: Option<String>,
    /// Or: for this many seconds from now.
    #[schema(example = 3600)]
    pub for_secs: Option<i64>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsFilter {
    /// Default: all.
    #[param(inline)]
    pub state: Option<AlertState>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsPage {
    /// Only events older than this id (the previous page's `next_before`).
    pub before: Option<i64>,
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/tenants/{id}/alert-rules", tag = "alerts",
    description = "The tenant's alert rules (at most 20).", params(TenantPath),
    responses((status = 200, body = Vec<RuleView>)))]
pub async fn list_rules(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<Json<Vec<RuleView>>> {
    Ok(Json(manage::list(&state.store, Some(id.get())).await?))
}

#[utoipa::path(post, path = "/tenants/{id}/alert-rules", tag = "alerts",
    description = "Create a rule: `kind` (waf_burst, lag_above, group_stalled, credential_expiring, \
                   allowlist_unapplied), `name`, `channels`, and the kind's parameters beside them.",
    params(TenantPath), request_body = RuleBody,
    responses((status = 201, body = RuleView), (status = 422, description = "names the field", body = crate::http::ErrorBody)))]
pub async fn create_rule(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppJson(body): AppJson<RuleBody>,
) -> Result<(StatusCode, Json<RuleView>)> {
    Ok((StatusCode::CREATED, Json(manage::create(&state.store, Some(id.get()), &body).await?)))
}

#[utoipa::path(get, path = "/tenants/{id}/alert-rules/{rule}", tag = "alerts",
    params(TenantPath, ("rule" = i64, Path, minimum = 1, description = "rule id")),
    responses((status = 200, body = RuleView)))]
pub async fn get_rule(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppPath((_id, rule)): AppPath<(String, String)>,
) -> Result<Json<RuleView>> {
    Ok(Json(manage::get(&state.store, Some(id.get()), rule_id(&rule)?).await?))
}

#[utoipa::path(put, path = "/tenants/{id}/alert-rules/{rule}", tag = "alerts",
    description = "Replace a rule's name, parameters, repeat interval and channels; its kind cannot change.",
    params(TenantPath, ("rule" = i64, Path, minimum = 1, description = "rule id")), request_body = RuleBody,
    responses((status = 200, body = RuleView)))]
pub async fn replace_rule(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppPath((_id, rule)): AppPath<(String, String)>,
    AppJson(body): AppJson<RuleBody>,
) -> Result<Json<RuleView>> {
    Ok(Json(manage::replace(&state.store, Some(id.get()), rule_id(&rule)?, &body).await?))
}

#[utoipa::path(delete, path = "/tenants/{id}/alert-rules/{rule}", tag = "alerts",
    params(TenantPath, ("rule" = i64, Path, minimum = 1, description = "rule id")),
    responses((status = 204, description = "deleted with its alerts and history")))]
pub async fn delete_rule(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppPath((_id, rule)): AppPath<(String, String)>,
) -> Result<StatusCode> {
    crate::store::alerts::delete_rule(&state.store, Some(id.get()), rule_id(&rule)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/tenants/{id}/alert-rules/{rule}/mute", tag = "alerts",
    description = "Mute until a time: the rule is still evaluated and its alerts shown, but nothing is sent.",
    params(TenantPath, ("rule" = i64, Path, minimum = 1, description = "rule id")), request_body = MuteBody,
    responses((status = 200, body = RuleView)))]
pub async fn mute_rule(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppPath((_id, rule)): AppPath<(String, String)>,
    AppJson(body): AppJson<MuteBody>,
) -> Result<Json<RuleView>> {
    Ok(Json(manage::mute(&state.store, Some(id.get()), rule_id(&rule)?, body.until.as_deref(), body.for_secs).await?))
}

#[utoipa::path(delete, path = "/tenants/{id}/alert-rules/{rule}/mute", tag = "alerts",
    params(TenantPath, ("rule" = i64, Path, minimum = 1, description = "rule id")),
    responses((status = 200, body = RuleView)))]
pub async fn unmute_rule(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppPath((_id, rule)): AppPath<(String, String)>,
) -> Result<Json<RuleView>> {
    Ok(Json(manage::unmute(&state.store, Some(id.get()), rule_id(&rule)?).await?))
}

#[utoipa::path(get, path = "/tenants/{id}/alerts", tag = "alerts",
    description = "Current alerts (instances of the tenant's rules), newest change first.",
    params(TenantPath, AlertsFilter), responses((status = 200, body = Vec<AlertView>)))]
pub async fn list_alerts(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppQuery(filter): AppQuery<AlertsFilter>,
) -> Result<Json<Vec<AlertView>>> {
    Ok(Json(manage::alerts(&state.store, Some(id.get()), filter.state.map(AlertState::as_str)).await?))
}

#[utoipa::path(get, path = "/tenants/{id}/alert-events", tag = "alerts",
    description = "History: every pending, firing, repeat and resolved transition, newest first, paged.",
    params(TenantPath, EventsPage), responses((status = 200, body = AlertEventPage)))]
pub async fn list_events(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppQuery(page): AppQuery<EventsPage>,
) -> Result<Json<AlertEventPage>> {
    Ok(Json(manage::events(&state.store, Some(id.get()), page.before, page.limit).await?))
}

#[utoipa::path(get, path = "/alert-rules", tag = "alerts",
    description = "The operators' cluster-wide rules (agent_stale, dlq_growth, allowlist_unapplied over every tenant).",
    responses((status = 200, body = Vec<RuleView>)))]
pub async fn list_operator_rules(_: Operator, State(state): State<AppState>) -> Result<Json<Vec<RuleView>>> {
    Ok(Json(manage::list(&state.store, None).await?))
}

#[utoipa::path(post, path = "/alert-rules", tag = "alerts", request_body = RuleBody,
    responses((status = 201, body = RuleView)))]
pub async fn create_operator_rule(
    _: Operator,
    State(state): State<AppState>,
    AppJson(body): AppJson<RuleBody>,
) -> Result<(StatusCode, Json<RuleView>)> {
    Ok((StatusCode::CREATED, Json(manage::create(&state.store, None, &body).await?)))
}

#[utoipa::path(get, path = "/alert-rules/{rule}", tag = "alerts",
    params(("rule" = i64, Path, minimum = 1, description = "rule id")), responses((status = 200, body = RuleView)))]
pub async fn get_operator_rule(
    _: Operator,
    State(state): State<AppState>,
    AppPath(rule): AppPath<String>,
) -> Result<Json<RuleView>> {
    Ok(Json(manage::get(&state.store, None, rule_id(&rule)?).await?))
}

#[utoipa::path(put, path = "/alert-rules/{rule}", tag = "alerts",
    params(("rule" = i64, Path, minimum = 1, description = "rule id")), request_body = RuleBody,
    responses((status = 200, body = RuleView)))]
pub async fn replace_operator_rule(
    _: Operator,
    State(state): State<AppState>,
    AppPath(rule): AppPath<String>,
    AppJson(body): AppJson<RuleBody>,
) -> Result<Json<RuleView>> {
    Ok(Json(manage::replace(&state.store, None, rule_id(&rule)?, &body).await?))
}

#[utoipa::path(delete, path = "/alert-rules/{rule}", tag = "alerts",
    params(("rule" = i64, Path, minimum = 1, description = "rule id")), responses((status = 204, description = "deleted")))]
pub async fn delete_operator_rule(
    _: Operator,
    State(state): State<AppState>,
    AppPath(rule): AppPath<String>,
) -> Result<StatusCode> {
    crate::store::alerts::delete_rule(&state.store, None, rule_id(&rule)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/alerts", tag = "alerts", description = "The operators' current alerts.",
    params(AlertsFilter), responses((status = 200, body = Vec<AlertView>)))]
pub async fn list_operator_alerts(
    _: Operator,
    State(state): State<AppState>,
    AppQuery(filter): AppQuery<AlertsFilter>,
) -> Result<Json<Vec<AlertView>>> {
    Ok(Json(manage::alerts(&state.store, None, filter.state.map(AlertState::as_str)).await?))
}
