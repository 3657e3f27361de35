//! The decisions of payment-events as plain functions of values: which success confirms, which
//! failure is recorded, how much is refunded. The handlers only read, call and write.

use serde::Deserialize;
use serde_json::Value;
use shared::booking::{BookingStatus, PaymentStatus};
use shared::money::{Currency, Money};

use payments::record::BookingRecord;

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
        self.metadata.get(payments::stripe::META_BOOKING_ID).map(String::as_str)
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
    /// intent and every night still held by it (whatever the clock).
    Confirm,
    /// Confirmed by this intent already (a redelivery under another event id, or a replay).
    AlreadyConfirmed,
    /// Money was taken for a booking that can no longer be confirmed: refund it in full.
    NotConfirmable,
    /// The intent is not the booking's, or not for its price: nothing is applied.
    Mismatch(&'static str),
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

pub fn on_success(b: &BookingRecord, intent: &IntentObject) -> Success {
    if b.intent_id() != Some(intent.id.as_str()) {
        return Success::Mismatch("the intent is not the one recorded on the booking");
    }
    if !same_money(intent.amount, &intent.currency, b.total()) {
        return Success::Mismatch("the intent's amount or currency is not the booking's price");
    }
    match b.item.status {
        BookingStatus::PendingPayment => Success::Confirm,
        BookingStatus::Confirmed | BookingStatus::Completed => Success::AlreadyConfirmed,
        BookingStatus::Cancelled | BookingStatus::Expired => Success::NotConfirmable,
    }
}

/// Whether a `payment_intent.payment_failed` is recorded: the booking's own intent, the booking
/// still waiting for payment (stored status), not paid meanwhile (events come in any order).
pub fn failure_applies(b: &BookingRecord, intent: &IntentObject) -> bool {
    b.intent_id() == Some(intent.id.as_str())
        && b.item.status == BookingStatus::PendingPayment
        && b.item.payment.status != PaymentStatus::Succeeded
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    #[error("refund due in {due}, paid in {paid}")]
    CurrencyMismatch { due: Currency, paid: Currency },
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn booking(status: &str, payment_status: &str, intent: Option<&str>) -> BookingRecord {
        let mut payment = json!({"status": payment_status});
        if let Some(pi) = intent {
            payment["payment_intent_id"] = json!(pi);
        }
        BookingRecord::from_value(json!({
            "PK": "BOOKING#bkg_1", "SK": "BOOKING", "type": "booking",
            "GSI1PK": "GUEST#g", "GSI1SK": "BOOKING#bkg_1", "GSI2PK": "HOST#h", "GSI2SK": "BOOKING#bkg_1",
            "booking_id": "bkg_1", "listing_id": "lst_1", "listing_version": 1, "listing_title": "Loft",
            "guest": {"user_id": "g", "name": "Gil"}, "host": {"user_id": "h", "name": "Helena"},
            "check_in": "2027-01-10", "check_out": "2027-01-12", "nights": 2, "guests": 1,
            "price": {"nightly": [{"date": "2027-01-10", "amount": 10000}, {"date": "2027-01-11", "amount": 10000}],
                      "subtotal": 20000, "cleaning_fee": 0, "service_fee": 2400, "total": 22400, "currency": "EUR"},
            "cancellation_policy": "moderate", "timezone": "Europe/Lisbon", "check_in_time": "15:00",
            "check_out_time": "11:00",
            "address": {"line1": "Rua A 1", "city": "Lisboa", "country": "PT"},
            "status": status, "hold_expires_at": "2027-01-01T10:15:00Z", "check_out_at": "2027-01-12T11:00:00Z",
            "payment": payment, "created_at": "2027-01-01T10:00:00Z", "updated_at": "2027-01-01T10:00:00Z"
        }))
        .unwrap()
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

    #[test]
    fn a_success_confirms_only_the_booking_s_own_intent_at_its_price() {
        let pending = booking("pending_payment", "processing", Some("pi_1"));
        assert_eq!(on_success(&pending, &intent("pi_1", 22_400, "eur")), Success::Confirm);
        assert_eq!(on_success(&pending, &intent("pi_1", 22_400, "EUR")), Success::Confirm);
        assert!(matches!(on_success(&pending, &intent("pi_2", 22_400, "eur")), Success::Mismatch(_)));
        assert!(matches!(on_success(&pending, &intent("pi_1", 22_399, "eur")), Success::Mismatch(_)));
        assert!(matches!(on_success(&pending, &intent("pi_1", 22_400, "usd")), Success::Mismatch(_)));
        let no_intent = booking("pending_payment", "unpaid", None);
        assert!(matches!(on_success(&no_intent, &intent("pi_1", 22_400, "eur")), Success::Mismatch(_)));
        // A failed attempt before does not matter: the success confirms.
        let failed = booking("pending_payment", "failed", Some("pi_1"));
        assert_eq!(on_success(&failed, &intent("pi_1", 22_400, "eur")), Success::Confirm);
    }

    #[test]
    fn a_success_for_a_booking_that_moved_on_is_refunded_or_ignored() {
        for (status, want) in [
            ("confirmed", Success::AlreadyConfirmed),
            ("completed", Success::AlreadyConfirmed),
            ("cancelled", Success::NotConfirmable),
            ("expired", Success::NotConfirmable),
        ] {
            assert_eq!(on_success(&booking(status, "processing", Some("pi_1")), &intent("pi_1", 22_400, "eur")), want);
        }
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
