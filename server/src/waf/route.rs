//! Where a raw record goes: which tenant it belongs to and whether that tenant can receive it.
//! Pure functions over the record and a snapshot of the tenant directory.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use crate::tenants::TenantId;

/// How the worker finds a record's tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantSource {
    /// The Kafka key: `83` or `c83`.
    Key,
    /// A JSON pointer into the record, e.g. `/transaction/tenant_id`; a number or a string like
    /// the key. Costs a full parse of every record, so the key is the fast default.
    Pointer(String),
}

/// Why a record goes to the dead-letter topic: a short code (the `reason` header) and a
/// human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub reason: &'static str,
    pub detail: String,
}

impl DeadLetter {
    pub fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Self { reason, detail: detail.into() }
    }
}

/// A snapshot of what the worker knows about tenants: streaming state from outflow's database
/// and which `c<N>_waf` topics exist in the cluster.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Tenant id -> streaming active.
    pub tenants: HashMap<i64, bool>,
    /// Topic names present in the cluster.
    pub topics: HashSet<String>,
}

/// Parses a tenant reference as written in keys and records: `83` or `c83`.
pub fn parse_tenant(text: &str) -> Option<TenantId> {
    let text = text.trim();
    let digits = text.strip_prefix('c').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    TenantId::parse_str(digits).ok()
}

/// The tenant a record names, through `source`.
pub fn tenant_of(source: &TenantSource, key: Option<&[u8]>, value: &[u8]) -> Result<TenantId, DeadLetter> {
    match source {
        TenantSource::Key => {
            let key = key.ok_or_else(|| DeadLetter::new("no-tenant", "the record has no key"))?;
            std::str::from_utf8(key).ok().and_then(parse_tenant).ok_or_else(|| {
                DeadLetter::new("no-tenant", format!("key {:?} names no tenant", String::from_utf8_lossy(key)))
            })
        }
        TenantSource::Pointer(pointer) => {
            let record: Value = serde_json::from_slice(value)
                .map_err(|e| DeadLetter::new("invalid-json", format!("cannot read the tenant: {e}")))?;
            let tenant = match record.pointer(pointer) {
                Some(Value::String(s)) => parse_tenant(s),
                Some(Value::Number(n)) => n.as_i64().and_then(|id| TenantId::parse(id).ok()),
                _ => None,
            };
            tenant.ok_or_else(|| DeadLetter::new("no-tenant", format!("{pointer} names no tenant")))
        }
    }
}

/// The topic for `tenant`'s split records, or why it cannot receive them.
pub fn destination(directory: &Directory, tenant: TenantId) -> Result<String, DeadLetter> {
    match directory.tenants.get(&tenant.get()) {
        None => Err(DeadLetter::new("unknown-tenant", format!("tenant {tenant} does not exist"))),
        Some(false) => Err(DeadLetter::new("inactive-tenant", format!("tenant {tenant} has streaming off"))),
        Some(true) => {
            let topic = tenant.waf_topic();
            if directory.topics.contains(&topic) {
                Ok(topic)
            } else {
                Err(DeadLetter::new("unprovisioned-tenant", format!("topic {topic} does not exist yet")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        Directory {
            tenants: HashMap::from([(83, true), (84, false), (85, true)]),
            topics: HashSet::from(["c83_waf".to_owned(), "c84_waf".to_owned()]),
        }
    }

    #[test]
    fn tenant_comes_from_the_key_with_or_without_the_c() {
        for key in ["83", "c83", " 83\n"] {
            assert_eq!(tenant_of(&TenantSource::Key, Some(key.as_bytes()), b"{}").unwrap().get(), 83, "{key:?}");
        }
        for key in [&b""[..], b"c", b"x83", b"0", b"1000000", b"-5", b"\xff"] {
            assert_eq!(tenant_of(&TenantSource::Key, Some(key), b"{}").unwrap_err().reason, "no-tenant", "{key:?}");
        }
        assert_eq!(tenant_of(&TenantSource::Key, None, b"{}").unwrap_err().reason, "no-tenant");
    }

    #[test]
    fn tenant_comes_from_a_json_pointer_as_number_or_string() {
        let source = TenantSource::Pointer("/transaction/tenant".into());
        assert_eq!(tenant_of(&source, None, br#"{"transaction":{"tenant":83}}"#).unwrap().get(), 83);
        assert_eq!(tenant_of(&source, None, br#"{"transaction":{"tenant":"c84"}}"#).unwrap().get(), 84);
        assert_eq!(tenant_of(&source, None, br#"{"transaction":{}}"#).unwrap_err().reason, "no-tenant");
        assert_eq!(tenant_of(&source, None, br#"{"transaction":{"tenant":true}}"#).unwrap_err().reason, "no-tenant");
        assert_eq!(tenant_of(&source, None, br#"{"transaction":"#).unwrap_err().reason, "invalid-json");
    }

    #[test]
    fn only_active_provisioned_tenants_receive_records() {
        let d = directory();
        let id = |n| TenantId::parse(n).unwrap();
        assert_eq!(destination(&d, id(83)).unwrap(), "c83_waf");
        assert_eq!(destination(&d, id(84)).unwrap_err().reason, "inactive-tenant");
        assert_eq!(destination(&d, id(85)).unwrap_err().reason, "unprovisioned-tenant");
        assert_eq!(destination(&d, id(86)).unwrap_err().reason, "unknown-tenant");
    }
}
