//! Payments end to end against localstripe: pay -> Stripe's signed webhook -> payment-events ->
//! booking confirmed and nights booked; declines, replays and events out of order; forged
//! webhooks; late payments refunded; refunds of cancelled bookings never above what was paid;
//! a poison message in the DLQ.
//!
//! Time is never waited for: a lapsed hold is a fixture that moves the `hold_expires_at` of the
//! booking, its nights and its hold slot into the past. Waiting is only for the asynchronous path (localstripe sends
//! its webhook about a second after the event, then SQS and payment-events), with a bounded poll.

use std::time::Duration;

use reqwest::Method;
use roost_e2e::api::{Address, money};
use roost_e2e::fixtures::{
    STRIPE_KEY, card, confirm_with, day_in, lapse_hold, minutes_ago, post_webhook, refunds_of, signature,
    stored_booking, stripe, wait_for_status, webhook_secret,
};
use roost_e2e::{
    NewListing, Stack, Stay, User, assert_problem, client, dynamodb, eventually, eventually_for, join_all, json_of,
    night_items, s, sqs, unique,
};
use serde_json::{Value, json};

const TZ: &str = "Europe/Lisbon";

fn listing_body(city: &str, policy: &str) -> NewListing {
    NewListing {
        title: "Payment loft".into(),
        description: "Paid for.".into(),
        property_type: "apartment".into(),
        address: Address { line1: "Rua do Ouro 1".into(), postal_code: None, ..NewListing::in_city(city).address },
        timezone: TZ.into(),
        max_guests: 3,
        cleaning_fee: Some(money(2000, "EUR")),
        min_nights: Some(1),
        max_nights: Some(7),
        cancellation_policy: policy.into(),
        ..NewListing::in_city(city)
    }
}

/// The date `days` after today in the listing's time zone.
fn day(days: i64) -> String {
    day_in(TZ, days)
}

pub(crate) struct Fixture {
    pub(crate) host: User,
    pub(crate) guest: User,
    pub(crate) listing_id: String,
}

pub(crate) async fn fixture(policy: &str) -> Fixture {
    let (host, guest) = tokio::join!(User::host("Paula Host"), User::guest("Pedro Guest"));
    let listing_id = host.api().new_listing(&listing_body(&unique("Payville"), policy)).await;
    Fixture { host, guest, listing_id }
}

impl Fixture {
    /// A booking of nights `[from, to)` days from today: 201, `pending_payment`.
    pub(crate) async fn book(&self, guest: &User, from: i64, to: i64) -> Value {
        guest.api().booked(&Stay::new(&self.listing_id, day(from), day(to), 1)).await
    }
}

pub(crate) async fn pay(user: &User, booking_id: &str, key: Option<&str>) -> reqwest::Response {
    user.api().pay(booking_id, key).await
}

async fn booking_of(user: &User, booking_id: &str) -> Value {
    json_of(user.api().booking(booking_id).await, 200).await
}

/// The outbox events of `event_type` about `booking_id` (a Scan: tests only, never a request path).
async fn outbox_events(booking_id: &str, event_type: &str) -> Vec<Value> {
    let mut found = Vec::new();
    let mut start: Option<Value> = None;
    loop {
        let mut request = json!({
            "FilterExpression": "#t = :outbox AND event_type = :type AND contains(envelope, :booking)",
            "ExpressionAttributeNames": {"#t": "type"},
            "ExpressionAttributeValues": {":outbox": {"S": "outbox"}, ":type": {"S": event_type}, ":booking": {"S": booking_id}},
            "ConsistentRead": true
        });
        if let Some(key) = start.take() {
            request["ExclusiveStartKey"] = key;
        }
        let page = dynamodb("Scan", request).await;
        for item in page["Items"].as_array().expect("Items") {
            found.push(serde_json::from_str(item["envelope"]["S"].as_str().expect("envelope")).expect("json"));
        }
        match page.get("LastEvaluatedKey") {
            Some(k) if !k.is_null() => start = Some(k.clone()),
            _ => return found,
        }
    }
}

/// Signs `body` with the stack's webhook secret now and posts it: 200.
async fn deliver(body: &str) {
    let header = signature(&webhook_secret(), jiff::Timestamp::now().as_second(), body);
    let response = post_webhook(body, Some(&header)).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap_or_default());
}

/// A Stripe event as localstripe shapes it, about `object`.
fn stripe_event(id: &str, event_type: &str, object: Value) -> String {
    serde_json::to_string_pretty(&json!({
        "api_version": "2017-08-15",
        "created": jiff::Timestamp::now().as_second(),
        "data": {"object": object},
        "id": id,
        "livemode": false,
        "object": "event",
        "type": event_type
    }))
    .expect("json")
}

fn intent_object(intent: &Value, booking_id: &str, guest_id: &str, status: &str) -> Value {
    json!({
        "id": intent["payment_intent_id"], "object": "payment_intent", "amount": intent["amount"],
        "currency": s(intent, "currency").to_lowercase(), "status": status,
        "metadata": {"booking_id": booking_id, "guest_id": guest_id}
    })
}

fn queue_url(name: &str) -> String {
    Stack::get().rest["queues"][name].as_str().unwrap_or_else(|| panic!("queue {name} in stack.json")).to_owned()
}

/// Pays a booking with `pm_card_visa` and waits until it is confirmed; returns the intent view.
pub(crate) async fn pay_and_confirm(guest: &User, booking_id: &str) -> Value {
    let intent = json_of(pay(guest, booking_id, None).await, 200).await;
    let (status, confirmed) = confirm_with(s(&intent, "payment_intent_id"), "pm_card_visa").await;
    assert_eq!((status, &confirmed["status"]), (200, &json!("succeeded")), "{confirmed}");
    wait_for_status(guest, booking_id, "confirmed").await;
    intent
}

