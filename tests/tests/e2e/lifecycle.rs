//! The booking lifecycle end to end (issue 7): the refund preview and the cancel by the guest in
//! every policy band (in the listing's time zone) and by the host, the nights and the search
//! availability released, a second cancel refused and never refunded twice (also when two
//! cancels race), a guest refused from the check-in day on while the host still can, strangers
//! answered 404; a real card payment cancelled and refunded at localstripe for exactly what is
//! due; and the time-driven statuses: a lapsed hold reads `expired` and a finished stay
//! `completed` in every view before the sweep has run, and the sweep (`BookingsSweepFunction`,
//! invoked on demand) stores them, frees the lapsed nights and emits `booking.expired`.
//!
//! Time is never waited for: fixtures move the stored instants into the past (documented on each
//! fixture below). Waiting is bounded polling for asynchronous effects only (the events relay,
//! payment-events, localstripe's webhook).
//!
//! Events are observed as `tests/tests/e2e/events.rs` does: each test subscribes its own **probe
//! queue** to the domain-events topic (raw delivery, filter on `type`), and after its actions
//! commits a **sentinel** event straight to the outbox; the relay publishes the stream in order
//! and moto's SNS delivers during `Publish`, so once the sentinel is on the probe, every event
//! committed before it has been delivered, and "exactly one" is checked without sleeping.
//!
//! Amounts: every listing costs 100.01 USD a night plus 20.00 cleaning, so one night is
//! 100.01 + 20.00 + 12.00 (12 % of 100.01 = 12.0012) = 132.01, and half of it (66.005) rounds
//! half-up to 66.01: the 50 % bands prove the rounding.

use std::collections::{BTreeMap, BTreeSet};

use roost_e2e::api::{self, Address};
use roost_e2e::fixtures::{
    self, booking_key, card, confirm_with, day_in, days_in, lapse_hold, refunds_of, stored_booking, stored_unavailable,
    today_in,
};
use roost_e2e::{
    NewListing, PATIENCE, Stack, Stay, User, assert_problem, client, dynamodb, eventually, join_all, json_of,
    night_items, s, sns, sqs, table, topic_arn, unique,
};
use serde_json::{Value, json};
use shared::events::{BookingExpired, Envelope, outbox_put};

const SWEEP: &str = "BookingsSweepFunction";
const CURRENCY: &str = "USD";
/// 100.01 + 20.00 cleaning + 12.00 service fee (12 % of 100.01, half-up).
const ONE_NIGHT: i64 = 13_201;

// ---------------------------------------------------------------------------------------------
// Listings, dates, bookings
// ---------------------------------------------------------------------------------------------

fn listing_body(city: &str, timezone: &str, policy: &str) -> NewListing {
    NewListing {
        title: "Lifecycle cabin".into(),
        description: "Booked, cancelled, swept.".into(),
        property_type: "cabin".into(),
        address: Address {
            line1: "1 Shore Road".into(),
            city: city.into(),
            region: Some("Coast".into()),
            country: "US".into(),
            postal_code: None,
        },
        timezone: timezone.into(),
        nightly_price: api::money(10_001, CURRENCY),
        cleaning_fee: Some(api::money(2_000, CURRENCY)),
        min_nights: Some(1),
        max_nights: Some(7),
        cancellation_policy: policy.into(),
        ..NewListing::in_city(city)
    }
}

/// A listing in its own new city; returns (listing id, city).
async fn new_listing(host: &User, timezone: &str, policy: &str) -> (String, String) {
    let city = unique("Lifeville");
    (host.api().new_listing(&listing_body(&city, timezone, policy)).await, city)
}

/// The date `days` after today in `timezone`, `YYYY-MM-DD`.
fn day(timezone: &str, days: i64) -> String {
    day_in(timezone, days)
}

/// Nights `[from, to)` days from today in `timezone`.
fn days(timezone: &str, from: i64, to: i64) -> Vec<String> {
    days_in(timezone, from, to)
}

/// Books nights `[from, to)` days from today (in the listing's `timezone`): 201, returns the booking.
async fn book(guest: &User, listing_id: &str, timezone: &str, from: i64, to: i64) -> Value {
    let b = guest.api().booked(&Stay::new(listing_id, day(timezone, from), day(timezone, to), 1)).await;
    assert_eq!(b["status"], "pending_payment", "{b}");
    b
}

async fn preview(user: &User, booking_id: &str) -> reqwest::Response {
    user.api().cancellation(booking_id).await
}

async fn cancel(user: &User, booking_id: &str, body: &Value) -> reqwest::Response {
    user.api().cancel(booking_id, body).await
}

async fn booking_of(user: &User, booking_id: &str) -> Value {
    json_of(user.api().booking(booking_id).await, 200).await
}

/// 50 % of [`ONE_NIGHT`], worked by hand: 132.01 / 2 = 66.005, rounded half-up to 66.01.
const HALF_A_NIGHT: i64 = 6_601;

fn money(amount: i64) -> Value {
    json!({"amount": amount, "currency": CURRENCY})
}

/// The `refund` a cancelled booking shows right after the cancel.
fn refund_view(amount: i64) -> Value {
    json!({"amount": amount, "currency": CURRENCY, "status": if amount > 0 { "pending" } else { "none" }})
}

/// Asserts a 200 preview: exactly `amount` back, under the booking's `policy`, with a reason.
async fn assert_preview(response: reqwest::Response, amount: i64, policy: &str) -> Value {
    let p = json_of(response, 200).await;
    assert_eq!(p["refund"], money(amount), "{p}");
    assert_eq!(p["policy"], policy, "{p}");
    assert!(p["reason"].as_str().is_some_and(|r| !r.is_empty()), "a reason: {p}");
    p
}

/// Asserts a 200 cancel: the booking, `cancelled`, with `refund` of `amount`; returns it.
async fn assert_cancelled(response: reqwest::Response, booking_id: &str, amount: i64) -> Value {
    let b = json_of(response, 200).await;
    assert_eq!(b["booking_id"], booking_id, "{b}");
    assert_eq!(b["status"], "cancelled", "{b}");
    assert_eq!(b["refund"], refund_view(amount), "{b}");
    b
}

