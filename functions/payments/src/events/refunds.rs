//! The refund state machine: a booking's own payment (its `refund` record, under the refund
//! invariant) and stray payments (refunded in full on a record of their own), both through THE
//! ONE PLACE a Stripe refund is made ([`refund_at_stripe`]).

use shared::metrics::{self, Business};
use shared::money::Money;
use shared::sqs::Once;
use shared::table::TableError;

use crate::events::budget::{Delivery, StripeStep, at_stripe};
use crate::events::rules::{self, ChargeObject, IntentObject, StrayReason};
use crate::events::store::{self, RefundOwner, StrayPayment};
use crate::events::{ALERT_FIELD, EventsState};
use crate::store::{BookingRecord, RefundReason, RefundRecord, RefundStatus};
use crate::stripe::{NewRefund, Refund, StripeFailure};

/// Stripe's idempotency key for a booking's refund (at most one refund per booking).
pub fn refund_idempotency_key(booking_id: &str) -> String {
    format!("refund-{booking_id}")
}

/// `metadata.booking_id` of a stray payment's refund at Stripe: never a booking's id, so a
/// booking's own refund never adopts it (and the other way round).
pub fn stray_refund_tag(payment_intent_id: &str) -> String {
    format!("stray:{payment_intent_id}")
}

/// Records the event as applied with no other effect.
pub async fn acknowledge(st: &EventsState, event_id: &str) -> Result<(), TableError> {
    store::acknowledge(&st.table, event_id, st.clock.now()).await
}

// ---------------------------------------------------------------------------------------------
// The refund state machine of a booking's own payment
// ---------------------------------------------------------------------------------------------

/// A refund of the booking's payment to record and make.
pub struct RefundOrder<'a> {
    pub intent_id: &'a str,
    pub amount: Money,
    /// The payment to record alongside, when the booking has not recorded it (a late payment).
    pub paid: Option<Money>,
    pub reason: RefundReason,
}

/// Refunds `amount` of the booking's payment, once:
/// 1. a `pending` record on the booking (condition: none yet; at most one refund per booking),
///    with `paid` recorded alongside when the payment was not (a late payment);
/// 2. [`drive_refund`]: the invariant, Stripe, and the outcome recorded.
pub async fn refund(
    st: &EventsState,
    d: Delivery,
    event_id: &str,
    b: BookingRecord,
    order: RefundOrder<'_>,
) -> anyhow::Result<()> {
    let b = match &b.refund {
        Some(existing) => {
            if existing.money() != order.amount {
                tracing::warn!(
                    booking_id = b.id(),
                    "a refund was already requested for this booking: keeping it (one per booking)"
                );
            }
            b
        }
        None => record_pending(st, b, &order).await?,
    };
    drive_refund(st, d, event_id, b, order.intent_id).await
}

/// Step 1 of [`refund`]: the booking as it is once its `pending` record is written (by this
/// delivery or a concurrent one).
async fn record_pending(st: &EventsState, b: BookingRecord, order: &RefundOrder<'_>) -> anyhow::Result<BookingRecord> {
    let now = st.clock.now();
    let new = RefundRecord {
        amount: order.amount.amount,
        currency: order.amount.currency,
        status: RefundStatus::Pending,
        reason: Some(order.reason),
        refund_id: None,
        requested_at: Some(shared::night::instant(now)),
        succeeded_at: None,
        failure_reason: None,
        failed_at: None,
    };
    match store::record_pending_refund(&st.table, b.id(), &new, order.paid, order.reason, now).await {
        Ok(()) => {
            let mut written = b;
            written.refund = Some(new);
            if let Some(paid) = order.paid {
                // A late payment: recorded as succeeded now (and refunded in full).
                metrics::count(Business::PaymentsSucceeded);
                written.amount_paid = Some(paid);
                written.item.payment.status = shared::booking::PaymentStatus::Succeeded;
            }
            Ok(written)
        }
        Err(e) if e.is_condition_failure() => {
            // Recorded by a concurrent delivery, or the booking changed: decide on what is stored.
            let now = crate::store::read_booking(&st.table, b.id())
                .await?
                .ok_or_else(|| anyhow::anyhow!("booking {} vanished", b.id()))?;
            if now.refund.is_none() {
                anyhow::bail!("booking {}: it changed while its refund was being recorded; retrying", b.id());
            }
            Ok(now)
        }
        Err(e) => Err(e.into()),
    }
}

/// Drives the booking's refund record (pending, or failed before) to Stripe and records the
/// outcome: `succeeded` (one transaction with the receipt and `refund.issued`); pending at
/// Stripe (its id kept; `charge.refunded` completes it); or a failure: the message returns to
/// the queue, and on its last receive the record becomes `failed` with Stripe's reason.
pub async fn drive_refund(
    st: &EventsState,
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
            store::keep_pending_refund_id(&st.table, b.id(), &answer.id).await?;
            tracing::info!(booking_id = b.id(), refund_id = %answer.id, "refund pending at Stripe: charge.refunded completes it");
            Ok(acknowledge(st, event_id).await?)
        }
    }
}

