//! Bearer tokens for the API and sessions for the dashboard. Tokens are random, shown once, and
//! stored only as SHA-256 hashes (they carry 238 bits of entropy, so a fast hash is enough).

pub mod session;

use std::fmt;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sqlx::{FromRow, SqliteExecutor};

use crate::app::AppState;
use crate::error::Error;
use crate::pki::random_password;
use crate::tenants::now;

pub use session::{Session, WebSession};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The CDN's staff: everything.
    Operator,
    /// A broker's firewall agent: reads allowlists, reports status.
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Agent => "agent",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "operator" => Ok(Role::Operator),
            "agent" => Ok(Role::Agent),
            other => Err(format!("unknown role {other:?}; use operator or agent")),
        }
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, FromRow)]
pub struct Principal {
    pub token_id: i64,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: RoleColumn,
}

/// `Role` as stored in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleColumn(pub Role);

impl TryFrom<String> for RoleColumn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map(RoleColumn)
    }
}

impl Principal {
    pub fn role(&self) -> Role {
        self.role.0
    }
}

pub const TOKEN_PREFIX: &str = "of_";

pub fn hash_token(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates a token and returns it; only its hash and a short display prefix are stored.
pub async fn create_token(db: impl SqliteExecutor<'_>, role: Role, name: &str) -> anyhow::Result<String> {
    let token = format!("{TOKEN_PREFIX}{}", random_password(40));
    sqlx::query("insert into api_tokens (name, role, token_hash, prefix, created_at) values (?, ?, ?, ?, ?)")
        .bind(name)
        .bind(role.as_str())
        .bind(hash_token(&token))
        .bind(&token[..TOKEN_PREFIX.len() + 6])
        .bind(now())
        .execute(db)
        .await?;
    Ok(token)
}

/// The principal owning `token`, unless unknown or revoked.
pub async fn authenticate(db: impl SqliteExecutor<'_>, token: &str) -> Result<Option<Principal>, Error> {
    Ok(sqlx::query_as("select id as token_id, name, role from api_tokens where token_hash = ? and revoked_at is null")
        .bind(hash_token(token))
        .fetch_optional(db)
        .await?)
}

/// Extractor for API routes reserved to operators: 401 without a valid bearer token, 403 for
/// a token of another role.
#[derive(Debug, Clone)]
pub struct Operator(pub Principal);

impl FromRequestParts<AppState> for Operator {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = bearer(parts, state).await?;
        if principal.role() != Role::Operator {
            return Err(Error::Forbidden("this route requires an operator token"));
        }
        Ok(Operator(principal))
    }
}

/// Extractor for the firewall agents' routes: 401 without a valid bearer token, 403 for a token
/// of another role (operators included: an agent token can do nothing else, and these routes
/// are for agents only).
#[derive(Debug, Clone)]
pub struct Agent(pub Principal);

impl FromRequestParts<AppState> for Agent {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let principal = bearer(parts, state).await?;
        if principal.role() != Role::Agent {
            return Err(Error::Forbidden("this route requires an agent token"));
        }
        Ok(Agent(principal))
    }
}

/// The principal of the request's `Authorization: Bearer` token.
async fn bearer(parts: &Parts, state: &AppState) -> Result<Principal, Error> {
    let token = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or(Error::Unauthorized)?;
    authenticate(&state.db, token).await?.ok_or(Error::Unauthorized)
}

/// Compares secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_stable_hex() {
        let h = hash_token("of_abc");
        assert_eq!(h.len(), 64);
        assert_eq!(h, hash_token("of_abc"));
        assert_ne!(h, hash_token("of_abd"));
    }

    #[test]
    fn roles_parse() {
        assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
