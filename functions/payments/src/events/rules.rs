//! The decisions of payment-events as plain functions of values: which success confirms, which
//! failure is recorded, how much is refunded. The handlers only read, call and write.

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::booking::{BookingStatus, PaymentStatus};
use shared::money::{Currency, Money};
use shared::night;

use crate::store::BookingRecord;

/// `data.object` of a `payment_intent.*` event: the fields Roost reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct IntentObject {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub metadata: std::collections::HashMap<String, String>,
    #[serde(default)]
    pub last_payment_error: Option<PaymentError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PaymentError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
}

impl IntentObject {
    pub fn booking_id(&self) -> Option<&str> {
        self.metadata.get(crate::stripe::META_BOOKING_ID).map(String::as_str)
    }

    /// Stripe's `decline_code`, else its `code`: what the booking records (never the message).
    pub fn failure_code(&self) -> Option<String> {
        let e = self.last_payment_error.as_ref()?;
        e.decline_code.clone().or_else(|| e.code.clone()).filter(|c| !c.is_empty())
    }
}

/// `data.object` of a `charge.*` event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ChargeObject {
    pub id: String,
    #[serde(default)]
    pub payment_intent: Option<Value>,
    #[serde(default)]
    pub amount_refunded: i64,
    #[serde(default)]
    pub metadata: std::collections::HashMap<String, String>,
    #[serde(default)]
    pub refunds: Option<RefundList>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefundList {
    #[serde(default)]
    pub data: Vec<RefundObject>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RefundObject {
    pub id: String,
}

impl ChargeObject {
    /// The intent id, whether Stripe sent it as an id or expanded.
    pub fn payment_intent_id(&self) -> Option<&str> {
        match self.payment_intent.as_ref()? {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("id").and_then(Value::as_str),
            _ => None,
        }
    }

    pub fn latest_refund_id(&self) -> Option<&str> {
        self.refunds.as_ref()?.data.first().map(|r| r.id.as_str())
    }
}

/// What a `payment_intent.succeeded` means for its booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Success {
    /// Try to confirm: one transaction, conditioned on the booking still waiting for this
    /// intent, not refunded, and every night still held by it (whatever the clock).
    Confirm,
    /// The booking recorded this intent as paid already (a redelivery under any event id, a
    /// replay, a dashboard resend): nothing is decided again, whatever the booking's status
    /// now. A refund of it that is not finished yet is resumed as recorded, never re-decided.
    Recorded,
    /// An accepted request's capture: record it as the booking's payment (the booking was
    /// confirmed, and its nights booked, by the host's acceptance).
    RecordCapture,
    /// Money was taken for a booking that can no longer be confirmed (cancelled or expired
    /// before its payment was recorded, or a night lost): refund it in full.
    NotConfirmable,
    /// Not the booking's payment (another intent, or not its price): refunded in full on a
    /// record of its own, the booking untouched.
    Stray(StrayReason),
}

/// What a `payment_intent.amount_capturable_updated` (a card authorised without capture) means
/// for its booking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization {
    /// A request waiting for its host: record the authorisation and tell the host.
    Record,
    /// Recorded before (a redelivery), or captured since: nothing to do.
    Recorded,
    /// Nobody will capture it (the request was withdrawn, declined or expired; not the
    /// booking's intent or price): cancel it at Stripe so the guest's card is freed at once.
    Release,
}

/// Judges an authorisation of `intent` for `b` at `now`.
pub fn on_authorized(b: &BookingRecord, intent: &IntentObject, now: jiff::Timestamp) -> Authorization {
    if b.intent_id() != Some(intent.id.as_str()) || !same_money(intent.amount, &intent.currency, b.total()) {
        return Authorization::Release;
    }
    match (b.item.payment.status, b.item.effective_status(now)) {
        (PaymentStatus::Authorized | PaymentStatus::Succeeded, _) => Authorization::Recorded,
        (_, BookingStatus::Requested) => Authorization::Record,
        _ => Authorization::Release,
    }
}

