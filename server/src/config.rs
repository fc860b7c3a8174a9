//! Layered configuration: embedded defaults, then an optional TOML file, then `OUTFLOW_*`
//! environment variables, then command-line flags (applied by the CLI).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::bundle::AccessLogFormat;
use crate::pki::KeyAlgorithm;

/// Everything `outflow serve` and the admin commands need. Every field has a default, so
/// `outflow serve` runs with no file and no environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds (`OUTFLOW_LISTEN`).
    pub listen: SocketAddr,
    /// Directory for the SQLite database and the generated key-encryption key (`OUTFLOW_DATA_DIR`).
    pub data_dir: PathBuf,
    /// sqlx database URL; defaults to `sqlite://<data_dir>/outflow.db` (`OUTFLOW_DATABASE_URL`).
    pub database_url: Option<String>,
    /// Base64 of the 32-byte key that encrypts secrets at rest (`OUTFLOW_KEK`). When absent, one
    /// is generated into `<data_dir>/kek.key` with a warning: fine for a demo, not for production.
    pub kek: Option<String>,
    /// The KEK being rotated away from (`OUTFLOW_KEK_PREVIOUS`): values sealed with it still
    /// open, new ones are sealed with `kek`, and `outflow kek rotate` re-seals the old ones.
    pub kek_previous: Option<String>,
    /// Public bootstrap brokers written into every bundle, `host:port` (`OUTFLOW_BROKERS`, comma separated).
    pub brokers: Vec<String>,
    /// Set the `Secure` flag on the dashboard's cookies (`OUTFLOW_COOKIE_SECURE`); on when served over TLS.
    pub cookie_secure: bool,
    /// Dashboard session lifetime in minutes (`OUTFLOW_SESSION_MINUTES`).
    pub session_minutes: i64,
    /// Base URL users reach the dashboard at, for invitation links (`OUTFLOW_PUBLIC_URL`);
    /// defaults to `http://<listen>`.
    pub public_url: Option<String>,
    pub http: HttpConfig,
    /// Connectivity checks running at once, across tenants (`OUTFLOW_MAX_CONCURRENT_CHECKS`); a
    /// tenant runs one at a time. Each holds a Kafka client (a few threads) for up to 8 s.
    pub max_concurrent_checks: usize,
    pub login: LoginConfig,
    pub ca: CaConfig,
    pub credentials: CredentialConfig,
    pub bundle: BundleConfig,
    pub kafka: KafkaConfig,
    pub firewall: FirewallConfig,
    pub alerts: AlertsConfig,
    pub usage: UsageConfig,
}

/// Usage metering (docs/usage.md): the worker on the replica holding the `usage` lease closes
/// finished hours and follows the tenants' groups' committed offsets.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// How often the worker runs and each replica adds its own reads of tenant topics
    /// (`OUTFLOW_USAGE_INTERVAL_SECS`).
    pub interval_secs: u64,
    /// An hour is closed this long after it ended, so reports sent just before the hour ended
    /// land in it first (`OUTFLOW_USAGE_CLOSE_GRACE_SECS`).
    pub close_grace_secs: u64,
    /// Longest range the usage routes answer, in days (`OUTFLOW_USAGE_MAX_RANGE_DAYS`).
    pub max_range_days: i64,
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self { interval_secs: 60, close_grace_secs: 120, max_range_days: 366 }
    }
}

