//! The certificate authority that signs client and broker certificates. Created on first start
//! (or imported); its private key lives in the database sealed with the KEK.

use anyhow::{Context, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use rcgen::PublicKeyData;

use super::{Kek, KeyAlgorithm, PrivateKey, random_serial};

pub(crate) const KEY_CONTEXT: &str = "certificate authority private key";

/// The loaded CA: its certificate and a signer for new certificates.
pub struct Ca {
    pub name: String,
    pub algorithm: KeyAlgorithm,
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub not_after: OffsetDateTime,
    issuer: Issuer<'static, rcgen::KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("name", &self.name).field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

/// A freshly signed certificate.
pub struct Signed {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub serial_hex: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl Ca {
    fn from_parts(name: String, cert_pem: String, key: PrivateKey) -> anyhow::Result<Self> {
        let der = pem_to_der(&cert_pem, "CERTIFICATE")?;
        let (_, x509) = x509_parser::parse_x509_certificate(&der).context("parsing the CA certificate")?;
        if !x509.is_ca() {
            bail!("the certificate is not a CA certificate (basicConstraints CA:TRUE is missing)");
        }
        if x509.public_key().raw != key.pair.subject_public_key_info().as_slice() {
            bail!("the private key does not belong to the CA certificate");
        }
        let not_after = OffsetDateTime::from_unix_timestamp(x509.validity().not_after.timestamp())?;
        let algorithm = key.algorithm;
        let issuer = Issuer::from_ca_cert_der(&der.as_slice().into(), key.pair)?;
        Ok(Self { name, algorithm, cert_pem, cert_der: der, not_after, issuer })
    }

    /// A new self-signed CA valid for `validity_days`.
    pub fn generate(name: &str, algorithm: KeyAlgorithm, validity_days: u32) -> anyhow::Result<(Self, Vec<u8>)> {
        let key = algorithm.generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, "outflow");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::minutes(5);
        params.not_after = now + Duration::days(validity_days.into());
        let cert = params.self_signed(&key.pair)?;
        let pkcs8 = key.pkcs8_der.clone();
        Ok((Self::from_parts(name.to_owned(), cert.pem(), key)?, pkcs8))
    }

    /// Opens a stored CA: its certificate and its key sealed under `kek`.
    pub fn open(kek: &Kek, name: String, algorithm: &str, cert_pem: String, key_sealed: &[u8]) -> anyhow::Result<Self> {
        let algorithm: KeyAlgorithm = algorithm.parse().map_err(anyhow::Error::msg)?;
        let key = PrivateKey::from_pkcs8_der(algorithm, kek.open(KEY_CONTEXT, key_sealed)?)?;
        Self::from_parts(name, cert_pem, key)
    }

    /// A CA from an existing certificate and PKCS#8 key (`outflow ca import`), checked to belong
    /// together.
    pub fn from_pem(name: &str, cert_pem: &str, key_pem: &str) -> anyhow::Result<(Self, Vec<u8>)> {
        let key = PrivateKey::from_pkcs8_pem(key_pem)?;
        let pkcs8 = key.pkcs8_der.clone();
        Ok((Self::from_parts(name.to_owned(), cert_pem.trim().to_owned() + "\n", key)?, pkcs8))
    }

    /// The CA's PKCS#8 key sealed under `kek`, as it is stored.
    pub fn seal_key(kek: &Kek, pkcs8: &[u8]) -> Vec<u8> {
        kek.seal(KEY_CONTEXT, pkcs8)
    }

    /// Signs a client certificate for the principal `cn` (e.g. `c83.1`).
    pub fn issue_client(&self, cn: &str, key: &PrivateKey, validity_days: u32) -> anyhow::Result<Signed> {
        let mut params = leaf_params(cn, key.algorithm, validity_days);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, key)
    }

    /// Signs a server certificate for brokers (and test servers) answering on `hosts`.
    pub fn issue_server(&self, hosts: &[String], key: &PrivateKey, validity_days: u32) -> anyhow::Result<Signed> {
        let cn = hosts.first().context("at least one host name is needed")?;
        let mut params = leaf_params(cn, key.algorithm, validity_days);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.subject_alt_names = hosts
            .iter()
            .map(|h| match h.parse::<std::net::IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) => Ok(SanType::DnsName(h.as_str().try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        self.sign(params, key)
    }

    fn sign(&self, params: CertificateParams, key: &PrivateKey) -> anyhow::Result<Signed> {
        let serial_hex = params.serial_number.as_ref().map(|s| hex_upper(s.as_ref())).unwrap_or_default();
        let (not_before, not_after) = (params.not_before, params.not_after);
        let cert = params.signed_by(&key.pair, &self.issuer)?;
        Ok(Signed { cert_pem: cert.pem(), cert_der: cert.der().to_vec(), serial_hex, not_before, not_after })
    }
}

fn leaf_params(cn: &str, algorithm: KeyAlgorithm, validity_days: u32) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = if algorithm.is_rsa() {
        vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment]
    } else {
        vec![KeyUsagePurpose::DigitalSignature]
    };
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(SerialNumber::from_slice(&random_serial()));
    // Backdated a little so clients with a slightly slow clock accept a fresh certificate.
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).expect("0 is a valid nanosecond");
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(validity_days.into());
    params
}

/// DER bytes of the first PEM block with the given label.
pub fn pem_to_der(text: &str, label: &str) -> anyhow::Result<Vec<u8>> {
    let doc = pkcs8::der::pem::decode_vec(text.trim().as_bytes())
        .map_err(|e| anyhow::anyhow!("expected a PEM '{label}' block: {e}"))?;
    if doc.0 != label {
        bail!("expected a PEM '{label}' block, found '{}'", doc.0);
    }
    Ok(doc.1)
}

pub fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificate_has_cn_client_auth_and_chains_to_ca() {
        let (ca, _) = Ca::generate("testCA", KeyAlgorithm::EcdsaP256, 3650).unwrap();
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let signed = ca.issue_client("c83.1", &key, 365).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&signed.cert_der).unwrap();
        assert_eq!(cert.subject().to_string(), "CN=c83.1");
        assert_eq!(cert.issuer().to_string(), "CN=testCA, O=outflow");
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert!(!cert.is_ca());
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        let days = (signed.not_after - signed.not_before).whole_days();
        assert_eq!(days, 365);
    }

    #[test]
    fn rsa_ca_signs_too() {
        let (ca, _) = Ca::generate("rsaCA", KeyAlgorithm::Rsa2048, 3650).unwrap();
        let key = KeyAlgorithm::EcdsaP256.generate().unwrap();
        let signed = ca.issue_server(&["localhost".into(), "127.0.0.1".into()], &key, 30).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&signed.cert_der).unwrap();
        let (_, ca_cert) = x509_parser::parse_x509_certificate(&ca.cert_der).unwrap();
        cert.verify_signature(Some(ca_cert.public_key())).unwrap();
        assert_eq!(ca_cert.validity().time_to_expiration().unwrap().whole_days() / 365, 9);
    }

    #[test]
    fn rejects_a_key_from_another_ca() {
        let (ca, _) = Ca::generate("a", KeyAlgorithm::EcdsaP256, 10).unwrap();
        let other = KeyAlgorithm::EcdsaP256.generate().unwrap();
        assert!(Ca::from_parts("a".into(), ca.cert_pem.clone(), other).is_err());
    }
}
