//! Signing in (email and password, or an API token) and out.

use askama::Template;
use askama_web::WebTemplate;
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::{CsrfForm, PageResult, see_other};
use crate::auth::{self, Role, constant_time_eq, session, users};
use crate::clock::now;
use crate::error::Error;
use crate::http::{AuditNote, ClientAddr, WebSession};
use crate::state::AppState;

const LOGIN_CSRF_COOKIE: &str = "outflow_login_csrf";

#[derive(Template, WebTemplate)]
#[template(path = "pages/login.html")]
pub struct LoginPage {
    csrf: String,
    error: Option<String>,
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
    let csrf = state.login_csrf.issue(now());
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
        && state.login_csrf.verify(&form.csrf, now());
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
    let reservation = match state.login_limiter.reserve(&state.store, account.as_deref(), &address).await? {
        Ok(reservation) => reservation,
        Err(throttled) => return Ok(refuse(throttled.message(), StatusCode::TOO_MANY_REQUESTS, "rate limited")),
    };
    let checked = if with_token {
        auth::authenticate(&state.store, form.token.trim()).await.map(|p| p.filter(|p| p.role() != Role::Agent))
    } else {
        match users::verify_login(&state.store, &state.hashing, &form.email, &form.password).await {
            Ok(Some(user)) => users::principal_of(&user).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        }
    };
    let principal = match checked {
        Ok(principal) => principal,
        // Nothing was guessed (too many passwords being checked, or a server error).
        Err(e) => {
            state.login_limiter.release(&state.store, reservation).await?;
            if crate::http::status(&e) == StatusCode::SERVICE_UNAVAILABLE {
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
    state.login_limiter.succeeded(&state.store, reservation, account.as_deref()).await?;
    let cookie = super::signin::start_session(&state, &principal).await?;
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
    session::end(&state.store, jar.get(session::SESSION_COOKIE).map(|c| c.value())).await?;
    let cookie = session_cookie(&state, String::new(), time::Duration::ZERO);
    Ok((jar.add(cookie), see_other("/login")).into_response())
}

/// Starts a dashboard session for `principal`; returns its cookie.
pub(super) async fn start_session(state: &AppState, principal: &auth::Principal) -> Result<Cookie<'static>, Error> {
    let id = session::start(&state.store, principal, state.config.session_minutes).await?;
    Ok(session_cookie(state, id, time::Duration::minutes(state.config.session_minutes)))
}

fn session_cookie(state: &AppState, value: String, max_age: time::Duration) -> Cookie<'static> {
    Cookie::build((session::SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.cookie_secure)
        .max_age(max_age)
        .build()
}
