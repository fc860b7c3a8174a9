//! Page handlers and their views (one askama struct per page).

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::{Nav, PageResult, see_other};
use crate::app::AppState;
use crate::audit::{AuditNote, ClientAddr};
use crate::auth::{self, Role, Session, WebSession, constant_time_eq, session, users};
use crate::error::Error;
use crate::firewall::allowlist::{self, AllowlistView};
use crate::kafka::check::{self, CheckResult};
use crate::pki::credentials;
use crate::tenants::partition_requests::{self, PartitionRequest};
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
    nav: Nav,
    /// Each tenant with its reconcile status (`pending`, `ready`, `error`, or empty).
    tenants: Vec<(TenantView, String)>,
    error: Option<String>,
    form_id: String,
    form_name: String,
    notice: Option<&'static str>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/streaming.html")]
pub struct StreamingPage {
    csrf: String,
    nav: Nav,
    tenant: TenantView,
    status: StreamingStatus,
    topic: String,
    waf_topic: String,
    group_prefix: String,
    ca_file: String,
    notice: Option<&'static str>,
    check: Option<CheckResult>,
    requests: Vec<PartitionRequest>,
    live_tail: bool,
    port: String,
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
    pub(super) csrf: String,
}

pub async fn home(jar: CookieJar) -> Redirect {
    if jar.get(session::SESSION_COOKIE).is_some() { Redirect::to("/tenants") } else { Redirect::to("/login") }
}

pub async fn login_form(State(state): State<AppState>) -> impl IntoResponse {
    login_page(&state, None, StatusCode::OK)
}

