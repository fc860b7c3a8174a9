//! Sign-in rate limiting: failed attempts are counted per account and per source address in a
//! sliding window; past the limit, sign-in is refused until the oldest failure leaves the window.
//! An attempt is counted *before* its password is checked (a reservation, released when the
//! sign-in succeeds), so concurrent attempts cannot all slip under the limit.
//! The counts live in the store (on the database clock), so every replica sees the same ones.

use std::time::Duration;

use crate::error::Result;
use crate::store::Store;
use crate::store::login::{self, Key};

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
        Self { limits }
    }

    fn keys(&self, account: Option<&str>, address: &str) -> Vec<(Key, &'static str)> {
        let mut keys = Vec::with_capacity(2);
        if let Some(a) = account {
            keys.push((Key { key: account_key(a), limit: self.limits.per_account }, "account"));
        }
        keys.push((Key { key: format!("address:{address}"), limit: self.limits.per_address }, "address"));
        keys
    }

    /// Counts an attempt against the account and the address, or refuses it when either is
    /// already at its limit. The attempt stays counted as a failure unless released.
    pub async fn reserve(
        &self,
        store: &Store,
        account: Option<&str>,
        address: &str,
    ) -> Result<Result<Reservation, Throttled>> {
        let keys = self.keys(account, address);
        let plain: Vec<Key> = keys.iter().map(|(k, _)| k.clone()).collect();
        let window_ms = i64::try_from(self.limits.window.as_millis()).unwrap_or(i64::MAX);
        Ok(match login::reserve(store, &plain, window_ms).await? {
            Ok(ids) => Ok(Reservation { ids }),
            Err((i, retry_ms)) => {
                Err(Throttled { scope: keys[i].1, retry_after: Duration::from_millis(retry_ms.unsigned_abs()) })
            }
        })
    }

    /// Takes back an attempt that was not a wrong guess (the check could not run).
    pub async fn release(&self, store: &Store, reservation: Reservation) -> Result<()> {
        login::release(store, &reservation.ids).await
    }

    /// A successful sign-in: its attempt is not a failure, and the account's earlier failures
    /// are cleared (the address's are not).
    pub async fn succeeded(&self, store: &Store, reservation: Reservation, account: Option<&str>) -> Result<()> {
        login::release(store, &reservation.ids).await?;
        if let Some(account) = account {
            login::clear(store, &account_key(account)).await?;
        }
        Ok(())
    }
}

fn account_key(account: &str) -> String {
    format!("account:{}", account.to_lowercase())
}

/// An attempt counted by [`LoginLimiter::reserve`].
#[derive(Debug)]
#[must_use = "a reservation is a failure unless released"]
pub struct Reservation {
    ids: Vec<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_messages_round_up_to_minutes() {
        let t = |secs| Throttled { scope: "account", retry_after: Duration::from_secs(secs) };
        assert!(t(600).message().contains("10 minutes"), "{}", t(600).message());
        assert!(t(30).message().contains("1 minute."), "{}", t(30).message());
        assert!(t(61).message().contains("2 minutes"));
    }
}
