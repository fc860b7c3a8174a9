//! The store: every SQL statement of outflow, one function per domain transaction. Statements
//! are written in SQL that PostgreSQL also accepts (`$1` placeholders, `true`/`false`,
//! `on conflict`, no `collate nocase`); the SQLite locking idioms (a write first, to take the
//! write lock before reading what the write depends on) stay inside these functions.
//!
//! Functions that commit a change raise the matching [`Signals`] after the commit, so no caller
//! has to remember to wake the reconciler or the firewall agents.

mod connect;

pub mod audit;
pub mod ca;
pub mod credentials;
pub mod firewall;
pub mod metrics;
pub mod reconcile;
pub mod tenants;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use sqlx::SqlitePool;

pub use connect::private_dir;

use crate::signals::Signals;

/// The database and the signals its commits raise.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    signals: Arc<Signals>,
}

impl Store {
    /// Opens (creating) the database at `url` and applies the migrations.
    pub async fn open(url: &str, signals: Arc<Signals>) -> anyhow::Result<Self> {
        Ok(Self { pool: connect::connect(url).await?, signals })
    }

    /// The signals raised after commits (and read by the reconciler and the agents' polls).
    pub fn signals(&self) -> &Arc<Signals> {
        &self.signals
    }

    /// The connection pool, for tests and diagnostics that read rows directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Whether a database error is a unique-constraint violation.
fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Whether a database error is a foreign-key violation.
fn foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}
