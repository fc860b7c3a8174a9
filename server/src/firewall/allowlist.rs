//! Tenants' IP allowlists: the `Cidr` type, the rules an entry must follow, and persistence.
//! Every change bumps the one global allowlist version in the same transaction, so an agent
//! that applied version v enforces exactly the entries that existed at v.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sqlx::{FromRow, SqliteConnection, SqliteExecutor, SqlitePool};
use utoipa::ToSchema;

use crate::config::FirewallConfig;
use crate::error::{Error, Result};
use crate::tenants::{self, TenantId, now, rfc3339};

/// An IPv4 or IPv6 network in canonical form: host bits are zero, and an IPv4-mapped IPv6
/// address (`::ffff:198.51.100.7`) is stored as the IPv4 address it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// The inclusive address range a [`Cidr`] covers, as integers (what nft interval sets hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Range {
    V4(u32, u32),
    V6(u128, u128),
}

impl FromStr for Cidr {
    type Err = String;

    /// Structural parsing only: an address, optionally `/prefix`. Host bits are cleared rather
    /// than refused (`198.51.100.7/24` is `198.51.100.0/24`). Policy lives in [`Cidr::parse`].
    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            format!("{text:?} is not an IPv4 or IPv6 address or CIDR (e.g. 203.0.113.7 or 2001:db8::/48)")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            // Digits only: `u8::from_str` would also take "+8".
            Some(p) => Some(p)
                .filter(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be a number from 0 to {max}"))?,
        };
        Ok(Self::new(addr, prefix))
    }
}

impl Cidr {
    /// Builds the canonical network of `addr/prefix` (`prefix` must fit the family).
    fn new(addr: IpAddr, prefix: u8) -> Self {
        if let IpAddr::V6(v6) = addr
            && let Some(v4) = v6.to_ipv4_mapped()
            && prefix >= 96
        {
            return Self::new(IpAddr::V4(v4), prefix - 96);
        }
        let addr = match addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from_bits(u32::from(a) & mask32(prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from_bits(u128::from(a) & mask128(prefix))),
        };
        Self { addr, prefix }
    }

    /// Parses user input under the operator's rules: never `/0`, and nothing broader than
    /// `min_prefix_v4`/`min_prefix_v6` (by default /16 and /32). `field` names the input in errors.
    pub fn parse(text: &str, rules: &FirewallConfig, field: &str) -> Result<Self, Error> {
        let cidr: Cidr = text.parse().map_err(|m: String| Error::invalid(field, m))?;
        let min = if cidr.is_ipv4() { rules.min_prefix_v4 } else { rules.min_prefix_v6 };
        if cidr.prefix == 0 {
            return Err(Error::invalid(field, format!("{cidr} would open the brokers to every address")));
        }
        if cidr.prefix < min {
            return Err(Error::invalid(
                field,
                format!("{cidr} is broader than /{min}; list your consumers' addresses or smaller networks"),
            ));
        }
        Ok(cidr)
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    pub fn range(&self) -> Range {
        match self.addr {
            IpAddr::V4(a) => {
                let start = u32::from(a);
                Range::V4(start, start | !mask32(self.prefix))
            }
            IpAddr::V6(a) => {
                let start = u128::from(a);
                Range::V6(start, start | !mask128(self.prefix))
            }
        }
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A free-text note on an entry: at most 200 characters, no control characters.
fn parse_note(note: Option<&str>, field: &str) -> Result<String, Error> {
    let note = note.unwrap_or("").trim();
    if note.chars().count() > 200 {
        return Err(Error::invalid(field, "note must be at most 200 characters"));
    }
    if note.chars().any(char::is_control) {
        return Err(Error::invalid(field, "note must not contain control characters"));
    }
    Ok(note.to_owned())
}

/// An entry as a client submits it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryInput {
    /// IPv4/IPv6 address or CIDR.
    #[schema(example = "203.0.113.7")]
    pub cidr: String,
    #[schema(example = "filebeat in Madrid")]
    pub note: Option<String>,
}

/// A validated entry, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub cidr: Cidr,
    pub note: String,
}

impl NewEntry {
    /// Validates one submitted entry; `path` prefixes the field names (`entries[2].`).
    pub fn parse(input: &EntryInput, rules: &FirewallConfig, path: &str) -> Result<Self, Error> {
        Ok(Self {
            cidr: Cidr::parse(&input.cidr, rules, &format!("{path}cidr"))?,
            note: parse_note(input.note.as_deref(), &format!("{path}note"))?,
        })
    }

