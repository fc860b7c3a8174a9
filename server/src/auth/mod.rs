//! Who is calling and what they may do. Bearer tokens for the API, sessions for the dashboard,
//! users with argon2 passwords. Tokens are random, shown once, and stored only as SHA-256 hashes
//! (they carry 238 bits of entropy, so a fast hash is enough); passwords are low-entropy and get
//! argon2id.

pub mod limit;
pub mod login_csrf;
pub mod password;
pub mod session;
pub mod tokens;
pub mod users;

use std::fmt;
use std::str::FromStr;

use sqlx::FromRow;

use crate::error::Error;
use crate::firewall::brokers::BrokerId;
pub use crate::secret::constant_time_eq;
use crate::secret::random_password;
use crate::store::Store;
use crate::tenants::TenantId;

pub use session::Session;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The CDN's staff: everything.
    Operator,
    /// A CDN customer's staff or automation: its own tenant's streaming service only.
    Tenant,
    /// A broker's firewall agent: reads allowlists, reports status.
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Tenant => "tenant",
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
            "tenant" => Ok(Role::Tenant),
            "agent" => Ok(Role::Agent),
            other => Err(format!("unknown role {other:?}; use operator, tenant or agent")),
        }
    }
}

/// The authenticated caller: a token (possibly owned by a user) or a signed-in user.
#[derive(Debug, Clone, FromRow)]
pub struct Principal {
    /// The token used, when the caller authenticated with one.
    pub token_id: Option<i64>,
    /// The user behind the token or session, if any.
    pub user_id: Option<i64>,
    /// How the audit log names the caller: the user's email, else the token's name.
    pub name: String,
    #[sqlx(try_from = "String")]
    pub role: RoleColumn,
    /// The one tenant a `tenant` caller is bound to.
    pub tenant_id: Option<i64>,
    /// The one broker an `agent` token reports for (none for agent tokens made before tokens
    /// were bound; sessions never have one).
    #[sqlx(default)]
    pub broker_id: Option<String>,
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

    /// The tenant a `tenant` caller is bound to.
    pub fn tenant(&self) -> Option<TenantId> {
        self.tenant_id.and_then(|id| TenantId::parse(id).ok())
    }

    /// The broker an `agent` caller is bound to.
    pub fn broker(&self) -> Option<BrokerId> {
        self.broker_id.as_deref().and_then(|id| BrokerId::parse(id).ok())
    }

    pub fn is_operator(&self) -> bool {
        self.role() == Role::Operator
    }

    pub fn require_operator(&self) -> Result<(), Error> {
        if self.is_operator() { Ok(()) } else { Err(Error::Forbidden("this requires an operator")) }
    }

    /// Operators may act on every tenant, a tenant caller on its own only, agents on none.
    pub fn may_access(&self, tenant: TenantId) -> Result<(), Error> {
        match self.role() {
            Role::Operator => Ok(()),
            Role::Tenant if self.tenant() == Some(tenant) => Ok(()),
            Role::Tenant => Err(Error::Forbidden("this account may only access its own tenant")),
            Role::Agent => Err(Error::Forbidden("agent tokens may only read allowlists and report status")),
        }
    }
}

pub const TOKEN_PREFIX: &str = "of_";

pub fn hash_token(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random secret with the token prefix: returned to the caller once, stored hashed.
pub fn new_secret() -> String {
    format!("{TOKEN_PREFIX}{}", random_password(40))
}

/// Creates an operator token not owned by any user (automation).
pub async fn create_token(store: &Store, role: Role, name: &str) -> anyhow::Result<String> {
    anyhow::ensure!(role == Role::Operator, "a {role} token needs its tenant or broker: use tokens::create");
    Ok(tokens::create(store, &tokens::Owner { role, tenant: None, broker: None, user_id: None }, name).await?.1)
}

/// Creates an agent token that reports for `broker` only.
pub async fn create_agent_token(store: &Store, broker: &BrokerId, name: &str) -> anyhow::Result<String> {
    let owner = tokens::Owner { role: Role::Agent, tenant: None, broker: Some(broker.clone()), user_id: None };
    Ok(tokens::create(store, &owner, name).await?.1)
}

/// The principal owning `token`, unless unknown, revoked, or its user is disabled.
pub async fn authenticate(store: &Store, token: &str) -> Result<Option<Principal>, Error> {
    crate::store::tokens::principal(store, &hash_token(token)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, tenant: Option<i64>) -> Principal {
        Principal {
            token_id: Some(1),
            user_id: None,
            name: "t".into(),
            role: RoleColumn(role),
            tenant_id: tenant,
            broker_id: None,
        }
    }

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
        assert_eq!("tenant".parse::<Role>().unwrap(), Role::Tenant);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn tenant_callers_reach_only_their_tenant() {
        let t83 = TenantId::parse(83).unwrap();
        let t84 = TenantId::parse(84).unwrap();
        assert!(principal(Role::Operator, None).may_access(t84).is_ok());
        assert!(principal(Role::Tenant, Some(83)).may_access(t83).is_ok());
        assert!(principal(Role::Tenant, Some(83)).may_access(t84).is_err());
        assert!(principal(Role::Agent, None).may_access(t83).is_err());
        assert!(principal(Role::Tenant, Some(83)).require_operator().is_err());
    }
}