/// Asserts no NIGHT item of the listing belongs to `booking_id` any more.
async fn assert_released(listing_id: &str, booking_id: &str) {
    let nights = night_items(listing_id).await;
    assert!(
        nights.iter().all(|(_, _, holder)| holder.as_deref() != Some(booking_id)),
        "{booking_id} still has nights: {nights:?}"
    );
}

/// Whether a search of `city` for `[check_in, check_out)` lists the listing.
async fn search_finds(city: &str, listing_id: &str, check_in: &str, check_out: &str) -> bool {
    let response = client()
        .get(Stack::get().url("/v1/search"))
        .query(&[("city", city), ("check_in", check_in), ("check_out", check_out), ("guests", "1"), ("limit", "100")])
        .send()
        .await
        .expect("api");
    let page = json_of(response, 200).await;
    page["items"].as_array().expect("items").iter().any(|i| i["listing_id"] == listing_id)
}

/// A trips page's booking ids.
async fn trip_ids(guest: &User, query: &str) -> Vec<String> {
    let page = json_of(guest.get(&format!("/v1/me/trips{query}")).await, 200).await;
    page["items"].as_array().expect("items").iter().map(|t| s(t, "booking_id").to_owned()).collect()
}

/// [`trip_ids`] once the index shows `expected` (GSIs are eventually consistent; bounded).
async fn settled_trip_ids(guest: &User, query: &str, expected: &[&str]) -> Vec<String> {
    roost_e2e::until_indexed(|| trip_ids(guest, query), |ids| ids == expected).await
}

/// One reservation's status once the index shows `expected` (bounded, as [`settled_trip_ids`]).
async fn settled_status(host: &User, listing_id: &str, booking_id: &str, expected: &str) -> Value {
    let listed = roost_e2e::until_indexed(
        || reservations(host, listing_id),
        |r| r.get(booking_id).is_some_and(|b| b["status"] == expected),
    )
    .await;
    listed.get(booking_id).map_or(Value::Null, |b| b["status"].clone())
}

/// The host's reservations on one listing, by booking id.
async fn reservations(host: &User, listing_id: &str) -> BTreeMap<String, Value> {
    let page = json_of(host.get(&format!("/v1/me/reservations?listing_id={listing_id}&limit=100")).await, 200).await;
    page["items"].as_array().expect("items").iter().map(|r| (s(r, "booking_id").to_owned(), r.clone())).collect()
}

// ---------------------------------------------------------------------------------------------
// Fixtures: the table written directly (roost_e2e::dynamodb), never the clock waited for
// ---------------------------------------------------------------------------------------------

async fn stored_status(booking_id: &str) -> String {
    stored_booking(booking_id).await["status"]["S"].as_str().expect("status").to_owned()
}

/// An `UpdateItem` on the booking item (which must exist).
async fn update_booking(booking_id: &str, expression: &str, names: Value, values: Value) {
    let mut request = json!({
        "Key": booking_key(booking_id),
        "UpdateExpression": expression,
        "ConditionExpression": "attribute_exists(PK)",
        "ExpressionAttributeValues": values
    });
    if names.as_object().is_some_and(|n| !n.is_empty()) {
        request["ExpressionAttributeNames"] = names;
    }
    dynamodb("UpdateItem", request).await;
}

fn stored_money(amount: i64) -> Value {
    json!({"M": {"amount": {"N": amount.to_string()}, "currency": {"S": CURRENCY}}})
}

/// **Paid fixture** (for the policy bands, without a card): the booking item as payment-events
/// leaves it once the payment succeeded, as far as the refund is concerned: `payment.status =
/// "succeeded"` and `payment.amount_paid = {amount, currency}`, written with
/// `UpdateItem SET #p.#s = :s, #p.amount_paid = :m`. The booking keeps its stored status and its
/// live hold; the refund is a percentage of `amount_paid`. (payment-events, receiving the
/// `booking.cancelled` of such a booking, finds no intent to refund and only logs it.)
async fn mark_paid(booking_id: &str, amount: i64) {
    update_booking(
        booking_id,
        "SET #p.#s = :s, #p.amount_paid = :m",
        json!({"#p": "payment", "#s": "status"}),
        json!({":s": {"S": "succeeded"}, ":m": stored_money(amount)}),
    )
    .await;
}

