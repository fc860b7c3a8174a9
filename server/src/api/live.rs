use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::doc::TenantPath;
use crate::error::Result;
use crate::http::ErrorBody;
use crate::http::{AppJson, AppPath};
use crate::http::{Operator, TenantScope};
use crate::kafka::live::LiveView;
use crate::state::AppState;
use crate::tenants::TenantId;

#[utoipa::path(get, path = "/tenants/{id}/streaming/live", tag = "streaming",
    description = "Consumer groups under c<N>_ with lag per partition, throughput of c<N> and c<N>_waf, \
                   a bounded sample of the newest records (unless turned off), and the WAF rules and \
                   client addresses seen most in the last hour.",
    params(TenantPath),
    responses((status = 200, body = LiveView),
        (status = 503, description = "no Kafka cluster configured, or it cannot be reached", body = ErrorBody)))]
pub async fn live_view(TenantScope { id, .. }: TenantScope, State(state): State<AppState>) -> Result<Json<LiveView>> {
    Ok(Json(state.live_view(id).await?))
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LiveTail {
    pub enabled: bool,
}

#[utoipa::path(put, path = "/tenants/{id}/streaming/live-tail", tag = "streaming",
    description = "Turn the live tail of the tenant's records on or off (operators).",
    params(TenantPath), request_body = LiveTail,
    responses((status = 200, body = LiveTail)))]
pub async fn set_live_tail(
    _: Operator,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<LiveTail>,
) -> Result<Json<LiveTail>> {
    let id = TenantId::parse_str(&id)?;
    crate::tenants::set_live_tail(&state.store, id, body.enabled).await?;
    Ok(Json(body))
}
