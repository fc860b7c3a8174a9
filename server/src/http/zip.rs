//! The bundle download as an HTTP attachment.

use axum::http::header;
use axum::response::IntoResponse;

use crate::tenants::TenantId;

/// The zip as an attachment named `c<N>.zip` (API and dashboard).
pub fn zip_response(id: TenantId, bytes: Vec<u8>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}.zip\"", id.topic())),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        bytes,
    )
}
