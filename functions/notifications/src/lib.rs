//! The `notifications` function: turns the domain events of its queue into, for each person
//! concerned, an inbox item and an e-mail (SES).
//!
//! | event | to |
//! |---|---|
//! | `booking.confirmed`, `booking.cancelled` | guest and host |
//! | `booking.expired`, `payment.failed`, `refund.issued` | guest |
//! | `review.posted` | host |
//! | `message.posted` | the other participant (e-mail at most once per conversation per 15 minutes) |
//!
//! Exactly one inbox item per (event, person): its key is derived from the event id
//! (`INBOX#<sub>` / `NOTIFICATION#ntf_<event ULID>`) and written with `attribute_not_exists`, so a
//! second delivery hits the same key. The item also records its e-mail's state (`rules/email.rs`):
//! written `sending` under the writer's claim (or `skipped` when no e-mail is due), marked
//! `sent` with SES's message id once SES accepted it, back to `pending` when SES refused (the
//! message fails and the redelivery sends it). A redelivery sends only an e-mail that is
//! `pending` or whose claim expired, so an e-mail is never lost and goes twice only if SES
//! accepted it and the sender died before recording that (at-least-once, docs/events.md).
//! Items are never deleted to undo. E-mail addresses and names come from the profiles (events
//! carry ids only) and are never logged: log lines carry ids.

pub mod handlers;
pub mod mailer;
pub mod rules;
pub mod store;
pub mod templates;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::Value;
use shared::sqs::{self, Received};
use shared::{SharedClock, Table};

pub use crate::handlers::{Delivered, apply, deliver};
pub use crate::mailer::{Email, Mailer, Ses};
pub use crate::rules::email::{Claim, EmailState, EmailStatus, Step};
pub use crate::rules::recipients::{Plan, ProfileUnreadable, plan};
pub use crate::store::{
    DynamoInbox, ID_PREFIX, ITEM_TYPE, InboxItem, InboxStore, MemoryInbox, SK_PREFIX, inbox_key, notification_id,
};

/// Messages of a batch applied at once.
pub const CONCURRENCY: usize = sqs::DEFAULT_CONCURRENCY;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    /// Bookings and profiles are read here.
    pub table: Arc<Table>,
    pub inbox: Arc<dyn InboxStore>,
    pub clock: SharedClock,
    pub mailer: Arc<dyn Mailer>,
}

/// Applies a batch; `remaining` is the invocation's time left (from its deadline), which bounds
/// how long this delivery's claims on e-mails last.
pub async fn handle_batch(
    st: &AppState,
    event: SqsEvent,
    remaining: std::time::Duration,
) -> Result<SqsBatchResponse, sqs::BatchError> {
    // One claim id per message: two messages of a batch may carry the same event.
    let invocation = Claim::new(st.clock.now(), remaining);
    let invocation = &invocation;
    let send_by = tokio::time::Instant::now() + remaining.saturating_sub(SEND_RESERVE);
    sqs::run_batch(event, CONCURRENCY, |msg: Received<Value>| async move {
        handlers::apply(st, msg.body, &invocation.for_message(), send_by).await
    })
    .await
}

/// Time kept after the last SES call for recording its outcome: a send still unanswered this
/// close to the invocation's deadline is abandoned (SDK retries are off on the SES client, so
/// one hung call cannot time out the whole batch; the claim's expiry does the retrying).
pub const SEND_RESERVE: std::time::Duration = std::time::Duration::from_millis(1500);
