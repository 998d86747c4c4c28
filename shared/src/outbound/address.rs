//! Where a team's webhooks may go: global unicast addresses only, checked when an endpoint is
//! registered and again at every delivery, after DNS (the sender resolves names through
//! `PublicOnly`, so the address it connects to is the one that was checked: a name that
//! rebinds to 127.0.0.1 between registration and delivery, or between two deliveries, is
//! refused). A team must not make Sandman call into its own network, nor into the cloud's.
//!
//! Refused, whatever their spelling: loopback, private (RFC 1918, unique-local `fc00::/7`),
//! link-local (`169.254/16`, `fe80::/10`), shared address space (CGNAT, `100.64/10`),
//! `0.0.0.0/8`, the IETF protocol block (`192.0.0/24`), documentation ranges, benchmarking
//! (`198.18/15`), multicast, reserved and broadcast (`240/4`), IPv4-mapped and -compatible IPv6,
//! and the IPv6 prefixes that carry an IPv4 address or tunnel to one (NAT64 `64:ff9b::/96` and
//! `64:ff9b:1::/48`, Teredo and the other `2001::/23` assignments, 6to4 `2002::/16`); names
//! `localhost` and `*.localhost`, with or without a trailing dot. The local stack's receivers
//! (`OUTBOUND_ALLOW_HTTP_LOOPBACK`) may be loopback, and nothing else of these.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long registration waits for DNS; a name that does not resolve by then is accepted (there
/// is no address to refuse yet) and checked at every delivery.
const REGISTRATION_LOOKUP: Duration = Duration::from_secs(2);

/// Why an address was refused: safe to show the team (it names what the team gave).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not a public address")]
pub struct NotPublic(pub String);

/// Whether `ip` is a global unicast address a webhook may be sent to.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224;
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Global unicast is 2000::/3; everything else (loopback, unspecified, IPv4-mapped and
    // -compatible, NAT64, discard, unique-local, link-local, multicast) is outside it.
    let global = (s[0] & 0xe000) == 0x2000;
    let reserved = match s[0] {
        // 2001::/23 (Teredo, benchmarking, ORCHID...) and 2001:db8::/32 (documentation).
        0x2001 => s[1] < 0x0200 || s[1] == 0x0db8,
        // 6to4.
        0x2002 => true,
        // 3fff::/20, documentation.
        first => (first & 0xfff0) == 0x3ff0,
    };
    global && !reserved
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Whether a webhook may be sent to `ip`: a public address, or a loopback one where the
/// deployment allows that (the local stack).
pub fn allowed(ip: IpAddr, allow_loopback: bool) -> bool {
    is_public(ip) || (allow_loopback && is_loopback(ip))
}

/// The checks that need no DNS: an IP literal must be allowed, and no name may be `localhost`.
pub fn check_host(host: &url::Host<&str>, allow_loopback: bool) -> Result<(), NotPublic> {
    match host {
        url::Host::Ipv4(v4) if !allowed(IpAddr::V4(*v4), allow_loopback) => Err(NotPublic(v4.to_string())),
        url::Host::Ipv6(v6) if !allowed(IpAddr::V6(*v6), allow_loopback) => Err(NotPublic(format!("[{v6}]"))),
        url::Host::Domain(name) if is_localhost(name) && !allow_loopback => Err(NotPublic((*name).to_owned())),
        _ => Ok(()),
    }
}

fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Registration's look at a name: refused when it resolves to any address that is not allowed;
/// accepted when it resolves to none within `REGISTRATION_LOOKUP` (delivery checks again).
pub async fn check_resolved(name: &str, port: u16, allow_loopback: bool) -> Result<(), NotPublic> {
    let lookup = tokio::time::timeout(REGISTRATION_LOOKUP, tokio::net::lookup_host((name, port))).await;
    match lookup {
        Ok(Ok(addresses)) => match addresses.map(|a| a.ip()).find(|ip| !allowed(*ip, allow_loopback)) {
            Some(_) => Err(NotPublic(name.to_owned())),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// The sender's resolver: the system's answer, refused whole when any address in it is not
/// allowed, so the connection only ever goes to checked addresses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublicOnly {
    pub allow_loopback: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let name = name.as_str().to_owned();
            if is_localhost(&name) && !allow_loopback {
                return Err(Box::new(NotPublic(name)) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if addresses.is_empty() || addresses.iter().any(|a| !allowed(a.ip(), allow_loopback)) {
                return Err(Box::new(NotPublic(name)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The refusal somewhere in an error's chain (a reqwest error wraps the resolver's).
pub(crate) fn refusal_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a NotPublic> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(refused) = err.downcast_ref::<NotPublic>() {
            return Some(refused);
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_unicast_is_public() {
        for refused in [
            "0.0.0.0",
            "0.1.2.3",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.7",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:8.8.8.8",
            "::ffff:127.0.0.1",
            "::8.8.8.8",
            "64:ff9b::808:808",
            "64:ff9b:1::1",
            "100::1",
            "2001::1",
            "2001:db8::1",
            "2002:c000:0204::1",
            "3fff::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(!is_public(ip), "{refused} must not be public");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.254",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
            "2001:4860:4860::8888",
        ] {
            let ip: IpAddr = public.parse().unwrap();
            assert!(is_public(ip), "{public} is public");
        }
    }

    #[test]
    fn loopback_is_allowed_only_where_the_deployment_says_and_nothing_more() {
        for ip in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(allowed(ip, true) && !allowed(ip, false), "{ip}");
        }
        assert!(!allowed("10.0.0.1".parse().unwrap(), true));
        for name in ["localhost", "LocalHost.", "api.localhost", "a.b.localhost."] {
            assert!(check_host(&url::Host::Domain(name), false).is_err(), "{name}");
            assert!(check_host(&url::Host::Domain(name), true).is_ok(), "{name}");
        }
        assert!(check_host(&url::Host::Domain("localhost.example.com"), false).is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_to_loopback() {
        use reqwest::dns::Resolve;
        let name = |text: &str| text.parse::<reqwest::dns::Name>().unwrap();
        let refused = PublicOnly { allow_loopback: false }.resolve(name("localhost")).await;
        assert!(refused.is_err());
        let allowed = PublicOnly { allow_loopback: true }.resolve(name("localhost")).await;
        assert!(allowed.is_ok_and(|mut addrs| addrs.all(|a| a.ip().is_loopback())));
        assert!(check_resolved("localhost", 443, false).await.is_err());
        assert!(check_resolved("localhost", 443, true).await.is_ok());
    }
}
