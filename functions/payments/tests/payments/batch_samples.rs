//! Every sample batch in `events/payment-events/` replayed through the real handler: the Stripe
//! events are what localstripe really sent, the domain event an envelope as the topic delivers
//! it. DynamoDB is a stub that serves the booking and records every write; Stripe is a fake
//! that records every call. What each batch must write is asserted item by item.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use futures::future::BoxFuture;
use payments::events::{Budget, EventsState, handle_batch};
use payments::stripe::{Gateway, Intent, NewIntent, NewRefund, Refund, StripeFailure};
use serde_json::{Value, json};
use shared::Table;
use shared::clock::FixedClock;

/// Requests the stub received: (X-Amz-Target, body).
type Log = Arc<Mutex<Vec<(String, Value)>>>;

/// A DynamoDB endpoint: GetItem answers from `items` (by PK, when the SK matches too), every
/// write succeeds and is logged.
async fn dynamodb_stub(items: HashMap<String, Value>) -> (String, Log) {
    let log: Log = Arc::default();
    let recorded = log.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
        let (log, items) = (recorded.clone(), items.clone());
        async move {
            let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            log.lock().unwrap().push((target.clone(), request.clone()));
            let answer = match target.as_str() {
                "DynamoDB_20120810.GetItem" => {
                    let pk = request["Key"]["PK"]["S"].as_str().unwrap_or("");
                    items
                        .get(pk)
                        .filter(|item| item["SK"] == request["Key"]["SK"])
                        .map_or(json!({}), |item| json!({"Item": item}))
                }
                _ => json!({}),
            };
            ([("content-type", "application/x-amz-json-1.0")], answer.to_string())
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

/// Stripe: refunds succeed at once (as localstripe answers); every call is recorded.
#[derive(Default)]
struct FakeStripe {
    calls: Mutex<Vec<String>>,
}

impl Gateway for FakeStripe {
    fn create_intent<'a>(&'a self, _: &'a NewIntent) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(async { Err(StripeFailure::Transport(anyhow::anyhow!("not in replays"))) })
    }
    fn retrieve_intent<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(async { Err(StripeFailure::Transport(anyhow::anyhow!("not in replays"))) })
    }
    fn cancel_intent<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        self.calls.lock().unwrap().push(format!("cancel {id}"));
        Box::pin(async { Err(StripeFailure::Api { status: 400, code: None, decline_code: None, message: None }) })
    }
    fn create_refund<'a>(&'a self, new: &'a NewRefund) -> BoxFuture<'a, Result<Refund, StripeFailure>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("refund {} {} {}", new.payment_intent, new.amount, new.idempotency_key));
        Box::pin(async move {
            Ok(Refund {
                id: "re_replay".into(),
                status: Some("succeeded".into()),
                amount: new.amount,
                currency: "eur".into(),
                payment_intent: Some(new.payment_intent.clone()),
                metadata: HashMap::new(),
            })
        })
    }
    fn refunds_of<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<Refund>, StripeFailure>> {
        self.calls.lock().unwrap().push(format!("list refunds {id}"));
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// A booking item as bookings stores it, in DynamoDB JSON.
fn booking_item(booking_id: &str, guest: &str, status: &str, payment: Value, total: i64) -> Value {
    let item = json!({
        "PK": format!("BOOKING#{booking_id}"), "SK": "BOOKING", "type": "booking",
        "GSI1PK": format!("GUEST#{guest}"), "GSI1SK": format!("BOOKING#{booking_id}"),
        "GSI2PK": "HOST#9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "GSI2SK": format!("BOOKING#{booking_id}"),
        "booking_id": booking_id, "listing_id": "lst_01kaxb3c4d5e6f7g8h9jkmnpqr", "listing_version": 1,
        "listing_title": "Loft", "guest": {"user_id": guest, "name": "Gil"},
        "host": {"user_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "name": "Helena"},
        "check_in": "2027-01-10", "check_out": "2027-01-13", "nights": 3, "guests": 1,
        "price": {"nightly": [], "subtotal": total, "cleaning_fee": 0, "service_fee": 0, "total": total, "currency": "EUR"},
        "cancellation_policy": "moderate", "timezone": "Europe/Lisbon", "check_in_time": "15:00", "check_out_time": "11:00",
        "address": {"line1": "Rua A 1", "city": "Lisboa", "country": "PT"},
        "status": status, "hold_expires_at": "2026-11-26T12:50:00Z", "check_out_at": "2027-01-13T11:00:00Z",
        "payment": payment, "created_at": "2026-11-26T12:35:00Z", "updated_at": "2026-11-26T12:35:00Z"
    });
    serde_json::to_value(serde_dynamo::to_item::<_, serde_dynamo::Item>(item).unwrap()).unwrap()
}

fn sample(file: &str) -> SqsEvent {
    let path = format!("{}/../../events/payment-events/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is not an SQS event: {e}"))
}

fn stripe_object(event: &SqsEvent) -> (String, Value) {
    let body: Value = serde_json::from_str(event.records[0].body.as_deref().unwrap()).unwrap();
    (body["id"].as_str().unwrap().to_owned(), body["data"]["object"].clone())
}

async fn run(file: &str, items: HashMap<String, Value>) -> (Vec<String>, Vec<(String, Value)>, Vec<String>) {
    let stripe = Arc::new(FakeStripe::default());
    let (failed, log) = run_with(sample(file), items, stripe.clone(), Budget::default(), None).await;
    let calls = stripe.calls.lock().unwrap().clone();
    (failed, log, calls)
}

/// Runs `event` through the handler with `stripe`, `budget` and an invocation `deadline`:
/// the failed message ids (sorted) and the DynamoDB requests.
async fn run_with(
    event: SqsEvent,
    items: HashMap<String, Value>,
    stripe: Arc<dyn Gateway>,
    budget: Budget,
    deadline: Option<std::time::SystemTime>,
) -> (Vec<String>, Vec<(String, Value)>) {
    let (url, log) = dynamodb_stub(items).await;
    let conf = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        .endpoint_url(url);
    let st = EventsState {
        table: Arc::new(Table::from_conf(conf, "replay")),
        clock: Arc::new(FixedClock::at("2026-11-26T12:35:47Z").unwrap()),
        stripe,
        budget,
        max_receive_count: 5,
    };
    let response = handle_batch(&st, event, deadline).await.expect("batch");
    let mut failed: Vec<String> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    failed.sort();
    let log = log.lock().unwrap().clone();
    (failed, log)
}

fn writes(log: &[(String, Value)], target: &str) -> Vec<Value> {
    log.iter().filter(|(t, _)| t == &format!("DynamoDB_20120810.{target}")).map(|(_, b)| b.clone()).collect()
}

/// The refund claim's own updates (taken before the Stripe call, released after it).
fn is_claim(update: &Value) -> bool {
    update["UpdateExpression"].as_str().is_some_and(|e| e.contains("#cid"))
}

/// The UpdateItems that change the refund record itself (claims left out).
fn record_updates(log: &[(String, Value)]) -> Vec<Value> {
    writes(log, "UpdateItem").into_iter().filter(|u| !is_claim(u)).collect()
}

/// The claim's updates: `SET` (taken, conditioned on no live claim) then `REMOVE` (released, if
/// still ours), in that order.
fn claim_updates(log: &[(String, Value)]) -> Vec<String> {
    writes(log, "UpdateItem")
        .into_iter()
        .filter(is_claim)
        .map(|u| u["UpdateExpression"].as_str().unwrap_or("").split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

fn outbox_types(transaction: &Value) -> Vec<String> {
    transaction["TransactItems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["Put"]["Item"]["type"]["S"] == "outbox")
        .map(|i| i["Put"]["Item"]["event_type"]["S"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_sample_batch_has_an_expectation() {
    let mut files: Vec<String> =
        std::fs::read_dir(format!("{}/../../events/payment-events", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "domain-booking-cancelled.json",
            "mixed-batch-with-poison.json",
            "stripe-payment-intent-payment-failed.json",
            "stripe-payment-intent-succeeded.json"
        ]
    );
}

#[tokio::test]
async fn localstripe_s_success_confirms_the_booking_in_one_transaction() {
    let event = sample("stripe-payment-intent-succeeded.json");
    let (event_id, intent) = stripe_object(&event);
    let booking_id = intent["metadata"]["booking_id"].as_str().unwrap();
    let guest = intent["metadata"]["guest_id"].as_str().unwrap();
    let pi = intent["id"].as_str().unwrap();
    let total = intent["amount"].as_i64().unwrap();
    let item = booking_item(
        booking_id,
        guest,
        "pending_payment",
        json!({"status": "processing", "payment_intent_id": pi}),
        total,
    );
    let (failed, log, calls) =
        run("stripe-payment-intent-succeeded.json", HashMap::from([(format!("BOOKING#{booking_id}"), item)])).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert!(calls.is_empty(), "no Stripe call: {calls:?}");
    let tx = writes(&log, "TransactWriteItems");
    assert_eq!(tx.len(), 1, "ONE transaction");
    let items = tx[0]["TransactItems"].as_array().unwrap();
    assert_eq!(items.len(), 1 + 1 + 3 + 1, "receipt, booking, 3 nights, outbox");
    assert_eq!(items[0]["Put"]["Item"]["PK"]["S"], format!("EVENT#{event_id}"));
    assert_eq!(items[0]["Put"]["Item"]["SK"]["S"], "CONSUMER#payment-events");
    let booking = &items[1]["Update"];
    assert_eq!(booking["Key"]["PK"]["S"], format!("BOOKING#{booking_id}"));
    assert!(
        booking["ConditionExpression"].as_str().unwrap().contains("payment_intent_id")
            || booking["ExpressionAttributeNames"].to_string().contains("payment_intent_id")
    );
    assert_eq!(booking["ExpressionAttributeValues"][":confirmed"]["S"], "confirmed");
    assert_eq!(booking["ExpressionAttributeValues"][":paid"]["M"]["amount"]["N"], total.to_string());
    for (i, date) in ["2027-01-10", "2027-01-11", "2027-01-12"].iter().enumerate() {
        let night = &items[2 + i]["Update"];
        assert_eq!(night["Key"]["SK"]["S"], format!("NIGHT#{date}"));
        assert_eq!(night["ExpressionAttributeValues"][":booked"]["S"], "booked");
        assert_eq!(night["ExpressionAttributeValues"][":n_booking"]["S"], booking_id, "held by this booking");
        assert!(!night["ConditionExpression"].as_str().unwrap().contains("hold_expires_at"), "whatever the clock");
    }
    assert_eq!(outbox_types(&tx[0]), ["booking.confirmed"]);
}

#[tokio::test]
async fn localstripe_s_decline_is_recorded_with_its_code() {
    let event = sample("stripe-payment-intent-payment-failed.json");
    let (_, intent) = stripe_object(&event);
    let booking_id = intent["metadata"]["booking_id"].as_str().unwrap();
    let guest = intent["metadata"]["guest_id"].as_str().unwrap();
    let pi = intent["id"].as_str().unwrap();
    let item = booking_item(
        booking_id,
        guest,
        "pending_payment",
        json!({"status": "processing", "payment_intent_id": pi}),
        intent["amount"].as_i64().unwrap(),
    );
    let (failed, log, _) =
        run("stripe-payment-intent-payment-failed.json", HashMap::from([(format!("BOOKING#{booking_id}"), item)]))
            .await;
    assert!(failed.is_empty(), "{failed:?}");
    let tx = writes(&log, "TransactWriteItems");
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0]["TransactItems"][1]["Update"]["ExpressionAttributeValues"][":failure"]["S"], "card_declined");
    assert_eq!(outbox_types(&tx[0]), ["payment.failed"]);

    // The same failure for a booking paid meanwhile (out of order): only the receipt.
    let item = booking_item(
        booking_id,
        guest,
        "confirmed",
        json!({"status": "succeeded", "payment_intent_id": pi}),
        intent["amount"].as_i64().unwrap(),
    );
    let (failed, log, _) =
        run("stripe-payment-intent-payment-failed.json", HashMap::from([(format!("BOOKING#{booking_id}"), item)]))
            .await;
    assert!(failed.is_empty());
    assert!(writes(&log, "TransactWriteItems").is_empty());
    let puts = writes(&log, "PutItem");
    assert_eq!(puts.len(), 1);
    assert_eq!(puts[0]["Item"]["type"]["S"], "event_receipt");
}

#[tokio::test]
async fn a_cancelled_paid_booking_is_refunded_what_is_due_never_more_than_paid() {
    let booking_id = "bkg_01kaxb3c4d5e6f7g8h9jkmnpqr";
    let guest = "3f1e2d4c-5b6a-4789-8abc-def012345678";
    // refund_due in the sample is 24300 EUR; the guest paid 20000.
    let item = booking_item(
        booking_id,
        guest,
        "cancelled",
        json!({"status": "succeeded", "payment_intent_id": "pi_paid", "amount_paid": {"amount": 20000, "currency": "EUR"}}),
        20000,
    );
    let (failed, log, calls) =
        run("domain-booking-cancelled.json", HashMap::from([(format!("BOOKING#{booking_id}"), item)])).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(
        calls,
        ["list refunds pi_paid", &format!("refund pi_paid 20000 refund-{booking_id}")],
        "capped, paid intents not cancelled"
    );
    let pending = record_updates(&log);
    assert_eq!(pending.len(), 1, "the pending record first");
    assert_eq!(claim_updates(&log), ["SET", "REMOVE"], "the Stripe call ran under the refund claim");
    assert_eq!(pending[0]["ExpressionAttributeValues"][":r"]["M"]["status"]["S"], "pending");
    assert!(pending[0]["ConditionExpression"].as_str().unwrap().contains("attribute_not_exists"));
    let tx = writes(&log, "TransactWriteItems");
    assert_eq!(tx.len(), 1);
    assert_eq!(outbox_types(&tx[0]), ["refund.issued"]);
    let issued =
        tx[0]["TransactItems"].as_array().unwrap().iter().find(|i| i["Put"]["Item"]["type"]["S"] == "outbox").unwrap();
    let envelope: Value = serde_json::from_str(issued["Put"]["Item"]["envelope"]["S"].as_str().unwrap()).unwrap();
    assert_eq!(envelope["data"]["amount"], json!({"amount": 20000, "currency": "EUR"}));
}

#[tokio::test]
async fn unknown_types_are_acknowledged_and_undecodable_messages_fail() {
    let (failed, log, calls) = run("mixed-batch-with-poison.json", HashMap::new()).await;
    assert_eq!(failed, ["0b1c2d3e-0000-4000-8000-000000000004", "0b1c2d3e-0000-4000-8000-000000000006"]);
    assert!(log.is_empty() && calls.is_empty(), "{log:?} {calls:?}");

    // A payment for a booking that does not exist: refunded in full on a record of its own.
    let event = sample("stripe-payment-intent-succeeded.json");
    let (event_id, intent) = stripe_object(&event);
    let pi = intent["id"].as_str().unwrap();
    let (failed, log, calls) = run("stripe-payment-intent-succeeded.json", HashMap::new()).await;
    assert!(failed.is_empty(), "{failed:?}");
    let stray = writes(&log, "PutItem");
    assert_eq!(stray.len(), 1, "{log:?}");
    assert_eq!(stray[0]["Item"]["PK"]["S"], format!("PAYMENT_INTENT#{pi}"));
    assert_eq!(stray[0]["Item"]["SK"]["S"], "STRAY_PAYMENT");
    assert_eq!(stray[0]["Item"]["reason"]["S"], "unknown_booking");
    assert_eq!(stray[0]["ConditionExpression"], "attribute_not_exists(#pk)", "once per intent");
    assert_eq!(
        calls,
        [format!("list refunds {pi}"), format!("refund {pi} {} refund-stray-{pi}", intent["amount"])],
        "the whole amount"
    );
    let tx = writes(&log, "TransactWriteItems");
    assert_eq!(tx.len(), 1);
    assert_eq!(tx[0]["TransactItems"][0]["Put"]["Item"]["PK"]["S"], format!("EVENT#{event_id}"));
    assert!(outbox_types(&tx[0]).is_empty(), "no booking event");
}

// ---------------------------------------------------------------------------------------------
// Stripe slow or refusing: the invocation's deadline and the queue's last receive
// ---------------------------------------------------------------------------------------------

/// Stripe that answers refunds after `delay`, or refuses them as localstripe refuses a refund
/// of a failed payment.
struct ScriptedStripe {
    delay: std::time::Duration,
    refuse: bool,
    calls: Mutex<Vec<String>>,
}

impl ScriptedStripe {
    fn new(delay: std::time::Duration, refuse: bool) -> Arc<Self> {
        Arc::new(Self { delay, refuse, calls: Mutex::default() })
    }
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Gateway for ScriptedStripe {
    fn create_intent<'a>(&'a self, _: &'a NewIntent) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(async { Err(StripeFailure::Transport(anyhow::anyhow!("not here"))) })
    }
    fn retrieve_intent<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(async { Err(StripeFailure::Transport(anyhow::anyhow!("not here"))) })
    }
    fn cancel_intent<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(async { Err(StripeFailure::Transport(anyhow::anyhow!("not here"))) })
    }
    fn create_refund<'a>(&'a self, new: &'a NewRefund) -> BoxFuture<'a, Result<Refund, StripeFailure>> {
        self.calls.lock().unwrap().push(format!("refund {}", new.amount));
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            if self.refuse {
                return Err(StripeFailure::Api {
                    status: 400,
                    code: None,
                    decline_code: None,
                    message: Some("Cannot refund a failed payment.".into()),
                });
            }
            Ok(Refund {
                id: "re_slow".into(),
                status: Some("succeeded".into()),
                amount: new.amount,
                currency: "eur".into(),
                payment_intent: Some(new.payment_intent.clone()),
                metadata: HashMap::new(),
            })
        })
    }
    fn refunds_of<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<Refund>, StripeFailure>> {
        self.calls.lock().unwrap().push("list refunds".into());
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            Ok(Vec::new())
        })
    }
}

