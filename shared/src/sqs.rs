//! The consumer side of SQS: run a batch with bounded concurrency and report partial failures,
//! and apply each event at most once per consumer.
//!
//! ```ignore
//! async fn handle(st: &State, event: SqsEvent) -> Result<SqsBatchResponse, BatchError> {
//!     sqs::run_batch(event, sqs::DEFAULT_CONCURRENCY, |msg: Received<Envelope>| async move {
//!         let effect = vec![/* the consumer's own writes */];
//!         sqs::apply_once(&st.table, &msg.body.id, CONSUMER, st.clock.now(), effect).await?;
//!         Ok::<_, anyhow::Error>(())
//!     })
//!     .await
//! }
//! ```
//!
//! The event source mapping must declare `FunctionResponseTypes: [ReportBatchItemFailures]`:
//! then only the failed messages return to the queue, and a message that fails `maxReceiveCount`
//! times moves to the queue's DLQ (alarmed). A message is never dropped here: one that cannot be
//! decoded fails like any other, so it ends in the DLQ where an operator sees it.

use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_dynamodb::types::TransactWriteItem;
use futures::StreamExt;
use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::keys::Key;
use crate::table::{CancellationReason, Table, TableError};

/// Messages of one batch in flight at once, unless a consumer has a reason to choose.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// How long a receipt stays (TTL, clean-up only). It must outlive every redelivery: SQS keeps a
/// message at most 14 days (a DLQ redrive included), and the relay's replay window is 7 days.
pub const RECEIPT_RETENTION: SignedDuration = SignedDuration::from_hours(30 * 24);
pub const RECEIPT_ITEM_TYPE: &str = "event_receipt";
pub const RECEIPT_PK_PREFIX: &str = "EVENT#";
pub const RECEIPT_SK_PREFIX: &str = "CONSUMER#";

/// One message of a batch, its body decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Received<T> {
    pub message_id: String,
    /// `ApproximateReceiveCount`: 1 on the first delivery (0 if SQS did not say).
    pub receive_count: u32,
    pub body: T,
}

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A failed message has no `messageId` to report, so the whole batch must fail (and be
    /// redelivered; consumers are idempotent). SQS always sets it: this is a malformed event.
    #[error("{count} failed message(s) carry no messageId: failing the whole batch")]
    UnnamedFailures { count: usize },
}