/// Why a success is not its booking's payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrayReason {
    /// The intent is not the one recorded on the booking (or the booking has none).
    OtherIntent,
    /// The booking's intent, but not for the booking's price (amount or currency).
    OtherAmount,
    /// Its `booking_id` names no booking.
    UnknownBooking,
}

impl StrayReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OtherIntent => "other_intent",
            Self::OtherAmount => "other_amount",
            Self::UnknownBooking => "unknown_booking",
        }
    }
}

/// Whether the intent's money is exactly the booking's price. `intent_amount` is Stripe's (a
/// webhook's `data.object.amount`), so the price is converted to Stripe's units to compare
/// (`shared::currencies::to_stripe`: 5 ISK is 500 there); a price that has no Stripe amount
/// matches nothing.
pub fn same_money(intent_amount: i64, intent_currency: &str, price: Money) -> bool {
    intent_currency.eq_ignore_ascii_case(price.currency.code())
        && shared::currencies::to_stripe(price) == Ok(intent_amount)
}

#[cfg(test)]
mod same_money_tests {
    use super::same_money;
    use shared::money::{Currency, Money};

    #[test]
    fn compares_in_stripe_units() {
        let isk = Currency::parse("ISK").unwrap();
        let kwd = Currency::parse("KWD").unwrap();
        assert!(same_money(22_400, "eur", Money::new(22_400, Currency::EUR)));
        assert!(same_money(500, "jpy", Money::new(500, Currency::JPY)));
        // 5 ISK is 500 at Stripe: the old comparison took 500 ISK for 5.
        assert!(same_money(500, "isk", Money::new(5, isk)));
        assert!(!same_money(5, "isk", Money::new(5, isk)));
        assert!(same_money(12_340, "KWD", Money::new(12_340, kwd)));
        assert!(!same_money(22_400, "usd", Money::new(22_400, Currency::EUR)));
        assert!(!same_money(22_401, "eur", Money::new(22_400, Currency::EUR)));
        // No Stripe amount for this price: nothing matches it.
        assert!(!same_money(100, "xaf", Money::new(100, Currency::parse("XAF").unwrap())));
    }
}

/// Whether the booking recorded `payment_intent_id` as its payment (status `succeeded` and the
/// amount paid): by the confirming transaction, or by the refund of a late payment.
pub fn paid_by(b: &BookingRecord, payment_intent_id: &str) -> bool {
    b.intent_id() == Some(payment_intent_id)
        && b.item.payment.status == PaymentStatus::Succeeded
        && b.amount_paid.is_some()
}

pub fn on_success(b: &BookingRecord, intent: &IntentObject) -> Success {
    if b.intent_id() != Some(intent.id.as_str()) {
        return Success::Stray(StrayReason::OtherIntent);
    }
    if !same_money(intent.amount, &intent.currency, b.total()) {
        return Success::Stray(StrayReason::OtherAmount);
    }
    if paid_by(b, &intent.id) {
        return Success::Recorded;
    }
    match b.item.status {
        BookingStatus::PendingPayment => Success::Confirm,
        // An accepted request: the capture its acceptance ordered, recorded as its payment.
        BookingStatus::Confirmed | BookingStatus::Completed if b.item.payment.status == PaymentStatus::Authorized => {
            Success::RecordCapture
        }
        // Confirmed always records the payment (one transaction); kept for old items.
        BookingStatus::Confirmed | BookingStatus::Completed => Success::Recorded,
        // Roost captures a request only once its host accepted it: a capture of a request still
        // waiting, or declined, was made elsewhere (Stripe's dashboard) and is paid back.
        BookingStatus::Cancelled | BookingStatus::Expired | BookingStatus::Requested | BookingStatus::Declined => {
            Success::NotConfirmable
        }
    }
}