/// The sign-in form with a fresh double-submit CSRF value (cookie and hidden field must match,
/// and the value must carry this server's signature; see `auth::login_csrf`).
fn login_page(state: &AppState, error: Option<String>, status: StatusCode) -> Response {
    let csrf = state.login_csrf.issue(tenants::now());
    let cookie = Cookie::build((LOGIN_CSRF_COOKIE, csrf.clone()))
        .path("/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .build();
    (status, CookieJar::new().add(cookie), LoginPage { csrf, error }).into_response()
}

/// Whether the browser says the form was posted from another site. Browsers send
/// `Sec-Fetch-Site` and `Origin` on form posts; clients that send neither (scripts) pass.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if let Some(site) = text("sec-fetch-site") {
        return !matches!(site.as_str(), "same-origin" | "none");
    }
    match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => {
            origin == "null" || origin.split_once("://").is_none_or(|(_, authority)| authority != host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// Signs in with an email and password, or with an operator or tenant API token. Failures
/// count against the account and the source address; past the limit sign-in is refused (429)
/// with a clear message before any password is checked. Every attempt is audited under the
/// account it named.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    jar: CookieJar,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> PageResult<Response> {
    let expected = jar.get(LOGIN_CSRF_COOKIE).map(|c| c.value().to_owned()).unwrap_or_default();
    let genuine = !expected.is_empty()
        && constant_time_eq(expected.as_bytes(), form.csrf.as_bytes())
        && state.login_csrf.verify(&form.csrf, tenants::now());
    if !genuine || cross_site(&headers) {
        let message = "The form expired or was not sent from this site; please sign in again.";
        return Ok(login_page(&state, Some(message.into()), StatusCode::FORBIDDEN));
    }
    let with_token = !form.token.trim().is_empty();
    let account = (!with_token).then(|| form.email.trim().to_lowercase());
    let attempt = AuditNote {
        actor: Some((account.clone().unwrap_or_else(|| "api token".into()), "anonymous".into())),
        action: Some("sign-in"),
        detail: if with_token { "with an API token".into() } else { "with a password".into() },
    };
    let refuse = |message: String, status: StatusCode, reason: &str| {
        let mut response = login_page(&state, Some(message), status);
        response
            .extensions_mut()
            .insert(AuditNote { detail: format!("{}: {reason}", attempt.detail), ..attempt.clone() });
        response
    };
    // Counted before any check, so concurrent guesses cannot all slip under the limit.
    let reservation = match state.login_limiter.reserve(account.as_deref(), &address, std::time::Instant::now()) {
        Ok(reservation) => reservation,
        Err(throttled) => return Ok(refuse(throttled.message(), StatusCode::TOO_MANY_REQUESTS, "rate limited")),
    };
    let checked = if with_token {
        auth::authenticate(&state.db, form.token.trim()).await.map(|p| p.filter(|p| p.role() != Role::Agent))
    } else {
        match users::verify_login(&state.db, &state.hashing, &form.email, &form.password).await {
            Ok(Some(user)) => users::principal_of(&user).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        }
    };
    let principal = match checked {
        Ok(principal) => principal,
        // Nothing was guessed (too many passwords being checked, or a server error).
        Err(e) => {
            state.login_limiter.release(reservation);
            if e.status() == StatusCode::SERVICE_UNAVAILABLE {
                return Ok(refuse(e.public_message(), StatusCode::SERVICE_UNAVAILABLE, "busy"));
            }
            return Err(e.into());
        }
    };
    let Some(principal) = principal else {
        let message = if with_token {
            "That token cannot sign in: it is not a valid operator or tenant token."
        } else {
            "Wrong email or password, or the account is disabled."
        };
        return Ok(refuse(message.into(), StatusCode::UNAUTHORIZED, "wrong credentials"));
    };
    state.login_limiter.succeeded(reservation, account.as_deref());
    let cookie = session::start(&state, &principal).await?;
    tracing::info!(actor = principal.name, "dashboard sign-in");
    let mut response = (jar.remove(Cookie::build(LOGIN_CSRF_COOKIE).path("/login")).add(cookie), see_other("/tenants"))
        .into_response();
    response
        .extensions_mut()
        .insert(AuditNote { actor: Some((principal.name.clone(), principal.role().to_string())), ..attempt });
    Ok(response)
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
    let statuses = crate::kafka::reconcile::statuses(&state.db).await.map_err(Error::from)?;
    let tenants = tenants::list(&state.db)
        .await?
        .into_iter()
        .map(|t| {
            let status =
                if t.streaming_active { statuses.get(&t.id).cloned().unwrap_or_default() } else { String::new() };
            (TenantView::from(t), status)
        })
        .collect();
    Ok(TenantsPage {
        csrf: session.csrf.clone(),
        nav: Nav::of(session),
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
) -> PageResult<Response> {
    // A tenant account has one tenant: its page is the home.
    if let Some(own) = session.principal.tenant() {
        return Ok(Redirect::to(&format!("/tenants/{own}/streaming")).into_response());
    }
    session.principal.require_operator()?;
    Ok(tenants_page(&state, &session, None, None, q.text()).await?.into_response())
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
    session.principal.require_operator()?;
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
    session.principal.may_access(id)?;
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
        nav: Nav::of(session),
        tenant: tenant.into(),
        status,
        topic: id.topic(),
        waf_topic: id.waf_topic(),
        group_prefix: id.group_prefix(),
        ca_file: format!("{}.pem", state.ca.name),
        notice,
        check,
        requests: partition_requests::list(&state.db, id).await?,
        live_tail: crate::kafka::live::tail_enabled(state, id).await?,
        port: state
            .config
            .brokers
            .first()
            .and_then(|b| b.rsplit_once(':'))
            .map_or_else(|| "9093".into(), |(_, port)| port.to_owned()),
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
    session.principal.require_operator()?;
    let id = TenantId::parse_str(&id)?;
    let n = form
        .partitions
        .trim()
        .parse::<i64>()
        .map_err(|_| Error::invalid("partitions", "partitions must be a number"))?;
    streaming::set_partitions(&state, id, Partitions::parse(n)?).await?;
    Ok(back_to_streaming(id, "partitions"))
}

/// Checks the CSRF token, the tenant id of a form post on a tenant's page, and the right to
/// act on that tenant.
fn tenant_form(session: &Session, form: &CsrfForm, id: &str) -> Result<TenantId, Error> {
    session.check_csrf(&form.csrf)?;
    let id = TenantId::parse_str(id)?;
    session.principal.may_access(id)?;
    Ok(id)
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
    session.principal.require_operator()?;
    let version = tenants::delete(&state.db, id).await?;
    state.allowlist.committed(version);
    Ok(see_other("/tenants?notice=deleted"))
}

pub async fn bundle(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
) -> PageResult<impl IntoResponse> {
    let id = TenantId::parse_str(&id)?;
    session.principal.may_access(id)?;
    Ok(crate::bundle::zip_response(id, crate::bundle::for_tenant(&state, id).await?))
}

#[derive(Debug, Deserialize)]
pub struct PartitionRequestForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    partitions: String,
    #[serde(default)]
    note: String,
}

/// A tenant asks for more partitions; operators see the request on the Streaming tab.
pub async fn request_partitions(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(id): Path<String>,
    Form(form): Form<PartitionRequestForm>,
) -> PageResult<Response> {
    let id = tenant_form(&session, &CsrfForm { csrf: form.csrf.clone() }, &id)?;
    let n = form
        .partitions
        .trim()
        .parse::<i64>()
        .map_err(|_| Error::invalid("partitions", "partitions must be a number"))?;
    partition_requests::file(&state.db, id, Partitions::parse(n)?, &form.note, &session.principal.name).await?;
    Ok(back_to_streaming(id, "requested"))
}
