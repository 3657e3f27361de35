//! Delivery as AWS does it (issue 24, items 1 and 2), against the stack:
//! - a stream record the relay always fails on is retried `MaximumRetryAttempts` times, isolated
//!   by `BisectBatchOnFunctionError`, and its coordinates land in `EventsRelayFailuresQueue` in
//!   the shape Lambda sends; later events still flow; the replay procedure of
//!   docs/operations.md (`cargo roost replay-stream-failures`) publishes it after the fix-up;
//! - in chaotic delivery (`cargo roost test`'s default) SQS messages really arrive twice and
//!   shuffled and stream records out of sequence order, counted at `/metrics`, and a consumer
//!   still applies an event once; in ordered delivery those counters never move.
//!
//! Every wait is a bounded poll.

use std::time::Duration;

use roost_e2e::api::Cancel;
use roost_e2e::fixtures::{sent_mail, wait_for_inbox};
use roost_e2e::{Stack, User, dynamodb, eventually_for, join_all, json_of, moto_json, sqs, unique};
use serde_json::{Value, json};
use shared::events::{BookingCreated, BookingExpired, Envelope, outbox_put};
use shared::money::Money;

use super::notifications::{booking, deliver, ntf_id};

const RELAY: &str = "EventsRelayFunction";
const NOTIFICATIONS: &str = "NotificationsFunction";
/// 101 failed invocations at 10 ms apart, on a loaded machine, and the bisections before them.
const WAIT: Duration = Duration::from_secs(120);

fn failure_queue_url() -> String {
    Stack::get().rest["queues"]["roost-EventsRelayFailuresQueue"]
        .as_str()
        .expect("roost-EventsRelayFailuresQueue in stack.json")
        .to_owned()
}

fn delivery_mode() -> String {
    Stack::get().rest["delivery"]["mode"].as_str().expect("delivery.mode in stack.json").to_owned()
}

async fn streams(operation: &str, body: Value) -> Value {
    moto_json("dynamodb", &format!("DynamoDBStreams_20120810.{operation}"), &body).await
}

/// The table's stream and its (one, in moto) shard.
async fn stream_and_shard() -> (String, String) {
    let table = dynamodb("DescribeTable", json!({})).await;
    let arn = table["Table"]["LatestStreamArn"].as_str().expect("the table has a stream").to_owned();
    let description = streams("DescribeStream", json!({"StreamArn": arn})).await;
    let shard = description["StreamDescription"]["Shards"][0]["ShardId"].as_str().expect("a shard").to_owned();
    (arn, shard)
}

/// The stream record at `sequence` (AT_SEQUENCE_NUMBER, as the replay procedure reads it).
async fn record_at(stream_arn: &str, shard_id: &str, sequence: &str) -> Value {
    let iterator = streams(
        "GetShardIterator",
        json!({"StreamArn": stream_arn, "ShardId": shard_id, "ShardIteratorType": "AT_SEQUENCE_NUMBER", "SequenceNumber": sequence}),
    )
    .await;
    let page = streams("GetRecords", json!({"ShardIterator": iterator["ShardIterator"], "Limit": 1})).await;
    page["Records"][0].clone()
}

/// An outbox item for `event` holding `envelope` (the event's own JSON, or something broken).
fn outbox_item<T>(event: &Envelope<T>, event_type: &str, envelope: &str) -> Value {
    let expires = jiff::Timestamp::now().as_second() + 7 * 86_400;
    json!({
        "PK": {"S": format!("OUTBOX#{}", event.id)}, "SK": {"S": "OUTBOX"}, "type": {"S": "outbox"},
        "event_id": {"S": event.id}, "event_type": {"S": event_type},
        "occurred_at": {"S": event.occurred_at.to_string()}, "envelope": {"S": envelope},
        "expires_at": {"N": expires.to_string()},
    })
}

/// How many times the relay logged publishing `event_id`.
fn published(event_id: &str) -> usize {
    let needle = format!("\"event_id\":\"{event_id}\"");
    Stack::get()
        .function_log(RELAY)
        .lines()
        .filter(|l| l.contains("\"event published\"") && l.contains(&needle))
        .count()
}