const CANCELLED_BOOKING: &str = "bkg_01kaxb3c4d5e6f7g8h9jkmnpqr";

/// The cancelled, paid booking of `domain-booking-cancelled.json` (refund due 24300, paid 20000).
fn cancelled_paid_booking() -> HashMap<String, Value> {
    let item = booking_item(
        CANCELLED_BOOKING,
        "3f1e2d4c-5b6a-4789-8abc-def012345678",
        "cancelled",
        json!({"status": "succeeded", "payment_intent_id": "pi_paid", "amount_paid": {"amount": 20000, "currency": "EUR"}}),
        20000,
    );
    HashMap::from([(format!("BOOKING#{CANCELLED_BOOKING}"), item)])
}

/// The cancellation (a refund to make at Stripe) received `receive_count` times, and in the same
/// batch a Stripe event that needs neither Stripe nor the table.
fn refund_batch(receive_count: u32) -> SqsEvent {
    let mut event = serde_json::to_value(sample("domain-booking-cancelled.json")).unwrap();
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = json!(receive_count.to_string());
    let mut other = event["Records"][0].clone();
    other["messageId"] = json!("quick-one");
    other["body"] = json!(
        json!({"id": "evt_quick", "object": "event", "type": "payment_intent.created", "data": {"object": {}}})
            .to_string()
    );
    event["Records"].as_array_mut().unwrap().push(other);
    serde_json::from_value(event).unwrap()
}

