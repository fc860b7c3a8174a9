//! The store: every SQL statement of outflow, one function per domain transaction. Statements
//! are written in SQL that PostgreSQL also accepts (`$1` placeholders, `true`/`false`,
//! `on conflict`, no `collate nocase`); the SQLite locking idioms (a write first, to take the
//! write lock before reading what the write depends on) stay inside these functions.
//!
//! Functions that commit a change raise the matching [`Signals`] after the commit, so no caller
//! has to remember to wake the reconciler or the firewall agents.

mod connect;

pub mod alert_channels;
pub mod alert_deliveries;
pub mod alerts;
pub mod audit;
pub mod ca;
pub mod credentials;
pub mod firewall;
pub mod lease;
pub mod login;
pub mod metrics;
pub mod notify;
pub mod quotas;
pub mod reconcile;
pub mod replicas;
pub mod request_log;
pub mod sealed;
pub mod tenants;
pub mod tokens;
pub mod usage;
pub mod users;

use std::sync::Arc;

use sqlx::AnyPool;

pub use connect::{Backend, private_dir};

use crate::signals::Signals;

/// The lease whose holder runs the reconciler (fences its status writes).
pub const RECONCILER_LEASE: &str = "reconciler";

/// The database and the signals its commits raise.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// For connections outside the pool (the PostgreSQL notification listener).
    url: Arc<str>,
    /// This process among the replicas sharing the database: host, pid and a random part.
    replica: Arc<str>,
    signals: Arc<Signals>,
}

impl Store {
    /// Opens (creating) the database at `url` and applies the migrations.
    pub async fn open(url: &str, signals: Arc<Signals>) -> anyhow::Result<Self> {
        let (pool, backend) = connect::connect(url).await?;
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        let host = if host.is_empty() { "outflow".to_owned() } else { host };
        let replica = format!("{host}-{}-{}", std::process::id(), crate::secret::random_password(6));
        Ok(Self { pool, backend, url: url.into(), replica: replica.into(), signals })
    }

    /// The signals raised after commits (and read by the reconciler and the agents' polls).
    pub fn signals(&self) -> &Arc<Signals> {
        &self.signals
    }

    /// The connection pool, for tests and diagnostics that read rows directly.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// This process's replica id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// A boolean as either backend returns it: PostgreSQL's `boolean`, SQLite's integer 0/1 (the
/// `Any` driver maps values by their runtime type, and SQLite has no boolean type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flag(pub bool);

impl From<Flag> for bool {
    fn from(f: Flag) -> bool {
        f.0
    }
}

impl sqlx::Type<sqlx::Any> for Flag {
    fn type_info() -> sqlx::any::AnyTypeInfo {
        <bool as sqlx::Type<sqlx::Any>>::type_info()
    }

    fn compatible(_: &sqlx::any::AnyTypeInfo) -> bool {
        true
    }
}

impl<'r> sqlx::Decode<'r, sqlx::Any> for Flag {
    fn decode(value: sqlx::any::AnyValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        match <bool as sqlx::Decode<sqlx::Any>>::decode(value.clone()) {
            Ok(b) => Ok(Flag(b)),
            Err(_) => Ok(Flag(<i64 as sqlx::Decode<sqlx::Any>>::decode(value)? != 0)),
        }
    }
}

/// A transaction whose statements all read one snapshot: `repeatable read` on PostgreSQL (whose
/// default takes a snapshot per statement); SQLite's read transactions already do.
async fn begin_snapshot(store: &Store) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
    let mut tx = store.pool.begin().await?;
    if store.backend == Backend::Postgres {
        sqlx::query("set transaction isolation level repeatable read").execute(&mut *tx).await?;
    }
    Ok(tx)
}

/// Whether a database error is a unique-constraint violation.
fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Whether a database error is a foreign-key violation.
fn foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}
