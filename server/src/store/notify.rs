//! Signals between replicas on PostgreSQL: a change's transaction calls `pg_notify` (delivered at
//! commit, and only if it commits), and every replica listens and raises the same local
//! [`Signals`](crate::signals::Signals) its own commits raise. After a reconnect, and every
//! [`SAFETY_INTERVAL`], the listener re-reads the allowlist version and wakes the reconciler, so
//! a notification lost with a connection delays a change, never drops it. On SQLite (one
//! process) there is nothing to send.

use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::{Backend, Store};
use crate::error::Result;

const CHANNEL: &str = "outflow";
/// How often a listener re-reads the state without a notification.
pub const SAFETY_INTERVAL: Duration = Duration::from_secs(15);

/// What a committed change tells the other replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Notice {
    /// The desired Kafka state changed.
    Desired,
    /// Allowlist version `v` is committed.
    Allowlist(i64),
}

impl Notice {
    fn payload(self) -> String {
        match self {
            Notice::Desired => "desired".into(),
            Notice::Allowlist(v) => format!("allowlist {v}"),
        }
    }

    fn parse(payload: &str) -> Option<Self> {
        match payload.split_once(' ') {
            None if payload == "desired" => Some(Notice::Desired),
            Some(("allowlist", v)) => v.parse().ok().map(Notice::Allowlist),
            _ => None,
        }
    }
}

/// Inside the change's transaction: tells the other replicas at commit.
pub(super) async fn send(conn: &mut AnyConnection, backend: Backend, notice: Notice) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("select pg_notify($1, $2)").bind(CHANNEL).bind(notice.payload()).execute(conn).await?;
    }
    Ok(())
}

/// Raises what the state says now: the allowlist version, and a reconcile pass.
async fn catch_up(store: &Store) {
    match super::firewall::version(store).await {
        Ok(v) => store.signals.allowlist_committed(v),
        Err(e) => tracing::warn!(error = %e, "re-reading the allowlist version"),
    }
    store.signals.desired_changed();
}

/// Listens for the other replicas' notifications until cancelled (PostgreSQL only).
pub async fn listen(store: Store, cancel: CancellationToken) {
    if store.backend != Backend::Postgres {
        return;
    }
    let mut backoff = Duration::from_millis(200);
    while !cancel.is_cancelled() {
        let mut listener = match PgListener::connect(&store.url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "notification listener cannot connect; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "LISTEN failed; reconnecting");
            continue;
        }
        backoff = Duration::from_millis(200);
        // Whatever was sent while not listening.
        catch_up(&store).await;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(SAFETY_INTERVAL) => catch_up(&store).await,
                received = listener.try_recv() => match received {
                    Ok(Some(n)) => match Notice::parse(n.payload()) {
                        Some(Notice::Desired) => store.signals.desired_changed(),
                        Some(Notice::Allowlist(v)) => store.signals.allowlist_committed(v),
                        None => tracing::debug!(payload = n.payload(), "unknown notification"),
                    },
                    // The connection was lost: reconnect, then catch up.
                    Ok(None) | Err(_) => break,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Notice;

    #[test]
    fn payloads_round_trip() {
        for n in [Notice::Desired, Notice::Allowlist(0), Notice::Allowlist(42)] {
            assert_eq!(Notice::parse(&n.payload()), Some(n));
        }
        assert_eq!(Notice::parse("allowlist x"), None);
        assert_eq!(Notice::parse("other"), None);
    }
}
