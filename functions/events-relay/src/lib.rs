//! The `events-relay` function: publishes every outbox item the table's DynamoDB Stream delivers
//! to the `domain-events` SNS topic, with the message attribute `type` = the event type, so that
//! each consumer's subscription filter can pick what it wants.
//!
//! Guarantees (docs/events.md):
//! - **Nothing lost.** Records are published in stream order and the first record that fails
//!   (publish error, or a record that cannot be decoded) is reported with every record after it
//!   as batch item failures (`ReportBatchItemFailures`, item identifier = `SequenceNumber`), so
//!   Lambda retries from that record, in order. No record is skipped past: an undecodable outbox
//!   record is a bug, logged loudly, retried, and finally parked in the relay's failure queue.
//! - **Nothing invented.** Only outbox INSERTs are published (the template's filter, checked
//!   again here), and an outbox item exists only if its transaction committed.
//! - **At least once.** A retried batch republishes what was already published before the
//!   failure; consumers dedupe on `(event id, consumer)` (`shared::sqs::apply_once`).

use std::future::Future;

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use shared::events::{EventError, OUTBOX_ITEM_TYPE, OutboxItem};

/// The SNS message attribute the subscriptions' filter policies match on.
pub const TYPE_ATTRIBUTE: &str = "type";

/// One event, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub event_id: String,
    pub event_type: String,
    /// The envelope JSON, exactly as the producer stored it.
    pub body: String,
}

/// Where events go: SNS in production, a fake in tests.
pub trait Publisher: Send + Sync {
    /// Publishes one event; returns the broker's message id.
    fn publish(&self, message: &Outgoing) -> impl Future<Output = Result<String, PublishError>> + Send;
}

#[derive(Debug, thiserror::Error)]
#[error("publish failed: {0:#}")]
pub struct PublishError(pub anyhow::Error);

/// `Publish` to one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsPublisher {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self { client, topic_arn: topic_arn.into() }
    }
}

