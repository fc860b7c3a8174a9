//! Allowlist entries, the one global allowlist version every change bumps in its transaction
//! (an agent that applied version v enforces exactly the entries that existed at v), and what
//! each broker's agent reported.

use sqlx::{Any, AnyConnection, FromRow, Transaction};

use super::notify::{self, Notice};
use super::{Flag, Store, audit};
use crate::clock::now;
use crate::error::Result;
use crate::tenants::TenantId;

/// A stored entry with how many brokers enforce it.
#[derive(Debug, Clone, FromRow)]
pub struct EntryRow {
    pub id: i64,
    pub cidr: String,
    pub note: String,
    pub added_version: i64,
    pub created_at: i64,
    /// Brokers whose reported version is at least `added_version`.
    pub applied_on: i64,
}

/// A tenant's entries, the number of known brokers, and the version, read together.
#[derive(Debug, Clone)]
pub struct Listing {
    pub entries: Vec<EntryRow>,
    pub brokers: i64,
    pub version: i64,
}

pub(super) async fn version_in(conn: &mut AnyConnection) -> Result<i64> {
    let (v,): (i64,) = sqlx::query_as("select version from allowlist_version where id = 1").fetch_one(conn).await?;
    Ok(v)
}

/// The current global allowlist version.
pub async fn version(store: &Store) -> Result<i64> {
    version_in(&mut *store.pool.acquire().await?).await
}

async fn tenant_exists(conn: &mut AnyConnection, tenant: TenantId) -> Result<bool> {
    let (exists,): (Flag,) = sqlx::query_as("select exists (select 1 from tenants where id = $1)")
        .bind(tenant.get())
        .fetch_one(conn)
        .await?;
    Ok(exists.0)
}

async fn listing_in(conn: &mut AnyConnection, tenant: TenantId) -> Result<Listing> {
    let entries = sqlx::query_as(
        "select e.id, e.cidr, e.note, e.added_version, e.created_at, \
           (select count(*) from firewall_agents a where a.applied_version >= e.added_version) as applied_on \
         from allowlist_entries e where e.tenant_id = $1 order by e.id",
    )
    .bind(tenant.get())
    .fetch_all(&mut *conn)
    .await?;
    let (brokers,): (i64,) = sqlx::query_as("select count(*) from firewall_agents").fetch_one(&mut *conn).await?;
    Ok(Listing { entries, brokers, version: version_in(conn).await? })
}

/// A tenant's allowlist; `None` when the tenant does not exist.
pub async fn listing(store: &Store, tenant: TenantId) -> Result<Option<Listing>> {
    let mut tx = super::begin_snapshot(store).await?;
    if !tenant_exists(&mut tx, tenant).await? {
        return Ok(None);
    }
    let listing = listing_in(&mut tx, tenant).await?;
    tx.commit().await?;
    Ok(Some(listing))
}

/// Starts a change: the version bump is the first statement, so the transaction takes SQLite's
/// write lock at once and concurrent changes serialize instead of failing to upgrade a read lock.
/// A change that turns out to be a no-op rolls the bump back.
async fn begin_change(store: &Store) -> Result<(Transaction<'static, Any>, i64)> {
    let mut tx = store.pool.begin().await?;
    let (v,): (i64,) =
        sqlx::query_as("update allowlist_version set version = version + 1 where id = 1 returning version")
            .fetch_one(&mut *tx)
            .await?;
    Ok((tx, v))
}

/// Commits a change that moved the version to `v`, then wakes the agents (of every replica).
async fn commit_change(store: &Store, mut tx: Transaction<'static, Any>, v: i64) -> Result<()> {
    notify::send(&mut tx, store.backend, Notice::Allowlist(v)).await?;
    tx.commit().await?;
    store.signals.allowlist_committed(v);
    Ok(())
}

/// What a change found.
#[derive(Debug, Clone)]
pub enum Change {
    NoTenant,
    /// Adding: the tenant has `max_entries` already. Removing: no such entry.
    Refused,
    /// The listing after the change; `changed` is false for an idempotent repeat (nothing was
    /// written and the version did not move). `id` is the entry added or found, when adding.
    Done {
        listing: Listing,
        changed: bool,
        id: Option<i64>,
    },
}

