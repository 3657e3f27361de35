//! Every write payment-events makes (its reads are `crate::store`'s): the transactions that
//! apply an event once with its receipt (`shared::sqs`), the refund record's transitions and
//! claim, and the stray payment item. Timestamps are stored as everywhere in the table:
//! RFC 3339 UTC, whole seconds (`shared::night::instant`).

use aws_sdk_dynamodb::types::TransactWriteItem;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use shared::Table;
use shared::booking::{self, BookingStatus};
use shared::events::{self, BookingConfirmed, BookingRequested, Envelope, PaymentFailed, RefundIssued};
use shared::keys::Key;
use shared::money::Money;
use shared::night;
use shared::payout;
use shared::sqs::{self, Once};
use shared::table::{Expr, TableError, TransactError, Transaction};

use crate::events::CONSUMER;
use crate::events::rules::{IntentObject, StrayReason};
use crate::store::{
    BookingRecord, REFUND_ATTR, RefundReason, RefundRecord, RefundStatus, condition_intent_is, condition_status_is,
};

/// Records the event as applied with no other effect.
pub async fn acknowledge(table: &Table, event_id: &str, now: Timestamp) -> Result<(), TableError> {
    sqs::apply_once(table, event_id, CONSUMER, now, Vec::new()).await.map(|_| ())
}

/// The outbox item of `event` (`shared::events::outbox_put`), for a transaction of this module.
fn outbox_put<T: Serialize>(table: &Table, event: &Envelope<T>) -> Result<TransactWriteItem, TableError> {
    events::outbox_put(table, event).map_err(|e| TableError::Unexpected(anyhow::Error::new(e).context("outbox item")))
}

// ---------------------------------------------------------------------------------------------
// payment_intent.succeeded and payment_intent.payment_failed
// ---------------------------------------------------------------------------------------------

/// How the confirming transaction ended.
pub enum Confirmed {
    Applied,
    Duplicate,
    /// The booking's or a night's condition failed: it cannot be confirmed.
    Lost,
}

/// The items of the confirming transaction, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfirmItem {
    /// The event's receipt: its condition failing means the event was applied before.
    Receipt,
    Booking,
    Night(Date),
    /// `booking.confirmed` in the outbox.
    Event,
}

