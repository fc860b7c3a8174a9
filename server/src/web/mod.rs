//! Dashboard: server-rendered pages that work without JavaScript.

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
