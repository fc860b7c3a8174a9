//! Password hashing with argon2id (the crate's recommended parameters). Both hashing and
//! verification are CPU- and memory-heavy, so they run on the blocking pool.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{Error, Result};

/// 16 random bytes from the OS, as a PHC salt.
fn salt() -> SaltString {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).expect("OS random source");
    SaltString::encode_b64(&bytes).expect("16 bytes is a valid salt")
}

pub const MIN_CHARS: usize = 12;
const MAX_BYTES: usize = 1024;

/// Refuses passwords too short to resist guessing, or absurdly long.
pub fn check_policy(password: &str) -> Result<()> {
    if password.chars().count() < MIN_CHARS {
        return Err(Error::invalid("password", format!("password must have at least {MIN_CHARS} characters")));
    }
    if password.len() > MAX_BYTES {
        return Err(Error::invalid("password", format!("password must be at most {MAX_BYTES} bytes")));
    }
    Ok(())
}

/// The argon2id PHC string of `password`.
pub async fn hash(password: String) -> Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes(), &salt())
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(anyhow::anyhow!("argon2: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?
}

/// Whether `password` matches `phc`. With `phc` absent (unknown account) a dummy hash is still
/// computed, so response time does not tell whether an account exists.
pub async fn verify(phc: Option<String>, password: String) -> Result<bool> {
    tokio::task::spawn_blocking(move || match phc {
        Some(phc) => PasswordHash::new(&phc)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false),
        None => {
            let _ = Argon2::default().hash_password(password.as_bytes(), &salt());
            false
        }
    })
    .await
    .map_err(|e| Error::Internal(e.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let a = hash("correct horse battery".into()).await.unwrap();
        let b = hash("correct horse battery".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(verify(Some(a.clone()), "correct horse battery".into()).await.unwrap());
        assert!(!verify(Some(a), "correct horse batterY".into()).await.unwrap());
        assert!(!verify(None, "correct horse battery".into()).await.unwrap());
    }

    #[test]
    fn policy_names_the_field() {
        let e = check_policy("short").unwrap_err();
        assert!(matches!(e, Error::Invalid { ref field, .. } if field == "password"));
        assert!(check_policy("twelve chars").is_ok());
    }
}
