//! The `payment-events` function: applies, once each, in any order and however often they are
//! delivered, the messages of the payment-events queue:
//!
//! - Stripe events the webhook verified and enqueued (`{id, type, data.object}`):
//!   `payment_intent.succeeded` confirms the booking (or refunds a payment that came too late,
//!   or one that is not the booking's), `payment_intent.payment_failed` records the failure,
//!   `charge.refunded` completes a refund;
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

#[cfg(test)]
mod order_tests;
pub mod rules;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::Value;
use shared::booking::{self, BookingStatus};
use shared::events::{
    self, BookingCancelled, BookingConfirmed, BookingExpired, Envelope, EventType, PaymentFailed, RefundIssued,
};
use shared::keys::Key;
use shared::money::Money;
use shared::night;
use shared::sqs::{self, Once, Received};
use shared::table::{Expr, TableError};
use shared::{SharedClock, Table};
use tokio::time::Instant;
use tracing::Instrument;

use payments::record::{self, BookingRecord, RefundReason, RefundRecord, RefundStatus};
use payments::stripe::{Gateway, NewRefund, Refund, StripeFailure};

use crate::rules::{ChargeObject, IntentObject, StrayReason, Success};

/// The consumer name in receipts (`EVENT#<id>` / `CONSUMER#payment-events`).
pub const CONSUMER: &str = "payment-events";
/// Messages of a batch applied at once.
pub const CONCURRENCY: usize = sqs::DEFAULT_CONCURRENCY;

/// `maxReceiveCount` of the queue's redrive policy unless configured (`MAX_RECEIVE_COUNT`).
pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;
/// Log field operators' metric filters count (infra/template.yaml): never rename its values.
pub const ALERT_FIELD: &str = "alert";

/// Built once per process in `main`.
#[derive(Clone)]
pub struct State {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub stripe: Arc<dyn Gateway>,
    pub budget: Budget,
    /// The queue's `maxReceiveCount`: the receive that is a message's last before the DLQ.
    pub max_receive_count: u32,
}

/// How the invocation's time is spent (item 2 of issue 13): a Stripe call is started only
/// when `stripe_call` is left before the cutoff (deadline minus `reserve`), and nothing runs
/// past the cutoff, so the batch answer, with the failed messages named, always reaches Lambda
/// before the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// One Stripe call at its client timeout and the write that records its answer.
    pub stripe_call: Duration,
    /// Kept free at the end of the invocation to answer.
    pub reserve: Duration,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            stripe_call: payments::stripe::REQUEST_TIMEOUT + Duration::from_secs(1),
            reserve: Duration::from_millis(500),
        }
    }
}

/// One delivery of a message: how often SQS handed it out, and when its invocation's time is up.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    /// `ApproximateReceiveCount` (1 on the first delivery).
    pub receive_count: u32,
    /// The deadline minus the reserve; `None` outside Lambda (no deadline known).
    pub cutoff: Option<Instant>,
}

impl Delivery {
    /// The queue's last receive of this message: failing now moves it to the DLQ.
    pub fn is_last(&self, st: &State) -> bool {
        self.receive_count >= st.max_receive_count
    }
}

/// Why a Stripe call did not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum StripeStep {
    #[error(
        "{left_ms} ms left before the invocation's deadline, not enough for a Stripe call: the message returns to the queue"
    )]
    OutOfTime { left_ms: u128 },
    #[error(transparent)]
    Stripe(#[from] StripeFailure),
}

impl StripeStep {
    /// What a failed refund records: Stripe's error code and message (never card data), else
    /// what went wrong on the way.
    pub fn reason(&self) -> String {
        let reason = match self {
            Self::OutOfTime { .. } => "no_time_left: Stripe was too slow before the invocation's deadline".to_owned(),
            Self::Stripe(StripeFailure::Api { status, code, message, .. }) => match (code, message) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => format!("stripe_http_{status}"),
            },
            Self::Stripe(StripeFailure::Transport(_)) => "stripe_unreachable".to_owned(),
        };
        reason.chars().take(500).collect()
    }
}

/// A Stripe call within the budget: refused when less than `budget.stripe_call` is left before
/// the cutoff, abandoned at the cutoff. Abandoning is safe: every Stripe effect is adopted by
/// the next delivery (refunds by their metadata, cancellations by the intent's status).
async fn at_stripe<'a, T>(
    st: &State,
    d: Delivery,
    call: impl FnOnce() -> futures::future::BoxFuture<'a, Result<T, StripeFailure>>,
) -> Result<T, StripeStep> {
    let Some(cutoff) = d.cutoff else { return Ok(call().await?) };
    let left = cutoff.saturating_duration_since(Instant::now());
    if left < st.budget.stripe_call {
        return Err(StripeStep::OutOfTime { left_ms: left.as_millis() });
    }
    match tokio::time::timeout_at(cutoff, call()).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(StripeStep::OutOfTime { left_ms: 0 }),
    }
}

/// Stripe's idempotency key for a booking's refund (at most one refund per booking).
pub fn refund_idempotency_key(booking_id: &str) -> String {
    format!("refund-{booking_id}")
}