/// A whole-second RFC 3339 UTC instant `minutes` ago (`2026-01-01T10:15:00Z`, the stored form)
/// and its UTC date (`YYYY-MM-DD`).
fn minutes_ago(minutes: i64) -> (String, String) {
    let past = fixtures::minutes_ago(minutes);
    (past.to_string(), past.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
}

/// **Finished-stay fixture**: a paid, `confirmed` booking whose check-out instant (`check_out_at`)
/// is `instant`, in the past: `status = confirmed`, `check_out_at`, `payment.status = succeeded`
/// and `payment.amount_paid`. Its sweep-index entry is left where it was (the original hold, in
/// the future) until `index_for_sweep`.
async fn finish_stay(booking_id: &str, instant: &str, paid: i64) {
    update_booking(
        booking_id,
        "SET #s = :confirmed, check_out_at = :out, #p.#s = :succeeded, #p.amount_paid = :m",
        json!({"#s": "status", "#p": "payment"}),
        json!({":confirmed": {"S": "confirmed"}, ":out": {"S": instant}, ":succeeded": {"S": "succeeded"},
               ":m": stored_money(paid)}),
    )
    .await;
}

/// **Sweep-index fixture**: puts the booking where the sweep looks for what is due (the sparse
/// GSI3): `GSI3PK = SWEEP#<YYYY-MM-DD of instant>`, `GSI3SK = <instant>#<booking id>`, `instant`
/// being the same whole-second UTC string as the moved `hold_expires_at` / `check_out_at`.
async fn index_for_sweep(booking_id: &str, instant: &str, date: &str) {
    update_booking(
        booking_id,
        "SET GSI3PK = :pk, GSI3SK = :sk",
        json!({}),
        json!({":pk": {"S": format!("SWEEP#{date}")}, ":sk": {"S": format!("{instant}#{booking_id}")}}),
    )
    .await;
    // GSI3 is eventually consistent (and lags in `cargo roost test`): a sweep run at once may
    // not see the entry yet, as on AWS; wait until the index has it, as the next run would.
    let query = json!({
        "IndexName": "GSI3",
        "KeyConditionExpression": "GSI3PK = :pk AND GSI3SK = :sk",
        "ExpressionAttributeValues": {":pk": {"S": format!("SWEEP#{date}")}, ":sk": {"S": format!("{instant}#{booking_id}")}},
    });
    let indexed = roost_e2e::until_indexed(|| dynamodb("Query", query.clone()), |page| page["Count"] == 1).await;
    assert_eq!(indexed["Count"], 1, "GSI3 never showed {booking_id}: {indexed}");
}

/// Invokes the sweep as its schedule does; asserts it answered (not an error); returns its summary.
async fn run_sweep() -> Value {
    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let (outcome, summary) = Stack::get().invoke(SWEEP, &event).await;
    assert_eq!(outcome, "response", "the sweep failed: {summary}");
    summary
}

// ---------------------------------------------------------------------------------------------
// Events: a probe queue on the domain-events topic, closed by a sentinel
// ---------------------------------------------------------------------------------------------

/// This test's own queue on the topic: raw delivery, `booking.cancelled` and `booking.expired`.
struct Probe {
    url: String,
    /// Removes the queue and its subscription however the test ends.
    _guard: roost_e2e::probe::ProbeGuard,
}

/// An event as the probe received it: its envelope and its `type` message attribute.
#[derive(Debug, Clone)]
struct Received {
    envelope: Value,
    type_attribute: Option<String>,
}

impl Received {
    fn event_type(&self) -> &str {
        s(&self.envelope, "type")
    }

    fn booking_id(&self) -> &str {
        s(&self.envelope["data"], "booking_id")
    }
}

impl Probe {
    async fn subscribe() -> Probe {
        let name = format!("probe-{}", unique("lifecycle"));
        let url =
            sqs("CreateQueue", &json!({"QueueName": name})).await["QueueUrl"].as_str().expect("QueueUrl").to_owned();
        let subscription = sns()
            .subscribe()
            .topic_arn(topic_arn())
            .protocol("sqs")
            .endpoint(format!("arn:aws:sqs:us-east-1:123456789012:{name}"))
            .attributes("RawMessageDelivery", "true")
            .attributes("FilterPolicy", json!({"type": ["booking.cancelled", "booking.expired"]}).to_string())
            .return_subscription_arn(true)
            .send()
            .await
            .expect("Subscribe");
        let guard = roost_e2e::probe::ProbeGuard::new(&url, subscription.subscription_arn().unwrap_or_default());
        Probe { url, _guard: guard }
    }

    /// Commits a sentinel event (straight to the outbox), then receives until it has arrived
    /// and drains the rest. Returns the events about `bookings`, in arrival order; the `type`
    /// attribute of each is checked against its envelope.
    async fn events_about(&self, bookings: &BTreeSet<String>) -> Vec<Received> {
        let table = table();
        let sentinel = Envelope::new(
            BookingExpired {
                booking_id: unique("bkg_sentinel"),
                listing_id: "lst_sentinel".into(),
                guest_id: "guest-sentinel".into(),
                host_id: "host-sentinel".into(),
            },
            jiff::Timestamp::now(),
        );
        table.transact(vec![outbox_put(&table, &sentinel).expect("outbox")]).await.expect("sentinel");

        let deadline = std::time::Instant::now() + PATIENCE;
        let mut seen_sentinel = false;
        let mut ours = Vec::new();
        loop {
            let out = sqs(
                "ReceiveMessage",
                &json!({"QueueUrl": self.url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": u32::from(!seen_sentinel),
                        "MessageAttributeNames": ["All"]}),
            )
            .await;
            let messages = out.get("Messages").and_then(Value::as_array).cloned().unwrap_or_default();
            if messages.is_empty() && seen_sentinel {
                return ours;
            }
            for message in messages {
                sqs("DeleteMessage", &json!({"QueueUrl": self.url, "ReceiptHandle": message["ReceiptHandle"]})).await;
                let body = message["Body"].as_str().expect("Body");
                let envelope: Value =
                    serde_json::from_str(body).unwrap_or_else(|e| panic!("raw envelope: {e}: {body}"));
                let received = Received {
                    type_attribute: message
                        .pointer("/MessageAttributes/type/StringValue")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    envelope,
                };
                assert_eq!(received.type_attribute.as_deref(), Some(received.event_type()), "{message}");
                seen_sentinel |= received.envelope["id"] == sentinel.id.as_str();
                if bookings.contains(received.booking_id()) {
                    ours.push(received);
                }
            }
            assert!(std::time::Instant::now() < deadline, "the sentinel {} never reached the probe", sentinel.id);
        }
    }

    /// Removes the probe now (its guard would at the end of the test anyway).
    async fn close(self) {
        drop(self);
    }
}

/// The one event of `event_type` about `booking_id` among `events` (panics unless exactly one).
fn exactly_one<'a>(events: &'a [Received], event_type: &str, booking_id: &str) -> &'a Value {
    let found: Vec<&Received> =
        events.iter().filter(|e| e.event_type() == event_type && e.booking_id() == booking_id).collect();
    assert_eq!(found.len(), 1, "exactly one {event_type} for {booking_id}: {found:?}");
    &found[0].envelope
}

/// Asserts `event` is the `booking.cancelled` of `booking` by `by` with `refund_due`.
fn assert_cancelled_event(event: &Value, booking: &Value, by: &str, refund_due: i64) {
    assert_eq!(event["version"], 1, "{event}");
    assert_eq!(
        event["data"],
        json!({
            "booking_id": booking["booking_id"], "listing_id": booking["listing_id"],
            "guest_id": booking["guest"]["user_id"], "host_id": booking["host"]["user_id"],
            "cancelled_by": by, "refund_due": money(refund_due)
        }),
        "{event}"
    );
}

