//! Wake-ups between the parts of one server process: the desired Kafka state changed (wakes the
//! reconciler), an allowlist version committed (wakes the firewall agents' long polls), and the
//! server is stopping (ends held polls). The store raises the first two after its commits; nothing
//! else does. The same API will carry PostgreSQL `LISTEN/NOTIFY` between replicas.

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

#[derive(Debug)]
pub struct Signals {
    desired: Notify,
    allowlist: watch::Sender<i64>,
    stopping: CancellationToken,
    alert_deliveries: Notify,
}

impl Default for Signals {
    fn default() -> Self {
        Self {
            desired: Notify::new(),
            allowlist: watch::Sender::new(0),
            stopping: CancellationToken::new(),
            alert_deliveries: Notify::new(),
        }
    }
}

impl Signals {
    /// The desired state (topics, credentials, activation) changed: the reconciler should run.
    pub fn desired_changed(&self) {
        self.desired.notify_one();
    }

    /// Completes after the next (or a missed) [`Signals::desired_changed`].
    pub async fn desired_notified(&self) {
        self.desired.notified().await
    }

    /// Announces that allowlist `version` is committed (an older announcement never replaces a
    /// newer one).
    pub fn allowlist_committed(&self, version: i64) {
        self.allowlist.send_if_modified(|v| {
            let newer = version > *v;
            if newer {
                *v = version;
            }
            newer
        });
    }

    /// A receiver of allowlist versions. Subscribe before reading the database, so that a change
    /// committed in between still wakes the waiter.
    pub fn subscribe_allowlist(&self) -> watch::Receiver<i64> {
        self.allowlist.subscribe()
    }

    /// Alert deliveries were queued (committed): the delivery worker should look.
    pub fn alert_deliveries_queued(&self) {
        self.alert_deliveries.notify_one();
    }

    /// Completes after the next (or a missed) [`Signals::alert_deliveries_queued`].
    pub async fn alert_deliveries_notified(&self) {
        self.alert_deliveries.notified().await
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
        let signals = Signals::default();
        let rx = signals.subscribe_allowlist();
        signals.allowlist_committed(5);
        signals.allowlist_committed(3);
        assert_eq!(*rx.borrow(), 5);
        signals.allowlist_committed(6);
        assert_eq!(*rx.borrow(), 6);
    }
}
