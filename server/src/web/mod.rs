//! Dashboard: server-rendered pages that work without JavaScript. Every state change is a
//! POST form carrying the session's CSRF token, answered with a redirect (post/redirect/get).

mod firewall;
mod pages;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::app::AppState;
use crate::error::Error;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(pages::home))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/tenants", get(pages::tenants).post(pages::create_tenant))
        .route("/tenants/{id}", get(pages::tenant_home))
        .route("/tenants/{id}/delete", post(pages::delete_tenant))
        .route("/tenants/{id}/streaming", get(pages::streaming))
        .route("/tenants/{id}/streaming/activate", post(pages::activate))
        .route("/tenants/{id}/streaming/deactivate", post(pages::deactivate))
        .route("/tenants/{id}/streaming/check", post(pages::check))
        .route("/tenants/{id}/streaming/partitions", post(pages::partitions))
        .route("/tenants/{id}/credentials/rotate", post(pages::rotate))
        .route("/tenants/{id}/credentials/{k}/revoke", post(pages::revoke))
        .route("/tenants/{id}/bundle.zip", get(pages::bundle))
        .route("/tenants/{id}/allowlist", post(firewall::add_entry))
        .route("/tenants/{id}/allowlist/{entry}/remove", post(firewall::remove_entry))
        .route("/brokers", get(firewall::brokers_page))
        .route("/brokers/{broker}/forget", post(firewall::forget_broker))
        .route("/static/style.css", get(style))
}

/// The stylesheet is compiled in, so the binary serves the dashboard from any directory.
async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")],
        include_str!("../../../web/style.css"),
    )
}

/// An error rendered as an HTML page with the error's status code.
pub struct PageError(pub Error);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::error!(error = ?self.0, "page failed");
        }
        let page = pages::ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: self.0.public_message(),
        };
        (status, page).into_response()
    }
}

pub type PageResult<T> = Result<T, PageError>;

/// 303 See Other: after a POST, the browser GETs the target.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}
