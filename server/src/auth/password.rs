//! Password hashing with argon2id (the crate's recommended parameters). Both hashing and
//! verification are CPU- and memory-heavy (about 19 MiB each), so they run on the blocking pool,
//! and [`Hashing`] bounds how many run at once: sign-in is reachable without authentication.

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// At most `max` argon2 computations at once; a caller beyond that is refused at once (503)
/// instead of queueing, so a burst of sign-ins cannot pile up memory or threads.
#[derive(Debug, Clone)]
pub struct Hashing {
    permits: Arc<Semaphore>,
}

impl Hashing {
    pub fn new(max: usize) -> Self {
        Self { permits: Arc::new(Semaphore::new(max)) }
    }

    /// A slot for one computation, held until the blocking work ends (even if the request that
    /// asked for it is gone).
    pub fn permit(&self) -> Result<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            Error::Unavailable("the server is busy checking other passwords; try again in a moment".into())
        })
    }
}

/// The argon2id PHC string of `password`.
pub async fn hash(hashing: &Hashing, password: String) -> Result<String> {
    let permit = hashing.permit()?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
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
pub async fn verify(hashing: &Hashing, phc: Option<String>, password: String) -> Result<bool> {
    let permit = hashing.permit()?;
    tokio::task::spawn_blocking(move || match (permit, phc) {
        (_permit, Some(phc)) => PasswordHash::new(&phc)
            .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false),
        (_permit, None) => {
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
        let h = Hashing::new(1);
        let a = hash(&h, "correct horse battery".into()).await.unwrap();
        let b = hash(&h, "correct horse battery".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(verify(&h, Some(a.clone()), "correct horse battery".into()).await.unwrap());
        assert!(!verify(&h, Some(a), "correct horse batterY".into()).await.unwrap());
        assert!(!verify(&h, None, "correct horse battery".into()).await.unwrap());
    }

    #[tokio::test]
    async fn hashing_beyond_the_bound_is_refused_at_once() {
        let h = Hashing::new(1);
        let held = h.permit().unwrap();
        let refused = verify(&h, None, "correct horse battery".into()).await.unwrap_err();
        assert!(matches!(refused, crate::error::Error::Unavailable(_)), "{refused:?}");
        assert!(hash(&h, "correct horse battery".into()).await.is_err());
        drop(held);
        assert!(!verify(&h, None, "correct horse battery".into()).await.unwrap());
    }

    #[test]
    fn policy_names_the_field() {
        let e = check_policy("short").unwrap_err();
        assert!(matches!(e, Error::Invalid { ref field, .. } if field == "password"));
        assert!(check_policy("twelve chars").is_ok());
    }
}
