//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`
//! with the key the base64 after `whsec_`. During a secret rotation both the new and the
//! previous secret sign, their signatures separated by a space, so a receiver that still holds
//! the previous secret keeps verifying.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use ring::rand::{SecureRandom, SystemRandom};

/// The prefix of a signing secret.
pub const PREFIX: &str = "whsec_";

/// A new signing secret: `whsec_` and the base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).expect("system randomness");
    format!("{PREFIX}{}", BASE64.encode(bytes))
}

/// A new message id, `msg_` and 24 random letters and digits (the same across retries of one
/// delivery, so receivers can drop duplicates).
pub fn message_id() -> String {
    format!("msg_{}", crate::secret::random_password(24))
}

/// The `v1,…` signature of `body` under `secret` (a `whsec_…` value, or bare base64).
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let key = BASE64
        .decode(secret.strip_prefix(PREFIX).unwrap_or(secret))
        .map_err(|_| "the signing secret is not valid base64".to_owned())?;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    Ok(format!("v1,{}", BASE64.encode(ring::hmac::sign(&key, &signed).as_ref())))
}

/// The `webhook-signature` header value: one signature per secret, space-separated.
pub fn header(secrets: &[&str], id: &str, timestamp: i64, body: &[u8]) -> Result<String, String> {
    let signatures: Result<Vec<String>, String> = secrets.iter().map(|s| signature(s, id, timestamp, body)).collect();
    Ok(signatures?.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the Standard Webhooks reference libraries.
    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sig = signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        // The bare base64 key signs the same.
        assert_eq!(
            signature("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap(),
            sig
        );
        assert_ne!(signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body).unwrap(), sig);
    }

    #[test]
    fn a_rotation_sends_both_signatures() {
        let (new, old) = (generate_secret(), generate_secret());
        let both = header(&[&new, &old], "msg_1", 5, b"{}").unwrap();
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(parts, [signature(&new, "msg_1", 5, b"{}").unwrap(), signature(&old, "msg_1", 5, b"{}").unwrap()]);
        assert!(signature("whsec_!!", "msg_1", 5, b"{}").is_err());
    }

    #[test]
    fn secrets_and_ids_have_their_documented_shape() {
        let secret = generate_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(BASE64.decode(&secret[6..]).unwrap().len(), 32);
        assert_ne!(secret, generate_secret());
        let id = message_id();
        assert!(id.starts_with("msg_") && id.len() == 28, "{id}");
    }
}
