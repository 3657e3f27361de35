//! The local runtime's `/metrics` (docs/metrics.md) after a journey through the API: sign up,
//! list, book, pay through localstripe, cancel (refunded), a forged webhook, a failing
//! invocation. Every function involved shows the invocations, and every business counter grew
//! by at least what the journey did.
//!
//! Other tests run on the same stack at the same time, so a counter may grow by more than this
//! journey's share: deltas are checked with `>=`. What makes the counts exact is the second
//! test: the business counters equal, to the line, the EMF lines in the functions' log files
//! (the runtime counts a line only after writing it to the log, so a scrape before reading the
//! logs counts no more than they show, and one after no less, once the runtime has caught up).

use std::collections::BTreeMap;

use roost_e2e::{Stack, anonymous, client, eventually, json_of, needs_stack, s};
use serde_json::{Value, json};

use super::payments::{cancel_as_guest, fixture, pay_and_confirm};
use roost_e2e::fixtures::post_webhook;

const BUSINESS: &str = "roost_business_events_total";

/// The functions the journey runs (template logical ids).
const FUNCTIONS: [&str; 7] = [
    "UsersFunction",
    "ListingsFunction",
    "BookingsFunction",
    "PaymentsFunction",
    "PaymentEventsFunction",
    "NotificationsFunction",
    "EventsRelayFunction",
];

/// One scrape: every sample, keyed by its series (`name{labels}` as the text has it).
struct Scrape(BTreeMap<String, f64>);

async fn scrape() -> Scrape {
    let url = Stack::get().rest["metrics_url"].as_str().expect("metrics_url in stack.json").to_owned();
    let response = client().get(url).send().await.expect("runtime reachable");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().expect("content-type").to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.expect("body");
    let samples = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {l}"));
            (series.to_owned(), value.parse().unwrap_or_else(|e| panic!("{l}: {e}")))
        })
        .collect();
    Scrape(samples)
}

impl Scrape {
    /// The sample of `name` with exactly these labels (in the order the runtime writes them);
    /// 0 when the series does not exist yet.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
        self.0.get(&format!("{name}{{{}}}", labels.join(","))).copied().unwrap_or(0.0)
    }

    fn function(&self, name: &str, function: &str) -> f64 {
        self.get(name, &[("function", function)])
    }

    fn business(&self, metric: &str) -> f64 {
        self.get(BUSINESS, &[("metric", metric), ("stage", "dev")])
    }

    /// Every business series: (metric, stage) -> count.
    fn businesses(&self) -> BTreeMap<(String, String), u64> {
        let mut found = BTreeMap::new();
        for (series, value) in &self.0 {
            let Some(labels) = series.strip_prefix(&format!("{BUSINESS}{{")) else { continue };
            let label = |key: &str| labels.split(&format!("{key}=\"")).nth(1).and_then(|v| v.split('"').next());
            let (Some(metric), Some(stage)) = (label("metric"), label("stage")) else { continue };
            found.insert((metric.to_owned(), stage.to_owned()), *value as u64);
        }
        found
    }
}

/// What the journey adds at least: business counters and invocations.
const EXPECTED_BUSINESS: [(&str, f64); 8] = [
    ("BookingsCreated", 1.0),
    ("BookingsConfirmed", 1.0),
    ("PaymentsSucceeded", 1.0),
    ("BookingsCancelled", 1.0),
    ("RefundsIssued", 1.0),
    ("WebhooksAccepted", 1.0),
    ("WebhooksRejected", 1.0),
    ("NotificationsSent", 1.0),
];

/// The deltas from `before` that fall short of the journey's: empty once all are there.
fn short_of_the_journey(before: &Scrape, after: &Scrape) -> Vec<String> {
    let mut short = Vec::new();
    for (metric, at_least) in EXPECTED_BUSINESS {
        let delta = after.business(metric) - before.business(metric);
        if delta < at_least {
            short.push(format!("{metric}: +{delta}, expected at least +{at_least}"));
        }
    }
    for function in FUNCTIONS {
        let delta = after.function("roost_lambda_invocations_total", function)
            - before.function("roost_lambda_invocations_total", function);
        if delta < 1.0 {
            short.push(format!("{function}: no invocation"));
        }
    }
    short
}

