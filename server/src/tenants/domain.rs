//! Parsed tenant inputs. Once a value has one of these types it is known to be valid, and the
//! Kafka names derived from it follow the fixed naming scheme.

use std::fmt;

use crate::error::Error;

/// A tenant's numeric id, 1..=999999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(i64);

impl TenantId {
    pub const MAX: i64 = 999_999;

    pub fn parse(id: i64) -> Result<Self, Error> {
        if (1..=Self::MAX).contains(&id) {
            Ok(Self(id))
        } else {
            Err(Error::invalid("id", format!("tenant id must be between 1 and {}, got {id}", Self::MAX)))
        }
    }

    /// Parses a path segment such as `83`.
    pub fn parse_str(text: &str) -> Result<Self, Error> {
        match text.parse::<i64>() {
            Ok(id) => Self::parse(id),
            Err(_) => Err(Error::invalid("id", format!("tenant id must be a number, got {text:?}"))),
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// The delivery-log topic, `c<N>`.
    pub fn topic(self) -> String {
        format!("c{}", self.0)
    }

    /// The WAF topic, `c<N>_waf`.
    pub fn waf_topic(self) -> String {
        format!("c{}_waf", self.0)
    }

    /// The consumer-group prefix the tenant may use, `c<N>_`.
    pub fn group_prefix(self) -> String {
        format!("c{}_", self.0)
    }

    /// The certificate CN, and so the Kafka principal, of credential `k`: `c<N>.<k>`.
    pub fn credential_cn(self, k: i64) -> String {
        format!("c{}.{k}", self.0)
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A tenant's display name: 1..=100 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantName(String);

impl TenantName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(name: &str) -> Result<Self, Error> {
        let name = name.trim();
        let chars = name.chars().count();
        if chars == 0 {
            return Err(Error::invalid("name", "name must not be empty"));
        }
        if chars > Self::MAX_CHARS {
            return Err(Error::invalid(
                "name",
                format!("name must be at most {} characters, got {chars}", Self::MAX_CHARS),
            ));
        }
        // Names land in dashboards and in every file of the bundle: printable text only, without
        // line breaks or the bidirectional controls that make text read differently than it is.
        if name.chars().any(crate::bundle::escape::is_hazard) {
            return Err(Error::invalid(
                "name",
                "name must be printable text: no control characters, line separators or bidirectional controls",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A topic partition count. New topics get [`Partitions::DEFAULT`]; counts only ever grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Partitions(i64);

impl Partitions {
    pub const DEFAULT: Partitions = Partitions(2);
    pub const MAX: i64 = 1000;

    pub fn parse(n: i64) -> Result<Self, Error> {
        if (1..=Self::MAX).contains(&n) {
            Ok(Self(n))
        } else {
            Err(Error::invalid("partitions", format!("partitions must be between 1 and {}, got {n}", Self::MAX)))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_id_bounds() {
        assert!(TenantId::parse(0).is_err());
        assert!(TenantId::parse(-5).is_err());
        assert!(TenantId::parse(1_000_000).is_err());
        assert_eq!(TenantId::parse(1).unwrap().get(), 1);
        assert_eq!(TenantId::parse(999_999).unwrap().get(), 999_999);
        assert!(TenantId::parse_str("83x").is_err());
        assert!(TenantId::parse_str("").is_err());
        match TenantId::parse_str("0") {
            Err(Error::Invalid { field, .. }) => assert_eq!(field, "id"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn tenant_names_derive_from_id() {
        let id = TenantId::parse(83).unwrap();
        assert_eq!(id.topic(), "c83");
        assert_eq!(id.waf_topic(), "c83_waf");
        assert_eq!(id.group_prefix(), "c83_");
        assert_eq!(id.credential_cn(2), "c83.2");
    }

    #[test]
    fn tenant_name_rules() {
        assert!(TenantName::parse("").is_err());
        assert!(TenantName::parse("   ").is_err());
        assert!(TenantName::parse("a\u{7}b").is_err());
        assert!(TenantName::parse("a\nb").is_err());
        assert!(TenantName::parse("Acme \u{202e}gnp.exe").is_err(), "bidi override");
        assert!(TenantName::parse("a\u{2028}b").is_err(), "line separator");
        assert_eq!(TenantName::parse(r#"Acme """ ${x} %{x} {{ }}"#).unwrap().as_str(), r#"Acme """ ${x} %{x} {{ }}"#);
        assert_eq!(TenantName::parse("  Acme ").unwrap().as_str(), "Acme");
        assert!(TenantName::parse(&"é".repeat(100)).is_ok());
        assert!(TenantName::parse(&"é".repeat(101)).is_err());
    }

    #[test]
    fn partitions_bounds() {
        assert!(Partitions::parse(0).is_err());
        assert!(Partitions::parse(1001).is_err());
        assert_eq!(Partitions::parse(4).unwrap().get(), 4);
    }
}
