//! The local runtime's fault proxy (infra/local/src/faults.rs, docs/local-runtime.md "Injected
//! faults"): every faultable SDK of the functions really calls through its function's proxy, and
//! a fault switched on is seen by the caller and counted, then gone when switched off.
//!
//! The suite shares one stack and runs tests in parallel: every mode here is scoped to one
//! function, kept short, and switched off by a guard even when the test fails.

use roost_e2e::faults::{FaultMode, count, state as faults};
use roost_e2e::{NewListing, Stack, User, eventually, json_of, s, unique};
use serde_json::{Value, json};

use crate::payments::{fixture, pay_and_confirm};

#[tokio::test]
async fn a_faulted_dynamodb_is_a_clean_5xx_counted_and_gone_once_switched_off() {
    roost_e2e::needs_stack!();
    let host = User::host("Faulty Host").await;
    let listing_id = host.api().new_listing(&NewListing::in_city(&unique("Faultville"))).await;
    let before = faults().await;
    let response = {
        let _mode = FaultMode::on(json!({
            "rate": 1.0, "services": ["dynamodb"], "kinds": ["error"], "functions": ["ListingsFunction"], "seed": 17,
        }))
        .await;
        host.api().listing(&listing_id).await
    };
    let status = response.status().as_u16();
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.text().await.unwrap_or_default();
    assert!((500..600).contains(&status), "a failing DynamoDB is a server error, got {status}: {body}");
    assert_eq!(content_type.as_deref(), Some("application/problem+json"), "a clean problem: {body}");
    let problem: Value = serde_json::from_str(&body).expect("problem json");
    assert_eq!(problem["status"], status, "{problem}");
    assert!(!body.contains("InternalServerError"), "no AWS detail leaks to the client: {body}");

    let after = faults().await;
    let injected = count(&after, "/injected/dynamodb/error") - count(&before, "/injected/dynamodb/error");
    assert!(injected >= 1, "the proxy injected the errors the API answered: {after}");
    assert_eq!(after["mode"], Value::Null, "the guard switched faults off");

    let listing = json_of(host.api().listing(&listing_id).await, 200).await;
    assert_eq!(s(&listing, "listing_id"), listing_id);
}

#[tokio::test]
async fn every_faultable_sdk_calls_through_its_functions_proxy() {
    roost_e2e::needs_stack!();
    let before = faults().await;
    let f = fixture("flexible").await;
    let booking = f.book(&f.guest, 20, 22).await;
    pay_and_confirm(&f.guest, s(&booking, "booking_id")).await;
    // Each (function, service) must see calls of its own after this journey: the listing and the
    // booking in DynamoDB, the payment in Stripe, the webhook's queue, the relay's topic, the mail.
    let expected = [
        ("ListingsFunction", "dynamodb"),
        ("BookingsFunction", "dynamodb"),
        ("PaymentsFunction", "stripe"),
        ("EventsRelayFunction", "sns"),
        ("NotificationsFunction", "ses"),
    ];
    let grew = |after: &Value, function: &str, service: &str| {
        let pointer = format!("/forwarded_by_function/{function}/{service}");
        count(after, &pointer) > count(&before, &pointer)
    };
    let after = eventually("every SDK's calls through the fault proxy", || async {
        let after = faults().await;
        let sqs = count(&after, "/forwarded/sqs") > count(&before, "/forwarded/sqs");
        (sqs && expected.iter().all(|(f, service)| grew(&after, f, service))).then_some(after)
    })
    .await;
    let stripe_proxy = Stack::get().rest["fault_proxies"]["PaymentsFunction"].as_str().expect("proxy url");
    assert!(stripe_proxy.starts_with("http://127.0.0.1:"), "{after}");
}
