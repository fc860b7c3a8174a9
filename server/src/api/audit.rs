use axum::Json;
use axum::extract::State;

use super::AppQuery;
use crate::app::AppState;
use crate::audit::{self, Filter, Page};
use crate::auth::Caller;
use crate::error::Result;

#[utoipa::path(get, path = "/audit", tag = "audit",
    description = "The audit log, newest first. Tenant accounts see only entries about their own tenant.",
    params(Filter),
    responses((status = 200, body = Page)))]
pub async fn list_audit(
    Caller(caller): Caller,
    State(state): State<AppState>,
    AppQuery(filter): AppQuery<Filter>,
) -> Result<Json<Page>> {
    Ok(Json(audit::list(&state.db, &caller, &filter).await?))
}
