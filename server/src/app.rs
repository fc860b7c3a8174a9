//! Application assembly: the router and a server that runs until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::trace::TraceLayer;

use crate::config::Config;
use crate::state::AppState;
use crate::{api, http, kafka, web};

/// The whole HTTP surface: REST API, dashboard, static assets, health and metrics.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::router())
        .merge(web::router())
        // A route layer runs after routing, so the audit middleware sees the matched path.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), http::audit::middleware))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(http::metrics::metrics))
        .layer(axum::middleware::from_fn_with_state(trusted_proxies(&state), http::audit::client_address))
        .layer(axum::middleware::from_fn_with_state(Arc::new(state.config.http.clone()), http::serve::body_deadline))
        .layer(axum::extract::DefaultBodyLimit::max(state.config.http.max_body_bytes))
        .layer(axum::middleware::map_response(web::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The configured proxies (checked when the configuration was loaded).
fn trusted_proxies(state: &AppState) -> Arc<Vec<crate::firewall::Cidr>> {
    Arc::new(state.config.http.trusted_proxies.iter().filter_map(|p| p.parse().ok()).collect())
}

/// A bound, not yet serving, application.
pub struct App {
    listener: TcpListener,
    router: Router,
    pub state: AppState,
}

impl App {
    /// Opens state and binds the configured address (port 0 picks a free port).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let listen = config.listen;
        let state = AppState::open(config).await?;
        // The server, not every CLI command that opens the state, finishes what a stopped
        // process left in the audit outbox.
        let moved = crate::store::audit::recover(&state.store).await.context("recovering interrupted audit entries")?;
        if moved > 0 {
            tracing::warn!(entries = moved, "recovered audit entries of changes interrupted by a stop");
        }
        let listener = TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
        Ok(Self { listener, router: router(state.clone()), state })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener has an address")
    }

    pub fn port(&self) -> u16 {
        self.local_addr().port()
    }

    /// Serves (and reconciles, when Kafka is configured) until `shutdown` completes, then
    /// finishes in-flight requests and stops the background tasks.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        if let Some(cluster) = self.state.cluster.clone() {
            let (store, config, metrics, replica) = (
                self.state.store.clone(),
                self.state.config.clone(),
                self.state.metrics.clone(),
                self.state.replica.clone(),
            );
            let cancel = cancel.clone();
            tasks.spawn(
                async move { kafka::reconcile::run(store, cluster, &config.kafka, metrics, replica, cancel).await },
            );
        }
        tasks.spawn(crate::store::notify::listen(self.state.store.clone(), cancel.clone()));
        // Alert delivery runs on the replica holding the alerts lease.
        tasks.spawn(self.state.deliverer.clone().run(self.state.replica.clone(), cancel.clone()));
        // Alert evaluation, on the same replica (the same lease) as delivery.
        match crate::alerts::evaluate::Evaluator::new(
            self.state.store.clone(),
            self.state.config.clone(),
            self.state.sampler.clone(),
            self.state.own_reads.clone(),
        ) {
            Ok(evaluator) => {
                tasks.spawn(evaluator.run(self.state.replica.clone(), cancel.clone()));
            }
            Err(e) => tracing::error!(error = %e, "alert evaluation cannot start"),
        }
        // Metering: every replica adds its own reads of tenant topics; the one holding the usage
        // lease also closes finished hours and follows the groups' committed offsets.
        match crate::usage::worker::Meter::new(
            self.state.store.clone(),
            self.state.config.clone(),
            self.state.own_reads.clone(),
        ) {
            Ok(meter) => {
                tasks.spawn(meter.run(self.state.replica.clone(), cancel.clone()));
            }
            Err(e) => tracing::error!(error = %e, "usage metering cannot start"),
        }
        let address = self.local_addr().to_string();
        tasks.spawn(crate::replicas::heartbeat(
            self.state.store.clone(),
            self.state.replica.clone(),
            address,
            cancel.clone(),
        ));
        tasks.close();
        let signals = self.state.store.signals().clone();
        let shutdown = async move {
            shutdown.await;
            signals.stop();
        };
        let limits = self.state.config.http.clone();
        let served = http::serve::serve(self.listener, self.router, &limits, shutdown).await.context("HTTP server");
        cancel.cancel();
        if let Some(sampler) = &self.state.sampler {
            sampler.stop();
        }
        tasks.wait().await;
        served
    }
}
