//! The one URL policy: which URLs a tenant may make this server open.
//!
//! Every URL that arrives in a request (mix inputs and outputs of both dialects and of
//! auto-mixes, images, relays) is parsed here, and every address it resolves to is checked
//! here before anything connects. Two walls:
//!
//! 1. **Schemes** per purpose: inputs `rtmp`/`http`/`https` (RTMP or HTTP-FLV), outputs
//!    `rtmp`, images `http`/`https`. Nothing else ever reaches a network client or FFmpeg
//!    (`file:`, `concat:`, `pipe:`, `tcp:`, `data:`… are refused by name).
//! 2. **Addresses**: by default no tenant URL may reach this machine or its private
//!    networks — loopback, RFC 1918, CGNAT, link-local (the cloud metadata address
//!    169.254.169.254), multicast, unspecified and reserved ranges, IPv6 ULA, link-local and
//!    site-local, and the IPv6 forms that embed one of those IPv4 addresses (v4-mapped,
//!    v4-compatible, NAT64, 6to4). The operator opens ranges on purpose with an allow-list
//!    (`--allow-network CIDR`).
//!
//! Pure: resolving names is the caller's job (it is I/O). The caller resolves, asks
//! [`UrlPolicy::check_addrs`] about *every* address, and connects to a checked address —
//! never resolving the name a second time, so DNS rebinding cannot slip past.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use thiserror::Error;

/// Longest URL accepted (the ZEGO client SDK refuses image URLs over 1024 bytes too).
pub const MAX_URL_LEN: usize = 1024;

/// What a URL is for; decides which schemes are allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A stream pulled into a mix: RTMP or HTTP-FLV.
    MixInput,
    /// Where a mix output is pushed: RTMP.
    MixOutput,
    /// A background, watermark or layer image: HTTP(S).
    Image,
    /// An operator-configured relay target: RTMP.
    Relay,
}

