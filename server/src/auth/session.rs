//! Dashboard sessions: a random id in an HttpOnly, SameSite=Strict cookie (stored hashed), and a
//! per-session CSRF token that every form must echo back. A session belongs to a user (password
//! sign-in) or to an API token (token sign-in); either way it ends when the user is disabled or
//! the token revoked.

use super::{Principal, Role, constant_time_eq, hash_token};
use crate::clock::now;
use crate::error::Error;
use crate::secret::random_password;
use crate::store::Store;
use crate::store::tokens::{self as stored, NewSession};

pub const SESSION_COOKIE: &str = "outflow_session";

#[derive(Debug, Clone)]
pub struct Session {
    pub csrf: String,
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

/// Starts a session of `minutes` for a user or a token; returns the session id for the cookie.
pub async fn start(store: &Store, principal: &Principal, minutes: i64) -> Result<String, Error> {
    let id = random_password(43);
    // A session started with a token follows the token; one started with a password, the user.
    let (user_id, token_id) = match principal.token_id {
        Some(token) => (None, Some(token)),
        None => (principal.user_id, None),
    };
    let session = NewSession {
        id_hash: hash_token(&id),
        user_id,
        token_id,
        csrf: random_password(32),
        expires_at: now() + minutes * 60,
    };
    stored::start_session(store, &session, principal).await?;
    Ok(id)
}

/// Ends the session with cookie value `id`, if any (the sign-out is audited either way).
pub async fn end(store: &Store, id: Option<&str>) -> Result<(), Error> {
    stored::end_session(store, id.map(hash_token).as_deref()).await
}

/// The live session with this cookie value: not expired, its user enabled, its token unrevoked.
pub async fn lookup(store: &Store, id: &str) -> Result<Option<Session>, Error> {
    let row = stored::session(store, &hash_token(id)).await?;
    Ok(row.map(|r| Session { csrf: r.csrf, principal: r.principal }))
}
