//! One function per message kind of the payment-events queue: read, decide (`rules`), write
//! (`store`), and for refunds drive the state machine (`refunds`).

use shared::booking::PaymentStatus;
use shared::events::{BookingAccepted, BookingCancelled, BookingDeclined, BookingExpired, Envelope};
use shared::metrics::{self, Business};
use shared::sqs::Once;
use shared::table::TableError;

use crate::events::EventsState;
use crate::events::budget::{Delivery, StripeStep, at_stripe};
use crate::events::refunds::{
    RefundOrder, acknowledge, drive_refund, refund, refund_stray, refund_succeeded, stray_refunded,
};
use crate::events::rules::{self, Authorization, ChargeObject, IntentObject, StrayReason, Success};
use crate::events::store::{self, Confirmed};
use crate::store::{BookingRecord, RefundReason, RefundStatus};
use crate::stripe::StripeFailure;

/// The booking, or `None` (logged) when it does not exist: such an event is acknowledged.
async fn booking_or_log(st: &EventsState, booking_id: &str) -> Result<Option<BookingRecord>, TableError> {
    let b = crate::store::read_booking(&st.table, booking_id).await?;
    if b.is_none() {
        tracing::warn!(booking_id, "event for an unknown booking: acknowledged");
    }
    Ok(b)
}

/// The booking an intent names in its metadata; `None` (logged) for an intent Roost did not
/// create, whose events are acknowledged.
fn roost_booking_of(intent: &IntentObject) -> Option<String> {
    let booking_id = intent.booking_id().map(str::to_owned);
    if booking_id.is_none() {
        tracing::warn!(payment_intent_id = %intent.id, "intent without a booking_id: not Roost's, acknowledged");
    }
    booking_id
}

// ---------------------------------------------------------------------------------------------
// payment_intent.succeeded
// ---------------------------------------------------------------------------------------------

pub async fn on_intent_succeeded(
    st: &EventsState,
    d: Delivery,
    event_id: &str,
    intent: IntentObject,
) -> anyhow::Result<()> {
    let Some(booking_id) = roost_booking_of(&intent) else { return Ok(()) };
    let Some(b) = crate::store::read_booking(&st.table, &booking_id).await? else {
        return refund_stray(st, d, event_id, &intent, None, StrayReason::UnknownBooking).await;
    };
    match rules::on_success(&b, &intent) {
        Success::Stray(why) => refund_stray(st, d, event_id, &intent, Some(&booking_id), why).await,
        Success::Recorded => resume_or_acknowledge(st, d, event_id, b, &intent.id).await,
        Success::NotConfirmable => refund_late_payment(st, d, event_id, b, &intent).await,
        Success::Confirm => confirm_or_refund(st, d, event_id, b, &intent).await,
        Success::RecordCapture => record_capture(st, event_id, b, &intent).await,
    }
}

