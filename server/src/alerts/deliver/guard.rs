//! The SSRF guard: alert channels send requests the server makes on a tenant's behalf, so a
//! destination must be `https` and every address its host resolves to must be public, unless
//! the operator allowed the address's network (`alerts.allow_destinations`, where plain `http`
//! is then accepted too). The request then goes to exactly the addresses checked (pinned in the
//! client), so a DNS answer that changes between check and connect cannot reach inside.

use std::net::{IpAddr, SocketAddr};
use std::sync::LazyLock;
use std::time::Duration;

use reqwest::Url;

use crate::firewall::Cidr;

/// Networks that are not public destinations: this host, private and shared networks,
/// link-local (cloud metadata at 169.254.169.254), multicast, reserved, documentation and
/// benchmarking ranges, and IPv6 forms that embed an IPv4 address. IPv4-mapped IPv6 addresses
/// are checked as the IPv4 address they are.
const REFUSED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "an unspecified (this-network) address"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address (cloud metadata lives here)"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved or broadcast address"),
    ("::/96", "an unspecified, loopback or IPv4-compatible address"),
    ("64:ff9b::/96", "a NAT64 address"),
    ("64:ff9b:1::/48", "a NAT64 address"),
    ("100::/64", "a discard address"),
    ("2001::/23", "an IETF protocol address (Teredo, benchmarking, ORCHID)"),
    ("2001:db8::/32", "a documentation address"),
    ("2002::/16", "a 6to4 address"),
    ("3fff::/20", "a documentation address"),
    ("fc00::/7", "a unique local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
];

static REFUSED_NETS: LazyLock<Vec<(Cidr, &'static str)>> =
    LazyLock::new(|| REFUSED.iter().map(|(net, why)| (net.parse().expect("refused networks parse"), *why)).collect());

/// Why `ip` is not a public destination, or `None` when it is.
pub fn not_public(ip: IpAddr) -> Option<&'static str> {
    let ip = ip.to_canonical();
    REFUSED_NETS.iter().find(|(net, _)| net.contains(ip)).map(|(_, why)| *why)
}

/// A destination that passed the guard: the URL and the addresses its host resolved to.
#[derive(Debug, Clone)]
pub struct Destination {
    pub url: Url,
    pub addrs: Vec<SocketAddr>,
}

/// Why a destination was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not an acceptable destination (scheme, address): a setting to fix.
    Refused(String),
    /// The host did not resolve: it may later.
    Unresolved(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(why) | Self::Unresolved(why) => f.write_str(why),
        }
    }
}

/// The guard with the operator's allowed networks.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allowed: Vec<Cidr>,
}

impl Guard {
    pub fn new(allowed: Vec<Cidr>) -> Self {
        Self { allowed }
    }

    /// Parses `text` as a URL a channel may use (before resolving): http or https, a host, no
    /// credentials, at most 2000 characters.
    pub fn parse(text: &str) -> Result<Url, String> {
        let text = text.trim();
        if text.len() > 2000 {
            return Err("the URL must be at most 2000 characters".into());
        }
        let url = Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!("the scheme must be https, not {:?}", url.scheme()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("the URL has no host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("the URL must not carry a user name or password".into());
        }
        Ok(url)
    }

    /// Whether a connection to `ip` is acceptable for a URL of scheme `https` (or not).
    pub fn check_addr(&self, ip: IpAddr, https: bool) -> Result<(), String> {
        let ip = ip.to_canonical();
        if self.allowed.iter().any(|net| net.contains(ip)) {
            return Ok(());
        }
        if let Some(why) = not_public(ip) {
            return Err(format!("{ip} is {why}; only public destinations are allowed"));
        }
        if !https {
            return Err("the URL must use https (plain http only to networks the operator allows)".into());
        }
        Ok(())
    }

    /// Checks `text` and resolves its host: every address must pass [`Guard::check_addr`].
    pub async fn resolve(&self, text: &str) -> Result<Destination, Refusal> {
        let url = Self::parse(text).map_err(Refusal::Refused)?;
        let https = url.scheme() == "https";
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(url::Host::Domain(host)) => {
                let lookup = tokio::net::lookup_host((host, port));
                match tokio::time::timeout(Duration::from_secs(5), lookup).await {
                    Ok(Ok(addrs)) => addrs.collect(),
                    Ok(Err(e)) => return Err(Refusal::Unresolved(format!("cannot resolve {host}: {e}"))),
                    Err(_) => return Err(Refusal::Unresolved(format!("cannot resolve {host}: timed out"))),
                }
            }
            None => return Err(Refusal::Refused("the URL has no host".into())),
        };
        if addrs.is_empty() {
            return Err(Refusal::Unresolved("the host resolves to no address".into()));
        }
        for addr in &addrs {
            self.check_addr(addr.ip(), https).map_err(Refusal::Refused)?;
        }
        Ok(Destination { url, addrs })
    }

