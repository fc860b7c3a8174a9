use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::AppPath;
use super::doc::TenantPath;
use crate::app::AppState;
use crate::auth::TenantScope;
use crate::error::{Error, ErrorBody, Result};
use crate::pki::credentials::{self, CredentialView};
use crate::tenants;

#[utoipa::path(get, path = "/tenants/{id}/credentials", tag = "credentials",
    params(TenantPath),
    responses((status = 200, body = [CredentialView])))]
pub async fn list_credentials(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<Json<Vec<CredentialView>>> {
    tenants::get(&state.db, id).await?;
    let rows = credentials::list(&state.db, id).await?;
    Ok(Json(rows.iter().map(CredentialView::from).collect()))
}

#[utoipa::path(post, path = "/tenants/{id}/credentials", tag = "credentials",
    description = "Rotate: issue credential k+1. Earlier credentials keep working until revoked or expired.",
    params(TenantPath),
    responses((status = 201, body = CredentialView),
        (status = 409, description = "streaming not active", body = ErrorBody)))]
pub async fn rotate_credential(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<CredentialView>)> {
    let row = credentials::rotate(&state, id).await?;
    Ok((StatusCode::CREATED, Json(CredentialView::from(&row))))
}

#[utoipa::path(delete, path = "/tenants/{id}/credentials/{k}", tag = "credentials",
    description = "Revoke credential k. Idempotent.",
    params(TenantPath, ("k" = i64, Path, minimum = 1, description = "credential number")),
    responses((status = 200, body = CredentialView)))]
pub async fn revoke_credential(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
    AppPath((_id, k)): AppPath<(String, String)>,
) -> Result<Json<CredentialView>> {
    let k = k
        .parse::<i64>()
        .ok()
        .filter(|k| *k >= 1)
        .ok_or_else(|| Error::invalid("k", format!("credential number must be a positive integer, got {k:?}")))?;
    let row = credentials::revoke(&state, id, k).await?;
    Ok(Json(CredentialView::from(&row)))
}