/// Alert evaluation (one evaluator per cluster, on the replica holding the `alerts` lease),
/// alert channels and their delivery.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// How often rules are evaluated, in milliseconds (`OUTFLOW_ALERTS_EVALUATE_INTERVAL_MS`).
    pub evaluate_interval_ms: u64,
    /// Instances of one rule that fire or resolve within this many seconds of the first go out
    /// as one message (`OUTFLOW_ALERTS_GROUP_WAIT_SECS`).
    pub group_wait_secs: u64,
    /// Networks (CIDRs) alert channels may send to although they are not public, e.g.
    /// `127.0.0.1/32` for a local receiver; plain `http` is accepted for them
    /// (`OUTFLOW_ALERTS_ALLOW_DESTINATIONS`, comma-separated). Empty: https to public addresses only.
    pub allow_destinations: Vec<String>,
    /// Retry and timeout timings; not read from files or the environment (tests shorten them).
    #[serde(skip)]
    pub delivery: crate::alerts::deliver::Tuning,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            evaluate_interval_ms: 5000,
            group_wait_secs: 30,
            allow_destinations: Vec::new(),
            delivery: crate::alerts::deliver::Tuning::default(),
        }
    }
}

impl AlertsConfig {
    /// The allowed networks (checked when the configuration was loaded).
    pub fn allowed_destinations(&self) -> Vec<crate::firewall::Cidr> {
        self.allow_destinations.iter().filter_map(|c| c.parse().ok()).collect()
    }
}

/// Limits of the HTTP server against slow or greedy clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// A request's headers must arrive within this time (`OUTFLOW_HTTP_HEADER_TIMEOUT_SECS`).
    pub header_timeout_secs: u64,
    /// A request's body must arrive within this time (`OUTFLOW_HTTP_BODY_TIMEOUT_SECS`).
    pub body_timeout_secs: u64,
    /// Largest request body accepted (`OUTFLOW_HTTP_MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Connections served at once; more wait to be accepted (`OUTFLOW_HTTP_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For` names the client, for the audit log and
    /// the sign-in limits (`OUTFLOW_TRUSTED_PROXIES`, comma-separated). Empty: the TCP peer is
    /// the client and the header is ignored.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_body_bytes: 2 * 1024 * 1024,
            max_connections: 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

/// IP allowlists and the brokers' firewall agents.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirewallConfig {
    /// Entries per tenant (`OUTFLOW_FIREWALL_MAX_ENTRIES`).
    pub max_entries_per_tenant: usize,
    /// Broadest IPv4 prefix a tenant may add, /16 by default (`OUTFLOW_FIREWALL_MIN_PREFIX_V4`);
    /// /0 is never accepted.
    pub min_prefix_v4: u8,
    /// Broadest IPv6 prefix, /32 by default (`OUTFLOW_FIREWALL_MIN_PREFIX_V6`).
    pub min_prefix_v6: u8,
    /// How long an agent's poll is held when nothing changed (`OUTFLOW_FIREWALL_LONG_POLL_SECS`).
    pub long_poll_secs: u64,
    /// An agent silent for longer is shown as stale (`OUTFLOW_FIREWALL_STALE_AFTER_SECS`).
    pub stale_after_secs: u64,
}

impl Default for FirewallConfig {
    fn default() -> Self {
        Self {
            max_entries_per_tenant: 100,
            min_prefix_v4: 16,
            min_prefix_v6: 32,
            long_poll_secs: 30,
            stale_after_secs: 120,
        }
    }
}

/// outflow's own connection to the cluster (the internal listener), used by the reconciler.
/// Without `bootstrap` nothing is provisioned and tenants stay `pending`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Internal bootstrap servers (`OUTFLOW_KAFKA_BOOTSTRAP`).
    pub bootstrap: Option<String>,
    /// CA PEM that signed the brokers' certificates (`OUTFLOW_KAFKA_CA`); setting it enables TLS.
    pub ca: Option<PathBuf>,
    /// outflow's client certificate and key, PEM (`OUTFLOW_KAFKA_CERT`, `OUTFLOW_KAFKA_KEY`).
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Replication factor of new topics; -1 uses the broker's default (`OUTFLOW_KAFKA_REPLICATION_FACTOR`).
    pub replication_factor: i32,
    /// Delete a tenant's topics when streaming is deactivated or the tenant deleted (`OUTFLOW_KAFKA_DELETE_TOPICS`).
    pub delete_topics_on_deactivate: bool,
    /// Timeout of each admin request (`OUTFLOW_KAFKA_REQUEST_TIMEOUT_MS`).
    pub request_timeout_ms: u64,
    /// Seconds between passes when nothing changes (`OUTFLOW_KAFKA_RECONCILE_INTERVAL_SECS`).
    pub reconcile_interval_secs: u64,
    /// The brokers' `message.max.bytes` (`OUTFLOW_KAFKA_MAX_MESSAGE_BYTES`): the largest batch a
    /// consumer can be handed, which sets the lowest `consumer_byte_rate` quota accepted.
    pub max_message_bytes: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            bootstrap: None,
            ca: None,
            cert: None,
            key: None,
            replication_factor: -1,
            delete_topics_on_deactivate: false,
            request_timeout_ms: 5000,
            reconcile_interval_secs: 10,
            max_message_bytes: 1_048_588,
        }
    }
}

