//! The adapter to external calendar feeds: one HTTPS GET under Roost's rules against server-side
//! request forgery (docs/decisions.md "Calendar sync"): HTTPS only, every resolved address public
//! (checked at every connection, so after each redirect too), at most 3 redirects, 1 MB, 15 s.
//! `allow_loopback` (the local stack only: `ROOST_CALENDAR_FEEDS_ALLOW_LOOPBACK`, which the
//! template never sets) also allows `http` and loopback addresses, for the feed a test serves.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

pub const MAX_FEED_BYTES: usize = 1024 * 1024;
pub const MAX_REDIRECTS: usize = 3;
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(15);
pub const ALLOW_LOOPBACK_ENV: &str = "ROOST_CALENDAR_FEEDS_ALLOW_LOOPBACK";

/// Fetches feeds; built once per process.
pub struct FeedFetcher {
    client: reqwest::Client,
    allow_loopback: bool,
}

impl FeedFetcher {
    pub fn new(allow_loopback: bool) -> anyhow::Result<Self> {
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if let Err(e) = check_url(attempt.url(), allow_loopback) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(policy)
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .dns_resolver(Arc::new(PublicOnly { allow_loopback }))
            .no_proxy()
            .user_agent("Roost-Calendar-Sync/1.0")
            .build()?;
        Ok(Self { client, allow_loopback })
    }

    pub fn from_env() -> anyhow::Result<Self> {
        Self::new(Self::loopback_allowed())
    }

    /// Whether this process may fetch `http` feeds on loopback (`ALLOW_LOOPBACK_ENV=true`).
    pub fn loopback_allowed() -> bool {
        std::env::var(ALLOW_LOOPBACK_ENV).is_ok_and(|v| v == "true")
    }

    /// The feed's text, or why not (recorded on the import as it is).
    pub async fn fetch(&self, raw_url: &str) -> Result<String, String> {
        let url = url::Url::parse(raw_url).map_err(|_| "the URL is not valid".to_owned())?;
        check_url(&url, self.allow_loopback)?;
        let mut res = self.client.get(url).send().await.map_err(describe)?;
        if !res.status().is_success() {
            return Err(format!("the feed answered HTTP {}", res.status().as_u16()));
        }
        if res.content_length().is_some_and(|n| n > MAX_FEED_BYTES as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > MAX_FEED_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body).map_err(|_| "the feed is not UTF-8 text".to_owned())
    }
}

fn too_large() -> String {
    format!("the feed is larger than {} KB", MAX_FEED_BYTES / 1024)
}

/// A reqwest error without its URL (a feed URL carries the other platform's secret).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    if e.is_timeout() {
        format!("the feed did not answer within {} s", FETCH_TIMEOUT.as_secs())
    } else if e.is_redirect() {
        format!("redirect refused: {}", root_cause(&e))
    } else if e.is_connect() {
        format!("could not connect: {}", root_cause(&e))
    } else {
        format!("the fetch failed: {}", root_cause(&e))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The URL rules checked before any connection: `https` (or `http` with `allow_loopback`), a
/// host, no credentials, and a literal IP address only if it is public.
pub fn check_url(url: &url::Url, allow_loopback: bool) -> Result<(), String> {
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback => {}
        _ => return Err("only https feed URLs are allowed".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("feed URLs with credentials are not allowed".into());
    }
    match url.host() {
        None => Err("the feed URL has no host".into()),
        Some(url::Host::Ipv4(ip)) => check_address(IpAddr::V4(ip), allow_loopback),
        Some(url::Host::Ipv6(ip)) => check_address(IpAddr::V6(ip), allow_loopback),
        Some(url::Host::Domain(_)) => Ok(()),
    }
}

/// A public unicast address (or loopback when allowed).
pub fn check_address(ip: IpAddr, allow_loopback: bool) -> Result<(), String> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    if ip.is_loopback() && allow_loopback {
        return Ok(());
    }
    let private = match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4().is_some() // IPv4-compatible and NAT64 forms: refused rather than decoded
        }
    };
    if private { Err(format!("the feed's address {ip} is not a public address")) } else { Ok(()) }
}

/// DNS resolution that refuses a name if any of its addresses is not public: checked for every
/// connection reqwest opens, redirects included.
struct PublicOnly {
    allow_loopback: bool,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err("the feed's host has no address".into());
            }
            for a in &addrs {
                check_address(a.ip(), allow_loopback)?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn only_https_to_public_hosts() {
        assert!(check_url(&url("https://www.airbnb.com/calendar/ical/1.ics?s=x"), false).is_ok());
        assert!(check_url(&url("http://www.airbnb.com/x.ics"), false).is_err());
        assert!(check_url(&url("ftp://example.com/x.ics"), false).is_err());
        assert!(check_url(&url("https://user:pw@example.com/x.ics"), false).is_err());
        for bad in [
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest/meta-data",
            "https://192.168.0.1/x",
            "https://172.16.0.1/x",
            "https://100.64.0.1/x",
            "https://0.0.0.0/x",
            "https://[::1]/x",
            "https://[fe80::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://[::ffff:169.254.169.254]/x",
        ] {
            assert!(check_url(&url(bad), false).is_err(), "{bad}");
        }
        assert!(check_url(&url("https://93.184.215.14/x"), false).is_ok());
        assert!(check_url(&url("https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/x"), false).is_ok());
    }

    #[test]
    fn loopback_only_when_allowed_and_never_private_networks() {
        assert!(check_url(&url("http://127.0.0.1:8123/feed.ics"), true).is_ok());
        assert!(check_url(&url("http://10.0.0.1/feed.ics"), true).is_err());
        assert!(check_url(&url("http://169.254.169.254/"), true).is_err());
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused() {
        let f = FeedFetcher::new(false).unwrap();
        let e = f.fetch("https://localhost:1/feed.ics").await.unwrap_err();
        assert!(e.contains("not a public address"), "{e}");
        let e = f.fetch("http://example.com/feed.ics").await.unwrap_err();
        assert!(e.contains("only https"), "{e}");
    }
}
