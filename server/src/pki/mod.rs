//! Certificates: the CA, per-credential client certificates, broker server certificates, and
//! the key-encryption key that keeps their private keys sealed at rest.

pub mod ca;
pub mod issuer;
pub mod kek;

use std::fmt;
use std::str::FromStr;

use rcgen::{KeyPair, SignatureAlgorithm};
use ring::rand::{SecureRandom, SystemRandom};

use crate::secret::random_password;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde::Deserialize;

pub use ca::Ca;
pub use issuer::{Issuer, SealedCredential};
pub use kek::Kek;

/// Private key algorithms outflow can generate. ECDSA P-256 is the default: small, fast, and
/// accepted by librdkafka, Java and Go clients alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum KeyAlgorithm {
    EcdsaP256,
    EcdsaP384,
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl KeyAlgorithm {
    pub const ALL: [KeyAlgorithm; 5] = [Self::EcdsaP256, Self::EcdsaP384, Self::Rsa2048, Self::Rsa3072, Self::Rsa4096];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::EcdsaP256 => "ecdsa-p256",
            Self::EcdsaP384 => "ecdsa-p384",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
        }
    }

    pub fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    fn signature_algorithm(self) -> &'static SignatureAlgorithm {
        match self {
            Self::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            Self::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &rcgen::PKCS_RSA_SHA256,
        }
    }

    /// Generates a key pair. CPU-heavy for RSA (seconds for 4096 bits): call from a blocking task.
    pub fn generate(self) -> anyhow::Result<PrivateKey> {
        let bits = match self {
            Self::EcdsaP256 | Self::EcdsaP384 => {
                let pair = KeyPair::generate_for(self.signature_algorithm())?;
                return Ok(PrivateKey { algorithm: self, pkcs8_der: pair.serialize_der(), pair });
            }
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
        };
        // ring signs with RSA keys but cannot generate them; the rsa crate does.
        let key = rsa::PrivateKey::new(&mut rand::rng(), bits)?;
        let der = pkcs8::EncodePrivateKey::to_pkcs8_der(&key)?;
        PrivateKey::from_pkcs8_der(self, der.as_bytes().to_vec())
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyAlgorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|a| a.as_str()).collect();
            format!("unknown key algorithm {s:?}; use one of {}", names.join(", "))
        })
    }
}

impl TryFrom<String> for KeyAlgorithm {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A private key with its PKCS#8 encoding (what gets sealed, exported and packed).
pub struct PrivateKey {
    pub algorithm: KeyAlgorithm,
    pub pkcs8_der: Vec<u8>,
    pub pair: KeyPair,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({}, <redacted>)", self.algorithm)
    }
}

impl PrivateKey {
    pub fn from_pkcs8_der(algorithm: KeyAlgorithm, pkcs8_der: Vec<u8>) -> anyhow::Result<Self> {
        let pair = KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8_der.as_slice()),
            algorithm.signature_algorithm(),
        )?;
        Ok(Self { algorithm, pkcs8_der, pair })
    }

    /// Reads a PKCS#8 PEM key and works out its algorithm (for `outflow ca import`).
    pub fn from_pkcs8_pem(pem_text: &str) -> anyhow::Result<Self> {
        let pair = KeyPair::from_pem(pem_text)
            .map_err(|e| anyhow::anyhow!("expected an unencrypted PKCS#8 'PRIVATE KEY' PEM: {e}"))?;
        let der = pair.serialize_der();
        let algorithm = if pair.is_compatible(&rcgen::PKCS_ECDSA_P256_SHA256) {
            KeyAlgorithm::EcdsaP256
        } else if pair.is_compatible(&rcgen::PKCS_ECDSA_P384_SHA384) {
            KeyAlgorithm::EcdsaP384
        } else if pair.is_compatible(&rcgen::PKCS_RSA_SHA256) {
            // The modulus length decides the label; a 2048-bit modulus is 256 bytes.
            // PKCS#1 RSAPublicKey: modulus plus a few bytes of framing and exponent.
            match pair.public_key_raw().len() {
                n if n > 500 => KeyAlgorithm::Rsa4096,
                n if n > 300 => KeyAlgorithm::Rsa3072,
                _ => KeyAlgorithm::Rsa2048,
            }
        } else {
            anyhow::bail!("unsupported CA key type; use ECDSA P-256/P-384 or RSA");
        };
        Self::from_pkcs8_der(algorithm, der)
    }
}

/// A random certificate serial: 16 bytes, positive, never zero.
pub(crate) fn random_serial() -> Vec<u8> {
    let mut serial = [0u8; 16];
    SystemRandom::new().fill(&mut serial).expect("system randomness");
    serial[0] = (serial[0] & 0x7f) | 0x01;
    serial.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_round_trip() {
        for alg in KeyAlgorithm::ALL {
            assert_eq!(alg.as_str().parse::<KeyAlgorithm>().unwrap(), alg);
        }
        assert!("rsa-1024".parse::<KeyAlgorithm>().is_err());
    }

    #[test]
    fn generated_keys_reload_from_pkcs8() {
        for alg in [KeyAlgorithm::EcdsaP256, KeyAlgorithm::EcdsaP384, KeyAlgorithm::Rsa2048] {
            let key = alg.generate().unwrap();
            let again = PrivateKey::from_pkcs8_der(alg, key.pkcs8_der.clone()).unwrap();
            assert_eq!(again.pair.public_key_raw(), key.pair.public_key_raw());
            let pem = key.pair.serialize_pem();
            assert_eq!(PrivateKey::from_pkcs8_pem(&pem).unwrap().algorithm, alg);
        }
    }

    #[test]
    fn serials_are_positive() {
        for _ in 0..100 {
            let s = random_serial();
            assert_eq!(s.len(), 16);
            assert!(s[0] & 0x80 == 0 && s[0] != 0);
        }
    }
}