/// Sign-in rate limits: failed attempts allowed per account and per source address within
/// the window before sign-in is refused for the rest of it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// `OUTFLOW_LOGIN_MAX_FAILURES_PER_ACCOUNT`
    pub max_failures_per_account: usize,
    /// `OUTFLOW_LOGIN_MAX_FAILURES_PER_ADDRESS`
    pub max_failures_per_address: usize,
    /// `OUTFLOW_LOGIN_WINDOW_SECS`
    pub window_secs: u64,
    /// Password checks (argon2, ~19 MiB each) running at once; more are refused with 503
    /// (`OUTFLOW_LOGIN_MAX_CONCURRENT_HASHES`).
    pub max_concurrent_hashes: usize,
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_address: 20,
            window_secs: 15 * 60,
            max_concurrent_hashes: 4,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaConfig {
    /// CA common name; also the bundle's CA file name, `<name>.pem` (`OUTFLOW_CA_NAME`).
    pub name: String,
    /// Key algorithm for a CA created on first start (`OUTFLOW_CA_KEY_ALGORITHM`).
    pub key_algorithm: KeyAlgorithm,
    pub validity_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CredentialConfig {
    /// Client certificate lifetime (`OUTFLOW_CREDENTIAL_VALIDITY_DAYS`).
    pub validity_days: u32,
    /// Client key algorithm (`OUTFLOW_CREDENTIAL_KEY_ALGORITHM`).
    pub key_algorithm: KeyAlgorithm,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BundleConfig {
    /// Where the README tells Filebeat users to put the bundle files (`filebeat.yml` paths).
    pub filebeat_dir: String,
    /// Where the README tells Logstash users to put the bundle files (`kafka-logstash.conf` paths).
    pub logstash_dir: String,
    /// PBKDF2 iterations protecting the key PEM and the PKCS#12 files.
    pub pbkdf2_iterations: u32,
    /// The line format of the access logs in `c<N>`: what the bundle's Logstash grok parses
    /// and README.txt describes (`OUTFLOW_ACCESS_LOG_FORMAT`).
    pub access_log_format: AccessLogFormat,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            kek: None,
            kek_previous: None,
            brokers: vec!["localhost:9093".into()],
            cookie_secure: false,
            session_minutes: 12 * 60,
            public_url: None,
            http: HttpConfig::default(),
            max_concurrent_checks: 4,
            login: LoginConfig::default(),
            ca: CaConfig::default(),
            credentials: CredentialConfig::default(),
            bundle: BundleConfig::default(),
            kafka: KafkaConfig::default(),
            firewall: FirewallConfig::default(),
            alerts: AlertsConfig::default(),
            usage: UsageConfig::default(),
        }
    }
}

impl Default for CaConfig {
    fn default() -> Self {
        Self { name: "outflowCA".into(), key_algorithm: KeyAlgorithm::EcdsaP256, validity_days: 3650 }
    }
}

impl Default for CredentialConfig {
    fn default() -> Self {
        Self { validity_days: 365, key_algorithm: KeyAlgorithm::EcdsaP256 }
    }
}

