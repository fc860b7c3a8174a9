//! API tokens: created for a role (and a tenant, for tenant tokens; a broker, for agent
//! tokens), listed by prefix only, revoked at once. A token made by a signed-in user belongs to
//! that user.

use serde::Serialize;
use utoipa::ToSchema;

use super::{Principal, Role, hash_token, new_secret};
use crate::clock::rfc3339;
use crate::error::{Error, Result};
use crate::firewall::brokers::BrokerId;
use crate::store::Store;
use crate::store::tokens::{self as stored, NewToken};
use crate::tenants::TenantId;

/// What a new token may do and whom it belongs to.
#[derive(Debug, Clone)]
pub struct Owner {
    pub role: Role,
    /// Required for `tenant` tokens, absent for the others.
    pub tenant: Option<TenantId>,
    /// Required for `agent` tokens (the one broker they report for), absent for the others.
    pub broker: Option<BrokerId>,
    pub user_id: Option<i64>,
}

/// A token as listed: never the secret, only the prefix that identifies it.
pub use crate::store::tokens::TokenRow;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenView {
    #[schema(example = 7)]
    pub id: i64,
    #[schema(example = "ci-deploy")]
    pub name: String,
    #[schema(example = "tenant")]
    pub role: String,
    pub tenant_id: Option<i64>,
    /// The broker an agent token reports for.
    #[schema(example = "kafka-1")]
    pub broker_id: Option<String>,
    #[schema(example = "of_Ab3dE9")]
    pub prefix: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

impl From<TokenRow> for TokenView {
    fn from(t: TokenRow) -> Self {
        Self {
            id: t.id,
            name: t.name,
            role: t.role,
            tenant_id: t.tenant_id,
            broker_id: t.broker_id,
            prefix: t.prefix,
            created_at: rfc3339(t.created_at),
            revoked_at: t.revoked_at.map(rfc3339),
        }
    }
}

/// A token's name: 1..=100 characters, no control characters.
fn parse_name(name: &str) -> Result<&str> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid("name", "token name must be 1 to 100 printable characters"));
    }
    Ok(name)
}

pub async fn create(store: &Store, owner: &Owner, name: &str) -> Result<(TokenRow, String)> {
    let name = parse_name(name)?;
    match (owner.role, owner.tenant) {
        (Role::Tenant, None) => return Err(Error::invalid("tenant_id", "a tenant token needs a tenant id")),
        (Role::Operator | Role::Agent, Some(_)) => {
            return Err(Error::invalid("tenant_id", "only tenant tokens are bound to a tenant"));
        }
        _ => {}
    }
    match (owner.role, &owner.broker) {
        (Role::Agent, None) => {
            return Err(Error::invalid("broker_id", "an agent token needs the id of its broker, e.g. kafka-1"));
        }
        (Role::Operator | Role::Tenant, Some(_)) => {
            return Err(Error::invalid("broker_id", "only agent tokens are bound to a broker"));
        }
        _ => {}
    }
    let secret = new_secret();
    let token = NewToken {
        name,
        role: owner.role.as_str(),
        tenant_id: owner.tenant.map(TenantId::get),
        broker_id: owner.broker.as_ref().map(BrokerId::as_str),
        user_id: owner.user_id,
        token_hash: hash_token(&secret),
        prefix: &secret[..super::TOKEN_PREFIX.len() + 6],
    };
    Ok((stored::create(store, &token).await?, secret))
}

pub async fn visible_to(store: &Store, caller: &Principal) -> Result<Vec<TokenRow>> {
    match caller.role() {
        Role::Operator => stored::list(store).await,
        Role::Tenant => stored::list_of_tenant(store, caller.tenant_id).await,
        Role::Agent => Err(Error::Forbidden("agent tokens cannot manage tokens")),
    }
}

pub async fn revoke(store: &Store, caller: &Principal, id: i64) -> Result<TokenRow> {
    if !visible_to(store, caller).await?.iter().any(|t| t.id == id) {
        return Err(Error::NotFound(format!("no token {id}")));
    }
    stored::revoke(store, id).await?.ok_or_else(|| Error::NotFound(format!("no token {id}")))
}

pub fn owner_for(caller: &Principal, role: Option<Role>, tenant: Option<i64>, broker: Option<&str>) -> Result<Owner> {
    let tenant = tenant
        .map(TenantId::parse)
        .transpose()
        .map_err(|_| Error::invalid("tenant_id", "tenant id must be between 1 and 999999"))?;
    let broker = broker.map(BrokerId::parse).transpose()?;
    match caller.role() {
        Role::Operator => {
            let role = role.unwrap_or(match (&tenant, &broker) {
                (Some(_), _) => Role::Tenant,
                (None, Some(_)) => Role::Agent,
                (None, None) => Role::Operator,
            });
            Ok(Owner { role, tenant, broker, user_id: caller.user_id })
        }
        Role::Tenant => {
            if role.is_some_and(|r| r != Role::Tenant) || broker.is_some() {
                return Err(Error::Forbidden("a tenant account can only create tenant tokens"));
            }
            let own = caller.tenant();
            if tenant.is_some() && tenant != own {
                return Err(Error::Forbidden("this account may only access its own tenant"));
            }
            Ok(Owner { role: Role::Tenant, tenant: own, broker: None, user_id: caller.user_id })
        }
        Role::Agent => Err(Error::Forbidden("agent tokens cannot manage tokens")),
    }
}
