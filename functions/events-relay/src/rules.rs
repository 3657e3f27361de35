//! What the relay decides from values alone: which stream records are events to publish, and
//! what a batch reports as still to do after a failure.

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::Diagnostic;
use serde_json::Value;
use shared::events::{EventError, OUTBOX_ITEM_TYPE, OutboxItem};

/// One event, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    pub event_id: String,
    pub event_type: String,
    /// The envelope JSON, exactly as the producer stored it.
    pub body: String,
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

pub fn sequence_number(record: &Value) -> Option<&str> {
    record.pointer("/dynamodb/SequenceNumber").and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// The answer to a batch whose record `failed_from` failed (`None`: none did): that record and
/// every one after it, as batch item failures.
pub fn still_to_do(records: &[Value], failed_from: Option<usize>) -> Result<DynamoDbEventResponse, RelayError> {
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
    Ok(response)
}
