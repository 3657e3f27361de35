//! Behaviour the contract (docs/api.md) promises that no other module checked (issue 23):
//! the photo limits, the payment provider failing, `booking.expired` cancelling the open
//! PaymentIntent, an archived listing honouring its bookings, `Idempotency-Key` scoped per route
//! and per caller, cursors bound to their filters, and a zero-decimal currency (JPY) quoted,
//! paid and refunded end to end.

use reqwest::Method;
use roost_e2e::{
    Stack, User, assert_problem, client, dynamodb, eventually, eventually_for, json_of, night_items, s, unique,
    until_indexed,
};
use serde_json::{Value, json};

use roost_e2e::fixtures::{TINY_PNG, day_in, put_upload, wait_for_status};

use super::currencies::{confirm_with_visa, intents_at_stripe};

const LISBON: &str = "Europe/Lisbon";
/// localstripe takes any `sk_` key.
const STRIPE_KEY: &str = "sk_test_roost_coverage";

fn listing_body(timezone: &str, nightly: Value, cleaning_fee: Value, policy: &str) -> Value {
    json!({
        "title": "Covered flat",
        "description": "Checked end to end.",
        "property_type": "apartment",
        "address": {"line1": "Rua Nova 2", "city": unique("Coverville"), "country": "PT"},
        "timezone": timezone,
        "max_guests": 2, "bedrooms": 1, "beds": 1, "bathrooms": 1,
        "nightly_price": nightly,
        "cleaning_fee": cleaning_fee,
        "min_nights": 1,
        "max_nights": 7,
        "cancellation_policy": policy
    })
}

/// A listing in EUR (100.00 a night, 20.00 cleaning) under `policy`, in Lisbon.
async fn euro_listing(host: &User, policy: &str) -> String {
    let body = listing_body(
        LISBON,
        json!({"amount": 10_000, "currency": "EUR"}),
        json!({"amount": 2_000, "currency": "EUR"}),
        policy,
    );
    s(&json_of(host.post("/v1/listings", Some(&body)).await, 201).await, "listing_id").to_owned()
}

fn stay(listing_id: &str, timezone: &str, from: i64, to: i64) -> Value {
    json!({"listing_id": listing_id, "check_in": day_in(timezone, from), "check_out": day_in(timezone, to), "guests": 1})
}

/// Books `[from, to)` days from today: 201, the booking.
async fn book(guest: &User, listing_id: &str, timezone: &str, from: i64, to: i64) -> Value {
    json_of(guest.post("/v1/bookings", Some(&stay(listing_id, timezone, from, to))).await, 201).await
}

async fn pay(user: &User, booking_id: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = client()
        .post(Stack::get().url(&format!("/v1/bookings/{booking_id}/payment")))
        .header("authorization", user.bearer());
    if let Some(k) = key {
        request = request.header("idempotency-key", k);
    }
    request.send().await.expect("api")
}

/// A localstripe object as it is now (`GET`).
async fn at_stripe(path: &str) -> Value {
    let response = client()
        .get(format!("{}{path}", Stack::get().stripe_url))
        .bearer_auth(STRIPE_KEY)
        .send()
        .await
        .expect("localstripe reachable");
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.expect("json")
}

// ---------------------------------------------------------------------------------------------
// Photos: 422 too_many_photos
// ---------------------------------------------------------------------------------------------

async fn announce(host: &User, listing_id: &str) -> reqwest::Response {
    let body = json!({"content_type": "image/png", "content_length": TINY_PNG.len()});
    host.post(&format!("/v1/listings/{listing_id}/photos"), Some(&body)).await
}

/// Uploads and completes every announced photo of `uploads`.
async fn complete_all(host: &User, listing_id: &str, uploads: Vec<Value>) {
    for upload in uploads {
        assert!(put_upload(&upload, TINY_PNG).await.status().is_success(), "{upload}");
        let path = format!("/v1/listings/{listing_id}/photos/{}/complete", s(&upload, "photo_id"));
        json_of(host.post(&path, None).await, 200).await;
    }
}