impl Purpose {
    fn schemes(self) -> &'static [Scheme] {
        match self {
            Purpose::MixInput => &[Scheme::Rtmp, Scheme::Http, Scheme::Https],
            Purpose::MixOutput | Purpose::Relay => &[Scheme::Rtmp],
            Purpose::Image => &[Scheme::Http, Scheme::Https],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Rtmp,
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Rtmp => "rtmp",
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Rtmp => 1935,
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A URL that passed the syntax and scheme checks (and the address check, when its host
/// is an IP literal). Its host still has to be resolved and checked before connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedUrl {
    pub scheme: Scheme,
    /// The host as written (no brackets around IPv6).
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/` (may be just `/`).
    pub path_and_query: String,
}

impl CheckedUrl {
    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        IpAddr::from_str(&self.host).ok()
    }
    /// `host:port` with brackets around an IPv6 host, for URLs and `Host` headers.
    pub fn authority(&self) -> String {
        authority(&self.host, self.port)
    }
    /// The same URL with its host replaced by `addr` (what a client that cannot be handed
    /// an address of its own, such as FFmpeg, is given).
    pub fn with_addr(&self, addr: SocketAddr) -> String {
        format!(
            "{}://{}{}",
            self.scheme.as_str(),
            authority(&addr.ip().to_string(), addr.port()),
            self.path_and_query
        )
    }
}

fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Why a URL was refused. The message says what to change.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum UrlRefusal {
    #[error("is longer than {MAX_URL_LEN} bytes")]
    TooLong,
    #[error("is not a URL ({0})")]
    Syntax(String),
    #[error("uses the scheme {scheme:?}; only {allowed} is allowed here")]
    Scheme { scheme: String, allowed: String },
    #[error("must not carry a user name or password")]
    UserInfo,
    #[error("has no host")]
    NoHost,
    #[error(
        "reaches {addr}, a {class} address, which tenants may not reach (the operator can open it with --allow-network)"
    )]
    Address { addr: IpAddr, class: AddressClass },
    #[error("host {0:?} does not resolve")]
    Unresolved(String),
}

/// The address classes refused by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Unspecified,
    Loopback,
    Private,
    SharedCgnat,
    LinkLocal,
    Multicast,
    Broadcast,
    Reserved,
    Documentation,
    UniqueLocal,
    SiteLocal,
    Teredo,
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressClass::Unspecified => "unspecified (\"this network\")",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private (RFC 1918)",
            AddressClass::SharedCgnat => "shared/CGNAT (RFC 6598)",
            AddressClass::LinkLocal => "link-local",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Reserved => "reserved",
            AddressClass::Documentation => "documentation/benchmarking",
            AddressClass::UniqueLocal => "IPv6 unique-local",
            AddressClass::SiteLocal => "IPv6 site-local",
            AddressClass::Teredo => "Teredo",
        })
    }
}

/// A network in CIDR notation (`10.1.0.0/16`, `fd00::/8`, or a plain address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a network in CIDR notation (e.g. 10.0.0.0/8, 127.0.0.1, fd00::/8)")]
pub struct BadCidr(pub String);

impl FromStr for Cidr {
    type Err = BadCidr;
    fn from_str(s: &str) -> Result<Cidr, BadCidr> {
        let bad = || BadCidr(s.to_string());
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr = IpAddr::from_str(a).map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                prefix_eq(u32::from(n) as u128, u32::from(a) as u128, 32, self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                prefix_eq(u128::from(n), u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = bits - prefix;
    (a >> shift) == (b >> shift)
}

/// The policy: the default refusals minus the operator's allow-list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    allow: Vec<Cidr>,
}

impl UrlPolicy {
    pub fn new(allow: Vec<Cidr>) -> UrlPolicy {
        UrlPolicy { allow }
    }

    /// Everything allowed (tests of the engine that pull from loopback; never the server's
    /// default).
    pub fn allow_all() -> UrlPolicy {
        UrlPolicy::new(vec![
            Cidr {
                addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                prefix: 0,
            },
            Cidr {
                addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                prefix: 0,
            },
        ])
    }

    /// Syntax, scheme, no user info; an IP-literal host is checked at once.
    pub fn parse(&self, raw: &str, purpose: Purpose) -> Result<CheckedUrl, UrlRefusal> {
        let url = syntax(raw, purpose)?;
        if let Some(ip) = url.ip() {
            self.check_ip(ip)?;
        }
        Ok(url)
    }
    /// Whether a tenant URL may reach `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), UrlRefusal> {
        let embedded = embedded_v4(ip).map(IpAddr::V4);
        if self
            .allow
            .iter()
            .any(|n| n.contains(ip) || embedded.is_some_and(|e| n.contains(e)))
        {
            return Ok(());
        }
        match classify(ip) {
            Some(class) => Err(UrlRefusal::Address { addr: ip, class }),
            None => Ok(()),
        }
    }

    /// Every resolved address must pass: a name with one forbidden address among public
    /// ones is refused whole (that is what a rebinding attack looks like).
    pub fn check_addrs(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), UrlRefusal> {
        if addrs.is_empty() {
            return Err(UrlRefusal::Unresolved(host.to_string()));
        }
        for a in addrs {
            self.check_ip(a.ip())?;
        }
        Ok(())
    }
}

/// The syntax and scheme checks of [`UrlPolicy::parse`] without the address check (for
/// parsing where the policy is applied later, at connect time).
pub fn syntax(raw: &str, purpose: Purpose) -> Result<CheckedUrl, UrlRefusal> {
    if raw.len() > MAX_URL_LEN {
        return Err(UrlRefusal::TooLong);
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(UrlRefusal::Syntax(
            "control characters or spaces".to_string(),
        ));
    }
    let allowed = purpose.schemes();
    let allowed_list = || {
        allowed
            .iter()
            .map(|s| format!("{}://", s.as_str()))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let Some((scheme_raw, rest)) = raw.split_once(':') else {
        return Err(UrlRefusal::Syntax("no scheme".into()));
    };
    let scheme_lc = scheme_raw.to_ascii_lowercase();
    let scheme = allowed
        .iter()
        .copied()
        .find(|s| s.as_str() == scheme_lc)
        .ok_or_else(|| UrlRefusal::Scheme {
            scheme: scheme_lc.clone(),
            allowed: allowed_list(),
        })?;
    let Some(rest) = rest.strip_prefix("//") else {
        return Err(UrlRefusal::Syntax(format!("{scheme_lc}: without //")));
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(end);
    if auth.contains('@') {
        return Err(UrlRefusal::UserInfo);
    }
    let (host, port) = split_host_port(auth)?;
    let host = host.to_ascii_lowercase();
    if host.is_empty() {
        return Err(UrlRefusal::NoHost);
    }
    if !host.contains(':')
        && !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    {
        return Err(UrlRefusal::Syntax(format!(
            "host {host:?} has characters a host name cannot have"
        )));
    }
    // HTTP clients parse hosts the WHATWG way, where `2130706433`, `0x7f.1` and `127.1`
    // are all 127.0.0.1 and are connected to without any lookup: take the host exactly
    // as they will, so an address in disguise is checked as the address it is.
    let host = if matches!(scheme, Scheme::Http | Scheme::Https) {
        match url::Url::parse(raw)
            .map_err(|e| UrlRefusal::Syntax(e.to_string()))?
            .host()
        {
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(url::Host::Domain(d)) => d.to_string(),
            None => return Err(UrlRefusal::NoHost),
        }
    } else {
        host
    };
    // Fragments never go on the wire.
    let tail = tail.split('#').next().unwrap_or("");
    let path_and_query = if tail.starts_with('/') {
        tail.to_string()
    } else {
        format!("/{tail}")
    };
    Ok(CheckedUrl {
        scheme,
        port: port.unwrap_or(scheme.default_port()),
        host,
        path_and_query,
    })
}

fn split_host_port(auth: &str) -> Result<(&str, Option<u16>), UrlRefusal> {
    let bad_port = || UrlRefusal::Syntax(format!("bad port in {auth:?}"));
    if let Some(v6) = auth.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| UrlRefusal::Syntax("unclosed [".into()))?;
        if Ipv6Addr::from_str(host).is_err() {
            return Err(UrlRefusal::Syntax(format!(
                "{host:?} is not an IPv6 address"
            )));
        }
        return match after {
            "" => Ok((host, None)),
            p => {
                let p = p.strip_prefix(':').ok_or_else(bad_port)?;
                Ok((host, Some(parse_port(p).ok_or_else(bad_port)?)))
            }
        };
    }
    match auth.rsplit_once(':') {
        Some((h, p)) => Ok((h, Some(parse_port(p).ok_or_else(bad_port)?))),
        None => Ok((auth, None)),
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&p| p != 0)
}

/// The IPv4 address an IPv6 one stands for (v4-mapped, v4-compatible, NAT64, 6to4).
fn embedded_v4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    let n = u128::from(v6);
    let low = Ipv4Addr::from((n & 0xffff_ffff) as u32);
    if n >> 32 == 0xffff || (n >> 32 == 0 && n > 1) || n >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(low);
    }
    if v6.segments()[0] == 0x2002 {
        return Some(Ipv4Addr::from(((n >> 80) & 0xffff_ffff) as u32));
    }
    None
}

