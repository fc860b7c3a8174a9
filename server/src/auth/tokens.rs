//! API tokens: created for a role (and a tenant, for tenant tokens; a broker, for agent
//! tokens), listed by prefix only, revoked at once. A token made by a signed-in user belongs to
//! that user.

use serde::Serialize;
use sqlx::{FromRow, SqliteExecutor};
use utoipa::ToSchema;

use super::{Principal, Role, hash_token, new_secret};
use crate::error::{Error, Result};
use crate::firewall::brokers::BrokerId;
use crate::tenants::{TenantId, now, rfc3339};

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
#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub tenant_id: Option<i64>,
    pub broker_id: Option<String>,
    pub user_id: Option<i64>,
    /// The first characters of the token, to tell tokens apart.
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// A token as the API shows it.
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

/// The columns of `TokenRow`, as a macro so queries stay `&'static str` (sqlx refuses dynamic SQL).
macro_rules! columns {
    () => {
        "id, name, role, tenant_id, broker_id, user_id, prefix, created_at, revoked_at"
    };
}

/// Creates a token; returns its row and the secret, which is not stored.
pub async fn create(db: &sqlx::SqlitePool, owner: &Owner, name: &str) -> Result<(TokenRow, String)> {
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
    let mut tx = db.begin().await?;
    let row: TokenRow = sqlx::query_as(concat!(
        "insert into api_tokens (name, role, tenant_id, broker_id, user_id, token_hash, prefix, created_at) \
         values (?, ?, ?, ?, ?, ?, ?, ?) returning ",
        columns!()
    ))
    .bind(name)
    .bind(owner.role.as_str())
    .bind(owner.tenant.map(TenantId::get))
    .bind(owner.broker.as_ref().map(BrokerId::as_str))
    .bind(owner.user_id)
    .bind(hash_token(&secret))
    .bind(&secret[..super::TOKEN_PREFIX.len() + 6])
    .bind(now())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => Error::NotFound("no such tenant".into()),
        _ => Error::from(e),
    })?;
    let detail = format!("{} token {:?} ({})", owner.role.as_str(), row.name, row.prefix);
    crate::audit::stage(&mut tx, owner.tenant, &detail).await?;
    tx.commit().await?;
    Ok((row, secret))
}

/// The tokens `caller` may see: every token for operators, the tenant's tokens for a tenant.
pub async fn visible_to(db: impl SqliteExecutor<'_>, caller: &Principal) -> Result<Vec<TokenRow>> {
    let rows = match caller.role() {
        Role::Operator => {
            sqlx::query_as(concat!("select ", columns!(), " from api_tokens order by id")).fetch_all(db).await?
        }
        Role::Tenant => {
            sqlx::query_as(concat!(
                "select ",
                columns!(),
                " from api_tokens where role = 'tenant' and tenant_id = ? order by id"
            ))
            .bind(caller.tenant_id)
            .fetch_all(db)
            .await?
        }
        Role::Agent => return Err(Error::Forbidden("agent tokens cannot manage tokens")),
    };
    Ok(rows)
}

/// Revokes token `id` if `caller` may see it; revoking twice is a no-op. Effective at once:
/// every request looks the token up.
pub async fn revoke(db: &sqlx::SqlitePool, caller: &Principal, id: i64) -> Result<TokenRow> {
    if !visible_to(db, caller).await?.iter().any(|t| t.id == id) {
        return Err(Error::NotFound(format!("no token {id}")));
    }
    let mut tx = db.begin().await?;
    let row: TokenRow = sqlx::query_as(concat!(
        "update api_tokens set revoked_at = coalesce(revoked_at, ?) where id = ? returning ",
        columns!()
    ))
    .bind(now())
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    // Sessions started with the token end with it.
    sqlx::query("delete from sessions where token_id = ?").bind(id).execute(&mut *tx).await?;
    let tenant = row.tenant_id.map(TenantId::parse).transpose()?;
    crate::audit::stage(&mut tx, tenant, &format!("token {:?} ({})", row.name, row.prefix)).await?;
    tx.commit().await?;
    Ok(row)
}

/// The owner of a token that `caller` asks for: operators choose role, tenant and broker (the
/// role follows from a tenant or broker when not given), tenants get a token for their own
/// tenant, agents none.
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