#[tokio::test]
async fn a_listing_takes_ten_uploads_at_once_and_thirty_photos_in_all() {
    roost_e2e::needs_stack!();
    let host = User::host("Phil Photos").await;
    let lid = euro_listing(&host, "flexible").await;

    // Ten uploads in progress: the eleventh waits until one is completed.
    let mut uploads = Vec::new();
    for _ in 0..10 {
        uploads.push(json_of(announce(&host, &lid).await, 201).await);
    }
    assert_problem(announce(&host, &lid).await, 422, "too_many_photos").await;
    complete_all(&host, &lid, std::mem::take(&mut uploads)).await;

    // Thirty photos in all: the thirty-first is refused, whatever is in progress.
    for _ in 0..2 {
        let batch: Vec<Value> = {
            let mut batch = Vec::new();
            for _ in 0..10 {
                batch.push(json_of(announce(&host, &lid).await, 201).await);
            }
            batch
        };
        complete_all(&host, &lid, batch).await;
    }
    let listing =
        json_of(client().get(Stack::get().url(&format!("/v1/listings/{lid}"))).send().await.expect("api"), 200).await;
    let photos = listing["photos"].as_array().expect("photos").clone();
    assert_eq!(photos.len(), 30);
    let refused = assert_problem(announce(&host, &lid).await, 422, "too_many_photos").await;
    assert!(s(&refused, "detail").contains("30"), "{refused}");

    // Removing one makes room for one.
    let first = format!("/v1/listings/{lid}/photos/{}", s(&photos[0], "photo_id"));
    assert_eq!(host.send(Method::DELETE, &first, None).await.status(), 204);
    json_of(announce(&host, &lid).await, 201).await;
    assert_problem(announce(&host, &lid).await, 422, "too_many_photos").await;
}

