//! The key-encryption key (KEK): seals every secret outflow keeps at rest (CA key, tenant keys,
//! bundle passwords) with AES-256-GCM. The context string is authenticated as associated data,
//! so a sealed value copied into another row does not open.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// File the embedded default keeps its generated KEK in.
pub const KEK_FILE: &str = "kek.key";

pub struct Kek {
    key: LessSafeKey,
    /// The key being rotated away from: opens, never seals.
    previous: Option<LessSafeKey>,
    /// Root of the MAC keys derived for other purposes (see [`Kek::mac_key`]).
    mac_root: ring::hmac::Key,
    rng: SystemRandom,
}

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(<redacted>)")
    }
}

impl Kek {
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        if bytes.len() != 32 {
            bail!("the key-encryption key must be 32 bytes (base64 of 32 random bytes), got {}", bytes.len());
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| anyhow::anyhow!("invalid KEK"))?;
        let mac_root = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes);
        Ok(Self { key: LessSafeKey::new(key), previous: None, mac_root, rng: SystemRandom::new() })
    }

    /// Also opens values sealed with `previous` (base64), during a rotation.
    pub fn with_previous(mut self, previous: &str) -> anyhow::Result<Self> {
        let bytes = BASE64.decode(previous.trim()).context("the previous key-encryption key is not valid base64")?;
        let Self { key, .. } = Self::from_bytes(&bytes).context("the previous key-encryption key")?;
        self.previous = Some(key);
        Ok(self)
    }

    /// Whether a previous key is configured.
    pub fn rotating(&self) -> bool {
        self.previous.is_some()
    }

    /// Whether `sealed` opens with the current key (not only with the previous one).
    pub fn is_current(&self, context: &str, sealed: &[u8]) -> bool {
        open_with(&self.key, context, sealed).is_ok()
    }

    /// An HMAC-SHA256 key for `purpose`, derived from the KEK: the same on every replica that
    /// shares the KEK, and unrelated to the sealing key and to other purposes' keys.
    pub fn mac_key(&self, purpose: &str) -> ring::hmac::Key {
        let derived = ring::hmac::sign(&self.mac_root, format!("outflow mac key: {purpose}").as_bytes());
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, derived.as_ref())
    }

    pub fn from_base64(text: &str) -> anyhow::Result<Self> {
        let bytes = BASE64.decode(text.trim()).context("the key-encryption key is not valid base64")?;
        Self::from_bytes(&bytes)
    }

    /// The configured KEK, or the one generated under `data_dir` (created on first use, with a
    /// loud warning: whoever can read the data dir can then read the secrets).
    pub fn load_or_generate(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Self> {
        if let Some(text) = configured {
            return Self::from_base64(text);
        }
        let path = data_dir.join(KEK_FILE);
        let kek = match std::fs::read_to_string(&path) {
            Ok(text) => Self::from_base64(&text).with_context(|| format!("reading {}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                SystemRandom::new().fill(&mut bytes).map_err(|_| anyhow::anyhow!("no system randomness"))?;
                write_private(&path, BASE64.encode(bytes).as_bytes())?;
                Self::from_bytes(&bytes)?
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        tracing::warn!(
            path = %path.display(),
            "USING A GENERATED KEY-ENCRYPTION KEY STORED NEXT TO THE DATABASE. Secrets at rest are \
             only as safe as this directory. In production set OUTFLOW_KEK (or `kek` in the config \
             file) from a secret store."
        );
        Ok(kek)
    }

    /// The configured KEK (or the generated one), with the previous key of a rotation if set.
    pub fn from_config(config: &crate::config::Config) -> anyhow::Result<Self> {
        let kek = Self::load_or_generate(config.kek.as_deref(), &config.data_dir)?;
        match config.kek_previous.as_deref() {
            Some(previous) => kek.with_previous(previous),
            None => Ok(kek),
        }
    }

    /// Encrypts `plaintext`; output is nonce || ciphertext || tag.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).expect("system randomness");
        let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut body)
            .expect("AES-GCM seal cannot fail for in-memory sizes");
        out.extend_from_slice(&body);
        out
    }

    /// Decrypts a value sealed with the current key or, during a rotation, the previous one.
    pub fn open(&self, context: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            bail!("sealed value for {context} is truncated");
        }
        open_with(&self.key, context, sealed)
            .or_else(|()| self.previous.as_ref().ok_or(()).and_then(|p| open_with(p, context, sealed)))
            .map_err(|()| anyhow::anyhow!("cannot decrypt {context}: wrong key-encryption key or corrupted data"))
    }
}

fn open_with(key: &LessSafeKey, context: &str, sealed: &[u8]) -> Result<Vec<u8>, ()> {
    if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
        return Err(());
    }
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ())?;
    let mut body = body.to_vec();
    let plain = key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut body).map_err(|_| ())?;
    Ok(plain.to_vec())
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        let sealed = kek.seal("credential 83.1 key", b"secret");
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        assert_eq!(kek.open("credential 83.1 key", &sealed).unwrap(), b"secret");
        assert!(kek.open("credential 84.1 key", &sealed).is_err());
        let other = Kek::from_bytes(&[8u8; 32]).unwrap();
        assert!(other.open("credential 83.1 key", &sealed).is_err());
    }

    #[test]
    fn during_a_rotation_both_keys_open_and_only_the_new_one_seals() {
        let old = Kek::from_bytes(&[7u8; 32]).unwrap();
        let sealed_old = old.seal("ctx", b"secret");
        let rotating = Kek::from_bytes(&[8u8; 32]).unwrap().with_previous(&BASE64.encode([7u8; 32])).unwrap();
        assert!(rotating.rotating());
        assert_eq!(rotating.open("ctx", &sealed_old).unwrap(), b"secret");
        assert!(!rotating.is_current("ctx", &sealed_old));
        let sealed_new = rotating.seal("ctx", b"secret");
        assert!(rotating.is_current("ctx", &sealed_new));
        assert!(old.open("ctx", &sealed_new).is_err(), "sealed with the previous key");
        // The context still binds under the previous key.
        assert!(rotating.open("other", &sealed_old).is_err());
        assert!(Kek::from_bytes(&[8u8; 32]).unwrap().open("ctx", &sealed_old).is_err());
        assert!(Kek::from_bytes(&[8u8; 32]).unwrap().with_previous("AAAA").is_err());
    }

    #[test]
    fn generated_kek_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Kek::load_or_generate(None, dir.path()).unwrap();
        let sealed = a.seal("x", b"y");
        let b = Kek::load_or_generate(None, dir.path()).unwrap();
        assert_eq!(b.open("x", &sealed).unwrap(), b"y");
    }

    #[test]
    fn rejects_short_keys() {
        assert!(Kek::from_base64("AAAA").is_err());
    }
}
