//! Where honnin may send requests of its own: the webhook egress policy.
//!
//! A webhook URL is chosen by an API key holder, and the server POSTs to it, so without
//! a policy any enroller could make the server reach its own loopback interface, the
//! cloud metadata service (169.254.169.254) or the private network behind it, and read
//! the outcome back from the delivery log (a port scanner). The policy:
//!
//! * `https://` only, unless the operator sets `webhooks.allow_http`;
//! * the destination's addresses are checked **at delivery time**, after DNS resolution,
//!   and the connection goes to an address that passed (no second lookup, so a name
//!   that resolves to a public address at registration and to 127.0.0.1 later gains
//!   nothing: "DNS rebinding");
//! * refused unless the operator allow-lists them (`webhooks.allowed_networks`, CIDRs):
//!   loopback, unspecified, link-local (169.254/16, fe80::/10), private (RFC 1918,
//!   fc00::/7), shared address space (CGNAT, 100.64/10), multicast and broadcast,
//!   reserved and documentation ranges, and IPv6 forms that embed an IPv4 address
//!   (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) unless the embedded address is
//!   allowed. Numeric spellings (`0x7f000001`, `2130706433`, `127.1`, `[::ffff:7f00:1]`)
//!   are normalised by the URL parser before the check;
//! * public addresses are allowed unless `webhooks.allow_public` is false (then only
//!   the allow-list is reachable);
//! * redirects are never followed and no proxy is used (the server's HTTP client).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::error::{CoreError, Result};

/// The egress policy, built from `webhooks.*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressPolicy {
    /// Whether `http://` URLs are allowed (`webhooks.allow_http`; default: https only).
    pub allow_http: bool,
    /// Whether public addresses may be reached (`webhooks.allow_public`, default true);
    /// false: only `allowed_networks`.
    pub allow_public: bool,
    /// Networks reachable although non-public (loopback, private, link-local…), parsed
    /// from `webhooks.allowed_networks`.
    pub allowed_networks: Vec<IpNet>,
}

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A non-public range (the name says which).
    NonPublic(&'static str),
    /// A public address, while `allow_public` is false.
    PublicNotAllowed,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NonPublic(what) => write!(f, "{what} addresses are not allowed"),
            Refusal::PublicNotAllowed => f.write_str("only allow-listed networks are allowed"),
        }
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    Some(match o {
        [0, ..] => "unspecified (0.0.0.0/8)",
        [10, ..] => "private (10/8)",
        [100, b, ..] if (64..128).contains(&b) => "shared address space (100.64/10)",
        [127, ..] => "loopback",
        [169, 254, ..] => "link-local",
        [172, b, ..] if (16..32).contains(&b) => "private (172.16/12)",
        [192, 0, 0, _] => "IETF protocol assignment (192.0.0/24)",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => "documentation",
        [192, 88, 99, _] => "6to4 relay anycast",
        [192, 168, ..] => "private (192.168/16)",
        [198, b, ..] if b == 18 || b == 19 => "benchmarking (198.18/15)",
        [a, ..] if (224..240).contains(&a) => "multicast",
        [a, ..] if a >= 240 => "reserved or broadcast",
        _ => return None,
    })
}

/// The IPv4 address an IPv6 address embeds, for the forms that route to IPv4.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        // :: and ::1 are judged as IPv6 (unspecified, loopback).
        [0, 0, 0, 0, 0, 0, 0, 0] | [0, 0, 0, 0, 0, 0, 0, 1] => None,
        // IPv4-mapped ::ffff:a.b.c.d, IPv4-translated (SIIT) ::ffff:0:a.b.c.d, and
        // IPv4-compatible ::a.b.c.d (deprecated; ::2 is 0.0.0.2).
        [0, 0, 0, 0, 0, 0xffff, _, _]
        | [0, 0, 0, 0, 0xffff, 0, _, _]
        | [0, 0, 0, 0, 0, 0, _, _] => Some(tail()),
        // NAT64 well-known prefix 64:ff9b::/96.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail()),
        // 6to4 2002:a.b.c.d::/48.
        [0x2002, a, b, ..] => Some(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        )),
        // Teredo 2001:0::/32: the client address is stored inverted in the last 32 bits.
        [0x2001, 0, ..] => {
            let v = (((s[6] as u32) << 16) | s[7] as u32) ^ 0xffff_ffff;
            Some(Ipv4Addr::from(v))
        }
        _ => None,
    }
}