// ---------------------------------------------------------------------------------------------
// The payment provider failing: 502 refused, 503 unusable
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_payment_providers_refusal_is_502_and_an_unusable_answer_503() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Pro Host"), User::guest("Pro Guest"));
    let lid = euro_listing(&host, "flexible").await;

    // Refused: the booking names an intent Stripe does not know (Stripe answers 404). The
    // payments stack cannot point at a dead Stripe per test (one URL per stack), so Stripe's
    // own answers are what fails here.
    let refused = book(&guest, &lid, LISBON, 30, 31).await;
    let refused_id = s(&refused, "booking_id").to_owned();
    dynamodb(
        "UpdateItem",
        json!({
            "Key": {"PK": {"S": format!("BOOKING#{refused_id}")}, "SK": {"S": "BOOKING"}},
            "UpdateExpression": "SET #p.payment_intent_id = :pi, #p.#s = :processing",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeNames": {"#p": "payment", "#s": "status"},
            "ExpressionAttributeValues": {":pi": {"S": format!("pi_{}", unique("unknown"))}, ":processing": {"S": "processing"}}
        }),
    )
    .await;
    let problem = assert_problem(pay(&guest, &refused_id, None).await, 502, "payment_provider_error").await;
    assert!(!problem.to_string().contains("pi_"), "no Stripe detail in the answer: {problem}");

    // Unusable: Stripe answers, but with an intent in a currency Roost cannot read (localstripe
    // applies a JSON update verbatim).
    let unusable = book(&guest, &lid, LISBON, 33, 34).await;
    let unusable_id = s(&unusable, "booking_id").to_owned();
    let intent = json_of(pay(&guest, &unusable_id, None).await, 200).await;
    let pi = s(&intent, "payment_intent_id").to_owned();
    let altered = client()
        .post(format!("{}/v1/payment_intents/{pi}", Stack::get().stripe_url))
        .bearer_auth(STRIPE_KEY)
        .json(&json!({"currency": "zzz"}))
        .send()
        .await
        .expect("localstripe");
    assert_eq!(altered.status(), 200);
    assert_problem(pay(&guest, &unusable_id, None).await, 503, "payment_provider_unavailable").await;
    // Neither failure changed the bookings: still waiting for payment.
    for (id, pi_now) in [(&refused_id, None), (&unusable_id, Some(&pi))] {
        let b = json_of(guest.get(&format!("/v1/bookings/{id}")).await, 200).await;
        assert_eq!(b["status"], "pending_payment", "{b}");
        if let Some(pi) = pi_now {
            assert_eq!(b["payment"]["payment_intent_id"], json!(pi), "{b}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// booking.expired cancels the open PaymentIntent
// ---------------------------------------------------------------------------------------------

/// The booking's hold lapsed a minute ago (booking and nights) and the sweep's index has it due
/// now: what bookings and time leave behind, without waiting 15 minutes.
async fn lapse_and_index(booking_id: &str, listing_id: &str, nights: &[String]) {
    let past = jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_mins(1)).expect("past");
    let past = jiff::Timestamp::from_second(past.as_second()).expect("whole seconds");
    let (instant, date) = (past.to_string(), past.to_zoned(jiff::tz::TimeZone::UTC).date().to_string());
    let set = |pk: String, sk: &str| {
        json!({
            "Key": {"PK": {"S": pk}, "SK": {"S": sk}},
            "UpdateExpression": "SET hold_expires_at = :past",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeValues": {":past": {"S": instant.clone()}}
        })
    };
    dynamodb("UpdateItem", set(format!("BOOKING#{booking_id}"), "BOOKING")).await;
    for night in nights {
        dynamodb("UpdateItem", set(format!("LISTING#{listing_id}"), &format!("NIGHT#{night}"))).await;
    }
    dynamodb(
        "UpdateItem",
        json!({
            "Key": {"PK": {"S": format!("BOOKING#{booking_id}")}, "SK": {"S": "BOOKING"}},
            "UpdateExpression": "SET GSI3PK = :pk, GSI3SK = :sk",
            "ExpressionAttributeValues": {":pk": {"S": format!("SWEEP#{date}")}, ":sk": {"S": format!("{instant}#{booking_id}")}}
        }),
    )
    .await;
}

#[tokio::test]
async fn an_expired_booking_has_its_open_payment_intent_cancelled() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Exa Host"), User::guest("Exa Guest"));
    let lid = euro_listing(&host, "moderate").await;
    let b = book(&guest, &lid, LISBON, 50, 52).await;
    let bid = s(&b, "booking_id").to_owned();
    let intent = json_of(pay(&guest, &bid, None).await, 200).await;
    let pi = s(&intent, "payment_intent_id").to_owned();
    assert_eq!(at_stripe(&format!("/v1/payment_intents/{pi}")).await["status"], "requires_payment_method");

    // The hold lapses with the card form still open; the sweep stores `expired` and emits
    // booking.expired; the relay publishes it; payment-events cancels the intent at Stripe.
    lapse_and_index(&bid, &lid, &[day_in(LISBON, 50), day_in(LISBON, 51)]).await;
    let (outcome, summary) = Stack::get()
        .invoke(
            "BookingsSweepFunction",
            &json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}),
        )
        .await;
    assert_eq!(outcome, "response", "{summary}");
    let cancelled = eventually_for(std::time::Duration::from_secs(90), "the intent cancelled at Stripe", || async {
        let now = at_stripe(&format!("/v1/payment_intents/{pi}")).await;
        (now["status"] == "canceled").then_some(now)
    })
    .await;
    assert_eq!(cancelled["metadata"]["booking_id"], json!(bid));
    assert_eq!(json_of(guest.get(&format!("/v1/bookings/{bid}")).await, 200).await["status"], "expired");
    assert_problem(pay(&guest, &bid, None).await, 409, "booking_not_payable").await;
    assert!(night_items(&lid).await.is_empty(), "its nights freed");
}

