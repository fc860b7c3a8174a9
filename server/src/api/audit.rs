use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};

use crate::app::AppState;
use crate::audit::{self, Filter, Page};
use crate::auth::Caller;
use crate::error::{Error, Result};

#[utoipa::path(get, path = "/audit", tag = "audit",
    description = "The audit log, newest first. Tenant accounts see only entries about their own tenant.",
    params(Filter),
    responses((status = 200, body = Page)))]
pub async fn list_audit(
    Caller(caller): Caller,
    State(state): State<AppState>,
    filter: Result<Query<Filter>, QueryRejection>,
) -> Result<Json<Page>> {
    let Query(filter) = filter.map_err(|e| Error::invalid("query", e.body_text()))?;
    Ok(Json(audit::list(&state.db, &caller, &filter).await?))
}
