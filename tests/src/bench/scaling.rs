//! Search as a city grows (issue 18, part 3): the same query over cities of 100, 1,000 and
//! 10,000 listings (seeded with the listings store's own transaction: crate::seed). The request
//! count must not grow; the handler's p50 may grow by at most [`MAX_P50_GROWTH`].

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::measure::{Call, measure};
use super::stats::{Summary, percentile, summarize};
use crate::seed::seed_listings;
use crate::{User, anonymous, json_of, unique, until_indexed};

/// How much slower the largest city's search may be than the smallest's (handler p50).
pub const MAX_P50_GROWTH: f64 = 1.5;

/// One city size's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SearchAtSize {
    pub listings: usize,
    pub handler_ms: Summary,
    pub round_trip_ms: Summary,
    pub ddb_requests: u64,
}

/// Seeds a city of each size and measures `passes` searches of its first page in each.
pub async fn search_scaling(host: &User, sizes: &[usize], passes: usize) -> BTreeMap<String, SearchAtSize> {
    let mut out = BTreeMap::new();
    for &n in sizes {
        let city = unique(&format!("Scale{n}x"));
        seed_listings(host, &city, n).await;
        let path = format!("/v1/search?city={city}");
        let full = n.min(20);
        until_indexed(
            || async { json_of(anonymous().get(&path).await, 200).await },
            |page: &Value| page["items"].as_array().is_some_and(|items| items.len() >= full),
        )
        .await;
        let mut samples = Vec::new();
        for _ in 0..=passes {
            let sample = measure(anonymous(), &Call::get("ListingsFunction", path.clone())).await;
            assert_eq!(sample.status, 200, "{path}: {}", sample.body);
            samples.push(sample);
        }
        samples.remove(0);
        let of = |pick: fn(&super::measure::Sample) -> f64| summarize(&samples.iter().map(pick).collect::<Vec<_>>());
        let requests: Vec<f64> = samples.iter().map(|s| s.ddb_requests as f64).collect();
        if let (Some(handler_ms), Some(round_trip_ms), Some(ddb)) =
            (of(|s| s.handler_ms), of(|s| s.round_trip_ms), percentile(&requests, 50.0))
        {
            out.insert(
                n.to_string(),
                SearchAtSize { listings: n, handler_ms, round_trip_ms, ddb_requests: ddb as u64 },
            );
        }
    }
    out
}