/// Adds one entry (`cidr` canonical); adding an address already listed changes nothing.
pub async fn add(store: &Store, tenant: TenantId, cidr: &str, note: &str, max_entries: usize) -> Result<Change> {
    let (mut tx, v) = begin_change(store).await?;
    if !tenant_exists(&mut tx, tenant).await? {
        return Ok(Change::NoTenant);
    }
    let existing: Option<(i64,)> =
        sqlx::query_as("select id from allowlist_entries where tenant_id = $1 and cidr = $2")
            .bind(tenant.get())
            .bind(cidr)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some((id,)) = existing {
        let mut listing = listing_in(&mut tx, tenant).await?;
        // Nothing changed: the version must not move, so the entry is written on its own.
        tx.rollback().await?;
        listing.version = v - 1;
        audit::stage_read(store, Some(tenant.get()), &format!("{cidr} already listed")).await?;
        return Ok(Change::Done { listing, changed: false, id: Some(id) });
    }
    let (n,): (i64,) = sqlx::query_as("select count(*) from allowlist_entries where tenant_id = $1")
        .bind(tenant.get())
        .fetch_one(&mut *tx)
        .await?;
    if usize::try_from(n).unwrap_or(usize::MAX) >= max_entries {
        return Ok(Change::Refused);
    }
    let (id,): (i64,) = sqlx::query_as(
        "insert into allowlist_entries (tenant_id, cidr, note, added_version, created_at) \
         values ($1, $2, $3, $4, $5) returning id",
    )
    .bind(tenant.get())
    .bind(cidr)
    .bind(note)
    .bind(v)
    .bind(now())
    .fetch_one(&mut *tx)
    .await?;
    let listing = listing_in(&mut tx, tenant).await?;
    audit::stage(&mut tx, Some(tenant.get()), &format!("{cidr} added, version {v}")).await?;
    commit_change(store, tx, v).await?;
    Ok(Change::Done { listing, changed: true, id: Some(id) })
}

/// Replaces a tenant's whole list with `entries` (canonical cidr, note). Entries kept keep their
/// id, note and `added_version` (brokers already enforce them); the version moves only when the
/// set of addresses changes.
pub async fn replace(store: &Store, tenant: TenantId, entries: &[(String, String)]) -> Result<Change> {
    let (mut tx, v) = begin_change(store).await?;
    if !tenant_exists(&mut tx, tenant).await? {
        return Ok(Change::NoTenant);
    }
    let current: Vec<(String,)> = sqlx::query_as("select cidr from allowlist_entries where tenant_id = $1")
        .bind(tenant.get())
        .fetch_all(&mut *tx)
        .await?;
    let mut removed = 0;
    for (cidr,) in &current {
        if !entries.iter().any(|(c, _)| c == cidr) {
            sqlx::query("delete from allowlist_entries where tenant_id = $1 and cidr = $2")
                .bind(tenant.get())
                .bind(cidr)
                .execute(&mut *tx)
                .await?;
            removed += 1;
        }
    }
    let mut added = 0;
    for (cidr, note) in entries {
        if current.iter().any(|(c,)| c == cidr) {
            continue;
        }
        sqlx::query(
            "insert into allowlist_entries (tenant_id, cidr, note, added_version, created_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(tenant.get())
        .bind(cidr)
        .bind(note)
        .bind(v)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        added += 1;
    }
    let mut listing = listing_in(&mut tx, tenant).await?;
    if added + removed == 0 {
        tx.rollback().await?;
        listing.version = v - 1;
        audit::stage_read(store, Some(tenant.get()), "unchanged").await?;
        return Ok(Change::Done { listing, changed: false, id: None });
    }
    let detail = format!("{added} added, {removed} removed, version {v}");
    audit::stage(&mut tx, Some(tenant.get()), &detail).await?;
    commit_change(store, tx, v).await?;
    Ok(Change::Done { listing, changed: true, id: None })
}

/// The entry to remove: by id or by canonical cidr.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Id(i64),
    Cidr(&'a str),
}

/// Removes one entry.
pub async fn remove(store: &Store, tenant: TenantId, target: Target<'_>) -> Result<Change> {
    let (mut tx, v) = begin_change(store).await?;
    if !tenant_exists(&mut tx, tenant).await? {
        return Ok(Change::NoTenant);
    }
    let deleted = match target {
        Target::Id(id) => {
            sqlx::query("delete from allowlist_entries where tenant_id = $1 and id = $2").bind(tenant.get()).bind(id)
        }
        Target::Cidr(cidr) => sqlx::query("delete from allowlist_entries where tenant_id = $1 and cidr = $2")
            .bind(tenant.get())
            .bind(cidr),
    }
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if deleted == 0 {
        return Ok(Change::Refused);
    }
    let listing = listing_in(&mut tx, tenant).await?;
    audit::stage(&mut tx, Some(tenant.get()), &format!("version {v}")).await?;
    commit_change(store, tx, v).await?;
    Ok(Change::Done { listing, changed: true, id: None })
}

/// Every tenant's entries together, what each broker enforces, at one consistent version.
pub async fn snapshot(store: &Store) -> Result<(i64, Vec<String>)> {
    let mut tx = super::begin_snapshot(store).await?;
    let version = version_in(&mut tx).await?;
    let rows: Vec<(String,)> =
        sqlx::query_as("select distinct cidr from allowlist_entries order by cidr").fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok((version, rows.into_iter().map(|(c,)| c).collect()))
}

/// An agent's report to record.
#[derive(Debug, Clone)]
pub struct AgentReport<'a> {
    pub broker: &'a str,
    pub version: i64,
    pub entries: i64,
    pub error: Option<&'a str>,
    pub token_name: &'a str,
}

