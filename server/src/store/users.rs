//! Users (dashboard accounts) and their invitations.

use sqlx::{AnyConnection, FromRow};

use super::{Store, audit, foreign_key_violation, unique_violation};
use crate::clock::now;
use crate::error::{Error, Result};

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

macro_rules! columns {
    () => {
        "id, email, role, tenant_id, password_hash, invite_expires_at, disabled_at, created_at"
    };
}

/// A user to create: with a password hash, or an invitation (the hash of its secret).
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub role: &'a str,
    pub tenant_id: Option<i64>,
    pub password_hash: Option<String>,
    pub invite_hash: Option<String>,
    pub invite_expires_at: i64,
}

pub async fn list(store: &Store) -> Result<Vec<UserRow>> {
    Ok(sqlx::query_as(concat!("select ", columns!(), " from users order by id")).fetch_all(&store.pool).await?)
}

pub async fn find(store: &Store, id: i64) -> Result<Option<UserRow>> {
    find_in(&mut *store.pool.acquire().await?, id).await
}

async fn find_in(conn: &mut AnyConnection, id: i64) -> Result<Option<UserRow>> {
    Ok(sqlx::query_as(concat!("select ", columns!(), " from users where id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?)
}

/// Creates a user; `Conflict` for a taken email, `NotFound` for an unknown tenant.
pub async fn create(store: &Store, user: &NewUser<'_>) -> Result<UserRow> {
    let mut tx = store.pool.begin().await?;
    let row: UserRow = sqlx::query_as(concat!(
        "insert into users (email, role, tenant_id, password_hash, invite_hash, invite_expires_at, created_at) \
         values ($1, $2, $3, $4, $5, $6, $7) returning ",
        columns!()
    ))
    .bind(user.email)
    .bind(user.role)
    .bind(user.tenant_id)
    .bind(&user.password_hash)
    .bind(&user.invite_hash)
    .bind(user.invite_expires_at)
    .bind(now())
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| {
        if unique_violation(&e) {
            Error::Conflict(format!("a user with email {} exists", user.email))
        } else if foreign_key_violation(&e) {
            Error::NotFound("no such tenant".into())
        } else {
            Error::from(e)
        }
    })?;
    audit::stage(&mut tx, user.tenant_id, &format!("{} {}", user.role, row.email)).await?;
    tx.commit().await?;
    Ok(row)
}

/// The enabled user with an unexpired invitation whose secret hashes to `invite_hash`.
pub async fn by_invite(store: &Store, invite_hash: &str) -> Result<Option<UserRow>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from users where invite_hash = $1 and invite_expires_at > $2 and disabled_at is null"
    ))
    .bind(invite_hash)
    .bind(now())
    .fetch_optional(&store.pool)
    .await?)
}

/// Sets the password of an invited user and uses up the invitation. The entry names the user.
pub async fn accept_invite(store: &Store, id: i64, password_hash: &str) -> Result<UserRow> {
    let mut tx = store.pool.begin().await?;
    sqlx::query("update users set password_hash = $1, invite_hash = null, invite_expires_at = null where id = $2")
        .bind(password_hash)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let user = find_in(&mut tx, id).await?.ok_or_else(|| Error::NotFound(format!("no user {id}")))?;
    audit::name_actor(&user.email, &user.role, user.tenant_id);
    audit::stage(&mut tx, user.tenant_id, "").await?;
    tx.commit().await?;
    Ok(user)
}

/// The enabled user with this email (compared without regard to ASCII case).
pub async fn enabled_by_email(store: &Store, email: &str) -> Result<Option<UserRow>> {
    Ok(sqlx::query_as(concat!(
        "select ",
        columns!(),
        " from users where lower(email) = lower($1) and disabled_at is null"
    ))
    .bind(email)
    .fetch_optional(&store.pool)
    .await?)
}

/// Disables (ending its sessions) or enables a user; `None` when there is no such user.
pub async fn set_disabled(store: &Store, id: i64, disabled: bool) -> Result<Option<UserRow>> {
    let mut tx = store.pool.begin().await?;
    let changed = sqlx::query(
        "update users set disabled_at = case when $1 then coalesce(disabled_at, $2) else null end where id = $3",
    )
    .bind(disabled)
    .bind(now())
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    if disabled {
        sqlx::query("delete from sessions where user_id = $1").bind(id).execute(&mut *tx).await?;
    }
    let user = find_in(&mut tx, id).await?.ok_or_else(|| Error::NotFound(format!("no user {id}")))?;
    let detail = format!("{} {}", if disabled { "disabled" } else { "enabled" }, user.email);
    audit::stage(&mut tx, user.tenant_id, &detail).await?;
    tx.commit().await?;
    Ok(Some(user))
}