// ---------------------------------------------------------------------------------------------
// Cancellation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_guest_is_refunded_exactly_what_each_policy_band_gives_in_the_listings_time_zone() {
    roost_e2e::needs_stack!();
    let probe = Probe::subscribe().await;
    // One guest per case: the cases book at once, and a guest has at most three bookings
    // waiting for payment.
    let (host, guests) = tokio::join!(
        User::host("Bianca Bands"),
        join_all((0..9).map(|i| async move { User::guest(&format!("Gale Bands {i}")).await }))
    );
    // Three time zones, so "today" is a different date for some of them most of the day.
    let (strict_tz, moderate_tz, flexible_tz) = ("Pacific/Auckland", "America/Los_Angeles", "Europe/Lisbon");
    let ((strict, _), (moderate, _), (flexible, _)) = tokio::join!(
        new_listing(&host, strict_tz, "strict"),
        new_listing(&host, moderate_tz, "moderate"),
        new_listing(&host, flexible_tz, "flexible")
    );
    // (policy, listing, time zone, days before check-in, refund due: 100 %, 50 % or nothing)
    let cases = [
        ("strict", &strict, strict_tz, 14, ONE_NIGHT),
        ("strict", &strict, strict_tz, 13, HALF_A_NIGHT),
        ("strict", &strict, strict_tz, 7, HALF_A_NIGHT),
        ("strict", &strict, strict_tz, 6, 0),
        ("moderate", &moderate, moderate_tz, 5, ONE_NIGHT),
        ("moderate", &moderate, moderate_tz, 4, HALF_A_NIGHT),
        ("moderate", &moderate, moderate_tz, 1, HALF_A_NIGHT),
        ("flexible", &flexible, flexible_tz, 14, ONE_NIGHT),
        ("flexible", &flexible, flexible_tz, 1, ONE_NIGHT),
    ];
    let outcomes = join_all(cases.into_iter().enumerate().map(|(i, (policy, listing, tz, days, due))| {
        let (guest, host, listing) = (guests[i].clone(), host.clone(), listing.clone());
        async move {
            let b = book(&guest, &listing, tz, days, days + 1).await;
            let bid = s(&b, "booking_id").to_owned();
            assert_eq!(b["price"]["total"], ONE_NIGHT, "{b}");
            assert_eq!(b["cancellation_policy"], policy);
            mark_paid(&bid, ONE_NIGHT).await;

            // The preview: the guest's share; the host's view of the same booking is 100 %.
            let p = assert_preview(preview(&guest, &bid).await, due, policy).await;
            assert_preview(preview(&host, &bid).await, ONE_NIGHT, policy).await;
            // The cancel refunds what the preview said (with and without a reason).
            let body = if i % 2 == 0 { json!({}) } else { json!({"reason": "plans changed"}) };
            let cancelled = assert_cancelled(cancel(&guest, &bid, &body).await, &bid, due).await;
            assert_eq!(cancelled["refund"]["amount"], p["refund"]["amount"], "{policy} at {days} days");
            let read = booking_of(&guest, &bid).await;
            assert_eq!((&read["status"], &read["refund"]), (&json!("cancelled"), &refund_view(due)));
            assert_released(&listing, &bid).await;
            (b, due, format!("{policy} at {days} days"))
        }
    }))
    .await;
    for listing in [&strict, &moderate, &flexible] {
        assert!(stored_unavailable(listing).await.is_empty(), "every night of {listing} released from search");
    }

    // One booking.cancelled per cancellation, carrying the refund due.
    let ours: BTreeSet<String> = outcomes.iter().map(|(b, _, _)| s(b, "booking_id").to_owned()).collect();
    let events = probe.events_about(&ours).await;
    assert_eq!(events.len(), outcomes.len(), "{events:?}");
    for (b, due, case) in &outcomes {
        let event = exactly_one(&events, "booking.cancelled", s(b, "booking_id"));
        assert_eq!(event["data"]["refund_due"], money(*due), "{case}");
        assert_cancelled_event(event, b, "guest", *due);
    }
    probe.close().await;
}

#[tokio::test]
async fn the_guests_today_is_the_listings_date_not_utcs() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Tiva Zones"), User::guest("Tor Zones"));
    // Kiritimati (UTC+14) is a day ahead of UTC from 10:00 UTC; Pago Pago (UTC-11) a day behind
    // until 11:00 UTC: at any instant at least one of them is on another date than UTC.
    let (ahead, behind) = ("Pacific/Kiritimati", "Pacific/Pago_Pago");
    let utc = today_in("UTC");
    assert!(today_in(ahead) != utc || today_in(behind) != utc, "one listing's today differs from UTC's");
    let ((ahead_listing, _), (behind_listing, _)) =
        tokio::join!(new_listing(&host, ahead, "strict"), new_listing(&host, behind, "strict"));
    // Strict, counted in the listing's zone: 6 days -> 0 % (UTC could count 7 -> 50 %) ahead;
    // 7 days -> 50 % (UTC could count 6 -> 0 %) behind.
    for (listing, tz, days, due) in [(&ahead_listing, ahead, 6, 0), (&behind_listing, behind, 7, HALF_A_NIGHT)] {
        let b = book(&guest, listing, tz, days, days + 1).await;
        let bid = s(&b, "booking_id").to_owned();
        assert_eq!(b["check_in"], day(tz, days));
        mark_paid(&bid, ONE_NIGHT).await;
        assert_preview(preview(&guest, &bid).await, due, "strict").await;
        assert_cancelled(cancel(&guest, &bid, &json!({})).await, &bid, due).await;
    }
}