/// The class of a refused-by-default address; `None` for a public one.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(ip) {
                return classify_v4(v4);
            }
            let seg = v6.segments();
            let n = u128::from(v6);
            if v6.is_unspecified() {
                Some(AddressClass::Unspecified)
            } else if v6.is_loopback() {
                Some(AddressClass::Loopback)
            } else if seg[0] & 0xff00 == 0xff00 {
                Some(AddressClass::Multicast)
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some(AddressClass::LinkLocal)
            } else if seg[0] & 0xffc0 == 0xfec0 {
                Some(AddressClass::SiteLocal)
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some(AddressClass::UniqueLocal)
            } else if seg[0] == 0x2001 && seg[1] == 0 {
                Some(AddressClass::Teredo)
            } else if seg[0] == 0x2001 && seg[1] == 0x0db8 {
                Some(AddressClass::Documentation)
            } else if n >> 64 == 0x0100_0000_0000_0000 || n >> 96 == 0 {
                // 100::/64 discard-only; the rest of ::/96 not caught above.
                Some(AddressClass::Reserved)
            } else {
                None
            }
        }
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let o = ip.octets();
    let n = u32::from(ip);
    let within = |net: u32, prefix: u32| (n >> (32 - prefix)) == (net >> (32 - prefix));
    if o[0] == 0 {
        Some(AddressClass::Unspecified)
    } else if o[0] == 127 {
        Some(AddressClass::Loopback)
    } else if o[0] == 10 || within(0xac10_0000, 12) || within(0xc0a8_0000, 16) {
        Some(AddressClass::Private)
    } else if within(0x6440_0000, 10) {
        Some(AddressClass::SharedCgnat)
    } else if within(0xa9fe_0000, 16) {
        Some(AddressClass::LinkLocal)
    } else if ip.is_broadcast() {
        Some(AddressClass::Broadcast)
    } else if o[0] >= 240 || within(0xc000_0000, 24) {
        Some(AddressClass::Reserved)
    } else if o[0] >= 224 {
        Some(AddressClass::Multicast)
    } else if within(0xc000_0200, 24)
        || within(0xc633_6400, 24)
        || within(0xcb00_7100, 24)
        || within(0xc612_0000, 15)
    {
        Some(AddressClass::Documentation)
    } else {
        None
    }
}