/// A counter of the runtime's `/metrics` for one function (0 before it first counts).
async fn counter(name: &str, function: &str) -> u64 {
    let url = Stack::get().rest["metrics_url"].as_str().expect("metrics_url in stack.json");
    let text = roost_e2e::client().get(url).send().await.expect("metrics").text().await.expect("text");
    let prefix = format!("{name}{{function=\"{function}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |v| v.trim().parse().expect("a count"))
}

/// The failure record whose first record is the outbox item of `event_id`, if it is in the
/// queue yet (peeked: visibility 0, so the replay can receive it at once).
async fn failure_record_of(stream_arn: &str, shard_id: &str, event_id: &str) -> Option<Value> {
    let received = sqs(
        "ReceiveMessage",
        &json!({"QueueUrl": failure_queue_url(), "MaxNumberOfMessages": 10, "VisibilityTimeout": 0, "WaitTimeSeconds": 1}),
    )
    .await;
    for message in received["Messages"].as_array().into_iter().flatten() {
        let body: Value = serde_json::from_str(message["Body"].as_str()?).ok()?;
        let start = body["DDBStreamBatchInfo"]["startSequenceNumber"].as_str()?;
        let record = record_at(stream_arn, shard_id, start).await;
        if record["dynamodb"]["Keys"]["PK"]["S"] == format!("OUTBOX#{event_id}").as_str() {
            return Some(body);
        }
    }
    None
}

#[tokio::test]
async fn a_record_the_relay_always_fails_on_is_parked_later_events_flow_and_the_replay_publishes_it() {
    roost_e2e::needs_stack!();
    let (stream_arn, shard_id) = stream_and_shard().await;
    let discarded_before = counter("roost_delivery_stream_discarded_batches_total", RELAY).await;

    // An outbox item whose envelope the relay cannot decode: it fails the record every time.
    let event = Envelope::new(
        BookingExpired {
            booking_id: unique("bkg_poison"),
            listing_id: "lst_e2e".into(),
            guest_id: "guest-e2e".into(),
            host_id: "host-e2e".into(),
        },
        jiff::Timestamp::now(),
    );
    dynamodb("PutItem", json!({"Item": outbox_item(&event, "booking.expired", "{\"id\": 42}")})).await;

    // A later, real domain event through the API: a cancelled booking notifies its guest.
    let host = User::host("Delivery Host").await;
    let guest = User::guest("Delivery Guest").await;
    let booking_id = booking(&host, &guest).await;
    json_of(guest.api().cancel(&booking_id, &Cancel { reason: None }).await, 200).await;

    let record = eventually_for(WAIT, "the poison record's failure record in EventsRelayFailuresQueue", || {
        failure_record_of(&stream_arn, &shard_id, &event.id)
    })
    .await;
    let info = &record["DDBStreamBatchInfo"];
    assert_eq!(record["version"], "1.0", "{record}");
    assert_eq!(record["requestContext"]["condition"], "RetryAttemptsExhausted", "{record}");
    assert_eq!(record["requestContext"]["approximateInvokeCount"], 101, "the first attempt and 100 retries");
    assert!(
        record["requestContext"]["functionArn"]
            .as_str()
            .is_some_and(|a| a.ends_with(":function:roost-EventsRelayFunction"))
    );
    assert_eq!(record["responseContext"]["statusCode"], 200, "{record}");
    assert!(record["timestamp"].as_str().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()), "{record}");
    assert_eq!(info["shardId"], shard_id.as_str());
    assert_eq!(info["streamArn"], stream_arn.as_str());
    assert_eq!(info["batchSize"], 1, "bisecting isolated the poison record: {record}");
    assert_eq!(info["startSequenceNumber"], info["endSequenceNumber"], "{record}");
    for field in ["approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord"] {
        assert!(info[field].as_str().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()), "{field}: {record}");
    }
    let sequence = info["startSequenceNumber"].as_str().expect("startSequenceNumber").to_owned();
    assert!(counter("roost_delivery_stream_discarded_batches_total", RELAY).await > discarded_before);

    // The shard moved on: the later event reached its consumer; the poison was never published.
    wait_for_inbox(&guest, "booking.cancelled", &booking_id).await;
    assert_eq!(published(&event.id), 0);

    // The fix-up (the producer's bug fixed, the item corrected), then the documented replay.
    let envelope = event.to_json().expect("envelope");
    dynamodb("PutItem", json!({"Item": outbox_item(&event, "booking.expired", &envelope)})).await;
    let bin = std::env::var("ROOST_BIN").expect("ROOST_BIN (set by cargo roost test)");
    let stack_file = std::env::var("ROOST_STACK").expect("ROOST_STACK");
    let output = tokio::process::Command::new(bin)
        .args(["replay-stream-failures", "--stack", &stack_file, "--start-sequence", &sequence])
        .output()
        .await
        .expect("replay-stream-failures runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_str(&stdout).expect("the replay reports JSON");
    assert_eq!(report["replayed"][0]["events"], json!([event.id]), "{report}");

    eventually_for(WAIT, "the replayed event published by the relay", || async {
        (published(&event.id) == 1).then_some(())
    })
    .await;
    // The failure record was consumed by the replay.
    assert!(failure_record_of(&stream_arn, &shard_id, &event.id).await.is_none());
}

fn eur(amount: i64) -> Money {
    Money::parse(amount, "EUR").expect("money")
}

