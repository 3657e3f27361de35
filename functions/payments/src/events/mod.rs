//! The `payment-events` Lambda (`src/bin/payment-events.rs`): applies, once each, in any order and however often they are
//! delivered, the messages of the payment-events queue:
//!
//! - Stripe events the webhook verified and enqueued (`{id, type, data.object}`):
//!   `payment_intent.succeeded` confirms the booking (or refunds a payment that came too late,
//!   or one that is not the booking's), `payment_intent.payment_failed` records the failure,
//!   `charge.refunded` completes a refund; `account.updated` records a host's payout account
//!   state (`accounts`);
//! - domain events from the topic (envelopes): `booking.cancelled` refunds what is due and
//!   cancels an open intent, `booking.expired` cancels an open intent.
//!
//! Exactly once (docs/payments.md): every effect that lives in DynamoDB commits in ONE
//! transaction with the event's receipt (`shared::sqs::receipt_put`, first item) and, where
//! other contexts care, its outbox event; effects outside DynamoDB (Stripe refunds) are a state
//! machine on a record (`refund.status` pending -> succeeded | failed) whose conditions make a
//! repeat a no-op, and every Stripe refund call first checks the refund invariant
//! (`rules::check_refund`: never more than the policy owes). Stripe calls are budgeted against
//! the invocation's deadline: a message that cannot finish in time fails (and returns) before
//! the deadline. Anything that fails returns the message to the queue; a refund that still fails
//! on the queue's last receive is recorded `failed` (alarmed), and the message moves to the DLQ,
//! whose redrive is the operator's retry.
//!
//! Modules: `messages` (what a message is), `handlers` (one function per message kind),
//! `refunds` (the refund state machine and its one Stripe refund call), `rules` (the decisions,
//! pure), `store` (every read and write, the transactions), `budget` (the invocation's time).

mod accounts;
mod budget;
mod handlers;
pub mod messages;
#[cfg(test)]
mod order_tests;
mod refunds;
pub mod rules;
pub mod store;

use std::sync::Arc;
use std::time::SystemTime;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use serde_json::Value;
use shared::events::{Envelope, EventType};
use shared::sqs::{self, Received};
use shared::{SharedClock, Table};
use tokio::time::Instant;
use tracing::Instrument;

use crate::events::accounts::on_account_updated;
pub use crate::events::budget::Budget;
use crate::events::budget::Delivery;
use crate::events::handlers::{
    on_booking_accepted, on_booking_cancelled, on_booking_declined, on_booking_expired, on_charge_refunded,
    on_intent_authorized, on_intent_failed, on_intent_succeeded,
};
use crate::events::messages::{Incoming, StripeEvent, account, charge, classify, intent};
use crate::stripe::Gateway;

/// The consumer name in receipts (`EVENT#<id>` / `CONSUMER#payment-events`).
pub const CONSUMER: &str = "payment-events";
/// Messages of a batch applied at once.
pub const CONCURRENCY: usize = sqs::DEFAULT_CONCURRENCY;

/// `maxReceiveCount` of the queue's redrive policy unless configured (`MAX_RECEIVE_COUNT`).
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;
/// Log field operators' metric filters count (infra/template.yaml): never rename its values.
pub const ALERT_FIELD: &str = "alert";

/// Everything a message needs, built once per process in `src/bin/payment-events.rs`.
#[derive(Clone)]
pub struct EventsState {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub stripe: Arc<dyn Gateway>,
    pub budget: Budget,
    /// The queue's `maxReceiveCount`: the receive that is a message's last before the DLQ.
    pub max_receive_count: u32,
}

/// Applies a batch; `deadline` is the invocation's (`lambda_runtime::Context::deadline`). Every
/// message is cut at the deadline minus the reserve: one that cannot finish is reported failed
/// (it returns to the queue) while the others are reported as they ended.
pub async fn handle_batch(
    st: &EventsState,
    event: SqsEvent,
    deadline: Option<SystemTime>,
) -> Result<SqsBatchResponse, sqs::BatchError> {
    let cutoff = deadline.map(|d| {
        let d = shared::clock::invocation_deadline(d);
        d.checked_sub(st.budget.reserve).filter(|c| *c > Instant::now()).unwrap_or_else(Instant::now)
    });
    sqs::run_batch(event, CONCURRENCY, |msg: Received<Value>| async move {
        let d = Delivery { receive_count: msg.receive_count, cutoff };
        match cutoff {
            Some(cutoff) => match tokio::time::timeout_at(cutoff, apply(st, msg.body, d)).await {
                Ok(done) => done,
                Err(_) => Err(anyhow::anyhow!("the invocation's deadline is near: the message returns to the queue")),
            },
            None => apply(st, msg.body, d).await,
        }
    })
    .await
}

/// Applies one message.
pub async fn apply(st: &EventsState, body: Value, d: Delivery) -> anyhow::Result<()> {
    match classify(body)? {
        Incoming::Stripe(event) => {
            let span = tracing::info_span!("stripe_event", event_id = %event.id, event_type = %event.event_type);
            apply_stripe(st, event, d).instrument(span).await
        }
        Incoming::Domain(envelope) => {
            let span = tracing::info_span!("domain_event", event_id = %envelope.id, event_type = %envelope.event_type);
            apply_domain(st, envelope, d).instrument(span).await
        }
    }
}

async fn apply_stripe(st: &EventsState, event: StripeEvent, d: Delivery) -> anyhow::Result<()> {
    tracing::info!("stripe event received");
    match event.event_type.as_str() {
        "payment_intent.succeeded" => on_intent_succeeded(st, d, &event.id, intent(&event)?).await,
        "payment_intent.payment_failed" => on_intent_failed(st, &event.id, intent(&event)?).await,
        "payment_intent.amount_capturable_updated" => on_intent_authorized(st, d, &event.id, intent(&event)?).await,
        "charge.refunded" => on_charge_refunded(st, d, &event.id, charge(&event)?).await,
        "account.updated" => on_account_updated(st, event.created, account(&event)?).await,
        other => {
            tracing::info!(event_type = other, "stripe event type not handled: acknowledged");
            Ok(())
        }
    }
}

async fn apply_domain(st: &EventsState, envelope: Envelope, d: Delivery) -> anyhow::Result<()> {
    tracing::info!("domain event received");
    match envelope.event_type {
        EventType::BookingCancelled => on_booking_cancelled(st, d, envelope.decode()?).await,
        EventType::BookingExpired => on_booking_expired(st, d, envelope.decode()?).await,
        EventType::BookingAccepted => on_booking_accepted(st, d, envelope.decode()?).await,
        EventType::BookingDeclined => on_booking_declined(st, d, envelope.decode()?).await,
        other => {
            tracing::warn!(event_type = %other, "domain event type not handled (filter policy drift?): acknowledged");
            Ok(())
        }
    }
}
