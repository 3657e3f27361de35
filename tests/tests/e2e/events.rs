//! The domain-event backbone end to end, against the stack's moto and its running events-relay:
//! a transaction that commits puts exactly one copy of its event on every queue whose filter
//! wants it (and none elsewhere); a transaction that loses a race emits nothing; an event the
//! relay publishes twice is applied once by an idempotent consumer.
//!
//! Reading the consumers' own queues would race their functions once payment-events and
//! notifications exist, so each test reads **probe queues**: its own SQS queues, subscribed to
//! the topic with the filter policy and raw delivery of each real subscription (copied from
//! moto, so the template's policies are what is tested). A probe sees exactly what its real queue
//! is sent. The relay processes the stream in order, one batch at a time, and moto's SNS delivers
//! during `Publish`, so once a later "sentinel" event is on a probe, everything committed before
//! it has been delivered: "nothing else arrived" is checked without sleeping.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use roost_e2e::{Stack, join_all, sns, table, topic_arn, unique};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::Money;
use shared::events::{
    BookingCancelled, BookingConfirmed, BookingCreated, BookingExpired, CancelledBy, Envelope, EventData, OutboxItem,
    outbox_key, outbox_put,
};
use shared::keys::Key;
use shared::sqs::{self, Once, Received};
use shared::table::{Expr, Table};

const WAIT: Duration = Duration::from_secs(30);
const RELAY: &str = "EventsRelayFunction";
const PAYMENT_EVENTS_QUEUE: &str = "roost-PaymentEventsQueue";
const NOTIFICATIONS_QUEUE: &str = "roost-NotificationsQueue";

async fn sqs_call(action: &str, body: Value) -> Value {
    roost_e2e::sqs(action, &body).await
}

/// One real subscription of the topic, as moto holds it.
#[derive(Debug)]
struct Subscription {
    queue: String,
    filter_policy: Value,
    raw: String,
}

async fn real_subscriptions() -> Vec<Subscription> {
    let stack = Stack::get();
    let real_queues: BTreeSet<String> =
        stack.rest["queues"].as_object().expect("queues in stack.json").keys().cloned().collect();
    let sns = sns();
    let mut out = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn())
            .set_next_token(next.take())
            .send()
            .await
            .expect("ListSubscriptionsByTopic");
        for sub in page.subscriptions() {
            let queue = sub.endpoint().unwrap_or_default().rsplit(':').next().unwrap_or_default().to_string();
            if !real_queues.contains(&queue) {
                continue; // another test's probe
            }
            let attributes = sns
                .get_subscription_attributes()
                .subscription_arn(sub.subscription_arn().unwrap_or_default())
                .send()
                .await
                .expect("GetSubscriptionAttributes");
            let attributes = attributes.attributes().cloned().unwrap_or_default();
            let filter_policy = attributes
                .get("FilterPolicy")
                .map(|p| serde_json::from_str(p).expect("filter policy is JSON"))
                .unwrap_or(Value::Null);
            out.push(Subscription {
                queue,
                filter_policy,
                raw: attributes.get("RawMessageDelivery").cloned().unwrap_or_default(),
            });
        }
        match page.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_string()),
            _ => break,
        }
    }
    out.sort_by(|a, b| a.queue.cmp(&b.queue));
    out
}

/// A message as a consumer's queue receives it.
#[derive(Debug, Clone)]
struct Delivered {
    message: Value,
    body: String,
    event_id: String,
    type_attribute: Option<String>,
}

/// A test's own queue, subscribed like one real queue.
struct Probe {
    mirrors: String,
    url: String,
    /// Removes the queue and its subscription however the test ends.
    _guard: roost_e2e::probe::ProbeGuard,
}

struct Probes(Vec<Probe>);

