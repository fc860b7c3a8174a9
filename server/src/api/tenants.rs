use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

use super::doc::TenantPath;
use crate::error::Result;
use crate::http::ErrorBody;
use crate::http::{AppJson, AppPath};
use crate::http::{Operator, TenantScope};
use crate::state::AppState;
use crate::tenants::{self, TenantId, TenantName, TenantView};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// Numeric tenant id, 1..=999999; the topic will be `c<id>`.
    #[schema(example = 83, minimum = 1, maximum = 999999)]
    pub id: i64,
    /// Display name, 1..=100 characters of printable text (surrounding spaces are trimmed).
    #[schema(example = "Acme", min_length = 1, max_length = 100)]
    pub name: String,
}

#[utoipa::path(get, path = "/tenants", tag = "tenants",
    responses((status = 200, body = [TenantView])))]
pub async fn list_tenants(_: Operator, State(state): State<AppState>) -> Result<Json<Vec<TenantView>>> {
    let rows = tenants::list(&state.store).await?;
    Ok(Json(rows.into_iter().map(TenantView::from).collect()))
}

#[utoipa::path(post, path = "/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = TenantView), (status = 409, description = "tenant exists", body = ErrorBody)))]
pub async fn create_tenant(
    _: Operator,
    State(state): State<AppState>,
    AppJson(body): AppJson<CreateTenant>,
) -> Result<(StatusCode, Json<TenantView>)> {
    let id = TenantId::parse(body.id)?;
    let name = TenantName::parse(&body.name)?;
    let tenant = tenants::create(&state.store, id, &name).await?;
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

#[utoipa::path(get, path = "/tenants/{id}", tag = "tenants", params(TenantPath),
    responses((status = 200, body = TenantView)))]
pub async fn get_tenant(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<Json<TenantView>> {
    Ok(Json(tenants::get(&state.store, id).await?.into()))
}

#[utoipa::path(delete, path = "/tenants/{id}", tag = "tenants", params(TenantPath),
    responses((status = 204, description = "deleted"),
        (status = 409, description = "streaming still active", body = ErrorBody)))]
pub async fn delete_tenant(
    _: Operator,
    State(state): State<AppState>,
    AppPath(id): AppPath<String>,
) -> Result<StatusCode> {
    let id = TenantId::parse_str(&id)?;
    tenants::delete(&state.store, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
