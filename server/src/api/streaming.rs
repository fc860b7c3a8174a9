use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;

use crate::app::AppState;
use crate::auth::Operator;
use crate::error::{ErrorBody, Result};
use crate::tenants::TenantId;
use crate::tenants::streaming::{self, StreamingStatus};

#[utoipa::path(put, path = "/tenants/{id}/streaming", tag = "streaming",
    description = "Activate streaming: records topics c<N> and c<N>_waf and issues credential 1. Idempotent.",
    params(("id" = i64, Path, description = "tenant id")),
    responses((status = 201, description = "activated now", body = StreamingStatus),
        (status = 200, description = "was already active", body = StreamingStatus),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn activate(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<StreamingStatus>)> {
    let id = TenantId::parse_str(&id)?;
    let (status, activated) = streaming::activate(&state, id).await?;
    Ok((if activated { StatusCode::CREATED } else { StatusCode::OK }, Json(status)))
}

#[utoipa::path(get, path = "/tenants/{id}/streaming", tag = "streaming",
    params(("id" = i64, Path, description = "tenant id")),
    responses((status = 200, body = StreamingStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn status(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StreamingStatus>> {
    let id = TenantId::parse_str(&id)?;
    Ok(Json(streaming::status(&state, id).await?))
}

#[utoipa::path(delete, path = "/tenants/{id}/streaming", tag = "streaming",
    description = "Deactivate streaming: every credential is revoked. Idempotent.",
    params(("id" = i64, Path, description = "tenant id")),
    responses((status = 200, body = StreamingStatus), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn deactivate(
    _: Operator,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StreamingStatus>> {
    let id = TenantId::parse_str(&id)?;
    Ok(Json(streaming::deactivate(&state, id).await?))
}
