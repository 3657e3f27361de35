//! The `payment-events` function: applies, once each, in any order and however often they are
//! delivered, the messages of the payment-events queue:
//!
//! - Stripe events the webhook verified and enqueued (`{id, type, data.object}`):
//!   `payment_intent.succeeded` confirms the booking (or refunds a payment that came too late),
//!   `payment_intent.payment_failed` records the failure, `charge.refunded` completes a refund;
//! - domain events from the topic (envelopes): `booking.cancelled` refunds what is due and
//!   cancels an open intent, `booking.expired` cancels an open intent.
//!
//! Exactly once (docs/payments.md): every effect that lives in DynamoDB commits in ONE
//! transaction with the event's receipt (`shared::sqs::receipt_put`, first item) and, where
//! other contexts care, its outbox event; effects outside DynamoDB (Stripe refunds) are a state
//! machine on the booking (`refund.status` pending -> succeeded) whose conditions make a repeat
//! a no-op, and whose Stripe call carries the idempotency key `refund-<booking id>`. Everything
//! that is not ours (unknown types, unknown bookings, someone else's intent) is logged and
//! acknowledged; anything that fails returns the message to the queue, and after 5 receives it
//! moves to the DLQ (alarmed).

pub mod rules;

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::Value;
use shared::booking::{self, BookingStatus};
use shared::events::{
    self, BookingCancelled, BookingConfirmed, BookingExpired, Envelope, EventType, PaymentFailed, RefundIssued,
};
use shared::money::Money;
use shared::night;
use shared::sqs::{self, Once, Received};
use shared::table::{Expr, TableError};
use shared::{SharedClock, Table};
use tracing::Instrument;

use payments::record::{self, BookingRecord, RefundReason, RefundRecord, RefundStatus};
use payments::stripe::{Gateway, NewRefund, StripeFailure};

use crate::rules::{ChargeObject, IntentObject, Success};

/// The consumer name in receipts (`EVENT#<id>` / `CONSUMER#payment-events`).
pub const CONSUMER: &str = "payment-events";
/// Messages of a batch applied at once.
pub const CONCURRENCY: usize = sqs::DEFAULT_CONCURRENCY;

