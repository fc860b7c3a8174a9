//! Alert channels and their deliveries: a tenant's under `/tenants/{id}`, the operators' own
//! (tenant-less, which may also push to an Alertmanager's API) under `/alert-channels`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::doc::TenantPath;
use crate::alerts::deliver::TestOutcome;
use crate::alerts::deliver::channels::{self, ChannelInput, ChannelPatch, ChannelView, DeliveryPage, DeliveryQuery};
use crate::error::{Error, Result};
use crate::http::{AppJson, AppPath, AppQuery, ErrorBody, Operator, TenantScope};
use crate::state::AppState;
use crate::tenants::TenantId;

fn channel_id(text: &str) -> Result<i64> {
    text.parse::<i64>()
        .ok()
        .filter(|id| *id >= 1)
        .ok_or_else(|| Error::invalid("ch", format!("channel id must be a positive integer, got {text:?}")))
}

/// Where a channel test says the alerts are shown.
fn dashboard_url(state: &AppState, owner: Option<TenantId>) -> String {
    match owner {
        Some(id) => format!("{}/tenants/{}/alerts", state.config.public_url(), id.get()),
        None => format!("{}/alerts", state.config.public_url()),
    }
}

#[utoipa::path(get, path = "/tenants/{id}/alert-channels", tag = "alerts",
    description = "The tenant's alert channels, each with its newest deliveries.",
    params(TenantPath),
    responses((status = 200, body = [ChannelView])))]
pub async fn list_channels(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<Json<Vec<ChannelView>>> {
    Ok(Json(channels::list(&state.deliverer, Some(id)).await?))
}

#[utoipa::path(post, path = "/tenants/{id}/alert-channels", tag = "alerts",
    description = "Add a channel (at most 20). The URL must be https to a public address unless the operator \
                   allows its network. A webhook's answer carries its signing secret (`whsec_…`), shown only \
                   this once.",
    params(TenantPath), request_body = ChannelInput,
    responses((status = 201, body = ChannelView),
        (status = 422, description = "bad kind, name or URL (a private or link-local destination, not https), \
                                      or the tenant has 20 channels", body = ErrorBody)))]
pub async fn create_channel(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppJson(input): AppJson<ChannelInput>,
) -> Result<(StatusCode, Json<ChannelView>)> {
    Ok((StatusCode::CREATED, Json(channels::create(&state.deliverer, Some(id), &input).await?)))
}

#[utoipa::path(get, path = "/tenants/{id}/alert-channels/{ch}", tag = "alerts",
    params(TenantPath, ("ch" = i64, Path, minimum = 1, description = "channel id")),
    responses((status = 200, body = ChannelView)))]
pub async fn get_channel(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppPath((_id, ch)): AppPath<(String, String)>,
) -> Result<Json<ChannelView>> {
    Ok(Json(channels::get(&state.deliverer, Some(id), channel_id(&ch)?).await?))
}

#[utoipa::path(patch, path = "/tenants/{id}/alert-channels/{ch}", tag = "alerts",
    description = "Rename, change the URL, enable or disable; `rotate_secret: true` makes a new signing secret \
                   (in this answer only) while the previous one keeps signing for 24 hours.",
    params(TenantPath, ("ch" = i64, Path, minimum = 1, description = "channel id")), request_body = ChannelPatch,
    responses((status = 200, body = ChannelView)))]
pub async fn change_channel(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppPath((_id, ch)): AppPath<(String, String)>,
    AppJson(patch): AppJson<ChannelPatch>,
) -> Result<Json<ChannelView>> {
    Ok(Json(channels::update(&state.deliverer, Some(id), channel_id(&ch)?, &patch).await?))
}

#[utoipa::path(delete, path = "/tenants/{id}/alert-channels/{ch}", tag = "alerts",
    description = "Delete a channel and its deliveries.",
    params(TenantPath, ("ch" = i64, Path, minimum = 1, description = "channel id")),
    responses((status = 204, description = "deleted")))]
pub async fn delete_channel(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppPath((_id, ch)): AppPath<(String, String)>,
) -> Result<StatusCode> {
    channels::delete(&state.deliverer, Some(id), channel_id(&ch)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/tenants/{id}/alert-channels/{ch}/test", tag = "alerts",
    description = "Send one test delivery now and answer with the receiver's status and latency (the delivery \
                   is listed with the channel's deliveries).",
    params(TenantPath, ("ch" = i64, Path, minimum = 1, description = "channel id")),
    responses((status = 200, body = TestOutcome)))]
