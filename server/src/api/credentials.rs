use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::doc::TenantPath;
use crate::error::{Error, Result};
use crate::http::AppPath;
use crate::http::ErrorBody;
use crate::http::TenantScope;
use crate::state::AppState;
use crate::tenants;
use crate::tenants::credentials::{self, CredentialView};

#[utoipa::path(get, path = "/tenants/{id}/credentials", tag = "credentials",
    params(TenantPath),
    responses((status = 200, body = [CredentialView])))]
pub async fn list_credentials(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<Json<Vec<CredentialView>>> {
    tenants::get(&state.store, id).await?;
    let rows = credentials::list(&state.store, id).await?;
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
    let row = credentials::rotate(&state.store, &state.issuer, id).await?;
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
    let row = credentials::revoke(&state.store, id, k).await?;
    Ok(Json(CredentialView::from(&row)))
}