/// Whether the booking's payment confirmed it (`payment.accepted_at`, written by the confirming
/// transaction; a stored `confirmed`/`completed` status for items older than that attribute).
pub fn accepted(b: &BookingRecord) -> bool {
    b.accepted_at.is_some() || matches!(b.item.status, BookingStatus::Confirmed | BookingStatus::Completed)
}

/// THE REFUND INVARIANT: the most Roost may ever refund, in total, of a booking's own payment.
///
/// - nothing recorded as paid: nothing;
/// - the payment confirmed the booking: what its cancellation owes under the policy (the
///   `refund_due` bookings wrote with the cancellation, never more than paid), or nothing while
///   it is not cancelled;
/// - the payment never confirmed it (it came after a cancellation or an expiry, or a night was
///   lost): all of it.
///
/// A booking's refunds are one record (`refund`, at most one per booking, written under a
/// condition), so "total refunded" is that record's amount; [`check_refund`] compares them
/// before every Stripe refund call of a booking.
pub fn refund_ceiling(b: &BookingRecord) -> Result<Money, RefundError> {
    let Some(paid) = b.amount_paid else { return Ok(Money::new(0, b.total().currency)) };
    if !accepted(b) {
        return Ok(paid);
    }
    match (b.item.status, &b.item.cancellation) {
        (BookingStatus::Cancelled, Some(c)) => {
            Ok(refund_amount(c.refund_due, Some(paid))?.unwrap_or(Money::new(0, paid.currency)))
        }
        _ => Ok(Money::new(0, paid.currency)),
    }
}

/// Checks the booking's refund record against [`refund_ceiling`]: the amount Stripe may be asked
/// to refund, or why not. Called in one place, right before the Stripe refund call of a booking
/// (`lib.rs`, `refund_at_stripe`).
pub fn check_refund(b: &BookingRecord) -> Result<Money, RefundError> {
    let Some(refund) = &b.refund else { return Err(RefundError::NoRecord) };
    let ceiling = refund_ceiling(b)?;
    let asked = refund.money();
    if asked.currency != ceiling.currency && ceiling.amount > 0 {
        return Err(RefundError::CurrencyMismatch { due: asked.currency, paid: ceiling.currency });
    }
    if asked.amount <= 0 || asked.amount > ceiling.amount {
        return Err(RefundError::AboveCeiling { asked, ceiling });
    }
    Ok(asked)
}

/// The same invariant for a payment that is not its booking's: refunded in full, once (one
/// record per intent), never more than the intent's own amount.
pub fn check_stray_refund(taken: i64, refund: i64) -> Result<i64, RefundError> {
    if refund <= 0 || refund > taken {
        return Err(RefundError::StrayAboveTaken { refund, taken });
    }
    Ok(refund)
}

/// Whether a `payment_intent.payment_failed` is recorded: the booking's own intent, the booking
/// still waiting for payment (stored status), not paid meanwhile (events come in any order).
pub fn failure_applies(b: &BookingRecord, intent: &IntentObject) -> bool {
    b.intent_id() == Some(intent.id.as_str())
        && matches!(b.item.status, BookingStatus::PendingPayment | BookingStatus::Requested)
        && !matches!(b.item.payment.status, PaymentStatus::Succeeded | PaymentStatus::Authorized)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    #[error("refund due in {due}, paid in {paid}")]
    CurrencyMismatch { due: Currency, paid: Currency },
    #[error("refund of {asked} asked, but at most {ceiling} is owed: REFUSED (refund invariant)")]
    AboveCeiling { asked: Money, ceiling: Money },
    #[error("no refund recorded on the booking")]
    NoRecord,
    #[error("stray refund of {refund} asked, but {taken} was taken: REFUSED (refund invariant)")]
    StrayAboveTaken { refund: i64, taken: i64 },
    /// A stray payment in a currency Roost cannot convert from Stripe's units: an operator
    /// refunds it in Stripe's dashboard (the alert names the intent).
    #[error("stray refund not convertible from Stripe's units ({0}): refund it by hand")]
    NotInStripeUnits(String),
}

