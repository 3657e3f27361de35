//! Warm latency and DynamoDB requests per operation (issue 18, parts 2 and 3): a guest's path
//! through the API, operation by operation, repeated; each call measured by
//! [`measure`](super::measure::measure). The first pass warms every function and is not counted.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use super::measure::{Call, Sample, measure};
use super::stats::{Summary, percentile, summarize};
use crate::fixtures::{confirm_with, day_in, end_stay, wait_for_status};
use crate::{Api, NewListing, User, anonymous, s, unique, until_indexed};

/// The people and the listing the bench works with.
pub struct Scene {
    pub host: User,
    pub guest: User,
    pub listing_id: String,
    pub city: String,
    pub timezone: String,
}

impl Scene {
    /// A host with one listing in a city of its own, indexed for search, and a guest.
    pub async fn new() -> Scene {
        let host = User::host("Bench Host").await;
        let guest = User::guest("Bench Guest").await;
        let city = unique("Benchville");
        let listing = NewListing::in_city(&city);
        let listing_id = host.api().new_listing(&listing).await;
        let query = format!("/v1/search?city={city}");
        until_indexed(
            || async { crate::json_of(anonymous().get(&query).await, 200).await },
            |page: &Value| page["items"].as_array().is_some_and(|items| !items.is_empty()),
        )
        .await;
        Scene { host, guest, listing_id, city, timezone: listing.timezone }
    }

    /// A two-night stay starting `days` from today in the listing's zone.
    pub fn stay(&self, days: i64) -> Value {
        json!({"listing_id": self.listing_id, "check_in": day_in(&self.timezone, days),
               "check_out": day_in(&self.timezone, days + 2), "guests": 2})
    }
}

/// One operation's figures over the counted passes.
#[derive(Debug, Clone, Serialize)]
pub struct Operation {
    pub function: String,
    /// The round trip's p50 and p99 (`round_trip_ms` has the rest), as bench.json promises them.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub round_trip_ms: Summary,
    pub handler_ms: Summary,
    /// The median over the passes (they agree unless a conflict was retried), and the most.
    pub ddb_requests: u64,
    pub ddb_requests_max: u64,
}

/// Collects samples per operation name.
#[derive(Default)]
struct Samples {
    by_operation: BTreeMap<String, (String, Vec<Sample>)>,
}

impl Samples {
    fn add(&mut self, counted: bool, operation: &str, function: &str, sample: Sample) -> Sample {
        if counted {
            let entry =
                self.by_operation.entry(operation.to_owned()).or_insert_with(|| (function.to_owned(), Vec::new()));
            entry.1.push(sample.clone());
        }
        sample
    }

    fn summarize(self) -> BTreeMap<String, Operation> {
        let mut out = BTreeMap::new();
        for (name, (function, samples)) in self.by_operation {
            let of = |pick: fn(&Sample) -> f64| summarize(&samples.iter().map(pick).collect::<Vec<_>>());
            let requests: Vec<f64> = samples.iter().map(|s| s.ddb_requests as f64).collect();
            if let (Some(round_trip_ms), Some(handler_ms), Some(median)) =
                (of(|s| s.round_trip_ms), of(|s| s.handler_ms), percentile(&requests, 50.0))
            {
                let ddb_requests_max = samples.iter().map(|s| s.ddb_requests).max().unwrap_or(0);
                out.insert(
                    name,
                    Operation {
                        function,
                        p50_ms: round_trip_ms.p50,
                        p99_ms: round_trip_ms.p99,
                        round_trip_ms,
                        handler_ms,
                        ddb_requests: median as u64,
                        ddb_requests_max,
                    },
                );
            }
        }
        out
    }
}

/// Sends `call` as `api`'s caller, requires `status`, and returns the sample.
async fn expect(api: Api<'_>, call: Call<'_>, status: u16) -> Sample {
    let sample = measure(api, &call).await;
    assert_eq!(sample.status, status, "{} {}: {}", call.method, call.path, sample.body);
    sample
}