/// Records a report unless it claims a version never published: then `Err(current version)`.
pub async fn record_report(store: &Store, report: &AgentReport<'_>) -> Result<Result<(), i64>> {
    let mut tx = store.pool.begin().await?;
    // One statement: the version check and the write see the same version.
    let written = sqlx::query(
        "insert into firewall_agents (broker_id, applied_version, applied_entries, last_error, last_contact_at, token_name) \
         select $1, $2, $3, $4, $5, $6 where $2 <= (select version from allowlist_version where id = 1) \
         on conflict (broker_id) do update set applied_version = excluded.applied_version, \
           applied_entries = excluded.applied_entries, last_error = excluded.last_error, \
           last_contact_at = excluded.last_contact_at, token_name = excluded.token_name",
    )
    .bind(report.broker)
    .bind(report.version)
    .bind(report.entries)
    .bind(report.error)
    .bind(now())
    .bind(report.token_name)
    .execute(&mut *tx)
    .await?;
    if written.rows_affected() == 0 {
        let current = version_in(&mut tx).await?;
        return Ok(Err(current));
    }
    let detail = format!("{} applied version {}", report.broker, report.version);
    audit::stage(&mut tx, None, &detail).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// Forgets a broker; `false` when none with that id has reported.
pub async fn forget_broker(store: &Store, broker: &str) -> Result<bool> {
    let mut tx = store.pool.begin().await?;
    let deleted =
        sqlx::query("delete from firewall_agents where broker_id = $1").bind(broker).execute(&mut *tx).await?;
    if deleted.rows_affected() == 0 {
        return Ok(false);
    }
    audit::stage(&mut tx, None, broker).await?;
    tx.commit().await?;
    Ok(true)
}

#[derive(Debug, Clone, FromRow)]
pub struct BrokerRow {
    pub broker_id: String,
    pub applied_version: i64,
    pub applied_entries: i64,
    pub last_error: Option<String>,
    pub last_contact_at: i64,
    pub token_name: String,
}

/// Every broker that reported, by id.
pub async fn brokers(store: &Store) -> Result<Vec<BrokerRow>> {
    Ok(sqlx::query_as(
        "select broker_id, applied_version, applied_entries, last_error, last_contact_at, token_name \
         from firewall_agents order by broker_id",
    )
    .fetch_all(&store.pool)
    .await?)
}
