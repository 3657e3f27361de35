//! What must hold after a run under faults, once the faults stop and the asynchronous paths
//! drain (issue 17): over the trips the run made, every night is held by at most one booking,
//! every confirmed booking was paid exactly once, refunds are what the policy owes and never
//! more, no booking is stuck, every notification reached each person once, and the DLQs hold
//! only what the test expects (a redrive applies it once).
//!
//! Checks collect violations instead of panicking, so a run reports every broken invariant at
//! once; the caller asserts the list is empty.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::fixtures::{post_webhook, sent_mail, signature, stripe, webhook_secret};
use crate::{Stack, User, dynamodb, json_of, sqs};

/// One booking the run made (or tried to: a lost race has no booking and is not a trip).
#[derive(Debug, Clone)]
pub struct Trip {
    pub booking_id: String,
    pub listing_id: String,
    /// The nights `[check_in, check_out)`, `YYYY-MM-DD`.
    pub nights: Vec<String>,
    pub guest: User,
    pub host: User,
    /// The intent the guest confirmed at Stripe, when the guest paid.
    pub paid_intent: Option<String>,
    /// The refund the cancellation answered (the policy's due), when the run cancelled it.
    pub cancelled_refund: Option<i64>,
}

/// What the checks saw: counts of what was checked, and every violation.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub checked: BTreeMap<String, u64>,
    pub violations: Vec<String>,
    /// Stripe events posted again (Stripe's retries; localstripe never retries).
    pub webhooks_replayed: u64,
    /// Messages moved from a DLQ back to its queue.
    pub redriven: u64,
    /// E-mails SES recorded more than once for one (event, person): allowed only up to the
    /// SES answers the proxy held back (`late`), after which the sender cannot know SES sent it.
    pub duplicate_mails: u64,
    pub sweep: Value,
    pub final_status: BTreeMap<String, u64>,
}