// ---------------------------------------------------------------------------------------------
// An archived listing honours the bookings made before
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_archived_listing_takes_no_new_booking_and_honours_those_made_before() {
    roost_e2e::needs_stack!();
    let (host, guest, later) = tokio::join!(User::host("Arc Host"), User::guest("Arc Guest"), User::guest("Arc Later"));
    let lid = euro_listing(&host, "flexible").await;
    let paid = book(&guest, &lid, LISBON, 40, 42).await;
    let paid_id = s(&paid, "booking_id").to_owned();
    let intent = json_of(pay(&guest, &paid_id, None).await, 200).await;
    confirm_with_visa(s(&intent, "payment_intent_id")).await;
    wait_for_status(&guest, &paid_id, "confirmed").await;
    let unpaid = book(&guest, &lid, LISBON, 45, 46).await;
    let unpaid_id = s(&unpaid, "booking_id").to_owned();

    assert_eq!(host.send(Method::DELETE, &format!("/v1/listings/{lid}"), None).await.status(), 204);

    // No new bookings, no quotes, not public any more.
    assert_problem(later.post("/v1/bookings", Some(&stay(&lid, LISBON, 60, 61))).await, 422, "listing_unavailable")
        .await;
    assert_problem(
        client().post(Stack::get().url("/v1/quotes")).json(&stay(&lid, LISBON, 60, 61)).send().await.expect("api"),
        422,
        "listing_unavailable",
    )
    .await;
    assert_problem(
        client().get(Stack::get().url(&format!("/v1/listings/{lid}"))).send().await.expect("api"),
        404,
        "not_found",
    )
    .await;

    // The confirmed stay stands, for both sides; the unpaid one may still be paid.
    for user in [&guest, &host] {
        let read = json_of(user.get(&format!("/v1/bookings/{paid_id}")).await, 200).await;
        assert_eq!(read["status"], "confirmed", "{read}");
    }
    let reservations = json_of(host.get(&format!("/v1/me/reservations?listing_id={lid}&limit=100")).await, 200).await;
    let ids: Vec<&str> = reservations["items"].as_array().expect("items").iter().map(|r| s(r, "booking_id")).collect();
    assert!(ids.contains(&paid_id.as_str()) && ids.contains(&unpaid_id.as_str()), "{reservations}");
    let intent = json_of(pay(&guest, &unpaid_id, None).await, 200).await;
    confirm_with_visa(s(&intent, "payment_intent_id")).await;
    wait_for_status(&guest, &unpaid_id, "confirmed").await;
    // And the guest may still cancel under the listing's policy (flexible, 40 days ahead: all back).
    let cancelled = json_of(guest.post(&format!("/v1/bookings/{paid_id}/cancel"), Some(&json!({}))).await, 200).await;
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["refund"]["amount"], paid["price"]["total"], "{cancelled}");
}

// ---------------------------------------------------------------------------------------------
// Idempotency-Key: scoped to the route and the caller
// ---------------------------------------------------------------------------------------------

async fn book_with_key(guest: &User, body: &Value, key: &str) -> reqwest::Response {
    client()
        .post(Stack::get().url("/v1/bookings"))
        .header("authorization", guest.bearer())
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("api")
}

fn replayed(response: &reqwest::Response) -> bool {
    response.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()) == Some("true")
}

#[tokio::test]
async fn an_idempotency_key_is_scoped_to_its_route_and_its_caller() {
    roost_e2e::needs_stack!();
    let (host, ana, ben) = tokio::join!(User::host("Idem Host"), User::guest("Idem Ana"), User::guest("Idem Ben"));
    let lid = euro_listing(&host, "flexible").await;
    let key = unique("shared-key-");

    let first = book_with_key(&ana, &stay(&lid, LISBON, 20, 21), &key).await;
    assert!(!replayed(&first));
    let a = json_of(first, 201).await;
    // Another caller, the same key (and another stay): its own booking, not Ana's, and not
    // "key reused with another body".
    let other = book_with_key(&ben, &stay(&lid, LISBON, 22, 23), &key).await;
    assert!(!replayed(&other));
    let b = json_of(other, 201).await;
    assert_ne!(b["booking_id"], a["booking_id"]);
    assert_eq!(b["guest"]["user_id"], json!(ben.user_id));
    // Another route, the same caller and key: the payment runs (an intent), not a replay of the
    // booking.
    let paid = pay(&ana, s(&a, "booking_id"), Some(&key)).await;
    assert!(!replayed(&paid));
    let intent = json_of(paid, 200).await;
    assert!(s(&intent, "payment_intent_id").starts_with("pi_"), "{intent}");
    // Each scope replays its own first answer.
    let again = book_with_key(&ana, &stay(&lid, LISBON, 20, 21), &key).await;
    assert!(replayed(&again));
    assert_eq!(json_of(again, 201).await["booking_id"], a["booking_id"]);
    let again = pay(&ana, s(&a, "booking_id"), Some(&key)).await;
    assert!(replayed(&again));
    assert_eq!(json_of(again, 200).await, intent);
    let again = book_with_key(&ben, &stay(&lid, LISBON, 22, 23), &key).await;
    assert!(replayed(&again));
    assert_eq!(json_of(again, 201).await["booking_id"], b["booking_id"]);
}