#[tokio::test]
async fn the_host_cancels_with_a_full_refund_and_the_nights_are_free_in_search_again() {
    roost_e2e::needs_stack!();
    let probe = Probe::subscribe().await;
    let (host, guest, next) =
        tokio::join!(User::host("Hana Host"), User::guest("Hugo Guest"), User::guest("Nell Next"));
    let tz = "Asia/Tokyo";
    let (listing, city) = new_listing(&host, tz, "strict").await;
    // Two nights 3 days out: the guest would get nothing back under strict; the host refunds all.
    let b = book(&guest, &listing, tz, 3, 5).await;
    let bid = s(&b, "booking_id").to_owned();
    let total = b["price"]["total"].as_i64().expect("total");
    assert_eq!(total, 2 * 10_001 + 2_000 + 2_400, "{b}");
    mark_paid(&bid, total).await;
    let nights = days(tz, 3, 5);
    assert_eq!(stored_unavailable(&listing).await, nights.iter().cloned().collect());
    let (check_in, check_out) = (day(tz, 3), day(tz, 5));
    let hidden = roost_e2e::until_indexed(|| search_finds(&city, &listing, &check_in, &check_out), |found| !found);
    assert!(!hidden.await, "taken nights hide the listing");

    assert_preview(preview(&guest, &bid).await, 0, "strict").await;
    let p = assert_preview(preview(&host, &bid).await, total, "strict").await;
    let cancelled = assert_cancelled(cancel(&host, &bid, &json!({"reason": "pipe burst"})).await, &bid, total).await;
    assert_eq!(cancelled["refund"]["amount"], p["refund"]["amount"]);
    assert_eq!(booking_of(&guest, &bid).await["status"], "cancelled");
    assert_eq!(settled_status(&host, &listing, &bid, "cancelled").await, "cancelled");
    assert_eq!(settled_trip_ids(&guest, "?status=cancelled", &[bid.as_str()]).await, [bid.as_str()]);

    // Released in the same transaction: no night, no date in the search item, found by search,
    // and bookable by the next guest.
    assert!(night_items(&listing).await.is_empty(), "{:?}", night_items(&listing).await);
    assert!(stored_unavailable(&listing).await.is_empty());
    eventually("search finds the listing again", || async {
        search_finds(&city, &listing, &day(tz, 3), &day(tz, 5)).await.then_some(())
    })
    .await;
    book(&next, &listing, tz, 3, 5).await;

    // Both sides now get already_cancelled, for the preview and the cancel.
    for user in [&guest, &host] {
        assert_problem(preview(user, &bid).await, 409, "already_cancelled").await;
        assert_problem(cancel(user, &bid, &json!({})).await, 409, "already_cancelled").await;
    }

    let events = probe.events_about(&BTreeSet::from([bid.clone()])).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_cancelled_event(exactly_one(&events, "booking.cancelled", &bid), &b, "host", total);
    probe.close().await;
}

#[tokio::test]
async fn an_unpaid_booking_cancels_with_no_refund() {
    roost_e2e::needs_stack!();
    let probe = Probe::subscribe().await;
    let (host, guest) = tokio::join!(User::host("Una Unpaid"), User::guest("Ugo Unpaid"));
    let tz = "Europe/Lisbon";
    let (listing, _) = new_listing(&host, tz, "flexible").await;
    // Flexible, 20 days out: the guest would get 100 % of what was paid, which is nothing.
    let b = book(&guest, &listing, tz, 20, 22).await;
    let bid = s(&b, "booking_id").to_owned();
    assert_eq!(b["payment"]["status"], "unpaid");
    assert_preview(preview(&guest, &bid).await, 0, "flexible").await;
    assert_preview(preview(&host, &bid).await, 0, "flexible").await;
    let cancelled = assert_cancelled(cancel(&guest, &bid, &json!({})).await, &bid, 0).await;
    assert_eq!(cancelled["refund"]["status"], "none");
    assert!(night_items(&listing).await.is_empty());
    assert!(stored_unavailable(&listing).await.is_empty());

    let events = probe.events_about(&BTreeSet::from([bid.clone()])).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_cancelled_event(exactly_one(&events, "booking.cancelled", &bid), &b, "guest", 0);
    probe.close().await;
}

#[tokio::test]
async fn two_cancels_racing_make_one_cancellation_one_refund_and_one_event() {
    roost_e2e::needs_stack!();
    const ROUNDS: usize = 4;
    let probe = Probe::subscribe().await;
    let (host, guest) = tokio::join!(User::host("Rex Race"), User::guest("Rue Race"));
    let tz = "America/Los_Angeles";
    let (listing, _) = new_listing(&host, tz, "moderate").await;
    let mut winners = Vec::new();
    for round in 0..ROUNDS {
        // Moderate at 1 to 4 days: the guest gets 50 %, the host refunds 100 %, so the refund
        // tells which cancel won. Even rounds: the guest twice; odd rounds: guest against host.
        let from = 1 + i64::try_from(round).expect("small");
        let b = book(&guest, &listing, tz, from, from + 1).await;
        let bid = s(&b, "booking_id").to_owned();
        mark_paid(&bid, ONE_NIGHT).await;
        let rivals = if round % 2 == 0 { [guest.clone(), guest.clone()] } else { [guest.clone(), host.clone()] };
        let results = join_all(rivals.into_iter().map(|user| {
            let bid = bid.clone();
            async move {
                let response = cancel(&user, &bid, &json!({})).await;
                let status = response.status().as_u16();
                (user.user_id.clone(), status, response.json::<Value>().await.expect("json"))
            }
        }))
        .await;
        let ok: Vec<&(String, u16, Value)> = results.iter().filter(|(_, status, _)| *status == 200).collect();
        assert_eq!(ok.len(), 1, "round {round}: exactly one cancel wins: {results:?}");
        for (_, status, body) in results.iter().filter(|(_, status, _)| *status != 200) {
            assert_eq!((*status, &body["code"]), (409, &json!("already_cancelled")), "round {round}: {body}");
        }
        let (winner_id, _, won) = ok[0];
        let by = if *winner_id == host.user_id { "host" } else { "guest" };
        let due = if by == "host" { ONE_NIGHT } else { HALF_A_NIGHT };
        assert_eq!(won["refund"], refund_view(due), "round {round}: {won}");

        // A third cancel, later: refused, and the refund recorded is the winner's.
        assert_problem(cancel(&guest, &bid, &json!({})).await, 409, "already_cancelled").await;
        assert_problem(cancel(&host, &bid, &json!({})).await, 409, "already_cancelled").await;
        assert_problem(preview(&guest, &bid).await, 409, "already_cancelled").await;
        assert_eq!(booking_of(&guest, &bid).await["refund"], refund_view(due), "round {round}");
        assert_released(&listing, &bid).await;
        winners.push((b, by, due));
    }
    assert!(night_items(&listing).await.is_empty());

    let ours: BTreeSet<String> = winners.iter().map(|(b, _, _)| s(b, "booking_id").to_owned()).collect();
    let events = probe.events_about(&ours).await;
    assert_eq!(events.len(), ROUNDS, "one event per booking, none from the losers: {events:?}");
    for (b, by, due) in &winners {
        assert_cancelled_event(exactly_one(&events, "booking.cancelled", s(b, "booking_id")), b, by, *due);
    }
    probe.close().await;
}

