//! Tenant client credentials: one certificate (CN `c<N>.<k>`, its own Kafka principal), its
//! private key and the bundle password, both sealed at rest. Rotation issues k+1; revocation
//! marks a credential revoked (the Kafka reconciler then removes its ACLs).

use serde::Serialize;
use sqlx::{FromRow, Sqlite, SqliteExecutor, Transaction};
use utoipa::ToSchema;

use super::{KeyAlgorithm, PrivateKey, random_password};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::kafka::reconcile;
use crate::tenants::{self, TenantId, now, rfc3339};

/// Length of the random password protecting a credential's key PEM and PKCS#12 files.
pub const PASSWORD_LEN: usize = 24;

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

/// Columns of [`CredentialRow`], as a macro so queries stay `&'static str` (sqlx checks that SQL is not built at run time).
macro_rules! columns {
    () => {
        "tenant_id, k, cn, serial, algorithm, not_before, not_after, cert_pem, state, created_at, revoked_at"
    };
}

/// Lifecycle state as clients see it; `expired` is derived from the not-after time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CredentialState {
    Active,
    Revoked,
    Expired,
}

impl CredentialState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
        }
    }
}

impl CredentialRow {
    pub fn state_at(&self, now: i64) -> CredentialState {
        if self.state == "revoked" {
            CredentialState::Revoked
        } else if self.not_after <= now {
            CredentialState::Expired
        } else {
            CredentialState::Active
        }
    }
}

/// A credential as the API shows it (never the key or password).
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    /// Credential number within the tenant.
    #[schema(example = 1)]
    pub k: i64,
    /// Certificate common name, which is also the Kafka principal `User:<cn>`.
    #[schema(example = "c83.1")]
    pub cn: String,
    /// Certificate serial number, upper-case hex.
    pub serial: String,
    pub algorithm: String,
    pub not_before: String,
    pub not_after: String,
    /// Whole days until `not_after` (negative once expired).
    pub days_left: i64,
    pub state: CredentialState,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

impl From<&CredentialRow> for CredentialView {
    fn from(row: &CredentialRow) -> Self {
        Self {
            k: row.k,
            cn: row.cn.clone(),
            serial: row.serial.clone(),
            algorithm: row.algorithm.clone(),
            not_before: rfc3339(row.not_before),
            not_after: rfc3339(row.not_after),
            days_left: (row.not_after - now()).div_euclid(86_400),
            state: row.state_at(now()),
            created_at: rfc3339(row.created_at),
            revoked_at: row.revoked_at.map(rfc3339),
        }
    }
}

/// A credential with its secrets opened, for building a bundle.
pub struct CredentialSecrets {
    pub row: CredentialRow,
    pub key: PrivateKey,
    pub password: String,
}

fn key_context(cn: &str) -> String {
    format!("credential {cn} private key")
}

fn password_context(cn: &str) -> String {
    format!("credential {cn} password")
}

/// Generates a client key off the async runtime (RSA generation takes seconds).
pub async fn generate_key(algorithm: KeyAlgorithm) -> Result<PrivateKey> {
    let key = tokio::task::spawn_blocking(move || algorithm.generate())
        .await
        .map_err(|e| anyhow::anyhow!("key generation task: {e}"))??;
    Ok(key)
}

/// Signs credential `k` for `tenant` with a pre-generated `key` and stores it inside `tx`.
pub async fn issue(
    state: &AppState,
    tx: &mut Transaction<'_, Sqlite>,
    tenant: TenantId,
    k: i64,
    key: &PrivateKey,
) -> Result<CredentialRow> {
    let cn = tenant.credential_cn(k);
    let signed = state.ca.issue_client(&cn, key, state.config.credentials.validity_days)?;
    let password = random_password(PASSWORD_LEN);
    let row = sqlx::query_as::<_, CredentialRow>(concat!(
        "insert into credentials (tenant_id, k, cn, serial, algorithm, not_before, not_after, cert_pem, \
         key_sealed, password_sealed, created_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) returning ",
        columns!()
    ))
    .bind(tenant.get())
    .bind(k)
    .bind(&cn)
    .bind(&signed.serial_hex)
    .bind(key.algorithm.as_str())
    .bind(signed.not_before.unix_timestamp())
    .bind(signed.not_after.unix_timestamp())
    .bind(&signed.cert_pem)
    .bind(state.kek.seal(&key_context(&cn), &key.pkcs8_der))
    .bind(state.kek.seal(&password_context(&cn), password.as_bytes()))
    .bind(now())
    .fetch_one(&mut **tx)
    .await?;
    tracing::info!(tenant = %tenant, cn, serial = %signed.serial_hex, "issued credential");
    Ok(row)
}