// ---------------------------------------------------------------------------------------------
// Cursors bound to their filters
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_reservations_cursor_is_refused_under_another_listing_filter() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Cur Host"), User::guest("Cur Guest"));
    let (one, two) = tokio::join!(euro_listing(&host, "flexible"), euro_listing(&host, "flexible"));
    book(&guest, &one, LISBON, 20, 21).await;
    book(&guest, &one, LISBON, 22, 23).await;
    book(&guest, &two, LISBON, 24, 25).await;

    // The host's reservations are read from a GSI: wait until both bookings of `one` are in it.
    let first_page = format!("/v1/me/reservations?listing_id={one}&limit=1");
    let page =
        until_indexed(|| async { json_of(host.get(&first_page).await, 200).await }, |p| p["next_cursor"].is_string())
            .await;
    let cursor = s(&page, "next_cursor").to_owned();
    let next =
        json_of(host.get(&format!("/v1/me/reservations?listing_id={one}&limit=1&cursor={cursor}")).await, 200).await;
    assert_eq!(next["items"].as_array().map(Vec::len), Some(1), "{next}");
    for other in [format!("?listing_id={two}&limit=1&cursor={cursor}"), format!("?limit=1&cursor={cursor}")] {
        assert_problem(host.get(&format!("/v1/me/reservations{other}")).await, 400, "invalid_cursor").await;
    }
    let unfiltered = until_indexed(
        || async { json_of(host.get("/v1/me/reservations?limit=1").await, 200).await },
        |p| p["next_cursor"].is_string(),
    )
    .await;
    let cursor = s(&unfiltered, "next_cursor").to_owned();
    assert_problem(
        host.get(&format!("/v1/me/reservations?listing_id={one}&limit=1&cursor={cursor}")).await,
        400,
        "invalid_cursor",
    )
    .await;
}

#[tokio::test]
async fn an_inbox_cursor_is_refused_under_another_unread_filter() {
    roost_e2e::needs_stack!();
    let (host, guest) = tokio::join!(User::host("Inb Host"), User::guest("Inb Guest"));
    let booking_id = super::notifications::booking(&host, &guest).await;
    // Three notifications for the guest (booking.expired concerns the guest only).
    let mut ids = Vec::new();
    for _ in 0..3 {
        let event_id = shared::ids::new_id("evt");
        let data = json!({"booking_id": booking_id, "listing_id": "lst_unused", "guest_id": guest.user_id, "host_id": host.user_id});
        super::notifications::deliver(&event_id, "booking.expired", data).await;
        ids.push(super::notifications::ntf_id(&event_id));
    }
    for id in &ids {
        super::notifications::wait_for_item(&guest, id).await;
    }

    let inbox = |query: String| {
        let guest = guest.clone();
        async move { guest.get(&format!("/v1/me/notifications{query}")).await }
    };
    let unread = json_of(inbox("?unread=true&limit=1".into()).await, 200).await;
    let cursor = s(&unread, "next_cursor").to_owned();
    json_of(inbox(format!("?unread=true&limit=1&cursor={cursor}")).await, 200).await;
    for other in [format!("?limit=1&cursor={cursor}"), format!("?unread=false&limit=1&cursor={cursor}")] {
        assert_problem(inbox(other).await, 400, "invalid_cursor").await;
    }
    let all = json_of(inbox("?limit=1".into()).await, 200).await;
    let cursor = s(&all, "next_cursor").to_owned();
    assert_problem(inbox(format!("?unread=true&limit=1&cursor={cursor}")).await, 400, "invalid_cursor").await;
}