#[tokio::test]
async fn a_guest_cannot_cancel_from_the_check_in_day_but_the_host_can() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Cora Checkin"), User::guest("Cid Checkin"));
    let tz = "Pacific/Auckland";
    let (listing, _) = new_listing(&host, tz, "flexible").await;
    // Check-in today in the listing's time zone.
    let b = book(&guest, &listing, tz, 0, 2).await;
    let bid = s(&b, "booking_id").to_owned();
    let total = b["price"]["total"].as_i64().expect("total");
    mark_paid(&bid, total).await;
    assert_problem(preview(&guest, &bid).await, 409, "stay_started").await;
    assert_problem(cancel(&guest, &bid, &json!({"reason": "too late?"})).await, 409, "stay_started").await;
    let read = booking_of(&guest, &bid).await;
    assert_eq!(read["status"], "pending_payment", "refused: nothing changed: {read}");
    assert_eq!(night_items(&listing).await.len(), 2, "the nights are still held");

    assert_preview(preview(&host, &bid).await, total, "flexible").await;
    assert_cancelled(cancel(&host, &bid, &json!({})).await, &bid, total).await;
    assert!(night_items(&listing).await.is_empty());
}

#[tokio::test]
async fn only_its_guest_and_its_host_see_or_cancel_a_booking() {
    roost_e2e::needs_stack!();
    let (host, guest, other_guest, stranger, other_host) = tokio::join!(
        User::host("Ola Owner"),
        User::guest("Gia Guest"),
        User::guest("Oto Other"),
        User::guest("Sy Stranger"),
        User::host("Hal Otherhost")
    );
    let tz = "Europe/Lisbon";
    let (listing, _) = new_listing(&host, tz, "moderate").await;
    let b = book(&guest, &listing, tz, 30, 32).await;
    let bid = s(&b, "booking_id").to_owned();
    // The other guest has a booking of their own on the same listing: still not theirs.
    book(&other_guest, &listing, tz, 40, 41).await;
    for user in [&stranger, &other_guest, &other_host] {
        assert_problem(preview(user, &bid).await, 404, "not_found").await;
        assert_problem(cancel(user, &bid, &json!({})).await, 404, "not_found").await;
    }
    assert_problem(preview(&guest, "bkg_nope").await, 404, "not_found").await;
    assert_problem(cancel(&guest, "bkg_nope", &json!({})).await, 404, "not_found").await;
    let anonymous = client()
        .post(Stack::get().url(&format!("/v1/bookings/{bid}/cancel")))
        .json(&json!({}))
        .send()
        .await
        .expect("api");
    assert_eq!(anonymous.status(), 401);
    // Nothing changed.
    assert_eq!(booking_of(&guest, &bid).await["status"], "pending_payment");
    let held: Vec<String> = night_items(&listing)
        .await
        .into_iter()
        .filter(|(_, _, holder)| holder.as_deref() == Some(bid.as_str()))
        .map(|(date, _, _)| date)
        .collect();
    assert_eq!(held, days(tz, 30, 32));
}

