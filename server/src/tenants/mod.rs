//! Tenants (CDN customers) and their streaming service: the desired state that reconcilers and
//! the bundle read.

pub mod domain;
pub mod partition_requests;
pub mod streaming;

use serde::Serialize;
use sqlx::{FromRow, SqliteExecutor, SqlitePool};
use time::OffsetDateTime;
use utoipa::ToSchema;

pub use domain::{Partitions, TenantId, TenantName};

use crate::error::{Error, Result};

/// A tenant row.
#[derive(Debug, Clone, FromRow)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub streaming_active: bool,
    pub activated_at: Option<i64>,
}

/// A tenant as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    #[schema(example = 83)]
    pub id: i64,
    #[schema(example = "Acme")]
    pub name: String,
    pub created_at: String,
    pub streaming_active: bool,
    /// The delivery-log topic, `c<N>`.
    pub topic: String,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id,
            topic: format!("c{}", t.id),
            name: t.name,
            created_at: rfc3339(t.created_at),
            streaming_active: t.streaming_active,
        }
    }
}

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Unix seconds as RFC 3339 (UTC).
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

macro_rules! select_tenants {
    () => {
        "select id, name, created_at, streaming_active, activated_at from tenants"
    };
}

pub async fn create(db: &SqlitePool, id: TenantId, name: &TenantName) -> Result<Tenant> {
    let mut tx = db.begin().await?;
    let result = sqlx::query_as::<_, Tenant>(
        "insert into tenants (id, name, created_at) values (?, ?, ?) \
         returning id, name, created_at, streaming_active, activated_at",
    )
    .bind(id.get())
    .bind(name.as_str())
    .bind(now())
    .fetch_one(&mut *tx)
    .await;
    let tenant = match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Err(Error::Conflict(format!("tenant {id} already exists")));
        }
        other => other?,
    };
    crate::audit::stage(&mut tx, Some(id), "").await?;
    tx.commit().await?;
    Ok(tenant)
}

pub async fn list(db: impl SqliteExecutor<'_>) -> Result<Vec<Tenant>> {
    Ok(sqlx::query_as(concat!(select_tenants!(), " order by id")).fetch_all(db).await?)
}

pub async fn find(db: impl SqliteExecutor<'_>, id: TenantId) -> Result<Option<Tenant>> {
    Ok(sqlx::query_as(concat!(select_tenants!(), " where id = ?")).bind(id.get()).fetch_optional(db).await?)
}

pub async fn get(db: impl SqliteExecutor<'_>, id: TenantId) -> Result<Tenant> {
    find(db, id).await?.ok_or_else(|| not_found(id))
}

pub fn not_found(id: TenantId) -> Error {
    Error::NotFound(format!("tenant {id} does not exist"))
}

/// Deletes a tenant. A tenant with streaming active is refused: deactivate first, so that
/// removing a customer's live service is always a deliberate step. Returns the allowlist
/// version after the delete (a trigger bumps it when the tenant had entries), for the caller
/// to signal the brokers' agents.
pub async fn delete(db: &SqlitePool, id: TenantId) -> Result<i64> {
    let mut tx = db.begin().await?;
    let deleted = sqlx::query("delete from tenants where id = ? and streaming_active = 0")
        .bind(id.get())
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 1 {
        let version = crate::firewall::allowlist::version(&mut *tx).await?;
        crate::audit::stage(&mut tx, Some(id), "").await?;
        tx.commit().await?;
        return Ok(version);
    }
    drop(tx);
    match find(db, id).await? {
        None => Err(not_found(id)),
        Some(_) => Err(Error::Conflict(format!(
            "tenant {id} has streaming active; deactivate streaming before deleting the tenant"
        ))),
    }
}
