//! The load phase (issue 18, part 4): goose's virtual guests, each signed in once, then over and
//! over: search a city, quote a stay at one of its listings, book it (a lost race for the same
//! nights is a 409, counted as a success of the API), pay, and confirm the card at localstripe
//! as the browser would. Every booking made is kept for the invariants checked after the run.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use goose::config::GooseConfiguration;
use goose::prelude::*;
use rand::Rng;
use roost_e2e::bench::cdn::Observed;
use roost_e2e::fixtures::{confirm_with, day_in};
use roost_e2e::invariants::Trip;
use roost_e2e::{User, unique};
use serde_json::{Value, json};

/// What every virtual guest shares: the listings to book, the bookings made, and every request
/// with its answer's `Cache-Control` (what a CDN would absorb: `roost_e2e::bench::cdn`).
pub struct Shared {
    pub host: User,
    pub city: String,
    pub timezone: String,
    pub trips: Mutex<Vec<Trip>>,
    pub started: Instant,
    pub observed: Mutex<Vec<Observed>>,
}

static SHARED: OnceLock<Arc<Shared>> = OnceLock::new();

fn shared() -> &'static Arc<Shared> {
    SHARED.get().expect("the load phase sets its shared state before goose starts")
}

/// The guest a goose user is.
struct Guest(User);

async fn sign_up(user: &mut GooseUser) -> TransactionResult {
    user.set_session_data(Guest(User::guest("Load Guest").await));
    Ok(())
}

/// A request with our headers, named for goose's per-step metrics; 409 counted as an answer the
/// API was right to give.
async fn send(
    user: &mut GooseUser,
    name: &str,
    method: GooseMethod,
    path: &str,
    body: Option<&Value>,
    token: Option<&str>,
) -> Result<(u16, Value), Box<TransactionError>> {
    let mut builder = user.get_request_builder(&method, path)?;
    if let Some(body) = body {
        builder = builder.json(body);
    }
    if let Some(token) = token {
        builder = builder.bearer_auth(token).header("idempotency-key", unique("load-"));
    }
    let verb = format!("{method:?}").to_uppercase();
    let at_ms = u64::try_from(shared().started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let request = GooseRequest::builder().method(method).path(path).name(name).set_request_builder(builder).build();
    let mut goose = user.request(request).await?;
    let response = match goose.response {
        Ok(response) => response,
        Err(_) => return Ok((0, Value::Null)),
    };
    let status = response.status().as_u16();
    let cache_control = response.headers().get("cache-control").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let seen = Observed { at_ms, method: verb, path: route.to_owned(), query: query.to_owned(), status, cache_control };
    shared().observed.lock().unwrap_or_else(|p| p.into_inner()).push(seen);
    if status == 409 {
        user.set_success(&mut goose.request)?;
    }
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn journey(user: &mut GooseUser) -> TransactionResult {
    let shared = shared().clone();
    let token = user.get_session_data_unchecked::<Guest>().0.access_token.clone();
    let (status, page) =
        send(user, "search", GooseMethod::Get, &format!("/v1/search?city={}", shared.city), None, None).await?;
    let found: Vec<String> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["listing_id"].as_str().map(str::to_owned))
        .collect();
    if status != 200 || found.is_empty() {
        return Ok(());
    }
    let (listing_id, from, nights) = {
        let mut rng = rand::rng();
        (found[rng.random_range(0..found.len())].clone(), rng.random_range(10..300_i64), rng.random_range(1..=3_i64))
    };
    let stay = json!({"listing_id": listing_id, "check_in": day_in(&shared.timezone, from),
                      "check_out": day_in(&shared.timezone, from + nights), "guests": 2});
    send(user, "quote", GooseMethod::Post, "/v1/quotes", Some(&stay), None).await?;
    let (status, booking) = send(user, "book", GooseMethod::Post, "/v1/bookings", Some(&stay), Some(&token)).await?;
    let Some(booking_id) = booking["booking_id"].as_str().filter(|_| status == 201).map(str::to_owned) else {
        return Ok(());
    };
    let path = format!("/v1/bookings/{booking_id}/payment");
    let (status, intent) = send(user, "pay", GooseMethod::Post, &path, None, Some(&token)).await?;
    let paid_intent = intent["payment_intent_id"].as_str().filter(|_| status == 200).map(str::to_owned);
    if let Some(intent) = &paid_intent {
        confirm_with(intent, "pm_card_visa").await;
    }
    let guest = user.get_session_data_unchecked::<Guest>().0.clone();
    let trip = Trip {
        booking_id,
        listing_id,
        nights: (0..nights).map(|d| day_in(&shared.timezone, from + d)).collect(),
        guest,
        host: shared.host.clone(),
        paid_intent,
        cancelled_refund: None,
    };
    shared.trips.lock().unwrap_or_else(|p| p.into_inner()).push(trip);
    Ok(())
}

/// Runs `users` virtual guests for `seconds` against `api_url`; goose's metrics.
pub async fn run(state: Arc<Shared>, api_url: &str, users: usize, seconds: usize) -> Result<GooseMetrics, GooseError> {
    let _ = SHARED.set(state);
    let scenario = scenario!("guest")
        .register_transaction(transaction!(sign_up).set_on_start())
        .register_transaction(transaction!(journey));
    GooseAttack::initialize_with_config(GooseConfiguration::default())?
        .register_scenario(scenario)
        .set_default(GooseDefault::Host, api_url)?
        .set_default(GooseDefault::Users, users)?
        .set_default(GooseDefault::HatchRate, users.to_string().as_str())?
        .set_default(GooseDefault::RunTime, seconds)?
        .set_default(GooseDefault::Timeout, "30")?
        .set_default(GooseDefault::Quiet, 1)?
        .set_default(GooseDefault::NoPrintMetrics, true)?
        .set_default(GooseDefault::NoTelnet, true)?
        .set_default(GooseDefault::NoWebSocket, true)?
        .execute()
        .await
}

/// Throughput, latency percentiles and the answers by status, over every request of the run.
pub fn summarize(metrics: &GooseMetrics, seconds: f64) -> Value {
    let mut times = std::collections::BTreeMap::<usize, usize>::new();
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    let mut requests = 0;
    for aggregate in metrics.requests.values() {
        for (ms, count) in &aggregate.raw_data.times {
            *times.entry(*ms).or_default() += count;
        }
        for (status, count) in &aggregate.status_code_counts {
            *statuses.entry(status.to_string()).or_default() += count;
        }
        requests += aggregate.success_count + aggregate.fail_count;
    }
    let at = |share: f64| {
        let wanted = (share * requests as f64).ceil() as usize;
        let mut seen = 0;
        times
            .iter()
            .find(|(_, n)| {
                seen += **n;
                seen >= wanted.max(1)
            })
            .map_or(0, |(ms, _)| *ms)
    };
    let errors: usize =
        statuses.iter().filter(|(s, _)| s.parse::<u16>().map_or(true, |s| s >= 500 || s == 0)).map(|(_, n)| n).sum();
    json!({"requests": requests, "rps": requests as f64 / seconds.max(1.0), "p50_ms": at(0.5), "p99_ms": at(0.99),
           "status_counts": statuses, "errors": errors, "users": metrics.maximum_users})
}

/// How long the invariants may wait for the asynchronous paths after the run.
pub const SETTLE: Duration = Duration::from_secs(120);
