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

pub mod handlers;
pub mod rules;
pub mod sns;

use std::time::Duration;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use serde_json::Value;
use tokio::time::Instant;

pub use crate::rules::{DecodeError, Decoded, Outgoing, RelayError, decode_record};
pub use crate::sns::{PublishError, Publisher, SnsPublisher, TYPE_ATTRIBUTE};

/// Built once per process in `main`: where the events go.
pub struct AppState<P: Publisher> {
    pub publisher: P,
}

/// What one publish may take at most (the SNS client's operation timeout, set in `main`): no
/// publish starts with less than this left before the invocation's deadline.
pub const PUBLISH_BUDGET: Duration = Duration::from_secs(12);

/// Handles one stream batch: publishes its outbox events in order and reports, from the first
/// failure on, every record still to do. With the invocation's `deadline`, a record that could
/// not be published before it is reported as still to do (Lambda retries from it) instead of
/// the whole batch timing out.
pub async fn handle_batch<P: Publisher>(
    st: &AppState<P>,
    event: &Value,
    deadline: Option<Instant>,
) -> Result<DynamoDbEventResponse, RelayError> {
    let records = event.get("Records").and_then(Value::as_array).ok_or(RelayError::NotABatch)?;
    let mut tally = handlers::Tally::default();
    let mut failed_from = None;
    for (index, record) in records.iter().enumerate() {
        if deadline.is_some_and(|d| Instant::now() + PUBLISH_BUDGET >= d) {
            tracing::warn!(index, "the invocation's deadline is near: the rest of the batch is retried");
            failed_from = Some(index);
            break;
        }
        if !handlers::relay(&st.publisher, record, &mut tally).await {
            failed_from = Some(index);
            break;
        }
    }
    let response = rules::still_to_do(records, failed_from)?;
    tracing::info!(
        records = records.len(),
        published = tally.published,
        skipped = tally.skipped,
        failed = response.batch_item_failures.len(),
        "stream batch done"
    );
    Ok(response)
}