/// Runs `handler` on every message of `event`, at most `concurrency` at a time, and returns the
/// ids of the messages that failed, for `ReportBatchItemFailures`. A message whose body is
/// missing or does not decode as `T` (JSON) fails without reaching `handler`.
pub async fn run_batch<T, F, Fut, E>(
    event: SqsEvent,
    concurrency: usize,
    handler: F,
) -> Result<SqsBatchResponse, BatchError>
where
    T: DeserializeOwned,
    F: Fn(Received<T>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Into<anyhow::Error>,
{
    let handler = &handler;
    let outcomes: Vec<(Option<String>, bool)> = futures::stream::iter(event.records)
        .map(|message| async move {
            let id = message.message_id.clone();
            let span = tracing::info_span!("sqs_message", message_id = id.as_deref().unwrap_or("?"));
            let ok = process(message, handler).instrument(span).await;
            (id, ok)
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;

    let mut response = SqsBatchResponse::default();
    let mut unnamed = 0;
    for (id, ok) in outcomes {
        match (ok, id) {
            (true, _) => {}
            (false, Some(id)) => response.add_failure(id),
            (false, None) => unnamed += 1,
        }
    }
    if unnamed > 0 {
        return Err(BatchError::UnnamedFailures { count: unnamed });
    }
    Ok(response)
}

async fn process<T, F, Fut, E>(message: SqsMessage, handler: &F) -> bool
where
    T: DeserializeOwned,
    F: Fn(Received<T>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Into<anyhow::Error>,
{
    let receive_count =
        message.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or_default();
    let decoded = match message.body.as_deref() {
        None => Err("the message has no body".to_owned()),
        Some(body) => {
            let mut de = serde_json::Deserializer::from_str(body);
            serde_path_to_error::deserialize::<_, T>(&mut de)
                .map_err(|e| format!("{}: {}", e.path(), e.inner()))
                .and_then(|body| de.end().map(|()| body).map_err(|e| e.to_string()))
        }
    };
    let body = match decoded {
        Ok(body) => body,
        Err(reason) => {
            // The body itself is not logged: it may hold what logs must not (Stripe's events do).
            tracing::error!(
                receive_count,
                body_bytes = message.body.as_deref().map_or(0, str::len),
                error = %reason,
                "undecodable message: failing it, so redrive moves it to the DLQ"
            );
            return false;
        }
    };
    let received = Received { message_id: message.message_id.unwrap_or_default(), receive_count, body };
    match handler(received).await {
        Ok(()) => true,
        Err(e) => {
            let e: anyhow::Error = e.into();
            tracing::warn!(receive_count, error = %format!("{e:#}"), "message failed: it returns to the queue");
            false
        }
    }
}

/// `EVENT#<event id>` / `CONSUMER#<consumer>`: the receipt that `consumer` applied the event.
pub fn receipt_key(event_id: &str, consumer: &str) -> Key {
    Key::new(format!("{RECEIPT_PK_PREFIX}{event_id}"), format!("{RECEIPT_SK_PREFIX}{consumer}"))
}

/// The dedupe record of one (event, consumer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    #[serde(flatten)]
    pub key: Key,
    /// Always `event_receipt`.
    #[serde(rename = "type")]
    pub item_type: String,
    pub event_id: String,
    pub consumer: String,
    pub processed_at: Timestamp,
    /// TTL, epoch seconds: clean-up only.
    pub expires_at: i64,
}

impl Receipt {
    pub fn new(event_id: &str, consumer: &str, now: Timestamp) -> Result<Self, TableError> {
        if event_id.is_empty() || consumer.is_empty() || consumer.contains('#') {
            return Err(anyhow::anyhow!("receipt needs an event id and a consumer name without '#'").into());
        }
        Ok(Self {
            key: receipt_key(event_id, consumer),
            item_type: RECEIPT_ITEM_TYPE.to_owned(),
            event_id: event_id.to_owned(),
            consumer: consumer.to_owned(),
            processed_at: now,
            expires_at: now.checked_add(RECEIPT_RETENTION).unwrap_or(now).as_second(),
        })
    }
}

/// The conditional put of the (event, consumer) receipt, for a consumer that builds its own
/// transaction: put it FIRST, so a cancellation whose reason 0 is `ConditionalCheckFailed` means
/// "already applied" (see [`is_duplicate`]).
pub fn receipt_put(
    table: &Table,
    event_id: &str,
    consumer: &str,
    now: Timestamp,
) -> Result<TransactWriteItem, TableError> {
    table.tx_put_new(&Receipt::new(event_id, consumer, now)?)
}

/// Whether `err`, from a write whose first item is [`receipt_put`], says the event was applied
/// before.
pub fn is_duplicate(err: &TableError) -> bool {
    match err {
        TableError::ConditionFailed => true,
        TableError::TransactionCancelled { reasons } => {
            reasons.first() == Some(&CancellationReason::ConditionalCheckFailed)
        }
        TableError::Unexpected(_) => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Once {
    /// The receipt and `effect` committed together now.
    Applied,
    /// This consumer applied the event before: nothing was written.
    Duplicate,
}

/// Writes the (event, consumer) receipt and `effect` in one transaction (a single conditional
/// put when `effect` is empty): the effect happens once however often the event is delivered,
/// concurrent deliveries included. Any other failed condition in `effect` is returned as is.
pub async fn apply_once(
    table: &Table,
    event_id: &str,
    consumer: &str,
    now: Timestamp,
    effect: Vec<TransactWriteItem>,
) -> Result<Once, TableError> {
    let written = if effect.is_empty() {
        table.put_new(&Receipt::new(event_id, consumer, now)?).await
    } else {
        let mut items = Vec::with_capacity(effect.len() + 1);
        items.push(receipt_put(table, event_id, consumer, now)?);
        items.extend(effect);
        table.transact(items).await
    };
    match written {
        Ok(()) => Ok(Once::Applied),
        Err(e) if is_duplicate(&e) => {
            tracing::info!(event_id, consumer, "event already applied: skipped");
            Ok(Once::Duplicate)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{BookingExpired, Envelope};
    use crate::table::Expr;
    use crate::test_support::{AwsStub, dynamodb_client};
    use serde_json::{Value, json};
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    fn message(id: Option<&str>, body: Option<&str>, receive_count: &str) -> Value {
        let mut m = json!({
            "messageId": id,
            "receiptHandle": "rh",
            "body": body,
            "attributes": {"ApproximateReceiveCount": receive_count, "SentTimestamp": "1764150000000"},
            "messageAttributes": {"type": {"stringValue": "booking.expired", "dataType": "String",
                "stringListValues": [], "binaryListValues": []}},
            "md5OfBody": "x",
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:roost-NotificationsQueue",
            "awsRegion": "us-east-1"
        });
        if body.is_none() {
            m.as_object_mut().unwrap().remove("body");
        }
        m
    }

    fn batch(messages: Vec<Value>) -> SqsEvent {
        serde_json::from_value(json!({ "Records": messages })).unwrap()
    }

    fn failures(response: &SqsBatchResponse) -> HashSet<String> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Body {
        n: u32,
    }

    #[tokio::test]
    async fn failed_and_undecodable_messages_are_reported_the_rest_succeed() {
        let event = batch(vec![
            message(Some("ok-1"), Some(r#"{"n":1}"#), "1"),
            message(Some("fails"), Some(r#"{"n":2}"#), "3"),
            message(Some("garbage"), Some("not json"), "1"),
            message(Some("wrong-shape"), Some(r#"{"n":"three"}"#), "1"),
            message(Some("trailing"), Some(r#"{"n":4} x"#), "1"),
            message(Some("no-body"), None, "1"),
            message(Some("ok-5"), Some(r#"{"n":5}"#), "2"),
        ]);
        let seen = Mutex::new(Vec::new());
        let response = run_batch(event, 3, |m: Received<Body>| {
            seen.lock().unwrap().push((m.message_id.clone(), m.receive_count, m.body.n));
            async move { if m.body.n == 2 { Err(anyhow::anyhow!("boom")) } else { Ok(()) } }
        })
        .await
        .unwrap();
        assert_eq!(
            failures(&response),
            ["fails", "garbage", "wrong-shape", "trailing", "no-body"].map(String::from).into()
        );
        let mut seen = seen.into_inner().unwrap();
        seen.sort();
        assert_eq!(seen, vec![("fails".into(), 3, 2), ("ok-1".into(), 1, 1), ("ok-5".into(), 2, 5)]);
    }

    #[tokio::test]
    async fn an_empty_batch_or_all_successes_report_nothing() {
        let ok = |_: Received<Body>| async { Ok::<_, anyhow::Error>(()) };
        assert!(run_batch(batch(vec![]), 4, ok).await.unwrap().batch_item_failures.is_empty());
        let event = batch(vec![message(Some("a"), Some(r#"{"n":1}"#), "1")]);
        let response = run_batch(event, 0, ok).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(serde_json::to_value(&response).unwrap(), json!({"batchItemFailures": []}));
    }

    #[tokio::test]
    async fn a_failure_without_a_message_id_fails_the_whole_batch() {
        let event = batch(vec![message(None, Some("nope"), "1"), message(Some("b"), Some(r#"{"n":1}"#), "1")]);
        let e = run_batch(event, 2, |_: Received<Body>| async { Ok::<_, anyhow::Error>(()) }).await.unwrap_err();
        assert!(matches!(e, BatchError::UnnamedFailures { count: 1 }));
        // Without an id but successful: nothing to report.
        let event = batch(vec![message(None, Some(r#"{"n":1}"#), "1")]);
        assert!(run_batch(event, 2, |_: Received<Body>| async { Ok::<_, anyhow::Error>(()) }).await.is_ok());
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let event = batch((0..10).map(|i| message(Some(&format!("m{i}")), Some(r#"{"n":1}"#), "1")).collect());
        let response = run_batch(event, 3, |_: Received<Body>| {
            let (in_flight, peak) = (in_flight.clone(), peak.clone());
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, anyhow::Error>(())
            }
        })
        .await
        .unwrap();
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(peak.load(Ordering::SeqCst), 3, "three at a time, not one, not ten");
    }

    #[tokio::test]
    async fn envelopes_decode_as_message_bodies() {
        let event = Envelope::new(
            BookingExpired {
                booking_id: "b".into(),
                listing_id: "l".into(),
                guest_id: "g".into(),
                host_id: "h".into(),
            },
            Timestamp::now(),
        );
        let body = event.to_json().unwrap();
        let response = run_batch(batch(vec![message(Some("m"), Some(&body), "1")]), 1, |m: Received<Envelope>| {
            let expected = event.clone();
            async move {
                assert_eq!(m.body.decode::<BookingExpired>()?, expected);
                Ok::<_, crate::events::EventError>(())
            }
        })
        .await
        .unwrap();
        assert!(response.batch_item_failures.is_empty());
    }

    #[test]
    fn receipts_are_keyed_by_event_and_consumer() {
        let now: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let r = Receipt::new("evt_1", "notifications", now).unwrap();
        assert_eq!(r.key, Key::new("EVENT#evt_1", "CONSUMER#notifications"));
        assert_eq!(r.item_type, "event_receipt");
        assert_eq!(r.expires_at, now.as_second() + 30 * 24 * 3600);
        assert!(Receipt::new("", "notifications", now).is_err());
        assert!(Receipt::new("evt_1", "", now).is_err());
        assert!(Receipt::new("evt_1", "a#b", now).is_err());
    }

    #[test]
    fn duplicates_are_told_from_other_failures() {
        use CancellationReason::*;
        assert!(is_duplicate(&TableError::ConditionFailed));
        assert!(is_duplicate(&TableError::TransactionCancelled { reasons: vec![ConditionalCheckFailed, None] }));
        assert!(is_duplicate(&TableError::TransactionCancelled {
            reasons: vec![ConditionalCheckFailed, ConditionalCheckFailed]
        }));
        assert!(!is_duplicate(&TableError::TransactionCancelled { reasons: vec![None, ConditionalCheckFailed] }));
        assert!(!is_duplicate(&TableError::TransactionCancelled { reasons: vec![] }));
        assert!(!is_duplicate(&TableError::Unexpected(anyhow::anyhow!("x"))));
    }

    fn cancelled(codes: &[&str]) -> String {
        let reasons: Vec<Value> = codes.iter().map(|c| json!({"Code": c})).collect();
        json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled",
            "CancellationReasons": reasons
        })
        .to_string()
    }

    /// A fake table that remembers receipts, as DynamoDB's condition would.
    async fn receipt_table() -> (Table, AwsStub) {
        let written = Arc::new(Mutex::new(HashSet::<String>::new()));
        let stub = AwsStub::start(move |target, body| {
            let req: Value = serde_json::from_slice(body).unwrap();
            let (receipt, other_condition_fails) = match target {
                "DynamoDB_20120810.PutItem" => (req["Item"].clone(), false),
                "DynamoDB_20120810.TransactWriteItems" => {
                    let items = req["TransactItems"].as_array().unwrap();
                    let fails = items[1..].iter().any(|i| i["ConditionCheck"]["ConditionExpression"] == "fail");
                    (items[0]["Put"]["Item"].clone(), fails)
                }
                other => panic!("{other}"),
            };
            assert_eq!(receipt["type"]["S"], "event_receipt");
            let key = format!("{}|{}", receipt["PK"]["S"], receipt["SK"]["S"]);
            let mut written = written.lock().unwrap();
            let duplicate = written.contains(&key);
            match (target, duplicate, other_condition_fails) {
                ("DynamoDB_20120810.PutItem", true, _) => (
                    400,
                    r#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"x"}"#
                        .to_owned(),
                ),
                ("DynamoDB_20120810.PutItem", false, _) => {
                    written.insert(key);
                    (200, "{}".to_owned())
                }
                (_, true, fails) => {
                    (400, cancelled(&["ConditionalCheckFailed", if fails { "ConditionalCheckFailed" } else { "None" }]))
                }
                (_, false, true) => (400, cancelled(&["None", "ConditionalCheckFailed"])),
                (_, false, false) => {
                    written.insert(key);
                    (200, "{}".to_owned())
                }
            }
        })
        .await;
        (Table::from_conf(dynamodb_client(&stub.url()), "roost"), stub)
    }

    #[tokio::test]
    async fn apply_once_applies_an_event_once_per_consumer() {
        let (table, stub) = receipt_table().await;
        let now = Timestamp::now();
        let effect = |table: &Table| {
            vec![table.tx_update(&Key::new("X", "Y"), &Expr::new("ADD n :one").n(":one", 1), None).unwrap()]
        };
        assert_eq!(apply_once(&table, "evt_1", "notifications", now, effect(&table)).await.unwrap(), Once::Applied);
        assert_eq!(apply_once(&table, "evt_1", "notifications", now, effect(&table)).await.unwrap(), Once::Duplicate);
        assert_eq!(apply_once(&table, "evt_1", "payment-events", now, effect(&table)).await.unwrap(), Once::Applied);
        // Without an effect: a single conditional put.
        assert_eq!(apply_once(&table, "evt_2", "notifications", now, vec![]).await.unwrap(), Once::Applied);
        assert_eq!(apply_once(&table, "evt_2", "notifications", now, vec![]).await.unwrap(), Once::Duplicate);
        assert_eq!(stub.hits(), 5);

        // The effect's own condition failing is the consumer's business, not a duplicate.
        let failing = vec![table.tx_check(&Key::new("X", "Y"), &Expr::new("fail")).unwrap()];
        let e = apply_once(&table, "evt_3", "notifications", now, failing).await.unwrap_err();
        assert_eq!(e.failed_items(), vec![1]);
        assert!(apply_once(&table, "", "notifications", now, vec![]).await.is_err());
    }
}