/// How much to refund when `due` is owed and `paid` was taken: never more than was paid, nothing
/// when nothing is due or nothing was paid.
pub fn refund_amount(due: Money, paid: Option<Money>) -> Result<Option<Money>, RefundError> {
    let Some(paid) = paid else { return Ok(None) };
    if due.amount <= 0 || paid.amount <= 0 {
        return Ok(None);
    }
    if due.currency != paid.currency {
        return Err(RefundError::CurrencyMismatch { due: due.currency, paid: paid.currency });
    }
    Ok(Some(Money::new(due.amount.min(paid.amount), paid.currency)))
}

/// Whether an intent in this state can still be cancelled (Stripe refuses the others).
pub fn is_open(intent_status: &str) -> bool {
    matches!(
        intent_status,
        "requires_payment_method" | "requires_confirmation" | "requires_action" | "requires_capture"
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn booking(status: &str, payment_status: &str, intent: Option<&str>) -> BookingRecord {
        crate::store::test_support::booking(status, payment_status, intent)
    }

    fn intent(id: &str, amount: i64, currency: &str) -> IntentObject {
        IntentObject {
            id: id.into(),
            amount,
            currency: currency.into(),
            status: Some("succeeded".into()),
            metadata: [("booking_id".to_owned(), "bkg_1".to_owned())].into(),
            last_payment_error: None,
        }
    }

    fn eur(n: i64) -> Money {
        Money::new(n, Currency::EUR)
    }

    /// The booking with its payment recorded (as `confirm` or a late refund write it).
    fn paid(mut b: BookingRecord, accepted: bool) -> BookingRecord {
        b.item.payment.status = PaymentStatus::Succeeded;
        b.amount_paid = Some(eur(22_400));
        b.accepted_at = accepted.then(|| "2027-01-01T10:05:00Z".to_owned());
        b
    }

    fn cancelled_with(mut b: BookingRecord, due: i64) -> BookingRecord {
        b.item.status = BookingStatus::Cancelled;
        b.item.cancellation = Some(shared::booking::Cancellation {
            by: shared::events::CancelledBy::Guest,
            at: "2027-01-02T10:00:00Z".into(),
            reason: None,
            refund_due: eur(due),
        });
        b
    }

    fn with_refund(mut b: BookingRecord, amount: i64) -> BookingRecord {
        b.refund = Some(crate::store::RefundRecord {
            amount,
            currency: Currency::EUR,
            status: crate::store::RefundStatus::Pending,
            reason: None,
            refund_id: None,
            requested_at: None,
            succeeded_at: None,
            failure_reason: None,
            failed_at: None,
        });
        b
    }

    #[test]
    fn a_success_confirms_only_the_booking_s_own_intent_at_its_price() {
        let pending = booking("pending_payment", "processing", Some("pi_1"));
        assert_eq!(on_success(&pending, &intent("pi_1", 22_400, "eur")), Success::Confirm);
        assert_eq!(on_success(&pending, &intent("pi_1", 22_400, "EUR")), Success::Confirm);
        assert_eq!(on_success(&pending, &intent("pi_2", 22_400, "eur")), Success::Stray(StrayReason::OtherIntent));
        assert_eq!(on_success(&pending, &intent("pi_1", 22_399, "eur")), Success::Stray(StrayReason::OtherAmount));
        assert_eq!(on_success(&pending, &intent("pi_1", 22_400, "usd")), Success::Stray(StrayReason::OtherAmount));
        let no_intent = booking("pending_payment", "unpaid", None);
        assert_eq!(on_success(&no_intent, &intent("pi_1", 22_400, "eur")), Success::Stray(StrayReason::OtherIntent));
        // A failed attempt before does not matter: the success confirms.
        let failed = booking("pending_payment", "failed", Some("pi_1"));
        assert_eq!(on_success(&failed, &intent("pi_1", 22_400, "eur")), Success::Confirm);
    }

    #[test]
    fn a_success_for_a_booking_that_moved_on_is_refunded_or_ignored() {
        for (status, want) in [
            ("confirmed", Success::Recorded),
            ("completed", Success::Recorded),
            ("cancelled", Success::NotConfirmable),
            ("expired", Success::NotConfirmable),
        ] {
            assert_eq!(on_success(&booking(status, "processing", Some("pi_1")), &intent("pi_1", 22_400, "eur")), want);
        }
    }

    #[test]
    fn a_success_for_a_payment_the_booking_recorded_changes_nothing_whatever_its_status() {
        // Issue 13 item 1: paid, confirmed, cancelled in a band that refunds nothing or half,
        // then the success again under a new event id: never a full refund.
        let i = intent("pi_1", 22_400, "eur");
        for status in ["confirmed", "completed", "cancelled", "expired", "pending_payment"] {
            let b = paid(booking(status, "succeeded", Some("pi_1")), true);
            assert_eq!(on_success(&b, &i), Success::Recorded, "{status}");
            // Refunded in full as a late payment before: recorded too, never refunded again.
            let late = with_refund(paid(booking(status, "succeeded", Some("pi_1")), false), 22_400);
            assert_eq!(on_success(&late, &i), Success::Recorded, "{status}");
        }
        // Recorded for ANOTHER intent: this one is a stray payment, whatever the status.
        let other = paid(booking("cancelled", "succeeded", Some("pi_0")), true);
        assert_eq!(on_success(&other, &i), Success::Stray(StrayReason::OtherIntent));
    }

    #[test]
    fn the_refund_ceiling_is_what_the_policy_owes_for_the_payment() {
        let b = |status| booking(status, "succeeded", Some("pi_1"));
        // Nothing paid: nothing may be refunded.
        assert_eq!(refund_ceiling(&booking("cancelled", "processing", Some("pi_1"))), Ok(eur(0)));
        // Accepted (it confirmed the booking): nothing while the booking stands...
        assert_eq!(refund_ceiling(&paid(b("confirmed"), true)), Ok(eur(0)));
        assert_eq!(refund_ceiling(&paid(b("completed"), true)), Ok(eur(0)));
        // ... and what the cancellation owes once cancelled, capped at what was paid.
        for due in [0, 11_200, 22_400, 30_000] {
            let c = cancelled_with(paid(b("confirmed"), true), due);
            assert_eq!(refund_ceiling(&c), Ok(eur(due.min(22_400))), "due {due}");
        }
        // Never accepted (late, or a night lost): all of it.
        assert_eq!(refund_ceiling(&paid(b("expired"), false)), Ok(eur(22_400)));
        assert_eq!(refund_ceiling(&cancelled_with(paid(b("pending_payment"), false), 0)), Ok(eur(22_400)));
        assert_eq!(refund_ceiling(&paid(b("pending_payment"), false)), Ok(eur(22_400)));
    }

    #[test]
    fn check_refund_refuses_anything_above_the_ceiling() {
        let confirmed_then_cancelled = |due, refund| {
            with_refund(cancelled_with(paid(booking("confirmed", "succeeded", Some("pi_1")), true), due), refund)
        };
        assert_eq!(check_refund(&confirmed_then_cancelled(11_200, 11_200)), Ok(eur(11_200)));
        assert_eq!(check_refund(&confirmed_then_cancelled(11_200, 5_000)), Ok(eur(5_000)));
        assert_eq!(
            check_refund(&confirmed_then_cancelled(0, 22_400)),
            Err(RefundError::AboveCeiling { asked: eur(22_400), ceiling: eur(0) }),
            "the bug of issue 13 item 1: a full refund of a paid booking cancelled in a band that owes nothing"
        );
        assert!(matches!(
            check_refund(&confirmed_then_cancelled(11_200, 22_400)),
            Err(RefundError::AboveCeiling { .. })
        ));
        assert!(matches!(check_refund(&confirmed_then_cancelled(11_200, 0)), Err(RefundError::AboveCeiling { .. })));
        let late =
            with_refund(cancelled_with(paid(booking("pending_payment", "succeeded", Some("pi_1")), false), 0), 22_400);
        assert_eq!(check_refund(&late), Ok(eur(22_400)));
        assert_eq!(
            check_refund(&paid(booking("cancelled", "succeeded", Some("pi_1")), false)),
            Err(RefundError::NoRecord)
        );
        assert_eq!(check_stray_refund(500, 500), Ok(500));
        assert!(check_stray_refund(500, 501).is_err());
        assert!(check_stray_refund(500, 0).is_err());
    }

    #[test]
    fn a_failure_is_recorded_only_while_waiting_for_this_intent() {
        let i = intent("pi_1", 22_400, "eur");
        assert!(failure_applies(&booking("pending_payment", "processing", Some("pi_1")), &i));
        assert!(failure_applies(&booking("pending_payment", "failed", Some("pi_1")), &i));
        assert!(!failure_applies(&booking("pending_payment", "succeeded", Some("pi_1")), &i));
        assert!(
            !failure_applies(&booking("confirmed", "succeeded", Some("pi_1")), &i),
            "a late failure after a success"
        );
        assert!(!failure_applies(&booking("cancelled", "processing", Some("pi_1")), &i));
        assert!(!failure_applies(&booking("pending_payment", "processing", Some("pi_2")), &i));
    }

    #[test]
    fn failure_codes_prefer_the_decline_code() {
        let mut i = intent("pi_1", 1, "eur");
        assert_eq!(i.failure_code(), None);
        i.last_payment_error = Some(PaymentError { code: Some("card_declined".into()), decline_code: None });
        assert_eq!(i.failure_code().as_deref(), Some("card_declined"));
        i.last_payment_error =
            Some(PaymentError { code: Some("card_declined".into()), decline_code: Some("insufficient_funds".into()) });
        assert_eq!(i.failure_code().as_deref(), Some("insufficient_funds"));
    }

    #[test]
    fn refunds_never_exceed_what_was_paid() {
        assert_eq!(refund_amount(eur(500), Some(eur(22_400))), Ok(Some(eur(500))));
        assert_eq!(refund_amount(eur(22_400), Some(eur(22_400))), Ok(Some(eur(22_400))));
        assert_eq!(refund_amount(eur(30_000), Some(eur(22_400))), Ok(Some(eur(22_400))), "capped at what was paid");
        assert_eq!(refund_amount(eur(0), Some(eur(22_400))), Ok(None), "nothing due");
        assert_eq!(refund_amount(eur(500), None), Ok(None), "nothing paid");
        assert_eq!(refund_amount(eur(500), Some(eur(0))), Ok(None));
        assert_eq!(
            refund_amount(eur(500), Some(Money::new(500, Currency::USD))),
            Err(RefundError::CurrencyMismatch { due: Currency::EUR, paid: Currency::USD })
        );
    }

    #[test]
    fn charges_name_their_intent_either_way() {
        let c: ChargeObject = serde_json::from_value(json!({"id": "ch_1", "payment_intent": "pi_1",
            "amount_refunded": 5, "refunds": {"data": [{"id": "re_1"}]}}))
        .unwrap();
        assert_eq!((c.payment_intent_id(), c.latest_refund_id()), (Some("pi_1"), Some("re_1")));
        let c: ChargeObject = serde_json::from_value(json!({"id": "ch_1", "payment_intent": {"id": "pi_2"}})).unwrap();
        assert_eq!((c.payment_intent_id(), c.latest_refund_id()), (Some("pi_2"), None));
    }

    #[test]
    fn only_open_intents_are_cancelled() {
        for s in ["requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"] {
            assert!(is_open(s), "{s}");
        }
        for s in ["processing", "succeeded", "canceled", ""] {
            assert!(!is_open(s), "{s}");
        }
    }
}