// ---------------------------------------------------------------------------------------------
// JPY: a zero-decimal currency quoted, paid and refunded end to end
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_yen_stay_is_quoted_paid_and_half_refunded_in_whole_yen() {
    roost_e2e::needs_stack!();
    let tokyo = "Asia/Tokyo";
    let (host, guest) = tokio::join!(User::host("Yui Host"), User::guest("Yuki Guest"));
    let body = listing_body(
        tokyo,
        json!({"amount": 12_345, "currency": "JPY"}),
        json!({"amount": 1_000, "currency": "JPY"}),
        "moderate",
    );
    let lid = s(&json_of(host.post("/v1/listings", Some(&body)).await, 201).await, "listing_id").to_owned();

    // Worked by hand: 2 x 12,345 = 24,690 yen; 12 % = 2,962.8 -> 2,963; + 1,000 cleaning = 28,653.
    let want = json!({
        "nightly": [{"date": day_in(tokyo, 3), "amount": 12_345}, {"date": day_in(tokyo, 4), "amount": 12_345}],
        "subtotal": 24_690, "cleaning_fee": 1_000, "service_fee": 2_963, "total": 28_653, "currency": "JPY"
    });
    let quote = client().post(Stack::get().url("/v1/quotes")).json(&stay(&lid, tokyo, 3, 5)).send().await.expect("api");
    assert_eq!(json_of(quote, 200).await["price"], want);
    let b = book(&guest, &lid, tokyo, 3, 5).await;
    assert_eq!(b["price"], want);
    let bid = s(&b, "booking_id").to_owned();

    // Yen has no minor unit at Stripe either: the same amount.
    let intent = json_of(pay(&guest, &bid, None).await, 200).await;
    assert_eq!((&intent["amount"], &intent["currency"]), (&json!(28_653), &json!("JPY")), "{intent}");
    let pi = s(&intent, "payment_intent_id").to_owned();
    let at = at_stripe(&format!("/v1/payment_intents/{pi}")).await;
    assert_eq!((&at["amount"], &at["currency"]), (&json!(28_653), &json!("jpy")), "{at}");
    confirm_with_visa(&pi).await;
    wait_for_status(&guest, &bid, "confirmed").await;

    // Moderate, 3 days before check-in: 50 %, 14,326.5 rounded half-up to 14,327 yen.
    let half = json!({"amount": 14_327, "currency": "JPY"});
    let preview = json_of(guest.get(&format!("/v1/bookings/{bid}/cancellation")).await, 200).await;
    assert_eq!(preview["refund"], half, "{preview}");
    let cancelled = json_of(guest.post(&format!("/v1/bookings/{bid}/cancel"), Some(&json!({}))).await, 200).await;
    assert_eq!(
        (&cancelled["refund"]["amount"], &cancelled["refund"]["currency"]),
        (&half["amount"], &half["currency"])
    );
    let refunds = eventually("the yen refund at Stripe", || async {
        let list = at_stripe(&format!("/v1/refunds?payment_intent={pi}")).await;
        let data = list["data"].as_array().cloned().unwrap_or_default();
        (!data.is_empty()).then_some(data)
    })
    .await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!((&refunds[0]["amount"], &refunds[0]["currency"]), (&json!(14_327), &json!("jpy")));
    let read = eventually("the refund recorded", || async {
        let read = json_of(guest.get(&format!("/v1/bookings/{bid}")).await, 200).await;
        (read["refund"]["status"] == "succeeded").then_some(read)
    })
    .await;
    assert_eq!((&read["refund"]["amount"], &read["refund"]["currency"]), (&json!(14_327), &json!("JPY")), "{read}");
    assert!(intents_at_stripe(&bid).await.len() == 1, "one intent for the stay");
}