// ---------------------------------------------------------------------------------------------
// A real payment, refunded at localstripe
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_paid_booking_cancelled_by_its_guest_is_refunded_at_stripe_exactly_what_is_due() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Pia Paid"), User::guest("Pat Paid"));
    let tz = "Europe/Lisbon";
    let (listing, _) = new_listing(&host, tz, "moderate").await;
    let b = book(&guest, &listing, tz, 4, 5).await;
    let bid = s(&b, "booking_id").to_owned();

    // Paid for real: the intent, a card at localstripe, its webhook, payment-events.
    let intent = json_of(guest.api().pay(&bid, None).await, 200).await;
    let pi = s(&intent, "payment_intent_id").to_owned();
    assert_eq!(intent["amount"], ONE_NIGHT);
    let (status, confirmed) = confirm_with(&pi, "pm_card_visa").await;
    assert_eq!((status, &confirmed["status"]), (200, &json!("succeeded")), "{confirmed}");
    eventually("the booking confirmed", || async {
        (booking_of(&guest, &bid).await["status"] == "confirmed").then_some(())
    })
    .await;
    assert_eq!(night_items(&listing).await, [(day(tz, 4), "booked".to_owned(), Some(bid.clone()))]);

    // Moderate, 4 days before check-in: 50 % of 132.01 = 66.005 -> 66.01.
    let due = HALF_A_NIGHT;
    assert_eq!(due, 6_601);
    assert_preview(preview(&guest, &bid).await, due, "moderate").await;
    assert_cancelled(cancel(&guest, &bid, &json!({"reason": "sick"})).await, &bid, due).await;
    assert!(night_items(&listing).await.is_empty(), "the booked night is released");

    let refunds = eventually("the refund at localstripe", || async {
        let refunds = refunds_of(&pi).await;
        (!refunds.is_empty()).then_some(refunds)
    })
    .await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["amount"], due, "exactly what is due: {refunds:?}");
    let read = eventually("the refund recorded as succeeded", || async {
        let read = booking_of(&guest, &bid).await;
        (read["refund"]["status"] == "succeeded").then_some(read)
    })
    .await;
    assert_eq!((&read["refund"]["amount"], &read["refund"]["currency"]), (&json!(due), &json!(CURRENCY)));

    // Cancelling again: refused, and no second refund.
    assert_problem(cancel(&guest, &bid, &json!({})).await, 409, "already_cancelled").await;
    assert_problem(cancel(&host, &bid, &json!({})).await, 409, "already_cancelled").await;
    assert_eq!(refunds_of(&pi).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// A declined card: only its guest sees why; the guest's open holds
// ---------------------------------------------------------------------------------------------

/// The guest's browser: the booking's intent, `payment_method` attached, then `/confirm`.
/// Returns the intent id and localstripe's answer to the confirm.
async fn pay_with(guest: &User, booking_id: &str, payment_method: &str) -> (String, u16, Value) {
    let intent = json_of(guest.api().pay(booking_id, None).await, 200).await;
    let pi = s(&intent, "payment_intent_id").to_owned();
    let (status, confirmed) = confirm_with(&pi, payment_method).await;
    (pi, status, confirmed)
}

/// The host's `GET /v1/bookings/{id}/cancellation`: exactly `{refund, policy, reason}`, the
/// refund `amount`, and none of `secrets` (decline codes, intent ids: a client secret starts with
/// its intent's id) nor a client secret anywhere.
async fn assert_host_preview_has_no_card_detail(host: &User, booking_id: &str, amount: i64, secrets: &[&str]) {
    let p = json_of(preview(host, booking_id).await, 200).await;
    let fields: BTreeSet<&str> = p.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(fields, BTreeSet::from(["policy", "reason", "refund"]), "{p}");
    assert_eq!(p["refund"], json!({"amount": amount, "currency": CURRENCY}), "{p}");
    let text = p.to_string();
    for secret in secrets.iter().chain(&["secret", "pi_"]) {
        assert!(!text.contains(secret), "the host's preview shows {secret}: {text}");
    }
}

/// The booking without what only one party sees: the guest's payment details, the host's payout.
fn without_payment(view: &Value) -> Value {
    let mut v = view.clone();
    let fields = v.as_object_mut().expect("object");
    fields.remove("payment");
    fields.remove("payout");
    v
}

#[tokio::test]
async fn a_declined_card_shows_its_reason_to_the_guest_only_and_keeps_the_hold_open() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Dee Declined"), User::guest("Dan Declined"));
    let tz = "Europe/Lisbon";
    let (listing, _) = new_listing(&host, tz, "moderate").await;
    let a = book(&guest, &listing, tz, 10, 11).await;
    let b = book(&guest, &listing, tz, 12, 13).await;
    let c = book(&guest, &listing, tz, 14, 15).await;
    let (aid, bid, cid) =
        (s(&a, "booking_id").to_owned(), s(&b, "booking_id").to_owned(), s(&c, "booking_id").to_owned());

    // A declined card (localstripe: 402 card_declined, and payment_intent.payment_failed).
    let declining = card("4000000000000341").await;
    let (pi, status, declined) = pay_with(&guest, &aid, &declining).await;
    assert_eq!((status, &declined["error"]["code"]), (402, &json!("card_declined")), "{declined}");
    let guest_view = eventually("the failure recorded", || async {
        let v = booking_of(&guest, &aid).await;
        (v["payment"]["status"] == "failed").then_some(v)
    })
    .await;
    // Its guest sees why (the code Stripe gave), and the intent to pay again with.
    assert_eq!(guest_view["payment"], json!({"status": "failed", "payment_intent_id": pi, "failure": "card_declined"}));
    // Its host sees that the payment failed, never why nor the guest's payment details: on the
    // booking and in the reservations list.
    let host_view = booking_of(&host, &aid).await;
    let listed = reservations(&host, &listing).await[&aid].clone();
    for view in [&host_view, &listed] {
        assert_eq!(view["payment"], json!({"status": "failed"}), "{view}");
        let text = view.to_string();
        assert!(!text.contains("card_declined") && !text.contains(&pi), "the host sees no card detail: {text}");
        assert_eq!(without_payment(view), without_payment(&guest_view), "the rest is the same booking");
    }
    // Nor in the host's cancellation preview: the amount the guest would get back (nothing was
    // paid), never the card's details.
    assert_host_preview_has_no_card_detail(&host, &aid, 0, &["card_declined", pi.as_str()]).await;

    // A declined booking still waits for payment: the guest's three holds are all open.
    let fourth = json!({"listing_id": listing, "check_in": day(tz, 16), "check_out": day(tz, 17), "guests": 1});
    let refused = assert_problem(guest.post("/v1/bookings", Some(&fourth)).await, 409, "hold_limit_reached").await;
    assert!(s(&refused, "detail").contains("waiting for payment"), "{refused}");
    // Paying one (confirmed by payment-events) frees its slot.
    let (paid_pi, status, paid) = pay_with(&guest, &bid, "pm_card_visa").await;
    assert_eq!((status, &paid["status"]), (200, &json!("succeeded")), "{paid}");
    eventually("the booking confirmed", || async {
        (booking_of(&guest, &bid).await["status"] == "confirmed").then_some(())
    })
    .await;
    // The host's view of a paid booking: `succeeded`, not the intent or the amount the card paid.
    assert_eq!(booking_of(&host, &bid).await["payment"], json!({"status": "succeeded"}));
    // The host's cancellation preview names what the guest would get back (100 % of what was
    // paid: the host's payout shrinks by it), not the intent or its client secret.
    assert_host_preview_has_no_card_detail(&host, &bid, ONE_NIGHT, &[paid_pi.as_str()]).await;
    let d = book(&guest, &listing, tz, 16, 17).await;
    let fifth = json!({"listing_id": listing, "check_in": day(tz, 18), "check_out": day(tz, 19), "guests": 1});
    assert_problem(guest.post("/v1/bookings", Some(&fifth)).await, 409, "hold_limit_reached").await;
    // A hold that lapsed (before or after the sweep stores `expired`) frees its slot.
    let (past, date) = minutes_ago(2);
    lapse_hold(&cid, &listing, &days(tz, 14, 15), &past).await;
    index_for_sweep(&cid, &past, &date).await;
    run_sweep().await;
    assert_eq!(stored_status(&cid).await, "expired");
    book(&guest, &listing, tz, 18, 19).await;
    // So is a cancellation: a (still declined), d and the sixth wait; cancelling d makes room.
    let sixth = json!({"listing_id": listing, "check_in": day(tz, 20), "check_out": day(tz, 21), "guests": 1});
    assert_problem(guest.post("/v1/bookings", Some(&sixth)).await, 409, "hold_limit_reached").await;
    json_of(cancel(&guest, s(&d, "booking_id"), &json!({})).await, 200).await;
    book(&guest, &listing, tz, 20, 21).await;
}

