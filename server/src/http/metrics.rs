//! `/metrics` in the Prometheus text format: stored counts and this process's counters.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::error::Result;
use crate::state::AppState;

pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse> {
    let counts = crate::store::metrics::counts(&state.store).await?;
    let (tenants, active, credentials) = (counts.tenants, counts.streaming_active, counts.credentials_active);
    let mut body = format!(
        "# HELP outflow_tenants Tenants known to outflow.\n# TYPE outflow_tenants gauge\noutflow_tenants {tenants}\n\
         # HELP outflow_tenants_streaming_active Tenants with streaming active.\n# TYPE outflow_tenants_streaming_active gauge\noutflow_tenants_streaming_active {active}\n\
         # HELP outflow_credentials_active Client credentials not revoked.\n# TYPE outflow_credentials_active gauge\noutflow_credentials_active {credentials}\n"
    );
    body.push_str(
        "# HELP outflow_reconcile_tenants Tenants by reconcile status.\n# TYPE outflow_reconcile_tenants gauge\n",
    );
    for (status, count) in counts.by_status {
        body.push_str(&format!("outflow_reconcile_tenants{{status=\"{status}\"}} {count}\n"));
    }
    let counters = [
        (
            "outflow_reconcile_passes_total",
            "Completed reconcile passes.",
            state.metrics.reconcile_passes.load(Ordering::Relaxed),
        ),
        (
            "outflow_reconcile_failures_total",
            "Reconcile passes that could not read the cluster.",
            state.metrics.reconcile_failures.load(Ordering::Relaxed),
        ),
        (
            "outflow_audit_unstaged_total",
            "Successful changes whose audit entry was not written in their transaction (a bug).",
            state.metrics.audit_unstaged.load(Ordering::Relaxed),
        ),
        (
            "outflow_kafka_admin_mutations_total",
            "Mutating Kafka admin calls made.",
            state.cluster.as_ref().map_or(0, |c| c.mutations()),
        ),
    ];
    for (name, help, value) in counters {
        body.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"));
    }
    alert_deliveries(&state, &mut body).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

/// Alert delivery: what this process sent (by kind and outcome), what the outbox holds, what
/// failed in the last day, and the channels a 410 disabled. Delivery failures are reported here
/// and in the deliveries API, never through the failing channel.
async fn alert_deliveries(state: &AppState, body: &mut String) -> Result<()> {
    body.push_str(
        "# HELP outflow_alert_deliveries_total Alert delivery attempts by channel kind and outcome (this process).\n\
         # TYPE outflow_alert_deliveries_total counter\n",
    );
    for (kind, outcome, n) in state.metrics.alert_deliveries.snapshot() {
        body.push_str(&format!("outflow_alert_deliveries_total{{kind=\"{kind}\",outcome=\"{outcome}\"}} {n}\n"));
    }
    let day_ago = crate::clock::now_ms() - 24 * 3600 * 1000;
    let (by_state, failed) = crate::store::alert_deliveries::counts(&state.store, day_ago).await?;
    body.push_str(
        "# HELP outflow_alert_deliveries Alert deliveries in the outbox by state.\n# TYPE outflow_alert_deliveries gauge\n",
    );
    for (s, n) in by_state {
        body.push_str(&format!("outflow_alert_deliveries{{state=\"{s}\"}} {n}\n"));
    }
    let disabled = crate::store::alert_channels::disabled_count(&state.store).await?;
    body.push_str(&format!(
        "# HELP outflow_alert_delivery_failures Alert deliveries failed or given up in the last 24 hours.\n\
         # TYPE outflow_alert_delivery_failures gauge\noutflow_alert_delivery_failures {failed}\n\
         # HELP outflow_alert_channels_disabled Alert channels disabled because their receiver answered 410.\n\
         # TYPE outflow_alert_channels_disabled gauge\noutflow_alert_channels_disabled {disabled}\n"
    ));
    Ok(())
}

/// Serves `render()` at `/metrics` on its own listener until `stop` (the WAF worker's metrics).
pub async fn serve_text(
    addr: std::net::SocketAddr,
    render: impl Fn() -> String + Clone + Send + Sync + 'static,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    // Printed on stdout so scripts and tests can find a port chosen with :0.
    println!("waf-split metrics on http://{}/metrics", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let render = render.clone();
            async move { ([("content-type", "text/plain; version=0.0.4")], render()) }
        }),
    );
    tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move { stop.cancelled().await });
        if let Err(e) = serve.await {
            tracing::error!("metrics endpoint: {e}");
        }
    });
    Ok(())
}
