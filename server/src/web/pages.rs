//! Page handlers and their views (one askama struct per page).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::{PageResult, see_other};
use crate::app::AppState;
use crate::auth::{self, Role, Session, WebSession, constant_time_eq, session};
use crate::error::Error;
use crate::firewall::allowlist::{self, AllowlistView};
use crate::kafka::check::{self, CheckResult};
use crate::pki::credentials;
use crate::pki::random_password;
use crate::tenants::streaming::{self, StreamingStatus};
use crate::tenants::{self, Partitions, TenantId, TenantName, TenantView};

const LOGIN_CSRF_COOKIE: &str = "outflow_login_csrf";

#[derive(Template, WebTemplate)]
#[template(path = "pages/error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/login.html")]
pub struct LoginPage {
    csrf: String,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/tenants.html")]
pub struct TenantsPage {
    csrf: String,
    user: String,
    tenants: Vec<TenantView>,
    error: Option<String>,
    form_id: String,
    form_name: String,
    notice: Option<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/streaming.html")]
pub struct StreamingPage {
    csrf: String,
    user: String,
    tenant: TenantView,
    status: StreamingStatus,
    topic: String,
    waf_topic: String,
    group_prefix: String,
    ca_file: String,
    notice: Option<&'static str>,
    check: Option<CheckResult>,
    allowlist: AllowlistView,
    /// The broadest prefixes a tenant may add.
    min_v4: u8,
    min_v6: u8,
    /// Why the last allowlist form was refused, and what was typed.
    pub(super) allowlist_error: Option<String>,
    pub(super) allowlist_form: String,
}

/// Notices shown after a redirect; keys only, so a crafted link cannot put text on the page.
#[derive(Debug, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

impl NoticeQuery {
    pub(super) fn text(&self) -> Option<&'static str> {
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
    pub(super) csrf: String,
}

pub async fn home(jar: CookieJar) -> Redirect {
    if jar.get(session::SESSION_COOKIE).is_some() { Redirect::to("/tenants") } else { Redirect::to("/login") }
}

pub async fn login_form() -> impl IntoResponse {
    login_page(None, StatusCode::OK)
}

/// The sign-in form with a fresh double-submit CSRF token (cookie and hidden field must match).
fn login_page(error: Option<String>, status: StatusCode) -> Response {
    let csrf = random_password(32);
    let cookie = Cookie::build((LOGIN_CSRF_COOKIE, csrf.clone()))
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .build();
    (status, CookieJar::new().add(cookie), LoginPage { csrf, error }).into_response()
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

pub async fn login(State(state): State<AppState>, jar: CookieJar, Form(form): Form<LoginForm>) -> PageResult<Response> {
    let expected = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned()).unwrap_or_default();
    if expected.is_empty() || !constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return Ok(login_page(Some("The form expired; please sign in again.".into()), StatusCode::FORBIDDEN));
    }
    let principal = auth::authenticate(&state.db, form.token.trim()).await?;
    let Some(principal) = principal.filter(|p| p.role() == Role::Operator) else {
        return Ok(login_page(Some("That token is not a valid operator token.".into()), StatusCode::UNAUTHORIZED));
    };
    let cookie = session::start(&state, principal.token_id).await?;
    tracing::info!(token = principal.name, "dashboard sign-in");
    Ok((jar.remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/login")).add(cookie), see_other("/tenants")).into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let cookie = session::end(&state, &jar).await?;
    Ok((jar.add(cookie), see_other("/login")).into_response())
}

async fn tenants_page(
    state: &AppState,
    session: &Session,
    error: Option<String>,
    form: Option<&CreateTenantForm>,
    notice: Option<&'static str>,
) -> PageResult<TenantsPage> {
    let tenants = tenants::list(&state.db).await?.into_iter().map(TenantView::from).collect();
    Ok(TenantsPage {
        csrf: session.csrf.clone(),
        user: session.principal.name.clone(),
        tenants,
        error,
        form_id: form.map(|f| f.id.clone()).unwrap_or_default(),
        form_name: form.map(|f| f.name.clone()).unwrap_or_default(),
        notice,
    })
}

pub async fn tenants(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Query(q): Query<NoticeQuery>,
) -> PageResult<TenantsPage> {
    tenants_page(&state, &session, None, None, q.text()).await
}

#[derive(Debug, Deserialize)]
pub struct CreateTenantForm {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    csrf: String,
}

pub async fn create_tenant(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Form(form): Form<CreateTenantForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let created = async {
        let id = TenantId::parse_str(form.id.trim())?;
        let name = TenantName::parse(&form.name)?;
        tenants::create(&state.db, id, &name).await
    }
    .await;
    match created {
        Ok(tenant) => Ok(see_other(&format!("/tenants/{}/streaming?notice=created", tenant.id))),
        // Bad input re-renders the form with what was typed and the problem named.
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_))) => {
            let status = e.status();
            let page = tenants_page(&state, &session, Some(e.public_message()), Some(&form), None).await?;
            Ok((status, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn tenant_home(Path(id): Path<String>) -> PageResult<Redirect> {
    let id = TenantId::parse_str(&id)?;
    Ok(Redirect::to(&format!("/tenants/{id}/streaming")))
}

pub async fn streaming(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Query(q): Query<NoticeQuery>,
) -> PageResult<StreamingPage> {
    let id = TenantId::parse_str(&id)?;
    streaming_page(&state, &session, id, q.text(), None).await
}

pub(super) async fn streaming_page(
    state: &AppState,
    session: &Session,
    id: TenantId,
    notice: Option<&'static str>,
    check: Option<CheckResult>,
) -> PageResult<StreamingPage> {
    let tenant = tenants::get(&state.db, id).await?;
    let status = streaming::status(state, id).await?;
    let allowlist = allowlist::list(&state.db, id, &state.config.firewall).await?;
    Ok(StreamingPage {
        csrf: session.csrf.clone(),
        user: session.principal.name.clone(),
        tenant: tenant.into(),
        status,
        topic: id.topic(),
        waf_topic: id.waf_topic(),
        group_prefix: id.group_prefix(),
        ca_file: format!("{}.pem", state.ca.name),
        notice,
        check,
        allowlist,
        min_v4: state.config.firewall.min_prefix_v4,
        min_v6: state.config.firewall.min_prefix_v6,
        allowlist_error: None,
        allowlist_form: String::new(),
    })
}

/// Runs the connectivity self-test and shows its result on the Streaming tab.
pub async fn check(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<StreamingPage> {
    let id = tenant_form(&session, &form, &id)?;
    let result = check::run(&state, id).await?;
    streaming_page(&state, &session, id, None, Some(result)).await
}

#[derive(Debug, Deserialize)]
pub struct PartitionsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    partitions: String,
}

pub async fn partitions(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Form(form): Form<PartitionsForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let id = TenantId::parse_str(&id)?;
    let n = form
        .partitions
        .trim()
        .parse::<i64>()
        .map_err(|_| Error::invalid("partitions", "partitions must be a number"))?;
    streaming::set_partitions(&state, id, Partitions::parse(n)?).await?;
    Ok(back_to_streaming(id, "partitions"))
}

/// Checks the CSRF token and the tenant id of a form post on a tenant's page.
fn tenant_form(session: &Session, form: &CsrfForm, id: &str) -> Result<TenantId, Error> {
    session.check_csrf(&form.csrf)?;
    TenantId::parse_str(id)
}

fn back_to_streaming(id: TenantId, notice: &str) -> Response {
    see_other(&format!("/tenants/{id}/streaming?notice={notice}"))
}

pub async fn activate(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let id = tenant_form(&session, &form, &id)?;
    streaming::activate(&state, id).await?;
    Ok(back_to_streaming(id, "activated"))
}

pub async fn deactivate(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let id = tenant_form(&session, &form, &id)?;
    streaming::deactivate(&state, id).await?;
    Ok(back_to_streaming(id, "deactivated"))
}

pub async fn rotate(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let id = tenant_form(&session, &form, &id)?;
    credentials::rotate(&state, id).await?;
    Ok(back_to_streaming(id, "rotated"))
}

pub async fn revoke(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path((id, k)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let id = tenant_form(&session, &form, &id)?;
    let k = k.parse::<i64>().map_err(|_| Error::invalid("k", "credential number must be a positive integer"))?;
    credentials::revoke(&state, id, k).await?;
    Ok(back_to_streaming(id, "revoked"))
}

pub async fn delete_tenant(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let id = tenant_form(&session, &form, &id)?;
    tenants::delete(&state.db, id).await?;
    Ok(see_other("/tenants?notice=deleted"))
}

pub async fn bundle(
    State(state): State<AppState>,
    WebSession(_): WebSession,
    Path(id): Path<String>,
) -> PageResult<impl IntoResponse> {
    let id = TenantId::parse_str(&id)?;
    Ok(crate::bundle::zip_response(id, crate::bundle::for_tenant(&state, id).await?))
}
