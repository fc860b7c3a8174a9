//! Tenant client credentials: certificates with their sealed keys and passwords.

use sqlx::{AnyConnection, FromRow};

use super::notify::{self, Notice};
use super::{Flag, Store, audit, reconcile};
use crate::clock::now;
use crate::error::Result;
use crate::pki::SealedCredential;
use crate::tenants::TenantId;

#[derive(Debug, Clone, FromRow)]
pub struct CredentialRow {
    pub tenant_id: i64,
    pub k: i64,
    pub cn: String,
    pub serial: String,
    pub algorithm: String,
    pub not_before: i64,
    pub not_after: i64,
    pub cert_pem: String,
    pub state: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Columns of [`CredentialRow`], as a macro so queries stay `&'static str`.
macro_rules! columns {
    () => {
        "tenant_id, k, cn, serial, algorithm, not_before, not_after, cert_pem, state, created_at, revoked_at"
    };
}

/// Stores credential `k` inside the transaction that allotted `k`.
pub(super) async fn insert(
    conn: &mut AnyConnection,
    tenant: TenantId,
    k: i64,
    sealed: &SealedCredential,
) -> Result<CredentialRow> {
    Ok(sqlx::query_as::<_, CredentialRow>(concat!(
        "insert into credentials (tenant_id, k, cn, serial, algorithm, not_before, not_after, cert_pem, \
         key_sealed, password_sealed, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning ",
        columns!()
    ))
    .bind(tenant.get())
    .bind(k)
    .bind(&sealed.cn)
    .bind(&sealed.serial)
    .bind(&sealed.algorithm)
    .bind(sealed.not_before)
    .bind(sealed.not_after)
    .bind(&sealed.cert_pem)
    .bind(&sealed.key_sealed)
    .bind(&sealed.password_sealed)
    .bind(now())
    .fetch_one(conn)
    .await?)
}

pub async fn list(store: &Store, tenant: TenantId) -> Result<Vec<CredentialRow>> {
    list_in(&mut *store.pool.acquire().await?, tenant).await
}

pub(super) async fn list_in(conn: &mut AnyConnection, tenant: TenantId) -> Result<Vec<CredentialRow>> {
    Ok(sqlx::query_as(concat!("select ", columns!(), " from credentials where tenant_id = $1 order by k"))
        .bind(tenant.get())
        .fetch_all(conn)
        .await?)
}

/// What [`rotate`] and [`revoke`] found.
#[derive(Debug)]
pub enum Change {
    Done(CredentialRow),
    NoTenant,
    /// Rotation: streaming is not active. Revocation: no credential with that number.
    Refused,
}

/// Issues credential k+1 (made by `sign` once `k` is fixed); earlier ones keep working.
pub async fn rotate(
    store: &Store,
    tenant: TenantId,
    sign: impl FnOnce(i64) -> Result<SealedCredential>,
) -> Result<Change> {
    let mut tx = store.pool.begin().await?;
    // Writing first takes SQLite's write lock, so concurrent rotations get distinct numbers.
    let k: Option<(i64,)> = sqlx::query_as(
        "update tenants set credential_seq = credential_seq + 1 where id = $1 and streaming_active = true \
         returning credential_seq",
    )
    .bind(tenant.get())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((k,)) = k else { return refusal(&mut tx, tenant).await };
    let row = insert(&mut tx, tenant, k, &sign(k)?).await?;
    reconcile::mark_pending(&mut tx, tenant).await?;
    audit::stage(&mut tx, Some(tenant.get()), &format!("credential {k} issued")).await?;
    notify::send(&mut tx, store.backend, Notice::Desired).await?;
    tx.commit().await?;
    store.signals.desired_changed();
    Ok(Change::Done(row))
}

/// Revokes credential `k`; revoking a revoked credential changes nothing but its entry.
pub async fn revoke(store: &Store, tenant: TenantId, k: i64) -> Result<Change> {
    let mut tx = store.pool.begin().await?;
    let row: Option<CredentialRow> = sqlx::query_as(concat!(
        "update credentials set state = 'revoked', revoked_at = coalesce(revoked_at, $1) \
         where tenant_id = $2 and k = $3 returning ",
        columns!()
    ))
    .bind(now())
    .bind(tenant.get())
    .bind(k)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else { return refusal(&mut tx, tenant).await };
    reconcile::mark_pending(&mut tx, tenant).await?;
    audit::stage(&mut tx, Some(tenant.get()), &format!("credential {k} revoked")).await?;
    notify::send(&mut tx, store.backend, Notice::Desired).await?;
    tx.commit().await?;
    store.signals.desired_changed();
    Ok(Change::Done(row))
}

async fn refusal(conn: &mut AnyConnection, tenant: TenantId) -> Result<Change> {
    let (exists,): (Flag,) = sqlx::query_as("select exists (select 1 from tenants where id = $1)")
        .bind(tenant.get())
        .fetch_one(conn)
        .await?;
    Ok(if exists.0 { Change::Refused } else { Change::NoTenant })
}

/// A credential with its sealed secrets.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub row: CredentialRow,
    pub key_sealed: Vec<u8>,
    pub password_sealed: Vec<u8>,
}

/// The newest credential that is active and not expired at `at`.
pub async fn newest_active(store: &Store, tenant: TenantId, at: i64) -> Result<Option<Sealed>> {
    #[derive(FromRow)]
    struct Row {
        #[sqlx(flatten)]
        row: CredentialRow,
        key_sealed: Vec<u8>,
        password_sealed: Vec<u8>,
    }
    let found: Option<Row> = sqlx::query_as(concat!(
        "select ",
        columns!(),
        ", key_sealed, password_sealed from credentials \
         where tenant_id = $1 and state = 'active' and not_after > $2 order by k desc limit 1"
    ))
    .bind(tenant.get())
    .bind(at)
    .fetch_optional(&store.pool)
    .await?;
    Ok(found.map(|r| Sealed { row: r.row, key_sealed: r.key_sealed, password_sealed: r.password_sealed }))
}
