//! The load journey under injected faults (issue 17; docs/reliability.md): guests search, quote,
//! book, pay and some cancel while 10 % of the DynamoDB, SQS, SNS, SES and Stripe calls of every
//! API and consumer function fail (500, throttle, hang, or an answer lost after the write).
//! Every answer must be a success or a clean problem+json (503 with `Retry-After`), none later
//! than the gateway's 30 s; clients retry 503/429/502 with the same request (the same
//! `Idempotency-Key`), bounded. Then the faults stop, the queues drain, and every invariant of
//! `roost_e2e::invariants` must hold. A summary goes to `target/roost/faults.json`.
//!
//! Its own test binary: cargo runs test binaries one at a time, so the faults never hit the e2e
//! tests (which run in parallel with each other on the same stack).

use std::sync::Arc;
use std::time::{Duration, Instant};

use roost_e2e::faults::{self, FaultMode};
use roost_e2e::fixtures::{confirm_with, day_in};
use roost_e2e::invariants::{self, Trip};
use roost_e2e::load::{Tally, bounded};
use roost_e2e::{NewListing, Stack, User, client, dynamodb, s, unique};
use serde_json::{Value, json};

const GUESTS: usize = 20;
const LISTINGS: usize = 4;
/// The API's functions and the consumers of its queues and stream: what the faults hit.
const FUNCTIONS: [&str; 8] = [
    "UsersFunction",
    "ListingsFunction",
    "BookingsFunction",
    "PaymentsFunction",
    "ReviewsFunction",
    "PaymentEventsFunction",
    "NotificationsFunction",
    "EventsRelayFunction",
];
const POLICIES: [&str; LISTINGS] = ["flexible", "moderate", "strict", "moderate"];

fn day(days: i64) -> String {
    day_in("UTC", days)
}

/// What one guest's journey did.
struct Outcome {
    trip: Option<Trip>,
    /// `booked`, `lost_race`, `gave_up_booking`, ...
    how: String,
}

struct Plan {
    guest: User,
    host: User,
    listing_id: String,
    city: String,
    check_in: String,
    check_out: String,
    nights: Vec<String>,
    pays: bool,
    cancels: bool,
}

/// Calls that reached each emulator from the functions under the mode, between two states.
fn called_between(before: &Value, after: &Value) -> std::collections::BTreeMap<String, u64> {
    let mut called = std::collections::BTreeMap::new();
    for function in FUNCTIONS {
        for (service, n) in after["forwarded_by_function"][function].as_object().into_iter().flatten() {
            let grew = n
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(faults::count(before, &format!("/forwarded_by_function/{function}/{service}")));
            if service != "other" && grew > 0 {
                *called.entry(service.clone()).or_default() += grew;
            }
        }
    }
    called
}

fn api(path: &str) -> String {
    Stack::get().url(path)
}

