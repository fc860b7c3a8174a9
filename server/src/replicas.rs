//! The server replicas serving one database, as operators see them: each process records a
//! heartbeat every few seconds; the view shows which are live and which holds each lease.

use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;

use crate::error::Result;
use crate::store::Store;
use crate::store::{lease, replicas as stored};

/// How often a replica records its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// A replica.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplicaView {
    /// Host, process id and a random part.
    #[schema(example = "cdn-ctl-2-4711-Ab3dE9")]
    pub id: String,
    /// The address it serves on.
    #[schema(example = "10.0.0.12:8080")]
    pub address: String,
    /// outflow's version.
    pub version: String,
    /// Milliseconds since its last heartbeat (database clock).
    pub silent_ms: i64,
    /// A heartbeat within the last 15 s.
    pub live: bool,
    /// The leases it holds now, e.g. `reconciler`.
    pub leases: Vec<String>,
}

/// A lease: which replica runs a singleton worker.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LeaseView {
    #[schema(example = "reconciler")]
    pub name: String,
    pub holder: String,
    /// Moves whenever the holder changes; the holder's writes are fenced by it.
    pub epoch: i64,
    /// Not expired.
    pub live: bool,
}

/// Replicas and leases.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplicasView {
    pub replicas: Vec<ReplicaView>,
    pub leases: Vec<LeaseView>,
}

pub async fn list(store: &Store) -> Result<ReplicasView> {
    let leases: Vec<LeaseView> = lease::list(store)
        .await?
        .into_iter()
        .map(|l| LeaseView { name: l.name, holder: l.holder, epoch: l.epoch, live: l.live })
        .collect();
    let replicas = stored::list(store)
        .await?
        .into_iter()
        .map(|r| ReplicaView {
            leases: leases.iter().filter(|l| l.live && l.holder == r.id).map(|l| l.name.clone()).collect(),
            id: r.id,
            address: r.address,
            version: r.version,
            silent_ms: r.silent_ms,
            live: r.live,
        })
        .collect();
    Ok(ReplicasView { replicas, leases })
}

/// Records this replica's heartbeat until cancelled, then removes it.
pub async fn heartbeat(store: Store, id: String, address: String, cancel: CancellationToken) {
    let version = env!("CARGO_PKG_VERSION");
    loop {
        if let Err(e) = stored::heartbeat(&store, &id, &address, version).await {
            tracing::warn!(error = %e, "recording the replica heartbeat");
        }
        // Entries of replicas that stopped without finishing them.
        match crate::store::audit::recover(&store).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(entries = n, "recovered audit entries of a replica that stopped"),
            Err(e) => tracing::warn!(error = %e, "recovering audit entries"),
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep(HEARTBEAT) => {}
        }
    }
    if let Err(e) = stored::leave(&store, &id).await {
        tracing::warn!(error = %e, "removing the replica row");
    }
}