/// The refund succeeded: recorded with the receipt and `refund.issued`. If it was recorded as
/// succeeded meanwhile (the other of API answer and webhook came first), only the receipt is
/// written.
pub async fn refund_succeeded(
    st: &EventsState,
    event_id: &str,
    b: &BookingRecord,
    record: &RefundRecord,
    refund_id: &str,
) -> anyhow::Result<()> {
    match store::refund_succeeded(&st.table, event_id, b, record, refund_id, st.clock.now()).await {
        Ok(Once::Applied) => {
            metrics::count(Business::RefundsIssued);
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
// The one Stripe refund call, for either owner
// ---------------------------------------------------------------------------------------------

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

    fn idempotency_key(&self) -> String {
        match self {
            Self::Booking(b) => refund_idempotency_key(b.id()),
            Self::Stray(s) => format!("refund-stray-{}", s.payment_intent_id),
        }
    }

    /// The item holding the refund record.
    fn record(&self) -> RefundOwner<'_> {
        match self {
            Self::Booking(b) => RefundOwner::Booking(b.id()),
            Self::Stray(s) => RefundOwner::Stray(&s.payment_intent_id),
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
/// DLQ redrive can come days later), else one is created. "Adopt or create" runs under the
/// owner's refund claim (`store::claim_refund`).
async fn refund_at_stripe(
    st: &EventsState,
    d: Delivery,
    owner: Owner<'_>,
    intent_id: &str,
) -> Result<Refund, RefundAttempt> {
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
    let claim = store::claim_refund(&st.table, owner.record(), st.clock.now()).await.map_err(RefundAttempt::Busy)?;
    let answer = adopt_or_create_refund(st, d, &owner, intent_id, amount).await;
    // A release that fails only delays the next attempt until the claim ends.
    if let Err(e) = store::release_refund_claim(&st.table, owner.record(), &claim).await {
        tracing::warn!(owner = %owner.tag(), error = %e, "refund claim not released: it ends by itself");
    }
    answer
}

/// The refund call's critical section: a refund of the intent already made for this owner is
/// adopted, else one is created. Run only under the owner's refund claim.
async fn adopt_or_create_refund(
    st: &EventsState,
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
        .find(|r| r.metadata.get(crate::stripe::META_BOOKING_ID) == Some(&tag));
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
async fn refund_attempt_failed(st: &EventsState, d: Delivery, owner: &Owner<'_>, e: StripeStep) -> anyhow::Result<()> {
    if !d.is_last(st) {
        return Err(anyhow::Error::new(e).context(format!(
            "refund not made (receive {} of {}): the message returns to the queue",
            d.receive_count, st.max_receive_count
        )));
    }
    let reason = e.reason();
    match store::record_refund_failed(&st.table, owner.record(), &reason, st.clock.now()).await {
        Ok(()) => metrics::count(Business::RefundsFailed),
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

// ---------------------------------------------------------------------------------------------
// Stray payments: a success that is not its booking's payment
// ---------------------------------------------------------------------------------------------

/// Refunds in full a payment that is not its booking's, once, on its own record
/// (`store::StrayPayment`): the booking is never touched.
pub async fn refund_stray(
    st: &EventsState,
    d: Delivery,
    event_id: &str,
    intent: &IntentObject,
    booking_id: Option<&str>,
    reason: StrayReason,
) -> anyhow::Result<()> {
    let stray = stray_record(st, intent, booking_id, reason).await?;
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
        store::keep_stray_refund_id(&st.table, &intent.id, &answer.id).await?;
        tracing::info!(payment_intent_id = %intent.id, refund_id = %answer.id, "stray refund pending at Stripe: charge.refunded completes it");
        Ok(acknowledge(st, event_id).await?)
    }
}

/// The intent's stray payment record: created now (alarmed), or as an earlier delivery made it.
async fn stray_record(
    st: &EventsState,
    intent: &IntentObject,
    booking_id: Option<&str>,
    reason: StrayReason,
) -> anyhow::Result<StrayPayment> {
    let new = StrayPayment::pending(intent, booking_id, reason, st.clock.now());
    match store::create_stray(&st.table, &new).await {
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
            Ok(new)
        }
        Err(e) if e.is_condition_failure() => store::read_stray(&st.table, &intent.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("stray payment {} vanished", intent.id)),
        Err(e) => Err(e.into()),
    }
}

/// The receipt and the stray record pending (or failed) -> succeeded.
async fn stray_refund_succeeded(
    st: &EventsState,
    event_id: &str,
    stray: &StrayPayment,
    refund_id: &str,
) -> anyhow::Result<()> {
    match store::stray_refund_succeeded(&st.table, event_id, stray, refund_id, st.clock.now()).await {
        Ok(Once::Applied) => {
            metrics::count(Business::RefundsIssued);
            tracing::info!(payment_intent_id = %stray.payment_intent_id, refund_id, "stray payment refunded");
            Ok(())
        }
        Ok(Once::Duplicate) => Ok(()),
        Err(e) if e.is_condition_failure() => Ok(acknowledge(st, event_id).await?),
        Err(e) => Err(e.into()),
    }
}

/// `charge.refunded` for a stray payment's intent.
pub async fn stray_refunded(
    st: &EventsState,
    event_id: &str,
    stray: &StrayPayment,
    charge: &ChargeObject,
) -> anyhow::Result<()> {
    if stray.status == RefundStatus::Succeeded || charge.amount_refunded < stray.refund_amount {
        return Ok(acknowledge(st, event_id).await?);
    }
    let refund_id = stray.refund_id.clone().or_else(|| charge.latest_refund_id().map(str::to_owned));
    stray_refund_succeeded(st, event_id, stray, refund_id.as_deref().unwrap_or(charge.id.as_str())).await
}
