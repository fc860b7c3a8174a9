//! The certificate authority as outflow keeps it: loaded from the store, created on first start,
//! or imported by `outflow ca import`. Signing itself is `pki`'s; this joins it to the store.

use anyhow::{Context, bail};

use crate::pki::{Ca, Kek, KeyAlgorithm};
use crate::store::Store;
use crate::store::ca::{self as stored, CaRow};

/// Loads the CA, creating one on first start.
pub async fn load_or_create(
    store: &Store,
    kek: &Kek,
    name: &str,
    algorithm: KeyAlgorithm,
    validity_days: u32,
) -> anyhow::Result<Ca> {
    if let Some(ca) = load(store, kek).await? {
        return Ok(ca);
    }
    let owned_name = name.to_owned();
    let (ca, pkcs8) = tokio::task::spawn_blocking(move || Ca::generate(&owned_name, algorithm, validity_days))
        .await
        .context("CA key generation task")??;
    tracing::info!(name, %algorithm, "created a new certificate authority");
    // Kept if another process won the race: then its CA is the one loaded.
    stored::save(store, &row(kek, &ca, &pkcs8, false), false).await?;
    load(store, kek).await?.context("CA missing right after creation")
}

pub async fn load(store: &Store, kek: &Kek) -> anyhow::Result<Option<Ca>> {
    let Some(row) = stored::load(store).await? else { return Ok(None) };
    Ok(Some(Ca::open(kek, row.name, &row.algorithm, row.cert_pem, &row.key_sealed)?))
}

/// Whether the stored CA was imported (rather than created by outflow).
pub async fn imported(store: &Store) -> crate::error::Result<bool> {
    Ok(stored::load(store).await?.is_some_and(|r| r.imported))
}

/// Imports an existing CA. Refuses to replace a CA that already signed credentials unless
/// `replace` is set, since those would stop verifying against the bundle.
pub async fn import(
    store: &Store,
    kek: &Kek,
    name: &str,
    cert_pem: &str,
    key_pem: &str,
    replace: bool,
) -> anyhow::Result<Ca> {
    let (ca, pkcs8) = Ca::from_pem(name, cert_pem, key_pem)?;
    if stored::load(store).await?.is_some() && !replace {
        bail!("a CA already exists; pass --replace to replace it (issued credentials stay signed by the old CA)");
    }
    stored::save(store, &row(kek, &ca, &pkcs8, true), true).await?;
    Ok(ca)
}

fn row(kek: &Kek, ca: &Ca, pkcs8: &[u8], imported: bool) -> CaRow {
    CaRow {
        name: ca.name.clone(),
        algorithm: ca.algorithm.as_str().to_owned(),
        cert_pem: ca.cert_pem.clone(),
        key_sealed: Ca::seal_key(kek, pkcs8),
        imported,
    }
}
