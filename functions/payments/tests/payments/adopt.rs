//! Issue 13, item 6: `keep_intent` failing on a transient DynamoDB error. The payment call runs
//! through the real router against a DynamoDB stub that serves the booking and fails every
//! TransactWriteItems while told to, and a fake Stripe that keeps its intents in memory. The
//! first call fails after Stripe created the intent; the retry must adopt that intent (same
//! id, no second intent, the first never cancelled).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use payments::queue::MemoryQueue;
use payments::signature::WebhookSecrets;
use payments::stripe::{Gateway, Intent, META_BOOKING_ID, META_GUEST_ID, NewIntent, NewRefund, Refund, StripeFailure};
use payments::{AppState, router};
use serde_json::{Value, json};
use shared::Table;
use shared::clock::FixedClock;
use tower::ServiceExt;

const BOOKING: &str = "bkg_01kaxb3c4d5e6f7g8h9jkmnpqr";
const GUEST: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
const HOST: &str = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
/// The booking's hold runs until 12:50; the calls happen at 12:40.
const NOW: &str = "2026-11-26T12:40:00Z";

/// Stripe in memory: what was created, cancelled and looked up.
#[derive(Default)]
struct FakeStripe {
    intents: Mutex<Vec<Intent>>,
    calls: Mutex<Vec<String>>,
}

impl FakeStripe {
    fn log(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

impl Gateway for FakeStripe {
    fn create_intent<'a>(&'a self, new: &'a NewIntent) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(async move {
            let mut intents = self.intents.lock().unwrap();
            let id = format!("pi_{}", intents.len() + 1);
            self.log(format!("create {id} {}", new.amount));
            let intent = Intent {
                id: id.clone(),
                status: "requires_payment_method".into(),
                amount: new.amount.amount,
                currency: new.amount.currency.code().to_ascii_lowercase(),
                client_secret: Some(format!("{id}_secret_x")),
                metadata: HashMap::from([
                    (META_BOOKING_ID.to_owned(), new.booking_id.clone()),
                    (META_GUEST_ID.to_owned(), new.guest_id.clone()),
                ]),
            };
            intents.push(intent.clone());
            Ok(intent)
        })
    }
    fn retrieve_intent<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(async move {
            self.log(format!("retrieve {id}"));
            let intents = self.intents.lock().unwrap();
            intents.iter().find(|i| i.id == id).cloned().ok_or(StripeFailure::Api {
                status: 404,
                code: None,
                decline_code: None,
                message: None,
            })
        })
    }
    fn cancel_intent<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        Box::pin(async move {
            self.log(format!("cancel {id}"));
            let mut intents = self.intents.lock().unwrap();
            let intent = intents.iter_mut().find(|i| i.id == id).ok_or(StripeFailure::Api {
                status: 404,
                code: None,
                decline_code: None,
                message: None,
            })?;
            intent.status = "canceled".into();
            Ok(intent.clone())
        })
    }
    fn create_refund<'a>(&'a self, _: &'a NewRefund) -> BoxFuture<'a, Result<Refund, StripeFailure>> {
        Box::pin(async { Err(StripeFailure::Transport(anyhow::anyhow!("no refunds here"))) })
    }
    fn refunds_of<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<Refund>, StripeFailure>> {
        Box::pin(async { Err(StripeFailure::Transport(anyhow::anyhow!("no refunds here"))) })
    }
    fn intents_of_booking<'a>(&'a self, booking_id: &'a str) -> BoxFuture<'a, Result<Vec<Intent>, StripeFailure>> {
        Box::pin(async move {
            self.log(format!("look up {booking_id}"));
            let intents = self.intents.lock().unwrap();
            Ok(intents
                .iter()
                .filter(|i| i.metadata.get(META_BOOKING_ID).map(String::as_str) == Some(booking_id))
                .cloned()
                .collect())
        })
    }
}

/// The booking, `pending_payment` with a live hold and no intent.
fn booking_json() -> Value {
    json!({
        "PK": format!("BOOKING#{BOOKING}"), "SK": "BOOKING", "type": "booking",
        "GSI1PK": format!("GUEST#{GUEST}"), "GSI1SK": format!("BOOKING#{BOOKING}"),
        "GSI2PK": format!("HOST#{HOST}"), "GSI2SK": format!("BOOKING#{BOOKING}"),
        "booking_id": BOOKING, "listing_id": "lst_01kaxb3c4d5e6f7g8h9jkmnpqr", "listing_version": 1,
        "listing_title": "Loft", "guest": {"user_id": GUEST, "name": "Gil"},
        "host": {"user_id": HOST, "name": "Helena"},
        "check_in": "2027-01-10", "check_out": "2027-01-12", "nights": 2, "guests": 1,
        "price": {"nightly": [{"date": "2027-01-10", "amount": 10000}, {"date": "2027-01-11", "amount": 10000}],
                  "subtotal": 20000, "cleaning_fee": 0, "service_fee": 2400, "total": 22400, "currency": "EUR"},
        "cancellation_policy": "moderate", "timezone": "Europe/Lisbon", "check_in_time": "15:00", "check_out_time": "11:00",
        "address": {"line1": "Rua A 1", "city": "Lisboa", "country": "PT"},
        "status": "pending_payment", "hold_expires_at": "2026-11-26T12:50:00Z", "check_out_at": "2027-01-12T11:00:00Z",
        "payment": {"status": "unpaid"}, "created_at": "2026-11-26T12:35:00Z", "updated_at": "2026-11-26T12:35:00Z"
    })
}

