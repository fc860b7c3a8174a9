//! Tenant client credentials: one certificate (CN `c<N>.<k>`, its own Kafka principal), its
//! private key and the bundle password, both sealed at rest. Rotation issues k+1; revocation
//! marks a credential revoked (the Kafka reconciler then removes its ACLs).

use serde::Serialize;
use utoipa::ToSchema;

use super::{TenantId, not_found};
use crate::clock::{now, rfc3339};
use crate::error::{Error, Result};
use crate::pki::{Issuer, PrivateKey};
use crate::store::Store;
use crate::store::credentials::{self as stored, Change};

pub use crate::store::credentials::CredentialRow;

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

    /// The state of `row` at time `now`.
    pub fn of(row: &CredentialRow, now: i64) -> Self {
        if row.state == "revoked" {
            Self::Revoked
        } else if row.not_after <= now {
            Self::Expired
        } else {
            Self::Active
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
            state: CredentialState::of(row, now()),
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

pub async fn list(store: &Store, tenant: TenantId) -> Result<Vec<CredentialRow>> {
    stored::list(store, tenant).await
}

fn inactive(tenant: TenantId) -> Error {
    Error::Conflict(format!("streaming is not active for tenant {tenant}; activate it first"))
}

/// Issues credential k+1 while earlier ones keep working until revoked or expired.
pub async fn rotate(store: &Store, issuer: &Issuer, tenant: TenantId) -> Result<CredentialRow> {
    // Generated before the transaction so the write lock is held only for the inserts.
    let key = issuer.generate_key().await?;
    match stored::rotate(store, tenant, |k| issuer.issue(&tenant.credential_cn(k), &key)).await? {
        Change::Done(row) => Ok(row),
        Change::NoTenant => Err(not_found(tenant)),
        Change::Refused => Err(inactive(tenant)),
    }
}

/// Revokes credential `k`. Revoking an already revoked credential is a no-op.
pub async fn revoke(store: &Store, tenant: TenantId, k: i64) -> Result<CredentialRow> {
    match stored::revoke(store, tenant, k).await? {
        Change::Done(row) => {
            tracing::info!(tenant = %tenant, cn = row.cn, "revoked credential");
            Ok(row)
        }
        Change::NoTenant => Err(not_found(tenant)),
        Change::Refused => Err(Error::NotFound(format!("tenant {tenant} has no credential {k}"))),
    }
}

/// The newest active credential with its key and password opened.
pub async fn newest_active(store: &Store, issuer: &Issuer, tenant: TenantId) -> Result<Option<CredentialSecrets>> {
    let Some(sealed) = stored::newest_active(store, tenant, now()).await? else { return Ok(None) };
    let (key, password) =
        issuer.open(&sealed.row.cn, &sealed.row.algorithm, &sealed.key_sealed, &sealed.password_sealed)?;
    Ok(Some(CredentialSecrets { row: sealed.row, key, password }))
}