#[tokio::test]
async fn chaotic_delivery_duplicates_and_reorders_and_consumers_still_apply_once() {
    roost_e2e::needs_stack!();
    let chaotic = match delivery_mode().as_str() {
        "chaotic" => true,
        "ordered" => false,
        other => panic!("unknown delivery mode {other}"),
    };
    let series = [
        ("roost_delivery_sqs_duplicates_total", NOTIFICATIONS),
        ("roost_delivery_sqs_reordered_batches_total", NOTIFICATIONS),
        ("roost_delivery_stream_out_of_order_records_total", RELAY),
    ];
    let mut before = Vec::new();
    for (name, function) in series {
        before.push(counter(name, function).await);
    }

    // SQS: one confirmed booking's event put on the notifications queue in bursts of ten copies
    // (as many redeliveries would), until the runtime has duplicated and shuffled some.
    let host = User::host("Chaos Host").await;
    let guest = User::guest("Chaos Guest").await;
    let booking_id = booking(&host, &guest).await;
    let event_id = shared::ids::new_id("evt");
    let data = json!({
        "booking_id": booking_id, "listing_id": "lst_unused", "guest_id": guest.user_id, "host_id": host.user_id,
        "check_in": roost_e2e::fixtures::day_in("UTC", 30), "check_out": roost_e2e::fixtures::day_in("UTC", 33),
        "amount_paid": {"amount": 24_300, "currency": "EUR"}, "payment_intent_id": "pi_e2e"
    });
    // Stream: bursts of outbox events of different keys (booking.created: no queue subscribes).
    let table = roost_e2e::table();
    let mut stream_events = Vec::new();
    for _round in 0..20 {
        let copies = (0..10).map(|_| {
            let (event_id, data) = (event_id.clone(), data.clone());
            async move { deliver(&event_id, "booking.confirmed", data).await }
        });
        join_all(copies).await;
        let burst: Vec<Envelope<BookingCreated>> = (0..12)
            .map(|_| {
                Envelope::new(
                    BookingCreated {
                        booking_id: unique("bkg_chaos"),
                        listing_id: "lst_e2e".into(),
                        guest_id: "guest-e2e".into(),
                        host_id: "host-e2e".into(),
                        check_in: "2026-12-18".parse().expect("date"),
                        check_out: "2026-12-21".parse().expect("date"),
                        total: eur(48_600),
                        hold_expires_at: jiff::Timestamp::now(),
                    },
                    jiff::Timestamp::now(),
                )
            })
            .collect();
        let commits = burst.iter().map(|event| {
            let (table, item) = (table.clone(), outbox_put(&table, event).expect("outbox put"));
            async move { table.transact(vec![item]).await.expect("outbox transaction") }
        });
        join_all(commits).await;
        stream_events.extend(burst.into_iter().map(|e| e.id));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut now = Vec::new();
        for (name, function) in series {
            now.push(counter(name, function).await);
        }
        if !chaotic || now.iter().zip(&before).all(|(n, b)| n > b) {
            break;
        }
    }

    // Every stream event is published (once per delivery; the relay never skips one).
    for id in &stream_events {
        eventually_for(WAIT, &format!("{id} published"), || async { (published(id) >= 1).then_some(()) }).await;
    }
    // The notification exists once per person and each got one e-mail, however many deliveries.
    let notification = ntf_id(&event_id);
    for user in [&guest, &host] {
        let items = eventually_for(WAIT, &format!("{notification} in {}'s inbox", user.name), || async {
            let page = json_of(user.api().notifications("?limit=100").await, 200).await;
            let items: Vec<Value> = page["items"].as_array().cloned().unwrap_or_default();
            items.iter().any(|i| i["notification_id"] == notification.as_str()).then_some(items)
        })
        .await;
        assert_eq!(items.len(), 1, "one inbox item for {}: {items:?}", user.name);
        let to_user = || async {
            let mail = sent_mail().await;
            mail.iter()
                .filter(|m| {
                    m["destinations"]["ToAddresses"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == user.email.as_str()))
                })
                .count()
        };
        eventually_for(WAIT, &format!("{}'s e-mail", user.name), || async { (to_user().await >= 1).then_some(()) })
            .await;
        assert_eq!(to_user().await, 1, "{} got more than one e-mail for one event", user.name);
    }

    let mut after = Vec::new();
    for (name, function) in series {
        after.push(counter(name, function).await);
    }
    for ((name, _), (b, a)) in series.iter().zip(before.iter().zip(&after)) {
        if chaotic {
            assert!(a > b, "{name} never rose in chaotic delivery ({b} -> {a})");
        } else {
            assert_eq!(a, b, "{name} moved in ordered delivery");
        }
    }
}
