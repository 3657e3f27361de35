//! One stream record at a time: decode it, publish it, log what happened.

use serde_json::Value;

use crate::rules::{Decoded, decode_record, sequence_number};
use crate::sns::Publisher;

/// What a batch did so far, for its closing log line.
#[derive(Debug, Default)]
pub struct Tally {
    pub published: usize,
    pub skipped: usize,
}

/// Publishes `record`'s event (or skips a record that is not an outbox INSERT); `false` when
/// the record failed, so that it and everything after it are retried.
pub async fn relay<P: Publisher>(publisher: &P, record: &Value, tally: &mut Tally) -> bool {
    let seq = sequence_number(record);
    match decode_record(record) {
        Ok(Decoded::Skip(reason)) => {
            tally.skipped += 1;
            tracing::warn!(
                sequence_number = seq,
                reason,
                "stream record skipped: the stream filter should have excluded it"
            );
            true
        }
        // Two log events with the same identifying fields at top level (not a span's: those
        // would move under `span` in the JSON lines that Logs Insights queries).
        Ok(Decoded::Publish(message)) => match publisher.publish(&message).await {
            Ok(sns_message_id) => {
                tally.published += 1;
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AppState;
    use crate::rules::{Outgoing, RelayError};
    use crate::sns::PublishError;
    use aws_lambda_events::event::streams::DynamoDbEventResponse;
    use lambda_runtime::Diagnostic;
    use serde_json::json;
    use shared::events::OutboxItem;
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

    /// The batch entry point with a publisher the test keeps, to see what it published.
    async fn handle_batch(fake: &Fake, event: &Value) -> Result<DynamoDbEventResponse, RelayError> {
        crate::handle_batch(&AppState { publisher: fake }, event, None).await
    }

    #[tokio::test]
    async fn near_the_deadline_nothing_more_is_published_and_the_rest_is_retried() {
        let (a, b) = (expired(1), expired(2));
        let fake = Fake::default();
        let event = json!({"Records": [insert("100", &a), insert("101", &b)]});
        let deadline = tokio::time::Instant::now() + crate::PUBLISH_BUDGET / 2;
        let response = crate::handle_batch(&AppState { publisher: &fake }, &event, Some(deadline)).await.unwrap();
        assert_eq!(failed(&response), ["100", "101"]);
        assert!(fake.ids().is_empty(), "no publish starts without the time to finish it");
        let later = tokio::time::Instant::now() + crate::PUBLISH_BUDGET * 3;
        let response = crate::handle_batch(&AppState { publisher: &fake }, &event, Some(later)).await.unwrap();
        assert!(response.batch_item_failures.is_empty());
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