impl Publisher for SnsPublisher {
    async fn publish(&self, message: &Outgoing) -> Result<String, PublishError> {
        let event_type = aws_sdk_sns::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(&message.event_type)
            .build()
            .map_err(|e| PublishError(anyhow::Error::new(e).context("build the type attribute")))?;
        let out = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message(&message.body)
            .message_attributes(TYPE_ATTRIBUTE, event_type)
            .send()
            .await
            .map_err(|e| PublishError(anyhow::Error::new(e).context("SNS Publish")))?;
        Ok(out.message_id.unwrap_or_default())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The invocation is not a DynamoDB Streams batch at all: fail it whole (Lambda retries it).
    #[error("the event is not a DynamoDB Streams batch: no Records array")]
    NotABatch,
    /// A failed record has no sequence number to report, so only failing the whole batch keeps
    /// it (Lambda retries the batch from its start; consumers dedupe the republished events).
    #[error("record {index} failed and has no dynamodb.SequenceNumber to resume from")]
    NoSequenceNumber { index: usize },
}

impl From<RelayError> for Diagnostic {
    fn from(e: RelayError) -> Self {
        Diagnostic { error_type: "RelayError".into(), error_message: e.to_string() }
    }
}

/// Why a stream record could not be turned into an event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a DynamoDB stream record: {0}")]
    Record(String),
    #[error("NewImage is not an outbox item: {0}")]
    Item(#[from] serde_dynamo::Error),
    #[error(transparent)]
    Envelope(#[from] EventError),
}

/// What one record is to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Publish(Outgoing),
    /// Not an outbox INSERT (the template's filter lets none through; this guards a filter
    /// that was changed by mistake): nothing to publish.
    Skip(&'static str),
}

/// A stream record as Lambda delivers it -> the event its outbox item holds.
pub fn decode_record(record: &Value) -> Result<Decoded, DecodeError> {
    if record.get("eventName").and_then(Value::as_str) != Some("INSERT") {
        return Ok(Decoded::Skip("not an INSERT"));
    }
    if record.pointer("/dynamodb/NewImage/type/S").and_then(Value::as_str) != Some(OUTBOX_ITEM_TYPE) {
        return Ok(Decoded::Skip("not an outbox item"));
    }
    let record: EventRecord = serde_path_to_error::deserialize(record)
        .map_err(|e| DecodeError::Record(format!("{}: {}", e.path(), e.inner())))?;
    let item: OutboxItem = serde_dynamo::from_item(record.change.new_image)?;
    let envelope = item.parse_envelope()?;
    Ok(Decoded::Publish(Outgoing {
        event_id: envelope.id,
        event_type: envelope.event_type.as_str().to_owned(),
        body: item.envelope,
    }))
}

fn sequence_number(record: &Value) -> Option<&str> {
    record.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Handles one stream batch: publishes its outbox events in order and reports, from the first
/// failure on, every record still to do.
pub async fn handle_batch<P: Publisher>(publisher: &P, event: &Value) -> Result<DynamoDbEventResponse, RelayError> {
    let records = event.get("Records").and_then(Value::as_array).ok_or(RelayError::NotABatch)?;
    let (mut published, mut skipped) = (0usize, 0usize);
    let mut failed_from = None;
    for (index, record) in records.iter().enumerate() {
        let seq = sequence_number(record);
        let ok = match decode_record(record) {
            Ok(Decoded::Skip(reason)) => {
                skipped += 1;
                tracing::warn!(
                    sequence_number = seq,
                    reason,
                    "stream record skipped: the stream filter should have excluded it"
                );
                true
            }
            Ok(Decoded::Publish(message)) => match publisher.publish(&message).await {
                Ok(sns_message_id) => {
                    published += 1;
                    tracing::info!(
                        event_id = %message.event_id,
                        event_type = %message.event_type,
                        sequence_number = seq,
                        sns_message_id = %sns_message_id,
                        "event published"
                    );
                    true
                }
                Err(e) => {
                    tracing::error!(
                        event_id = %message.event_id,
                        event_type = %message.event_type,
                        sequence_number = seq,
                        error = %e,
                        "event not published: the stream retries from this record"
                    );
                    false
                }
            },
            Err(e) => {
                let event_id = record.pointer("/dynamodb/NewImage/event_id/S").and_then(Value::as_str);
                tracing::error!(
                    sequence_number = seq,
                    event_id,
                    error = %e,
                    "UNDECODABLE OUTBOX RECORD: reported as failed, never dropped; this is a bug in its producer \
                     or in the relay (docs/events.md, 'When the relay is stuck')"
                );
                false
            }
        };
        if !ok {
            failed_from = Some(index);
            break;
        }
    }

    let mut response = DynamoDbEventResponse::default();
    if let Some(first) = failed_from {
        if sequence_number(&records[first]).is_none() {
            return Err(RelayError::NoSequenceNumber { index: first });
        }
        // The first failure is the checkpoint; the records after it were not attempted and are
        // reported too, so the answer says plainly what is left to do.
        for seq in records[first..].iter().filter_map(sequence_number) {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(seq.to_owned());
            response.batch_item_failures.push(failure);
        }
    }
    tracing::info!(
        records = records.len(),
        published,
        skipped,
        failed = response.batch_item_failures.len(),
        "stream batch done"
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use shared::events::{BookingCancelled, BookingExpired, CancelledBy, Envelope};
    use shared::money::Money;
    use std::sync::Mutex;

    /// Records what it publishes; fails the publishes whose event id is listed.
    #[derive(Default)]
    struct Fake {
        sent: Mutex<Vec<Outgoing>>,
        fail: Vec<String>,
    }

    impl Publisher for Fake {
        async fn publish(&self, message: &Outgoing) -> Result<String, PublishError> {
            if self.fail.contains(&message.event_id) {
                return Err(PublishError(anyhow::anyhow!("SNS is down")));
            }
            let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
            sent.push(message.clone());
            Ok(format!("msg-{}", sent.len()))
        }
    }

    impl Fake {
        fn ids(&self) -> Vec<String> {
            self.sent.lock().unwrap().iter().map(|m| m.event_id.clone()).collect()
        }
    }

    fn expired(n: u32) -> Envelope<BookingExpired> {
        Envelope::new(
            BookingExpired {
                booking_id: format!("bkg_{n}"),
                listing_id: "lst_1".into(),
                guest_id: "g".into(),
                host_id: "h".into(),
            },
            jiff::Timestamp::now(),
        )
    }

    /// A stream record of an outbox INSERT, built from the real outbox item.
    fn insert<T: serde::Serialize>(seq: &str, event: &Envelope<T>) -> Value {
        let item = OutboxItem::new(event).unwrap();
        let image: serde_dynamo::Item = serde_dynamo::to_item(&item).unwrap();
        json!({
            "eventID": format!("e{seq}"),
            "eventName": "INSERT",
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {
                "ApproximateCreationDateTime": 1764151200.0,
                "Keys": {"PK": {"S": item.key.pk}, "SK": {"S": "OUTBOX"}},
                "NewImage": image,
                "SequenceNumber": seq,
                "SizeBytes": 300,
                "StreamViewType": "NEW_AND_OLD_IMAGES"
            },
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/roost-Table/stream/2026-11-26T10:00:00.000"
        })
    }

    fn failed(response: &DynamoDbEventResponse) -> Vec<String> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.clone().unwrap_or_default()).collect()
    }

    #[tokio::test]
    async fn publishes_every_outbox_insert_in_order_with_its_type() {
        let (a, b) = (expired(1), expired(2));
        let cancelled = Envelope::new(
            BookingCancelled {
                booking_id: "bkg_3".into(),
                listing_id: "lst_1".into(),
                guest_id: "g".into(),
                host_id: "h".into(),
                cancelled_by: CancelledBy::Host,
                refund_due: Money::parse(500, "EUR").unwrap(),
            },
            jiff::Timestamp::now(),
        );
        let fake = Fake::default();
        let event = json!({"Records": [insert("100", &a), insert("101", &b), insert("102", &cancelled)]});
        let response = handle_batch(&fake, &event).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
        let sent = fake.sent.lock().unwrap().clone();
        assert_eq!(sent.iter().map(|m| m.event_id.as_str()).collect::<Vec<_>>(), [&a.id, &b.id, &cancelled.id]);
        assert_eq!(sent[0].event_type, "booking.expired");
        assert_eq!(sent[2].event_type, "booking.cancelled");
        assert_eq!(sent[2].body, cancelled.to_json().unwrap(), "the stored envelope, byte for byte");
        assert_eq!(serde_json::to_value(&response).unwrap(), json!({"batchItemFailures": []}));
    }

    #[tokio::test]
    async fn a_failed_publish_reports_it_and_everything_after_it() {
        let (a, b, c) = (expired(1), expired(2), expired(3));
        let fake = Fake { fail: vec![b.id.clone()], ..Fake::default() };
        let event = json!({"Records": [insert("100", &a), insert("101", &b), insert("102", &c)]});
        let response = handle_batch(&fake, &event).await.unwrap();
        assert_eq!(failed(&response), ["101", "102"]);
        assert_eq!(fake.ids(), [a.id.as_str()], "nothing after the failure is published out of order");
        assert_eq!(
            serde_json::to_value(&response).unwrap(),
            json!({"batchItemFailures": [{"itemIdentifier": "101"}, {"itemIdentifier": "102"}]})
        );

        // The retry from the checkpoint succeeds once SNS is back.
        let fake = Fake::default();
        let retry = json!({"Records": [insert("101", &b), insert("102", &c)]});
        assert!(handle_batch(&fake, &retry).await.unwrap().batch_item_failures.is_empty());
        assert_eq!(fake.ids(), [b.id.as_str(), c.id.as_str()]);
    }

    #[tokio::test]
    async fn an_undecodable_outbox_record_fails_loudly_and_is_never_skipped() {
        let (a, c) = (expired(1), expired(3));
        let mut corrupt = insert("101", &expired(2));
        corrupt["dynamodb"]["NewImage"]["envelope"]["S"] = json!("{\"id\": 42}");
        let mut no_envelope = insert("201", &expired(4));
        no_envelope["dynamodb"]["NewImage"].as_object_mut().unwrap().remove("envelope");
        let mut other_id = insert("301", &expired(5));
        other_id["dynamodb"]["NewImage"]["event_id"]["S"] = json!("evt_someone_else");
        let mut bad_record = insert("401", &expired(6));
        bad_record["dynamodb"]["SizeBytes"] = json!("big");

        for (bad, seq) in [(corrupt, "101"), (no_envelope, "201"), (other_id, "301"), (bad_record, "401")] {
            let fake = Fake::default();
            let event = json!({"Records": [insert("100", &a), bad.clone(), insert("999", &c)]});
            let response = handle_batch(&fake, &event).await.unwrap();
            assert_eq!(failed(&response), [seq, "999"], "{bad}");
            assert_eq!(fake.ids(), [a.id.as_str()]);
            assert!(decode_record(&bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn records_that_are_not_outbox_inserts_are_skipped() {
        let a = expired(1);
        let mut modify = insert("101", &a);
        modify["eventName"] = json!("MODIFY");
        let mut booking = insert("102", &a);
        booking["dynamodb"]["NewImage"]["type"]["S"] = json!("booking");
        let remove = json!({"eventName": "REMOVE", "dynamodb": {"SequenceNumber": "103", "Keys": {}}});
        let fake = Fake::default();
        let event = json!({"Records": [modify, booking, remove, insert("104", &a)]});
        assert!(handle_batch(&fake, &event).await.unwrap().batch_item_failures.is_empty());
        assert_eq!(fake.ids(), [a.id.as_str()]);
    }

    #[tokio::test]
    async fn batches_without_records_or_sequence_numbers_fail_whole() {
        let fake = Fake::default();
        assert!(matches!(handle_batch(&fake, &json!({"nope": []})).await, Err(RelayError::NotABatch)));
        assert!(handle_batch(&fake, &json!({"Records": []})).await.unwrap().batch_item_failures.is_empty());

        let a = expired(1);
        let fake = Fake { fail: vec![a.id.clone()], ..Fake::default() };
        let mut record = insert("100", &a);
        record["dynamodb"].as_object_mut().unwrap().remove("SequenceNumber");
        let e = handle_batch(&fake, &json!({"Records": [record]})).await.unwrap_err();
        assert!(matches!(e, RelayError::NoSequenceNumber { index: 0 }));
        let diagnostic: Diagnostic = e.into();
        assert_eq!(diagnostic.error_type, "RelayError");
    }
}
