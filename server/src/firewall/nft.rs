//! Renders the allowlist as one complete nftables ruleset for `nft -f`. Pure: the same entries,
//! port and version always give the same text, so the agent can persist and re-apply it.
//!
//! The file adds, deletes and re-creates table `inet outflow` in one `nft -f` transaction: the
//! kernel swaps the old table for the new one atomically, and nothing outside the table changes.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::cidr::{Cidr, Range};

/// The nftables table the agent owns.
pub const TABLE: &str = "inet outflow";

/// A rendered ruleset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruleset {
    pub version: i64,
    /// Set elements after merging (what `nft list set` shows).
    pub elements: usize,
    pub text: String,
}

/// First line of every rendered file; the agent reads the version back from it after a restart.
const HEADER: &str = "# outflow allowlist version ";

/// The ruleset enforcing `cidrs` on TCP port `port`: connections to the port from a listed
/// address (or from loopback) are accepted, all others dropped; other ports are untouched.
pub fn render(version: i64, cidrs: &[Cidr], port: u16) -> Ruleset {
    let (v4, v6): (Vec<Range>, Vec<Range>) = cidrs.iter().map(Cidr::range).partition(|r| matches!(r, Range::V4(..)));
    let v4 = merge(v4.into_iter().filter_map(|r| if let Range::V4(a, b) = r { Some((a, b)) } else { None }));
    let v6 = merge(v6.into_iter().filter_map(|r| if let Range::V6(a, b) = r { Some((a, b)) } else { None }));
    let mut text = format!(
        "{HEADER}{version}\n\
         # Written by `outflow agent`; replaced as a whole on every change. Do not edit.\n\
         table {TABLE}\n\
         delete table {TABLE}\n\
         table {TABLE} {{\n"
    );
    set(
        &mut text,
        "allow_v4",
        "ipv4_addr",
        v4.iter().map(|&(a, b)| element(a, b, 32, |x| Ipv4Addr::from_bits(x).to_string())),
    );
    set(
        &mut text,
        "allow_v6",
        "ipv6_addr",
        v6.iter().map(|&(a, b)| element(a, b, 128, |x| Ipv6Addr::from_bits(x).to_string())),
    );
    let _ = write!(
        text,
        "\tchain input {{\n\
         \t\ttype filter hook input priority filter; policy accept;\n\
         \t\ttcp dport {port} iifname \"lo\" accept\n\
         \t\ttcp dport {port} ip saddr @allow_v4 accept\n\
         \t\ttcp dport {port} ip6 saddr @allow_v6 accept\n\
         \t\ttcp dport {port} drop\n\
         \t}}\n\
         }}\n"
    );
    Ruleset { version, elements: v4.len() + v6.len(), text }
}

/// The version a rendered file was made for, from its first line.
pub fn version_of(text: &str) -> Option<i64> {
    text.lines().next()?.strip_prefix(HEADER)?.trim().parse().ok()
}

fn set(text: &mut String, name: &str, kind: &str, elements: impl Iterator<Item = String>) {
    let _ = write!(text, "\tset {name} {{\n\t\ttype {kind}\n\t\tflags interval\n");
    let elements: Vec<String> = elements.collect();
    // `elements = { }` is a syntax error: an empty set has no elements line.
    if !elements.is_empty() {
        let _ = writeln!(text, "\t\telements = {{\n\t\t\t{}\n\t\t}}", elements.join(",\n\t\t\t"));
    }
    text.push_str("\t}\n");
}