    /// Validates a whole list for `PUT`: duplicates collapse (the first note wins) and the
    /// result must fit the per-tenant cap.
    pub fn parse_list(inputs: &[EntryInput], rules: &FirewallConfig) -> Result<Vec<Self>, Error> {
        let mut entries: Vec<NewEntry> = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let entry = Self::parse(input, rules, &format!("entries[{i}]."))?;
            if !entries.iter().any(|e| e.cidr == entry.cidr) {
                entries.push(entry);
            }
        }
        if entries.len() > rules.max_entries_per_tenant {
            return Err(Error::invalid(
                "entries",
                format!("at most {} entries per tenant, got {}", rules.max_entries_per_tenant, entries.len()),
            ));
        }
        Ok(entries)
    }
}

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

/// An entry as the API and dashboard show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = AllowlistEntry)]
pub struct EntryView {
    pub id: i64,
    #[schema(example = "203.0.113.7/32")]
    pub cidr: String,
    pub note: String,
    /// The allowlist version that added the entry.
    pub added_version: i64,
    pub created_at: String,
    /// Brokers that applied this entry (reported a version ≥ `added_version`).
    pub applied_on: i64,
    /// Brokers known to outflow.
    pub brokers: i64,
    /// "applied on k of n brokers".
    #[schema(example = "applied on 3 of 3 brokers")]
    pub status: String,
}

impl EntryView {
    fn new(row: EntryRow, brokers: i64) -> Self {
        Self {
            id: row.id,
            status: format!("applied on {} of {brokers} brokers", row.applied_on),
            cidr: row.cidr,
            note: row.note,
            added_version: row.added_version,
            created_at: rfc3339(row.created_at),
            applied_on: row.applied_on,
            brokers,
        }
    }
}

/// A tenant's allowlist.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AllowlistView {
    pub tenant_id: i64,
    /// The global allowlist version after the last change (of any tenant).
    pub version: i64,
    pub max_entries: usize,
    pub entries: Vec<EntryView>,
}

/// The current global allowlist version.
pub async fn version(db: impl SqliteExecutor<'_>) -> Result<i64> {
    let (v,): (i64,) = sqlx::query_as("select version from allowlist_version where id = 1").fetch_one(db).await?;
    Ok(v)
}

/// A tenant's allowlist with per-entry broker status.
pub async fn list(db: &SqlitePool, tenant: TenantId, rules: &FirewallConfig) -> Result<AllowlistView> {
    tenants::get(db, tenant).await?;
    let mut conn = db.acquire().await?;
    view(&mut conn, tenant, rules).await
}

async fn view(conn: &mut SqliteConnection, tenant: TenantId, rules: &FirewallConfig) -> Result<AllowlistView> {
    let rows: Vec<EntryRow> = sqlx::query_as(
        "select e.id, e.cidr, e.note, e.added_version, e.created_at, \
           (select count(*) from firewall_agents a where a.applied_version >= e.added_version) as applied_on \
         from allowlist_entries e where e.tenant_id = ? order by e.id",
    )
    .bind(tenant.get())
    .fetch_all(&mut *conn)
    .await?;
    let (brokers,): (i64,) = sqlx::query_as("select count(*) from firewall_agents").fetch_one(&mut *conn).await?;
    Ok(AllowlistView {
        tenant_id: tenant.get(),
        version: version(&mut *conn).await?,
        max_entries: rules.max_entries_per_tenant,
        entries: rows.into_iter().map(|r| EntryView::new(r, brokers)).collect(),
    })
}

/// The entry a `DELETE` names: its id, or its address/CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryRef {
    Id(i64),
    Cidr(Cidr),
}

