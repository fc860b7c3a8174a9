//! API tokens (stored as hashes) and dashboard sessions, and finding the principal behind either.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use super::{Store, audit, foreign_key_violation};
use crate::auth::Principal;
use crate::clock::now;
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, ToSchema, FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub tenant_id: Option<i64>,
    pub broker_id: Option<String>,
    pub user_id: Option<i64>,
    pub prefix: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

macro_rules! columns {
    () => {
        "id, name, role, tenant_id, broker_id, user_id, prefix, created_at, revoked_at"
    };
}

/// A token to store.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub tenant_id: Option<i64>,
    pub broker_id: Option<&'a str>,
    pub user_id: Option<i64>,
    pub token_hash: String,
    pub prefix: &'a str,
}

/// Stores a token; `NotFound` for an unknown tenant.
pub async fn create(store: &Store, token: &NewToken<'_>) -> Result<TokenRow> {
    let mut tx = store.pool.begin().await?;
    let row: TokenRow = sqlx::query_as(concat!(
        "insert into api_tokens (name, role, tenant_id, broker_id, user_id, token_hash, prefix, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning ",
        columns!()
    ))
    .bind(token.name)
    .bind(token.role)
    .bind(token.tenant_id)
    .bind(token.broker_id)
    .bind(token.user_id)
    .bind(&token.token_hash)
    .bind(token.prefix)
    .bind(now())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| if foreign_key_violation(&e) { Error::NotFound("no such tenant".into()) } else { Error::from(e) })?;
    let detail = format!("{} token {:?} ({})", token.role, row.name, row.prefix);
    audit::stage(&mut tx, token.tenant_id, &detail).await?;
    tx.commit().await?;
    Ok(row)
}

/// Every token.
pub async fn list(store: &Store) -> Result<Vec<TokenRow>> {
    Ok(sqlx::query_as(concat!("select ", columns!(), " from api_tokens order by id")).fetch_all(&store.pool).await?)
}

/// The tenant tokens of one tenant.
pub async fn list_of_tenant(store: &Store, tenant: Option<i64>) -> Result<Vec<TokenRow>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from api_tokens where role = 'tenant' and tenant_id = $1 order by id"
    ))
    .bind(tenant)
    .fetch_all(&store.pool)
    .await?)
}

/// Revokes a token and ends the sessions started with it.
pub async fn revoke(store: &Store, id: i64) -> Result<Option<TokenRow>> {
    let mut tx = store.pool.begin().await?;
    let row: Option<TokenRow> = sqlx::query_as(concat!(
        "update api_tokens set revoked_at = coalesce(revoked_at, $1) where id = $2 returning ",
        columns!()
    ))
    .bind(now())
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return Ok(None) };
    sqlx::query("delete from sessions where token_id = $1").bind(id).execute(&mut *tx).await?;
    audit::stage(&mut tx, row.tenant_id, &format!("token {:?} ({})", row.name, row.prefix)).await?;
    tx.commit().await?;
    Ok(Some(row))
}

/// The principal owning the token with this hash, unless revoked or its user is disabled.
pub async fn principal(store: &Store, token_hash: &str) -> Result<Option<Principal>> {
    Ok(sqlx::query_as(
        "select t.id as token_id, t.user_id, coalesce(u.email, t.name) as name, t.role, t.tenant_id, t.broker_id \
         from api_tokens t left join users u on u.id = t.user_id \
         where t.token_hash = $1 and t.revoked_at is null and u.disabled_at is null",
    )
    .bind(token_hash)
    .fetch_optional(&store.pool)
    .await?)
}

/// A session to start: owned by a user (password sign-in) or a token (token sign-in).
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id_hash: String,
    pub user_id: Option<i64>,
    pub token_id: Option<i64>,
    pub csrf: String,
    pub expires_at: i64,
}

/// Starts a session (sweeping expired ones). The sign-in's entry names `actor`.
pub async fn start_session(store: &Store, session: &NewSession, actor: &Principal) -> Result<()> {
    let mut tx = store.pool.begin().await?;
    sqlx::query(
        "insert into sessions (id_hash, user_id, token_id, csrf, created_at, expires_at) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&session.id_hash)
    .bind(session.user_id)
    .bind(session.token_id)
    .bind(&session.csrf)
    .bind(now())
    .bind(session.expires_at)
    .execute(&mut *tx)
    .await?;
    // Expired sessions are swept here, the one place sessions are created.
    sqlx::query("delete from sessions where expires_at <= $1").bind(now()).execute(&mut *tx).await?;
    audit::name_actor(&actor.name, actor.role().as_str(), actor.tenant_id);
    audit::stage(&mut tx, actor.tenant_id, "").await?;
    tx.commit().await?;
    Ok(())
}

/// Ends the session with this id hash, if any.
pub async fn end_session(store: &Store, id_hash: Option<&str>) -> Result<()> {
    let mut tx = store.pool.begin().await?;
    if let Some(id_hash) = id_hash {
        sqlx::query("delete from sessions where id_hash = $1").bind(id_hash).execute(&mut *tx).await?;
    }
    audit::stage(&mut tx, None, "").await?;
    tx.commit().await?;
    Ok(())
}

/// A live session: its CSRF token and principal.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub csrf: String,
    #[sqlx(flatten)]
    pub principal: Principal,
}

/// The live session with this id hash: not expired, its user enabled, its token unrevoked.
pub async fn session(store: &Store, id_hash: &str) -> Result<Option<SessionRow>> {
    Ok(sqlx::query_as(
        "select s.csrf, s.token_id, coalesce(s.user_id, t.user_id) as user_id, \
                coalesce(u.email, t.name) as name, \
                case when s.token_id is null then u.role else t.role end as role, \
                case when s.token_id is null then u.tenant_id else t.tenant_id end as tenant_id \
         from sessions s \
         left join api_tokens t on t.id = s.token_id \
         left join users u on u.id = coalesce(s.user_id, t.user_id) \
         where s.id_hash = $1 and s.expires_at > $2 \
           and (s.token_id is null or t.revoked_at is null) \
           and u.disabled_at is null",
    )
    .bind(id_hash)
    .bind(now())
    .fetch_optional(&store.pool)
    .await?)
}
