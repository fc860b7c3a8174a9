//! Users: operators and tenant staff who sign in to the dashboard with an email and a password.
//! A user is invited (a one-time link sets the password), can be disabled and enabled again;
//! disabling ends its sessions and stops its tokens at once.

use serde::Serialize;
use sqlx::{FromRow, SqlitePool};
use utoipa::ToSchema;

use super::{Principal, Role, hash_token, password};
use crate::error::{Error, Result};
use crate::pki::random_password;
use crate::tenants::{TenantId, now, rfc3339};

/// How long an invitation link stays valid.
pub const INVITE_DAYS: i64 = 7;

/// An email address as accounts use it: trimmed, 3..=254 characters, one `@` with text on
/// both sides, no spaces or control characters. Compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self> {
        let email = text.trim();
        let ok = (3..=254).contains(&email.len())
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
        if ok {
            Ok(Self(email.to_owned()))
        } else {
            Err(Error::invalid("email", format!("not an email address: {text:?}")))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub tenant_id: Option<i64>,
    pub password_hash: Option<String>,
    pub invite_expires_at: Option<i64>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
}

/// A user as the API and the dashboard show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    #[schema(example = "ops@customer.example")]
    pub email: String,
    #[schema(example = "tenant")]
    pub role: String,
    pub tenant_id: Option<i64>,
    /// `invited` (no password yet), `active` or `disabled`.
    #[schema(example = "active")]
    pub state: String,
    pub created_at: String,
}

impl From<&UserRow> for UserView {
    fn from(u: &UserRow) -> Self {
        let state = if u.disabled_at.is_some() {
            "disabled"
        } else if u.password_hash.is_none() {
            "invited"
        } else {
            "active"
        };
        Self {
            id: u.id,
            email: u.email.clone(),
            role: u.role.clone(),
            tenant_id: u.tenant_id,
            state: state.into(),
            created_at: rfc3339(u.created_at),
        }
    }
}

/// The columns of `UserRow`, as a macro so queries stay `&'static str` (sqlx refuses dynamic SQL).
macro_rules! columns {
    () => {
        "id, email, role, tenant_id, password_hash, invite_expires_at, disabled_at, created_at"
    };
}

pub async fn list(db: &SqlitePool) -> Result<Vec<UserRow>> {
    Ok(sqlx::query_as(concat!("select ", columns!(), " from users order by id")).fetch_all(db).await?)
}

pub async fn get(db: &SqlitePool, id: i64) -> Result<UserRow> {
    sqlx::query_as(concat!("select ", columns!(), " from users where id = ?"))
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user {id}")))
}

async fn get_in(conn: &mut sqlx::SqliteConnection, id: i64) -> Result<UserRow> {
    sqlx::query_as(concat!("select ", columns!(), " from users where id = ?"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user {id}")))
}

/// Creates a user and returns it with the one-time invitation secret (`/invite/<secret>`).
/// With `password`, the account is ready at once and the secret is not needed.
pub async fn create(
    db: &SqlitePool,
    hashing: &password::Hashing,
    email: &Email,
    role: Role,
    tenant: Option<TenantId>,
    password: Option<String>,
) -> Result<(UserRow, String)> {
    match (role, tenant) {
        (Role::Agent, _) => return Err(Error::invalid("role", "users are operators or tenants; agents use tokens")),
        (Role::Tenant, None) => return Err(Error::invalid("tenant_id", "a tenant user needs a tenant id")),
        (Role::Operator, Some(_)) => return Err(Error::invalid("tenant_id", "operators are not bound to a tenant")),
        _ => {}
    }
    let password_hash = match password {
        Some(p) => {
            password::check_policy(&p)?;
            Some(password::hash(hashing, p).await?)
        }
        None => None,
    };
    let secret = random_password(32);
    let mut tx = db.begin().await?;
    let row: UserRow = sqlx::query_as(concat!(
        "insert into users (email, role, tenant_id, password_hash, invite_hash, invite_expires_at, created_at) \
         values (?, ?, ?, ?, ?, ?, ?) returning ",
        columns!(),
        ""
    ))
    .bind(email.as_str())
    .bind(role.as_str())
    .bind(tenant.map(TenantId::get))
    .bind(&password_hash)
    .bind(password_hash.is_none().then(|| hash_token(&secret)))
    .bind(now() + INVITE_DAYS * 86_400)
    .bind(now())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::Conflict(format!("a user with email {} exists", email.as_str()))
        }
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => Error::NotFound("no such tenant".into()),
        _ => Error::from(e),
    })?;
    crate::audit::stage(&mut tx, tenant, &format!("{} {}", role.as_str(), row.email)).await?;
    tx.commit().await?;
    Ok((row, secret))
}