/// `passes` counted passes (after one warm-up pass) of health, get listing, search, quote, book,
/// pay, get trip and review, each pass with its own stay; plus the two reference functions'
/// equivalents when the stack runs them (`references`).
pub async fn operations(scene: &Scene, passes: usize, references: bool) -> BTreeMap<String, Operation> {
    let mut samples = Samples::default();
    for pass in 0..=passes {
        let counted = pass > 0;
        one_pass(scene, &mut samples, counted, 30 + 3 * i64::try_from(pass).unwrap_or(0), references).await;
    }
    samples.summarize()
}

/// The screens' persisted GraphQL queries (functions/graphql/queries), measured as clients send
/// them.
pub const LISTING_PAGE: &str = include_str!("../../../functions/graphql/queries/listing-page.graphql");
pub const TRIPS_PAGE: &str = include_str!("../../../functions/graphql/queries/trips-page.graphql");

async fn one_pass(scene: &Scene, samples: &mut Samples, counted: bool, days: i64, references: bool) {
    let (guest, anyone) = (scene.guest.api(), anonymous());
    let listing = &scene.listing_id;
    let stay = scene.stay(days);
    let mut record =
        |operation: &str, function: &str, sample: Sample| samples.add(counted, operation, function, sample);
    record("health", "UsersFunction", expect(anyone, Call::get("UsersFunction", "/v1/health"), 200).await);
    let path = format!("/v1/listings/{listing}");
    record("get_listing", "ListingsFunction", expect(anyone, Call::get("ListingsFunction", path), 200).await);
    let path = format!("/v1/search?city={}", scene.city);
    record("search", "ListingsFunction", expect(anyone, Call::get("ListingsFunction", path), 200).await);
    // The listing page in one GraphQL query (listing, host, availability, reviews).
    let page = json!({"query": LISTING_PAGE, "variables": {"id": listing}});
    let call = Call::post("GraphqlFunction", "/v1/graphql", Some(page));
    record("graphql_listing_page", "GraphqlFunction", expect(anyone, call, 200).await);
    let call = Call::post("BookingsFunction", "/v1/quotes", Some(stay.clone()));
    record("quote", "BookingsFunction", expect(anyone, call, 200).await);
    // Without an Idempotency-Key, as the request-count target counts it: a key adds its own
    // conditional reservation write (docs/performance.md, "Request counts").
    let call = Call::post("BookingsFunction", "/v1/bookings", Some(stay));
    let booking = record("create_booking", "BookingsFunction", expect(guest, call, 201).await);
    let booking_id = s(&booking.body, "booking_id").to_owned();
    let call = Call::post("PaymentsFunction", format!("/v1/bookings/{booking_id}/payment"), None);
    let intent = record("pay", "PaymentsFunction", expect(guest, call, 200).await);
    let (status, confirmed) = confirm_with(s(&intent.body, "payment_intent_id"), "pm_card_visa").await;
    assert_eq!(status, 200, "localstripe confirms the test card: {confirmed}");
    let path = format!("/v1/bookings/{booking_id}");
    record("get_trip", "BookingsFunction", expect(guest, Call::get("BookingsFunction", path), 200).await);
    let trips = json!({"query": TRIPS_PAGE, "variables": {"first": 20}});
    let call = Call::post("GraphqlFunction", "/v1/graphql", Some(trips));
    record("graphql_trips_page", "GraphqlFunction", expect(guest, call, 200).await);
    wait_for_status(&scene.guest, &booking_id, "confirmed").await;
    end_stay(&booking_id).await;
    let review = json!({"rating": 5, "comment": "Measured, and lovely."});
    let call = Call::post("ReviewsFunction", format!("/v1/bookings/{booking_id}/review"), Some(review));
    record("post_review", "ReviewsFunction", expect(guest, call, 201).await);
    if references {
        let call = Call::get(super::PYTHON_REFERENCE, format!("/bench/python/listings/{listing}"));
        record("reference_python_get_listing", super::PYTHON_REFERENCE, expect(anyone, call, 200).await);
        let call = Call::get(super::RUST_REFERENCE, "/bench/hello");
        record("reference_rust_hello", super::RUST_REFERENCE, expect(anyone, call, 200).await);
    }
}