// ---------------------------------------------------------------------------------------------
// Time: expired and completed, before and after the sweep
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_lapsed_hold_reads_expired_before_the_sweep_and_the_sweep_frees_only_its_own_nights() {
    roost_e2e::needs_stack!();
    let probe = Probe::subscribe().await;
    let (host, first, taker, next) = tokio::join!(
        User::host("Eve Expiry"),
        User::guest("Fin First"),
        User::guest("Tay Taker"),
        User::guest("Nia Next")
    );
    let tz = "America/Sao_Paulo";
    let (listing, city) = new_listing(&host, tz, "moderate").await;
    let a = book(&first, &listing, tz, 20, 23).await;
    let aid = s(&a, "booking_id").to_owned();
    let (lapsed_at, lapsed_day) = minutes_ago(2);
    lapse_hold(&aid, &listing, &days(tz, 20, 23), &lapsed_at).await;

    // Before any sweep: every view computes `expired` itself.
    assert_eq!(booking_of(&first, &aid).await["status"], "expired");
    assert_eq!(booking_of(&host, &aid).await["status"], "expired");
    assert_eq!(settled_trip_ids(&first, "?status=expired", &[aid.as_str()]).await, [aid.as_str()]);
    assert!(settled_trip_ids(&first, "?status=pending_payment", &[]).await.is_empty());
    assert_eq!(settled_status(&host, &listing, &aid, "expired").await, "expired");
    for user in [&first, &host] {
        assert_problem(preview(user, &aid).await, 409, "booking_not_cancellable").await;
        assert_problem(cancel(user, &aid, &json!({})).await, 409, "booking_not_cancellable").await;
    }
    assert_eq!(stored_status(&aid).await, "pending_payment", "no sweep could have found it yet");

    // Another guest takes over one lapsed night before the sweep (bookings allows it).
    let t = book(&taker, &listing, tz, 22, 24).await;
    let tid = s(&t, "booking_id").to_owned();

    // Due for the sweep now; run it.
    index_for_sweep(&aid, &lapsed_at, &lapsed_day).await;
    let summary = run_sweep().await;
    // Counts over the whole table (other tests' bookings too): at least this one expired.
    assert!(summary["expired"].as_u64().is_some_and(|n| n >= 1), "sweep summary: {summary}");
    assert_eq!(stored_status(&aid).await, "expired", "stored by the sweep");
    // Only the nights it still held are freed; the taken-over night and the taker's are kept.
    let nights = night_items(&listing).await;
    let want =
        [(day(tz, 22), "held".to_owned(), Some(tid.clone())), (day(tz, 23), "held".to_owned(), Some(tid.clone()))];
    assert_eq!(nights, want);
    assert_eq!(stored_unavailable(&listing).await, days(tz, 22, 24).into_iter().collect());
    eventually("search finds the freed nights", || async {
        search_finds(&city, &listing, &day(tz, 20), &day(tz, 22)).await.then_some(())
    })
    .await;
    book(&next, &listing, tz, 20, 22).await;
    assert_eq!(booking_of(&first, &aid).await["status"], "expired");
    assert_eq!(settled_trip_ids(&first, "?status=expired", &[aid.as_str()]).await, [aid.as_str()]);

    // A second sweep changes nothing and emits nothing more.
    run_sweep().await;
    assert_eq!(stored_status(&aid).await, "expired");
    assert_eq!(booking_of(&taker, &tid).await["status"], "pending_payment");

    let events = probe.events_about(&BTreeSet::from([aid.clone(), tid.clone()])).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let expired = exactly_one(&events, "booking.expired", &aid);
    assert_eq!(expired["version"], 1);
    assert_eq!(
        expired["data"],
        json!({"booking_id": aid, "listing_id": listing, "guest_id": first.user_id, "host_id": host.user_id}),
    );
    probe.close().await;
}

#[tokio::test]
async fn a_finished_stay_reads_completed_before_the_sweep_and_the_sweep_stores_it() {
    roost_e2e::needs_stack!();
    let probe = Probe::subscribe().await;
    let (host, guest) = tokio::join!(User::host("Cleo Complete"), User::guest("Cal Complete"));
    let tz = "Pacific/Auckland";
    let (listing, _) = new_listing(&host, tz, "strict").await;
    let done = book(&guest, &listing, tz, 2, 4).await;
    let did = s(&done, "booking_id").to_owned();
    let ongoing = book(&guest, &listing, tz, 10, 12).await;
    let oid = s(&ongoing, "booking_id").to_owned();
    let (ended_at, ended_day) = minutes_ago(3);
    finish_stay(&did, &ended_at, done["price"]["total"].as_i64().expect("total")).await;
    // The other stay is confirmed and ends in the future, but an index entry of it in the past
    // (the sweep reads an eventually consistent index) brings it up in the sweep: left alone.
    let ongoing_total = ongoing["price"]["total"].as_i64().expect("total");
    let future_out = s(&stored_booking(&oid).await["check_out_at"], "S").to_owned();
    finish_stay(&oid, &future_out, ongoing_total).await;
    index_for_sweep(&oid, &ended_at, &ended_day).await;

    // Before the sweep: `completed` everywhere, and not cancellable by either side.
    let read = booking_of(&guest, &did).await;
    assert_eq!(read["status"], "completed", "{read}");
    assert!(read.get("address").is_some_and(|a| a.is_object()), "a completed stay shows the address: {read}");
    assert_eq!(booking_of(&host, &did).await["status"], "completed");
    assert_eq!(settled_trip_ids(&guest, "?status=completed", &[did.as_str()]).await, [did.as_str()]);
    assert_eq!(settled_trip_ids(&guest, "?status=confirmed", &[oid.as_str()]).await, [oid.as_str()]);
    assert_eq!(settled_status(&host, &listing, &did, "completed").await, "completed");
    for user in [&guest, &host] {
        assert_problem(preview(user, &did).await, 409, "booking_not_cancellable").await;
        assert_problem(cancel(user, &did, &json!({})).await, 409, "booking_not_cancellable").await;
    }
    assert_eq!(stored_status(&did).await, "confirmed", "no sweep could have found it yet");

    index_for_sweep(&did, &ended_at, &ended_day).await;
    let summary = run_sweep().await;
    // Counts over the whole table: at least this stay completed, and the ongoing one (due in
    // the index, not in fact) was looked at and left alone.
    assert!(summary["completed"].as_u64().is_some_and(|n| n >= 1), "sweep summary: {summary}");
    assert!(summary["skipped"].as_u64().is_some_and(|n| n >= 1), "sweep summary: {summary}");
    assert_eq!(stored_status(&did).await, "completed", "stored by the sweep");
    assert_eq!(booking_of(&guest, &did).await["status"], "completed");
    assert_eq!(settled_trip_ids(&guest, "?status=completed", &[did.as_str()]).await, [did.as_str()]);
    // The ongoing stay is untouched, still cancellable by its host.
    assert_eq!(stored_status(&oid).await, "confirmed");
    assert_eq!(booking_of(&guest, &oid).await["status"], "confirmed");
    assert_preview(preview(&host, &oid).await, ongoing_total, "strict").await;

    let events = probe.events_about(&BTreeSet::from([did.clone(), oid.clone()])).await;
    assert!(events.is_empty(), "completing emits neither booking.expired nor booking.cancelled: {events:?}");
    probe.close().await;
}
