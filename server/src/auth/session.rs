//! Dashboard sessions: a random id in an HttpOnly, SameSite=Strict cookie (stored hashed), and a
//! per-session CSRF token that every form must echo back.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use sqlx::FromRow;

use super::{Principal, Role, constant_time_eq, hash_token};
use crate::app::AppState;
use crate::error::Error;
use crate::pki::random_password;
use crate::tenants::now;

pub const SESSION_COOKIE: &str = "outflow_session";

#[derive(Debug, Clone, FromRow)]
pub struct Session {
    pub csrf: String,
    #[sqlx(flatten)]
    pub principal: Principal,
}

impl Session {
    /// Refuses a form whose CSRF token does not match the session's.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), Error> {
        if constant_time_eq(self.csrf.as_bytes(), submitted.as_bytes()) {
            Ok(())
        } else {
            Err(Error::Forbidden("the form's CSRF token is missing or wrong; reload the page and try again"))
        }
    }
}

/// Starts a session for the token's owner; returns the cookie to set.
pub async fn start(state: &AppState, token_id: i64) -> Result<Cookie<'static>, Error> {
    let id = random_password(43);
    let expires_at = now() + state.config.session_minutes * 60;
    sqlx::query("insert into sessions (id_hash, token_id, csrf, created_at, expires_at) values (?, ?, ?, ?, ?)")
        .bind(hash_token(&id))
        .bind(token_id)
        .bind(random_password(32))
        .bind(now())
        .bind(expires_at)
        .execute(&state.db)
        .await?;
    // Expired sessions are swept here, the one place sessions are created.
    sqlx::query("delete from sessions where expires_at <= ?").bind(now()).execute(&state.db).await?;
    Ok(session_cookie(state, id, time::Duration::minutes(state.config.session_minutes)))
}

pub async fn end(state: &AppState, jar: &CookieJar) -> Result<Cookie<'static>, Error> {
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        sqlx::query("delete from sessions where id_hash = ?")
            .bind(hash_token(cookie.value()))
            .execute(&state.db)
            .await?;
    }
    Ok(session_cookie(state, String::new(), time::Duration::ZERO))
}

fn session_cookie(state: &AppState, value: String, max_age: time::Duration) -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.config.cookie_secure)
        .max_age(max_age)
        .build()
}

async fn lookup(state: &AppState, id: &str) -> Result<Option<Session>, Error> {
    Ok(sqlx::query_as(
        "select s.csrf, t.id as token_id, t.name, t.role from sessions s \
         join api_tokens t on t.id = s.token_id \
         where s.id_hash = ? and s.expires_at > ? and t.revoked_at is null",
    )
    .bind(hash_token(id))
    .bind(now())
    .fetch_optional(&state.db)
    .await?)
}

/// Extractor for dashboard pages: a live operator session, or a redirect to the sign-in page.
#[derive(Debug, Clone)]
pub struct WebSession(pub Session);

impl FromRequestParts<AppState> for WebSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let Some(cookie) = jar.get(SESSION_COOKIE) else {
            return Err(Redirect::to("/login").into_response());
        };
        match lookup(state, cookie.value()).await {
            Ok(Some(session)) if session.principal.role() == Role::Operator => Ok(WebSession(session)),
            Ok(_) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}
