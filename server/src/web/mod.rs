//! Dashboard: server-rendered pages that work without JavaScript. Every state change is a
//! POST form carrying the session's CSRF token, answered with a redirect (post/redirect/get).

mod accounts;
mod credentials;
mod firewall;
mod live;
mod partitions;
pub(crate) mod signin;
mod streaming;
mod tenants;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::error::Error;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(signin::home))
        .route("/login", get(signin::login_form).post(signin::login))
        .route("/logout", post(signin::logout))
        .route("/tenants", get(tenants::tenants).post(tenants::create_tenant))
        .route("/tenants/{id}", get(tenants::tenant_home))
        .route("/tenants/{id}/delete", post(tenants::delete_tenant))
        .route("/tenants/{id}/streaming", get(streaming::streaming))
        .route("/tenants/{id}/streaming/activate", post(streaming::activate))
        .route("/tenants/{id}/streaming/deactivate", post(streaming::deactivate))
        .route("/tenants/{id}/streaming/check", post(streaming::check))
        .route("/tenants/{id}/streaming/partitions", post(partitions::partitions))
        .route("/tenants/{id}/credentials/rotate", post(credentials::rotate))
        .route("/tenants/{id}/credentials/{k}/revoke", post(credentials::revoke))
        .route("/tenants/{id}/bundle.zip", get(streaming::bundle))
        .route("/tenants/{id}/streaming/partition-requests", post(partitions::request_partitions))
        .route("/users", get(accounts::users).post(accounts::invite_user))
        .route("/users/{user}/{action}", post(accounts::set_user_disabled))
        .route("/tokens", get(accounts::tokens).post(accounts::create_token))
        .route("/tokens/{token}/revoke", post(accounts::revoke_token))
        .route("/audit", get(accounts::audit_log))
        .route("/ca", get(accounts::ca))
        .route("/ca.pem", get(accounts::ca_pem))
        .route("/invite/{secret}", get(accounts::invite_form).post(accounts::accept_invite))
        .route("/tenants/{id}/streaming/live", get(live::page))
        .route("/tenants/{id}/streaming/live.html", get(live::fragment))
        .route("/tenants/{id}/streaming/live-tail", post(live::set_tail))
        .route("/tenants/{id}/allowlist", post(firewall::add_entry))
        .route("/tenants/{id}/allowlist/{entry}/remove", post(firewall::remove_entry))
        .route("/brokers", get(firewall::brokers_page))
        .route("/brokers/{broker}/forget", post(firewall::forget_broker))
        .route("/static/style.css", get(style))
        .route("/static/live.js", get(script))
}

/// The stylesheet is compiled in, so the binary serves the dashboard from any directory.
async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")],
        include_str!("../../../web/style.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")],
        include_str!("../../../web/live.js"),
    )
}

/// The dashboard's only script is `/static/live.js` and its only stylesheet `/static/style.css`:
/// nothing inline may run, nothing may frame the pages, forms post only back to outflow.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every response; HTML pages (all of which show tenant data, secrets or a
/// sign-in form) also get the content policy and are never cached. Responses that set their own
/// `Cache-Control` (static assets, downloads) keep it.
pub async fn security_headers(mut response: Response) -> Response {
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if html {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// SVG polyline points (a 100×20 box) for a series of (time, value), for sparklines.
pub fn sparkline(series: &[(i64, f64)]) -> String {
    let max = series.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max).max(1e-9);
    let n = series.len().max(2) - 1;
    series
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{:.1},{:.1}", i as f64 * 100.0 / n as f64, 20.0 - v / max * 19.0))
        .collect::<Vec<_>>()
        .join(" ")
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
        let status = crate::http::status(&self.0);
        if status.is_server_error() {
            tracing::error!(error = ?self.0, "page failed");
        }
        let page = ErrorPage {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error"),
            message: self.0.public_message(),
        };
        (status, page).into_response()
    }
}

pub type PageResult<T> = Result<T, PageError>;

/// What the navigation bar of every signed-in page needs.
#[derive(Debug, Clone)]
pub struct Nav {
    pub csrf: String,
    pub user: String,
    pub operator: bool,
    /// Where "Streaming" leads a tenant account.
    pub home: String,
}

impl Nav {
    pub fn of(session: &crate::auth::Session) -> Self {
        Self {
            csrf: session.csrf.clone(),
            user: session.principal.name.clone(),
            operator: session.is_operator(),
            home: session.principal.tenant().map_or_else(|| "/tenants".into(), |t| format!("/tenants/{t}/streaming")),
        }
    }
}

/// 303 See Other: after a POST, the browser GETs the target.
pub fn see_other(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_owned())]).into_response()
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
}

/// Notices shown after a redirect; keys only, so a crafted link cannot put text on the page.
#[derive(Debug, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

impl NoticeQuery {
    pub fn text(&self) -> Option<&'static str> {
        Some(match self.notice.as_deref()? {
            "created" => "Tenant created.",
            "deleted" => "Tenant deleted.",
            "activated" => "Streaming activated: credential issued and topics recorded.",
            "deactivated" => "Streaming deactivated: every credential was revoked.",
            "rotated" => {
                "New credential issued. The download now contains it; older credentials keep working until revoked."
            }
            "revoked" => "Credential revoked.",
            "partitions" => "Partition count raised; the topics grow in place once the change reaches Kafka.",
            "requested" => "Request sent: the CDN's operators will see it on this page.",
            "allowlist-added" => "Address added; the brokers' firewalls apply it within seconds.",
            "allowlist-unchanged" => "That address was already on the allowlist.",
            "allowlist-removed" => "Address removed; the brokers' firewalls drop it within seconds.",
            "forgotten" => "Broker forgotten; it reappears if its agent reports again.",
            _ => return None,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}
