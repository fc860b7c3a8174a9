use axum::Json;
use axum::extract::State;

use crate::audit::{self, Filter, Page};
use crate::error::Result;
use crate::http::AppQuery;
use crate::http::Caller;
use crate::state::AppState;

#[utoipa::path(get, path = "/audit", tag = "audit",
    description = "The audit log, newest first. Tenant accounts see only entries about their own tenant.",
    params(Filter),
    responses((status = 200, body = Page)))]
pub async fn list_audit(
    Caller(caller): Caller,
    State(state): State<AppState>,
    AppQuery(filter): AppQuery<Filter>,
) -> Result<Json<Page>> {
    Ok(Json(audit::list(&state.store, &caller, &filter).await?))
}
