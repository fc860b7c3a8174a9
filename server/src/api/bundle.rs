use axum::extract::State;
use axum::response::IntoResponse;

use crate::app::AppState;
use crate::auth::TenantScope;
use crate::error::{ErrorBody, Result};

#[utoipa::path(get, path = "/tenants/{id}/bundle.zip", tag = "bundle",
    description = "The zip with the newest active credential and prefilled consumer configurations.",
    params(("id" = i64, Path, description = "tenant id")),
    responses((status = 200, description = "zip archive", content_type = "application/zip", body = Vec<u8>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "streaming not active or no active credential", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn download_bundle(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<impl IntoResponse> {
    Ok(crate::bundle::zip_response(id, crate::bundle::for_tenant(&state, id).await?))
}