    /// A client that connects only to `dest`'s checked addresses, follows no redirect and gives
    /// up after `timeout`.
    pub fn client(dest: &Destination, timeout: Duration) -> Result<reqwest::Client, String> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .user_agent(concat!("outflow/", env!("CARGO_PKG_VERSION")));
        if let Some(url::Host::Domain(host)) = dest.url.host() {
            builder = builder.resolve_to_addrs(host, &dest.addrs);
        }
        builder.build().map_err(|e| format!("cannot build the HTTP client: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn every_refused_range_is_refused_and_public_addresses_pass() {
        let guard = Guard::default();
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.51.100.1",
            "203.0.113.1",
            "198.18.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
        ] {
            let err = guard.check_addr(ip(refused), true).unwrap_err();
            assert!(err.contains("only public destinations"), "{refused}: {err}");
        }
        for public in ["93.184.215.14", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            guard.check_addr(ip(public), true).unwrap_or_else(|e| panic!("{public}: {e}"));
            assert!(guard.check_addr(ip(public), false).unwrap_err().contains("https"), "{public}");
        }
        assert!(not_public(ip("169.254.169.254")).unwrap().contains("link-local"));
    }

    #[test]
    fn allowed_networks_pass_with_plain_http_too() {
        let guard = Guard::new(vec!["127.0.0.1/32".parse().unwrap(), "fd00::/8".parse().unwrap()]);
        guard.check_addr(ip("127.0.0.1"), false).unwrap();
        guard.check_addr(ip("::ffff:127.0.0.1"), false).unwrap();
        guard.check_addr(ip("fd00::5"), true).unwrap();
        assert!(guard.check_addr(ip("127.0.0.2"), false).is_err());
        assert!(guard.check_addr(ip("fc00::5"), true).is_err());
    }

    #[test]
    fn urls_need_a_scheme_a_host_and_no_credentials() {
        assert!(Guard::parse("ftp://example.com/").unwrap_err().contains("scheme"));
        assert!(Guard::parse("https://user:pw@example.com/").unwrap_err().contains("password"));
        assert!(Guard::parse("not a url").is_err());
        assert!(Guard::parse("https://hooks.slack.com/services/T/B/x").is_ok());
    }

    #[tokio::test]
    async fn literal_addresses_are_checked_without_dns() {
        let guard = Guard::default();
        let refused = async |url: &str| match guard.resolve(url).await {
            Err(Refusal::Refused(why)) => why,
            other => panic!("{url}: {other:?}"),
        };
        assert!(refused("https://169.254.169.254/latest/meta-data").await.contains("link-local"));
        assert!(refused("https://[::ffff:10.0.0.1]/").await.contains("private"));
        assert!(refused("http://93.184.215.14/").await.contains("https"));
        assert!(refused("https://localhost/").await.contains("loopback"));
        let dest = guard.resolve("https://93.184.215.14:8443/hook").await.unwrap();
        assert_eq!(dest.addrs, ["93.184.215.14:8443".parse().unwrap()]);
    }
}
