//! Opening the database: SQLite (the embedded default) or PostgreSQL, chosen by the URL; each
//! backend has its own migrations with the same versions, applied at start.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

/// Creates the data directory readable by its owner only (0700), and tightens an existing one
/// that others could read: it holds the database with password hashes and sealed keys.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data dir {}", dir.display()))?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), mode = format!("{mode:o}"), "data dir was readable by others; setting 0700");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Makes the database file (and its WAL and shared-memory files, if present) owner-only.
/// SQLite creates the WAL and shm files with the database file's mode, so creating the file
/// 0600 before SQLite opens it keeps all three private.
fn private_database_files(db: &Path) -> anyhow::Result<()> {
    if !db.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(db)
            .with_context(|| format!("creating {}", db.display()))?;
    }
    for suffix in ["", "-wal", "-shm"] {
        let path = std::path::PathBuf::from(format!("{}{suffix}", db.display()));
        if path.exists() {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("restricting {}", path.display()))?;
        }
    }
    Ok(())
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            anyhow::bail!("unsupported database URL {url:?}: use sqlite://PATH or postgres://…")
        }
    }
}

/// Opens the pool every store function uses, after applying the backend's migrations.
pub(super) async fn connect(url: &str) -> anyhow::Result<(AnyPool, Backend)> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(url)?;
    let options = AnyPoolOptions::new().max_connections(8);
    let pool = match backend {
        Backend::Sqlite => {
            prepare_sqlite(url).await?;
            options
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        // Per connection: what the embedded default has always run with.
                        // Concurrent writers wait for the lock instead of failing.
                        sqlx::raw_sql(
                            "pragma foreign_keys = on; pragma busy_timeout = 10000; pragma synchronous = normal;",
                        )
                        .execute(conn)
                        .await?;
                        Ok(())
                    })
                })
                .connect(url)
                .await
        }
        Backend::Postgres => options.connect(url).await,
    }
    .with_context(|| format!("opening database {}", redacted(url)))?;
    let migrator = match backend {
        Backend::Sqlite => sqlx::migrate!("../migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("../migrations/postgres"),
    };
    migrator.run(&pool).await.context("applying database migrations")?;
    Ok((pool, backend))
}

/// Creates the SQLite file owner-only and in WAL mode (which the file keeps).
async fn prepare_sqlite(url: &str) -> anyhow::Result<()> {
    let options = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("database URL {url:?}"))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let file = options.get_filename();
    if file != Path::new(":memory:") {
        private_database_files(file)?;
    }
    let conn = options.connect().await.with_context(|| format!("opening database {url}"))?;
    conn.close().await?;
    Ok(())
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) if rest.contains(':') && at > scheme.len() => {
            let user = rest.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***{}", &url[at..])
        }
        _ => url.to_owned(),
    }
}
