use axum::extract::State;
use axum::response::IntoResponse;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use super::doc::TenantPath;
use crate::error::Result;
use crate::http::ErrorBody;
use crate::http::TenantScope;
use crate::state::AppState;

/// The schema of the zip's bytes: a binary string, not the array of numbers `Vec<u8>` would be.
struct ZipArchive;

impl PartialSchema for ZipArchive {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for ZipArchive {}

#[utoipa::path(get, path = "/tenants/{id}/bundle.zip", tag = "bundle",
    description = "The zip with the newest active credential and prefilled consumer configurations.",
    params(TenantPath),
    responses((status = 200, description = "zip archive", content_type = "application/zip", body = inline(ZipArchive)),
        (status = 409, description = "streaming not active or no active credential", body = ErrorBody)))]
pub async fn download_bundle(
    TenantScope { id, .. }: TenantScope,
    State(state): State<AppState>,
) -> Result<impl IntoResponse> {
    Ok(crate::http::zip_response(id, state.bundle(id).await?))
}
