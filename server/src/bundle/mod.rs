//! The download zip: a tenant's credential in every format its consumers need, plus
//! ready-to-run Filebeat, Logstash, Python and kcat configurations prefilled with its data.

pub mod access_log;
pub mod escape;

use std::io::{Cursor, Write};

use anyhow::Context;
use askama::Template;
use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKeyChain};
use pkcs8::LineEnding;
use pkcs8::pkcs5::pbes2;
use ring::rand::{SecureRandom, SystemRandom};
use zip::write::SimpleFileOptions;

use crate::clock::rfc3339;
use crate::config::BundleConfig;
use crate::error::{Error, Result};
use crate::pki::ca::pem_to_der;
use crate::pki::{Ca, Issuer};
use crate::store::Store;
use crate::tenants::credentials::{self, CredentialSecrets};
use crate::tenants::{TenantId, streaming};

pub use self::access_log::AccessLogFormat;
// The templates' custom filters (`py`, `yaml`, `logstash`, `props`, `line`) resolve here.
use self::escape::filters;

/// Everything the bundle's templates are filled with.
#[derive(Debug, Clone)]
pub struct BundleData {
    pub tenant_id: i64,
    pub tenant_name: String,
    pub cn: String,
    pub not_after: String,
    pub topic: String,
    pub waf_topic: String,
    pub group_prefix: String,
    pub group_filebeat: String,
    pub group_logstash: String,
    pub group_python: String,
    pub group_kcat: String,
    pub brokers: Vec<String>,
    pub ca_name: String,
    pub ca_file: String,
    pub cert_file: String,
    pub key_file: String,
    pub keystore_file: String,
    pub truststore_file: String,
    pub password: String,
    pub filebeat_dir: String,
    pub logstash_dir: String,
    /// The line format of `topic`'s records, which the Logstash grok parses.
    pub access_log_format: AccessLogFormat,
}

impl BundleData {
    pub fn new(
        tenant: TenantId,
        tenant_name: &str,
        secrets: &CredentialSecrets,
        brokers: &[String],
        ca_name: &str,
        config: &BundleConfig,
    ) -> Self {
        let t = tenant.topic();
        Self {
            tenant_id: tenant.get(),
            tenant_name: tenant_name.to_owned(),
            cn: secrets.row.cn.clone(),
            not_after: rfc3339(secrets.row.not_after),
            waf_topic: tenant.waf_topic(),
            group_prefix: tenant.group_prefix(),
            group_filebeat: format!("{t}_filebeat"),
            group_logstash: format!("{t}_logstash"),
            group_python: format!("{t}_python"),
            group_kcat: format!("{t}_kcat"),
            brokers: brokers.to_vec(),
            ca_name: ca_name.to_owned(),
            ca_file: format!("{ca_name}.pem"),
            cert_file: format!("{t}.crt.pem"),
            key_file: format!("{t}.key.pem"),
            keystore_file: format!("{t}.keystore.p12"),
            truststore_file: "truststore.p12".into(),
            password: secrets.password.clone(),
            filebeat_dir: config.filebeat_dir.clone(),
            logstash_dir: config.logstash_dir.clone(),
            access_log_format: config.access_log_format,
            topic: t,
        }
    }

    pub fn brokers_csv(&self) -> String {
        self.brokers.join(",")
    }

    /// `c83 (Acme)`: how the tenant is named in messages.
    pub fn tenant_label(&self) -> String {
        format!("{} ({})", self.topic, self.tenant_name)
    }

    pub fn filebeat_input_id(&self) -> String {
        format!("outflow-{}", self.topic)
    }

    pub fn filebeat_path(&self, file: &str) -> String {
        format!("{}/{file}", self.filebeat_dir)
    }

    pub fn logstash_path(&self, file: &str) -> String {
        format!("{}/{file}", self.logstash_dir)
    }
}

#[derive(Template)]
#[template(path = "bundle/filebeat.yml", escape = "none")]
struct FilebeatYml<'a> {
    b: &'a BundleData,
}

#[derive(Template)]
#[template(path = "bundle/kafka-logstash.conf", escape = "none")]
struct LogstashConf<'a> {
    b: &'a BundleData,
}

#[derive(Template)]
#[template(path = "bundle/consumer.py", escape = "none")]
struct ConsumerPy<'a> {
    b: &'a BundleData,
}

#[derive(Template)]
#[template(path = "bundle/kcat.conf", escape = "none")]
struct KcatConf<'a> {
    b: &'a BundleData,
}

#[derive(Template)]
#[template(path = "bundle/README.txt", escape = "none")]
struct ReadmeTxt<'a> {
    b: &'a BundleData,
}

