//! The share of the load journey's requests a CDN in front of the API would absorb (issue 22):
//! each answer's own `Cache-Control` says whether a shared cache may keep it and for how long;
//! the requests, replayed in the order they were sent through one edge cache that never evicts,
//! give the share it would have answered itself. Conservative: `stale-while-revalidate` and the
//! 304s a CDN turns into hits are not counted, and every virtual guest is behind the same edge.

use std::collections::HashMap;

use serde::Serialize;

/// One request of the journey, as the client saw its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// When it was sent, from the start of the run.
    pub at_ms: u64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub cache_control: Option<String>,
}

/// What a CDN would have done with a run's requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CdnShare {
    pub requests: u64,
    /// Answers a shared cache may keep (a public GET or HEAD 200 with a max-age).
    pub cacheable: u64,
    /// Requests an edge would have answered from its cache: a cacheable request whose path and
    /// query it had kept, still fresh.
    pub absorbed: u64,
    pub cacheable_share: f64,
    pub absorbed_share: f64,
}

/// How many seconds a shared cache may keep this answer: `s-maxage`, else `max-age`, of a
/// `public` answer to a GET or HEAD that is a 200 and says nothing forbidding (`private`,
/// `no-store`, `no-cache`); `None` otherwise.
pub fn shared_ttl(method: &str, status: u16, cache_control: Option<&str>) -> Option<u64> {
    if !matches!(method, "GET" | "HEAD") || status != 200 {
        return None;
    }
    let directives: Vec<(String, Option<&str>)> = cache_control?
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| match d.split_once('=') {
            Some((name, value)) => (name.trim().to_ascii_lowercase(), Some(value.trim().trim_matches('"'))),
            None => (d.to_ascii_lowercase(), None),
        })
        .collect();
    let has = |name: &str| directives.iter().any(|(n, _)| n == name);
    if !has("public") || has("private") || has("no-store") || has("no-cache") {
        return None;
    }
    let seconds = |name: &str| {
        directives.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.and_then(|v| v.parse::<u64>().ok()))
    };
    seconds("s-maxage").or_else(|| seconds("max-age")).filter(|s| *s > 0)
}

/// The run's requests through one edge cache (the module doc says what is left out).
pub fn share(requests: &[Observed]) -> CdnShare {
    let mut ordered: Vec<&Observed> = requests.iter().collect();
    ordered.sort_by_key(|r| r.at_ms);
    let mut fresh_until: HashMap<(&str, &str), u64> = HashMap::new();
    let mut out = CdnShare { requests: requests.len() as u64, ..CdnShare::default() };
    for r in ordered {
        let Some(ttl) = shared_ttl(&r.method, r.status, r.cache_control.as_deref()) else { continue };
        out.cacheable += 1;
        let key = (r.path.as_str(), r.query.as_str());
        if fresh_until.get(&key).is_some_and(|until| r.at_ms < *until) {
            out.absorbed += 1;
        } else {
            fresh_until.insert(key, r.at_ms + ttl * 1000);
        }
    }
    let of_all = |n: u64| if out.requests == 0 { 0.0 } else { n as f64 / out.requests as f64 };
    out.cacheable_share = of_all(out.cacheable);
    out.absorbed_share = of_all(out.absorbed);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(at_ms: u64, method: &str, path: &str, query: &str, status: u16, cc: Option<&str>) -> Observed {
        Observed {
            at_ms,
            method: method.into(),
            path: path.into(),
            query: query.into(),
            status,
            cache_control: cc.map(Into::into),
        }
    }

    #[test]
    fn only_public_successful_reads_with_a_max_age_may_be_kept() {
        assert_eq!(shared_ttl("GET", 200, Some("public, max-age=30")), Some(30));
        assert_eq!(shared_ttl("HEAD", 200, Some("Public, Max-Age=60, stale-while-revalidate=300")), Some(60));
        assert_eq!(shared_ttl("GET", 200, Some("public, max-age=60, s-maxage=120")), Some(120));
        assert_eq!(shared_ttl("GET", 200, Some("private, no-store")), None);
        assert_eq!(shared_ttl("GET", 200, Some("no-store")), None);
        assert_eq!(shared_ttl("GET", 200, Some("public, no-cache, max-age=60")), None);
        assert_eq!(shared_ttl("GET", 200, Some("public")), None, "no lifetime, no hit");
        assert_eq!(shared_ttl("GET", 200, Some("public, max-age=0")), None);
        assert_eq!(shared_ttl("GET", 200, None), None);
        assert_eq!(shared_ttl("GET", 404, Some("public, max-age=30")), None);
        assert_eq!(shared_ttl("POST", 200, Some("public, max-age=30")), None);
    }

    #[test]
    fn an_edge_answers_repeats_of_a_key_while_it_is_fresh() {
        let search = Some("public, max-age=30");
        let run = [
            req(0, "GET", "/v1/search", "city=a", 200, search),
            req(1_000, "POST", "/v1/quotes", "", 200, Some("no-store")),
            req(2_000, "GET", "/v1/search", "city=a", 200, search),
            req(3_000, "GET", "/v1/search", "city=b", 200, search),
            req(29_999, "GET", "/v1/search", "city=a", 200, search),
            // Stale at 30 s: the edge asks the origin again and keeps the new answer.
            req(30_000, "GET", "/v1/search", "city=a", 200, search),
            req(31_000, "GET", "/v1/search", "city=a", 200, search),
            req(32_000, "POST", "/v1/bookings", "", 201, Some("private, no-store")),
        ];
        let got = share(&run);
        assert_eq!((got.requests, got.cacheable, got.absorbed), (8, 6, 3));
        assert!((got.cacheable_share - 0.75).abs() < 1e-9 && (got.absorbed_share - 0.375).abs() < 1e-9, "{got:?}");
        // The order sent counts, not the order listed.
        let mut shuffled = run.to_vec();
        shuffled.reverse();
        assert_eq!(share(&shuffled), got);
        assert_eq!(share(&[]), CdnShare::default());
    }
}