/// Why an IPv6 address (one that embeds no IPv4 address) is not a public destination:
/// anything outside global unicast (2000::/3), and the special ranges inside it.
fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(match s {
        _ if ip.is_unspecified() => "unspecified (::)",
        _ if ip.is_loopback() => "loopback",
        [a, ..] if a & 0xfe00 == 0xfc00 => "unique local (fc00::/7)",
        [a, ..] if a & 0xffc0 == 0xfe80 => "link-local",
        [a, ..] if a & 0xff00 == 0xff00 => "multicast",
        [a, ..] if a & 0xe000 != 0x2000 => "not global unicast (outside 2000::/3)",
        [0x2001, 0xdb8, ..] => "documentation",
        [0x2001, b, ..] if b < 0x200 => "IETF protocol assignment (2001::/23)",
        [0x3fff, b, ..] if b < 0x1000 => "documentation (3fff::/20)",
        _ => return None,
    })
}

impl EgressPolicy {
    /// Parses the allow-list (`webhooks.allowed_networks`), e.g. `["10.0.0.0/8", "::1/128"]`.
    pub fn new(allow_http: bool, allow_public: bool, networks: &[String]) -> Result<Self> {
        let allowed_networks = networks
            .iter()
            .map(|n| {
                n.trim().parse::<IpNet>().or_else(|_| n.trim().parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                    CoreError::Config(format!(
                        "webhooks.allowed_networks: `{n}` is not a CIDR (e.g. 10.0.0.0/8) or an address"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok(EgressPolicy {
            allow_http,
            allow_public,
            allowed_networks,
        })
    }

    fn listed(&self, ip: IpAddr) -> bool {
        self.allowed_networks.iter().any(|n| n.contains(&ip))
    }

    /// Whether a request may go to `ip`.
    pub fn check_addr(&self, ip: IpAddr) -> std::result::Result<(), Refusal> {
        if self.listed(ip) {
            return Ok(());
        }
        let range = match ip {
            IpAddr::V4(v4) => v4_range(v4),
            IpAddr::V6(v6) => match embedded_v4(v6) {
                Some(v4) if self.listed(IpAddr::V4(v4)) => return Ok(()),
                Some(v4) => v4_range(v4),
                None => v6_range(v6),
            },
        };
        match range {
            Some(what) => Err(Refusal::NonPublic(what)),
            None if self.allow_public => Ok(()),
            None => Err(Refusal::PublicNotAllowed),
        }
    }

    /// Whether a name must be resolved at all: with no public destinations and nothing
    /// allow-listed, every name is refused without a DNS query.
    pub fn resolves_names(&self) -> bool {
        self.allow_public || !self.allowed_networks.is_empty()
    }

    /// Checks a webhook URL at registration: absolute `https://` (or `http://` when
    /// allowed), with a host, at most 2048 characters; a literal address or a
    /// `localhost` name must pass [`EgressPolicy::check_addr`] already (names are
    /// checked again, resolved, at every delivery). Returns the normalised URL.
    pub fn check_url(&self, raw: &str) -> Result<url::Url> {
        let bad = |why: String| CoreError::InvalidParameter(format!("url: {why}"));
        if raw.len() > 2048 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad(
                "must be an absolute URL of at most 2048 characters, without spaces".into(),
            ));
        }
        // The URL standard reads `https:///x` as `https://x/`; a URL without an
        // authority is refused as written instead.
        if raw
            .split_once("://")
            .is_none_or(|(_, rest)| rest.is_empty() || rest.starts_with('/'))
        {
            return Err(bad(
                "must be an absolute URL with a host (scheme://host/…)".into()
            ));
        }
        let u = url::Url::parse(raw).map_err(|e| bad(format!("not an absolute URL ({e})")))?;
        match u.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(bad(
                    "must be https:// (plain http is off: the operator setting webhooks.allow_http enables it)".into(),
                ))
            }
            other => return Err(bad(format!("scheme `{other}` is not https"))),
        }
        match u.host() {
            None => return Err(bad("has no host".into())),
            Some(url::Host::Ipv4(ip)) => self.check_literal(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_literal(IpAddr::V6(ip))?,
            Some(url::Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if d == "localhost" || d.ends_with(".localhost") {
                    self.check_literal(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
                }
            }
        }
        Ok(u)
    }

    fn check_literal(&self, ip: IpAddr) -> Result<()> {
        self.check_addr(ip).map_err(|r| {
            CoreError::InvalidParameter(format!(
                "url: the destination is not allowed: {r} (an operator can allow-list networks with webhooks.allowed_networks)"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_policy() -> EgressPolicy {
        EgressPolicy::new(true, true, &[]).unwrap()
    }

    #[test]
    fn internal_destinations_are_refused_in_every_spelling() {
        let p = open_policy();
        for url in [
            "http://127.0.0.1:8080/x",
            "http://localhost/x",
            "http://api.localhost./x",
            "http://[::1]/x",
            "http://0x7f000001/x",
            "http://2130706433/x",
            "http://127.1/x",
            "http://0177.0.0.1/x",
            "http://0.0.0.0/x",
            "http://[::]/x",
            "http://[::ffff:127.0.0.1]/x",
            "http://[::ffff:7f00:1]/x",
            "http://[64:ff9b::a9fe:a9fe]/x",
            "http://[2002:a9fe:a9fe::1]/x",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/x",
            "http://10.1.2.3/x",
            "http://172.16.0.1/x",
            "http://172.31.255.255/x",
            "http://192.168.1.1/x",
            "http://[fd00::1]/x",
            "http://100.64.0.1/x",
            "http://100.127.255.255/x",
            "http://224.0.0.1/x",
            "http://255.255.255.255/x",
            "http://[ff02::1]/x",
            "http://198.18.0.1/x",
        ] {
            let e = p.check_url(url).unwrap_err();
            assert_eq!(e.code(), "InvalidParameter", "{url}");
            assert!(e.to_string().contains("not allowed"), "{url}: {e}");
        }
        for url in [
            "https://example.com/hook",
            "http://93.184.215.14/x",
            "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/x",
            "https://100.128.0.1/x",
            "https://172.32.0.1/x",
        ] {
            assert!(p.check_url(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn scheme_shape_and_the_allow_list() {
        let strict = EgressPolicy::new(false, true, &[]).unwrap();
        assert!(strict.check_url("https://example.com/h").is_ok());
        let e = strict.check_url("http://example.com/h").unwrap_err();
        assert!(e.to_string().contains("https"), "{e}");
        for bad in [
            "ftp://x/y",
            "https://",
            "example.com",
            "https://a b",
            "https:///x",
            "file:///etc/passwd",
        ] {
            assert!(strict.check_url(bad).is_err(), "{bad}");
        }
        let p = EgressPolicy::new(true, false, &["127.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(p.check_url("http://127.0.0.1:9/h").is_ok());
        assert!(p.check_url("http://[::1]:9/h").is_ok());
        assert!(
            p.check_url("http://[::ffff:127.0.0.1]:9/h").is_ok(),
            "embedded, allow-listed"
        );
        assert!(p.check_url("http://10.0.0.1/h").is_err(), "not listed");
        assert_eq!(
            p.check_addr("93.184.215.14".parse().unwrap()),
            Err(Refusal::PublicNotAllowed)
        );
        assert!(p.resolves_names());
        assert!(!EgressPolicy::new(false, false, &[])
            .unwrap()
            .resolves_names());
        assert!(EgressPolicy::new(false, true, &["not-a-cidr".into()]).is_err());
    }

    #[test]
    fn ipv6_forms_that_embed_ipv4_are_judged_by_the_embedded_address() {
        let p = open_policy();
        let refused = |s: &str| p.check_addr(s.parse().unwrap()).is_err();
        // SIIT (IPv4-translated): 169.254.169.254, 127.0.0.1, 10.0.0.1.
        assert!(refused("::ffff:0:a9fe:a9fe"));
        assert!(refused("::ffff:0:127.0.0.1"));
        assert!(refused("::ffff:0:a00:1"));
        assert!(refused("::2"), "IPv4-compatible 0.0.0.2");
        // Outside global unicast, or special inside it.
        for other in [
            "5f00::1",
            "3fff::1",
            "3fff:fff::1",
            "4000::1",
            "100::1",
            "2001:db8::1",
        ] {
            assert!(refused(other), "{other}");
        }
        assert!(!refused("2606:4700::1111"));
        assert!(refused("::ffff:10.0.0.1"));
        assert!(refused("::10.0.0.1"));
        assert!(refused("64:ff9b::192.168.0.1"));
        assert!(refused("2002:c0a8:0001::1"));
        // Teredo, client 127.0.0.1 stored inverted: 80ff:fffe.
        assert!(refused("2001:0:4136:e378:8000:63bf:80ff:fffe"));
        assert!(!refused("::ffff:93.184.215.14"));
        assert!(!refused("2002:5db8:d70e::1"));
    }
}