const REFUND_MESSAGE: &str = "0b1c2d3e-0000-4000-8000-000000000007";

#[tokio::test]
async fn a_slow_stripe_fails_its_message_before_the_deadline_and_the_others_are_reported() {
    // Stripe answers after 30 s; the invocation has 2.5 s. A call needs 1 s of budget.
    let stripe = ScriptedStripe::new(std::time::Duration::from_secs(30), false);
    let budget =
        Budget { stripe_call: std::time::Duration::from_secs(1), reserve: std::time::Duration::from_millis(300) };
    let started = std::time::Instant::now();
    let deadline = std::time::SystemTime::now() + std::time::Duration::from_millis(2_500);
    let (failed, log) =
        run_with(refund_batch(1), cancelled_paid_booking(), stripe.clone(), budget, Some(deadline)).await;
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_millis(2_400), "answered before the deadline: {took:?}");
    assert!(took >= std::time::Duration::from_millis(2_000), "cut at the deadline minus the reserve: {took:?}");
    assert_eq!(failed, [REFUND_MESSAGE], "only the slow message returns to the queue");
    assert_eq!(stripe.calls(), ["list refunds"], "the slow call was abandoned, nothing else started");
    assert!(writes(&log, "TransactWriteItems").is_empty(), "nothing recorded as refunded");
}

