//! Tenants' IP allowlists: the rules an entry must follow and the views of a tenant's list.
//! Every change bumps the one global allowlist version in the same transaction (see
//! `store::firewall`), so an agent that applied version v enforces exactly the entries that
//! existed at v; the store wakes the agents' long polls after each commit.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use super::cidr::Cidr;
use crate::clock::rfc3339;
use crate::config::FirewallConfig;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::store::firewall::{self as stored, Change, Listing, Target};
use crate::tenants::{self, TenantId};

pub use crate::store::firewall::EntryRow;

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

/// The agents' list (every tenant's entries) as the JSON answer of their poll, encoded once per
/// version: with 100,000 entries, reading and encoding it took about 100 ms, every agent asks
/// for the same version, and they all ask right after a change.
#[derive(Debug, Clone, Default)]
pub struct AgentListCache(Arc<tokio::sync::Mutex<Option<Encoded>>>);

/// A version and its list as JSON.
type Encoded = (i64, Arc<[u8]>);

impl AgentListCache {
    /// The list at version `current` (or later) and its version. Concurrent callers wait for
    /// one read instead of each reading.
    pub async fn get(&self, store: &Store, current: i64) -> Result<(i64, Arc<[u8]>)> {
        let mut slot = self.0.lock().await;
        if let Some((version, body)) = slot.as_ref()
            && *version == current
        {
            return Ok((*version, body.clone()));
        }
        let (version, entries) = snapshot(store).await?;
        let body: Arc<[u8]> = serde_json::to_vec(&super::agent::AgentAllowlist { version, entries })
            .map_err(|e| Error::Internal(e.into()))?
            .into();
        *slot = Some((version, body.clone()));
        Ok((version, body))
    }
}

/// The current global allowlist version.
pub async fn version(store: &Store) -> Result<i64> {
    stored::version(store).await
}

impl AllowlistView {
    fn new(tenant: TenantId, listing: Listing, rules: &FirewallConfig) -> Self {
        let brokers = listing.brokers;
        Self {
            tenant_id: tenant.get(),
            version: listing.version,
            max_entries: rules.max_entries_per_tenant,
            entries: listing.entries.into_iter().map(|r| EntryView::new(r, brokers)).collect(),
        }
    }
}

/// A tenant's allowlist with per-entry broker status.
pub async fn list(store: &Store, tenant: TenantId, rules: &FirewallConfig) -> Result<AllowlistView> {
    let listing = stored::listing(store, tenant).await?.ok_or_else(|| tenants::not_found(tenant))?;
    Ok(AllowlistView::new(tenant, listing, rules))
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

/// Adds one entry. Adding an address already listed is a no-op returning the existing entry.
pub async fn add(
    store: &Store,
    tenant: TenantId,
    entry: &NewEntry,
    rules: &FirewallConfig,
) -> Result<Changed<EntryView>> {
    match stored::add(store, tenant, &entry.cidr.to_string(), &entry.note, rules.max_entries_per_tenant).await? {
        Change::NoTenant => Err(tenants::not_found(tenant)),
        Change::Refused => Err(Error::invalid(
            "cidr",
            format!(
                "tenant {tenant} already has the maximum of {} entries; remove one first",
                rules.max_entries_per_tenant
            ),
        )),
        Change::Done { listing, changed, id } => {
            let version = listing.version;
            let view = AllowlistView::new(tenant, listing, rules);
            let value = view.entries.into_iter().find(|e| Some(e.id) == id).expect("entry read in its own transaction");
            Ok(Changed { value, changed, version })
        }
    }
}

/// Replaces a tenant's whole list. Entries kept keep their id, note and `added_version`
/// (brokers already enforce them); the version moves only when the set of addresses changes.
pub async fn replace(
    store: &Store,
    tenant: TenantId,
    entries: &[NewEntry],
    rules: &FirewallConfig,
) -> Result<Changed<AllowlistView>> {
    let wanted: Vec<(String, String)> = entries.iter().map(|e| (e.cidr.to_string(), e.note.clone())).collect();
    match stored::replace(store, tenant, &wanted).await? {
        Change::NoTenant => Err(tenants::not_found(tenant)),
        Change::Refused => unreachable!("replacing refuses nothing once the list is validated"),
        Change::Done { listing, changed, .. } => {
            let value = AllowlistView::new(tenant, listing, rules);
            Ok(Changed { version: value.version, value, changed })
        }
    }
}

/// Removes one entry; 404 when the tenant has no such entry.
pub async fn remove(store: &Store, tenant: TenantId, entry: EntryRef) -> Result<Changed<()>> {
    let cidr = match entry {
        EntryRef::Cidr(cidr) => cidr.to_string(),
        EntryRef::Id(_) => String::new(),
    };
    let target = match entry {
        EntryRef::Id(id) => Target::Id(id),
        EntryRef::Cidr(_) => Target::Cidr(&cidr),
    };
    match stored::remove(store, tenant, target).await? {
        Change::NoTenant => Err(tenants::not_found(tenant)),
        Change::Refused => {
            let what = match entry {
                EntryRef::Id(id) => format!("entry {id}"),
                EntryRef::Cidr(cidr) => cidr.to_string(),
            };
            Err(Error::NotFound(format!("tenant {tenant}'s allowlist has no {what}")))
        }
        Change::Done { listing, .. } => Ok(Changed { value: (), changed: true, version: listing.version }),
    }
}

/// Every tenant's entries together, what each broker enforces, at one consistent version.
/// The stored strings are already canonical `Cidr`s, so they are passed on as they are.
pub async fn snapshot(store: &Store) -> Result<(i64, Vec<String>)> {
    stored::snapshot(store).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> FirewallConfig {
        FirewallConfig::default()
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