/// The same in DynamoDB JSON.
fn booking_item() -> Value {
    serde_json::to_value(serde_dynamo::to_item::<_, serde_dynamo::Item>(booking_json()).unwrap()).unwrap()
}

/// DynamoDB: GetItem answers the booking; TransactWriteItems fails with a 500 (what the SDK
/// surfaces after its retries) while `fail_writes` is set, and succeeds otherwise.
async fn dynamodb_stub(fail_writes: Arc<AtomicBool>) -> (String, Arc<Mutex<Vec<String>>>) {
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let recorded = log.clone();
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let (log, fail) = (recorded.clone(), fail_writes.clone());
        async move {
            let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            log.lock().unwrap().push(target.clone());
            let (status, body) = match target.as_str() {
                "DynamoDB_20120810.GetItem" => (200, json!({"Item": booking_item()})),
                "DynamoDB_20120810.TransactWriteItems" if fail.load(Ordering::SeqCst) => (
                    500,
                    json!({"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "injected"}),
                ),
                _ => (200, json!({})),
            };
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [("content-type", "application/x-amz-json-1.0")],
                body.to_string(),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, log)
}

fn pay_request() -> lambda_http::Request {
    let path = format!("{}/../../events/payments/pay-bad-idempotency-key.json", env!("CARGO_MANIFEST_DIR"));
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    event["headers"].as_object_mut().unwrap().remove("idempotency-key");
    event["rawPath"] = json!(format!("/v1/bookings/{BOOKING}/payment"));
    event["requestContext"]["http"]["path"] = event["rawPath"].clone();
    event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] = json!(GUEST);
    event["requestContext"]["authorizer"]["jwt"]["claims"]["username"] = json!(GUEST);
    lambda_http::request::from_str(&event.to_string()).unwrap()
}

async fn call(state: AppState) -> (u16, Value) {
    let response = shared::http::with_request_layers(router(state)).oneshot(pay_request()).await.expect("infallible");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_retry_after_keep_intent_failed_adopts_the_intent_at_stripe() {
    let fail_writes = Arc::new(AtomicBool::new(true));
    let (url, dynamodb_log) = dynamodb_stub(fail_writes.clone()).await;
    let conf = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        .retry_config(RetryConfig::disabled())
        .endpoint_url(url);
    let stripe = Arc::new(FakeStripe::default());
    let state = AppState {
        table: Arc::new(Table::from_conf(conf, "adopt")),
        clock: Arc::new(FixedClock::at(NOW).unwrap()),
        stripe: stripe.clone(),
        connect: Arc::new(payments::connect::NoConnect),
        queue: Arc::new(MemoryQueue::default()),
        webhook_secrets: Arc::new(WebhookSecrets(Vec::new())),
    };

    // First call: Stripe creates pi_1, recording it on the booking fails.
    let (status, body) = call(state.clone()).await;
    assert!(status >= 500, "{status} {body}");
    assert!(dynamodb_log.lock().unwrap().iter().any(|t| t.ends_with("TransactWriteItems")));
    {
        let intents = stripe.intents.lock().unwrap();
        assert_eq!(intents.len(), 1);
        assert_eq!(intents[0].status, "requires_payment_method", "the unrecorded intent is left open");
    }

    // The retry, DynamoDB healthy again: the same intent, none created, none cancelled.
    fail_writes.store(false, Ordering::SeqCst);
    let (status, body) = call(state.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["payment_intent_id"], "pi_1", "{body}");
    assert_eq!(body["client_secret"], "pi_1_secret_x", "{body}");
    assert_eq!((&body["amount"], &body["currency"]), (&json!(22400), &json!("EUR")), "{body}");
    let calls = stripe.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![format!("look up {BOOKING}"), "create pi_1 224.00 EUR".to_owned(), format!("look up {BOOKING}")],
        "one intent created, adopted by the retry, never cancelled"
    );
}

#[test]
fn only_an_open_intent_for_the_exact_price_is_adopted() {
    let b = payments::store::BookingRecord::from_value(booking_json()).unwrap();
    let intent = |id: &str, status: &str, amount: i64, currency: &str, booking: &str| Intent {
        id: id.into(),
        status: status.into(),
        amount,
        currency: currency.into(),
        client_secret: Some("s".into()),
        metadata: HashMap::from([(META_BOOKING_ID.to_owned(), booking.to_owned())]),
    };
    let pick = |found: Vec<Intent>| payments::rules::pick_adoptable(&b, found).map(|i| i.id);
    assert_eq!(pick(vec![]), None);
    assert_eq!(pick(vec![intent("pi_c", "canceled", 22_400, "eur", BOOKING)]), None);
    assert_eq!(pick(vec![intent("pi_p", "requires_payment_method", 22_399, "eur", BOOKING)]), None);
    assert_eq!(pick(vec![intent("pi_u", "requires_payment_method", 22_400, "usd", BOOKING)]), None);
    assert_eq!(pick(vec![intent("pi_o", "requires_payment_method", 22_400, "eur", "bkg_other")]), None);
    assert_eq!(
        pick(vec![
            intent("pi_c", "canceled", 22_400, "eur", BOOKING),
            intent("pi_ok", "requires_payment_method", 22_400, "eur", BOOKING),
        ]),
        Some("pi_ok".to_owned())
    );
}
