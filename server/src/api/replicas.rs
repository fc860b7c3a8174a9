use axum::Json;
use axum::extract::State;

use crate::error::Result;
use crate::http::Operator;
use crate::replicas::{self, ReplicasView};
use crate::state::AppState;

#[utoipa::path(get, path = "/replicas", tag = "replicas",
    description = "The server replicas serving this database (live: a heartbeat within 15 s) and which holds \
                   each lease (operators).",
    responses((status = 200, body = ReplicasView)))]
pub async fn list_replicas(_: Operator, State(state): State<AppState>) -> Result<Json<ReplicasView>> {
    Ok(Json(replicas::list(&state.store).await?))
}
