//! `Cidr`: an IPv4 or IPv6 network as the allowlist holds it, parsed under the operator's
//! rules, with the address range nftables interval sets need.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::config::FirewallConfig;
use crate::error::{Error, Result};

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

    /// The network address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `ip` is inside this network (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.range(), ip.to_canonical()) {
            (Range::V4(lo, hi), IpAddr::V4(a)) => (lo..=hi).contains(&u32::from(a)),
            (Range::V6(lo, hi), IpAddr::V6(a)) => (lo..=hi).contains(&u128::from(a)),
            _ => false,
        }
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
    fn containment() {
        let net: Cidr = "198.51.100.0/24".parse().unwrap();
        assert!(net.contains("198.51.100.77".parse().unwrap()));
        assert!(net.contains("::ffff:198.51.100.77".parse().unwrap()));
        assert!(!net.contains("198.51.101.1".parse().unwrap()));
        assert!(!net.contains("2001:db8::1".parse().unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains("2001:db8:1::9".parse().unwrap()));
    }
}