impl Default for BundleConfig {
    fn default() -> Self {
        Self {
            filebeat_dir: "/etc/filebeat/outflow".into(),
            logstash_dir: "/etc/logstash/outflow".into(),
            pbkdf2_iterations: 10_000,
            access_log_format: AccessLogFormat::Cdn,
        }
    }
}

impl Config {
    /// Defaults, overlaid by `file` (if given), overlaid by the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = match file {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Applies `OUTFLOW_*` overrides read through `var` (injected so tests need not touch the
    /// process environment).
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn parse<T: std::str::FromStr>(name: &str, value: String) -> anyhow::Result<T>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e| anyhow::anyhow!("{name}={value:?}: {e}"))
        }
        if let Some(v) = var("OUTFLOW_LISTEN") {
            self.listen = parse("OUTFLOW_LISTEN", v)?;
        }
        if let Some(v) = var("OUTFLOW_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = var("OUTFLOW_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = var("OUTFLOW_KEK") {
            self.kek = Some(v);
        }
        if let Some(v) = var("OUTFLOW_KEK_PREVIOUS") {
            self.kek_previous = Some(v);
        }
        if let Some(v) = var("OUTFLOW_BROKERS") {
            self.brokers = v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
        }
        if let Some(v) = var("OUTFLOW_COOKIE_SECURE") {
            self.cookie_secure = parse("OUTFLOW_COOKIE_SECURE", v)?;
        }
        if let Some(v) = var("OUTFLOW_SESSION_MINUTES") {
            self.session_minutes = parse("OUTFLOW_SESSION_MINUTES", v)?;
        }
        if let Some(v) = var("OUTFLOW_PUBLIC_URL") {
            self.public_url = Some(v.trim_end_matches('/').to_owned()).filter(|v| !v.is_empty());
        }
        if let Some(v) = var("OUTFLOW_HTTP_HEADER_TIMEOUT_SECS") {
            self.http.header_timeout_secs = parse("OUTFLOW_HTTP_HEADER_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = var("OUTFLOW_HTTP_BODY_TIMEOUT_SECS") {
            self.http.body_timeout_secs = parse("OUTFLOW_HTTP_BODY_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = var("OUTFLOW_HTTP_MAX_BODY_BYTES") {
            self.http.max_body_bytes = parse("OUTFLOW_HTTP_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = var("OUTFLOW_HTTP_MAX_CONNECTIONS") {
            self.http.max_connections = parse("OUTFLOW_HTTP_MAX_CONNECTIONS", v)?;
        }
        if let Some(v) = var("OUTFLOW_TRUSTED_PROXIES") {
            self.http.trusted_proxies =
                v.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
        }
        if let Some(v) = var("OUTFLOW_ALERTS_ALLOW_DESTINATIONS") {
            self.alerts.allow_destinations =
                v.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned).collect();
        }
        if let Some(v) = var("OUTFLOW_MAX_CONCURRENT_CHECKS") {
            self.max_concurrent_checks = parse("OUTFLOW_MAX_CONCURRENT_CHECKS", v)?;
        }
        if let Some(v) = var("OUTFLOW_LOGIN_MAX_FAILURES_PER_ACCOUNT") {
            self.login.max_failures_per_account = parse("OUTFLOW_LOGIN_MAX_FAILURES_PER_ACCOUNT", v)?;
        }
        if let Some(v) = var("OUTFLOW_LOGIN_MAX_FAILURES_PER_ADDRESS") {
            self.login.max_failures_per_address = parse("OUTFLOW_LOGIN_MAX_FAILURES_PER_ADDRESS", v)?;
        }
        if let Some(v) = var("OUTFLOW_LOGIN_WINDOW_SECS") {
            self.login.window_secs = parse("OUTFLOW_LOGIN_WINDOW_SECS", v)?;
        }
        if let Some(v) = var("OUTFLOW_LOGIN_MAX_CONCURRENT_HASHES") {
            self.login.max_concurrent_hashes = parse("OUTFLOW_LOGIN_MAX_CONCURRENT_HASHES", v)?;
        }
        if let Some(v) = var("OUTFLOW_CA_NAME") {
            self.ca.name = v;
        }
        if let Some(v) = var("OUTFLOW_CA_KEY_ALGORITHM") {
            self.ca.key_algorithm = parse("OUTFLOW_CA_KEY_ALGORITHM", v)?;
        }
        if let Some(v) = var("OUTFLOW_CREDENTIAL_VALIDITY_DAYS") {
            self.credentials.validity_days = parse("OUTFLOW_CREDENTIAL_VALIDITY_DAYS", v)?;
        }
        if let Some(v) = var("OUTFLOW_CREDENTIAL_KEY_ALGORITHM") {
            self.credentials.key_algorithm = parse("OUTFLOW_CREDENTIAL_KEY_ALGORITHM", v)?;
        }
        if let Some(v) = var("OUTFLOW_ACCESS_LOG_FORMAT") {
            self.bundle.access_log_format = parse("OUTFLOW_ACCESS_LOG_FORMAT", v)?;
        }
        if let Some(v) = var("OUTFLOW_KAFKA_BOOTSTRAP") {
            self.kafka.bootstrap = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = var("OUTFLOW_KAFKA_CA") {
            self.kafka.ca = Some(PathBuf::from(v));
        }
        if let Some(v) = var("OUTFLOW_KAFKA_CERT") {
            self.kafka.cert = Some(PathBuf::from(v));
        }
        if let Some(v) = var("OUTFLOW_KAFKA_KEY") {
            self.kafka.key = Some(PathBuf::from(v));
        }
        if let Some(v) = var("OUTFLOW_KAFKA_REPLICATION_FACTOR") {
            self.kafka.replication_factor = parse("OUTFLOW_KAFKA_REPLICATION_FACTOR", v)?;
        }
        if let Some(v) = var("OUTFLOW_KAFKA_DELETE_TOPICS") {
            self.kafka.delete_topics_on_deactivate = parse("OUTFLOW_KAFKA_DELETE_TOPICS", v)?;
        }
        if let Some(v) = var("OUTFLOW_KAFKA_REQUEST_TIMEOUT_MS") {
            self.kafka.request_timeout_ms = parse("OUTFLOW_KAFKA_REQUEST_TIMEOUT_MS", v)?;
        }
        if let Some(v) = var("OUTFLOW_KAFKA_RECONCILE_INTERVAL_SECS") {
            self.kafka.reconcile_interval_secs = parse("OUTFLOW_KAFKA_RECONCILE_INTERVAL_SECS", v)?;
        }
        if let Some(v) = var("OUTFLOW_KAFKA_MAX_MESSAGE_BYTES") {
            self.kafka.max_message_bytes = parse("OUTFLOW_KAFKA_MAX_MESSAGE_BYTES", v)?;
        }
        if let Some(v) = var("OUTFLOW_ALERTS_EVALUATE_INTERVAL_MS") {
            self.alerts.evaluate_interval_ms = parse("OUTFLOW_ALERTS_EVALUATE_INTERVAL_MS", v)?;
        }
        if let Some(v) = var("OUTFLOW_ALERTS_GROUP_WAIT_SECS") {
            self.alerts.group_wait_secs = parse("OUTFLOW_ALERTS_GROUP_WAIT_SECS", v)?;
        }
        if let Some(v) = var("OUTFLOW_FIREWALL_MAX_ENTRIES") {
            self.firewall.max_entries_per_tenant = parse("OUTFLOW_FIREWALL_MAX_ENTRIES", v)?;
        }
        if let Some(v) = var("OUTFLOW_FIREWALL_MIN_PREFIX_V4") {
            self.firewall.min_prefix_v4 = parse("OUTFLOW_FIREWALL_MIN_PREFIX_V4", v)?;
        }
        if let Some(v) = var("OUTFLOW_FIREWALL_MIN_PREFIX_V6") {
            self.firewall.min_prefix_v6 = parse("OUTFLOW_FIREWALL_MIN_PREFIX_V6", v)?;
        }
        if let Some(v) = var("OUTFLOW_FIREWALL_LONG_POLL_SECS") {
            self.firewall.long_poll_secs = parse("OUTFLOW_FIREWALL_LONG_POLL_SECS", v)?;
        }
        if let Some(v) = var("OUTFLOW_FIREWALL_STALE_AFTER_SECS") {
            self.firewall.stale_after_secs = parse("OUTFLOW_FIREWALL_STALE_AFTER_SECS", v)?;
        }
        if let Some(v) = var("OUTFLOW_USAGE_INTERVAL_SECS") {
            self.usage.interval_secs = parse("OUTFLOW_USAGE_INTERVAL_SECS", v)?;
        }
        if let Some(v) = var("OUTFLOW_USAGE_CLOSE_GRACE_SECS") {
            self.usage.close_grace_secs = parse("OUTFLOW_USAGE_CLOSE_GRACE_SECS", v)?;
        }
        if let Some(v) = var("OUTFLOW_USAGE_MAX_RANGE_DAYS") {
            self.usage.max_range_days = parse("OUTFLOW_USAGE_MAX_RANGE_DAYS", v)?;
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.usage.interval_secs == 0 {
            bail!("usage.interval_secs: must be at least 1");
        }
        if self.usage.max_range_days < 1 {
            bail!("usage.max_range_days: must be at least 1");
        }
        if self.brokers.is_empty() {
            bail!("brokers: at least one public broker address is required");
        }
        for broker in &self.brokers {
            let port_ok =
                broker.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                bail!("brokers: {broker:?} is not host:port");
            }
            // Broker addresses are written into every bundle file: plain host names and addresses only.
            if !broker.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']')) {
                bail!("brokers: {broker:?} may contain only letters, digits, '.', '-', '_', ':', '[' and ']'");
            }
        }
        for (key, dir) in
            [("bundle.filebeat_dir", &self.bundle.filebeat_dir), ("bundle.logstash_dir", &self.bundle.logstash_dir)]
        {
            let ok = !dir.is_empty()
                && dir.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | ':'));
            if !ok {
                bail!(
                    "{key}: {dir:?} may contain only letters, digits, '/', '.', '-', '_' and ':' (it is written into the bundle's configs)"
                );
            }
        }
        let name_ok = !self.ca.name.is_empty()
            && self.ca.name.len() <= 64
            && self.ca.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
        if !name_ok {
            bail!("ca.name: use 1-64 letters, digits, '-', '_' or '.' (it becomes a file name in the bundle)");
        }
        let http = &self.http;
        if http.header_timeout_secs == 0
            || http.body_timeout_secs == 0
            || http.max_body_bytes == 0
            || http.max_connections == 0
        {
            bail!("http: timeouts, body size and connection cap must be positive");
        }
        for proxy in &http.trusted_proxies {
            proxy.parse::<crate::firewall::Cidr>().map_err(|e| anyhow::anyhow!("http.trusted_proxies: {e}"))?;
        }
        for cidr in &self.alerts.allow_destinations {
            cidr.parse::<crate::firewall::Cidr>().map_err(|e| anyhow::anyhow!("alerts.allow_destinations: {e}"))?;
        }
        if self.credentials.validity_days == 0 || self.ca.validity_days == 0 {
            bail!("validity_days must be at least 1");
        }
        if self.kafka.cert.is_some() != self.kafka.key.is_some() {
            bail!("kafka.cert and kafka.key must be set together");
        }
        if self.kafka.reconcile_interval_secs == 0 || self.kafka.request_timeout_ms == 0 {
            bail!("kafka.reconcile_interval_secs and kafka.request_timeout_ms must be positive");
        }
        if self.login.max_failures_per_account == 0
            || self.login.max_failures_per_address == 0
            || self.login.window_secs == 0
            || self.login.max_concurrent_hashes == 0
        {
            bail!("login limits and window must be positive");
        }
        let fw = &self.firewall;
        if !(1..=32).contains(&fw.min_prefix_v4) || !(1..=128).contains(&fw.min_prefix_v6) {
            bail!("firewall.min_prefix_v4 must be 1-32 and min_prefix_v6 1-128 (/0 is never allowed)");
        }
        if fw.max_entries_per_tenant == 0 || fw.stale_after_secs == 0 {
            bail!("firewall.max_entries_per_tenant and firewall.stale_after_secs must be positive");
        }
        // Agents time out a poll after 150 s.
        if !(1..=120).contains(&fw.long_poll_secs) {
            bail!("firewall.long_poll_secs must be 1-120");
        }
        if self.max_concurrent_checks == 0 {
            bail!("max_concurrent_checks must be at least 1");
        }
        if self.session_minutes <= 0 {
            bail!("session_minutes must be positive");
        }
        Ok(())
    }

    /// Where users reach the dashboard, without a trailing slash.
    pub fn public_url(&self) -> String {
        self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.listen))
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("outflow.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_file_values() {
        let mut config: Config = toml::from_str("listen = \"127.0.0.1:9000\"\nbrokers = [\"a:9093\"]\n").unwrap();
        config
            .apply_env(|name| match name {
                "OUTFLOW_LISTEN" => Some("0.0.0.0:8081".into()),
                "OUTFLOW_BROKERS" => Some("k1:9093, k2:9093".into()),
                "OUTFLOW_CA_KEY_ALGORITHM" => Some("rsa-3072".into()),
                "OUTFLOW_MAX_CONCURRENT_CHECKS" => Some("16".into()),
                "OUTFLOW_ACCESS_LOG_FORMAT" => Some("combined_extended".into()),
                "OUTFLOW_ALERTS_ALLOW_DESTINATIONS" => Some("127.0.0.1/32, ::1".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:8081");
        assert_eq!(config.brokers, ["k1:9093", "k2:9093"]);
        assert_eq!(config.ca.key_algorithm, KeyAlgorithm::Rsa3072);
        assert_eq!(config.max_concurrent_checks, 16);
        assert_eq!(config.bundle.access_log_format, AccessLogFormat::CombinedExtended);
        assert_eq!(config.alerts.allow_destinations, ["127.0.0.1/32", "::1"]);
        assert_eq!(config.alerts.allowed_destinations().len(), 2);
        config.validate().unwrap();
        config.alerts.allow_destinations = vec!["localhost".into()];
        assert!(config.validate().unwrap_err().to_string().contains("alerts.allow_destinations"));
    }

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let config = Config::default();
        config.validate().unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.database_url(), "sqlite://./data/outflow.db");
        assert_eq!(config.bundle.access_log_format, AccessLogFormat::Cdn);
    }

    #[test]
    fn unknown_access_log_formats_are_refused_naming_the_known_ones() {
        let config: Config = toml::from_str("[bundle]\naccess_log_format = \"combined_extended\"\n").unwrap();
        assert_eq!(config.bundle.access_log_format, AccessLogFormat::CombinedExtended);
        let err = toml::from_str::<Config>("[bundle]\naccess_log_format = \"apache\"\n").unwrap_err().to_string();
        assert!(err.contains("unknown access-log format \"apache\"; use one of cdn, combined_extended"), "{err}");
        let err = Config::default()
            .apply_env(|name| (name == "OUTFLOW_ACCESS_LOG_FORMAT").then(|| "CDN".into()))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "OUTFLOW_ACCESS_LOG_FORMAT=\"CDN\": unknown access-log format \"CDN\"; use one of cdn, combined_extended"
        );
    }

    #[test]
    fn rejects_unknown_keys_and_bad_brokers() {
        assert!(toml::from_str::<Config>("listne = \"x\"").is_err());
        let config = Config { brokers: vec!["no-port".into()], ..Config::default() };
        assert!(config.validate().is_err());
        assert!(Config { max_concurrent_checks: 0, ..Config::default() }.validate().is_err());
    }
}