/// Sorts and merges overlapping and adjacent ranges: an interval set refuses overlapping
/// elements, and fewer elements load faster.
fn merge<T: Copy + Ord + num::One>(ranges: impl Iterator<Item = (T, T)>) -> Vec<(T, T)> {
    let mut ranges: Vec<(T, T)> = ranges.collect();
    ranges.sort_unstable();
    let mut merged: Vec<(T, T)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if last.1 == T::MAX_VALUE || start <= last.1.plus_one() => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// A range as nft writes it: `a`, `a/len` when it is exactly one network, else `a-b`.
fn element<T: Copy + Eq + num::One>(start: T, end: T, bits: u32, show: impl Fn(T) -> String) -> String {
    if start == end {
        return show(start);
    }
    let size_bits = end.minus(start).plus_one_bits();
    match size_bits {
        Some(host_bits) if start.trailing_zeros_at_least(host_bits) => format!("{}/{}", show(start), bits - host_bits),
        _ => format!("{}-{}", show(start), show(end)),
    }
}

/// The little integer arithmetic `merge` and `element` need, for u32 (IPv4) and u128 (IPv6).
mod num {
    pub trait One: Sized {
        const MAX_VALUE: Self;
        fn plus_one(self) -> Self;
        fn minus(self, other: Self) -> Self;
        /// `log2(self + 1)` when `self + 1` is a power of two (the range is a whole network).
        fn plus_one_bits(self) -> Option<u32>;
        fn trailing_zeros_at_least(self, n: u32) -> bool;
    }

    macro_rules! one {
        ($t:ty) => {
            impl One for $t {
                const MAX_VALUE: Self = <$t>::MAX;
                fn plus_one(self) -> Self {
                    self.saturating_add(1)
                }
                fn minus(self, other: Self) -> Self {
                    self - other
                }
                fn plus_one_bits(self) -> Option<u32> {
                    if self == <$t>::MAX {
                        return Some(<$t>::BITS);
                    }
                    let n = self + 1;
                    n.is_power_of_two().then(|| n.trailing_zeros())
                }
                fn trailing_zeros_at_least(self, n: u32) -> bool {
                    self.trailing_zeros() >= n
                }
            }
        };
    }
    one!(u32);
    one!(u128);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn elements_of(text: &str, set: &str) -> Vec<String> {
        let start = text.find(&format!("set {set} {{")).unwrap();
        let body = &text[start..];
        let body = &body[..body.find("\n\t}").unwrap()];
        match body.split_once("elements = {") {
            None => vec![],
            Some((_, rest)) => rest
                .split('}')
                .next()
                .unwrap()
                .split(',')
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect(),
        }
    }

    #[test]
    fn replaces_the_one_table_and_guards_only_the_port() {
        let r = render(7, &cidrs(&["198.51.100.7", "2001:db8::1"]), 9093);
        assert!(r.text.starts_with("# outflow allowlist version 7\n"));
        assert!(r.text.contains("table inet outflow\ndelete table inet outflow\ntable inet outflow {\n"));
        assert!(r.text.contains("type filter hook input priority filter; policy accept;"));
        assert!(r.text.contains("tcp dport 9093 ip saddr @allow_v4 accept"));
        assert!(r.text.contains("tcp dport 9093 ip6 saddr @allow_v6 accept"));
        assert!(r.text.trim_end().ends_with("tcp dport 9093 drop\n\t}\n}"));
        // Every rule names the port, so traffic to other ports passes the chain's accept policy.
        let rules: Vec<&str> =
            r.text.lines().map(str::trim).filter(|l| l.ends_with("accept") || l.ends_with("drop")).collect();
        assert_eq!(rules.len(), 4);
        assert!(rules.iter().all(|l| l.starts_with("tcp dport 9093 ")), "{rules:?}");
        assert_eq!(elements_of(&r.text, "allow_v4"), ["198.51.100.7"]);
        assert_eq!(elements_of(&r.text, "allow_v6"), ["2001:db8::1"]);
        assert_eq!(r.elements, 2);
    }

    #[test]
    fn the_port_is_configurable() {
        let r = render(1, &[], 19093);
        assert!(r.text.contains("tcp dport 19093 drop"));
        assert!(!r.text.contains("dport 9093 "));
    }

    #[test]
    fn empty_sets_have_no_elements_line() {
        let r = render(0, &[], 9093);
        assert!(!r.text.contains("elements"));
        assert!(r.text.contains("set allow_v4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t}"));
        assert_eq!(r.elements, 0);
    }

    #[test]
    fn overlapping_and_adjacent_networks_merge() {
        let r = render(
            3,
            &cidrs(&[
                "198.51.100.0/25",
                "198.51.100.128/25",
                "198.51.100.7",
                "203.0.113.5",
                "203.0.113.6",
                "192.0.2.0/24",
            ]),
            9093,
        );
        assert_eq!(elements_of(&r.text, "allow_v4"), ["192.0.2.0/24", "198.51.100.0/24", "203.0.113.5-203.0.113.6"]);
        let r6 = render(3, &cidrs(&["2001:db8::/33", "2001:db8:8000::/33", "2001:db8::5"]), 9093);
        assert_eq!(elements_of(&r6.text, "allow_v6"), ["2001:db8::/32"]);
    }

    #[test]
    fn ranges_touching_the_top_of_the_space_do_not_overflow() {
        let r = render(1, &cidrs(&["255.255.255.0/24", "255.255.254.0/24"]), 9093);
        assert_eq!(elements_of(&r.text, "allow_v4"), ["255.255.254.0/23"]);
        let r6 = render(1, &cidrs(&["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]), 9093);
        assert_eq!(elements_of(&r6.text, "allow_v6"), ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]);
    }

    #[test]
    fn the_version_reads_back() {
        assert_eq!(version_of(&render(42, &[], 9093).text), Some(42));
        assert_eq!(version_of("table inet outflow {}"), None);
    }

    #[test]
    fn rendering_is_deterministic_whatever_the_order() {
        let a = render(5, &cidrs(&["203.0.113.9", "198.51.100.0/24", "2001:db8::1"]), 9093);
        let b = render(5, &cidrs(&["2001:db8::1", "203.0.113.9", "198.51.100.0/24"]), 9093);
        assert_eq!(a, b);
    }
}
