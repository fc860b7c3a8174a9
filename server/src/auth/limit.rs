//! Sign-in rate limiting: failed attempts are counted per account and per source address in a
//! sliding window; past the limit, sign-in is refused until the oldest failure leaves the window.
//! In memory: a restart forgets the counts, which only helps someone who can restart the server.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Limits from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_account: usize,
    pub per_address: usize,
    pub window: Duration,
}

#[derive(Debug)]
pub struct LoginLimiter {
    limits: Limits,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Why a sign-in is refused before the password is even checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub scope: &'static str,
    pub retry_after: Duration,
}

impl Throttled {
    pub fn message(&self) -> String {
        let minutes = self.retry_after.as_secs().div_ceil(60).max(1);
        format!(
            "Too many failed sign-ins for this {}. Try again in {minutes} minute{}.",
            self.scope,
            if minutes == 1 { "" } else { "s" }
        )
    }
}

impl LoginLimiter {
    pub fn new(limits: Limits) -> Self {
        Self { limits, failures: Mutex::new(HashMap::new()) }
    }

    fn keys(account: Option<&str>, address: &str) -> [(Option<String>, &'static str); 2] {
        [
            (account.map(|a| format!("account:{}", a.to_lowercase())), "account"),
            (Some(format!("address:{address}")), "address"),
        ]
    }

    /// Refuses when the account or the address is over its limit.
    pub fn check(&self, account: Option<&str>, address: &str, now: Instant) -> Result<(), Throttled> {
        let mut failures = self.failures.lock().expect("limiter lock");
        for (key, scope) in Self::keys(account, address) {
            let Some(key) = key else { continue };
            let limit = if scope == "account" { self.limits.per_account } else { self.limits.per_address };
            if let Some(times) = failures.get_mut(&key) {
                while times.front().is_some_and(|t| now.duration_since(*t) >= self.limits.window) {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = *times.front().expect("non-empty");
                    return Err(Throttled { scope, retry_after: self.limits.window - now.duration_since(oldest) });
                }
            }
        }
        Ok(())
    }

    pub fn failed(&self, account: Option<&str>, address: &str, now: Instant) {
        let mut failures = self.failures.lock().expect("limiter lock");
        for (key, _) in Self::keys(account, address) {
            if let Some(key) = key {
                failures.entry(key).or_default().push_back(now);
            }
        }
        // Keep memory bounded under a spray of addresses: drop entries whose window passed.
        if failures.len() > 100_000 {
            failures.retain(|_, t| t.back().is_some_and(|last| now.duration_since(*last) < self.limits.window));
        }
    }

    /// A successful sign-in clears the account's failures (not the address's).
    pub fn succeeded(&self, account: &str) {
        self.failures.lock().expect("limiter lock").remove(&format!("account:{}", account.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> LoginLimiter {
        LoginLimiter::new(Limits { per_account: 3, per_address: 5, window: Duration::from_secs(600) })
    }

    #[test]
    fn account_limit_engages_and_expires() {
        let l = limiter();
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(l.check(Some("a@x.test"), "192.0.2.1", t0).is_ok(), "attempt {i}");
            l.failed(Some("a@x.test"), "192.0.2.1", t0);
        }
        let refused = l.check(Some("A@x.test"), "192.0.2.9", t0).unwrap_err();
        assert_eq!(refused.scope, "account");
        assert!(refused.message().contains("10 minutes"), "{}", refused.message());
        assert!(l.check(Some("b@x.test"), "192.0.2.9", t0).is_ok(), "other accounts unaffected");
        assert!(l.check(Some("a@x.test"), "192.0.2.1", t0 + Duration::from_secs(600)).is_ok(), "window passed");
    }

    #[test]
    fn address_limit_spans_accounts_and_success_clears_the_account() {
        let l = limiter();
        let t0 = Instant::now();
        for i in 0..5 {
            l.failed(Some(&format!("u{i}@x.test")), "192.0.2.1", t0);
        }
        assert_eq!(l.check(Some("new@x.test"), "192.0.2.1", t0).unwrap_err().scope, "address");
        l.failed(Some("c@x.test"), "192.0.2.2", t0);
        l.failed(Some("c@x.test"), "192.0.2.3", t0);
        l.succeeded("c@x.test");
        l.failed(Some("c@x.test"), "192.0.2.4", t0);
        assert!(l.check(Some("c@x.test"), "192.0.2.5", t0).is_ok());
    }
}
