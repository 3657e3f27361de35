//! Every sample event in `events/payments/` replayed through the real router, as Lambda would
//! deliver it, with the answer each one must get. The webhook samples carry the bodies
//! localstripe really sends, signed with the replay secrets below; the queue is in memory and
//! the table and Stripe unreachable: the webhook never touches them.

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use payments::queue::MemoryQueue;
use payments::signature::WebhookSecrets;
use payments::stripe::{Gateway, Intent, NewIntent, NewRefund, Refund, StripeFailure};
use payments::{AppState, router};
use secrecy::SecretString;
use serde_json::{Value, json};
use shared::Table;
use shared::clock::FixedClock;
use tower::ServiceExt;

const SECRET: &str = "whsec_replay_only_not_a_real_secret";
const PREVIOUS: &str = "whsec_replay_previous_secret";
/// The samples' `created` (and signature timestamp) is 1795696537; the replay runs 10 s later.
const NOW: &str = "2026-11-26T12:35:47Z";

/// Stripe, unreachable: no replayed request may call it.
struct NoStripe;

fn refused<T>() -> BoxFuture<'static, Result<T, StripeFailure>>
where
    T: Send + 'static,
{
    Box::pin(async { Err(StripeFailure::Transport(anyhow::anyhow!("no Stripe in replays"))) })
}

impl Gateway for NoStripe {
    fn create_intent<'a>(&'a self, _: &'a NewIntent) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        refused()
    }
    fn retrieve_intent<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        refused()
    }
    fn cancel_intent<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Intent, StripeFailure>> {
        refused()
    }
    fn create_refund<'a>(&'a self, _: &'a NewRefund) -> BoxFuture<'a, Result<Refund, StripeFailure>> {
        refused()
    }
    fn refunds_of<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<Refund>, StripeFailure>> {
        refused()
    }
}

fn state(queue: Arc<MemoryQueue>) -> AppState {
    let dynamodb = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        .endpoint_url("http://127.0.0.1:9");
    AppState {
        table: Arc::new(Table::from_conf(dynamodb, "replay")),
        clock: Arc::new(FixedClock::at(NOW).expect("timestamp")),
        stripe: Arc::new(NoStripe),
        connect: Arc::new(payments::connect::NoConnect),
        queue,
        webhook_secrets: Arc::new(WebhookSecrets(vec![
            SecretString::from(SECRET.to_owned()),
            SecretString::from(PREVIOUS.to_owned()),
        ])),
    }
}

fn sample(file: &str) -> String {
    let path = format!("{}/../../events/payments/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn replay(file: &str, queue: Arc<MemoryQueue>) -> (u16, Value) {
    let request = lambda_http::request::from_str(&sample(file))
        .unwrap_or_else(|e| panic!("{file} is not an API Gateway event: {e}"));
    let response = shared::http::with_request_layers(router(state(queue))).oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_sample_event_is_replayed() {
    // (file, status, code or None for the webhook's 200, whether the body is queued)
    let expected: &[(&str, u16, Option<&str>, bool)] = &[
        ("pay-bad-idempotency-key.json", 400, Some("validation_failed"), false),
        ("pay-malformed-booking-id.json", 404, Some("not_found"), false),
        ("pay-without-claims.json", 401, Some("unauthorized"), false),
        ("webhook-altered-body.json", 400, Some("invalid_signature"), false),
        ("webhook-forged-signature.json", 400, Some("invalid_signature"), false),
        ("webhook-missing-signature.json", 400, Some("invalid_signature"), false),
        ("webhook-payment-intent-payment-failed.json", 200, None, true),
        ("webhook-payment-intent-succeeded.json", 200, None, true),
        ("webhook-rotated-secret.json", 200, None, true),
        ("webhook-stale-timestamp.json", 400, Some("invalid_signature"), false),
        ("webhook-wrong-secret.json", 400, Some("invalid_signature"), false),
    ];
    let mut files: Vec<String> = std::fs::read_dir(format!("{}/../../events/payments", env!("CARGO_MANIFEST_DIR")))
        .expect("events/payments")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let listed: Vec<String> = expected.iter().map(|(f, ..)| f.to_string()).collect();
    assert_eq!(files, listed, "every file in events/payments has an expectation here");

    let mut refusals = Vec::new();
    for (file, status, code, queued) in expected {
        let queue = Arc::new(MemoryQueue::default());
        let (got, body) = replay(file, queue.clone()).await;
        assert_eq!(got, *status, "{file}: {body}");
        match code {
            Some(code) => assert_eq!(body["code"], *code, "{file}: {body}"),
            None => assert_eq!(body, json!({"received": true}), "{file}"),
        }
        if *code == Some("invalid_signature") {
            refusals.push(body.clone());
        }
        let sent = queue.bodies();
        if *queued {
            // The exact bytes Stripe signed, not a re-encoding.
            let event: Value = serde_json::from_str(&sample(file)).expect("json");
            assert_eq!(sent, vec![event["body"].as_str().expect("body").to_owned()], "{file}");
        } else {
            assert!(sent.is_empty(), "{file} reached the queue");
        }
    }
    assert!(refusals.windows(2).all(|w| w[0] == w[1]), "one answer for every refusal: {refusals:?}");
}

#[tokio::test]
async fn a_queue_that_fails_makes_stripe_retry() {
    let queue = Arc::new(MemoryQueue { fail: true, ..MemoryQueue::default() });
    let (status, body) = replay("webhook-payment-intent-succeeded.json", queue).await;
    assert_eq!((status, &body["code"]), (500, &json!("internal_error")));
}
