use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::error::Result;
use crate::http::ErrorBody;
use crate::http::{Operator, TenantScope};
use crate::state::AppState;
use serde::Deserialize;
use utoipa::ToSchema;

use super::doc::TenantPath;
use crate::http::{AppJson, AppPath};
use crate::kafka::check::CheckResult;
use crate::tenants::partition_requests::{self, PartitionRequest};
use crate::tenants::streaming::{self, StreamingStatus};
use crate::tenants::{Partitions, TenantId};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeStreaming {
    /// New partition count for `c<N>` and `c<N>_waf`; can only increase.
    #[schema(example = 4, minimum = 1, maximum = 1000)]
    pub partitions: i64,
}

#[utoipa::path(put, path = "/tenants/{id}/streaming", tag = "streaming",
    description = "Activate streaming: records topics c<N> and c<N>_waf and issues credential 1. Idempotent.",
    params(TenantPath),
    responses((status = 201, description = "activated now", body = StreamingStatus),
        (status = 200, description = "was already active", body = StreamingStatus)))]
pub async fn activate(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<StreamingStatus>)> {
    let (status, activated) = streaming::activate(&state.store, &state.issuer, &state.published(), id).await?;
    Ok((if activated { StatusCode::CREATED } else { StatusCode::OK }, Json(status)))
}

#[utoipa::path(get, path = "/tenants/{id}/streaming", tag = "streaming",
    params(TenantPath),
    responses((status = 200, body = StreamingStatus)))]
pub async fn status(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<Json<StreamingStatus>> {
    Ok(Json(streaming::status(&state.store, &state.published(), id).await?))
}

#[utoipa::path(delete, path = "/tenants/{id}/streaming", tag = "streaming",
    description = "Deactivate streaming: every credential is revoked. Idempotent.",
    params(TenantPath),
    responses((status = 200, body = StreamingStatus)))]
pub async fn deactivate(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<Json<StreamingStatus>> {
    Ok(Json(streaming::deactivate(&state.store, &state.published(), id).await?))
}

#[utoipa::path(patch, path = "/tenants/{id}/streaming", tag = "streaming",
    description = "Increase the partitions of both topics (in place). A decrease is refused with 422.",
    params(TenantPath), request_body = ChangeStreaming,
    responses((status = 200, body = StreamingStatus),
        (status = 409, description = "streaming not active", body = ErrorBody),
        (status = 422, description = "the body is invalid, or partitions are out of range or lower than today", body = ErrorBody)))]
pub async fn change(
    _: Operator,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<ChangeStreaming>,
) -> Result<Json<StreamingStatus>> {
    let id = TenantId::parse_str(&id)?;
    let partitions = Partitions::parse(body.partitions)?;
    Ok(Json(streaming::set_partitions(&state.store, &state.published(), id, partitions).await?))
}

#[utoipa::path(post, path = "/tenants/{id}/streaming/check", tag = "streaming",
    description = "Connectivity self-test: connects to the public listener with the tenant's newest credential \
                   and reads the metadata of c<N>. Answers ok, denied or unreachable with details. One check \
                   runs per tenant at a time, and `max_concurrent_checks` in all; others get 429.",
    params(TenantPath),
    responses((status = 200, body = CheckResult),
        (status = 409, description = "streaming not active or no credential", body = ErrorBody),
        (status = 429, description = "a check of this tenant, or too many checks, already running", body = ErrorBody)))]
pub async fn check(TenantScope { id, .. }: TenantScope, State(state): State<AppState>) -> Result<Json<CheckResult>> {
    Ok(Json(state.check(id).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestPartitions {
    /// The partition count asked for.
    #[schema(example = 4, minimum = 1, maximum = 1000)]
    pub partitions: i64,
    /// Why, for the operators (at most 500 characters).
    #[serde(default)]
    #[schema(max_length = 500)]
    pub note: String,
}

#[utoipa::path(get, path = "/tenants/{id}/streaming/partition-requests", tag = "streaming",
    params(TenantPath),
    responses((status = 200, body = [PartitionRequest])))]
pub async fn list_partition_requests(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<Json<Vec<PartitionRequest>>> {
    crate::tenants::get(&state.store, id).await?;
    Ok(Json(partition_requests::list(&state.store, id).await?))
}

#[utoipa::path(post, path = "/tenants/{id}/streaming/partition-requests", tag = "streaming",
    description = "Ask the operators for more partitions (tenants cannot change them directly).",
    params(TenantPath), request_body = RequestPartitions,
    responses((status = 201, body = PartitionRequest)))]
pub async fn request_partitions(
    TenantScope { caller, id }: TenantScope,
    State(state): State<AppState>,
    AppJson(body): AppJson<RequestPartitions>,
) -> Result<(StatusCode, Json<PartitionRequest>)> {
    let partitions = Partitions::parse(body.partitions)?;
    let request = partition_requests::file(&state.store, id, partitions, &body.note, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(request)))
}
