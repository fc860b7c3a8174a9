//! Application assembly: state, router, and a server that runs until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use sqlx::SqlitePool;
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::limit::{Limits, LoginLimiter};
use crate::auth::login_csrf::LoginCsrf;
use crate::auth::password::Hashing;
use crate::config::Config;
use crate::kafka::Cluster;
use crate::kafka::check::CheckLimiter;
use crate::kafka::monitor::Monitor;
use crate::pki::{Ca, Kek};
use crate::{api, audit, db, firewall, kafka, web};

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub db: SqlitePool,
    pub config: Arc<Config>,
    pub ca: Arc<Ca>,
    pub kek: Arc<Kek>,
    /// The admin connection to Kafka, when `kafka.bootstrap` is configured.
    pub cluster: Option<Arc<Cluster>>,
    /// Reads live traffic for the Streaming tab, when Kafka is configured.
    pub monitor: Option<Arc<Monitor>>,
    /// Wakes the reconciler after a desired-state change.
    pub reconcile: Arc<Notify>,
    pub metrics: Arc<Metrics>,
    /// Failed sign-ins per account and per address.
    pub login_limiter: Arc<LoginLimiter>,
    /// Bounds concurrent argon2 computations.
    pub hashing: Hashing,
    /// Signs the sign-in form's CSRF values.
    pub login_csrf: Arc<LoginCsrf>,
    /// Wakes the firewall agents' long polls after an allowlist change.
    pub allowlist: Arc<firewall::VersionSignal>,
    /// Connectivity checks running: one per tenant, `max_concurrent_checks` in all.
    pub checks: Arc<CheckLimiter>,
}

/// Counters exposed on `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    pub reconcile_passes: AtomicU64,
    pub reconcile_failures: AtomicU64,
    /// Successful audited requests whose change staged no audit entry in its transaction.
    pub audit_unstaged: AtomicU64,
}

impl AppState {
    /// Opens the database (applying migrations), the KEK and the CA (created on first start).
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        db::private_dir(&config.data_dir)?;
        let db = db::connect(&config.database_url()).await?;
        audit::recover(&db).await.context("recovering interrupted audit entries")?;
        let kek = Kek::load_or_generate(config.kek.as_deref(), &config.data_dir)?;
        let ca =
            Ca::load_or_create(&db, &kek, &config.ca.name, config.ca.key_algorithm, config.ca.validity_days).await?;
        let cluster = match config.kafka.bootstrap {
            Some(_) => Some(Arc::new(Cluster::connect(&config.kafka)?)),
            None => {
                tracing::warn!("no Kafka cluster configured (OUTFLOW_KAFKA_BOOTSTRAP): tenants will stay pending");
                None
            }
        };
        let login_limiter = Arc::new(LoginLimiter::new(Limits {
            per_account: config.login.max_failures_per_account,
            per_address: config.login.max_failures_per_address,
            window: std::time::Duration::from_secs(config.login.window_secs),
        }));
        let monitor = match config.kafka.bootstrap {
            Some(_) => Some(Arc::new(Monitor::new(&config.kafka)?)),
            None => None,
        };
        Ok(Self {
            checks: CheckLimiter::new(config.max_concurrent_checks),
            monitor,
            login_limiter,
            hashing: Hashing::new(config.login.max_concurrent_hashes),
            login_csrf: Arc::new(LoginCsrf::new(kek.mac_key("login-csrf"))),
            db,
            config: Arc::new(config),
            ca: Arc::new(ca),
            kek: Arc::new(kek),
            cluster,
            reconcile: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::default()),
            allowlist: Arc::new(firewall::VersionSignal::default()),
        })
    }

    /// Tells the reconciler the desired state changed.
    pub fn desired_changed(&self) {
        self.reconcile.notify_one();
    }
}

/// The whole HTTP surface: REST API, dashboard, static assets, health and metrics.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(api::router())
        .merge(web::router())
        // A route layer runs after routing, so the audit middleware sees the matched path.
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), audit::middleware))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .layer(axum::middleware::from_fn_with_state(Arc::new(state.config.http.clone()), crate::serve::body_deadline))
        .layer(axum::extract::DefaultBodyLimit::max(state.config.http.max_body_bytes))
        .layer(axum::middleware::map_response(web::security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn metrics(State(state): State<AppState>) -> crate::error::Result<impl IntoResponse> {
    let (tenants, active): (i64, i64) =
        sqlx::query_as("select count(*), coalesce(sum(streaming_active), 0) from tenants").fetch_one(&state.db).await?;
    let (credentials,): (i64,) =
        sqlx::query_as("select count(*) from credentials where state = 'active'").fetch_one(&state.db).await?;
    let statuses: Vec<(String, i64)> =
        sqlx::query_as("select status, count(*) from reconcile_status group by status").fetch_all(&state.db).await?;
    let mut body = format!(
        "# HELP outflow_tenants Tenants known to outflow.\n# TYPE outflow_tenants gauge\noutflow_tenants {tenants}\n\
         # HELP outflow_tenants_streaming_active Tenants with streaming active.\n# TYPE outflow_tenants_streaming_active gauge\noutflow_tenants_streaming_active {active}\n\
         # HELP outflow_credentials_active Client credentials not revoked.\n# TYPE outflow_credentials_active gauge\noutflow_credentials_active {credentials}\n"
    );
    body.push_str(
        "# HELP outflow_reconcile_tenants Tenants by reconcile status.\n# TYPE outflow_reconcile_tenants gauge\n",
    );
    for (status, count) in statuses {
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
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

/// Samples the topic ends of watched tenants every few seconds, for the throughput figures.
async fn sample_throughput(monitor: Arc<Monitor>, cancel: CancellationToken) {
    loop {
        let m = monitor.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || m.sample_watched()).await {
            tracing::debug!(error = %e, "throughput sample failed");
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
        }
    }
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
            tasks.spawn(kafka::reconcile::run(self.state.clone(), cluster, cancel.clone()));
        }
        if let Some(monitor) = self.state.monitor.clone() {
            tasks.spawn(sample_throughput(monitor, cancel.clone()));
        }
        tasks.close();
        let signal = self.state.allowlist.clone();
        let shutdown = async move {
            shutdown.await;
            signal.stop();
        };
        let limits = self.state.config.http.clone();
        let served = crate::serve::serve(self.listener, self.router, &limits, shutdown).await.context("HTTP server");
        cancel.cancel();
        tasks.wait().await;
        served
    }
}