/// An accepted request's capture, recorded as its payment; a booking that changed meanwhile
/// (recorded by a redelivery under another event id) is acknowledged.
async fn record_capture(
    st: &EventsState,
    event_id: &str,
    b: BookingRecord,
    intent: &IntentObject,
) -> anyhow::Result<()> {
    match store::record_capture(&st.table, event_id, &b, intent, st.clock.now()).await {
        Ok(Once::Applied) => {
            metrics::count(Business::PaymentsSucceeded);
            tracing::info!(booking_id = b.id(), payment_intent_id = %intent.id, "accepted request's payment captured");
            Ok(())
        }
        Ok(Once::Duplicate) => Ok(()),
        Err(e) if e.is_condition_failure() => {
            tracing::info!(booking_id = b.id(), "capture recorded before: acknowledged");
            Ok(acknowledge(st, event_id).await?)
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// payment_intent.amount_capturable_updated (a request's card authorised)
// ---------------------------------------------------------------------------------------------

pub async fn on_intent_authorized(
    st: &EventsState,
    d: Delivery,
    event_id: &str,
    intent: IntentObject,
) -> anyhow::Result<()> {
    let Some(booking_id) = roost_booking_of(&intent) else { return Ok(()) };
    let Some(b) = booking_or_log(st, &booking_id).await? else { return Ok(()) };
    let now = st.clock.now();
    match rules::on_authorized(&b, &intent, now) {
        Authorization::Recorded => Ok(acknowledge(st, event_id).await?),
        Authorization::Release => release_authorization(st, d, event_id, &intent.id, &booking_id).await,
        Authorization::Record => {
            let answer_by = b
                .item
                .hold_expires_at
                .as_deref()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| anyhow::anyhow!("request {booking_id} without a readable hold"))?;
            match store::record_authorization(&st.table, event_id, &b, &intent, answer_by, now).await {
                Ok(Once::Applied) => {
                    tracing::info!(booking_id, "request's card authorised: its host is asked");
                    Ok(())
                }
                Ok(Once::Duplicate) => Ok(()),
                // Withdrawn, declined or expired meanwhile: judge the booking as it is now.
                Err(e) if e.is_condition_failure() => {
                    let Some(now_b) = booking_or_log(st, &booking_id).await? else { return Ok(()) };
                    match rules::on_authorized(&now_b, &intent, st.clock.now()) {
                        Authorization::Release => release_authorization(st, d, event_id, &intent.id, &booking_id).await,
                        _ => Ok(acknowledge(st, event_id).await?),
                    }
                }
                Err(e) => Err(e.into()),
            }
        }
    }
}

/// Cancels an authorisation nobody will capture (a client error means it is no longer open:
/// captured or cancelled already), then acknowledges the event.
async fn release_authorization(
    st: &EventsState,
    d: Delivery,
    event_id: &str,
    intent_id: &str,
    booking_id: &str,
) -> anyhow::Result<()> {
    cancel_at_stripe(st, d, booking_id, intent_id, "authorisation nobody will capture").await?;
    Ok(acknowledge(st, event_id).await?)
}

/// Cancels an intent at Stripe; one Stripe refuses to cancel (4xx: it is no longer open,
/// captured or cancelled already) is fine. `what` says what was cancelled, for the log.
async fn cancel_at_stripe(
    st: &EventsState,
    d: Delivery,
    booking_id: &str,
    intent_id: &str,
    what: &str,
) -> anyhow::Result<()> {
    match at_stripe(st, d, || st.stripe.cancel_intent(intent_id)).await {
        Ok(intent) => {
            tracing::info!(booking_id, payment_intent_id = intent_id, status = %intent.status, "{what}: cancelled");
            Ok(())
        }
        Err(StripeStep::Stripe(e @ StripeFailure::Api { .. })) if e.is_client_error() => {
            tracing::info!(booking_id, payment_intent_id = intent_id, error = %e, "{what}: no longer open");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Confirms the booking; one that cannot be confirmed any more (it moved on, or lost a night)
/// is re-read and its payment recorded, refunded as stray, or refunded as late.
async fn confirm_or_refund(
    st: &EventsState,
    d: Delivery,
    event_id: &str,
    b: BookingRecord,
    intent: &IntentObject,
) -> anyhow::Result<()> {
    let booking_id = b.id().to_owned();
    let nights = rules::nights(b.item.check_in, b.item.check_out)?;
    match store::confirm(&st.table, event_id, &b, intent, &nights, st.clock.now()).await? {
        Confirmed::Applied => {
            metrics::count(Business::PaymentsSucceeded);
            metrics::count(Business::BookingsConfirmed);
            tracing::info!(booking_id, payment_intent_id = %intent.id, "booking confirmed");
            Ok(())
        }
        Confirmed::Duplicate => Ok(()),
        Confirmed::Lost => {
            // The booking moved on, or a night is no longer held by it: re-read to tell.
            let Some(now) = booking_or_log(st, &booking_id).await? else { return Ok(()) };
            match rules::on_success(&now, intent) {
                Success::Recorded => resume_or_acknowledge(st, d, event_id, now, &intent.id).await,
                Success::Stray(why) => refund_stray(st, d, event_id, intent, Some(&booking_id), why).await,
                Success::Confirm | Success::NotConfirmable => refund_late_payment(st, d, event_id, now, intent).await,
                Success::RecordCapture => record_capture(st, event_id, now, intent).await,
            }
        }
    }
}

/// A success for a payment the booking recorded already changes nothing: only a refund of it
/// that is not finished (pending, or failed) is driven on, as recorded.
async fn resume_or_acknowledge(
    st: &EventsState,
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

/// A payment for a booking that cannot be confirmed: recorded as paid and refunded in full,
/// never confirmed.
async fn refund_late_payment(
    st: &EventsState,
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
    let order =
        RefundOrder { intent_id: &intent.id, amount: paid, paid: Some(paid), reason: RefundReason::NotConfirmable };
    refund(st, d, event_id, b, order).await
}

// ---------------------------------------------------------------------------------------------
// payment_intent.payment_failed
// ---------------------------------------------------------------------------------------------

pub async fn on_intent_failed(st: &EventsState, event_id: &str, intent: IntentObject) -> anyhow::Result<()> {
    let Some(booking_id) = roost_booking_of(&intent) else { return Ok(()) };
    let Some(b) = booking_or_log(st, &booking_id).await? else { return Ok(()) };
    if !rules::failure_applies(&b, &intent) {
        tracing::info!(booking_id, status = b.item.status.as_str(), "payment failure no longer relevant: acknowledged");
        return Ok(acknowledge(st, event_id).await?);
    }
    match store::record_payment_failure(&st.table, event_id, &b, &intent, st.clock.now()).await {
        Ok(Once::Applied) => {
            metrics::count(Business::PaymentsFailed);
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

pub async fn on_charge_refunded(
    st: &EventsState,
    _d: Delivery,
    event_id: &str,
    charge: ChargeObject,
) -> anyhow::Result<()> {
    let intent_id = charge.payment_intent_id().map(str::to_owned);
    // A refund of a stray payment completes its own record, never a booking's.
    if let Some(pi) = &intent_id
        && let Some(stray) = store::read_stray(&st.table, pi).await?
    {
        return stray_refunded(st, event_id, &stray, &charge).await;
    }
    let booking_id = match charge.metadata.get(crate::stripe::META_BOOKING_ID) {
        Some(id) => Some(id.clone()),
        None => match &intent_id {
            Some(pi) => crate::store::booking_of_intent(&st.table, pi).await?,
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

pub async fn on_booking_cancelled(
    st: &EventsState,
    d: Delivery,
    event: Envelope<BookingCancelled>,
) -> anyhow::Result<()> {
    let data = &event.data;
    let Some(b) = booking_or_log(st, &data.booking_id).await? else { return Ok(()) };
    cancel_open_intent(st, d, &b).await?;
    let due = rules::refund_amount(data.refund_due, b.amount_paid)?;
    match (due, b.intent_id()) {
        (Some(amount), Some(intent_id)) => {
            let intent_id = intent_id.to_owned();
            let order = RefundOrder { intent_id: &intent_id, amount, paid: None, reason: RefundReason::Cancelled };
            refund(st, d, &event.id, b, order).await
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

pub async fn on_booking_expired(st: &EventsState, d: Delivery, event: Envelope<BookingExpired>) -> anyhow::Result<()> {
    let Some(b) = booking_or_log(st, &event.data.booking_id).await? else { return Ok(()) };
    cancel_open_intent(st, d, &b).await?;
    Ok(acknowledge(st, &event.id).await?)
}

/// A declined request: its card's authorisation is cancelled (nothing was charged).
pub async fn on_booking_declined(
    st: &EventsState,
    d: Delivery,
    event: Envelope<BookingDeclined>,
) -> anyhow::Result<()> {
    let Some(b) = booking_or_log(st, &event.data.booking_id).await? else { return Ok(()) };
    cancel_open_intent(st, d, &b).await?;
    Ok(acknowledge(st, &event.id).await?)
}

/// An accepted request: its authorised payment is captured, once (Stripe's `Idempotency-Key`
/// per booking, and an intent already captured is left as it is). `payment_intent.succeeded`
/// then records it on the booking. A capture Stripe refuses (the authorisation lapsed or was
/// cancelled) fails the message: retried, then the DLQ and its alarm (docs/operations.md).
pub async fn on_booking_accepted(
    st: &EventsState,
    d: Delivery,
    event: Envelope<BookingAccepted>,
) -> anyhow::Result<()> {
    let data = &event.data;
    let Some(b) = booking_or_log(st, &data.booking_id).await? else { return Ok(()) };
    if b.item.payment.status == PaymentStatus::Succeeded {
        tracing::info!(booking_id = %data.booking_id, "accepted request already paid");
        return Ok(acknowledge(st, &event.id).await?);
    }
    let intent_id = data.payment_intent_id.as_str();
    let current = at_stripe(st, d, || st.stripe.retrieve_intent(intent_id)).await?;
    if current.status == "requires_capture" {
        let key = format!("capture-{}", data.booking_id);
        let captured = at_stripe(st, d, || st.stripe.capture_intent(intent_id, &key)).await?;
        tracing::info!(booking_id = %data.booking_id, payment_intent_id = intent_id, status = %captured.status, "accepted request captured");
    } else if current.status != "succeeded" && current.status != "processing" {
        anyhow::bail!("accepted request {}: its intent is {}, not capturable", data.booking_id, current.status);
    }
    Ok(acknowledge(st, &event.id).await?)
}

/// Cancels the booking's intent unless it was paid. Stripe refuses to cancel an intent that is
/// no longer open (succeeded, processing, canceled): that is fine, and only logged (a success
/// arriving later finds the booking cancelled and is refunded).
async fn cancel_open_intent(st: &EventsState, d: Delivery, b: &BookingRecord) -> anyhow::Result<()> {
    let Some(intent_id) = b.intent_id() else { return Ok(()) };
    if b.item.payment.status == PaymentStatus::Succeeded {
        return Ok(());
    }
    cancel_at_stripe(st, d, b.id(), intent_id, "open payment intent").await
}