#[tokio::test]
async fn after_a_journey_metrics_show_its_invocations_and_business_counts() {
    needs_stack!();
    let before = scrape().await;

    // Sign up (users), list (listings), book (bookings), pay through localstripe (payments; its
    // webhook -> payment-events confirms; the relay and notifications e-mail), cancel (refunded).
    let f = fixture("flexible").await;
    json_of(anonymous().listing(&f.listing_id).await, 200).await;
    let booking = f.book(&f.guest, 40, 42).await;
    let booking_id = s(&booking, "booking_id").to_owned();
    pay_and_confirm(&f.guest, &booking_id).await;
    cancel_as_guest(&f.guest, &booking_id).await;
    // A webhook Stripe did not sign: refused.
    let forged = json!({"id": "evt_forged", "object": "event", "type": "payment_intent.succeeded"}).to_string();
    assert_eq!(post_webhook(&forged, Some("t=1,v1=00")).await.status(), 400);
    // A function error: payment-events given something that is not an SQS event.
    let (outcome, _) = Stack::get().invoke("PaymentEventsFunction", &json!("not an SQS event")).await;
    assert_eq!(outcome, "error");

    let after = eventually("the journey's counts in /metrics", || async {
        let after = scrape().await;
        short_of_the_journey(&before, &after).is_empty().then_some(after)
    })
    .await;
    let grew = |name: &str, function: &str| after.function(name, function) - before.function(name, function);
    assert!(grew("roost_lambda_errors_total", "PaymentEventsFunction") >= 1.0);
    assert!(grew("roost_lambda_duration_seconds_count", "BookingsFunction") >= 3.0, "book, cancel, reads");
    for function in FUNCTIONS {
        // Every function started at `up`: its cold start was reported with its first invocation.
        assert!(after.function("roost_lambda_init_duration_seconds_count", function) >= 1.0, "{function}");
        let memory = after.function("roost_lambda_max_memory_used_bytes", function);
        assert!(memory > 1024.0 * 1024.0, "{function}: {memory} bytes");
    }
    let queues = Stack::get().rest["queues"].as_object().expect("queues in stack.json");
    assert!(queues.contains_key("roost-PaymentEventsDLQ"), "{queues:?}");
    for queue in queues.keys() {
        let series = format!("roost_sqs_messages_visible{{queue=\"{queue}\"}}");
        assert!(after.0.contains_key(&series), "{series} missing");
    }
    for name in dashboard_series() {
        assert!(after.0.keys().any(|k| k.starts_with(&format!("{name}{{"))), "the dashboard's {name} is not served");
    }
}

/// The `roost_*` series the Grafana dashboard's queries read.
fn dashboard_series() -> std::collections::BTreeSet<String> {
    let path = roost_e2e::tools::root().join("infra/grafana/roost-local.json");
    let text = std::fs::read_to_string(path).expect("infra/grafana/roost-local.json");
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut names = std::collections::BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = s(target, "expr");
            for (at, _) in expr.match_indices("roost_") {
                let name: String = expr[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                names.insert(name);
            }
        }
    }
    assert!(names.len() >= 8, "{names:?}");
    names
}

/// The business counts of every EMF line in the functions' log files: (metric, stage) -> sum.
fn counts_in_logs() -> BTreeMap<(String, String), u64> {
    let mut counts = BTreeMap::new();
    let stack = Stack::get();
    for function in stack.rest["functions"].as_array().expect("functions in stack.json") {
        let log = stack.function_log(function.as_str().expect("name"));
        // Each line is `[Function] <output>`; only EMF lines are parsed (the logs are long).
        let outputs = log.lines().filter(|l| l.contains("\"_aws\"")).filter_map(|l| l.split_once("] ").map(|(_, o)| o));
        for output in outputs {
            let Ok(document) = serde_json::from_str::<Value>(output) else { continue };
            for directive in document["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
                assert_eq!(directive["Namespace"], "Roost", "{output}");
                assert_eq!(directive["Dimensions"], json!([["Stage"]]), "one dimension, never an id: {output}");
                for metric in directive["Metrics"].as_array().expect("Metrics") {
                    assert_eq!(metric["Unit"], "Count", "{output}");
                    let name = s(metric, "Name").to_owned();
                    let count = document[&name].as_u64().unwrap_or_else(|| panic!("{name} in {output}"));
                    *counts.entry((name, s(&document, "Stage").to_owned())).or_default() += count;
                }
            }
        }
    }
    counts
}

#[tokio::test]
async fn business_counters_are_exactly_the_emf_lines_the_functions_wrote() {
    needs_stack!();
    // Something to count even when this test runs alone: a forged webhook (WebhooksRejected).
    assert_eq!(post_webhook("{}", Some("t=1,v1=00")).await.status(), 400);
    eventually("a scrape before and after the logs agreeing with them", || async {
        let before = scrape().await.businesses();
        let logged = counts_in_logs();
        let after = scrape().await.businesses();
        let keys: std::collections::BTreeSet<_> = before.keys().chain(logged.keys()).chain(after.keys()).collect();
        let consistent = keys.iter().all(|k| {
            let at = |m: &BTreeMap<(String, String), u64>| m.get(*k).copied().unwrap_or(0);
            at(&before) <= at(&logged) && at(&logged) <= at(&after)
        });
        (consistent && !logged.is_empty()).then_some(())
    })
    .await;
}
