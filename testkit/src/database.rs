//! Which database the in-process tests run on. `ops/test.sh` runs them twice: on SQLite (the
//! embedded default), then inside `pg_virtualenv` (a throwaway PostgreSQL cluster from Debian's
//! `postgresql`, with `PGHOST`/`PGPORT`/`PGUSER`/`PGPASSWORD` set) with
//! `OUTFLOW_TEST_DATABASE=postgres`. Every app then gets a database of its own on that cluster.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use outflow::AppState;

use crate::process::run_ok;

/// Whether this run uses PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("OUTFLOW_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// A KEK for tests (PostgreSQL requires one to be configured).
pub const TEST_KEK: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The URL of a new, empty database: a SQLite file in `dir`, or a fresh PostgreSQL database.
pub fn fresh_database_url(dir: &Path) -> String {
    if !on_postgres() {
        return format!("sqlite://{}/outflow.db", dir.display());
    }
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!("outflow_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    run_ok("createdb", &[&name], Path::new("/"));
    let env = |k: &str, default: &str| std::env::var(k).unwrap_or_else(|_| default.to_owned());
    format!(
        "postgres://{}:{}@{}:{}/{name}",
        env("PGUSER", "postgres"),
        env("PGPASSWORD", ""),
        env("PGHOST", "localhost"),
        env("PGPORT", "5432")
    )
}

/// Every file that holds the app's stored data: the data dir, and on PostgreSQL the database's
/// files in the cluster (after a checkpoint, so nothing waits in memory only).
pub async fn storage_files(state: &AppState, data_dir: &Path) -> Vec<PathBuf> {
    let mut files = walk(data_dir);
    if on_postgres() {
        let pool = state.store.pool();
        sqlx_exec(pool, "checkpoint").await;
        let (dir,): (String,) =
            sqlx::query_as("select current_setting('data_directory')").fetch_one(pool).await.unwrap();
        let (oid,): (String,) = sqlx::query_as("select oid::text from pg_database where datname = current_database()")
            .fetch_one(pool)
            .await
            .unwrap();
        // The database's own files; the WAL is shared by every test database of the cluster
        // and holds what the checkpoint just wrote to these files.
        files.extend(walk(&Path::new(&dir).join("base").join(oid)));
    } else {
        sqlx_exec(state.store.pool(), "pragma wal_checkpoint(truncate)").await;
    }
    files
}

async fn sqlx_exec(pool: &sqlx::AnyPool, sql: &'static str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
