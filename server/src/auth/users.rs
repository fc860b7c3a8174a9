//! Users: operators and tenant staff who sign in to the dashboard with an email and a password.
//! A user is invited (a one-time link sets the password), can be disabled and enabled again;
//! disabling ends its sessions and stops its tokens at once.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Principal, Role, hash_token, password};
use crate::clock::{now, rfc3339};
use crate::error::{Error, Result};
use crate::secret::random_password;
use crate::store::Store;
use crate::store::users::{self as stored, NewUser};
use crate::tenants::TenantId;

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

pub use crate::store::users::UserRow;

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

pub async fn list(store: &Store) -> Result<Vec<UserRow>> {
    stored::list(store).await
}

pub async fn get(store: &Store, id: i64) -> Result<UserRow> {
    stored::find(store, id).await?.ok_or_else(|| no_user(id))
}

fn no_user(id: i64) -> Error {
    Error::NotFound(format!("no user {id}"))
}

/// Creates a user with a password, or invited: then the returned secret is the invitation's.
pub async fn create(
    store: &Store,
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
    let user = NewUser {
        email: email.as_str(),
        role: role.as_str(),
        tenant_id: tenant.map(TenantId::get),
        invite_hash: password_hash.is_none().then(|| hash_token(&secret)),
        password_hash,
        invite_expires_at: now() + INVITE_DAYS * 86_400,
    };
    Ok((stored::create(store, &user).await?, secret))
}

pub async fn by_invite(store: &Store, secret: &str) -> Result<UserRow> {
    stored::by_invite(store, &hash_token(secret))
        .await?
        .ok_or_else(|| Error::NotFound("this invitation link is unknown, used or expired; ask for a new one".into()))
}

pub async fn accept_invite(
    store: &Store,
    hashing: &password::Hashing,
    secret: &str,
    new_password: String,
) -> Result<UserRow> {
    let user = by_invite(store, secret).await?;
    password::check_policy(&new_password)?;
    let hash = password::hash(hashing, new_password).await?;
    stored::accept_invite(store, user.id, &hash).await
}

/// The enabled user with this email and password. The password is checked (against a dummy hash
/// when there is no such user) either way, so timing does not tell which accounts exist.
pub async fn verify_login(
    store: &Store,
    hashing: &password::Hashing,
    email: &str,
    password: &str,
) -> Result<Option<UserRow>> {
    let user = stored::enabled_by_email(store, email.trim()).await?;
    let phc = user.as_ref().and_then(|u| u.password_hash.clone());
    let ok = password::verify(hashing, phc, password.to_owned()).await?;
    Ok(user.filter(|_| ok))
}

pub async fn set_disabled(store: &Store, id: i64, disabled: bool) -> Result<UserRow> {
    stored::set_disabled(store, id, disabled).await?.ok_or_else(|| no_user(id))
}

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