/// The invited user an invitation secret belongs to, if still valid.
pub async fn by_invite(db: &SqlitePool, secret: &str) -> Result<UserRow> {
    sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from users where invite_hash = ? and invite_expires_at > ? and disabled_at is null"
    ))
    .bind(hash_token(secret))
    .bind(now())
    .fetch_optional(db)
    .await?
    .ok_or_else(|| Error::NotFound("this invitation link is unknown, used or expired; ask for a new one".into()))
}

/// Sets the password of an invited user and consumes the invitation.
pub async fn accept_invite(
    db: &SqlitePool,
    hashing: &password::Hashing,
    secret: &str,
    new_password: String,
) -> Result<UserRow> {
    let user = by_invite(db, secret).await?;
    password::check_policy(&new_password)?;
    let hash = password::hash(hashing, new_password).await?;
    let mut tx = db.begin().await?;
    sqlx::query("update users set password_hash = ?, invite_hash = null, invite_expires_at = null where id = ?")
        .bind(hash)
        .bind(user.id)
        .execute(&mut *tx)
        .await?;
    let user = get_in(&mut tx, user.id).await?;
    let tenant = user.tenant_id.map(TenantId::parse).transpose()?;
    crate::audit::name_actor(&user.email, &user.role, tenant);
    crate::audit::stage(&mut tx, tenant, "").await?;
    tx.commit().await?;
    Ok(user)
}

/// The active user with this email and password, if both match. Runs argon2 even for unknown
/// accounts so timing does not reveal which exist.
pub async fn verify_login(
    db: &SqlitePool,
    hashing: &password::Hashing,
    email: &str,
    password: &str,
) -> Result<Option<UserRow>> {
    let user: Option<UserRow> =
        sqlx::query_as(concat!("select ", columns!(), " from users where email = ? and disabled_at is null"))
            .bind(email.trim())
            .fetch_optional(db)
            .await?;
    let phc = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = password::verify(hashing, phc, password.to_owned()).await?;
    Ok(user.filter(|_| ok))
}

/// Disables (ending its sessions; its tokens stop authenticating) or re-enables a user.
pub async fn set_disabled(db: &SqlitePool, id: i64, disabled: bool) -> Result<UserRow> {
    get(db, id).await?;
    let mut tx = db.begin().await?;
    sqlx::query("update users set disabled_at = case when ? then coalesce(disabled_at, ?) else null end where id = ?")
        .bind(disabled)
        .bind(now())
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if disabled {
        sqlx::query("delete from sessions where user_id = ?").bind(id).execute(&mut *tx).await?;
    }
    let user = get_in(&mut tx, id).await?;
    let tenant = user.tenant_id.map(TenantId::parse).transpose()?;
    let detail = format!("{} {}", if disabled { "disabled" } else { "enabled" }, user.email);
    crate::audit::stage(&mut tx, tenant, &detail).await?;
    tx.commit().await?;
    Ok(user)
}

/// The principal a signed-in user acts as.
pub fn principal_of(user: &UserRow) -> Result<Principal> {
    Ok(Principal {
        token_id: None,
        user_id: Some(user.id),
        name: user.email.clone(),
        role: super::RoleColumn(user.role.parse().map_err(|e: String| Error::Internal(anyhow::anyhow!(e)))?),
        tenant_id: user.tenant_id,
        broker_id: None,
    })
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn emails_parse() {
        assert_eq!(Email::parse("  ops@acme.example ").unwrap().as_str(), "ops@acme.example");
        for bad in ["", "a", "@x", "x@", "a b@x", "a@b@c"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}
