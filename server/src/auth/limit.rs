//! Sign-in rate limiting: failed attempts are counted per account and per source address in a
//! sliding window; past the limit, sign-in is refused until the oldest failure leaves the window.
//! An attempt is counted *before* its password is checked (a reservation, released when the
//! sign-in succeeds), so concurrent attempts cannot all slip under the limit.
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

    /// Counts an attempt against the account and the address, or refuses it when either is
    /// already at its limit. The attempt stays counted as a failure unless released.
    pub fn reserve(&self, account: Option<&str>, address: &str, now: Instant) -> Result<Reservation, Throttled> {
        let mut failures = self.failures.lock().expect("limiter lock");
        let keys = Self::keys(account, address);
        for (key, scope) in &keys {
            let Some(key) = key else { continue };
            let limit = if *scope == "account" { self.limits.per_account } else { self.limits.per_address };
            if let Some(times) = failures.get_mut(key) {
                while times.front().is_some_and(|t| now.duration_since(*t) >= self.limits.window) {
                    times.pop_front();
                }
                if times.len() >= limit {
                    let oldest = *times.front().expect("non-empty");
                    return Err(Throttled { scope, retry_after: self.limits.window - now.duration_since(oldest) });
                }
            }
        }
        for (key, _) in &keys {
            if let Some(key) = key {
                failures.entry(key.clone()).or_default().push_back(now);
            }
        }
        // Keep memory bounded under a spray of addresses: drop entries whose window passed.
        if failures.len() > 100_000 {
            failures.retain(|_, t| t.back().is_some_and(|last| now.duration_since(*last) < self.limits.window));
        }
        Ok(Reservation { keys: keys.into_iter().filter_map(|(k, _)| k).collect(), at: now })
    }

    /// Takes back an attempt that was not a wrong guess (the check could not run).
    pub fn release(&self, reservation: Reservation) {
        let mut failures = self.failures.lock().expect("limiter lock");
        for key in &reservation.keys {
            if let Some(times) = failures.get_mut(key)
                && let Some(i) = times.iter().rposition(|t| *t == reservation.at)
            {
                times.remove(i);
            }
        }
    }

    /// A successful sign-in: its attempt is not a failure, and the account's earlier failures
    /// are cleared (the address's are not).
    pub fn succeeded(&self, reservation: Reservation, account: Option<&str>) {
        self.release(reservation);
        if let Some(account) = account {
            self.failures.lock().expect("limiter lock").remove(&format!("account:{}", account.to_lowercase()));
        }
    }
}

/// An attempt counted by [`LoginLimiter::reserve`].
#[derive(Debug)]
#[must_use = "a reservation is a failure unless released"]
pub struct Reservation {
    keys: Vec<String>,
    at: Instant,
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
            let _failed = l.reserve(Some("a@x.test"), "192.0.2.1", t0).unwrap_or_else(|_| panic!("attempt {i}"));
        }
        let refused = l.reserve(Some("A@x.test"), "192.0.2.9", t0).unwrap_err();
        assert_eq!(refused.scope, "account");
        assert!(refused.message().contains("10 minutes"), "{}", refused.message());
        assert!(l.reserve(Some("b@x.test"), "192.0.2.9", t0).is_ok(), "other accounts unaffected");
        assert!(l.reserve(Some("a@x.test"), "192.0.2.1", t0 + Duration::from_secs(600)).is_ok(), "window passed");
    }

    #[test]
    fn address_limit_spans_accounts_and_success_clears_the_account() {
        let l = limiter();
        let t0 = Instant::now();
        for i in 0..5 {
            let _failed = l.reserve(Some(&format!("u{i}@x.test")), "192.0.2.1", t0).unwrap();
        }
        assert_eq!(l.reserve(Some("new@x.test"), "192.0.2.1", t0).unwrap_err().scope, "address");
        let _failed = l.reserve(Some("c@x.test"), "192.0.2.2", t0).unwrap();
        let _failed = l.reserve(Some("c@x.test"), "192.0.2.3", t0).unwrap();
        let ok = l.reserve(Some("c@x.test"), "192.0.2.4", t0).unwrap();
        l.succeeded(ok, Some("c@x.test"));
        let _failed = l.reserve(Some("c@x.test"), "192.0.2.4", t0).unwrap();
        let _failed = l.reserve(Some("c@x.test"), "192.0.2.4", t0).unwrap();
        assert!(l.reserve(Some("c@x.test"), "192.0.2.5", t0).is_ok());
    }

    #[test]
    fn an_attempt_counts_before_it_is_checked_and_release_takes_it_back() {
        let l = limiter();
        let t0 = Instant::now();
        // Three attempts in flight at once fill the account's limit of 3: the fourth is refused
        // although none has finished.
        let held: Vec<_> = (0..3).map(|_| l.reserve(Some("a@x.test"), "192.0.2.1", t0).unwrap()).collect();
        assert_eq!(l.reserve(Some("a@x.test"), "192.0.2.1", t0).unwrap_err().scope, "account");
        let mut held = held.into_iter();
        l.release(held.next().unwrap());
        assert!(l.reserve(Some("a@x.test"), "192.0.2.1", t0).is_ok(), "a released attempt frees its place");
    }
}
