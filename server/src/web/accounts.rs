//! Account pages: users (operators invite and disable), API tokens (create, list by prefix,
//! revoke), the audit log, and the invitation page where a new user sets a password.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Nav, PageResult, see_other};
use crate::audit::{self, EntryView, Filter};
use crate::auth::tokens::{self, TokenView};
use crate::auth::users::{self, UserView};
use crate::auth::{Role, Session};
use crate::error::Error;
use crate::http::WebSession;
use crate::state::AppState;

#[derive(Template, WebTemplate)]
#[template(path = "pages/users.html")]
pub struct UsersPage {
    csrf: String,
    nav: Nav,
    users: Vec<UserView>,
    invite_url: Option<String>,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/tokens.html")]
pub struct TokensPage {
    csrf: String,
    nav: Nav,
    tokens: Vec<TokenView>,
    created: Option<String>,
    error: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/audit.html")]
pub struct AuditPage {
    nav: Nav,
    entries: Vec<EntryView>,
    tenant: String,
    actor: String,
    action: String,
    next: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/invite.html")]
pub struct InvitePage {
    email: String,
    secret: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// A form's optional tenant id field: empty means none.
fn optional_tenant(text: &str) -> Result<Option<i64>, Error> {
    match text.trim() {
        "" => Ok(None),
        t => t.parse().map(Some).map_err(|_| Error::invalid("tenant_id", "tenant id must be a number")),
    }
}

async fn users_page(
    state: &AppState,
    session: &Session,
    invite_url: Option<String>,
    error: Option<String>,
) -> PageResult<UsersPage> {
    session.principal.require_operator()?;
    let users = users::list(&state.store).await?.iter().map(UserView::from).collect();
    Ok(UsersPage { csrf: session.csrf.clone(), nav: Nav::of(session), users, invite_url, error })
}

pub async fn users(State(state): State<AppState>, WebSession(session): WebSession) -> PageResult<UsersPage> {
    users_page(&state, &session, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    tenant_id: String,
}

/// Invites a user and shows the one-time link on the page (it is not stored, so it cannot be
/// shown again).
pub async fn invite_user(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Form(form): Form<InviteForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    session.principal.require_operator()?;
    let tenant = optional_tenant(&form.tenant_id)?;
    match crate::api::users::invite(&state, &form.email, &form.role, tenant).await {
        Ok((_, url)) => Ok((StatusCode::CREATED, users_page(&state, &session, Some(url), None).await?).into_response()),
        Err(e @ (Error::Invalid { .. } | Error::Conflict(_) | Error::NotFound(_))) => {
            let status = crate::http::status(&e);
            Ok((status, users_page(&state, &session, None, Some(e.public_message())).await?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn set_user_disabled(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path((user, action)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    session.principal.require_operator()?;
    let id = user.parse::<i64>().map_err(|_| Error::invalid("user", "user id must be a number"))?;
    let disabled = match action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return Err(Error::NotFound("no such action".into()).into()),
    };
    users::set_disabled(&state.store, id, disabled).await?;
    Ok(see_other("/users"))
}

async fn tokens_page(
    state: &AppState,
    session: &Session,
    created: Option<String>,
    error: Option<String>,
) -> PageResult<TokensPage> {
    let tokens = tokens::visible_to(&state.store, &session.principal).await?.into_iter().map(TokenView::from).collect();
    Ok(TokensPage { csrf: session.csrf.clone(), nav: Nav::of(session), tokens, created, error })
}

pub async fn tokens(State(state): State<AppState>, WebSession(session): WebSession) -> PageResult<TokensPage> {
    tokens_page(&state, &session, None, None).await
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    broker_id: String,
}

/// Creates a token and shows it once on the page.
pub async fn create_token(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Form(form): Form<TokenForm>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let created = async {
        let role = match form.role.trim() {
            "" => None,
            r => Some(r.parse::<Role>().map_err(|e| Error::invalid("role", e))?),
        };
        let tenant = optional_tenant(&form.tenant_id)?;
        let broker = Some(form.broker_id.trim()).filter(|b| !b.is_empty());
        let owner = tokens::owner_for(&session.principal, role, tenant, broker)?;
        tokens::create(&state.store, &owner, &form.name).await
    }
    .await;
    match created {
        Ok((_, secret)) => {
            Ok((StatusCode::CREATED, tokens_page(&state, &session, Some(secret), None).await?).into_response())
        }
        Err(e @ (Error::Invalid { .. } | Error::NotFound(_))) => {
            let status = crate::http::status(&e);
            Ok((status, tokens_page(&state, &session, None, Some(e.public_message())).await?).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Path(token): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> PageResult<Response> {
    session.check_csrf(&form.csrf)?;
    let id = token.parse::<i64>().map_err(|_| Error::invalid("token", "token id must be a number"))?;
    tokens::revoke(&state.store, &session.principal, id).await?;
    Ok(see_other("/tokens"))
}

/// The audit log with the same filters as the API; tenants see their own entries only.
pub async fn audit_log(
    State(state): State<AppState>,
    WebSession(session): WebSession,
    Query(filter): Query<Filter>,
) -> PageResult<AuditPage> {
    // Empty form fields arrive as empty strings: treat them as absent.
    let filter = Filter {
        actor: filter.actor.filter(|a| !a.is_empty()),
        action: filter.action.filter(|a| !a.is_empty()),
        since: filter.since.filter(|a| !a.is_empty()),
        until: filter.until.filter(|a| !a.is_empty()),
        ..filter
    };
    let page = audit::list(&state.store, &session.principal, &filter).await?;
    let next = page.next_before.map(|before| {
        let mut query = format!("before={before}");
        for (key, value) in [("actor", &filter.actor), ("action", &filter.action)] {
            if let Some(v) = value {
                query.push_str(&format!("&{key}={}", url_escape(v)));
            }
        }
        if let Some(t) = filter.tenant {
            query.push_str(&format!("&tenant={t}"));
        }
        query
    });
    Ok(AuditPage {
        nav: Nav::of(&session),
        entries: page.entries,
        tenant: filter.tenant.map(|t| t.to_string()).unwrap_or_default(),
        actor: filter.actor.unwrap_or_default(),
        action: filter.action.unwrap_or_default(),
        next,
    })
}

/// Percent-encodes a query value (everything but unreserved characters).
fn url_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn invite_form(State(state): State<AppState>, Path(secret): Path<String>) -> PageResult<InvitePage> {
    let user = users::by_invite(&state.store, &secret).await?;
    Ok(InvitePage { email: user.email, secret, error: None })
}

#[derive(Debug, Deserialize)]
pub struct AcceptForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

/// Sets the invited user's password and signs it in. The secret in the URL is the proof; a
/// cross-site post cannot know it, so no separate CSRF token is needed.
pub async fn accept_invite(
    State(state): State<AppState>,
    Path(secret): Path<String>,
    jar: axum_extra::extract::cookie::CookieJar,
    Form(form): Form<AcceptForm>,
) -> PageResult<Response> {
    let user = users::by_invite(&state.store, &secret).await?;
    if form.password != form.confirm {
        let page = InvitePage { email: user.email, secret, error: Some("The two passwords differ.".into()) };
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response());
    }
    match users::accept_invite(&state.store, &state.hashing, &secret, form.password).await {
        Ok(user) => {
            let principal = users::principal_of(&user)?;
            let cookie = super::signin::start_session(&state, &principal).await?;
            let mut response = (jar.add(cookie), see_other("/tenants")).into_response();
            response.extensions_mut().insert(crate::http::AuditNote {
                actor: Some((principal.name.clone(), principal.role().to_string())),
                action: Some("accept-invitation"),
                detail: String::new(),
            });
            Ok(response)
        }
        Err(e @ Error::Invalid { .. }) => {
            let page = InvitePage { email: user.email, secret, error: Some(e.public_message()) };
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template, WebTemplate)]
#[template(path = "pages/ca.html")]
pub struct CaPage {
    nav: Nav,
    name: String,
    subject: String,
    algorithm: String,
    not_after: String,
    days_left: i64,
    imported: bool,
}

/// The CA: subject, key, validity (operators).
pub async fn ca(State(state): State<AppState>, WebSession(session): WebSession) -> PageResult<CaPage> {
    session.principal.require_operator()?;
    let imported = crate::authority::imported(&state.store).await?;
    let subject = x509_parser::parse_x509_certificate(&state.ca.cert_der)
        .map(|(_, cert)| cert.subject().to_string())
        .unwrap_or_default();
    let not_after = state.ca.not_after.unix_timestamp();
    Ok(CaPage {
        nav: Nav::of(&session),
        name: state.ca.name.clone(),
        subject,
        algorithm: state.ca.algorithm.to_string(),
        not_after: crate::clock::rfc3339(not_after),
        days_left: (not_after - crate::clock::now()).div_euclid(86_400),
        imported,
    })
}

/// The CA certificate as a PEM file, for anyone signed in (tenants' consumers need it too).
pub async fn ca_pem(State(state): State<AppState>, WebSession(_): WebSession) -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, "application/x-pem-file".to_owned()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}.pem\"", state.ca.name)),
        ],
        state.ca.cert_pem.clone(),
    )
        .into_response()
}
