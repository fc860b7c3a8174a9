//! Dashboard: server-rendered pages that work without JavaScript. Every state change is a
//! POST form carrying the session's CSRF token, answered with a redirect (post/redirect/get).

mod accounts;
mod alerts;
mod credentials;
mod firewall;
mod live;
mod partitions;
pub(crate) mod signin;
mod streaming;
mod tenants;
mod usage;

use askama::Template;
use askama_web::WebTemplate;
use axum::Router;
use axum::handler::Handler;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use serde::Deserialize;

use crate::error::Error;
use crate::state::AppState;

/// One dashboard route: a method, the path as the router matches it, and its handler.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

fn route<H: Handler<T, AppState>, T: 'static>(method: Method, path: &'static str, handler: H) -> Route {
    let filter = MethodFilter::try_from(method.clone()).expect("a method the router can match");
    Route { method, path, handler: on(filter, handler) }
}

/// Every dashboard route. [`router`] serves exactly these, so this list is the dashboard's
/// surface: the access-matrix test demands an access rule for each entry.
pub fn routes() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/", signin::home),
        route(M::GET, "/login", signin::login_form),
        route(M::POST, "/login", signin::login),
        route(M::POST, "/logout", signin::logout),
        route(M::GET, "/tenants", tenants::tenants),
        route(M::POST, "/tenants", tenants::create_tenant),
        route(M::GET, "/tenants/{id}", tenants::tenant_home),
        route(M::POST, "/tenants/{id}/delete", tenants::delete_tenant),
        route(M::GET, "/tenants/{id}/streaming", streaming::streaming),
        route(M::POST, "/tenants/{id}/streaming/activate", streaming::activate),
        route(M::POST, "/tenants/{id}/streaming/deactivate", streaming::deactivate),
        route(M::POST, "/tenants/{id}/streaming/check", streaming::check),
        route(M::POST, "/tenants/{id}/streaming/partitions", partitions::partitions),
        route(M::POST, "/tenants/{id}/streaming/quota", partitions::quota),
        route(M::POST, "/tenants/{id}/credentials/rotate", credentials::rotate),
        route(M::POST, "/tenants/{id}/credentials/{k}/revoke", credentials::revoke),
        route(M::GET, "/tenants/{id}/bundle.zip", streaming::bundle),
        route(M::POST, "/tenants/{id}/streaming/partition-requests", partitions::request_partitions),
        route(M::GET, "/users", accounts::users),
        route(M::POST, "/users", accounts::invite_user),
        route(M::POST, "/users/{user}/{action}", accounts::set_user_disabled),
        route(M::GET, "/tokens", accounts::tokens),
        route(M::POST, "/tokens", accounts::create_token),
        route(M::POST, "/tokens/{token}/revoke", accounts::revoke_token),
        route(M::GET, "/audit", accounts::audit_log),
        route(M::GET, "/ca", accounts::ca),
        route(M::GET, "/ca.pem", accounts::ca_pem),
        route(M::GET, "/invite/{secret}", accounts::invite_form),
        route(M::POST, "/invite/{secret}", accounts::accept_invite),
        route(M::GET, "/tenants/{id}/streaming/live", live::page),
        route(M::GET, "/tenants/{id}/streaming/live.html", live::fragment),
        route(M::POST, "/tenants/{id}/streaming/live-tail", live::set_tail),
        route(M::POST, "/tenants/{id}/allowlist", firewall::add_entry),
        route(M::POST, "/tenants/{id}/allowlist/{entry}/remove", firewall::remove_entry),
        route(M::GET, "/tenants/{id}/alerts", alerts::alerts),
        route(M::POST, "/tenants/{id}/alerts/rules", alerts::create_rule),
        route(M::POST, "/tenants/{id}/alerts/rules/{rule}/{action}", alerts::rule_action),
        route(M::POST, "/tenants/{id}/alerts/channels", alerts::create_channel),
        route(M::POST, "/tenants/{id}/alerts/channels/{channel}/{action}", alerts::channel_action),
        route(M::GET, "/brokers", firewall::brokers_page),
        route(M::GET, "/usage", usage::usage_page),
        route(M::POST, "/brokers/{broker}/forget", firewall::forget_broker),
        route(M::GET, "/static/style.css", style),
        route(M::GET, "/static/live.js", script),
    ]
}

/// The dashboard: [`routes`], each with its handler.
pub fn router() -> Router<AppState> {
    routes().into_iter().fold(Router::new(), |router, r| router.route(r.path, r.handler))
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

/// The time of day (UTC, with milliseconds) of unix milliseconds, for tables of events.
pub fn clock_time(unix_ms: &Option<i64>) -> String {
    unix_ms
        .map(|ms| crate::clock::rfc3339_ms(ms).get(11..23).unwrap_or_default().to_owned())
        .unwrap_or_else(|| "—".into())
}

/// A record's JSON indented for reading (as it is when it does not parse, e.g. cut short).
pub fn pretty_json(raw: &str) -> String {
    serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_owned())
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
            "quota" => "Quota saved; the brokers enforce it once the change reaches Kafka.",
            "requested" => "Request sent: the CDN's operators will see it on this page.",
            "allowlist-added" => "Address added; the brokers' firewalls apply it within seconds.",
            "allowlist-unchanged" => "That address was already on the allowlist.",
            "allowlist-removed" => "Address removed; the brokers' firewalls drop it within seconds.",
            "forgotten" => "Broker forgotten; it reappears if its agent reports again.",
            "rule-created" => "Alert rule added; it is evaluated within seconds.",
            "rule-muted" => "Rule muted for an hour: still evaluated, nothing sent.",
            "rule-unmuted" => "Rule unmuted.",
            "rule-deleted" => "Rule deleted with its alerts and history.",
            "channel-deleted" => "Channel deleted; rules that used it send to their other channels.",
            _ => return None,
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}