/// Built once per process in `main`.
#[derive(Clone)]
pub struct State {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub stripe: Arc<dyn Gateway>,
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

pub async fn handle_batch(st: &State, event: SqsEvent) -> Result<SqsBatchResponse, sqs::BatchError> {
    sqs::run_batch(event, CONCURRENCY, |msg: Received<Value>| async move { apply(st, msg.body).await }).await
}

/// Applies one message.
pub async fn apply(st: &State, body: Value) -> anyhow::Result<()> {
    match classify(body)? {
        Incoming::Stripe(event) => {
            let span = tracing::info_span!("stripe_event", event_id = %event.id, event_type = %event.event_type);
            apply_stripe(st, event).instrument(span).await
        }
        Incoming::Domain(envelope) => {
            let span = tracing::info_span!("domain_event", event_id = %envelope.id, event_type = %envelope.event_type);
            apply_domain(st, envelope).instrument(span).await
        }
    }
}

async fn apply_stripe(st: &State, event: StripeEvent) -> anyhow::Result<()> {
    tracing::info!("stripe event received");
    match event.event_type.as_str() {
        "payment_intent.succeeded" => on_intent_succeeded(st, &event.id, intent(&event)?).await,
        "payment_intent.payment_failed" => on_intent_failed(st, &event.id, intent(&event)?).await,
        "charge.refunded" => on_charge_refunded(st, &event.id, charge(&event)?).await,
        other => {
            tracing::info!(event_type = other, "stripe event type not handled: acknowledged");
            Ok(())
        }
    }
}

async fn apply_domain(st: &State, envelope: Envelope) -> anyhow::Result<()> {
    tracing::info!("domain event received");
    match envelope.event_type {
        EventType::BookingCancelled => on_booking_cancelled(st, envelope.decode()?).await,
        EventType::BookingExpired => on_booking_expired(st, envelope.decode()?).await,
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

/// The nights of a stay: check-in up to, not including, check-out.
pub fn nights(check_in: Date, check_out: Date) -> anyhow::Result<Vec<Date>> {
    let mut out = Vec::new();
    let mut d = check_in;
    while d < check_out {
        out.push(d);
        d = d.tomorrow()?;
        if out.len() > shared::listing::MAX_STAY_NIGHTS as usize {
            anyhow::bail!("a stay of more than {} nights", shared::listing::MAX_STAY_NIGHTS);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// payment_intent.succeeded
// ---------------------------------------------------------------------------------------------

async fn on_intent_succeeded(st: &State, event_id: &str, intent: IntentObject) -> anyhow::Result<()> {
    let Some(booking_id) = intent.booking_id().map(str::to_owned) else {
        tracing::warn!(payment_intent_id = %intent.id, "intent without a booking_id: not Roost's, acknowledged");
        return Ok(());
    };
    let Some(b) = booking_or_log(st, &booking_id).await? else { return Ok(()) };
    match rules::on_success(&b, &intent) {
        Success::Mismatch(why) => {
            tracing::error!(booking_id, payment_intent_id = %intent.id, why, "PAYMENT DOES NOT MATCH ITS BOOKING: not applied");
            Ok(acknowledge(st, event_id).await?)
        }
        Success::AlreadyConfirmed => {
            tracing::info!(booking_id, "booking already confirmed by this intent");
            Ok(acknowledge(st, event_id).await?)
        }
        Success::NotConfirmable => refund_late_payment(st, event_id, b, &intent).await,
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
                    Success::AlreadyConfirmed => Ok(acknowledge(st, event_id).await?),
                    _ => refund_late_payment(st, event_id, now, &intent).await,
                }
            }
        },
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
        "SET #status = :confirmed, #p.#ps = :succeeded, #p.#paid = :paid, #updated = :now, \
         #spk = :spk, #ssk = :ssk REMOVE #p.#failure",
    )
    .name("#spk", booking::SWEEP_PK_ATTR)
    .name("#ssk", booking::SWEEP_SK_ATTR)
    .s(":spk", sweep_pk)
    .s(":ssk", sweep_sk)
    .name("#status", booking::STATUS_ATTR)
    .name("#p", "payment")
    .name("#ps", "status")
    .name("#paid", "amount_paid")
    .name("#failure", "failure")
    .name("#updated", "updated_at")
    .s(":confirmed", BookingStatus::Confirmed.as_str())
    .s(":succeeded", "succeeded")
    .ser(":paid", &paid)?
    .s(":now", now.to_string());
    let condition =
        record::condition_status_is(BookingStatus::PendingPayment).and(record::condition_intent_is(&intent.id));
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
    event_id: &str,
    b: BookingRecord,
    intent: &IntentObject,
) -> anyhow::Result<()> {
    let paid = Money::new(intent.amount, b.total().currency);
    tracing::warn!(
        booking_id = b.id(),
        status = b.item.status.as_str(),
        "payment for a booking that cannot be confirmed: refunding in full"
    );
    refund(st, event_id, b, &intent.id, paid, Some(paid), RefundReason::NotConfirmable).await
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

async fn on_charge_refunded(st: &State, event_id: &str, charge: ChargeObject) -> anyhow::Result<()> {
    let booking_id = match charge.metadata.get(payments::stripe::META_BOOKING_ID) {
        Some(id) => Some(id.clone()),
        None => match charge.payment_intent_id() {
            Some(pi) => record::booking_of_intent(&st.table, pi).await?,
            None => None,
        },
    };
    let Some(booking_id) = booking_id else {
        tracing::warn!(charge_id = %charge.id, "refunded charge of no known booking: acknowledged");
        return Ok(());
    };
    let Some(b) = booking_or_log(st, &booking_id).await? else { return Ok(()) };
    let Some(refund) = b.refund.clone() else {
        tracing::warn!(booking_id, "a refund Roost did not ask for (dashboard?): acknowledged, booking unchanged");
        return Ok(acknowledge(st, event_id).await?);
    };
    if refund.status == RefundStatus::Succeeded {
        tracing::info!(booking_id, "refund already recorded as succeeded");
        return Ok(acknowledge(st, event_id).await?);
    }
    if charge.amount_refunded < refund.amount {
        tracing::warn!(booking_id, "the charge is refunded less than the pending refund: waiting for more");
        return Ok(acknowledge(st, event_id).await?);
    }
    let refund_id = refund.refund_id.clone().or_else(|| charge.latest_refund_id().map(str::to_owned));
    refund_succeeded(st, event_id, &b, &refund, refund_id.as_deref().unwrap_or(charge.id.as_str())).await
}

// ---------------------------------------------------------------------------------------------
// booking.cancelled / booking.expired
// ---------------------------------------------------------------------------------------------

async fn on_booking_cancelled(st: &State, event: Envelope<BookingCancelled>) -> anyhow::Result<()> {
    let data = &event.data;
    let Some(b) = booking_or_log(st, &data.booking_id).await? else { return Ok(()) };
    cancel_open_intent(st, &b).await?;
    let due = rules::refund_amount(data.refund_due, b.amount_paid)?;
    match (due, b.intent_id()) {
        (Some(amount), Some(intent_id)) => {
            let intent_id = intent_id.to_owned();
            refund(st, &event.id, b, &intent_id, amount, None, RefundReason::Cancelled).await
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

async fn on_booking_expired(st: &State, event: Envelope<BookingExpired>) -> anyhow::Result<()> {
    let Some(b) = booking_or_log(st, &event.data.booking_id).await? else { return Ok(()) };
    cancel_open_intent(st, &b).await?;
    Ok(acknowledge(st, &event.id).await?)
}

/// Cancels the booking's intent unless it was paid. Stripe refuses to cancel an intent that is
/// no longer open (succeeded, processing, canceled): that is fine, and only logged (a success
/// arriving later finds the booking cancelled and is refunded).
async fn cancel_open_intent(st: &State, b: &BookingRecord) -> anyhow::Result<()> {
    let Some(intent_id) = b.intent_id() else { return Ok(()) };
    if b.item.payment.status == shared::booking::PaymentStatus::Succeeded {
        return Ok(());
    }
    match st.stripe.cancel_intent(intent_id).await {
        Ok(intent) => {
            tracing::info!(booking_id = b.id(), payment_intent_id = intent_id, status = %intent.status, "payment intent cancelled");
            Ok(())
        }
        Err(e @ StripeFailure::Api { .. }) if e.is_client_error() => {
            tracing::info!(booking_id = b.id(), payment_intent_id = intent_id, error = %e, "payment intent not cancellable (no longer open)");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// The refund state machine
// ---------------------------------------------------------------------------------------------

/// Refunds `amount` of the booking's payment, once:
/// 1. a `pending` record on the booking (condition: none yet), with `paid` recorded alongside
///    when the payment was not (a late payment);
/// 2. Stripe: an existing refund of the intent for this booking is adopted (localstripe ignores
///    `Idempotency-Key`, and Stripe keeps keys 24 h only), else one is created with the key
///    `refund-<booking id>`;
/// 3. Stripe says `succeeded`: ONE transaction records it (`pending` -> `succeeded`), with the
///    receipt and `refund.issued`. A refund still pending at Stripe is completed by `charge.refunded`.
async fn refund(
    st: &State,
    event_id: &str,
    b: BookingRecord,
    intent_id: &str,
    amount: Money,
    paid: Option<Money>,
    reason: RefundReason,
) -> anyhow::Result<()> {
    let record = match b.refund.clone() {
        Some(existing) => existing,
        None => {
            let new = RefundRecord {
                amount: amount.amount,
                currency: amount.currency,
                status: RefundStatus::Pending,
                reason: Some(reason),
                refund_id: None,
                requested_at: Some(night::instant(st.clock.now())),
                succeeded_at: None,
            };
            match record_pending(st, b.id(), &new, paid).await {
                Ok(()) => new,
                Err(e) if e.is_condition_failure() => {
                    // Recorded by a concurrent delivery: carry on with its record.
                    let now = record::read_booking(&st.table, b.id())
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("booking {} vanished", b.id()))?;
                    now.refund
                        .ok_or_else(|| anyhow::anyhow!("booking {}: refund condition failed, no refund", b.id()))?
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    if record.money() != amount {
        tracing::warn!(
            booking_id = b.id(),
            "a refund was already requested for this booking: keeping it (one per booking)"
        );
    }
    if record.status == RefundStatus::Succeeded {
        return Ok(acknowledge(st, event_id).await?);
    }
    let existing = st
        .stripe
        .refunds_of(intent_id)
        .await?
        .into_iter()
        .find(|r| r.metadata.get(payments::stripe::META_BOOKING_ID).map(String::as_str) == Some(b.id()));
    let stripe_refund = match existing {
        Some(r) => {
            tracing::info!(booking_id = b.id(), refund_id = %r.id, "refund already at Stripe: adopted");
            r
        }
        None => {
            st.stripe
                .create_refund(&NewRefund {
                    payment_intent: intent_id.to_owned(),
                    amount: record.amount,
                    currency: record.currency,
                    booking_id: b.id().to_owned(),
                    idempotency_key: refund_idempotency_key(b.id()),
                })
                .await?
        }
    };
    if stripe_refund.succeeded() {
        refund_succeeded(st, event_id, &b, &record, &stripe_refund.id).await
    } else {
        let update = Expr::new("SET #r.#rid = :rid")
            .name("#r", record::REFUND_ATTR)
            .name("#rid", "refund_id")
            .s(":rid", &stripe_refund.id);
        st.table.update(&booking::key(b.id()), &update, Some(&Expr::exists())).await?;
        tracing::info!(booking_id = b.id(), refund_id = %stripe_refund.id, "refund pending at Stripe: charge.refunded completes it");
        Ok(acknowledge(st, event_id).await?)
    }
}

async fn record_pending(
    st: &State,
    booking_id: &str,
    new: &RefundRecord,
    paid: Option<Money>,
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
    let condition = Expr::exists().and(Expr::new("attribute_not_exists(#c_r)").name("#c_r", record::REFUND_ATTR));
    st.table.update(&booking::key(booking_id), &update, Some(&condition)).await
}

/// ONE transaction: the receipt, `refund.status` pending -> succeeded, `refund.issued`. If the
/// refund was recorded as succeeded meanwhile (the other of API answer and webhook came first),
/// only the receipt is written.
async fn refund_succeeded(
    st: &State,
    event_id: &str,
    b: &BookingRecord,
    record: &RefundRecord,
    refund_id: &str,
) -> anyhow::Result<()> {
    let now = st.clock.now();
    let update = Expr::new("SET #r.#rs = :succeeded, #r.#rid = :rid, #r.#at = :now, #updated = :now")
        .name("#r", record::REFUND_ATTR)
        .name("#rs", "status")
        .name("#rid", "refund_id")
        .name("#at", "succeeded_at")
        .name("#updated", "updated_at")
        .s(":succeeded", RefundStatus::Succeeded.as_str())
        .s(":rid", refund_id)
        .s(":now", night::instant(now));
    let condition = Expr::new("#c_r.#c_rs = :c_pending")
        .name("#c_r", record::REFUND_ATTR)
        .name("#c_rs", "status")
        .s(":c_pending", RefundStatus::Pending.as_str());
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