#[tokio::test]
async fn pay_with_a_card_confirms_the_booking_and_books_its_nights() {
    roost_e2e::needs_stack!();
    let f = fixture("moderate").await;
    let stranger = User::guest("Sara Stranger").await;
    let b = f.book(&f.guest, 30, 33).await;
    let bid = s(&b, "booking_id").to_owned();
    let total = b["price"]["total"].as_i64().expect("total");
    assert_eq!(total, 3 * 10000 + 2000 + 3600);

    // Only the guest pays; the host may read the booking but not pay it; others see nothing.
    assert_problem(pay(&f.host, &bid, None).await, 403, "not_booking_guest").await;
    assert_problem(pay(&stranger, &bid, None).await, 404, "not_found").await;
    assert_problem(pay(&f.guest, "bkg_nope", None).await, 404, "not_found").await;
    let anonymous = client().post(Stack::get().url(&format!("/v1/bookings/{bid}/payment"))).send().await.expect("api");
    assert_eq!(anonymous.status(), 401);

    // The intent: the booking's amount and currency, and the same one on every call.
    let intent = json_of(pay(&f.guest, &bid, None).await, 200).await;
    let pi = s(&intent, "payment_intent_id").to_owned();
    assert!(pi.starts_with("pi_"), "{intent}");
    assert_eq!((&intent["amount"], &intent["currency"]), (&json!(total), &json!("EUR")));
    assert_eq!(intent["status"], "requires_payment_method");
    assert!(s(&intent, "client_secret").starts_with(&pi));
    let again = json_of(pay(&f.guest, &bid, None).await, 200).await;
    assert_eq!(again, intent, "the same intent on every call");
    let key = unique("pay-key");
    let keyed = pay(&f.guest, &bid, Some(&key)).await;
    let replayed = pay(&f.guest, &bid, Some(&key)).await;
    assert_eq!(replayed.headers().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
    assert_eq!(json_of(keyed, 200).await, intent);
    assert_eq!(json_of(replayed, 200).await, intent);
    let (_, at_stripe) = stripe(Method::GET, &format!("/v1/payment_intents/{pi}"), &[]).await;
    assert_eq!(at_stripe["metadata"], json!({"booking_id": bid, "guest_id": f.guest.user_id}));
    assert_eq!((&at_stripe["amount"], &at_stripe["currency"]), (&json!(total), &json!("eur")));
    let view = booking_of(&f.guest, &bid).await;
    assert_eq!(view["payment"], json!({"status": "processing", "payment_intent_id": pi}));

    // The card: Stripe's webhook -> the queue -> payment-events.
    let (status, confirmed) = confirm_with(&pi, "pm_card_visa").await;
    assert_eq!((status, &confirmed["status"]), (200, &json!("succeeded")), "{confirmed}");
    let view = wait_for_status(&f.guest, &bid, "confirmed").await;
    assert_eq!(view["payment"]["status"], "succeeded");
    assert_eq!(view["payment"]["payment_intent_id"], json!(pi));
    let nights = night_items(&f.listing_id).await;
    assert_eq!(nights.len(), 3);
    for (date, kind, holder) in &nights {
        assert_eq!((kind.as_str(), holder.as_deref()), ("booked", Some(bid.as_str())), "{date}");
    }
    let stored = stored_booking(&bid).await;
    assert_eq!(stored["payment"]["M"]["amount_paid"]["M"]["amount"]["N"], json!(total.to_string()));
    let confirmed_events = outbox_events(&bid, "booking.confirmed").await;
    assert_eq!(confirmed_events.len(), 1, "{confirmed_events:?}");
    assert_eq!(confirmed_events[0]["data"]["amount_paid"], json!({"amount": total, "currency": "EUR"}));
    assert_eq!(confirmed_events[0]["data"]["payment_intent_id"], json!(pi));

    // Paid: nothing more to pay.
    assert_problem(pay(&f.guest, &bid, None).await, 409, "booking_not_payable").await;
}

#[tokio::test]
async fn concurrent_first_calls_agree_on_one_intent() {
    roost_e2e::needs_stack!();
    let f = fixture("flexible").await;
    let b = f.book(&f.guest, 35, 36).await;
    let bid = s(&b, "booking_id").to_owned();
    let guest = f.guest.clone();
    let answers = join_all((0..4).map(|_| {
        let (guest, bid) = (guest.clone(), bid.clone());
        async move {
            let r = pay(&guest, &bid, None).await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    }))
    .await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            s(body, "payment_intent_id").to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    let view = booking_of(&f.guest, &bid).await;
    assert_eq!(view["payment"]["payment_intent_id"], json!(ids.first()));
    // At the provider too: localstripe ignores Idempotency-Key, so racing calls may each create
    // an intent, but every one but the kept one is cancelled: one open intent for the booking.
    let open: Vec<String> = super::currencies::intents_at_stripe(&bid)
        .await
        .iter()
        .filter(|i| i["status"] != "canceled")
        .map(|i| s(i, "id").to_owned())
        .collect();
    assert_eq!(open, ids.into_iter().collect::<Vec<_>>(), "one open PaymentIntent at localstripe");

    // A concurrent duplicate under one Idempotency-Key: one answer, or 409 while it runs.
    let b2 = f.book(&f.guest, 37, 38).await;
    let bid2 = s(&b2, "booking_id").to_owned();
    let key = unique("k");
    let answers = join_all((0..3).map(|_| {
        let (guest, bid, key) = (guest.clone(), bid2.clone(), key.clone());
        async move {
            let r = pay(&guest, &bid, Some(&key)).await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    }))
    .await;
    let ok: Vec<&Value> = answers.iter().filter(|(st, _)| *st == 200).map(|(_, b)| b).collect();
    assert!(!ok.is_empty(), "{answers:?}");
    assert!(ok.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    for (status, body) in &answers {
        assert!(*status == 200 || (*status == 409 && body["code"] == "idempotency_in_progress"), "{status} {body}");
    }
}

#[tokio::test]
async fn a_declined_card_is_recorded_and_the_booking_stays_payable() {
    roost_e2e::needs_stack!();
    let f = fixture("moderate").await;
    let b = f.book(&f.guest, 40, 42).await;
    let bid = s(&b, "booking_id").to_owned();
    let intent = json_of(pay(&f.guest, &bid, None).await, 200).await;
    let pi = s(&intent, "payment_intent_id").to_owned();

    let declining = card("4000000000000341").await;
    let (status, declined) = confirm_with(&pi, &declining).await;
    assert_eq!(status, 402, "{declined}");
    assert_eq!(declined["error"]["code"], "card_declined");
    let view = eventually("the failure recorded", || async {
        let v = booking_of(&f.guest, &bid).await;
        (v["payment"]["status"] == "failed").then_some(v)
    })
    .await;
    assert_eq!(view["status"], "pending_payment", "still payable until the hold lapses");
    assert_eq!(view["payment"]["failure"], "card_declined");
    let failed = outbox_events(&bid, "payment.failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["data"]["failure_code"], "card_declined");
    assert_eq!(failed[0]["data"]["guest_id"], json!(f.guest.user_id));
    // The nights are still held by it.
    assert!(night_items(&f.listing_id).await.iter().all(|(_, k, h)| k == "held" && h.as_deref() == Some(bid.as_str())));

    // Pay again: the same intent, ready for another card.
    let again = json_of(pay(&f.guest, &bid, None).await, 200).await;
    assert_eq!(again["payment_intent_id"], json!(pi));
    assert_eq!(again["status"], "requires_payment_method");
    // localstripe cannot confirm an intent whose last charge failed (Stripe can): the test clears
    // the failed charge (a JSON update, which localstripe applies verbatim) before the new card.
    let client = client();
    let reset = client
        .post(format!("{}/v1/payment_intents/{pi}", Stack::get().stripe_url))
        .bearer_auth(STRIPE_KEY)
        .json(&json!({"latest_charge": null}))
        .send()
        .await
        .expect("localstripe");
    assert_eq!(reset.status(), 200);
    let (status, ok) = confirm_with(&pi, "pm_card_visa").await;
    assert_eq!((status, &ok["status"]), (200, &json!("succeeded")), "{ok}");
    let view = wait_for_status(&f.guest, &bid, "confirmed").await;
    let paid = &view["price"]["total"];
    let currency = &view["price"]["currency"];
    assert_eq!(
        view["payment"],
        json!({"status": "succeeded", "payment_intent_id": pi, "amount_paid": {"amount": paid, "currency": currency}}),
        "the failure is cleared and the amount paid shows"
    );
    assert_eq!(outbox_events(&bid, "booking.confirmed").await.len(), 1);
}

#[tokio::test]
async fn the_same_event_twice_and_events_out_of_order_apply_once() {
    roost_e2e::needs_stack!();
    let f = fixture("moderate").await;
    let b = f.book(&f.guest, 45, 47).await;
    let bid = s(&b, "booking_id").to_owned();
    let intent = json_of(pay(&f.guest, &bid, None).await, 200).await;
    let succeeded = stripe_event(
        &format!("evt_{}", unique("dup")),
        "payment_intent.succeeded",
        intent_object(&intent, &bid, &f.guest.user_id, "succeeded"),
    );
    // Twice at once, then once more: one confirmation. The two duplicates are waited for
    // themselves (their "already applied" lines), not only the first delivery's receipt.
    let succeeded_id = s(&serde_json::from_str::<Value>(&succeeded).expect("json"), "id").to_owned();
    join_all([succeeded.clone(), succeeded.clone()].map(|body| async move { deliver(&body).await })).await;
    wait_for_status(&f.guest, &bid, "confirmed").await;
    deliver(&succeeded).await;
    skipped_as_applied(&succeeded_id, 2).await;

    // A failure from before the success, arriving after it: changes nothing.
    let mut failed_object = intent_object(&intent, &bid, &f.guest.user_id, "requires_payment_method");
    failed_object["last_payment_error"] = json!({"code": "card_declined", "message": "Your card was declined."});
    let late_failure = stripe_event(&format!("evt_{}", unique("late")), "payment_intent.payment_failed", failed_object);
    deliver(&late_failure).await;
    let late_id: Value = serde_json::from_str(&late_failure).expect("json");
    applied(s(&late_id, "id")).await;

    let view = booking_of(&f.guest, &bid).await;
    assert_eq!(view["status"], "confirmed");
    let paid = json!({"amount": view["price"]["total"], "currency": view["price"]["currency"]});
    assert_eq!(
        view["payment"],
        json!({"status": "succeeded", "payment_intent_id": intent["payment_intent_id"], "amount_paid": paid})
    );
    assert_eq!(outbox_events(&bid, "booking.confirmed").await.len(), 1, "confirmed once");
    assert!(outbox_events(&bid, "payment.failed").await.is_empty(), "the late failure emitted nothing");
    assert!(night_items(&f.listing_id).await.iter().all(|(_, k, _)| k == "booked"));
}

#[tokio::test]
async fn forged_stale_and_altered_webhooks_are_refused_and_never_queued() {
    roost_e2e::needs_stack!();
    let f = fixture("moderate").await;
    let b = f.book(&f.guest, 50, 52).await;
    let bid = s(&b, "booking_id").to_owned();
    let intent = json_of(pay(&f.guest, &bid, None).await, 200).await;
    let object = intent_object(&intent, &bid, &f.guest.user_id, "succeeded");
    let secret = webhook_secret();
    let now = jiff::Timestamp::now().as_second();

    let mut refused_ids = Vec::new();
    let mut bodies = Vec::new();
    let mut event = |tag: &str| {
        let id = format!("evt_{}", unique(tag));
        refused_ids.push(id.clone());
        stripe_event(&id, "payment_intent.succeeded", object.clone())
    };
    let forged = event("forged");
    let wrong_secret = event("wrongsecret");
    let stale = event("stale");
    let missing = event("missing");
    let signed = event("altered");
    let altered = signed.replace(&format!("\"amount\": {}", intent["amount"]), "\"amount\": 1");
    assert_ne!(altered, signed);
    let cases: Vec<(String, Option<String>)> = vec![
        (forged, Some(format!("t={now},v1={}", "0".repeat(64)))),
        (wrong_secret.clone(), Some(signature("whsec_not_the_secret", now, &wrong_secret))),
        (stale.clone(), Some(signature(&secret, now - 301, &stale))),
        (missing, None),
        (altered, Some(signature(&secret, now, &signed))),
    ];
    for (body, header) in &cases {
        let response = post_webhook(body, header.as_deref()).await;
        bodies.push(assert_problem(response, 400, "invalid_signature").await);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "one answer for every failure: {bodies:?}");

    // The same event, signed properly, is accepted and applied: what was refused would have been.
    let genuine_id = format!("evt_{}", unique("genuine"));
    deliver(&stripe_event(&genuine_id, "payment_intent.succeeded", object.clone())).await;
    wait_for_status(&f.guest, &bid, "confirmed").await;
    let log = Stack::get().function_log("PaymentEventsFunction");
    assert!(log.contains(&genuine_id));
    for id in &refused_ids {
        assert!(!log.contains(id.as_str()), "{id} reached payment-events");
        let receipt = dynamodb(
            "GetItem",
            json!({"Key": {"PK": {"S": format!("EVENT#{id}")}, "SK": {"S": "CONSUMER#payment-events"}}, "ConsistentRead": true}),
        )
        .await;
        assert!(receipt.get("Item").is_none(), "{id} was applied");
    }
    let webhook_log = Stack::get().function_log("PaymentsFunction");
    assert!(!webhook_log.contains(&secret), "the secret is never logged");
}

/// Fixture: the booking cancelled as bookings' cancel leaves it in the table (stored status
/// `cancelled`, the `cancellation` record with the refund due, its nights released), without
/// the event (the test sends what it needs).
async fn cancel_in_table(booking_id: &str, listing_id: &str, refund_due: i64, by: &str) {
    dynamodb(
        "UpdateItem",
        json!({
            "Key": {"PK": {"S": format!("BOOKING#{booking_id}")}, "SK": {"S": "BOOKING"}},
            "UpdateExpression": "SET #s = :c, cancellation = :record",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":c": {"S": "cancelled"}, ":record": {"M": {
                "by": {"S": by}, "at": {"S": jiff::Timestamp::now().to_string()},
                "refund_due": {"M": {"amount": {"N": refund_due.to_string()}, "currency": {"S": "EUR"}}}}}}
        }),
    )
    .await;
    for (date, _, holder) in night_items(listing_id).await {
        if holder.as_deref() == Some(booking_id) {
            dynamodb(
                "DeleteItem",
                json!({"Key": {"PK": {"S": format!("LISTING#{listing_id}")}, "SK": {"S": format!("NIGHT#{date}")}}}),
            )
            .await;
        }
    }
}

/// `booking.cancelled` as the topic delivers it (raw envelope), put on the payment-events queue.
async fn send_cancelled(b: &Value, refund_due: i64, by: &str) -> String {
    let id = format!("evt_{}", ulid_like());
    let envelope = json!({
        "id": id,
        "type": "booking.cancelled",
        "version": 1,
        "occurred_at": jiff::Timestamp::now().to_string(),
        "data": {
            "booking_id": b["booking_id"], "listing_id": b["listing_id"], "guest_id": b["guest"]["user_id"],
            "host_id": b["host"]["user_id"], "cancelled_by": by,
            "refund_due": {"amount": refund_due, "currency": "EUR"}
        }
    });
    sqs(
        "SendMessage",
        &json!({
            "QueueUrl": queue_url("roost-PaymentEventsQueue"),
            "MessageBody": envelope.to_string(),
            "MessageAttributes": {"type": {"DataType": "String", "StringValue": "booking.cancelled"}}
        }),
    )
    .await;
    id
}

/// Waits until payment-events holds the receipt of `event_id` (it applied the event).
async fn applied(event_id: &str) {
    eventually(&format!("{event_id} applied"), || async {
        let receipt = dynamodb(
            "GetItem",
            json!({"Key": {"PK": {"S": format!("EVENT#{event_id}")}, "SK": {"S": "CONSUMER#payment-events"}}, "ConsistentRead": true}),
        )
        .await;
        receipt.get("Item").is_some().then_some(())
    })
    .await;
}

/// Waits until payment-events has logged `count` deliveries of `event_id` that found it applied
/// before ("event already applied: skipped", from `shared::sqs::apply_once` or the
/// confirmation's own transaction; the line carries the event id through its span). A test of
/// a duplicate waits for this, the duplicate's own evidence: the first delivery's receipt says
/// nothing about whether the duplicate was processed yet.
async fn skipped_as_applied(event_id: &str, count: usize) {
    let field = format!("\"event_id\":\"{event_id}\"");
    eventually(&format!("{count} duplicate(s) of {event_id} skipped by payment-events"), || async {
        let log = Stack::get().function_log("PaymentEventsFunction");
        let skipped =
            log.lines().filter(|l| l.contains("event already applied: skipped") && l.contains(&field)).count();
        (skipped >= count).then_some(())
    })
    .await;
}

/// A new lowercase ULID-shaped id (what `shared::ids` makes).
fn ulid_like() -> String {
    shared::ids::new_id("x").trim_start_matches("x_").to_owned()
}

#[tokio::test]
async fn a_payment_for_a_booking_cancelled_meanwhile_is_refunded_in_full() {
    roost_e2e::needs_stack!();
    let f = fixture("flexible").await;
    let b = f.book(&f.guest, 55, 57).await;
    let bid = s(&b, "booking_id").to_owned();
    let total = b["price"]["total"].as_i64().expect("total");
    let intent = json_of(pay(&f.guest, &bid, None).await, 200).await;
    let pi = s(&intent, "payment_intent_id").to_owned();

    // Cancelled (unpaid, nothing due) while the card form was open; the card goes through.
    cancel_in_table(&bid, &f.listing_id, 0, "guest").await;
    assert_problem(pay(&f.guest, &bid, None).await, 409, "booking_not_payable").await;
    let (status, ok) = confirm_with(&pi, "pm_card_visa").await;
    assert_eq!((status, &ok["status"]), (200, &json!("succeeded")), "{ok}");

    let stored = eventually("the late payment refunded", || async {
        let stored = stored_booking(&bid).await;
        (stored["refund"]["M"]["status"]["S"] == "succeeded").then_some(stored)
    })
    .await;
    assert_eq!(stored["refund"]["M"]["amount"]["N"], json!(total.to_string()));
    assert_eq!(stored["refund"]["M"]["reason"]["S"], "not_confirmable");
    assert_eq!(stored["payment"]["M"]["status"]["S"], "succeeded", "the money was taken, and given back");
    let refunds = refunds_of(&pi).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!((&refunds[0]["amount"], &refunds[0]["status"]), (&json!(total), &json!("succeeded")));
    assert_eq!(booking_of(&f.guest, &bid).await["status"], "cancelled", "never confirmed");
    assert!(night_items(&f.listing_id).await.is_empty(), "no night booked or held for it");
    assert_eq!(outbox_events(&bid, "refund.issued").await.len(), 1);
    assert!(outbox_events(&bid, "booking.confirmed").await.is_empty());

    // Its cancellation arriving now (any order) refunds nothing more and cancels nothing.
    let cancelled = send_cancelled(&b, 0, "guest").await;
    applied(&cancelled).await;
    assert_eq!(refunds_of(&pi).await.len(), 1);
}

#[tokio::test]
async fn a_payment_after_the_hold_lapsed_and_was_taken_is_refunded_never_double_booked() {
    roost_e2e::needs_stack!();
    let f = fixture("moderate").await;
    let late = User::guest("Lia Late").await;
    let b = f.book(&late, 60, 62).await;
    let bid = s(&b, "booking_id").to_owned();
    let total = b["price"]["total"].as_i64().expect("total");
    let intent = json_of(pay(&late, &bid, None).await, 200).await;
    let pi = s(&intent, "payment_intent_id").to_owned();

    // The hold lapses (fixture), another guest takes the nights.
    lapse_hold(&bid, &f.listing_id, &[day(60), day(61)], &minutes_ago(1).to_string()).await;
    assert_problem(pay(&late, &bid, None).await, 409, "booking_not_payable").await;
    let taker = f.book(&f.guest, 60, 62).await;
    let tid = s(&taker, "booking_id").to_owned();

    // The late guest's card goes through at Stripe anyway (the form was open).
    let (status, ok) = confirm_with(&pi, "pm_card_visa").await;
    assert_eq!((status, &ok["status"]), (200, &json!("succeeded")), "{ok}");
    let stored = eventually("the late payment refunded", || async {
        let stored = stored_booking(&bid).await;
        (stored["refund"]["M"]["status"]["S"] == "succeeded").then_some(stored)
    })
    .await;
    assert_eq!(stored["refund"]["M"]["amount"]["N"], json!(total.to_string()));
    assert_eq!(stored["refund"]["M"]["reason"]["S"], "not_confirmable");
    assert_eq!(stored["status"]["S"], "pending_payment", "never confirmed (it reads expired)");
    assert_eq!(booking_of(&late, &bid).await["status"], "expired");
    let refunds = refunds_of(&pi).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!((&refunds[0]["amount"], &refunds[0]["status"]), (&json!(total), &json!("succeeded")));
    // The nights stay the taker's, held (not booked by the late payment).
    let nights = night_items(&f.listing_id).await;
    assert_eq!(nights.len(), 2);
    for (date, kind, holder) in &nights {
        assert_eq!((kind.as_str(), holder.as_deref()), ("held", Some(tid.as_str())), "{date}");
    }
    assert!(outbox_events(&bid, "booking.confirmed").await.is_empty());
    let issued = outbox_events(&bid, "refund.issued").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["data"]["amount"], json!({"amount": total, "currency": "EUR"}));
}

/// A `charge.refunded` as Stripe would send it for the refund of `intent_id`.
async fn charge_refunded(intent_id: &str) -> String {
    let (status, pi) = stripe(Method::GET, &format!("/v1/payment_intents/{intent_id}"), &[]).await;
    assert_eq!(status, 200, "{pi}");
    let charge = pi["latest_charge"].clone();
    let refunds = refunds_of(intent_id).await;
    let refunded: i64 = refunds.iter().map(|r| r["amount"].as_i64().expect("amount")).sum();
    let object = json!({
        "id": charge["id"], "object": "charge", "amount": pi["amount"], "amount_refunded": refunded,
        "currency": pi["currency"], "payment_intent": intent_id, "refunded": refunded == pi["amount"].as_i64().unwrap_or(0),
        "refunds": {"object": "list", "data": refunds}
    });
    stripe_event(&format!("evt_{}", unique("refunded")), "charge.refunded", object)
}

#[tokio::test]
async fn refunds_of_cancelled_bookings_are_what_is_due_once_and_never_more_than_paid() {
    roost_e2e::needs_stack!();
    let f = fixture("moderate").await;
    let total = 10000 + 2000 + 1200;
    // (refund due as bookings computes it, who cancelled, what localstripe must hold)
    let cases = [
        (total / 2, "guest", Some(total / 2)),
        (total, "host", Some(total)),
        (total + 5000, "host", Some(total)),
        (0, "guest", None),
    ];
    for (i, (due, by, want)) in cases.into_iter().enumerate() {
        let from = 70 + 2 * i64::try_from(i).expect("small");
        let b = f.book(&f.guest, from, from + 1).await;
        let bid = s(&b, "booking_id").to_owned();
        assert_eq!(b["price"]["total"], json!(total));
        let intent = pay_and_confirm(&f.guest, &bid).await;
        let pi = s(&intent, "payment_intent_id").to_owned();

        cancel_in_table(&bid, &f.listing_id, due, by).await;
        // Delivered twice: refunded once.
        let first = send_cancelled(&b, due, by).await;
        let again = json!({
            "id": first, "type": "booking.cancelled", "version": 1, "occurred_at": jiff::Timestamp::now().to_string(),
            "data": {"booking_id": bid, "listing_id": f.listing_id, "guest_id": f.guest.user_id, "host_id": f.host.user_id,
                     "cancelled_by": by, "refund_due": {"amount": due, "currency": "EUR"}}
        });
        let request = json!({"QueueUrl": queue_url("roost-PaymentEventsQueue"), "MessageBody": again.to_string()});
        sqs("SendMessage", &request).await;
        applied(&first).await;
        skipped_as_applied(&first, 1).await;
        let refunds = refunds_of(&pi).await;
        match want {
            Some(amount) => {
                assert_eq!(refunds.len(), 1, "case {i}: {refunds:?}");
                assert_eq!(refunds[0]["amount"], json!(amount), "case {i}");
                let stored = eventually("the refund recorded", || async {
                    let stored = stored_booking(&bid).await;
                    (stored["refund"]["M"]["status"]["S"] == "succeeded").then_some(stored)
                })
                .await;
                assert_eq!(stored["refund"]["M"]["amount"]["N"], json!(amount.to_string()), "case {i}");
                assert_eq!(stored["refund"]["M"]["reason"]["S"], "cancelled");
                let issued = outbox_events(&bid, "refund.issued").await;
                assert_eq!(issued.len(), 1, "case {i}");
                assert_eq!(issued[0]["data"]["amount"], json!({"amount": amount, "currency": "EUR"}));
                assert_eq!(issued[0]["data"]["refund_id"], refunds[0]["id"]);

                // Stripe's charge.refunded for the same refund (localstripe sends none: signed
                // here) changes nothing more.
                let webhook = charge_refunded(&pi).await;
                let id: Value = serde_json::from_str(&webhook).expect("json");
                deliver(&webhook).await;
                applied(s(&id, "id")).await;
                assert_eq!(outbox_events(&bid, "refund.issued").await.len(), 1, "case {i}");
                assert_eq!(refunds_of(&pi).await.len(), 1);
                assert_eq!(stored_booking(&bid).await["refund"], stored["refund"], "case {i}");
            }
            None => {
                assert!(refunds.is_empty(), "case {i}: {refunds:?}");
                assert!(stored_booking(&bid).await.get("refund").is_none());
            }
        }
    }
}

#[tokio::test]
async fn a_pending_refund_is_completed_by_charge_refunded_once() {
    roost_e2e::needs_stack!();
    // A refund Stripe has not finished: recorded `pending` on the booking (as payment-events
    // leaves it when Stripe answers `pending`), then Stripe's charge.refunded completes it.
    let f = fixture("moderate").await;
    let b = f.book(&f.guest, 90, 91).await;
    let bid = s(&b, "booking_id").to_owned();
    let intent = pay_and_confirm(&f.guest, &bid).await;
    let pi = s(&intent, "payment_intent_id").to_owned();
    let (status, refund) =
        stripe(Method::POST, "/v1/refunds", &[("payment_intent", pi.as_str()), ("amount", "700")]).await;
    assert_eq!(status, 200, "{refund}");
    dynamodb(
        "UpdateItem",
        json!({
            "Key": {"PK": {"S": format!("BOOKING#{bid}")}, "SK": {"S": "BOOKING"}},
            "UpdateExpression": "SET #s = :c, refund = :r",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":c": {"S": "cancelled"}, ":r": {"M": {
                "amount": {"N": "700"}, "currency": {"S": "EUR"}, "status": {"S": "pending"}, "reason": {"S": "cancelled"}}}}
        }),
    )
    .await;
    let webhook = charge_refunded(&pi).await;
    let id: Value = serde_json::from_str(&webhook).expect("json");
    deliver(&webhook).await;
    deliver(&webhook).await;
    applied(s(&id, "id")).await;
    skipped_as_applied(s(&id, "id"), 1).await;
    let stored = stored_booking(&bid).await;
    assert_eq!(stored["refund"]["M"]["status"]["S"], "succeeded");
    assert_eq!(stored["refund"]["M"]["refund_id"]["S"], refund["id"]);
    assert_eq!(outbox_events(&bid, "refund.issued").await.len(), 1);
}

#[tokio::test]
async fn a_poison_message_lands_in_the_dlq_while_the_rest_of_its_batch_is_applied() {
    roost_e2e::needs_stack!();
    let f = fixture("moderate").await;
    let b = f.book(&f.guest, 80, 81).await;
    let bid = s(&b, "booking_id").to_owned();
    let intent = json_of(pay(&f.guest, &bid, None).await, 200).await;
    let poison = format!("not json {}", unique("poison"));
    let good_id = format!("evt_{}", unique("good"));
    let good =
        stripe_event(&good_id, "payment_intent.succeeded", intent_object(&intent, &bid, &f.guest.user_id, "succeeded"));
    sqs(
        "SendMessageBatch",
        &json!({
            "QueueUrl": queue_url("roost-PaymentEventsQueue"),
            "Entries": [
                {"Id": "poison", "MessageBody": poison},
                {"Id": "good", "MessageBody": good, "MessageAttributes": {"source": {"DataType": "String", "StringValue": "stripe"}}}
            ]
        }),
    )
    .await;
    wait_for_status(&f.guest, &bid, "confirmed").await;
    let dlq = queue_url("roost-PaymentEventsDLQ");
    // 5 receives (maxReceiveCount) at the test mode's 2 s visibility timeout.
    let found = eventually_for(Duration::from_secs(90), "the poison message in the DLQ", || {
        let (dlq, poison) = (dlq.clone(), poison.clone());
        async move {
            let got = sqs(
                "ReceiveMessage",
                &json!({"QueueUrl": dlq, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1, "VisibilityTimeout": 0,
                        "AttributeNames": ["ApproximateReceiveCount"]}),
            )
            .await;
            got["Messages"].as_array().and_then(|m| m.iter().find(|m| m["Body"] == json!(poison)).cloned())
        }
    })
    .await;
    // Found by its body, so the body proves nothing: its receive count shows it was received
    // (and failed) maxReceiveCount = 5 times on the source queue before redrive moved it, and
    // only then.
    let receives: u32 =
        found["Attributes"]["ApproximateReceiveCount"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(receives > 5, "moved after 5 failed receives, then received here: {found}");
}

// ---------------------------------------------------------------------------------------------
// Issue 13: money safe under every ordering
// ---------------------------------------------------------------------------------------------

/// A signed `payment_intent.succeeded` for `intent` under a new event id; returns the id once
/// payment-events applied it.
async fn success_again(intent: &Value, booking_id: &str, guest_id: &str) -> String {
    let id = format!("evt_{}", unique("again"));
    deliver(&stripe_event(&id, "payment_intent.succeeded", intent_object(intent, booking_id, guest_id, "succeeded")))
        .await;
    applied(&id).await;
    id
}

/// The guest cancels through bookings (`POST /v1/bookings/{id}/cancel`), and payment-events
/// applies the `booking.cancelled` the relay publishes.
pub(crate) async fn cancel_as_guest(guest: &User, booking_id: &str) -> Value {
    let cancelled = json_of(
        guest.post(&format!("/v1/bookings/{booking_id}/cancel"), Some(&json!({"reason": "plans changed"}))).await,
        200,
    )
    .await;
    let event = eventually("booking.cancelled in the outbox", || async {
        outbox_events(booking_id, "booking.cancelled").await.into_iter().next()
    })
    .await;
    applied(s(&event, "id")).await;
    cancelled
}

#[tokio::test]
async fn a_success_delivered_again_after_a_cancellation_never_refunds_more_than_the_policy_owes() {
    roost_e2e::needs_stack!();
    // Strict, 3 days before check-in: the guest's cancel refunds nothing. Paid for real.
    let strict = fixture("strict").await;
    let b = strict.book(&strict.guest, 3, 4).await;
    let bid = s(&b, "booking_id").to_owned();
    let intent = pay_and_confirm(&strict.guest, &bid).await;
    let pi = s(&intent, "payment_intent_id").to_owned();
    let cancelled = cancel_as_guest(&strict.guest, &bid).await;
    assert_eq!(cancelled["refund"], json!({"amount": 0, "currency": "EUR", "status": "none"}));
    // Stripe sends the success again under a new event id (a resend, a second endpoint): nothing.
    success_again(&intent, &bid, &strict.guest.user_id).await;
    success_again(&intent, &bid, &strict.guest.user_id).await;
    assert!(refunds_of(&pi).await.is_empty(), "nothing refunded: {:?}", refunds_of(&pi).await);
    let stored = stored_booking(&bid).await;
    assert!(stored.get("refund").is_none(), "{stored}");
    assert_eq!(stored["status"]["S"], "cancelled");
    assert_eq!(stored["payment"]["M"]["status"]["S"], "succeeded");
    assert!(outbox_events(&bid, "refund.issued").await.is_empty());

    // Moderate, 2 days before check-in: 50 %. The success comes again BEFORE booking.cancelled
    // is applied (bookings' cancel stored, its event not delivered yet): exactly the policy's half.
    let moderate = fixture("moderate").await;
    let b = moderate.book(&moderate.guest, 2, 3).await;
    let bid = s(&b, "booking_id").to_owned();
    let total = b["price"]["total"].as_i64().expect("total");
    let half = (total * 50 + 50) / 100;
    let intent = pay_and_confirm(&moderate.guest, &bid).await;
    let pi = s(&intent, "payment_intent_id").to_owned();
    cancel_in_table(&bid, &moderate.listing_id, half, "guest").await;
    success_again(&intent, &bid, &moderate.guest.user_id).await;
    assert!(refunds_of(&pi).await.is_empty(), "no full refund of a paid booking: {:?}", refunds_of(&pi).await);
    let event = send_cancelled(&b, half, "guest").await;
    applied(&event).await;
    success_again(&intent, &bid, &moderate.guest.user_id).await;
    let refunds = refunds_of(&pi).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["amount"], json!(half), "exactly what the policy owes");
    let read = booking_of(&moderate.guest, &bid).await;
    assert_eq!(read["refund"], json!({"amount": half, "currency": "EUR", "status": "succeeded"}));
    assert_eq!(outbox_events(&bid, "refund.issued").await.len(), 1);
}

/// The stray-payment record of an intent (`PAYMENT_INTENT#<pi>` / `STRAY_PAYMENT`).
async fn stray_record(intent_id: &str) -> Option<Value> {
    let out = dynamodb(
        "GetItem",
        json!({"Key": {"PK": {"S": format!("PAYMENT_INTENT#{intent_id}")}, "SK": {"S": "STRAY_PAYMENT"}}, "ConsistentRead": true}),
    )
    .await;
    out.get("Item").cloned()
}

/// An intent made at localstripe outside Roost's payment route, naming `booking_id`, and paid.
async fn paid_stray_intent(amount: i64, booking_id: &str) -> Value {
    let (status, created) = stripe(
        Method::POST,
        "/v1/payment_intents",
        &[
            ("amount", &amount.to_string()),
            ("currency", "eur"),
            ("metadata[booking_id]", booking_id),
            ("payment_method_types[0]", "card"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let (status, paid) = confirm_with(s(&created, "id"), "pm_card_visa").await;
    assert_eq!((status, &paid["status"]), (200, &json!("succeeded")), "{paid}");
    paid
}

#[tokio::test]
async fn a_payment_that_is_not_its_booking_s_is_refunded_in_full_once_and_alarmed() {
    roost_e2e::needs_stack!();
    let f = fixture("moderate").await;
    let b = f.book(&f.guest, 20, 22).await;
    let bid = s(&b, "booking_id").to_owned();
    let own = json_of(pay(&f.guest, &bid, None).await, 200).await;
    let before = booking_of(&f.guest, &bid).await;

    // Another intent naming this booking is paid (localstripe sends its webhook).
    let other = paid_stray_intent(5_000, &bid).await;
    let other_pi = s(&other, "id").to_owned();
    let stray = eventually("the stray payment refunded", || async {
        stray_record(&other_pi).await.filter(|r| r["status"]["S"] == "succeeded")
    })
    .await;
    assert_eq!(stray["reason"]["S"], "other_intent");
    assert_eq!(stray["booking_id"]["S"], bid.as_str());
    assert_eq!((&stray["amount"]["N"], &stray["refund_amount"]["N"]), (&json!("5000"), &json!("5000")));
    // Delivered again: the same event id (Stripe's retry) and a new one (a resend).
    let object = json!({"id": other_pi, "object": "payment_intent", "amount": 5000, "currency": "eur",
                        "status": "succeeded", "metadata": {"booking_id": bid}});
    let again_id = format!("evt_{}", unique("stray"));
    let again = stripe_event(&again_id, "payment_intent.succeeded", object);
    deliver(&again).await;
    deliver(&again).await;
    applied(&again_id).await;
    let refunds = refunds_of(&other_pi).await;
    assert_eq!(refunds.len(), 1, "refunded once: {refunds:?}");
    assert_eq!((&refunds[0]["amount"], &refunds[0]["status"]), (&json!(5000), &json!("succeeded")));
    // The booking is untouched, and its own payment still confirms it.
    assert_eq!(booking_of(&f.guest, &bid).await, before);
    let (status, ok) = confirm_with(s(&own, "payment_intent_id"), "pm_card_visa").await;
    assert_eq!((status, &ok["status"]), (200, &json!("succeeded")), "{ok}");
    let confirmed = wait_for_status(&f.guest, &bid, "confirmed").await;
    assert!(confirmed.get("refund").is_none(), "{confirmed}");
    assert!(refunds_of(s(&own, "payment_intent_id")).await.is_empty());

    // A payment naming a booking that does not exist: refunded in full, once, on its own record.
    let nobody = format!("bkg_{}", ulid_like());
    let orphan = paid_stray_intent(777, &nobody).await;
    let orphan_pi = s(&orphan, "id").to_owned();
    let record = eventually("the orphan payment refunded", || async {
        stray_record(&orphan_pi).await.filter(|r| r["status"]["S"] == "succeeded")
    })
    .await;
    assert_eq!(record["reason"]["S"], "unknown_booking");
    assert_eq!(refunds_of(&orphan_pi).await.len(), 1);
    assert!(stored_booking(&nobody).await.is_null(), "no booking item made up");

    // Each alarmed once (the metric filter counts `"alert":"stray_payment"` lines).
    let log = Stack::get().function_log("PaymentEventsFunction");
    for pi in [&other_pi, &orphan_pi] {
        let alerts =
            log.lines().filter(|l| l.contains("\"alert\":\"stray_payment\"") && l.contains(pi.as_str())).count();
        assert_eq!(alerts, 1, "{pi}");
    }
}

/// Fixture: the booking as payment-events' confirmation leaves it (confirmed, paid, accepted).
async fn mark_confirmed(booking_id: &str, total: i64) {
    dynamodb(
        "UpdateItem",
        json!({
            "Key": {"PK": {"S": format!("BOOKING#{booking_id}")}, "SK": {"S": "BOOKING"}},
            "UpdateExpression": "SET #s = :confirmed, payment.#ps = :succeeded, payment.amount_paid = :paid, \
                                 payment.accepted_at = :now REMOVE payment.failure",
            "ConditionExpression": "attribute_exists(PK)",
            "ExpressionAttributeNames": {"#s": "status", "#ps": "status"},
            "ExpressionAttributeValues": {
                ":confirmed": {"S": "confirmed"}, ":succeeded": {"S": "succeeded"},
                ":paid": {"M": {"amount": {"N": total.to_string()}, "currency": {"S": "EUR"}}},
                ":now": {"S": jiff::Timestamp::now().to_string()}
            }
        }),
    )
    .await;
}

#[tokio::test]
async fn a_refund_stripe_keeps_refusing_is_recorded_failed_with_its_reason_and_an_operator_retries_it() {
    roost_e2e::needs_stack!();
    let f = fixture("moderate").await;
    let b = f.book(&f.guest, 40, 41).await;
    let bid = s(&b, "booking_id").to_owned();
    let total = b["price"]["total"].as_i64().expect("total");
    let intent = json_of(pay(&f.guest, &bid, None).await, 200).await;
    let pi = s(&intent, "payment_intent_id").to_owned();
    // The card is declined: localstripe keeps the failed charge, and refuses to refund it
    // ("Cannot refund a failed payment."), as Stripe refuses refunds it cannot make.
    let declined = card("4000000000000341").await;
    let (status, body) = confirm_with(&pi, &declined).await;
    assert_eq!(status, 402, "{body}");
    eventually("the decline recorded", || async {
        (booking_of(&f.guest, &bid).await["payment"]["status"] == "failed").then_some(())
    })
    .await;
    mark_confirmed(&bid, total).await;

    // Moderate, 40 days out: everything back. Stripe refuses on every receive (5, 2 s apart in
    // test mode); after the last the refund shows `failed` with Stripe's reason.
    let cancelled = json_of(f.guest.post(&format!("/v1/bookings/{bid}/cancel"), Some(&json!({}))).await, 200).await;
    assert_eq!(cancelled["refund"], json!({"amount": total, "currency": "EUR", "status": "pending"}));
    let failed = eventually_for(Duration::from_secs(90), "the refund recorded failed", || async {
        let read = booking_of(&f.guest, &bid).await;
        (read["refund"]["status"] == "failed").then_some(read)
    })
    .await;
    assert_eq!(
        failed["refund"],
        json!({"amount": total, "currency": "EUR", "status": "failed", "failure_reason": "Cannot refund a failed payment."})
    );
    assert!(refunds_of(&pi).await.is_empty());
    let log = Stack::get().function_log("PaymentEventsFunction");
    assert_eq!(
        log.lines().filter(|l| l.contains("\"alert\":\"refund_failed\"") && l.contains(bid.as_str())).count(),
        1,
        "counted once (the RefundsFailed metric filter)"
    );
    // The message waits in the DLQ.
    let dlq = queue_url("roost-PaymentEventsDLQ");
    let parked = eventually_for(Duration::from_secs(60), "booking.cancelled in the DLQ", || {
        let (dlq, bid) = (dlq.clone(), bid.clone());
        async move {
            let got = sqs(
                "ReceiveMessage",
                &json!({"QueueUrl": dlq, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1, "VisibilityTimeout": 0,
                        "MessageAttributeNames": ["All"]}),
            )
            .await;
            got["Messages"].as_array().and_then(|m| {
                m.iter()
                    .find(|m| {
                        m["Body"].as_str().is_some_and(|b| b.contains(bid.as_str()) && b.contains("booking.cancelled"))
                    })
                    .cloned()
            })
        }
    })
    .await;

    // The operator's retry (docs/payments.md, "When a refund failed"): fix the cause at Stripe
    // (here localstripe's charge is made good, with no webhook), then redrive the DLQ, as
    // `aws sqs start-message-move-task --source-arn <PaymentEventsDLQ arn>` does: the message back on
    // the queue, and off the DLQ.
    let (_, current) = stripe(Method::GET, &format!("/v1/payment_intents/{pi}"), &[]).await;
    let charge = current["latest_charge"]["id"].as_str().expect("latest charge").to_owned();
    let (status, fixed) = stripe(Method::POST, &format!("/v1/charges/{charge}"), &[("status", "succeeded")]).await;
    assert_eq!(status, 200, "{fixed}");
    sqs(
        "SendMessage",
        &json!({"QueueUrl": queue_url("roost-PaymentEventsQueue"), "MessageBody": parked["Body"],
                "MessageAttributes": {"type": {"DataType": "String", "StringValue": "booking.cancelled"}}}),
    )
    .await;
    sqs("DeleteMessage", &json!({"QueueUrl": dlq, "ReceiptHandle": parked["ReceiptHandle"]})).await;
    let read = eventually("the retried refund succeeded", || async {
        let read = booking_of(&f.guest, &bid).await;
        (read["refund"]["status"] == "succeeded").then_some(read)
    })
    .await;
    assert_eq!(read["refund"], json!({"amount": total, "currency": "EUR", "status": "succeeded"}));
    let refunds = refunds_of(&pi).await;
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0]["amount"], json!(total));
    assert_eq!(outbox_events(&bid, "refund.issued").await.len(), 1);
}
