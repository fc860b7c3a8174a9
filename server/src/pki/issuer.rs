//! Issuing client credentials: a key, a certificate signed by the CA, a random password, with
//! the key and password sealed under the KEK for storage. Pure signing and sealing: nothing here
//! reads or writes the database.

use std::sync::Arc;

use super::{Ca, Kek, KeyAlgorithm, PrivateKey, random_password};
use crate::error::Result;

/// Length of the random password protecting a credential's key PEM and PKCS#12 files.
pub const PASSWORD_LEN: usize = 24;

/// A signed certificate with its key and password sealed, ready to store.
#[derive(Debug, Clone)]
pub struct SealedCredential {
    pub cn: String,
    /// Upper-case hex.
    pub serial: String,
    pub algorithm: String,
    pub not_before: i64,
    pub not_after: i64,
    pub cert_pem: String,
    pub key_sealed: Vec<u8>,
    pub password_sealed: Vec<u8>,
}

/// Signs client credentials with the CA and seals their secrets.
#[derive(Debug, Clone)]
pub struct Issuer {
    pub ca: Arc<Ca>,
    kek: Arc<Kek>,
    algorithm: KeyAlgorithm,
    validity_days: u32,
}

pub(crate) fn key_context(cn: &str) -> String {
    format!("credential {cn} private key")
}

pub(crate) fn password_context(cn: &str) -> String {
    format!("credential {cn} password")
}

impl Issuer {
    pub fn new(ca: Arc<Ca>, kek: Arc<Kek>, algorithm: KeyAlgorithm, validity_days: u32) -> Self {
        Self { ca, kek, algorithm, validity_days }
    }

    /// Generates a client key off the async runtime (RSA generation takes seconds).
    pub async fn generate_key(&self) -> Result<PrivateKey> {
        let algorithm = self.algorithm;
        let key = tokio::task::spawn_blocking(move || algorithm.generate())
            .await
            .map_err(|e| anyhow::anyhow!("key generation task: {e}"))??;
        Ok(key)
    }

    /// Signs a certificate for principal `cn` with a pre-generated `key` and seals the secrets.
    pub fn issue(&self, cn: &str, key: &PrivateKey) -> Result<SealedCredential> {
        let signed = self.ca.issue_client(cn, key, self.validity_days)?;
        let password = random_password(PASSWORD_LEN);
        tracing::info!(cn, serial = %signed.serial_hex, "issued credential");
        Ok(SealedCredential {
            cn: cn.to_owned(),
            serial: signed.serial_hex,
            algorithm: key.algorithm.as_str().to_owned(),
            not_before: signed.not_before.unix_timestamp(),
            not_after: signed.not_after.unix_timestamp(),
            cert_pem: signed.cert_pem,
            key_sealed: self.kek.seal(&key_context(cn), &key.pkcs8_der),
            password_sealed: self.kek.seal(&password_context(cn), password.as_bytes()),
        })
    }

    /// Opens the sealed key and password of credential `cn`.
    pub fn open(
        &self,
        cn: &str,
        algorithm: &str,
        key_sealed: &[u8],
        password_sealed: &[u8],
    ) -> Result<(PrivateKey, String)> {
        let algorithm: KeyAlgorithm = algorithm.parse().map_err(anyhow::Error::msg)?;
        let key_der = self.kek.open(&key_context(cn), key_sealed)?;
        let password = String::from_utf8(self.kek.open(&password_context(cn), password_sealed)?)
            .map_err(|_| anyhow::anyhow!("stored password is not UTF-8"))?;
        Ok((PrivateKey::from_pkcs8_der(algorithm, key_der)?, password))
    }
}