#[tokio::test]
async fn no_stripe_call_starts_without_the_time_to_finish_it() {
    // 1.5 s left, a Stripe call needs 4 s + 1 s: not even started.
    let stripe = ScriptedStripe::new(std::time::Duration::ZERO, false);
    let started = std::time::Instant::now();
    let deadline = std::time::SystemTime::now() + std::time::Duration::from_millis(1_500);
    let (failed, log) =
        run_with(refund_batch(1), cancelled_paid_booking(), stripe.clone(), Budget::default(), Some(deadline)).await;
    assert!(started.elapsed() < std::time::Duration::from_millis(1_000), "{:?}", started.elapsed());
    assert_eq!(failed, [REFUND_MESSAGE]);
    assert!(stripe.calls().is_empty(), "{:?}", stripe.calls());
    // The pending record is written (a redelivery carries on with it); nothing else.
    assert_eq!(record_updates(&log).len(), 1);
    assert!(writes(&log, "TransactWriteItems").is_empty());

    // With time enough, the same batch refunds.
    let stripe = ScriptedStripe::new(std::time::Duration::from_millis(50), false);
    let deadline = std::time::SystemTime::now() + std::time::Duration::from_secs(10);
    let (failed, log) =
        run_with(refund_batch(1), cancelled_paid_booking(), stripe.clone(), Budget::default(), Some(deadline)).await;
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(stripe.calls(), ["list refunds", "refund 20000"]);
    assert_eq!(outbox_types(&writes(&log, "TransactWriteItems")[0]), ["refund.issued"]);
}

