//! Dashboard sessions: a random id in an HttpOnly, SameSite=Strict cookie (stored hashed), and a
//! per-session CSRF token that every form must echo back. A session belongs to a user (password
//! sign-in) or to an API token (token sign-in); either way it ends when the user is disabled or
//! the token revoked.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use sqlx::FromRow;

use super::{AuditActor, Principal, Role, constant_time_eq, hash_token};
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

    pub fn is_operator(&self) -> bool {
        self.principal.role() == Role::Operator
    }
}

/// Starts a session for a user or a token; returns the cookie to set.
pub async fn start(state: &AppState, principal: &Principal) -> Result<Cookie<'static>, Error> {
    let id = random_password(43);
    let expires_at = now() + state.config.session_minutes * 60;
    // A session started with a token follows the token; one started with a password, the user.
    let (user_id, token_id) = match principal.token_id {
        Some(token) => (None, Some(token)),
        None => (principal.user_id, None),
    };
    let mut tx = state.db.begin().await?;
    sqlx::query(
        "insert into sessions (id_hash, user_id, token_id, csrf, created_at, expires_at) values (?, ?, ?, ?, ?, ?)",
    )
    .bind(hash_token(&id))
    .bind(user_id)
    .bind(token_id)
    .bind(random_password(32))
    .bind(now())
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    // Expired sessions are swept here, the one place sessions are created.
    sqlx::query("delete from sessions where expires_at <= ?").bind(now()).execute(&mut *tx).await?;
    // The sign-in's entry names the account that signed in, and its tenant.
    let tenant = principal.tenant_id.map(crate::tenants::TenantId::parse).transpose()?;
    crate::audit::name_actor(&principal.name, &principal.role().to_string(), tenant);
    crate::audit::stage(&mut tx, tenant, "").await?;
    tx.commit().await?;
    Ok(session_cookie(state, id, time::Duration::minutes(state.config.session_minutes)))
}

pub async fn end(state: &AppState, jar: &CookieJar) -> Result<Cookie<'static>, Error> {
    let mut tx = state.db.begin().await?;
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        sqlx::query("delete from sessions where id_hash = ?")
            .bind(hash_token(cookie.value()))
            .execute(&mut *tx)
            .await?;
    }
    crate::audit::stage(&mut tx, None, "").await?;
    tx.commit().await?;
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

/// The live session with this cookie value: not expired, its user enabled, its token unrevoked.
pub async fn lookup(state: &AppState, id: &str) -> Result<Option<Session>, Error> {
    Ok(sqlx::query_as(
        "select s.csrf, s.token_id, coalesce(s.user_id, t.user_id) as user_id, \
                coalesce(u.email, t.name) as name, \
                case when s.token_id is null then u.role else t.role end as role, \
                case when s.token_id is null then u.tenant_id else t.tenant_id end as tenant_id \
         from sessions s \
         left join api_tokens t on t.id = s.token_id \
         left join users u on u.id = coalesce(s.user_id, t.user_id) \
         where s.id_hash = ? and s.expires_at > ? \
           and (s.token_id is null or t.revoked_at is null) \
           and u.disabled_at is null",
    )
    .bind(hash_token(id))
    .bind(now())
    .fetch_optional(&state.db)
    .await?)
}

/// Extractor for dashboard pages: a live operator or tenant session, or a redirect to sign-in.
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
            Ok(Some(session)) if session.principal.role() != Role::Agent => {
                AuditActor::set(parts, &session.principal);
                Ok(WebSession(session))
            }
            Ok(_) => Err(Redirect::to("/login").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}
