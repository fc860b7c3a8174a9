use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Deserializer};

use super::doc::TenantPath;
use crate::error::Result;
use crate::http::{AppJson, AppPath, ErrorBody, Operator, TenantScope};
use crate::state::AppState;
use crate::tenants::TenantId;
use crate::tenants::quota::{self, DefaultQuotaView, Quota, QuotaView};

/// A quota body: a JSON object only (serde would take `[rate, share]` for a struct too).
#[derive(Debug)]
pub struct QuotaBody(Quota);

impl<'de> Deserialize<'de> for QuotaBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        Quota::deserialize(serde_json::Value::Object(object)).map(QuotaBody).map_err(serde::de::Error::custom)
    }
}

#[utoipa::path(get, path = "/tenants/{id}/quota", tag = "quotas",
    description = "The tenant's client quota: its own values, the cluster-wide default, and the effective values \
                   the brokers enforce on each active credential principal. Kafka applies a quota per broker and \
                   per principal: a tenant reading from three brokers, or holding two credentials during a \
                   rotation, may use the rate on each.",
    params(TenantPath),
    responses((status = 200, body = QuotaView)))]
pub async fn get_quota(TenantScope { id, .. }: TenantScope, State(state): State<AppState>) -> Result<Json<QuotaView>> {
    Ok(Json(quota::view(&state.store, id, state.config.kafka.max_message_bytes).await?))
}

#[utoipa::path(put, path = "/tenants/{id}/quota", tag = "quotas",
    description = "Set the tenant's quota (operators). A value left out or null takes the cluster-wide default. \
                   `consumer_byte_rate` below `min_consumer_byte_rate` is refused: the broker returns a first batch \
                   whole and then throttles for up to ~10 s worth of the quota, so a lower rate can starve a \
                   consumer.",
    params(TenantPath), request_body = Quota,
    responses((status = 200, body = QuotaView),
        (status = 422, description = "a value out of range, named in the error", body = ErrorBody)))]
pub async fn set_quota(
    _: Operator,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppJson(QuotaBody(body)): AppJson<QuotaBody>,
) -> Result<Json<QuotaView>> {
    let id = TenantId::parse_str(&id)?;
    Ok(Json(quota::set(&state.store, id, body, state.config.kafka.max_message_bytes).await?))
}

#[utoipa::path(get, path = "/quotas/default", tag = "quotas",
    description = "The cluster-wide default quota every tenant's unset values take (operators).",
    responses((status = 200, body = DefaultQuotaView)))]
pub async fn get_default_quota(_: Operator, State(state): State<AppState>) -> Result<Json<DefaultQuotaView>> {
    Ok(Json(quota::default_view(&state.store, state.config.kafka.max_message_bytes).await?))
}

#[utoipa::path(put, path = "/quotas/default", tag = "quotas",
    description = "Set the cluster-wide default quota (operators); a value left out or null means none. Every \
                   active tenant is pending until the brokers have the change.",
    request_body = Quota,
    responses((status = 200, body = DefaultQuotaView),
        (status = 422, description = "a value out of range, named in the error", body = ErrorBody)))]
pub async fn set_default_quota(
    _: Operator,
    State(state): State<AppState>,
    AppJson(QuotaBody(body)): AppJson<QuotaBody>,
) -> Result<Json<DefaultQuotaView>> {
    Ok(Json(quota::set_default(&state.store, body, state.config.kafka.max_message_bytes).await?))
}