pub async fn list(db: impl SqliteExecutor<'_>, tenant: TenantId) -> Result<Vec<CredentialRow>> {
    Ok(sqlx::query_as(concat!("select ", columns!(), " from credentials where tenant_id = ? order by k"))
        .bind(tenant.get())
        .fetch_all(db)
        .await?)
}

/// Issues credential k+1 while earlier ones keep working until revoked or expired.
pub async fn rotate(state: &AppState, tenant: TenantId) -> Result<CredentialRow> {
    let key = generate_key(state.config.credentials.key_algorithm).await?;
    let mut tx = state.db.begin().await?;
    // Writing first takes SQLite's write lock, so concurrent rotations get distinct numbers.
    let k: Option<(i64,)> = sqlx::query_as(
        "update tenants set credential_seq = credential_seq + 1 where id = ? and streaming_active = 1 \
         returning credential_seq",
    )
    .bind(tenant.get())
    .fetch_optional(&mut *tx)
    .await?;
    let Some((k,)) = k else {
        tenants::get(&mut *tx, tenant).await?;
        return Err(Error::Conflict(format!("streaming is not active for tenant {tenant}; activate it first")));
    };
    let row = issue(state, &mut tx, tenant, k, &key).await?;
    reconcile::mark_pending(&mut tx, tenant).await?;
    crate::audit::stage(&mut tx, Some(tenant), &format!("credential {k} issued")).await?;
    tx.commit().await?;
    state.desired_changed();
    Ok(row)
}

/// Revokes credential `k`. Revoking an already revoked credential is a no-op.
pub async fn revoke(state: &AppState, tenant: TenantId, k: i64) -> Result<CredentialRow> {
    let mut tx = state.db.begin().await?;
    let row: Option<CredentialRow> = sqlx::query_as(concat!(
        "update credentials set state = 'revoked', revoked_at = coalesce(revoked_at, ?) \
         where tenant_id = ? and k = ? returning ",
        columns!()
    ))
    .bind(now())
    .bind(tenant.get())
    .bind(k)
    .fetch_optional(&mut *tx)
    .await?;
    match row {
        Some(row) => {
            reconcile::mark_pending(&mut tx, tenant).await?;
            crate::audit::stage(&mut tx, Some(tenant), &format!("credential {k} revoked")).await?;
            tx.commit().await?;
            state.desired_changed();
            tracing::info!(tenant = %tenant, cn = row.cn, "revoked credential");
            Ok(row)
        }
        None => {
            tenants::get(&mut *tx, tenant).await?;
            Err(Error::NotFound(format!("tenant {tenant} has no credential {k}")))
        }
    }
}

/// The newest active credential with its key and password opened.
pub async fn newest_active(state: &AppState, tenant: TenantId) -> Result<Option<CredentialSecrets>> {
    let found: Option<(i64, String, Vec<u8>, Vec<u8>)> = sqlx::query_as(
        "select k, algorithm, key_sealed, password_sealed from credentials \
         where tenant_id = ? and state = 'active' and not_after > ? order by k desc limit 1",
    )
    .bind(tenant.get())
    .bind(now())
    .fetch_optional(&state.db)
    .await?;
    let Some((k, algorithm, key_sealed, password_sealed)) = found else { return Ok(None) };
    let row: CredentialRow =
        sqlx::query_as(concat!("select ", columns!(), " from credentials where tenant_id = ? and k = ?"))
            .bind(tenant.get())
            .bind(k)
            .fetch_one(&state.db)
            .await?;
    let algorithm: KeyAlgorithm = algorithm.parse().map_err(anyhow::Error::msg)?;
    let key_der = state.kek.open(&key_context(&row.cn), &key_sealed)?;
    let password = String::from_utf8(state.kek.open(&password_context(&row.cn), &password_sealed)?)
        .map_err(|_| anyhow::anyhow!("stored password is not UTF-8"))?;
    let key = PrivateKey::from_pkcs8_der(algorithm, key_der)?;
    Ok(Some(CredentialSecrets { row, key, password }))
}