impl Probes {
    /// One probe per real subscription of the domain-events topic, with its filter policy.
    async fn mirror_real_subscriptions() -> Probes {
        let sns = sns();
        let tag = unique("p");
        let mut probes = Vec::new();
        for sub in real_subscriptions().await {
            let name = format!("probe-{tag}-{}", sub.queue);
            let url = sqs_call("CreateQueue", json!({"QueueName": name})).await["QueueUrl"]
                .as_str()
                .expect("QueueUrl")
                .to_string();
            let arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
            let mut subscribe = sns
                .subscribe()
                .topic_arn(topic_arn())
                .protocol("sqs")
                .endpoint(arn)
                .attributes("RawMessageDelivery", sub.raw.clone())
                .return_subscription_arn(true);
            if !sub.filter_policy.is_null() {
                subscribe = subscribe.attributes("FilterPolicy", sub.filter_policy.to_string());
            }
            let subscription_arn =
                subscribe.send().await.expect("Subscribe").subscription_arn().unwrap_or_default().to_string();
            let guard = roost_e2e::probe::ProbeGuard::new(&url, subscription_arn);
            probes.push(Probe { mirrors: sub.queue, url, _guard: guard });
        }
        let mirrored: Vec<&str> = probes.iter().map(|p| p.mirrors.as_str()).collect();
        assert!(
            mirrored.contains(&PAYMENT_EVENTS_QUEUE) && mirrored.contains(&NOTIFICATIONS_QUEUE),
            "both consumer queues are subscribed to the topic: {mirrored:?}"
        );
        Probes(probes)
    }

    /// Receives (and deletes) every message on every probe until `sentinel` has arrived on each
    /// probe whose filter wants it, then drains what is left. Returns this test's messages (those
    /// whose event id is in `ours`) per mirrored queue, in arrival order.
    async fn collect_until(
        &self,
        sentinel: &str,
        sentinel_on: &[&str],
        ours: &BTreeSet<String>,
    ) -> BTreeMap<String, Vec<Delivered>> {
        let mut got: BTreeMap<String, Vec<Delivered>> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        for probe in &self.0 {
            let mine = got.entry(probe.mirrors.clone()).or_default();
            let mut seen_sentinel = !sentinel_on.contains(&probe.mirrors.as_str());
            loop {
                let batch = receive(&probe.url, if seen_sentinel { 0 } else { 1 }).await;
                if batch.is_empty() && seen_sentinel {
                    break;
                }
                for delivered in batch {
                    seen_sentinel |= delivered.event_id == sentinel;
                    if ours.contains(&delivered.event_id) {
                        mine.push(delivered);
                    }
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "sentinel {sentinel} not on the probe of {} within {WAIT:?}; got {:?}\nrelay log:\n{}",
                    probe.mirrors,
                    mine.iter().map(|d| &d.event_id).collect::<Vec<_>>(),
                    relay_log_tail()
                );
            }
        }
        got
    }

    /// Removes the probes now (their guards would at the end of the test anyway).
    async fn close(self) {
        drop(self);
    }
}

async fn receive(url: &str, wait_seconds: u32) -> Vec<Delivered> {
    let out = sqs_call(
        "ReceiveMessage",
        json!({
            "QueueUrl": url,
            "MaxNumberOfMessages": 10,
            "WaitTimeSeconds": wait_seconds,
            "MessageAttributeNames": ["All"],
            "MessageSystemAttributeNames": ["All"],
        }),
    )
    .await;
    let messages = out.get("Messages").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut delivered = Vec::new();
    for message in messages {
        sqs_call("DeleteMessage", json!({"QueueUrl": url, "ReceiptHandle": message["ReceiptHandle"]})).await;
        let body = message["Body"].as_str().expect("Body").to_string();
        let envelope = Envelope::from_json(&body)
            .unwrap_or_else(|e| panic!("raw delivery: the body is the envelope: {e}: {body}"));
        delivered.push(Delivered {
            type_attribute: message
                .pointer("/MessageAttributes/type/StringValue")
                .and_then(Value::as_str)
                .map(String::from),
            event_id: envelope.id,
            body,
            message,
        });
    }
    delivered
}

