//! IP allowlists on every broker's firewall: tenants' entries (`allowlist`), the nftables
//! ruleset they become (`nft`), the agent on each broker host that applies it (`agent`), and
//! what the agents report back (`brokers`).

pub mod agent;
pub mod allowlist;
pub mod brokers;
pub mod nft;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use allowlist::Cidr;

/// Wakes the agents' long polls when the allowlist version moves, and ends them at shutdown.
#[derive(Debug)]
pub struct VersionSignal {
    version: watch::Sender<i64>,
    stopping: CancellationToken,
}

impl Default for VersionSignal {
    fn default() -> Self {
        Self { version: watch::Sender::new(0), stopping: CancellationToken::new() }
    }
}

impl VersionSignal {
    /// Announces that `version` is committed (an older announcement never replaces a newer one).
    pub fn committed(&self, version: i64) {
        self.version.send_if_modified(|v| {
            let newer = version > *v;
            if newer {
                *v = version;
            }
            newer
        });
    }

    /// A receiver to wait on. Subscribe before reading the database, so that a change committed
    /// in between still wakes the waiter.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.version.subscribe()
    }

    /// Answers held polls now, so a graceful shutdown does not wait out their hold.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Completes once the server is shutting down.
    pub async fn stopping(&self) {
        self.stopping.cancelled().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_commit_never_replaces_a_newer_one() {
        let signal = VersionSignal::default();
        let rx = signal.subscribe();
        signal.committed(5);
        signal.committed(3);
        assert_eq!(*rx.borrow(), 5);
        signal.committed(6);
        assert_eq!(*rx.borrow(), 6);
    }
}