/// A Stripe event: the envelope fields Roost reads.
#[derive(Debug, Clone, Deserialize)]
pub struct StripeEvent {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: StripeEventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StripeEventData {
    pub object: Value,
}

/// One message of the queue.
#[derive(Debug, Clone)]
pub enum Incoming {
    Stripe(StripeEvent),
    Domain(Envelope),
}

/// Stripe events say `"object": "event"`; everything else must be a domain envelope.
pub fn classify(body: Value) -> anyhow::Result<Incoming> {
    if body.get("object").and_then(Value::as_str) == Some("event") {
        let event: StripeEvent =
            serde_json::from_value(body).map_err(|e| anyhow::anyhow!("not a Stripe event: {e}"))?;
        if event.id.is_empty() {
            anyhow::bail!("a Stripe event without an id");
        }
        return Ok(Incoming::Stripe(event));
    }
    Ok(Incoming::Domain(Envelope::from_json(&body.to_string())?))
}

/// Applies a batch; `deadline` is the invocation's (`lambda_runtime::Context::deadline`). Every
/// message is cut at the deadline minus the reserve: one that cannot finish is reported failed
/// (it returns to the queue) while the others are reported as they ended.
pub async fn handle_batch(
    st: &State,
    event: SqsEvent,
    deadline: Option<SystemTime>,
) -> Result<SqsBatchResponse, sqs::BatchError> {
    let cutoff = deadline.map(|d| {
        let left = d.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO);
        Instant::now() + left.saturating_sub(st.budget.reserve)
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
pub async fn apply(st: &State, body: Value, d: Delivery) -> anyhow::Result<()> {
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

async fn apply_stripe(st: &State, event: StripeEvent, d: Delivery) -> anyhow::Result<()> {
    tracing::info!("stripe event received");
    match event.event_type.as_str() {
        "payment_intent.succeeded" => on_intent_succeeded(st, d, &event.id, intent(&event)?).await,
        "payment_intent.payment_failed" => on_intent_failed(st, &event.id, intent(&event)?).await,
        "charge.refunded" => on_charge_refunded(st, d, &event.id, charge(&event)?).await,
        other => {
            tracing::info!(event_type = other, "stripe event type not handled: acknowledged");
            Ok(())
        }
    }
}

async fn apply_domain(st: &State, envelope: Envelope, d: Delivery) -> anyhow::Result<()> {
    tracing::info!("domain event received");
    match envelope.event_type {
        EventType::BookingCancelled => on_booking_cancelled(st, d, envelope.decode()?).await,
        EventType::BookingExpired => on_booking_expired(st, d, envelope.decode()?).await,
        other => {
            tracing::warn!(event_type = %other, "domain event type not handled (filter policy drift?): acknowledged");
            Ok(())
        }
    }
}

fn intent(event: &StripeEvent) -> anyhow::Result<IntentObject> {
    serde_json::from_value(event.data.object.clone())
        .map_err(|e| anyhow::anyhow!("{}: data.object is not a payment intent: {e}", event.id))
}

fn charge(event: &StripeEvent) -> anyhow::Result<ChargeObject> {
    serde_json::from_value(event.data.object.clone())
        .map_err(|e| anyhow::anyhow!("{}: data.object is not a charge: {e}", event.id))
}

/// The booking, or `None` (logged) when it does not exist: such an event is acknowledged.
async fn booking_or_log(st: &State, booking_id: &str) -> Result<Option<BookingRecord>, TableError> {
    let b = record::read_booking(&st.table, booking_id).await?;
    if b.is_none() {
        tracing::warn!(booking_id, "event for an unknown booking: acknowledged");
    }
    Ok(b)
}

/// Records the event as applied with no other effect.
async fn acknowledge(st: &State, event_id: &str) -> Result<(), TableError> {
    sqs::apply_once(&st.table, event_id, CONSUMER, st.clock.now(), Vec::new()).await.map(|_| ())
}

/// The nights of a stay (`shared::night::nights`). Confirmation books every one of them, so a
/// stay longer than any booking may be is refused rather than cut short.
pub fn nights(check_in: Date, check_out: Date) -> anyhow::Result<Vec<Date>> {
    let max = shared::listing::MAX_STAY_NIGHTS as usize;
    let out = night::nights(check_in, check_out, max + 1);
    if out.len() > max {
        anyhow::bail!("a stay of more than {max} nights");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// payment_intent.succeeded
// ---------------------------------------------------------------------------------------------

async fn on_intent_succeeded(st: &State, d: Delivery, event_id: &str, intent: IntentObject) -> anyhow::Result<()> {
    let Some(booking_id) = intent.booking_id().map(str::to_owned) else {
        tracing::warn!(payment_intent_id = %intent.id, "intent without a booking_id: not Roost's, acknowledged");
        return Ok(());
    };
    let Some(b) = record::read_booking(&st.table, &booking_id).await? else {
        return refund_stray(st, d, event_id, &intent, None, StrayReason::UnknownBooking).await;
    };
    match rules::on_success(&b, &intent) {
        Success::Stray(why) => refund_stray(st, d, event_id, &intent, Some(&booking_id), why).await,
        Success::Recorded => resume_or_acknowledge(st, d, event_id, b, &intent.id).await,
        Success::NotConfirmable => refund_late_payment(st, d, event_id, b, &intent).await,
        Success::Confirm => match confirm(st, event_id, &b, &intent).await? {
            Confirmed::Applied => {
                tracing::info!(booking_id, payment_intent_id = %intent.id, "booking confirmed");
                Ok(())
            }
            Confirmed::Duplicate => Ok(()),
            Confirmed::Lost => {
                // The booking moved on, or a night is no longer held by it: re-read to tell.
                let Some(now) = booking_or_log(st, &booking_id).await? else { return Ok(()) };
                match rules::on_success(&now, &intent) {
                    Success::Recorded => resume_or_acknowledge(st, d, event_id, now, &intent.id).await,
                    Success::Stray(why) => refund_stray(st, d, event_id, &intent, Some(&booking_id), why).await,
                    Success::Confirm | Success::NotConfirmable => {
                        refund_late_payment(st, d, event_id, now, &intent).await
                    }
                }
            }
        },
    }
}

/// A success for a payment the booking recorded already changes nothing: only a refund of it
/// that is not finished (pending, or failed) is driven on, as recorded.
async fn resume_or_acknowledge(
    st: &State,
    d: Delivery,
    event_id: &str,
    b: BookingRecord,
    intent_id: &str,
) -> anyhow::Result<()> {
    match &b.refund {
        Some(r) if r.status != RefundStatus::Succeeded => {
            tracing::info!(
                booking_id = b.id(),
                status = r.status.as_str(),
                "payment recorded before; its refund is resumed"
            );
            drive_refund(st, d, event_id, b, intent_id).await
        }
        _ => {
            tracing::info!(booking_id = b.id(), "payment recorded on the booking before: nothing changes");
            Ok(acknowledge(st, event_id).await?)
        }
    }
}

enum Confirmed {
    Applied,
    Duplicate,
    /// The booking's or a night's condition failed: it cannot be confirmed.
    Lost,
}

/// ONE transaction: the receipt, the booking (`pending_payment` with this intent ->
/// `confirmed`, paid), every night `held` by it -> `booked` (condition: still held by this
/// booking, whatever the clock), and `booking.confirmed`. At most 90 + 3 items.
async fn confirm(st: &State, event_id: &str, b: &BookingRecord, intent: &IntentObject) -> anyhow::Result<Confirmed> {
    let now = st.clock.now();
    let paid = b.total();
    let mut items = vec![sqs::receipt_put(&st.table, event_id, CONSUMER, now)?];
    // The sweep finds a confirmed booking again when its stay ends (shared::booking::sweep_keys).
    let (sweep_pk, sweep_sk) = booking::sweep_keys(b.id(), &b.item.check_out_at);
    let update = Expr::new(
        "SET #status = :confirmed, #p.#ps = :succeeded, #p.#paid = :paid, #p.#accepted = :now, \
         #updated = :now, #spk = :spk, #ssk = :ssk REMOVE #p.#failure",
    )
    .name("#spk", booking::SWEEP_PK_ATTR)
    .name("#ssk", booking::SWEEP_SK_ATTR)
    .s(":spk", sweep_pk)
    .s(":ssk", sweep_sk)
    .name("#status", booking::STATUS_ATTR)
    .name("#p", "payment")
    .name("#ps", "status")
    .name("#paid", "amount_paid")
    .name("#accepted", "accepted_at")
    .name("#failure", "failure")
    .name("#updated", "updated_at")
    .s(":confirmed", BookingStatus::Confirmed.as_str())
    .s(":succeeded", "succeeded")
    .ser(":paid", &paid)?
    .s(":now", now.to_string());
    // Never a booking whose payment was refunded as not confirmable (one record, no way back).
    let condition = record::condition_status_is(BookingStatus::PendingPayment)
        .and(record::condition_intent_is(&intent.id))
        .and(Expr::new("attribute_not_exists(#c_refund)").name("#c_refund", record::REFUND_ATTR));
    items.push(st.table.tx_update(&booking::key(b.id()), &update, Some(&condition))?);
    let book = Expr::new("SET #k = :booked, #nu = :now REMOVE #hold, #ttl")
        .name("#k", night::KIND_ATTR)
        .name("#nu", "updated_at")
        .name("#hold", night::HOLD_EXPIRES_AT_ATTR)
        .name("#ttl", "expires_at")
        .s(":booked", night::NightKind::Booked.as_str())
        .s(":now", now.to_string());
    let held = night::condition_held_by(b.id());
    for d in nights(b.item.check_in, b.item.check_out)? {
        items.push(st.table.tx_update(&night::key(&b.item.listing_id, d), &book, Some(&held))?);
    }
    let event = Envelope::new(
        BookingConfirmed {
            booking_id: b.id().to_owned(),
            listing_id: b.item.listing_id.clone(),
            guest_id: b.item.guest.user_id.clone(),
            host_id: b.item.host.user_id.clone(),
            check_in: b.item.check_in,
            check_out: b.item.check_out,
            amount_paid: paid,
            payment_intent_id: intent.id.clone(),
        },
        now,
    );
    items.push(events::outbox_put(&st.table, &event)?);
    // Room for one more item (at most 90 + 4 of DynamoDB's 100).
    match st.table.transact(items).await {
        Ok(()) => Ok(Confirmed::Applied),
        Err(e) if sqs::is_duplicate(&e) => {
            tracing::info!("event already applied: skipped");
            Ok(Confirmed::Duplicate)
        }
        Err(e) if e.is_condition_failure() => {
            tracing::warn!(failed_items = ?e.failed_items(), "booking can no longer be confirmed");
            Ok(Confirmed::Lost)
        }
        Err(e) => Err(e.into()),
    }
}

/// A payment for a booking that cannot be confirmed: recorded as paid and refunded in full,
/// never confirmed.
async fn refund_late_payment(
    st: &State,
    d: Delivery,
    event_id: &str,
    b: BookingRecord,
    intent: &IntentObject,
) -> anyhow::Result<()> {
    // `rules::on_success` only calls a payment "not confirmable" once `same_money` found that
    // it charged exactly the booking's total (compared in Stripe's units): that total, in ISO
    // minor units, is what was paid.
    let paid = b.total();
    tracing::warn!(
        booking_id = b.id(),
        status = b.item.status.as_str(),
        "payment for a booking that cannot be confirmed: refunding in full"
    );
    refund(st, d, event_id, b, &intent.id, paid, Some(paid), RefundReason::NotConfirmable).await
}

// ---------------------------------------------------------------------------------------------
// payment_intent.payment_failed
// ---------------------------------------------------------------------------------------------

async fn on_intent_failed(st: &State, event_id: &str, intent: IntentObject) -> anyhow::Result<()> {
    let Some(booking_id) = intent.booking_id().map(str::to_owned) else {
        tracing::warn!(payment_intent_id = %intent.id, "intent without a booking_id: not Roost's, acknowledged");
        return Ok(());
    };
    let Some(b) = booking_or_log(st, &booking_id).await? else { return Ok(()) };
    if !rules::failure_applies(&b, &intent) {
        tracing::info!(booking_id, status = b.item.status.as_str(), "payment failure no longer relevant: acknowledged");
        return Ok(acknowledge(st, event_id).await?);
    }
    let now = st.clock.now();
    let failure = intent.failure_code();
    let update = Expr::new("SET #p.#ps = :failed, #p.#failure = :failure, #updated = :now")
        .name("#p", "payment")
        .name("#ps", "status")
        .name("#failure", "failure")
        .name("#updated", "updated_at")
        .s(":failed", "failed")
        .s(":failure", failure.clone().unwrap_or_else(|| "payment_failed".to_owned()))
        .s(":now", now.to_string());
    let condition =
        record::condition_status_is(BookingStatus::PendingPayment).and(record::condition_intent_is(&intent.id)).and(
            Expr::new("#c_p.#c_ps <> :c_succeeded")
                .name("#c_p", "payment")
                .name("#c_ps", "status")
                .s(":c_succeeded", "succeeded"),
        );
    let event = Envelope::new(
        PaymentFailed {
            booking_id: booking_id.clone(),
            guest_id: b.item.guest.user_id.clone(),
            payment_intent_id: intent.id.clone(),
            failure_code: failure,
        },
        now,
    );
    let effect = vec![
        st.table.tx_update(&booking::key(&booking_id), &update, Some(&condition))?,
        events::outbox_put(&st.table, &event)?,
    ];
    match sqs::apply_once(&st.table, event_id, CONSUMER, now, effect).await {
        Ok(Once::Applied) => {
            tracing::info!(booking_id, "payment failure recorded");
            Ok(())
        }
        Ok(Once::Duplicate) => Ok(()),
        Err(e) if e.is_condition_failure() => {
            // Paid, cancelled or expired meanwhile (events come in any order): nothing to record.
            tracing::info!(booking_id, "payment failure no longer relevant: acknowledged");
            Ok(acknowledge(st, event_id).await?)
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// charge.refunded
// ---------------------------------------------------------------------------------------------

async fn on_charge_refunded(st: &State, _d: Delivery, event_id: &str, charge: ChargeObject) -> anyhow::Result<()> {
    let intent_id = charge.payment_intent_id().map(str::to_owned);
    // A refund of a stray payment completes its own record, never a booking's.
    if let Some(pi) = &intent_id
        && let Some(stray) = st.table.get::<StrayPayment>(&stray_key(pi)).await?
    {
        return stray_refunded(st, event_id, &stray, &charge).await;
    }
    let booking_id = match charge.metadata.get(payments::stripe::META_BOOKING_ID) {
        Some(id) => Some(id.clone()),
        None => match &intent_id {
            Some(pi) => record::booking_of_intent(&st.table, pi).await?,
            None => None,
        },
    };
    let Some(booking_id) = booking_id else {
        tracing::warn!(charge_id = %charge.id, "refunded charge of no known booking: acknowledged");
        return Ok(());
    };
    let Some(b) = booking_or_log(st, &booking_id).await? else { return Ok(()) };
    if intent_id.is_some() && intent_id.as_deref() != b.intent_id() {
        tracing::warn!(
            booking_id,
            "a refunded charge of an intent that is not the booking's: acknowledged, booking unchanged"
        );
        return Ok(acknowledge(st, event_id).await?);
    }
    let Some(refund) = b.refund.clone() else {
        tracing::warn!(booking_id, "a refund Roost did not ask for (dashboard?): acknowledged, booking unchanged");
        return Ok(acknowledge(st, event_id).await?);
    };
    if refund.status == RefundStatus::Succeeded {
        tracing::info!(booking_id, "refund already recorded as succeeded");
        return Ok(acknowledge(st, event_id).await?);
    }
    // `amount_refunded` is in Stripe's units (shared::currencies), the record in ISO minor units.
    let recorded_at_stripe = shared::currencies::to_stripe(refund.money()).unwrap_or(i64::MAX);
    if charge.amount_refunded < recorded_at_stripe {
        tracing::warn!(booking_id, "the charge is refunded less than the pending refund: waiting for more");
        return Ok(acknowledge(st, event_id).await?);
    }
    // Pending, or failed and refunded since (an operator's refund in Stripe's dashboard).
    let refund_id = refund.refund_id.clone().or_else(|| charge.latest_refund_id().map(str::to_owned));
    refund_succeeded(st, event_id, &b, &refund, refund_id.as_deref().unwrap_or(charge.id.as_str())).await
}

// ---------------------------------------------------------------------------------------------
// booking.cancelled / booking.expired
// ---------------------------------------------------------------------------------------------

async fn on_booking_cancelled(st: &State, d: Delivery, event: Envelope<BookingCancelled>) -> anyhow::Result<()> {
    let data = &event.data;
    let Some(b) = booking_or_log(st, &data.booking_id).await? else { return Ok(()) };
    cancel_open_intent(st, d, &b).await?;
    let due = rules::refund_amount(data.refund_due, b.amount_paid)?;
    match (due, b.intent_id()) {
        (Some(amount), Some(intent_id)) => {
            let intent_id = intent_id.to_owned();
            refund(st, d, &event.id, b, &intent_id, amount, None, RefundReason::Cancelled).await
        }
        (Some(_), None) => {
            tracing::error!(booking_id = %data.booking_id, "refund due on a booking with no payment intent: nothing to refund");
            Ok(acknowledge(st, &event.id).await?)
        }
        (None, _) => {
            if data.refund_due.amount > 0 {
                tracing::warn!(booking_id = %data.booking_id, "refund due but nothing recorded as paid: nothing refunded");
            }
            Ok(acknowledge(st, &event.id).await?)
        }
    }
}

async fn on_booking_expired(st: &State, d: Delivery, event: Envelope<BookingExpired>) -> anyhow::Result<()> {
    let Some(b) = booking_or_log(st, &event.data.booking_id).await? else { return Ok(()) };
    cancel_open_intent(st, d, &b).await?;
    Ok(acknowledge(st, &event.id).await?)
}

/// Cancels the booking's intent unless it was paid. Stripe refuses to cancel an intent that is
/// no longer open (succeeded, processing, canceled): that is fine, and only logged (a success
/// arriving later finds the booking cancelled and is refunded).
async fn cancel_open_intent(st: &State, d: Delivery, b: &BookingRecord) -> anyhow::Result<()> {
    let Some(intent_id) = b.intent_id() else { return Ok(()) };
    if b.item.payment.status == shared::booking::PaymentStatus::Succeeded {
        return Ok(());
    }
    match at_stripe(st, d, || st.stripe.cancel_intent(intent_id)).await {
        Ok(intent) => {
            tracing::info!(booking_id = b.id(), payment_intent_id = intent_id, status = %intent.status, "payment intent cancelled");
            Ok(())
        }
        Err(StripeStep::Stripe(e @ StripeFailure::Api { .. })) if e.is_client_error() => {
            tracing::info!(booking_id = b.id(), payment_intent_id = intent_id, error = %e, "payment intent not cancellable (no longer open)");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// The refund state machine of a booking's own payment
// ---------------------------------------------------------------------------------------------

/// Refunds `amount` of the booking's payment, once:
/// 1. a `pending` record on the booking (condition: none yet; at most one refund per booking),
///    with `paid` recorded alongside when the payment was not (a late payment);
/// 2. [`drive_refund`]: the invariant, Stripe, and the outcome recorded.
#[allow(clippy::too_many_arguments)]
async fn refund(
    st: &State,
    d: Delivery,
    event_id: &str,
    b: BookingRecord,
    intent_id: &str,
    amount: Money,
    paid: Option<Money>,
    reason: RefundReason,
) -> anyhow::Result<()> {
    let b = match &b.refund {
        Some(existing) => {
            if existing.money() != amount {
                tracing::warn!(
                    booking_id = b.id(),
                    "a refund was already requested for this booking: keeping it (one per booking)"
                );
            }
            b
        }
        None => {
            let new = RefundRecord {
                amount: amount.amount,
                currency: amount.currency,
                status: RefundStatus::Pending,
                reason: Some(reason),
                refund_id: None,
                requested_at: Some(night::instant(st.clock.now())),
                succeeded_at: None,
                failure_reason: None,
                failed_at: None,
            };
            match record_pending(st, b.id(), &new, paid, reason).await {
                Ok(()) => {
                    let mut written = b;
                    written.refund = Some(new);
                    if let Some(paid) = paid {
                        written.amount_paid = Some(paid);
                        written.item.payment.status = shared::booking::PaymentStatus::Succeeded;
                    }
                    written
                }
                Err(e) if e.is_condition_failure() => {
                    // Recorded by a concurrent delivery, or the booking changed: decide on what is stored.
                    let now = record::read_booking(&st.table, b.id())
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("booking {} vanished", b.id()))?;
                    if now.refund.is_none() {
                        anyhow::bail!("booking {}: it changed while its refund was being recorded; retrying", b.id());
                    }
                    now
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    drive_refund(st, d, event_id, b, intent_id).await
}

/// Drives the booking's refund record (pending, or failed before) to Stripe and records the
/// outcome: `succeeded` (one transaction with the receipt and `refund.issued`); pending at
/// Stripe (its id kept; `charge.refunded` completes it); or a failure: the message returns to
/// the queue, and on its last receive the record becomes `failed` with Stripe's reason.
async fn drive_refund(
    st: &State,
    d: Delivery,
    event_id: &str,
    b: BookingRecord,
    intent_id: &str,
) -> anyhow::Result<()> {
    let Some(record) = b.refund.clone() else { anyhow::bail!("booking {}: no refund to drive", b.id()) };
    if record.status == RefundStatus::Succeeded {
        return Ok(acknowledge(st, event_id).await?);
    }
    let answer = match refund_at_stripe(st, d, Owner::Booking(&b), intent_id).await {
        Ok(answer) => answer,
        Err(RefundAttempt::Refused(e)) => return Err(e.into()),
        Err(RefundAttempt::Busy(e)) => return Err(busy(e, b.id())),
        Err(RefundAttempt::Failed(e)) => {
            return refund_attempt_failed(st, d, &Owner::Booking(&b), e).await;
        }
    };
    match answer.status.as_deref() {
        Some("succeeded") => refund_succeeded(st, event_id, &b, &record, &answer.id).await,
        Some("failed") | Some("canceled") => {
            let e = StripeStep::Stripe(StripeFailure::Api {
                status: 200,
                code: Some(format!("refund_{}", answer.status.as_deref().unwrap_or("failed"))),
                decline_code: None,
                message: None,
            });
            refund_attempt_failed(st, d, &Owner::Booking(&b), e).await
        }
        _ => {
            let update = Expr::new("SET #r.#rid = :rid, #r.#rs = :pending REMOVE #r.#why")
                .name("#r", record::REFUND_ATTR)
                .name("#rid", "refund_id")
                .name("#rs", "status")
                .name("#why", "failure_reason")
                .s(":rid", &answer.id)
                .s(":pending", RefundStatus::Pending.as_str());
            let unfinished = Expr::new("#c_r.#c_rs IN (:c_pending, :c_failed)")
                .name("#c_r", record::REFUND_ATTR)
                .name("#c_rs", "status")
                .s(":c_pending", RefundStatus::Pending.as_str())
                .s(":c_failed", RefundStatus::Failed.as_str());
            match st.table.update(&booking::key(b.id()), &update, Some(&unfinished)).await {
                Ok(()) => {}
                Err(e) if e.is_condition_failure() => {}
                Err(e) => return Err(e.into()),
            }
            tracing::info!(booking_id = b.id(), refund_id = %answer.id, "refund pending at Stripe: charge.refunded completes it");
            Ok(acknowledge(st, event_id).await?)
        }
    }
}

/// Whose refund a Stripe refund call is.
enum Owner<'a> {
    /// The booking's own payment: its `refund` record, under the refund invariant.
    Booking(&'a BookingRecord),
    /// A payment that is not its booking's: refunded in full, once.
    Stray(&'a StrayPayment),
}

impl Owner<'_> {
    /// `metadata.booking_id` on the Stripe refund: how a later delivery finds and adopts it.
    fn tag(&self) -> String {
        match self {
            Self::Booking(b) => b.id().to_owned(),
            Self::Stray(s) => stray_refund_tag(&s.payment_intent_id),
        }
    }

    /// The item holding the refund record, and the path of the record's attributes on it: `#r.`
    /// (the booking's `refund` map, named by [`Owner::on_record`]), or none (a stray payment's
    /// item is its refund record).
    fn record_target(&self) -> (Key, &'static str) {
        match self {
            Self::Booking(b) => (booking::key(b.id()), "#r."),
            Self::Stray(s) => (stray_key(&s.payment_intent_id), ""),
        }
    }

    /// `e` with the name its record path uses.
    fn on_record(&self, e: Expr) -> Expr {
        match self {
            Self::Booking(_) => e.name("#r", record::REFUND_ATTR),
            Self::Stray(_) => e,
        }
    }

    /// Condition: the refund is not finished (`pending`, or `failed` and retried).
    fn condition_unfinished(&self) -> Expr {
        let (_, at) = self.record_target();
        self.on_record(
            Expr::new(format!("{at}#c_rs IN (:c_pending, :c_failed)"))
                .name("#c_rs", "status")
                .s(":c_pending", RefundStatus::Pending.as_str())
                .s(":c_failed", RefundStatus::Failed.as_str()),
        )
    }

    fn idempotency_key(&self) -> String {
        match self {
            Self::Booking(b) => refund_idempotency_key(b.id()),
            Self::Stray(s) => format!("refund-stray-{}", s.payment_intent_id),
        }
    }
}

enum RefundAttempt {
    /// The invariant refused it: no Stripe call was made (alarmed; the message goes to the DLQ).
    Refused(rules::RefundError),
    /// Stripe refused or did not answer in time.
    Failed(StripeStep),
    /// Another delivery holds the refund claim (or the refund finished meanwhile): the message
    /// returns to the queue, and its redelivery adopts or acknowledges what that one did.
    Busy(TableError),
}

/// THE ONE PLACE a Stripe refund is made. The refund invariant is checked first
/// (`rules::check_refund`: the booking's refund never above what the policy owes; a stray
/// payment's never above its own amount); then a refund already made at Stripe for the same
/// owner is adopted (localstripe ignores `Idempotency-Key`, Stripe forgets keys after 24 h, a
/// DLQ redrive can come days later), else one is created.
async fn refund_at_stripe(st: &State, d: Delivery, owner: Owner<'_>, intent_id: &str) -> Result<Refund, RefundAttempt> {
    let amount = match &owner {
        Owner::Booking(b) => rules::check_refund(b),
        // A stray payment's amounts are Stripe's, as its intent carried them; the gateway takes
        // ISO minor units (shared::currencies), so they are converted back first.
        Owner::Stray(s) => rules::check_stray_refund(s.amount, s.refund_amount).and_then(|amount| {
            shared::currencies::from_stripe_code(amount, &s.currency)
                .map_err(|e| rules::RefundError::NotInStripeUnits(e.to_string()))
        }),
    };
    let amount = amount.map_err(|e| {
        tracing::error!(
            { ALERT_FIELD } = "refund_invariant_violated",
            owner = %owner.tag(),
            error = %e,
            "REFUND REFUSED: it would exceed what is owed"
        );
        RefundAttempt::Refused(e)
    })?;
    let claim = claim_refund(st, &owner).await.map_err(RefundAttempt::Busy)?;
    let answer = adopt_or_create_refund(st, d, &owner, intent_id, amount).await;
    release_refund_claim(st, &owner, &claim).await;
    answer
}

/// The refund call's critical section: a refund of the intent already made for this owner is
/// adopted, else one is created. Run only under the owner's refund claim.
async fn adopt_or_create_refund(
    st: &State,
    d: Delivery,
    owner: &Owner<'_>,
    intent_id: &str,
    amount: Money,
) -> Result<Refund, RefundAttempt> {
    let tag = owner.tag();
    let existing = at_stripe(st, d, || st.stripe.refunds_of(intent_id))
        .await
        .map_err(RefundAttempt::Failed)?
        .into_iter()
        .find(|r| r.metadata.get(payments::stripe::META_BOOKING_ID) == Some(&tag));
    if let Some(r) = existing {
        tracing::info!(owner = %tag, refund_id = %r.id, "refund already at Stripe: adopted");
        return Ok(r);
    }
    let new = NewRefund {
        payment_intent: intent_id.to_owned(),
        amount: amount.amount,
        currency: amount.currency,
        booking_id: tag,
        idempotency_key: owner.idempotency_key(),
    };
    at_stripe(st, d, || st.stripe.create_refund(&new)).await.map_err(RefundAttempt::Failed)
}

/// How long a refund claim holds: longer than the function's timeout (10 s in the template),
/// so a claim outlives the invocation that took it, whatever it was doing when it was stopped.
pub const REFUND_CLAIM: jiff::SignedDuration = jiff::SignedDuration::from_secs(15);

/// The owner's refund claim: `claim_id` and `claim_until` on the booking's `refund` record (or
/// on the stray payment's item). Two deliveries of one refund (a duplicate SQS message, a
/// success and a cancellation at once) must not both find "no refund at Stripe yet" and both
/// create one: Stripe's Idempotency-Key would make the second a replay, but Stripe forgets keys
/// after 24 h and localstripe ignores them. So "adopt or create" runs under a claim taken with
/// a condition (unfinished, and no live claim); a delivery that finds the claim taken fails its
/// message, and its redelivery adopts the refund the holder made.
async fn claim_refund(st: &State, owner: &Owner<'_>) -> Result<String, TableError> {
    let now = st.clock.now();
    let until = now.checked_add(REFUND_CLAIM).unwrap_or(now);
    let claim_id = shared::ids::new_id("rcl");
    let (key, at) = owner.record_target();
    let update = owner.on_record(
        Expr::new(format!("SET {at}#cid = :cid, {at}#cuntil = :cuntil"))
            .name("#cid", "claim_id")
            .name("#cuntil", "claim_until")
            .s(":cid", &claim_id)
            .s(":cuntil", night::instant(until)),
    );
    let no_live_claim = owner.on_record(
        Expr::new(format!("attribute_not_exists({at}#c_until) OR {at}#c_until < :c_now"))
            .name("#c_until", "claim_until")
            .s(":c_now", night::instant(now)),
    );
    let condition = owner.condition_unfinished().and(no_live_claim);
    st.table.update(&key, &update, Some(&condition)).await?;
    Ok(claim_id)
}

/// Ends the claim once the Stripe call is over (made, adopted or failed): a later delivery then
/// adopts what was made. A release that fails only delays the next attempt until the claim ends.
async fn release_refund_claim(st: &State, owner: &Owner<'_>, claim_id: &str) {
    let (key, at) = owner.record_target();
    let update = owner.on_record(
        Expr::new(format!("REMOVE {at}#cid, {at}#cuntil")).name("#cid", "claim_id").name("#cuntil", "claim_until"),
    );
    let condition =
        owner.on_record(Expr::new(format!("{at}#c_cid = :c_cid")).name("#c_cid", "claim_id").s(":c_cid", claim_id));
    if let Err(e) = st.table.update(&key, &update, Some(&condition)).await {
        tracing::warn!(owner = %owner.tag(), error = %e, "refund claim not released: it ends by itself");
    }
}

/// The refund claim was not taken: the message fails and comes back.
fn busy(e: TableError, owner: &str) -> anyhow::Error {
    if e.is_condition_failure() {
        anyhow::anyhow!("{owner}: another delivery holds the refund claim, or the refund finished: retried later")
    } else {
        anyhow::Error::new(e).context(format!("{owner}: taking the refund claim"))
    }
}

/// A refund attempt failed at Stripe: the message fails and returns after the visibility
/// timeout; on the queue's last receive the record becomes `failed` with Stripe's reason
/// (alarmed), and the message still fails, to the DLQ, whose redrive retries it.
async fn refund_attempt_failed(st: &State, d: Delivery, owner: &Owner<'_>, e: StripeStep) -> anyhow::Result<()> {
    if !d.is_last(st) {
        return Err(anyhow::Error::new(e).context(format!(
            "refund not made (receive {} of {}): the message returns to the queue",
            d.receive_count, st.max_receive_count
        )));
    }
    let reason = e.reason();
    let now = night::instant(st.clock.now());
    let (key, at) = owner.record_target();
    let update = owner.on_record(
        Expr::new(format!("SET {at}#rs = :failed, {at}#why = :why, {at}#at = :now"))
            .name("#rs", "status")
            .name("#why", "failure_reason")
            .name("#at", "failed_at")
            .s(":failed", RefundStatus::Failed.as_str())
            .s(":why", &reason)
            .s(":now", &now),
    );
    let unfinished = owner.condition_unfinished();
    match st.table.update(&key, &update, Some(&unfinished)).await {
        Ok(()) => {}
        Err(c) if c.is_condition_failure() => {
            tracing::info!(owner = %owner.tag(), "refund finished meanwhile: not recorded as failed");
            return Ok(());
        }
        Err(c) => return Err(c.into()),
    }
    tracing::error!(
        { ALERT_FIELD } = "refund_failed",
        owner = %owner.tag(),
        receive_count = d.receive_count,
        reason = %reason,
        "REFUND FAILED on the last attempt: recorded as failed; an operator retries it (docs/payments.md)"
    );
    Err(anyhow::Error::new(e)
        .context("refund failed on the queue's last receive: recorded as failed, the message goes to the DLQ"))
}

async fn record_pending(
    st: &State,
    booking_id: &str,
    new: &RefundRecord,
    paid: Option<Money>,
    reason: RefundReason,
) -> Result<(), TableError> {
    let mut set = String::from("SET #r = :r, #updated = :now");
    let mut update = Expr::new("")
        .name("#r", record::REFUND_ATTR)
        .name("#updated", "updated_at")
        .ser(":r", new)?
        .s(":now", st.clock.now().to_string());
    if let Some(paid) = paid {
        set.push_str(", #p.#ps = :succeeded, #p.#paid = :paid");
        update = update
            .name("#p", "payment")
            .name("#ps", "status")
            .name("#paid", "amount_paid")
            .s(":succeeded", "succeeded")
            .ser(":paid", &paid)?;
    }
    update.expression = set;
    let mut condition = Expr::exists().and(Expr::new("attribute_not_exists(#c_r)").name("#c_r", record::REFUND_ATTR));
    condition = match reason {
        // What the decision read: a payment that never confirmed the booking, which cannot be
        // confirmed any more (no status goes back to pending, and a refund blocks `confirm`).
        RefundReason::NotConfirmable => condition.and(
            Expr::new("attribute_not_exists(#c_p.#c_acc) AND #c_status <> :c_confirmed AND #c_status <> :c_completed")
                .name("#c_p", "payment")
                .name("#c_acc", "accepted_at")
                .name("#c_status", booking::STATUS_ATTR)
                .s(":c_confirmed", BookingStatus::Confirmed.as_str())
                .s(":c_completed", BookingStatus::Completed.as_str()),
        ),
        RefundReason::Cancelled => condition.and(record::condition_status_is(BookingStatus::Cancelled)),
    };
    st.table.update(&booking::key(booking_id), &update, Some(&condition)).await
}

/// ONE transaction: the receipt, `refund.status` pending (or failed) -> succeeded,
/// `refund.issued`. If the refund was recorded as succeeded meanwhile (the other of API answer
/// and webhook came first), only the receipt is written.
async fn refund_succeeded(
    st: &State,
    event_id: &str,
    b: &BookingRecord,
    record: &RefundRecord,
    refund_id: &str,
) -> anyhow::Result<()> {
    let now = st.clock.now();
    let update = Expr::new("SET #r.#rs = :succeeded, #r.#rid = :rid, #r.#at = :now, #updated = :now REMOVE #r.#why")
        .name("#r", record::REFUND_ATTR)
        .name("#rs", "status")
        .name("#rid", "refund_id")
        .name("#at", "succeeded_at")
        .name("#why", "failure_reason")
        .name("#updated", "updated_at")
        .s(":succeeded", RefundStatus::Succeeded.as_str())
        .s(":rid", refund_id)
        .s(":now", night::instant(now));
    let condition = Expr::new("#c_r.#c_rs IN (:c_pending, :c_failed)")
        .name("#c_r", record::REFUND_ATTR)
        .name("#c_rs", "status")
        .s(":c_pending", RefundStatus::Pending.as_str())
        .s(":c_failed", RefundStatus::Failed.as_str());
    let event = Envelope::new(
        RefundIssued {
            booking_id: b.id().to_owned(),
            guest_id: b.item.guest.user_id.clone(),
            refund_id: refund_id.to_owned(),
            amount: record.money(),
        },
        now,
    );
    let effect = vec![
        st.table.tx_update(&booking::key(b.id()), &update, Some(&condition))?,
        events::outbox_put(&st.table, &event)?,
    ];
    match sqs::apply_once(&st.table, event_id, CONSUMER, now, effect).await {
        Ok(Once::Applied) => {
            tracing::info!(booking_id = b.id(), refund_id, amount = %record.money(), "refund succeeded");
            Ok(())
        }
        Ok(Once::Duplicate) => Ok(()),
        Err(e) if e.is_condition_failure() => {
            tracing::info!(booking_id = b.id(), "refund already recorded as succeeded");
            Ok(acknowledge(st, event_id).await?)
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Stray payments: a success that is not its booking's payment
// ---------------------------------------------------------------------------------------------

/// `PAYMENT_INTENT#<pi>` / `STRAY_PAYMENT`: the record of a payment that is not its booking's
/// (another intent, another amount or currency, or no such booking), refunded in full. One per
/// intent (created with a condition), so however often its success comes, it is refunded once;
/// the booking item is never touched (its own payment and refund stay as they are).
pub const STRAY_SK: &str = "STRAY_PAYMENT";
pub const STRAY_ITEM_TYPE: &str = "stray_payment";

pub fn stray_key(payment_intent_id: &str) -> Key {
    Key::new(format!("PAYMENT_INTENT#{payment_intent_id}"), STRAY_SK)
}

/// `metadata.booking_id` of a stray payment's refund at Stripe: never a booking's id, so a
/// booking's own refund never adopts it (and the other way round).
pub fn stray_refund_tag(payment_intent_id: &str) -> String {
    format!("stray:{payment_intent_id}")
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct StrayPayment {
    #[serde(flatten)]
    pub key: Key,
    #[serde(rename = "type")]
    pub item_type: String,
    pub payment_intent_id: String,
    /// The booking its metadata names, when that booking exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<String>,
    pub reason: StrayReason,
    /// The intent's amount in Stripe's units and its currency, as Stripe sent them: what was
    /// taken, and what is refunded.
    pub amount: i64,
    pub currency: String,
    /// What is refunded: all of it.
    pub refund_amount: i64,
    pub status: RefundStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub requested_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
}

async fn refund_stray(
    st: &State,
    d: Delivery,
    event_id: &str,
    intent: &IntentObject,
    booking_id: Option<&str>,
    reason: StrayReason,
) -> anyhow::Result<()> {
    let new = StrayPayment {
        key: stray_key(&intent.id),
        item_type: STRAY_ITEM_TYPE.to_owned(),
        payment_intent_id: intent.id.clone(),
        booking_id: booking_id.map(str::to_owned),
        reason,
        amount: intent.amount,
        currency: intent.currency.to_ascii_lowercase(),
        refund_amount: intent.amount,
        status: RefundStatus::Pending,
        refund_id: None,
        failure_reason: None,
        requested_at: night::instant(st.clock.now()),
        succeeded_at: None,
        failed_at: None,
    };
    let stray = match st.table.put_new(&new).await {
        Ok(()) => {
            tracing::error!(
                { ALERT_FIELD } = "stray_payment",
                payment_intent_id = %intent.id,
                booking_id,
                reason = reason.as_str(),
                amount = intent.amount,
                currency = %intent.currency,
                "PAYMENT DOES NOT MATCH ITS BOOKING: refunding it in full"
            );
            new
        }
        Err(e) if e.is_condition_failure() => st
            .table
            .get::<StrayPayment>(&stray_key(&intent.id))
            .await?
            .ok_or_else(|| anyhow::anyhow!("stray payment {} vanished", intent.id))?,
        Err(e) => return Err(e.into()),
    };
    if stray.status == RefundStatus::Succeeded {
        tracing::info!(payment_intent_id = %intent.id, "stray payment refunded before: nothing changes");
        return Ok(acknowledge(st, event_id).await?);
    }
    let answer = match refund_at_stripe(st, d, Owner::Stray(&stray), &intent.id).await {
        Ok(answer) => answer,
        Err(RefundAttempt::Refused(e)) => return Err(e.into()),
        Err(RefundAttempt::Busy(e)) => return Err(busy(e, &stray.payment_intent_id)),
        Err(RefundAttempt::Failed(e)) => return refund_attempt_failed(st, d, &Owner::Stray(&stray), e).await,
    };
    if answer.succeeded() {
        stray_refund_succeeded(st, event_id, &stray, &answer.id).await
    } else {
        let update = Expr::new("SET #rid = :rid").name("#rid", "refund_id").s(":rid", &answer.id);
        st.table.update(&stray_key(&intent.id), &update, Some(&Expr::exists())).await?;
        tracing::info!(payment_intent_id = %intent.id, refund_id = %answer.id, "stray refund pending at Stripe: charge.refunded completes it");
        Ok(acknowledge(st, event_id).await?)
    }
}

/// ONE transaction: the receipt and the stray record pending (or failed) -> succeeded.
async fn stray_refund_succeeded(
    st: &State,
    event_id: &str,
    stray: &StrayPayment,
    refund_id: &str,
) -> anyhow::Result<()> {
    let now = night::instant(st.clock.now());
    let update = Expr::new("SET #rs = :succeeded, #rid = :rid, #at = :now REMOVE #why")
        .name("#rs", "status")
        .name("#rid", "refund_id")
        .name("#at", "succeeded_at")
        .name("#why", "failure_reason")
        .s(":succeeded", RefundStatus::Succeeded.as_str())
        .s(":rid", refund_id)
        .s(":now", &now);
    let condition = Expr::new("#c_rs IN (:c_pending, :c_failed)")
        .name("#c_rs", "status")
        .s(":c_pending", RefundStatus::Pending.as_str())
        .s(":c_failed", RefundStatus::Failed.as_str());
    let effect = vec![st.table.tx_update(&stray.key, &update, Some(&condition))?];
    match sqs::apply_once(&st.table, event_id, CONSUMER, st.clock.now(), effect).await {
        Ok(Once::Applied) => {
            tracing::info!(payment_intent_id = %stray.payment_intent_id, refund_id, "stray payment refunded");
            Ok(())
        }
        Ok(Once::Duplicate) => Ok(()),
        Err(e) if e.is_condition_failure() => Ok(acknowledge(st, event_id).await?),
        Err(e) => Err(e.into()),
    }
}

/// `charge.refunded` for a stray payment's intent.
async fn stray_refunded(st: &State, event_id: &str, stray: &StrayPayment, charge: &ChargeObject) -> anyhow::Result<()> {
    if stray.status == RefundStatus::Succeeded || charge.amount_refunded < stray.refund_amount {
        return Ok(acknowledge(st, event_id).await?);
    }
    let refund_id = stray.refund_id.clone().or_else(|| charge.latest_refund_id().map(str::to_owned));
    stray_refund_succeeded(st, event_id, stray, refund_id.as_deref().unwrap_or(charge.id.as_str())).await
}
