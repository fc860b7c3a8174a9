//! The sign-in form's CSRF value. Before a session exists the form uses a double-submit value
//! (cookie and hidden field equal); a value alone could be planted by an attacker who can set a
//! cookie for the site. So the value carries its issue time and an HMAC under a server key: a
//! made-up pair is refused, and so is one older than [`LoginCsrf::MAX_AGE_SECS`].

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;

use crate::secret::random_password;

pub struct LoginCsrf {
    key: hmac::Key,
}

impl LoginCsrf {
    /// A sign-in form is valid for this long.
    pub const MAX_AGE_SECS: i64 = 3600;

    pub fn new(key: hmac::Key) -> Self {
        Self { key }
    }

    fn mac(&self, nonce: &str, issued: i64) -> String {
        B64.encode(hmac::sign(&self.key, format!("login-csrf.{nonce}.{issued}").as_bytes()))
    }

    /// `nonce.issued.mac`, for the cookie and the hidden field.
    pub fn issue(&self, now: i64) -> String {
        let nonce = random_password(24);
        format!("{nonce}.{now}.{}", self.mac(&nonce, now))
    }

    /// Whether `value` was issued by this server (any replica sharing the KEK) and is fresh.
    pub fn verify(&self, value: &str, now: i64) -> bool {
        let mut parts = value.splitn(3, '.');
        let (Some(nonce), Some(issued), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        let Ok(issued) = issued.parse::<i64>() else { return false };
        let Ok(mac) = B64.decode(mac) else { return false };
        let fresh = issued <= now + 60 && now - issued <= Self::MAX_AGE_SECS;
        fresh && hmac::verify(&self.key, format!("login-csrf.{nonce}.{issued}").as_bytes(), &mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csrf() -> LoginCsrf {
        LoginCsrf::new(hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef0123456789abcdef"))
    }

    #[test]
    fn issued_values_verify_and_made_up_ones_do_not() {
        let c = csrf();
        let value = c.issue(1_000);
        assert!(c.verify(&value, 1_010));
        assert!(!c.verify(&value, 1_000 + LoginCsrf::MAX_AGE_SECS + 1), "expired");
        assert!(!c.verify("planted", 1_010));
        assert!(!c.verify("abc.1000.AAAA", 1_010));
        let (nonce, rest) = value.split_once('.').unwrap();
        assert!(!c.verify(&format!("{nonce}x.{rest}"), 1_010), "a changed nonce breaks the MAC");
        let other = LoginCsrf::new(hmac::Key::new(hmac::HMAC_SHA256, b"another key, another server....."));
        assert!(!other.verify(&value, 1_010), "another key");
    }
}
