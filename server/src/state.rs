//! The state every handler shares, and opening it: store, KEK, CA, Kafka connections and the
//! per-process limiters. What lives here is per process; what must agree across replicas lives
//! in the store.

use std::sync::Arc;

use crate::auth::limit::{Limits, LoginLimiter};
use crate::auth::login_csrf::LoginCsrf;
use crate::auth::password::Hashing;
use crate::config::Config;
use crate::error::Result;
use crate::kafka::Cluster;
use crate::kafka::check::{CheckLimiter, CheckResult};
use crate::kafka::live::LiveView;
use crate::kafka::sampler::Sampler;
use crate::metrics::Metrics;
use crate::pki::{Ca, Issuer, Kek};
use crate::signals::Signals;
use crate::store::Store;
use crate::tenants::TenantId;
use crate::tenants::streaming::Published;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// This process among the replicas: host, pid and a random part (leases name it).
    pub replica: String,
    pub store: Store,
    pub config: Arc<Config>,
    pub ca: Arc<Ca>,
    /// Signs and seals tenant credentials with the CA.
    pub issuer: Issuer,
    /// The admin connection to Kafka, when `kafka.bootstrap` is configured.
    pub cluster: Option<Arc<Cluster>>,
    /// Reads live traffic for the Streaming tab, when Kafka is configured.
    pub sampler: Option<Arc<Sampler>>,
    pub metrics: Arc<Metrics>,
    /// Failed sign-ins per account and per address.
    pub login_limiter: Arc<LoginLimiter>,
    /// Bounds concurrent argon2 computations.
    pub hashing: Hashing,
    /// Signs the sign-in form's CSRF values.
    pub login_csrf: Arc<LoginCsrf>,
    /// Connectivity checks running: one per tenant, `max_concurrent_checks` in all.
    pub checks: Arc<CheckLimiter>,
    /// The agents' allowlist, encoded once per version for every agent that asks.
    pub agent_lists: crate::firewall::allowlist::AgentListCache,
    /// Sends alert deliveries: the worker, and the channels' "Send test".
    pub deliverer: Arc<crate::alerts::deliver::Deliverer>,
    /// What this process's own readers fetched from tenant topics (subtracted from usage).
    pub own_reads: Arc<crate::usage::OwnReads>,
}

impl AppState {
    /// Opens the database (applying migrations), the KEK and the CA (created on first start).
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        crate::store::private_dir(&config.data_dir)?;
        let url = config.database_url();
        // Replicas share a PostgreSQL database: a KEK generated beside one of them would lock
        // the others out of the secrets (and sit next to nothing it protects).
        if crate::store::Backend::of(&url)? == crate::store::Backend::Postgres && config.kek.is_none() {
            anyhow::bail!(
                "OUTFLOW_KEK is required with a PostgreSQL database (generate one with `openssl rand -base64 32`)"
            );
        }
        let store = Store::open(&url, Arc::new(Signals::default())).await?;
        let kek = Arc::new(Kek::from_config(&config)?);
        let ca = Arc::new(
            crate::authority::load_or_create(
                &store,
                &kek,
                &config.ca.name,
                config.ca.key_algorithm,
                config.ca.validity_days,
            )
            .await?,
        );
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
        let own_reads = Arc::new(crate::usage::OwnReads::default());
        let sampler = match config.kafka.bootstrap {
            Some(_) => Some(Sampler::new(&config.kafka, own_reads.clone())?),
            None => None,
        };
        let issuer =
            Issuer::new(ca.clone(), kek.clone(), config.credentials.key_algorithm, config.credentials.validity_days);
        let metrics = Arc::new(Metrics::default());
        let deliverer = Arc::new(crate::alerts::deliver::Deliverer::new(
            store.clone(),
            kek.clone(),
            crate::alerts::deliver::guard::Guard::new(config.alerts.allowed_destinations()),
            config.alerts.delivery,
            metrics.alert_deliveries.clone(),
        ));
        Ok(Self {
            replica: store.replica().to_owned(),
            checks: CheckLimiter::new(config.max_concurrent_checks),
            agent_lists: Default::default(),
            sampler,
            login_limiter,
            hashing: Hashing::new(config.login.max_concurrent_hashes),
            login_csrf: Arc::new(LoginCsrf::new(kek.mac_key("login-csrf"))),
            store,
            config: Arc::new(config),
            ca,
            issuer,
            cluster,
            metrics,
            deliverer,
            own_reads,
        })
    }

    /// Where clients connect, as the streaming status shows it.
    pub fn published(&self) -> Published {
        Published { brokers: self.config.brokers.clone(), kafka_configured: self.cluster.is_some() }
    }
}

/// The domain calls whose arguments come from several parts of the state, shared by the API and
/// the dashboard.
impl AppState {
    /// The bundle zip of a tenant's newest active credential.
    pub async fn bundle(&self, tenant: TenantId) -> Result<Vec<u8>> {
        crate::bundle::for_tenant(&self.store, &self.issuer, &self.config.bundle, &self.config.brokers, tenant).await
    }

    /// The connectivity self-test.
    pub async fn check(&self, tenant: TenantId) -> Result<CheckResult> {
        crate::kafka::check::run(&self.store, &self.issuer, &self.checks, &self.config.brokers, tenant).await
    }

    /// The live view of the Streaming tab.
    pub async fn live_view(&self, tenant: TenantId) -> Result<LiveView> {
        let row = crate::tenants::get(&self.store, tenant).await?;
        crate::kafka::live::view(self.sampler.as_ref(), tenant, row.live_tail_enabled).await
    }
}