/// A URL reduced to what may be shown in logs and introspection: scheme, host, port and
/// the first path segment (the RTMP app); every later segment (stream keys), the query
/// (tokens) and any user info are replaced.
pub fn redact(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return "<not a URL>".to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (auth, tail) = rest.split_at(end);
    let host = auth.rsplit('@').next().unwrap_or("");
    let path = tail.split(['?', '#']).next().unwrap_or("");
    let mut out = format!("{scheme}://{host}");
    let mut segs = path.split('/').skip(1);
    if let Some(first) = segs.next() {
        out.push('/');
        out.push_str(first);
    }
    for _ in segs {
        out.push_str("/***");
    }
    if tail.contains('?') {
        out.push_str("?***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(p: &UrlPolicy, url: &str, purpose: Purpose) -> UrlRefusal {
        p.parse(url, purpose)
            .expect_err(&format!("{url} should be refused"))
    }

    #[test]
    fn schemes_other_than_the_purposes_are_refused_by_name() {
        let p = UrlPolicy::default();
        for bad in [
            "file:///etc/passwd",
            "concat:/a|/b",
            "subfile:,,start,0,end,0,,:/etc/passwd",
            "pipe:0",
            "tcp://8.8.8.8:80",
            "udp://8.8.8.8:53",
            "data:text/plain,hi",
            "rtmps://8.8.8.8/a/b",
            "gopher://8.8.8.8/",
            "/etc/passwd",
        ] {
            let e = p.parse(bad, Purpose::MixInput);
            assert!(
                matches!(e, Err(UrlRefusal::Scheme { .. } | UrlRefusal::Syntax(_))),
                "{bad}: {e:?}"
            );
        }
        assert!(matches!(
            refused(&p, "http://8.8.8.8/a/b", Purpose::MixOutput),
            UrlRefusal::Scheme { .. }
        ));
        assert!(matches!(
            refused(&p, "rtmp://8.8.8.8/a/b", Purpose::Image),
            UrlRefusal::Scheme { .. }
        ));
        let ok = p.parse("RTMP://Example.COM/live/s?k=1#x", Purpose::MixInput);
        assert_eq!(
            ok,
            Ok(CheckedUrl {
                scheme: Scheme::Rtmp,
                host: "example.com".into(),
                port: 1935,
                path_and_query: "/live/s?k=1".into(),
            })
        );
        assert_eq!(
            p.parse("https://[2606:4700::1]:8443/a.png", Purpose::Image)
                .map(|u| (u.port, u.authority())),
            Ok((8443, "[2606:4700::1]:8443".to_string()))
        );
    }

    #[test]
    fn malformed_urls_are_refused() {
        let p = UrlPolicy::default();
        for bad in [
            "rtmp://user:pw@8.8.8.8/a/b",
            "rtmp://8.8.8.8:0/a",
            "rtmp://8.8.8.8:99999/a",
            "rtmp://8.8.8.8:x/a",
            "rtmp:///a/b",
            "rtmp://[::1/a",
            "rtmp://ex ample.com/a",
            "rtmp://exa%41mple.com/a",
            "rtmp:8.8.8.8/a",
        ] {
            assert!(p.parse(bad, Purpose::MixInput).is_err(), "{bad}");
        }
        let long = format!("http://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(refused(&p, &long, Purpose::Image), UrlRefusal::TooLong);
    }

    #[test]
    fn private_and_special_addresses_are_refused_by_default() {
        let p = UrlPolicy::default();
        for (ip, class) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.8.9.10", AddressClass::Loopback),
            ("0.0.0.0", AddressClass::Unspecified),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::SharedCgnat),
            ("169.254.169.254", AddressClass::LinkLocal),
            ("224.0.0.1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Broadcast),
            ("240.0.0.1", AddressClass::Reserved),
            ("::1", AddressClass::Loopback),
            ("::", AddressClass::Unspecified),
            ("fe80::1", AddressClass::LinkLocal),
            ("fd00::1", AddressClass::UniqueLocal),
            ("fc12::1", AddressClass::UniqueLocal),
            ("ff02::1", AddressClass::Multicast),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::LinkLocal),
            ("::127.0.0.1", AddressClass::Loopback),
            ("64:ff9b::a9fe:a9fe", AddressClass::LinkLocal),
            ("2002:0a00:0001::1", AddressClass::Private),
            ("2001:0::1", AddressClass::Teredo),
        ] {
            let addr: IpAddr = ip.parse().unwrap();
            assert_eq!(classify(addr), Some(class), "{ip}");
            assert_eq!(
                p.check_ip(addr),
                Err(UrlRefusal::Address { addr, class }),
                "{ip}"
            );
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1",
        ] {
            assert_eq!(classify(public.parse().unwrap()), None, "{public}");
        }
        // Literal hosts are checked while parsing.
        let e = refused(
            &p,
            "http://169.254.169.254/latest/meta-data",
            Purpose::Image,
        );
        assert!(e.to_string().contains("link-local"), "{e}");
        assert!(matches!(
            refused(&p, "rtmp://[::ffff:10.0.0.1]/a/b", Purpose::MixOutput),
            UrlRefusal::Address { .. }
        ));
    }

    #[test]
    fn addresses_in_disguise_are_checked_as_the_address_they_are() {
        let p = UrlPolicy::default();
        for disguised in [
            "http://2130706433/a.png",
            "http://0x7f.1/a.png",
            "http://127.1/a.png",
            "http://0177.0.0.1/a.png",
            "https://[::ffff:7f00:1]/a.png",
            "http://169.254.43518/latest",
        ] {
            let e = refused(&p, disguised, Purpose::Image);
            assert!(
                matches!(e, UrlRefusal::Address { .. }),
                "{disguised}: {e:?}"
            );
        }
        assert_eq!(
            p.parse("http://EXAMPLE.com./a.png", Purpose::Image)
                .map(|u| u.host),
            Ok("example.com.".to_string())
        );
    }

    #[test]
    fn the_operator_opens_ranges_on_purpose() {
        let p = UrlPolicy::new(vec![
            "127.0.0.1".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ]);
        assert!(p.check_ip("127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check_ip("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(p.check_ip("127.0.0.2".parse().unwrap()).is_err());
        assert!(p.check_ip("10.200.0.1".parse().unwrap()).is_ok());
        assert!(p.check_ip("169.254.169.254".parse().unwrap()).is_err());
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        assert_eq!("fd00::/8".parse::<Cidr>().unwrap().to_string(), "fd00::/8");
        let all = UrlPolicy::allow_all();
        assert!(all.check_ip("::1".parse().unwrap()).is_ok());
        assert!(all.check_ip("127.0.0.1".parse().unwrap()).is_ok());
    }

    #[test]
    fn every_resolved_address_must_pass() {
        let p = UrlPolicy::default();
        let public: SocketAddr = "8.8.8.8:80".parse().unwrap();
        let private: SocketAddr = "10.0.0.1:80".parse().unwrap();
        assert!(p.check_addrs("x", &[public]).is_ok());
        assert!(p.check_addrs("x", &[public, private]).is_err());
        assert_eq!(
            p.check_addrs("x", &[]),
            Err(UrlRefusal::Unresolved("x".into()))
        );
    }

    #[test]
    fn with_addr_pins_the_checked_address() {
        let u = UrlPolicy::default()
            .parse("rtmp://example.com/live/s?t=1", Purpose::MixInput)
            .unwrap();
        assert_eq!(
            u.with_addr("93.184.216.34:1935".parse().unwrap()),
            "rtmp://93.184.216.34:1935/live/s?t=1"
        );
        assert_eq!(
            u.with_addr("[2606:2800::1]:1935".parse().unwrap()),
            "rtmp://[2606:2800::1]:1935/live/s?t=1"
        );
    }

    #[test]
    fn redaction_keeps_host_and_path_shape_only() {
        assert_eq!(
            redact("rtmp://cdn.example.com:1935/live/secretkey?token=abc"),
            "rtmp://cdn.example.com:1935/live/***?***"
        );
        assert_eq!(
            redact("https://user:pw@img.example.com/a/b/c.png"),
            "https://img.example.com/a/***/***"
        );
        assert_eq!(redact("rtmp://h"), "rtmp://h");
        assert_eq!(redact("garbage"), "<not a URL>");
    }
}
