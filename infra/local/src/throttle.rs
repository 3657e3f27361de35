//! API Gateway's route throttling, locally: a token bucket per route, filled at the route's
//! `ThrottlingRateLimit` (requests per second) up to its `ThrottlingBurstLimit`, from the HTTP
//! API's `RouteSettings` (that route) or `DefaultRouteSettings`, else the account's default
//! (10,000 rps, burst 5,000). A request that finds the bucket empty is answered
//! `429 {"message":"Too Many Requests"}` before any function runs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde_json::Value;

/// A route's steady rate (requests per second) and burst (bucket size).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub rate: f64,
    pub burst: f64,
}

/// The account-level default when the API sets none.
pub const ACCOUNT_DEFAULT: Limit = Limit { rate: 10_000.0, burst: 5_000.0 };

#[derive(Debug)]
struct Bucket {
    limit: Limit,
    tokens: f64,
    filled_at: Instant,
}

impl Bucket {
    fn new(limit: Limit, now: Instant) -> Self {
        Self { limit, tokens: limit.burst, filled_at: now }
    }

    /// Refills for the time since the last request, then takes a token if there is one.
    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.filled_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.limit.rate).min(self.limit.burst);
        self.filled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

pub struct Throttles {
    default: Limit,
    routes: HashMap<String, Limit>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Throttles {
    /// From the `AWS::Serverless::HttpApi`'s properties (`None`: no API declared, the account's
    /// default for every route). A setting without both limits falls back per limit.
    pub fn from_http_api(properties: Option<&Value>) -> Self {
        let default = properties
            .and_then(|p| p.get("DefaultRouteSettings"))
            .map_or(ACCOUNT_DEFAULT, |settings| limit_of(settings, ACCOUNT_DEFAULT));
        let routes = properties
            .and_then(|p| p.get("RouteSettings"))
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(route_key, settings)| (route_key.clone(), limit_of(settings, default)))
            .collect();
        Self { default, routes, buckets: Mutex::default() }
    }

    /// The limit that applies to `route_key` (`"POST /v1/bookings"`).
    pub fn limit(&self, route_key: &str) -> Limit {
        self.routes.get(route_key).copied().unwrap_or(self.default)
    }

    /// Whether a request to `route_key` may pass now (`false`: answer 429).
    pub fn admit(&self, route_key: &str) -> bool {
        self.admit_at(route_key, Instant::now())
    }

    fn admit_at(&self, route_key: &str, now: Instant) -> bool {
        let limit = self.limit(route_key);
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        buckets.entry(route_key.to_string()).or_insert_with(|| Bucket::new(limit, now)).take(now)
    }
}

fn limit_of(settings: &Value, fallback: Limit) -> Limit {
    let number = |key: &str| settings.get(key).and_then(Value::as_f64);
    Limit {
        rate: number("ThrottlingRateLimit").unwrap_or(fallback.rate),
        burst: number("ThrottlingBurstLimit").unwrap_or(fallback.burst),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;

    fn throttles() -> Throttles {
        Throttles::from_http_api(Some(&json!({
            "DefaultRouteSettings": {"ThrottlingBurstLimit": 200, "ThrottlingRateLimit": 100},
            "RouteSettings": {"POST /v1/auth/login": {"ThrottlingBurstLimit": 3, "ThrottlingRateLimit": 2}},
        })))
    }

    #[test]
    fn route_settings_override_the_defaults_and_the_account_default_fills_the_rest() {
        let t = throttles();
        assert_eq!(t.limit("POST /v1/auth/login"), Limit { rate: 2.0, burst: 3.0 });
        assert_eq!(t.limit("GET /v1/listings/{id}"), Limit { rate: 100.0, burst: 200.0 });
        assert_eq!(Throttles::from_http_api(None).limit("GET /"), ACCOUNT_DEFAULT);
        let partial = Throttles::from_http_api(Some(&json!({"DefaultRouteSettings": {"ThrottlingRateLimit": 5}})));
        assert_eq!(partial.limit("GET /"), Limit { rate: 5.0, burst: ACCOUNT_DEFAULT.burst });
    }

    #[test]
    fn the_burst_passes_then_the_rate_refills_one_token_at_a_time() {
        let t = throttles();
        let start = Instant::now();
        let login = "POST /v1/auth/login";
        assert!((0..3).all(|_| t.admit_at(login, start)), "the burst of 3 passes at once");
        assert!(!t.admit_at(login, start), "the 4th in the same instant is throttled");
        assert!(!t.admit_at(login, start + Duration::from_millis(400)), "0.8 of a token after 400 ms");
        assert!(t.admit_at(login, start + Duration::from_millis(500)), "one token after 500 ms at 2 rps");
        assert!(!t.admit_at(login, start + Duration::from_millis(500)));
        assert!(t.admit_at("POST /v1/auth/signup", start), "another route has its own bucket");
        let later = start + Duration::from_secs(60);
        assert!((0..3).all(|_| t.admit_at(login, later)), "refilled to the burst, no further");
        assert!(!t.admit_at(login, later));
    }
}