/// ONE transaction: the receipt, the booking (`pending_payment` with this intent ->
/// `confirmed`, paid), every night `held` by it -> `booked` (condition: still held by this
/// booking, whatever the clock), and `booking.confirmed`. At most 90 + 3 items.
pub async fn confirm(
    table: &Table,
    event_id: &str,
    b: &BookingRecord,
    intent: &IntentObject,
    nights: &[Date],
    now: Timestamp,
) -> Result<Confirmed, TableError> {
    let paid = b.total();
    let mut tx = Transaction::new(table);
    tx.push(ConfirmItem::Receipt, sqs::receipt_put(table, event_id, CONSUMER, now)?);
    tx.update(
        ConfirmItem::Booking,
        &booking::key(b.id()),
        &confirm_update(b, paid, now)?,
        Some(&confirm_condition(intent)),
    )?;
    let book = night::book_update(now);
    let held = night::condition_held_by(b.id());
    for d in nights {
        tx.update(ConfirmItem::Night(*d), &night::key(&b.item.listing_id, *d), &book, Some(&held))?;
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
    tx.push(ConfirmItem::Event, outbox_put(table, &event)?);
    // Room for one more item (at most 90 + 4 of DynamoDB's 100).
    match tx.commit().await {
        Ok(()) => Ok(Confirmed::Applied),
        Err(TransactError::Conditions(failed)) if failed.contains(&ConfirmItem::Receipt) => {
            tracing::info!("event already applied: skipped");
            Ok(Confirmed::Duplicate)
        }
        Err(TransactError::Conditions(failed)) => {
            tracing::warn!(failed_items = ?failed, "booking can no longer be confirmed");
            Ok(Confirmed::Lost)
        }
        Err(TransactError::Table(e)) => Err(e),
    }
}

/// The booking's part of the confirmation: confirmed, paid, accepted, and found again by the
/// sweep when its stay ends.
fn confirm_update(b: &BookingRecord, paid: Money, now: Timestamp) -> Result<Expr, TableError> {
    // The sweep finds a confirmed booking again when its stay ends (shared::booking::sweep_keys).
    let (sweep_pk, sweep_sk) = booking::sweep_keys(b.id(), &b.item.check_out_at);
    Expr::new(
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
    .ser(":paid", &paid)
    .map(|e| e.s(":now", night::instant(now)))
}

fn confirm_condition(intent: &IntentObject) -> Expr {
    // Never a booking whose payment was refunded as not confirmable (one record, no way back).
    condition_status_is(BookingStatus::PendingPayment)
        .and(condition_intent_is(&intent.id))
        .and(Expr::new("attribute_not_exists(#c_refund)").name("#c_refund", REFUND_ATTR))
}

/// ONE transaction: the receipt, the request's card recorded as authorised (condition: still
/// `requested` with this intent and a live hold, not authorised yet) and `booking.requested`,
/// which tells its host to answer by the hold's end.
pub async fn record_authorization(
    table: &Table,
    event_id: &str,
    b: &BookingRecord,
    intent: &IntentObject,
    answer_by: Timestamp,
    now: Timestamp,
) -> Result<Once, TableError> {
    let update = Expr::new("SET #p.#ps = :authorized, #updated = :now REMOVE #p.#failure")
        .name("#p", "payment")
        .name("#ps", "status")
        .name("#failure", "failure")
        .name("#updated", "updated_at")
        .s(":authorized", "authorized")
        .s(":now", night::instant(now));
    let condition = condition_status_is(BookingStatus::Requested).and(condition_intent_is(&intent.id)).and(
        Expr::new("#c_p.#c_ps <> :c_authorized AND #c_p.#c_ps <> :c_succeeded AND #c_hold > :c_now")
            .name("#c_p", "payment")
            .name("#c_ps", "status")
            .name("#c_hold", booking::HOLD_EXPIRES_AT_ATTR)
            .s(":c_authorized", "authorized")
            .s(":c_succeeded", "succeeded")
            .s(":c_now", night::instant(now)),
    );
    let event = Envelope::new(
        BookingRequested {
            booking_id: b.id().to_owned(),
            listing_id: b.item.listing_id.clone(),
            guest_id: b.item.guest.user_id.clone(),
            host_id: b.item.host.user_id.clone(),
            check_in: b.item.check_in,
            check_out: b.item.check_out,
            total: b.total(),
            answer_by,
        },
        now,
    );
    let effect = vec![table.tx_update(&booking::key(b.id()), &update, Some(&condition))?, outbox_put(table, &event)?];
    sqs::apply_once(table, event_id, CONSUMER, now, effect).await
}

/// ONE transaction: the receipt and the captured payment of an accepted request recorded on
/// its booking (condition: this intent, still `authorized`): `succeeded`, with the amount paid
/// (the ceiling of any refund).
pub async fn record_capture(
    table: &Table,
    event_id: &str,
    b: &BookingRecord,
    intent: &IntentObject,
    now: Timestamp,
) -> Result<Once, TableError> {
    let update = Expr::new("SET #p.#ps = :succeeded, #p.#paid = :paid, #updated = :now")
        .name("#p", "payment")
        .name("#ps", "status")
        .name("#paid", "amount_paid")
        .name("#updated", "updated_at")
        .s(":succeeded", "succeeded")
        .ser(":paid", &b.total())?
        .s(":now", night::instant(now));
    let condition = condition_intent_is(&intent.id).and(
        Expr::new("#c_p.#c_ps = :c_authorized")
            .name("#c_p", "payment")
            .name("#c_ps", "status")
            .s(":c_authorized", "authorized"),
    );
    let effect = vec![table.tx_update(&booking::key(b.id()), &update, Some(&condition))?];
    sqs::apply_once(table, event_id, CONSUMER, now, effect).await
}

/// ONE transaction: the receipt, the failure on the booking (still pending, or a request, with
/// this intent, neither paid nor authorised) and `payment.failed`.
pub async fn record_payment_failure(
    table: &Table,
    event_id: &str,
    b: &BookingRecord,
    intent: &IntentObject,
    now: Timestamp,
) -> Result<Once, TableError> {
    let failure = intent.failure_code();
    let update = Expr::new("SET #p.#ps = :failed, #p.#failure = :failure, #updated = :now")
        .name("#p", "payment")
        .name("#ps", "status")
        .name("#failure", "failure")
        .name("#updated", "updated_at")
        .s(":failed", "failed")
        .s(":failure", failure.clone().unwrap_or_else(|| "payment_failed".to_owned()))
        .s(":now", night::instant(now));
    let waiting = Expr::new("#w_status IN (:w_pending, :w_requested)")
        .name("#w_status", booking::STATUS_ATTR)
        .s(":w_pending", BookingStatus::PendingPayment.as_str())
        .s(":w_requested", BookingStatus::Requested.as_str());
    let condition = waiting.and(condition_intent_is(&intent.id)).and(
        Expr::new("#c_p.#c_ps <> :c_succeeded AND #c_p.#c_ps <> :c_authorized")
            .name("#c_p", "payment")
            .name("#c_ps", "status")
            .s(":c_succeeded", "succeeded")
            .s(":c_authorized", "authorized"),
    );
    let event = Envelope::new(
        PaymentFailed {
            booking_id: b.id().to_owned(),
            guest_id: b.item.guest.user_id.clone(),
            payment_intent_id: intent.id.clone(),
            failure_code: failure,
        },
        now,
    );
    let effect = vec![table.tx_update(&booking::key(b.id()), &update, Some(&condition))?, outbox_put(table, &event)?];
    sqs::apply_once(table, event_id, CONSUMER, now, effect).await
}

// ---------------------------------------------------------------------------------------------
// The booking's refund record
// ---------------------------------------------------------------------------------------------

/// A new `pending` refund record on the booking (condition: none yet; at most one refund per
/// booking), with `paid` recorded alongside when the payment was not (a late payment).
pub async fn record_pending_refund(
    table: &Table,
    booking_id: &str,
    new: &RefundRecord,
    paid: Option<Money>,
    reason: RefundReason,
    now: Timestamp,
) -> Result<(), TableError> {
    let mut set = String::from("SET #r = :r, #updated = :now");
    let mut update = Expr::new("")
        .name("#r", REFUND_ATTR)
        .name("#updated", "updated_at")
        .ser(":r", new)?
        .s(":now", night::instant(now));
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
    let mut condition = Expr::exists().and(Expr::new("attribute_not_exists(#c_r)").name("#c_r", REFUND_ATTR));
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
        RefundReason::Cancelled => condition.and(condition_status_is(BookingStatus::Cancelled)),
    };
    table.update(&booking::key(booking_id), &update, Some(&condition)).await
}

/// The refund is pending at Stripe: its id is kept (unless the record finished meanwhile, which
/// is fine); `charge.refunded` completes it.
pub async fn keep_pending_refund_id(table: &Table, booking_id: &str, refund_id: &str) -> Result<(), TableError> {
    let update = Expr::new("SET #r.#rid = :rid, #r.#rs = :pending REMOVE #r.#why")
        .name("#r", REFUND_ATTR)
        .name("#rid", "refund_id")
        .name("#rs", "status")
        .name("#why", "failure_reason")
        .s(":rid", refund_id)
        .s(":pending", RefundStatus::Pending.as_str());
    match table.update(&booking::key(booking_id), &update, Some(&RefundOwner::Booking(booking_id).unfinished())).await {
        Err(e) if e.is_condition_failure() => Ok(()),
        done => done,
    }
}

/// ONE transaction: the receipt, `refund.status` pending (or failed) -> succeeded,
/// `refund.issued`. A condition failure means the refund was recorded as succeeded meanwhile
/// (the other of API answer and webhook came first).
pub async fn refund_succeeded(
    table: &Table,
    event_id: &str,
    b: &BookingRecord,
    record: &RefundRecord,
    refund_id: &str,
    now: Timestamp,
) -> Result<Once, TableError> {
    let update = Expr::new("SET #r.#rs = :succeeded, #r.#rid = :rid, #r.#at = :now, #updated = :now REMOVE #r.#why")
        .name("#r", REFUND_ATTR)
        .name("#rs", "status")
        .name("#rid", "refund_id")
        .name("#at", "succeeded_at")
        .name("#why", "failure_reason")
        .name("#updated", "updated_at")
        .s(":succeeded", RefundStatus::Succeeded.as_str())
        .s(":rid", refund_id)
        .s(":now", night::instant(now));
    let event = Envelope::new(
        RefundIssued {
            booking_id: b.id().to_owned(),
            guest_id: b.item.guest.user_id.clone(),
            refund_id: refund_id.to_owned(),
            amount: record.money(),
        },
        now,
    );
    let mut effect = vec![
        table.tx_update(&booking::key(b.id()), &update, Some(&RefundOwner::Booking(b.id()).unfinished()))?,
        outbox_put(table, &event)?,
    ];
    // A refund after the host's payout: the payout is due again now, for the payouts function
    // to reverse the host's part (shared::payout). In the same transaction as the refund.
    if let Some(payout) = crate::payouts::store::payout(table, b.id()).await?
        && payout.transfer_id.is_some()
    {
        effect.push(table.tx_update(&payout::key(b.id()), &payout_due_again(b.id(), now), Some(&Expr::exists()))?);
    }
    sqs::apply_once(table, event_id, CONSUMER, now, effect).await
}

/// The payout back in the due index at `now`, its version bumped (a payouts run that read it
/// before acts on it again, fresh).
fn payout_due_again(booking_id: &str, now: Timestamp) -> Expr {
    Expr::new("SET #due_pk = :due_pk, #due_sk = :due_sk, #version = #version + :one, #updated = :now")
        .name("#due_pk", "GSI3PK")
        .name("#due_sk", "GSI3SK")
        .name("#version", "version")
        .name("#updated", "updated_at")
        .s(":due_pk", payout::DUE_PARTITION)
        .s(":due_sk", payout::due_sort_key(&night::instant(now), booking_id))
        .n(":one", 1)
        .s(":now", night::instant(now))
}

// ---------------------------------------------------------------------------------------------
// Any refund record: the booking's `refund` map or a stray payment's item
// ---------------------------------------------------------------------------------------------

/// The item holding a refund record.
#[derive(Debug, Clone, Copy)]
pub enum RefundOwner<'a> {
    /// The booking (its id): the record is its `refund` map.
    Booking(&'a str),
    /// A stray payment (its intent id): the record is the item itself.
    Stray(&'a str),
}

impl RefundOwner<'_> {
    /// The item holding the refund record, and the path of the record's attributes on it: `#r.`
    /// (the booking's `refund` map, named by [`RefundOwner::on_record`]), or none (a stray
    /// payment's item is its refund record).
    fn record_target(&self) -> (Key, &'static str) {
        match self {
            Self::Booking(booking_id) => (booking::key(booking_id), "#r."),
            Self::Stray(payment_intent_id) => (stray_key(payment_intent_id), ""),
        }
    }

    /// `e` with the name its record path uses.
    fn on_record(&self, e: Expr) -> Expr {
        match self {
            Self::Booking(_) => e.name("#r", REFUND_ATTR),
            Self::Stray(_) => e,
        }
    }

    /// Condition: the refund is not finished (`pending`, or `failed` and retried).
    fn unfinished(&self) -> Expr {
        let (_, at) = self.record_target();
        self.on_record(
            Expr::new(format!("{at}#c_rs IN (:c_pending, :c_failed)"))
                .name("#c_rs", "status")
                .s(":c_pending", RefundStatus::Pending.as_str())
                .s(":c_failed", RefundStatus::Failed.as_str()),
        )
    }
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
pub async fn claim_refund(table: &Table, owner: RefundOwner<'_>, now: Timestamp) -> Result<String, TableError> {
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
    let condition = owner.unfinished().and(no_live_claim);
    table.update(&key, &update, Some(&condition)).await?;
    Ok(claim_id)
}

/// Ends the claim once the Stripe call is over (made, adopted or failed): a later delivery then
/// adopts what was made.
pub async fn release_refund_claim(table: &Table, owner: RefundOwner<'_>, claim_id: &str) -> Result<(), TableError> {
    let (key, at) = owner.record_target();
    let update = owner.on_record(
        Expr::new(format!("REMOVE {at}#cid, {at}#cuntil")).name("#cid", "claim_id").name("#cuntil", "claim_until"),
    );
    let condition =
        owner.on_record(Expr::new(format!("{at}#c_cid = :c_cid")).name("#c_cid", "claim_id").s(":c_cid", claim_id));
    table.update(&key, &update, Some(&condition)).await
}

/// The record becomes `failed` with Stripe's reason (condition: still unfinished; a condition
/// failure means the refund finished meanwhile).
pub async fn record_refund_failed(
    table: &Table,
    owner: RefundOwner<'_>,
    reason: &str,
    now: Timestamp,
) -> Result<(), TableError> {
    let (key, at) = owner.record_target();
    let update = owner.on_record(
        Expr::new(format!("SET {at}#rs = :failed, {at}#why = :why, {at}#at = :now"))
            .name("#rs", "status")
            .name("#why", "failure_reason")
            .name("#at", "failed_at")
            .s(":failed", RefundStatus::Failed.as_str())
            .s(":why", reason)
            .s(":now", night::instant(now)),
    );
    table.update(&key, &update, Some(&owner.unfinished())).await
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

impl StrayPayment {
    /// A new record, `pending`: all of the intent's money is to be refunded.
    pub fn pending(intent: &IntentObject, booking_id: Option<&str>, reason: StrayReason, now: Timestamp) -> Self {
        Self {
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
            requested_at: night::instant(now),
            succeeded_at: None,
            failed_at: None,
        }
    }
}

/// The stray payment record of an intent, if any (one GetItem).
pub async fn read_stray(table: &Table, payment_intent_id: &str) -> Result<Option<StrayPayment>, TableError> {
    table.get::<StrayPayment>(&stray_key(payment_intent_id)).await
}

/// Creates the record (condition: none yet for the intent).
pub async fn create_stray(table: &Table, new: &StrayPayment) -> Result<(), TableError> {
    table.put_new(new).await
}

/// The stray refund is pending at Stripe: its id is kept; `charge.refunded` completes it.
pub async fn keep_stray_refund_id(table: &Table, payment_intent_id: &str, refund_id: &str) -> Result<(), TableError> {
    let update = Expr::new("SET #rid = :rid").name("#rid", "refund_id").s(":rid", refund_id);
    table.update(&stray_key(payment_intent_id), &update, Some(&Expr::exists())).await
}

/// ONE transaction: the receipt and the stray record pending (or failed) -> succeeded.
pub async fn stray_refund_succeeded(
    table: &Table,
    event_id: &str,
    stray: &StrayPayment,
    refund_id: &str,
    now: Timestamp,
) -> Result<Once, TableError> {
    let update = Expr::new("SET #rs = :succeeded, #rid = :rid, #at = :now REMOVE #why")
        .name("#rs", "status")
        .name("#rid", "refund_id")
        .name("#at", "succeeded_at")
        .name("#why", "failure_reason")
        .s(":succeeded", RefundStatus::Succeeded.as_str())
        .s(":rid", refund_id)
        .s(":now", night::instant(now));
    let unfinished = RefundOwner::Stray(&stray.payment_intent_id).unfinished();
    let effect = vec![table.tx_update(&stray.key, &update, Some(&unfinished))?];
    sqs::apply_once(table, event_id, CONSUMER, now, effect).await
}