#[tokio::test]
async fn a_refund_stripe_refuses_fails_until_the_last_receive_then_is_recorded_failed_with_the_reason() {
    let stripe = ScriptedStripe::new(std::time::Duration::ZERO, true);
    for receive in 1..=4 {
        let (failed, log) =
            run_with(refund_batch(receive), cancelled_paid_booking(), stripe.clone(), Budget::default(), None).await;
        assert_eq!(failed, [REFUND_MESSAGE], "receive {receive}: returns to the queue");
        let updates = record_updates(&log);
        assert_eq!(updates.len(), 1, "receive {receive}: only the pending record");
        assert_eq!(claim_updates(&log), ["SET", "REMOVE"], "receive {receive}: the claim is released for the retry");
        assert_eq!(updates[0]["ExpressionAttributeValues"][":r"]["M"]["status"]["S"], "pending");
    }
    // The 5th receive (maxReceiveCount): recorded failed with Stripe's reason, and the message
    // still fails, so it moves to the DLQ (the operator's redrive retries it).
    let (failed, log) =
        run_with(refund_batch(5), cancelled_paid_booking(), stripe.clone(), Budget::default(), None).await;
    assert_eq!(failed, [REFUND_MESSAGE]);
    let updates = record_updates(&log);
    assert_eq!(updates.len(), 2, "{updates:?}");
    let failed_update = &updates[1];
    assert_eq!(failed_update["ExpressionAttributeValues"][":failed"]["S"], "failed");
    assert_eq!(failed_update["ExpressionAttributeValues"][":why"]["S"], "Cannot refund a failed payment.");
    assert!(failed_update["ConditionExpression"].as_str().unwrap().contains("IN"), "only from pending or failed");
    assert!(writes(&log, "TransactWriteItems").is_empty(), "never recorded as refunded");
}