fn relay_log_tail() -> String {
    let log = Stack::get().function_log(RELAY);
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The relay's "event published" log lines for `event_id`.
fn published_lines(event_id: &str) -> usize {
    Stack::get()
        .function_log(RELAY)
        .lines()
        .filter(|l| l.contains("\"event published\"") && l.contains(&format!("\"event_id\":\"{event_id}\"")))
        .count()
}

/// Waits (bounded) until the relay logged `count` publications of `event_id`.
async fn wait_published(event_id: &str, count: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while published_lines(event_id) < count {
        assert!(tokio::time::Instant::now() < deadline, "relay never logged {event_id}:\n{}", relay_log_tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A stand-in for a context's state item (a booking), written with its event.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    #[serde(flatten)]
    key: Key,
    #[serde(rename = "type")]
    item_type: String,
    status: String,
}

fn state(key: &Key, status: &str) -> State {
    State { key: key.clone(), item_type: "e2e_state".into(), status: status.into() }
}

fn eur(amount: i64) -> Money {
    Money::parse(amount, "EUR").expect("money")
}

fn cancelled(booking_id: &str) -> Envelope<BookingCancelled> {
    Envelope::new(
        BookingCancelled {
            booking_id: booking_id.into(),
            listing_id: "lst_e2e".into(),
            guest_id: "guest-e2e".into(),
            host_id: "host-e2e".into(),
            cancelled_by: CancelledBy::Guest,
            refund_due: eur(24_300),
        },
        jiff::Timestamp::now(),
    )
}

fn expired(booking_id: &str) -> Envelope<BookingExpired> {
    Envelope::new(
        BookingExpired {
            booking_id: booking_id.into(),
            listing_id: "lst_e2e".into(),
            guest_id: "guest-e2e".into(),
            host_id: "host-e2e".into(),
        },
        jiff::Timestamp::now(),
    )
}

/// Commits a change of its own with `event` (the sentinel that closes a test's window).
async fn commit_alone<T: EventData>(table: &Table, event: &Envelope<T>) {
    let key = Key::new(format!("E2E#{}", event.id), "STATE");
    table
        .transact(vec![table.tx_put_new(&state(&key, "done")).expect("put"), outbox_put(table, event).expect("outbox")])
        .await
        .expect("sentinel transaction");
}

/// The event ids delivered, sorted.
fn ids(delivered: &[Delivered]) -> Vec<&str> {
    let mut ids: Vec<&str> = delivered.iter().map(|d| d.event_id.as_str()).collect();
    ids.sort();
    ids
}

fn sorted<'a>(ids: impl IntoIterator<Item = &'a String>) -> Vec<&'a str> {
    let mut ids: Vec<&str> = ids.into_iter().map(String::as_str).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn the_template_subscribes_each_consumer_queue_with_its_filter_and_raw_delivery() {
    roost_e2e::needs_stack!();
    let subs = real_subscriptions().await;
    let by_queue: BTreeMap<&str, &Subscription> = subs.iter().map(|s| (s.queue.as_str(), s)).collect();
    let types = |queue: &str| -> BTreeSet<String> {
        let sub = by_queue.get(queue).unwrap_or_else(|| panic!("{queue} is subscribed: {subs:?}"));
        assert_eq!(sub.raw, "true", "{queue}: raw delivery, so the body is the envelope");
        sub.filter_policy["type"]
            .as_array()
            .unwrap_or_else(|| panic!("{queue}: filter on the type attribute: {}", sub.filter_policy))
            .iter()
            .map(|v| v.as_str().expect("type name").to_string())
            .collect()
    };
    let set = |names: &[&str]| names.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        types(PAYMENT_EVENTS_QUEUE),
        set(&["booking.cancelled", "booking.expired", "booking.accepted", "booking.declined"])
    );
    assert_eq!(
        types(NOTIFICATIONS_QUEUE),
        set(&[
            "booking.confirmed",
            "booking.cancelled",
            "booking.expired",
            "booking.requested",
            "booking.accepted",
            "booking.declined",
            "payment.failed",
            "calendar.conflict",
            "refund.issued",
            "review.posted",
            "message.posted"
        ])
    );
}

#[tokio::test]
async fn a_committed_change_puts_exactly_one_event_on_each_subscribed_queue() {
    roost_e2e::needs_stack!();
    let probes = Probes::mirror_real_subscriptions().await;
    let table = table();
    let booking = unique("bkg_e2e");
    let key = Key::new(format!("E2E#{booking}"), "STATE");

    // Three state changes, each with its event in the same transaction.
    let created = Envelope::new(
        BookingCreated {
            booking_id: booking.clone(),
            listing_id: "lst_e2e".into(),
            guest_id: "guest-e2e".into(),
            host_id: "host-e2e".into(),
            check_in: "2026-12-18".parse().expect("date"),
            check_out: "2026-12-21".parse().expect("date"),
            total: eur(48_600),
            hold_expires_at: jiff::Timestamp::now(),
        },
        jiff::Timestamp::now(),
    );
    table
        .transact(vec![
            table.tx_put_new(&state(&key, "pending_payment")).expect("put"),
            outbox_put(&table, &created).expect("outbox"),
        ])
        .await
        .expect("create");
    let confirmed = Envelope::new(
        BookingConfirmed {
            booking_id: booking.clone(),
            listing_id: "lst_e2e".into(),
            guest_id: "guest-e2e".into(),
            host_id: "host-e2e".into(),
            check_in: "2026-12-18".parse().expect("date"),
            check_out: "2026-12-21".parse().expect("date"),
            amount_paid: eur(48_600),
            payment_intent_id: "pi_e2e".into(),
        },
        jiff::Timestamp::now(),
    );
    let set_status = |status: &str| Expr::new("SET #s = :s").name("#s", "status").s(":s", status);
    let was = |status: &str| Expr::new("#s = :was").name("#s", "status").s(":was", status);
    table
        .transact(vec![
            table.tx_update(&key, &set_status("confirmed"), Some(&was("pending_payment"))).expect("update"),
            outbox_put(&table, &confirmed).expect("outbox"),
        ])
        .await
        .expect("confirm");
    let cancelled = cancelled(&booking);
    table
        .transact(vec![
            table.tx_update(&key, &set_status("cancelled"), Some(&was("confirmed"))).expect("update"),
            outbox_put(&table, &cancelled).expect("outbox"),
        ])
        .await
        .expect("cancel");
    let sentinel = expired(&unique("bkg_sentinel"));
    commit_alone(&table, &sentinel).await;

    let ours: BTreeSet<String> =
        [&created.id, &confirmed.id, &cancelled.id, &sentinel.id].into_iter().cloned().collect();
    let got = probes.collect_until(&sentinel.id, &[PAYMENT_EVENTS_QUEUE, NOTIFICATIONS_QUEUE], &ours).await;

    // payment-events wants cancelled and expired; notifications everything but created. (SQS
    // standard queues do not promise order, so the sets are compared.)
    assert_eq!(ids(&got[PAYMENT_EVENTS_QUEUE]), sorted([&cancelled.id, &sentinel.id]));
    assert_eq!(ids(&got[NOTIFICATIONS_QUEUE]), sorted([&confirmed.id, &cancelled.id, &sentinel.id]));
    for queue in [PAYMENT_EVENTS_QUEUE, NOTIFICATIONS_QUEUE] {
        let message = got[queue].iter().find(|d| d.event_id == cancelled.id).expect("cancelled");
        assert_eq!(message.body, cancelled.to_json().expect("json"), "{queue}: the envelope, byte for byte");
        assert_eq!(message.type_attribute.as_deref(), Some("booking.cancelled"), "{queue}: {}", message.message);
        let back = Envelope::from_json(&message.body).expect("envelope").decode::<BookingCancelled>().expect("typed");
        assert_eq!(back.data.refund_due, eur(24_300));
    }
    // booking.created has no subscriber yet: the relay published it, no queue got it.
    for event in [&created.id, &confirmed.id, &cancelled.id, &sentinel.id] {
        wait_published(event, 1).await;
        assert_eq!(published_lines(event), 1, "published once: {event}");
    }
    probes.close().await;
}

#[tokio::test]
async fn a_transaction_that_loses_a_race_emits_nothing() {
    roost_e2e::needs_stack!();
    let probes = Probes::mirror_real_subscriptions().await;
    let table = table();
    let booking = unique("bkg_race");
    let key = Key::new(format!("E2E#{booking}"), "STATE");
    const CONTENDERS: usize = 6;
    let events: Vec<Envelope<BookingCancelled>> = (0..CONTENDERS).map(|_| cancelled(&booking)).collect();

    // Every contender writes the same new state item with its own event: one may win.
    let outcomes = join_all(events.iter().cloned().map(|event| {
        let (table, key) = (table.clone(), key.clone());
        async move {
            let items = vec![
                table.tx_put_new(&state(&key, &event.id)).expect("put"),
                outbox_put(&table, &event).expect("outbox"),
            ];
            table.transact(items).await.map_err(|e| e.failed_items())
        }
    }))
    .await;
    let winners: Vec<usize> = outcomes.iter().enumerate().filter(|(_, o)| o.is_ok()).map(|(i, _)| i).collect();
    assert_eq!(winners.len(), 1, "exactly one contender commits: {outcomes:?}");
    for (i, outcome) in outcomes.iter().enumerate() {
        if let Err(failed) = outcome {
            assert_eq!(failed, &vec![0], "contender {i} lost on the state item's condition, not the outbox's");
        }
    }
    let winner = &events[winners[0]];
    let losers: Vec<&Envelope<BookingCancelled>> = events.iter().filter(|e| e.id != winner.id).collect();

    let sentinel = cancelled(&unique("bkg_sentinel"));
    commit_alone(&table, &sentinel).await;
    let ours: BTreeSet<String> = events.iter().map(|e| e.id.clone()).chain([sentinel.id.clone()]).collect();
    let got = probes.collect_until(&sentinel.id, &[PAYMENT_EVENTS_QUEUE, NOTIFICATIONS_QUEUE], &ours).await;
    for queue in [PAYMENT_EVENTS_QUEUE, NOTIFICATIONS_QUEUE] {
        assert_eq!(ids(&got[queue]), sorted([&winner.id, &sentinel.id]), "{queue}: the winner's event only");
    }

    let stored: Option<OutboxItem> = table.get(&outbox_key(&winner.id)).await.expect("get");
    assert!(stored.is_some(), "the winner's outbox item");
    for loser in &losers {
        let stored: Option<OutboxItem> = table.get(&outbox_key(&loser.id)).await.expect("get");
        assert!(stored.is_none(), "a losing transaction leaves no outbox item");
        assert_eq!(published_lines(&loser.id), 0, "the relay never saw {}", loser.id);
        assert!(!Stack::get().function_log(RELAY).contains(&loser.id), "no stream record of a cancelled transaction");
    }
    wait_published(&winner.id, 1).await;
    assert_eq!(published_lines(&winner.id), 1);
    probes.close().await;
}

#[derive(Debug, Deserialize)]
struct Counter {
    n: i64,
}

/// A consumer as payment-events and notifications will be: `run_batch` over the SQS event
/// Lambda would deliver, `apply_once` of the effect (a counter) per (event id, consumer).
async fn consume(table: &Table, consumer: &str, counter: &Key, delivered: &[Delivered]) -> Vec<Once> {
    let records: Vec<Value> = delivered
        .iter()
        .map(|d| {
            json!({
                "messageId": d.message["MessageId"],
                "receiptHandle": d.message["ReceiptHandle"],
                "body": d.body,
                "attributes": d.message.get("Attributes").cloned().unwrap_or(json!({})),
                "messageAttributes": {"type": {"stringValue": d.type_attribute, "dataType": "String",
                    "stringListValues": [], "binaryListValues": []}},
                "eventSource": "aws:sqs",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    let outcomes = std::sync::Mutex::new(Vec::new());
    let response = sqs::run_batch(
        serde_json::from_value(json!({ "Records": records })).expect("SQS event"),
        sqs::DEFAULT_CONCURRENCY,
        |m: Received<Envelope>| {
            let outcomes = &outcomes;
            async move {
                let event = m.body.decode::<BookingCancelled>()?;
                let add = Expr::new("ADD #n :one").name("#n", "n").n(":one", 1);
                let effect = vec![table.tx_update(counter, &add, None)?];
                let once = sqs::apply_once(table, &event.id, consumer, jiff::Timestamp::now(), effect).await?;
                outcomes.lock().expect("lock").push(once);
                Ok::<_, anyhow::Error>(())
            }
        },
    )
    .await
    .expect("batch");
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    outcomes.into_inner().expect("lock")
}

#[tokio::test]
async fn an_event_the_relay_publishes_twice_is_applied_once() {
    roost_e2e::needs_stack!();
    let probes = Probes::mirror_real_subscriptions().await;
    let table = table();
    let booking = unique("bkg_twice");
    let key = Key::new(format!("E2E#{booking}"), "STATE");
    let counter = Key::new(format!("E2E#{booking}"), "COUNTER");
    let consumer = unique("e2e-consumer-");
    let event = cancelled(&booking);
    table
        .transact(vec![
            table.tx_put_new(&state(&key, "cancelled")).expect("put"),
            outbox_put(&table, &event).expect("outbox"),
        ])
        .await
        .expect("cancel");
    let ours = BTreeSet::from([event.id.clone()]);
    let first = probes.collect_until(&event.id, &[NOTIFICATIONS_QUEUE], &ours).await;
    assert_eq!(ids(&first[NOTIFICATIONS_QUEUE]), [event.id.as_str()]);
    assert_eq!(consume(&table, &consumer, &counter, &first[NOTIFICATIONS_QUEUE]).await, [Once::Applied]);

    // A real redelivery: the outbox item is inserted again (an operator's replay, or the stream
    // retrying a batch), so the relay publishes the same event, same id, a second time.
    let item: OutboxItem = table.get(&outbox_key(&event.id)).await.expect("get").expect("outbox item");
    table.delete(&item.key, None).await.expect("delete");
    table.put(&item).await.expect("re-insert");
    let second = probes.collect_until(&event.id, &[NOTIFICATIONS_QUEUE], &ours).await;
    assert_eq!(ids(&second[NOTIFICATIONS_QUEUE]), [event.id.as_str()], "the same event, delivered again");
    assert_eq!(second[NOTIFICATIONS_QUEUE][0].body, first[NOTIFICATIONS_QUEUE][0].body);
    wait_published(&event.id, 2).await;

    // The second delivery, and both at once, change nothing.
    assert_eq!(consume(&table, &consumer, &counter, &second[NOTIFICATIONS_QUEUE]).await, [Once::Duplicate]);
    let both: Vec<Delivered> = first[NOTIFICATIONS_QUEUE].iter().chain(&second[NOTIFICATIONS_QUEUE]).cloned().collect();
    assert_eq!(consume(&table, &consumer, &counter, &both).await, [Once::Duplicate, Once::Duplicate]);
    let count: Counter = table.get(&counter).await.expect("get").expect("counter");
    assert_eq!(count.n, 1, "the effect happened once");
    let receipt: Option<sqs::Receipt> = table.get(&sqs::receipt_key(&event.id, &consumer)).await.expect("get");
    assert!(receipt.is_some_and(|r| r.consumer == consumer));

    // Another consumer of the same event is not affected by this one's receipt.
    let other = unique("e2e-other-");
    let other_counter = Key::new(format!("E2E#{booking}"), "COUNTER2");
    assert_eq!(consume(&table, &other, &other_counter, &second[NOTIFICATIONS_QUEUE]).await, [Once::Applied]);
    probes.close().await;
}