/// The files of a bundle, in zip order.
pub fn files(
    data: &BundleData,
    ca: &Ca,
    secrets: &CredentialSecrets,
    iterations: u32,
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let password = &secrets.password;
    let leaf_der = pem_to_der(&secrets.row.cert_pem, "CERTIFICATE")?;
    Ok(vec![
        (data.cert_file.clone(), secrets.row.cert_pem.clone().into_bytes()),
        (data.key_file.clone(), encrypted_key_pem(&secrets.key.pkcs8_der, password, iterations)?.into_bytes()),
        (
            data.keystore_file.clone(),
            keystore(&data.topic, &secrets.key.pkcs8_der, &leaf_der, &ca.cert_der, password, iterations)?,
        ),
        (data.truststore_file.clone(), truststore(&ca.name, &ca.cert_der, password, iterations)?),
        ("password.txt".into(), format!("{password}\n").into_bytes()),
        (data.ca_file.clone(), ca.cert_pem.clone().into_bytes()),
    ]
    .into_iter()
    .chain(configs(data)?)
    .collect())
}

/// The bundle's configuration files and README, rendered from `data`.
pub fn configs(data: &BundleData) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    Ok(vec![
        ("filebeat.yml".into(), render(FilebeatYml { b: data })?),
        ("kafka-logstash.conf".into(), render(LogstashConf { b: data })?),
        ("consumer.py".into(), render(ConsumerPy { b: data })?),
        ("kcat.conf".into(), render(KcatConf { b: data })?),
        ("README.txt".into(), render(ReadmeTxt { b: data })?),
    ])
}

/// Renders a template with the final newline askama trims.
fn render(template: impl Template) -> anyhow::Result<Vec<u8>> {
    let mut text = template.render()?;
    text.push('\n');
    Ok(text.into_bytes())
}

/// Packs files into a zip; every entry is readable by its owner only.
pub fn zip(files: &[(String, Vec<u8>)]) -> anyhow::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).unix_permissions(0o600);
    for (name, bytes) in files {
        zip.start_file(name.as_str(), options)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// The zip for a tenant's newest active credential (CPU-bound PBKDF2 runs off the runtime).
/// `brokers` are the published bootstrap addresses the configs point at.
pub async fn for_tenant(
    store: &Store,
    issuer: &Issuer,
    config: &BundleConfig,
    brokers: &[String],
    tenant: TenantId,
) -> Result<Vec<u8>> {
    let row = streaming::require_active(store, tenant).await?;
    let secrets = credentials::newest_active(store, issuer, tenant).await?.ok_or_else(|| {
        Error::Conflict(format!("tenant {tenant} has no active credential; rotate to issue a new one"))
    })?;
    let data = BundleData::new(tenant, &row.name, &secrets, brokers, &issuer.ca.name, config);
    let ca = issuer.ca.clone();
    let iterations = config.pbkdf2_iterations;
    let cn = secrets.row.cn.clone();
    let bytes = tokio::task::spawn_blocking(move || zip(&files(&data, &ca, &secrets, iterations)?))
        .await
        .context("bundle task")??;
    crate::store::audit::stage_read(store, Some(tenant.get()), &format!("credential {cn}")).await?;
    Ok(bytes)
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    SystemRandom::new().fill(&mut out).expect("system randomness");
    out
}

/// PKCS#8 `ENCRYPTED PRIVATE KEY` PEM with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC): readable by
/// OpenSSL 1.1+/3, librdkafka, Java and Go (Filebeat 8.x). See README.txt for Filebeat 7.x.
pub fn encrypted_key_pem(pkcs8_der: &[u8], password: &str, iterations: u32) -> anyhow::Result<String> {
    let params =
        pbes2::Parameters::generate_pbkdf2_sha256_aes256cbc(iterations, &random_bytes::<16>(), random_bytes::<16>())
            .map_err(|e| anyhow::anyhow!("PBES2 parameters: {e}"))?;
    let info = pkcs8::PrivateKeyInfoRef::try_from(pkcs8_der).map_err(|e| anyhow::anyhow!("PKCS#8 key: {e}"))?;
    let encrypted = info.encrypt_with_params(params, password).map_err(|e| anyhow::anyhow!("encrypting key: {e}"))?;
    Ok(encrypted.to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF).map_err(|e| anyhow::anyhow!("PEM: {e}"))?.to_string())
}

/// PKCS#12 keystore: the key with its chain (leaf, CA), AES-256/HMAC-SHA256 protected.
pub fn keystore(
    alias: &str,
    pkcs8_der: &[u8],
    leaf_der: &[u8],
    ca_der: &[u8],
    password: &str,
    iterations: u32,
) -> anyhow::Result<Vec<u8>> {
    let local_key_id = ring::digest::digest(&ring::digest::SHA256, leaf_der).as_ref()[..20].to_vec();
    let chain = PrivateKeyChain::new(
        local_key_id,
        p12_keystore::PrivateKey::from_der(pkcs8_der)?,
        [Certificate::from_der(leaf_der)?, Certificate::from_der(ca_der)?],
    );
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
    Ok(store.writer(password).encryption_iterations(iterations).mac_iterations(iterations).write()?)
}

/// PKCS#12 truststore holding the CA as a trusted certificate entry (Java sees it).
pub fn truststore(alias: &str, ca_der: &[u8], password: &str, iterations: u32) -> anyhow::Result<Vec<u8>> {
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::Certificate(Certificate::from_der(ca_der)?));
    Ok(store.writer(password).encryption_iterations(iterations).mac_iterations(iterations).write()?)
}