pub async fn test_channel(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppPath((_id, ch)): AppPath<(String, String)>,
) -> Result<Json<TestOutcome>> {
    let url = dashboard_url(&state, Some(id));
    Ok(Json(channels::test(&state.deliverer, Some(id), channel_id(&ch)?, &url).await?))
}

#[utoipa::path(get, path = "/tenants/{id}/alert-deliveries", tag = "alerts",
    description = "The tenant's alert deliveries, newest first, with their outcome.",
    params(TenantPath, DeliveryQuery),
    responses((status = 200, body = DeliveryPage)))]
pub async fn list_deliveries(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<DeliveryQuery>,
) -> Result<Json<DeliveryPage>> {
    Ok(Json(channels::deliveries(&state.deliverer, Some(id), &query).await?))
}

#[utoipa::path(get, path = "/alert-channels", tag = "alerts",
    description = "The operators' alert channels (for cluster-wide rules).",
    responses((status = 200, body = [ChannelView])))]
pub async fn list_operator_channels(_: Operator, State(state): State<AppState>) -> Result<Json<Vec<ChannelView>>> {
    Ok(Json(channels::list(&state.deliverer, None).await?))
}

#[utoipa::path(post, path = "/alert-channels", tag = "alerts",
    description = "Add an operators' channel; `alertmanager_api` pushes to an Alertmanager's `/api/v2/alerts`.",
    request_body = ChannelInput,
    responses((status = 201, body = ChannelView),
        (status = 422, description = "bad kind, name or URL, or 20 channels already", body = ErrorBody)))]
pub async fn create_operator_channel(
    _: Operator,
    State(state): State<AppState>,
    AppJson(input): AppJson<ChannelInput>,
) -> Result<(StatusCode, Json<ChannelView>)> {
    Ok((StatusCode::CREATED, Json(channels::create(&state.deliverer, None, &input).await?)))
}

#[utoipa::path(get, path = "/alert-channels/{ch}", tag = "alerts",
    params(("ch" = i64, Path, minimum = 1, description = "channel id")),
    responses((status = 200, body = ChannelView)))]
pub async fn get_operator_channel(
    _: Operator,
    State(state): State<AppState>,
    AppPath(ch): AppPath<String>,
) -> Result<Json<ChannelView>> {
    Ok(Json(channels::get(&state.deliverer, None, channel_id(&ch)?).await?))
}

#[utoipa::path(patch, path = "/alert-channels/{ch}", tag = "alerts",
    params(("ch" = i64, Path, minimum = 1, description = "channel id")), request_body = ChannelPatch,
    responses((status = 200, body = ChannelView)))]
pub async fn change_operator_channel(
    _: Operator,
    State(state): State<AppState>,
    AppPath(ch): AppPath<String>,
    AppJson(patch): AppJson<ChannelPatch>,
) -> Result<Json<ChannelView>> {
    Ok(Json(channels::update(&state.deliverer, None, channel_id(&ch)?, &patch).await?))
}

#[utoipa::path(delete, path = "/alert-channels/{ch}", tag = "alerts",
    params(("ch" = i64, Path, minimum = 1, description = "channel id")),
    responses((status = 204, description = "deleted")))]
pub async fn delete_operator_channel(
    _: Operator,
    State(state): State<AppState>,
    AppPath(ch): AppPath<String>,
) -> Result<StatusCode> {
    channels::delete(&state.deliverer, None, channel_id(&ch)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/alert-channels/{ch}/test", tag = "alerts",
    params(("ch" = i64, Path, minimum = 1, description = "channel id")),
    responses((status = 200, body = TestOutcome)))]
pub async fn test_operator_channel(
    _: Operator,
    State(state): State<AppState>,
    AppPath(ch): AppPath<String>,
) -> Result<Json<TestOutcome>> {
    let url = dashboard_url(&state, None);
    Ok(Json(channels::test(&state.deliverer, None, channel_id(&ch)?, &url).await?))
}

#[utoipa::path(get, path = "/alert-deliveries", tag = "alerts",
    description = "Deliveries of the operators' channels, newest first.",
    params(DeliveryQuery),
    responses((status = 200, body = DeliveryPage)))]
pub async fn list_operator_deliveries(
    _: Operator,
    State(state): State<AppState>,
    AppQuery(query): AppQuery<DeliveryQuery>,
) -> Result<Json<DeliveryPage>> {
    Ok(Json(channels::deliveries(&state.deliverer, None, &query).await?))
}