/// Reads the booking (retrying as a client does) until `done` holds for it, at most `patience`.
async fn poll_booking(
    tally: &Tally,
    guest: &User,
    booking_id: &str,
    patience: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + patience;
    loop {
        let answer = tally
            .send("read", || client().get(api(&format!("/v1/bookings/{booking_id}"))).bearer_auth(&guest.access_token))
            .await;
        if answer.status == 200 && done(&answer.body) || Instant::now() > deadline {
            return answer.body;
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

async fn journey(plan: Plan, tally: Arc<Tally>) -> Outcome {
    let Plan { guest, host, listing_id, city, check_in, check_out, nights, pays, cancels } = plan;
    let token = guest.access_token.clone();
    let search = format!("/v1/search?city={city}&check_in={check_in}&check_out={check_out}&guests=1");
    tally.send("search", || client().get(api(&search))).await;
    let stay = json!({"listing_id": listing_id, "check_in": check_in, "check_out": check_out, "guests": 1});
    tally.send("quote", || client().post(api("/v1/quotes")).json(&stay)).await;
    let key = unique("fault-book-");
    let booked = tally
        .send("book", || {
            client().post(api("/v1/bookings")).bearer_auth(&token).header("idempotency-key", &key).json(&stay)
        })
        .await;
    let booking_id = match booked.status {
        201 => s(&booked.body, "booking_id").to_owned(),
        409 => return Outcome { trip: None, how: format!("lost_race ({})", booked.code) },
        other => return Outcome { trip: None, how: format!("gave_up_booking ({other} {})", booked.code) },
    };
    let mut trip = Trip {
        booking_id: booking_id.clone(),
        listing_id,
        nights,
        guest: guest.clone(),
        host,
        paid_intent: None,
        cancelled_refund: None,
    };
    if !pays {
        return Outcome { trip: Some(trip), how: "held".into() };
    }
    let pay_key = unique("fault-pay-");
    let paid = tally
        .send("pay", || {
            client()
                .post(api(&format!("/v1/bookings/{booking_id}/payment")))
                .bearer_auth(&token)
                .header("idempotency-key", &pay_key)
        })
        .await;
    if paid.status != 200 {
        return Outcome { trip: Some(trip), how: format!("gave_up_paying ({} {})", paid.status, paid.code) };
    }
    // The guest's browser confirms at Stripe itself (not through the functions: no faults).
    let intent = s(&paid.body, "payment_intent_id").to_owned();
    let (status, confirmed) = confirm_with(&intent, "pm_card_visa").await;
    assert_eq!((status, &confirmed["status"]), (200, &json!("succeeded")), "{confirmed}");
    trip.paid_intent = Some(intent.clone());
    if !cancels {
        return Outcome { trip: Some(trip), how: "paid".into() };
    }
    // Cancel once it is confirmed. Where the webhook was refused under faults, Stripe would retry
    // it: so does the suite (localstripe never does), after a while.
    let confirmed = |b: &Value| b["status"] == "confirmed";
    let mut view = poll_booking(&tally, &guest, &booking_id, Duration::from_secs(15), confirmed).await;
    if !confirmed(&view) {
        let mut report = invariants::Report::default();
        invariants::replay_stripe_events(&[intent.clone()].into(), &mut report).await;
        view = poll_booking(&tally, &guest, &booking_id, Duration::from_secs(20), confirmed).await;
    }
    if !confirmed(&view) {
        return Outcome { trip: Some(trip), how: format!("never_confirmed ({})", view["status"]) };
    }
    let preview = tally
        .send("preview", || client().get(api(&format!("/v1/bookings/{booking_id}/cancellation"))).bearer_auth(&token))
        .await;
    let cancel = tally
        .send("cancel", || {
            client()
                .post(api(&format!("/v1/bookings/{booking_id}/cancel")))
                .bearer_auth(&token)
                .json(&json!({"reason": "plans changed"}))
        })
        .await;
    let refund = match (cancel.status, cancel.code.as_str()) {
        (200, _) => cancel.body["refund"]["amount"].as_i64(),
        // A retry of a cancel whose first answer was lost: it happened; the booking says what.
        (409, "already_cancelled") => {
            poll_booking(&tally, &guest, &booking_id, Duration::ZERO, |_| true).await["refund"]["amount"].as_i64()
        }
        _ => {
            return Outcome {
                trip: Some(trip),
                how: format!("gave_up_cancelling ({} {})", cancel.status, cancel.code),
            };
        }
    };
    if preview.status == 200 {
        assert_eq!(preview.body["refund"]["amount"].as_i64(), refund, "the cancel refunds what the preview said");
    }
    trip.cancelled_refund = Some(refund.unwrap_or(0));
    Outcome { trip: Some(trip), how: "cancelled".into() }
}

/// A message the test puts in a DLQ on purpose (an event already applied, as a redrive after an
/// incident replays it): the redrive must apply it once, i.e. change nothing.
async fn a_redriven_event_applies_once(trip: &Trip) -> Result<(), String> {
    let envelope = invariants::outbox_events(&trip.booking_id, "booking.confirmed")
        .await
        .into_iter()
        .next()
        .ok_or_else(|| format!("no booking.confirmed outbox item for {}", trip.booking_id))?;
    let count = |user: String| {
        let booking_id = trip.booking_id.clone();
        async move {
            dynamodb(
                "Query",
                json!({"KeyConditionExpression": "PK = :pk", "FilterExpression": "booking_id = :b AND notification_type = :t",
                       "ExpressionAttributeValues": {":pk": {"S": format!("INBOX#{user}")}, ":b": {"S": booking_id},
                                                     ":t": {"S": "booking.confirmed"}}, "ConsistentRead": true}),
            )
            .await["Count"]
                .as_u64()
                .unwrap_or(0)
        }
    };
    let dlq = "roost-NotificationsDLQ";
    invariants::put_event(dlq, &envelope).await;
    let event_id = s(&envelope, "id").to_owned();
    let moved = invariants::redrive(dlq, |body| body.contains(&event_id)).await;
    if moved != 1 {
        return Err(format!("the redrive moved {moved} messages, not the one put there"));
    }
    if !invariants::drain(Duration::from_secs(60)).await {
        return Err("the notifications queue never drained after the redrive".into());
    }
    for user in [trip.guest.user_id.clone(), trip.host.user_id.clone()] {
        let n = count(user.clone()).await;
        if n != 1 {
            return Err(format!("{user} has {n} booking.confirmed items for {} after the redrive", trip.booking_id));
        }
    }
    Ok(())
}

/// `target/roost/<name>`: beside the stack's state directory (`target/roost/test`).
pub fn summary_path(name: &str) -> std::path::PathBuf {
    let logs = &Stack::get().logs_dir;
    logs.parent().and_then(|p| p.parent()).unwrap_or(logs).join(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_load_journey_under_ten_percent_faults_loses_nothing() {
    roost_e2e::needs_stack!();
    let started = Instant::now();
    // Set up without faults: hosts, their listings, guests.
    let hosts = bounded(2, (0..LISTINGS).map(|i| async move { User::host(&format!("Fault Host {i}")).await })).await;
    let mut listings = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let city = unique("Faultcity");
        let body = NewListing {
            timezone: "UTC".into(),
            min_nights: Some(1),
            cancellation_policy: POLICIES[i].into(),
            ..NewListing::in_city(&city)
        };
        listings.push((host.api().new_listing(&body).await, city));
    }
    let guests = bounded(4, (0..GUESTS).map(|i| async move { User::guest(&format!("Fault Guest {i}")).await })).await;

    // Guests i and i + 4 want the same listing and dates (one wins); the last four only hold.
    let plans: Vec<Plan> = guests
        .into_iter()
        .enumerate()
        .map(|(i, guest)| {
            let slot = i / LISTINGS;
            let from = 10 + 3 * i64::try_from(slot / 2).expect("small");
            let (listing_id, city) = listings[i % LISTINGS].clone();
            Plan {
                guest,
                host: hosts[i % LISTINGS].clone(),
                listing_id,
                city,
                check_in: day(from),
                check_out: day(from + 2),
                nights: vec![day(from), day(from + 1)],
                pays: slot < 4,
                cancels: slot < 4 && i % 3 == 0,
            }
        })
        .collect();

    let tally = Arc::new(Tally::new());
    let before = faults::state().await;
    let mode = FaultMode::on(json!({
        "rate": 0.1, "services": ["dynamodb", "sqs", "sns", "ses", "stripe"],
        "kinds": ["error", "throttle", "hang", "late"], "functions": FUNCTIONS, "seed": 17,
    }))
    .await;
    let journey_started = Instant::now();
    let outcomes = bounded(8, plans.into_iter().map(|plan| journey(plan, tally.clone()))).await;
    let journey_secs = journey_started.elapsed().as_secs_f64();
    // The consumers (notifications' SES calls, the relay's SNS) mostly run after the API answered:
    // the faults stay on while the queues drain, bounded, so they run under faults too.
    let drained_under_faults = invariants::drain(Duration::from_secs(30)).await;
    let after = mode.off().await;
    let injected = faults::injected_between(&before, &after);
    let called = called_between(&before, &after);

    let trips: Vec<Trip> = outcomes.iter().filter_map(|o| o.trip.clone()).collect();
    let mut hows = std::collections::BTreeMap::<String, u64>::new();
    for o in &outcomes {
        *hows.entry(o.how.split(' ').next().unwrap_or_default().to_owned()).or_default() += 1;
    }
    let late_ses = injected.get("ses").and_then(|k| k.get("late")).copied().unwrap_or(0);
    let report = invariants::check(&trips, late_ses, Duration::from_secs(90)).await;
    let redrive = match trips.iter().find(|t| t.paid_intent.is_some() && t.cancelled_refund.is_none()) {
        Some(trip) => a_redriven_event_applies_once(trip).await,
        None => Err("no confirmed trip to redrive an event of".into()),
    };

    let summary = json!({
        "guests": GUESTS, "listings": LISTINGS, "functions": FUNCTIONS, "mode": {"rate": 0.1, "seed": 17},
        "journey_seconds": journey_secs, "drained_under_faults": drained_under_faults, "called": called,
        "total_seconds": started.elapsed().as_secs_f64(),
        "outcomes": hows, "answers": tally.snapshot(), "injected": injected, "injected_total": faults::total(&injected),
        "invariants": report, "deliberate_redrive": redrive.clone().err().unwrap_or_else(|| "applied once".into()),
    });
    let path = summary_path("faults.json");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("target/roost");
    }
    std::fs::write(&path, serde_json::to_string_pretty(&summary).expect("json")).expect("writing faults.json");
    println!("faults summary ({}):\n{}", path.display(), serde_json::to_string_pretty(&summary).expect("json"));

    // The faults really happened, in more than one service, so the run cannot pass vacuously.
    assert!(faults::total(&injected) >= 10, "too few faults injected: {injected:?}");
    assert!(injected.len() >= 3, "faults in at least three services: {injected:?} of {called:?}");
    // The proxy spreads faults over each service's calls (docs/local-runtime.md): one that was
    // called ten times at 10 % has had one.
    let spared: Vec<_> = called.iter().filter(|(s, n)| **n >= 10 && !injected.contains_key(*s)).collect();
    assert!(spared.is_empty(), "services called ten times without a fault: {spared:?} ({injected:?})");
    assert!(
        trips.iter().filter(|t| t.paid_intent.is_some()).count() >= 8,
        "the journey paid for enough trips: {hows:?}"
    );
    assert!(tally.retries() > 0, "clients retried something: {}", tally.snapshot());
    let violations = tally.violations();
    assert!(violations.is_empty(), "answers that break the contract: {violations:#?}");
    assert!(report.violations.is_empty(), "broken invariants: {:#?}", report.violations);
    assert!(
        !hows.keys().any(|h| h.starts_with("gave_up") || h.starts_with("never")),
        "journeys that could not finish: {hows:?}"
    );
    redrive.expect("a redriven event applies once");
}