impl EntryRef {
    pub fn parse(text: &str) -> Result<Self, Error> {
        if let Ok(id) = text.parse::<i64>() {
            return Ok(Self::Id(id));
        }
        text.parse().map(Self::Cidr).map_err(|_| {
            Error::invalid("entry", format!("{text:?} is neither an entry id nor an address (URL-encode the '/')"))
        })
    }
}

/// What a change did, and the version the brokers must reach to enforce it.
#[derive(Debug, Clone)]
pub struct Changed<T> {
    pub value: T,
    /// False for an idempotent repeat: nothing was written and the version did not move.
    pub changed: bool,
    pub version: i64,
}

/// Starts a change: the version bump is the first statement, so the transaction takes SQLite's
/// write lock at once and concurrent changes serialize instead of failing to upgrade a read lock.
/// A change that turns out to be a no-op rolls the bump back.
async fn begin_change(db: &SqlitePool) -> Result<(sqlx::Transaction<'static, sqlx::Sqlite>, i64)> {
    let mut tx = db.begin().await?;
    let (v,): (i64,) =
        sqlx::query_as("update allowlist_version set version = version + 1 where id = 1 returning version")
            .fetch_one(&mut *tx)
            .await?;
    Ok((tx, v))
}

async fn count(conn: &mut SqliteConnection, tenant: TenantId) -> Result<usize> {
    let (n,): (i64,) = sqlx::query_as("select count(*) from allowlist_entries where tenant_id = ?")
        .bind(tenant.get())
        .fetch_one(conn)
        .await?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

/// Adds one entry. Adding an address already listed is a no-op returning the existing entry.
pub async fn add(
    db: &SqlitePool,
    tenant: TenantId,
    entry: &NewEntry,
    rules: &FirewallConfig,
) -> Result<Changed<EntryView>> {
    let (mut tx, v) = begin_change(db).await?;
    tenants::get(&mut *tx, tenant).await?;
    let cidr = entry.cidr.to_string();
    let existing: Option<(i64,)> = sqlx::query_as("select id from allowlist_entries where tenant_id = ? and cidr = ?")
        .bind(tenant.get())
        .bind(&cidr)
        .fetch_optional(&mut *tx)
        .await?;
    let (id, changed) = match existing {
        Some((id,)) => (id, false),
        None => {
            if count(&mut tx, tenant).await? >= rules.max_entries_per_tenant {
                return Err(Error::invalid(
                    "cidr",
                    format!(
                        "tenant {tenant} already has the maximum of {} entries; remove one first",
                        rules.max_entries_per_tenant
                    ),
                ));
            }
            let (id,): (i64,) = sqlx::query_as(
                "insert into allowlist_entries (tenant_id, cidr, note, added_version, created_at) \
                 values (?, ?, ?, ?, ?) returning id",
            )
            .bind(tenant.get())
            .bind(&cidr)
            .bind(&entry.note)
            .bind(v)
            .bind(now())
            .fetch_one(&mut *tx)
            .await?;
            (id, true)
        }
    };
    let view = view(&mut tx, tenant, rules).await?;
    let value = view.entries.into_iter().find(|e| e.id == id).expect("entry read in its own transaction");
    if changed {
        crate::audit::stage(&mut tx, Some(tenant), &format!("{cidr} added, version {v}")).await?;
        tx.commit().await?;
        Ok(Changed { value, changed, version: v })
    } else {
        // Nothing changed: the version must not move, so the entry is written on its own.
        tx.rollback().await?;
        crate::audit::stage_read(db, Some(tenant), &format!("{cidr} already listed")).await?;
        Ok(Changed { value, changed, version: v - 1 })
    }
}

/// Replaces a tenant's whole list. Entries kept keep their id, note and `added_version`
/// (brokers already enforce them); the version moves only when the set of addresses changes.
pub async fn replace(
    db: &SqlitePool,
    tenant: TenantId,
    entries: &[NewEntry],
    rules: &FirewallConfig,
) -> Result<Changed<AllowlistView>> {
    let (mut tx, v) = begin_change(db).await?;
    tenants::get(&mut *tx, tenant).await?;
    let current: Vec<(String,)> = sqlx::query_as("select cidr from allowlist_entries where tenant_id = ?")
        .bind(tenant.get())
        .fetch_all(&mut *tx)
        .await?;
    let wanted: Vec<String> = entries.iter().map(|e| e.cidr.to_string()).collect();
    let mut removed = 0;
    for (cidr,) in &current {
        if !wanted.contains(cidr) {
            sqlx::query("delete from allowlist_entries where tenant_id = ? and cidr = ?")
                .bind(tenant.get())
                .bind(cidr)
                .execute(&mut *tx)
                .await?;
            removed += 1;
        }
    }
    let mut added = 0;
    for (entry, cidr) in entries.iter().zip(&wanted) {
        if current.iter().any(|(c,)| c == cidr) {
            continue;
        }
        sqlx::query(
            "insert into allowlist_entries (tenant_id, cidr, note, added_version, created_at) values (?, ?, ?, ?, ?)",
        )
        .bind(tenant.get())
        .bind(cidr)
        .bind(&entry.note)
        .bind(v)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        added += 1;
    }
    let changed = added + removed > 0;
    let mut value = view(&mut tx, tenant, rules).await?;
    if changed {
        let detail = format!("{added} added, {removed} removed, version {v}");
        crate::audit::stage(&mut tx, Some(tenant), &detail).await?;
        tx.commit().await?;
    } else {
        tx.rollback().await?;
        crate::audit::stage_read(db, Some(tenant), "unchanged").await?;
        value.version = v - 1;
    }
    Ok(Changed { version: value.version, value, changed })
}

/// Removes one entry; 404 when the tenant has no such entry.
pub async fn remove(db: &SqlitePool, tenant: TenantId, entry: EntryRef) -> Result<Changed<()>> {
    let (mut tx, v) = begin_change(db).await?;
    tenants::get(&mut *tx, tenant).await?;
    let deleted = match entry {
        EntryRef::Id(id) => {
            sqlx::query("delete from allowlist_entries where tenant_id = ? and id = ?").bind(tenant.get()).bind(id)
        }
        EntryRef::Cidr(cidr) => sqlx::query("delete from allowlist_entries where tenant_id = ? and cidr = ?")
            .bind(tenant.get())
            .bind(cidr.to_string()),
    }
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if deleted == 0 {
        let what = match entry {
            EntryRef::Id(id) => format!("entry {id}"),
            EntryRef::Cidr(cidr) => cidr.to_string(),
        };
        return Err(Error::NotFound(format!("tenant {tenant}'s allowlist has no {what}")));
    }
    crate::audit::stage(&mut tx, Some(tenant), &format!("version {v}")).await?;
    tx.commit().await?;
    Ok(Changed { value: (), changed: true, version: v })
}

/// Every tenant's entries together, what each broker enforces, at one consistent version.
/// The stored strings are already canonical `Cidr`s, so they are passed on as they are.
pub async fn snapshot(db: &SqlitePool) -> Result<(i64, Vec<String>)> {
    let mut tx = db.begin().await?;
    let version = version(&mut *tx).await?;
    let rows: Vec<(String,)> =
        sqlx::query_as("select distinct cidr from allowlist_entries order by cidr").fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok((version, rows.into_iter().map(|(c,)| c).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> FirewallConfig {
        FirewallConfig::default()
    }

    fn ok(text: &str) -> String {
        Cidr::parse(text, &rules(), "cidr").unwrap().to_string()
    }

    fn field_of_error(text: &str) -> String {
        match Cidr::parse(text, &rules(), "cidr") {
            Err(Error::Invalid { field, .. }) => field,
            other => panic!("{text:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn addresses_become_host_networks() {
        assert_eq!(ok("203.0.113.7"), "203.0.113.7/32");
        assert_eq!(ok(" 2001:db8::7 "), "2001:db8::7/128");
        assert_eq!(ok("2001:DB8::1/64"), "2001:db8::/64");
    }

    #[test]
    fn host_bits_are_normalised() {
        assert_eq!(ok("198.51.100.77/24"), "198.51.100.0/24");
        assert_eq!(ok("198.51.255.255/16"), "198.51.0.0/16");
        assert_eq!(ok("2001:db8:1:2:3::9/48"), "2001:db8:1::/48");
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        assert_eq!(ok("::ffff:198.51.100.7"), "198.51.100.7/32");
        assert_eq!(ok("::ffff:198.51.100.0/120"), "198.51.100.0/24");
    }

    #[test]
    fn everything_and_broad_prefixes_are_refused() {
        for text in ["0.0.0.0/0", "::/0", "10.0.0.0/8", "198.51.0.0/15", "2001:db8::/31", "2000::/3"] {
            assert_eq!(field_of_error(text), "cidr", "{text}");
        }
        assert_eq!(ok("10.1.0.0/16"), "10.1.0.0/16");
        assert_eq!(ok("2001:db8::/32"), "2001:db8::/32");
    }

    #[test]
    fn operators_can_allow_broader_prefixes_but_never_everything() {
        let rules = FirewallConfig { min_prefix_v4: 8, min_prefix_v6: 16, ..FirewallConfig::default() };
        assert_eq!(Cidr::parse("10.0.0.0/8", &rules, "cidr").unwrap().to_string(), "10.0.0.0/8");
        assert!(Cidr::parse("2001::/16", &rules, "cidr").is_ok());
        let anything = FirewallConfig { min_prefix_v4: 1, min_prefix_v6: 1, ..FirewallConfig::default() };
        assert!(Cidr::parse("0.0.0.0/0", &anything, "cidr").is_err());
        assert!(Cidr::parse("::/0", &anything, "cidr").is_err());
        assert!(Cidr::parse("128.0.0.0/1", &anything, "cidr").is_ok());
    }

    #[test]
    fn garbage_is_refused() {
        for text in [
            "",
            "example.com",
            "203.0.113.7/33",
            "2001:db8::/129",
            "203.0.113.7/",
            "203.0.113.7/+8",
            "203.0.113.7/ 24",
            "203.0.113",
            "203.0.113.7/24/1",
            "fe80::1%eth0",
            "1.2.3.4.5",
        ] {
            assert_eq!(field_of_error(text), "cidr", "{text:?}");
        }
    }

    #[test]
    fn ranges_cover_the_network() {
        let c: Cidr = "198.51.100.0/24".parse().unwrap();
        assert_eq!(c.range(), Range::V4(0xc633_6400, 0xc633_64ff));
        let h: Cidr = "2001:db8::1".parse().unwrap();
        assert_eq!(h.range(), Range::V6(0x2001_0db8 << 96 | 1, 0x2001_0db8 << 96 | 1));
    }

    #[test]
    fn lists_collapse_duplicates_and_respect_the_cap() {
        let input = |c: &str| EntryInput { cidr: c.into(), note: None };
        let list =
            NewEntry::parse_list(&[input("203.0.113.7"), input("203.0.113.7/32"), input("2001:db8::1")], &rules())
                .unwrap();
        assert_eq!(list.len(), 2);
        let small = FirewallConfig { max_entries_per_tenant: 1, ..FirewallConfig::default() };
        match NewEntry::parse_list(&[input("203.0.113.7"), input("203.0.113.8")], &small) {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "entries"),
            other => panic!("{other:?}"),
        }
        match NewEntry::parse_list(&[input("203.0.113.7"), input("nope")], &rules()) {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "entries[1].cidr"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn notes_are_bounded() {
        assert!(parse_note(Some(&"x".repeat(201)), "note").is_err());
        assert!(parse_note(Some("a\nb"), "note").is_err());
        assert_eq!(parse_note(Some(" Madrid "), "note").unwrap(), "Madrid");
        assert_eq!(parse_note(None, "note").unwrap(), "");
    }

    #[test]
    fn entry_refs() {
        assert_eq!(EntryRef::parse("12").unwrap(), EntryRef::Id(12));
        assert_eq!(EntryRef::parse("203.0.113.7").unwrap(), EntryRef::Cidr("203.0.113.7/32".parse().unwrap()));
        assert!(EntryRef::parse("x").is_err());
    }
}
