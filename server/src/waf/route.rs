//! Where a raw record goes: which tenant it belongs to and whether that tenant can receive it.
//! Pure functions over the record and a snapshot of the tenant directory.

use std::collections::{HashMap, HashSet};

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

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
            let tokens = pointer_tokens(pointer);
            let mut de = serde_json::Deserializer::from_slice(value);
            let found = Seek { path: &tokens }
                .deserialize(&mut de)
                .and_then(|found| de.end().map(|()| found))
                .map_err(|e| DeadLetter::new("invalid-json", format!("cannot read the tenant: {e}")))?;
            let tenant = match found {
                Some(Found::Text(s)) => parse_tenant(&s),
                Some(Found::Number(n)) => TenantId::parse(n).ok(),
                None => None,
            };
            tenant.ok_or_else(|| DeadLetter::new("no-tenant", format!("{pointer} names no tenant")))
        }
    }
}

/// The reference tokens of a JSON pointer (RFC 6901): `/a/b~1c` is `a`, `b/c`.
fn pointer_tokens(pointer: &str) -> Vec<String> {
    pointer.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~")).collect()
}

/// The value a pointer leads to, when it is a tenant's possible spelling.
enum Found {
    Number(i64),
    Text(String),
}

const ARBITRARY_PRECISION_NUMBER: &str = "$serde_json::private::Number";

/// Follows a JSON pointer while deserializing, skipping everything off the path without
/// building it (so numbers like `1E400` elsewhere in the record do not matter). With duplicate
/// keys the last one counts, as for the split.
struct Seek<'p> {
    path: &'p [String],
}

impl<'de> DeserializeSeed<'de> for Seek<'_> {
    type Value = Option<Found>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seek<'_> {
    type Value = Option<Found>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == ARBITRARY_PRECISION_NUMBER {
                // serde_json built with `arbitrary_precision` (as in this crate's tests) hands
                // numbers over as this one-entry map holding the number's text.
                let text: String = map.next_value()?;
                return Ok(text.parse().ok().filter(|_| self.path.is_empty()).map(Found::Number));
            }
            match self.path.split_first() {
                Some((first, rest)) if *first == key => found = map.next_value_seed(Seek { path: rest })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let target = self.path.split_first().and_then(|(first, rest)| Some((first.parse::<usize>().ok()?, rest)));
        let mut found = None;
        let mut index = 0;
        loop {
            match target {
                Some((at, rest)) if at == index => match seq.next_element_seed(Seek { path: rest })? {
                    Some(f) => found = f,
                    None => break,
                },
                _ => {
                    if seq.next_element::<IgnoredAny>()?.is_none() {
                        break;
                    }
                }
            }
            index += 1;
        }
        Ok(found)
    }

    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(self.path.is_empty().then_some(Found::Number(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(i64::try_from(v).ok().filter(|_| self.path.is_empty()).map(Found::Number))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(self.path.is_empty().then(|| Found::Text(v.to_owned())))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
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
        // Whatever is off the path is skipped, however large its numbers.
        let record = br#"{"big":1E400,"transaction":{"x":[1e999],"tenant":"85"},"transaction":{"tenant":83}}"#;
        assert_eq!(tenant_of(&source, None, record).unwrap().get(), 83, "the last duplicate counts");
        let source = TenantSource::Pointer("/a~1b/1".into());
        assert_eq!(tenant_of(&source, None, br#"{"a/b":[1,"c86",3]}"#).unwrap().get(), 86);
        assert_eq!(tenant_of(&source, None, br#"{"a/b":[1]}"#).unwrap_err().reason, "no-tenant");
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