impl Report {
    fn check(&mut self, what: &str, ok: bool, detail: impl FnOnce() -> String) {
        *self.checked.entry(what.to_owned()).or_default() += 1;
        if !ok {
            self.violations.push(format!("{what}: {}", detail()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Queues
// ---------------------------------------------------------------------------------------------

/// The stack's queues (name -> URL) from stack.json: every queue the template declares.
pub fn queues() -> BTreeMap<String, String> {
    Stack::get().rest["queues"]
        .as_object()
        .expect("queues in stack.json")
        .iter()
        .map(|(name, url)| (name.clone(), url.as_str().expect("queue url").to_owned()))
        .collect()
}

/// A dead-letter queue: its name ends in `DLQ`, or it is an on-failure destination.
pub fn is_dead_letter(name: &str) -> bool {
    name.ends_with("DLQ") || name.ends_with("FailuresQueue")
}

/// Messages in a queue: visible, in flight and delayed.
pub async fn depth(url: &str) -> u64 {
    let out = sqs(
        "GetQueueAttributes",
        &json!({"QueueUrl": url, "AttributeNames": ["ApproximateNumberOfMessages",
                 "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]}),
    )
    .await;
    out["Attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.as_str().and_then(|s| s.parse::<u64>().ok()))
        .sum()
}

/// Waits until every queue that is not a DLQ is empty, three samples in a row a second apart
/// (the stream's relay and the pollers may add messages between two samples), at most `patience`.
/// Returns whether it drained.
pub async fn drain(patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    let mut quiet = 0;
    while Instant::now() < deadline {
        let mut total = 0;
        for (name, url) in queues() {
            if !is_dead_letter(&name) {
                total += depth(&url).await;
            }
        }
        quiet = if total == 0 { quiet + 1 } else { 0 };
        if quiet >= 3 {
            return true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    false
}

/// Every message of a queue, with a receipt handle valid for `hold_secs` (0: a peek that leaves
/// them visible). Bounded: a queue with more than a few hundred messages is not what a test made.
pub async fn messages(url: &str, hold_secs: u32) -> Vec<Value> {
    let mut seen = BTreeMap::new();
    for _ in 0..40 {
        let out = sqs(
            "ReceiveMessage",
            &json!({"QueueUrl": url, "MaxNumberOfMessages": 10, "VisibilityTimeout": hold_secs,
                    "MessageAttributeNames": ["All"], "WaitTimeSeconds": 0}),
        )
        .await;
        let batch = out["Messages"].as_array().cloned().unwrap_or_default();
        let before = seen.len();
        for m in batch {
            seen.entry(m["MessageId"].as_str().unwrap_or_default().to_owned()).or_insert(m);
        }
        if seen.len() == before {
            break;
        }
    }
    seen.into_values().collect()
}

/// The DLQ of a queue (from the stack's names: `<X>Queue` -> `<X>DLQ`).
fn main_queue_of(dlq: &str) -> Option<String> {
    dlq.strip_suffix("DLQ").map(|stem| format!("{stem}Queue"))
}

/// Moves the messages of `dlq` that `ours` selects back to its queue, as an operator's redrive
/// does (`StartMessageMoveTask`: the body and attributes kept); returns how many moved.
pub async fn redrive(dlq: &str, ours: impl Fn(&str) -> bool) -> u64 {
    let all = queues();
    let (Some(dlq_url), Some(target)) = (all.get(dlq), main_queue_of(dlq).and_then(|q| all.get(&q).cloned())) else {
        return 0;
    };
    let mut moved = 0;
    for m in messages(dlq_url, 30).await {
        let body = m["Body"].as_str().unwrap_or_default();
        if !ours(body) {
            continue;
        }
        let mut send = json!({"QueueUrl": target, "MessageBody": body});
        if let Some(attributes) = m["MessageAttributes"].as_object().filter(|a| !a.is_empty()) {
            send["MessageAttributes"] = Value::Object(attributes.clone());
        }
        sqs("SendMessage", &send).await;
        sqs("DeleteMessage", &json!({"QueueUrl": dlq_url, "ReceiptHandle": m["ReceiptHandle"]})).await;
        moved += 1;
    }
    moved
}

/// Puts `envelope` (a domain event as the relay publishes it) on a queue, as SNS raw delivery
/// does (the `type` attribute the subscriptions filter on).
pub async fn put_event(queue: &str, envelope: &Value) {
    let url = queues().get(queue).cloned().unwrap_or_else(|| panic!("queue {queue} in stack.json"));
    let event_type = envelope["type"].as_str().unwrap_or_default();
    sqs(
        "SendMessage",
        &json!({"QueueUrl": url, "MessageBody": envelope.to_string(),
                "MessageAttributes": {"type": {"DataType": "String", "StringValue": event_type}}}),
    )
    .await;
}

/// The outbox envelopes of `event_type` about `booking_id`, straight from the table.
pub async fn outbox_events(booking_id: &str, event_type: &str) -> Vec<Value> {
    scan_all(json!({
        "FilterExpression": "#t = :outbox AND event_type = :type AND contains(envelope, :booking)",
        "ExpressionAttributeNames": {"#t": "type"},
        "ExpressionAttributeValues": {":outbox": {"S": "outbox"}, ":type": {"S": event_type}, ":booking": {"S": booking_id}},
        "ConsistentRead": true
    }))
    .await
    .iter()
    .filter_map(|item| serde_json::from_str(item["envelope"]["S"].as_str()?).ok())
    .collect()
}

async fn scan_all(request: Value) -> Vec<Value> {
    paged("Scan", request).await
}

async fn paged(operation: &str, request: Value) -> Vec<Value> {
    let mut found = Vec::new();
    let mut start: Option<Value> = None;
    loop {
        let mut page_request = request.clone();
        if let Some(key) = start.take() {
            page_request["ExclusiveStartKey"] = key;
        }
        let page = dynamodb(operation, page_request).await;
        found.extend(page["Items"].as_array().cloned().unwrap_or_default());
        match page.get("LastEvaluatedKey") {
            Some(k) if !k.is_null() => start = Some(k.clone()),
            _ => return found,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stripe: what localstripe holds, and its events posted again
// ---------------------------------------------------------------------------------------------

/// Every object of a localstripe list (`/v1/payment_intents`, `/v1/events?type=...`), paged.
pub async fn stripe_list(path: &str, query: &[(&str, &str)]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1000 {
        let mut form: Vec<(&str, &str)> = query.to_vec();
        form.push(("limit", "100"));
        if let Some(a) = after.as_deref() {
            form.push(("starting_after", a));
        }
        let (status, page) = stripe(Method::GET, path, &form).await;
        assert_eq!(status, 200, "GET {path}: {page}");
        let data = page["data"].as_array().cloned().unwrap_or_default();
        after = data.last().and_then(|o| o["id"].as_str()).map(str::to_owned);
        out.extend(data);
        if page["has_more"] != true || after.is_none() {
            break;
        }
    }
    out
}

/// Plays Stripe's webhook retries: posts again, signed now, every event localstripe made about
/// these intents (payment successes, failures, refunds). Stripe retries an event until the
/// endpoint answers 2xx; localstripe sends it once, so an event the webhook refused under faults
/// (a 503 while SQS failed) would otherwise be lost. The same event id: the consumer must apply
/// it once. Returns how many were posted.
pub async fn replay_stripe_events(intents: &BTreeSet<String>, report: &mut Report) -> u64 {
    let secret = webhook_secret();
    let mut posted = 0;
    for event_type in ["payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"] {
        for event in stripe_list("/v1/events", &[("type", event_type)]).await {
            let object = &event["data"]["object"];
            let intent = object["payment_intent"].as_str().or_else(|| object["id"].as_str()).unwrap_or_default();
            if !intents.contains(intent) {
                continue;
            }
            let body = event.to_string();
            let mut status = 0;
            for _ in 0..8 {
                let header = signature(&secret, jiff::Timestamp::now().as_second(), &body);
                status = post_webhook(&body, Some(&header)).await.status().as_u16();
                if status == 200 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            report.check("webhook replay accepted", status == 200, || format!("{event_type} {intent}: {status}"));
            posted += 1;
        }
    }
    report.webhooks_replayed += posted;
    posted
}

// ---------------------------------------------------------------------------------------------
// Bookings and the sweep
// ---------------------------------------------------------------------------------------------

/// The booking item as stored (consistent).
async fn stored(booking_id: &str) -> Value {
    crate::fixtures::stored_booking(booking_id).await
}

fn attr<'a>(item: &'a Value, name: &str) -> Option<&'a str> {
    item[name]["S"].as_str()
}

/// Resolves the holds nobody paid for as time would: each such booking's hold is moved into the
/// past (the lapsed-hold fixture, `fixtures::lapse_hold`) and indexed for the sweep, then the
/// sweep runs through the runtime's invoke endpoint as its schedule does.
pub async fn lapse_unpaid_and_sweep(trips: &[Trip], report: &mut Report) {
    let past = crate::fixtures::minutes_ago(5);
    let instant = past.to_string();
    let date = past.to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
    let mut lapsed = Vec::new();
    for trip in trips.iter().filter(|t| t.paid_intent.is_none() && t.cancelled_refund.is_none()) {
        if attr(&stored(&trip.booking_id).await, "status") != Some("pending_payment") {
            continue;
        }
        crate::fixtures::lapse_hold(&trip.booking_id, &trip.listing_id, &trip.nights, &instant).await;
        dynamodb(
            "UpdateItem",
            json!({
                "Key": crate::fixtures::booking_key(&trip.booking_id),
                "UpdateExpression": "SET GSI3PK = :pk, GSI3SK = :sk",
                "ExpressionAttributeValues": {":pk": {"S": format!("SWEEP#{date}")},
                                              ":sk": {"S": format!("{instant}#{}", trip.booking_id)}}
            }),
        )
        .await;
        lapsed.push(trip.booking_id.clone());
    }
    // GSI3 is eventually consistent (and lags locally): wait until it shows every entry.
    for booking_id in &lapsed {
        let query = json!({
            "IndexName": "GSI3",
            "KeyConditionExpression": "GSI3PK = :pk AND GSI3SK = :sk",
            "ExpressionAttributeValues": {":pk": {"S": format!("SWEEP#{date}")}, ":sk": {"S": format!("{instant}#{booking_id}")}},
        });
        crate::until_indexed(|| dynamodb("Query", query.clone()), |page| page["Count"] == 1).await;
    }
    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let (outcome, summary) = Stack::get().invoke("BookingsSweepFunction", &event).await;
    report.check("sweep answers", outcome == "response", || format!("{outcome}: {summary}"));
    report.sweep = json!({"lapsed": lapsed.len(), "summary": summary});
}

// ---------------------------------------------------------------------------------------------
// The invariants
// ---------------------------------------------------------------------------------------------

/// Which (event type, recipient) inbox items a trip must have produced, from how it ended.
fn expected_notifications(trip: &Trip, status: &str, refund: i64) -> Vec<(&'static str, bool)> {
    // (type, to the host?) pairs; the guest otherwise.
    let mut out = Vec::new();
    if trip.paid_intent.is_some() && matches!(status, "confirmed" | "cancelled") {
        out.extend([("booking.confirmed", false), ("booking.confirmed", true)]);
    }
    if status == "cancelled" {
        out.extend([("booking.cancelled", false), ("booking.cancelled", true)]);
        if refund > 0 {
            out.push(("refund.issued", false));
        }
    }
    if status == "expired" {
        out.push(("booking.expired", false));
    }
    out
}

/// The subject of the e-mail of an event type, to the guest or the host
/// (functions/notifications/src/templates.rs).
fn subject(event_type: &str, to_host: bool) -> &'static str {
    match (event_type, to_host) {
        ("booking.confirmed", false) => "Your booking is confirmed",
        ("booking.confirmed", true) => "New confirmed booking",
        ("booking.cancelled", false) => "Your booking was cancelled",
        ("booking.cancelled", true) => "A booking was cancelled",
        ("booking.expired", _) => "Your booking hold expired",
        ("refund.issued", _) => "Your refund is on its way",
        _ => "?",
    }
}

/// A person's inbox items about `booking_id`, straight from the table: (type, e-mail status).
async fn inbox_items(user_id: &str, booking_id: &str) -> Vec<(String, String)> {
    paged(
        "Query",
        json!({
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :n)",
            "FilterExpression": "booking_id = :b",
            "ExpressionAttributeValues": {":pk": {"S": format!("INBOX#{user_id}")}, ":n": {"S": "NOTIFICATION#"},
                                          ":b": {"S": booking_id}},
            "ConsistentRead": true
        }),
    )
    .await
    .iter()
    .map(|i| {
        (
            attr(i, "notification_type").unwrap_or("?").to_owned(),
            i["email"]["M"]["status"]["S"].as_str().unwrap_or("?").to_owned(),
        )
    })
    .collect()
}

/// How the run's trips must end up, checked after the faults stopped: the Stripe events played
/// again, the queues drained, unpaid holds lapsed and swept, the DLQs redriven. `allowed_duplicate_mails`:
/// SES answers the proxy held back (each may make one e-mail twice: SES sent it, the sender could
/// not know). `patience`: how long asynchronous effects may take to show.
pub async fn check(trips: &[Trip], allowed_duplicate_mails: u64, patience: Duration) -> Report {
    let mut report = Report::default();
    let intents: BTreeSet<String> = trips.iter().filter_map(|t| t.paid_intent.clone()).collect();
    replay_stripe_events(&intents, &mut report).await;
    report.check("queues drained", drain(patience).await, || "the queues never emptied".into());
    lapse_unpaid_and_sweep(trips, &mut report).await;
    report.check("queues drained after the sweep", drain(patience).await, || "the queues never emptied".into());

    // The DLQs: what the run's messages left there is moved back once, and applied once.
    let ids: Vec<String> =
        trips.iter().flat_map(|t| [Some(t.booking_id.clone()), t.paid_intent.clone()]).flatten().collect();
    let ours = |body: &str| ids.iter().any(|id| body.contains(id.as_str()));
    for name in queues().keys().filter(|n| n.ends_with("DLQ")) {
        report.redriven += redrive(name, ours).await;
    }
    if report.redriven > 0 {
        report.check("queues drained after the redrive", drain(patience).await, || "the queues never emptied".into());
    }
    for (name, url) in queues() {
        if is_dead_letter(&name) {
            let left: Vec<String> = messages(&url, 0)
                .await
                .iter()
                .filter_map(|m| m["Body"].as_str().map(str::to_owned))
                .filter(|b| ours(b))
                .collect();
            report.check("DLQ holds none of the run's messages", left.is_empty(), || format!("{name}: {left:?}"));
        }
    }

    // Wait (bounded) until every paid trip has its confirmation and every refund settled.
    let settled_by = Instant::now() + patience;
    let mut statuses = BTreeMap::new();
    for trip in trips {
        loop {
            let item = stored(&trip.booking_id).await;
            let status = attr(&item, "status").unwrap_or("missing").to_owned();
            let refund_status = item["refund"]["M"]["status"]["S"].as_str().unwrap_or("none").to_owned();
            let waiting = (trip.paid_intent.is_some() && status == "pending_payment")
                || (status == "cancelled" && refund_status == "pending");
            if !waiting || Instant::now() > settled_by {
                statuses.insert(trip.booking_id.clone(), (status, item));
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    for (status, _) in statuses.values() {
        *report.final_status.entry(status.clone()).or_default() += 1;
    }

    // No booking stuck: every trip ended confirmed, cancelled or expired.
    for trip in trips {
        let status = &statuses[&trip.booking_id].0;
        report.check("no booking stuck", matches!(status.as_str(), "confirmed" | "cancelled" | "expired"), || {
            format!("{} is {status} (paid: {:?})", trip.booking_id, trip.paid_intent)
        });
    }

    check_nights(trips, &statuses, &mut report).await;
    check_money(trips, &statuses, &mut report).await;
    check_notifications(trips, &statuses, allowed_duplicate_mails, patience, &mut report).await;
    report
}

/// Every night is held by at most one booking, and only by a live one; a confirmed booking holds
/// each of its nights, `booked`.
async fn check_nights(trips: &[Trip], statuses: &BTreeMap<String, (String, Value)>, report: &mut Report) {
    let listings: BTreeSet<&str> = trips.iter().map(|t| t.listing_id.as_str()).collect();
    for listing_id in listings {
        let nights = crate::night_items(listing_id).await;
        let mut holder_of: BTreeMap<&str, &str> = BTreeMap::new();
        for (date, kind, holder) in &nights {
            let Some(holder) = holder.as_deref() else { continue };
            holder_of.insert(date.as_str(), holder);
            let status = statuses.get(holder).map(|(s, _)| s.as_str()).unwrap_or("unknown");
            report.check("a night is held only by a live booking", status == "confirmed" && kind == "booked", || {
                format!("{listing_id} {date}: {kind} by {holder}, which is {status}")
            });
        }
        // Two confirmed trips on one night would be a double booking, whatever the items say.
        let mut confirmed_on: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for trip in trips.iter().filter(|t| t.listing_id == listing_id) {
            if statuses[&trip.booking_id].0 != "confirmed" {
                continue;
            }
            for night in &trip.nights {
                confirmed_on.entry(night.as_str()).or_default().push(&trip.booking_id);
                report.check(
                    "a confirmed booking holds its nights",
                    holder_of.get(night.as_str()) == Some(&trip.booking_id.as_str()),
                    || format!("{listing_id} {night}: {:?}, not {}", holder_of.get(night.as_str()), trip.booking_id),
                );
            }
        }
        for (night, holders) in confirmed_on {
            report.check("a night is held by at most one booking", holders.len() <= 1, || {
                format!("{listing_id} {night}: {holders:?}")
            });
        }
    }
}

/// Every confirmed booking was paid exactly once; refunds are the policy's due, never more than
/// paid, equal at Stripe and in the booking.
async fn check_money(trips: &[Trip], statuses: &BTreeMap<String, (String, Value)>, report: &mut Report) {
    let ours: BTreeSet<&str> = trips.iter().map(|t| t.booking_id.as_str()).collect();
    let mut succeeded: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for intent in stripe_list("/v1/payment_intents", &[]).await {
        let booking = intent["metadata"]["booking_id"].as_str().unwrap_or_default().to_owned();
        if ours.contains(booking.as_str()) && intent["status"] == "succeeded" {
            succeeded.entry(booking).or_default().push(intent);
        }
    }
    let charges = stripe_list("/v1/charges", &[]).await;
    for trip in trips {
        let (status, item) = &statuses[&trip.booking_id];
        let paid = succeeded.get(&trip.booking_id).cloned().unwrap_or_default();
        let must_be_paid = status == "confirmed" || (status == "cancelled" && trip.paid_intent.is_some());
        report.check("a confirmed booking is paid exactly once", paid.len() == usize::from(must_be_paid), || {
            format!("{} ({status}): {} succeeded intents", trip.booking_id, paid.len())
        });
        let intent_ids: BTreeSet<&str> = paid.iter().filter_map(|i| i["id"].as_str()).collect();
        let charged: Vec<&Value> = charges
            .iter()
            .filter(|c| {
                c["status"] == "succeeded" && c["payment_intent"].as_str().is_some_and(|p| intent_ids.contains(p))
            })
            .collect();
        report.check("one successful charge per paid booking", charged.len() == usize::from(must_be_paid), || {
            format!("{}: {} charges", trip.booking_id, charged.len())
        });
        let paid_amount: i64 = paid.iter().filter_map(|i| i["amount"].as_i64()).sum();
        let mut refunded = 0;
        for intent in &intent_ids {
            let (code, list) = stripe(Method::GET, "/v1/refunds", &[("payment_intent", intent)]).await;
            if code == 200 {
                refunded += list["data"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r["status"] == "succeeded")
                    .filter_map(|r| r["amount"].as_i64())
                    .sum::<i64>();
            }
        }
        let stored_refund =
            item["refund"]["M"]["amount"]["N"].as_str().and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
        let owed = if status == "cancelled" { trip.cancelled_refund.unwrap_or(0) } else { 0 };
        report.check("refunds never exceed what was paid", refunded <= paid_amount, || {
            format!("{}: refunded {refunded} of {paid_amount}", trip.booking_id)
        });
        report.check("the refund at Stripe is what the policy owes", refunded == owed, || {
            format!("{} ({status}): Stripe refunded {refunded}, the cancellation owed {owed}", trip.booking_id)
        });
        if status == "cancelled" {
            report.check("the stored refund is what the policy owes", stored_refund == owed, || {
                format!("{}: stored {stored_refund}, owed {owed}", trip.booking_id)
            });
        }
    }
}

/// Every notification reached each person once: one inbox item per (event, person), its e-mail
/// sent; SES's record has each e-mail once (more only as SES answers were held back).
async fn check_notifications(
    trips: &[Trip],
    statuses: &BTreeMap<String, (String, Value)>,
    allowed_duplicate_mails: u64,
    patience: Duration,
    report: &mut Report,
) {
    let deadline = Instant::now() + patience;
    let mut duplicates = 0;
    for trip in trips {
        let (status, item) = &statuses[&trip.booking_id];
        let refund = item["refund"]["M"]["amount"]["N"].as_str().and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
        let expected = expected_notifications(trip, status, refund);
        for person in [&trip.guest, &trip.host] {
            let to_host = person.user_id == trip.host.user_id;
            let mut want: BTreeMap<&str, usize> = BTreeMap::new();
            for (event_type, host) in &expected {
                if *host == to_host {
                    *want.entry(event_type).or_default() += 1;
                }
            }
            // The stream and the queue are asynchronous: poll until every expected item is
            // there (bounded), then count.
            let items = loop {
                let items = inbox_items(&person.user_id, &trip.booking_id).await;
                let done = want.keys().all(|t| items.iter().any(|(got, email)| got == t && email == "sent"));
                if done || Instant::now() > deadline {
                    break items;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            };
            let mut got: BTreeMap<&str, usize> = BTreeMap::new();
            for (event_type, _) in &items {
                *got.entry(event_type.as_str()).or_default() += 1;
            }
            report.check("one inbox item per event and person", got == want, || {
                format!("{} to {}: {got:?}, expected {want:?}", trip.booking_id, person.name)
            });
            let unsent: Vec<&(String, String)> = items.iter().filter(|(_, email)| email != "sent").collect();
            report.check("every e-mail sent", unsent.is_empty(), || {
                format!("{} to {}: {unsent:?}", trip.booking_id, person.name)
            });
        }
    }
    let mail = sent_mail().await;
    for trip in trips {
        let (status, item) = &statuses[&trip.booking_id];
        let refund = item["refund"]["M"]["amount"]["N"].as_str().and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
        let reference = format!("Booking reference: {}", trip.booking_id);
        for (event_type, to_host) in expected_notifications(trip, status, refund) {
            let person = if to_host { &trip.host } else { &trip.guest };
            let subject = subject(event_type, to_host);
            let copies = mail
                .iter()
                .filter(|m| crate::fixtures::sent_to(m, &person.email))
                .filter(|m| m["subject"] == subject && m.to_string().contains(&reference))
                .count();
            report.check("every e-mail reached SES", copies >= 1, || {
                format!("{subject:?} to {} about {}", person.name, trip.booking_id)
            });
            duplicates += copies.saturating_sub(1) as u64;
        }
    }
    report.duplicate_mails = duplicates;
    report.check("e-mails once (more only as SES answers were lost)", duplicates <= allowed_duplicate_mails, || {
        format!("{duplicates} duplicate e-mails, {allowed_duplicate_mails} SES answers held back")
    });
}

/// A person's view of a booking (for journeys): `GET /v1/bookings/{id}` as JSON.
pub async fn booking_view(user: &User, booking_id: &str) -> Value {
    json_of(user.api().booking(booking_id).await, 200).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_queues_are_told_apart_and_mapped_to_their_queue() {
        assert!(is_dead_letter("roost-NotificationsDLQ"));
        assert!(is_dead_letter("roost-EventsRelayFailuresQueue"));
        assert!(!is_dead_letter("roost-PaymentEventsQueue"));
        assert_eq!(main_queue_of("roost-PaymentEventsDLQ").as_deref(), Some("roost-PaymentEventsQueue"));
        assert_eq!(main_queue_of("roost-PaymentEventsQueue"), None);
    }

    #[test]
    fn a_violation_is_recorded_with_its_check() {
        let mut report = Report::default();
        report.check("x", true, || unreachable!("not built when it holds"));
        report.check("x", false, || "broken".into());
        assert_eq!(report.checked["x"], 2);
        assert_eq!(report.violations, ["x: broken"]);
    }
}
