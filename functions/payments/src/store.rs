//! What the payments context keeps in the table, beyond the booking fields `shared::booking`
//! defines: the attributes it adds to the booking item, and the intent -> booking pointer.
//!
//! On the booking item (`BOOKING#<id>` / `BOOKING`), always by `UpdateItem` of these attributes
//! only (never a whole-item `Put`, so bookings' own writes and ours never erase each other):
//! - `payment.payment_intent_id` (payments, once: `attribute_not_exists` or equal),
//!   `payment.status` (`processing` -> `failed` / `succeeded`), `payment.failure` (Stripe's code),
//!   `payment.amount_paid` (money, written when the payment succeeded: the ceiling of any refund),
//!   `payment.accepted_at` (payment-events, in the confirming transaction only: the payment
//!   confirmed the booking, so a refund of it is what the cancellation policy owes, never more);
//! - `refund` (payment-events): `{amount, currency, status: pending | succeeded | failed, reason,
//!   refund_id?, requested_at, succeeded_at?, failure_reason?, failed_at?}`: the refund state
//!   machine, at most one per booking.
//!
//! `PAYMENT_INTENT#<pi id>` / `PAYMENT_INTENT`: `{booking_id}`, written with the intent id, so a
//! Stripe object that names only the intent (a charge) leads to its booking in one GetItem.

use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::booking::{self, BookingItem, BookingStatus, PaymentStatus};
use shared::keys::Key;
use shared::money::{Currency, Money};
use shared::payout::{self, PayoutAccountItem};
use shared::table::{Expr, Table, TableError, TransactError, Transaction};

pub const INTENT_ITEM_TYPE: &str = "payment_intent";
pub const INTENT_SK: &str = "PAYMENT_INTENT";
pub const REFUND_ATTR: &str = "refund";

/// `PAYMENT_INTENT#<id>` / `PAYMENT_INTENT`.
pub fn intent_key(payment_intent_id: &str) -> Key {
    Key::new(format!("PAYMENT_INTENT#{payment_intent_id}"), INTENT_SK)
}

/// The pointer from an intent to its booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentPointer {
    #[serde(flatten)]
    pub key: Key,
    #[serde(rename = "type")]
    pub item_type: String,
    pub payment_intent_id: String,
    pub booking_id: String,
    pub created_at: String,
}

impl IntentPointer {
    pub fn new(payment_intent_id: &str, booking_id: &str, now: Timestamp) -> Self {
        Self {
            key: intent_key(payment_intent_id),
            item_type: INTENT_ITEM_TYPE.to_owned(),
            payment_intent_id: payment_intent_id.to_owned(),
            booking_id: booking_id.to_owned(),
            created_at: shared::night::instant(now),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Recorded before Stripe is called; a redelivery that finds it calls Stripe again (with
    /// the same idempotency key).
    Pending,
    /// Stripe confirmed it (its API answer or `charge.refunded`); `refund.issued` was emitted.
    Succeeded,
    /// Stripe refused it on every attempt the queue allows (`failure_reason` says why). An
    /// operator retries it (docs/payments.md); `charge.refunded` or a retry that works still
    /// makes it `succeeded`.
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The booking was cancelled after it was paid (`booking.cancelled`, `refund_due`).
    Cancelled,
    /// A payment succeeded for a booking that could not be confirmed any more (cancelled,
    /// expired, or a night lost): refunded in full.
    NotConfirmable,
}

/// The `refund` attribute of a booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRecord {
    pub amount: i64,
    pub currency: Currency,
    pub status: RefundStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<RefundReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded_at: Option<String>,
    /// Stripe's reason (its error code, else its message) when the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<String>,
}

impl RefundRecord {
    pub fn money(&self) -> Money {
        Money::new(self.amount, self.currency)
    }
}

/// The booking item as payments reads it: shared's struct plus the attributes payments adds.
#[derive(Debug, Clone, PartialEq)]
pub struct BookingRecord {
    pub item: BookingItem,
    pub amount_paid: Option<Money>,
    /// `payment.accepted_at`: when this payment confirmed the booking (never for a payment
    /// that came too late and was refunded in full).
    pub accepted_at: Option<String>,
    pub refund: Option<RefundRecord>,
}

#[derive(Deserialize)]
struct Extras {
    #[serde(default)]
    payment: PaymentExtras,
    #[serde(default)]
    refund: Option<RefundRecord>,
}

#[derive(Default, Deserialize)]
struct PaymentExtras {
    #[serde(default)]
    amount_paid: Option<Money>,
    #[serde(default)]
    accepted_at: Option<String>,
}

impl BookingRecord {
    pub fn from_value(value: Value) -> Result<Self, TableError> {
        let decode_error = |e: serde_json::Error| TableError::Unexpected(anyhow::anyhow!("decode booking item: {e}"));
        let extras: Extras = serde_json::from_value(value.clone()).map_err(decode_error)?;
        let item: BookingItem = serde_json::from_value(value).map_err(decode_error)?;
        Ok(Self {
            item,
            amount_paid: extras.payment.amount_paid,
            accepted_at: extras.payment.accepted_at,
            refund: extras.refund,
        })
    }

    pub fn id(&self) -> &str {
        &self.item.booking_id
    }

    pub fn intent_id(&self) -> Option<&str> {
        self.item.payment.payment_intent_id.as_deref()
    }

    pub fn total(&self) -> Money {
        self.item.price.total_money()
    }

    /// Stored status pending and the payment not yet taken.
    pub fn awaits_payment(&self) -> bool {
        self.item.status == BookingStatus::PendingPayment && self.item.payment.status != PaymentStatus::Succeeded
    }
}

/// One strongly consistent GetItem of the booking.
pub async fn read_booking(table: &Table, booking_id: &str) -> Result<Option<BookingRecord>, TableError> {
    match table.get::<Value>(&booking::key(booking_id)).await? {
        Some(v) => BookingRecord::from_value(v).map(Some),
        None => Ok(None),
    }
}

/// The booking an intent belongs to, through its pointer (one GetItem).
pub async fn booking_of_intent(table: &Table, payment_intent_id: &str) -> Result<Option<String>, TableError> {
    Ok(table.get::<IntentPointer>(&intent_key(payment_intent_id)).await?.map(|p| p.booking_id))
}

/// Condition: the booking exists and its recorded intent is `payment_intent_id`.
pub fn condition_intent_is(payment_intent_id: &str) -> Expr {
    Expr::new("attribute_exists(#r_pk) AND #r_payment.#r_intent = :r_intent")
        .name("#r_pk", shared::keys::PK)
        .name("#r_payment", "payment")
        .name("#r_intent", "payment_intent_id")
        .s(":r_intent", payment_intent_id)
}

/// Condition: the booking's stored status is `status`.
pub fn condition_status_is(status: BookingStatus) -> Expr {
    Expr::new("#r_status = :r_status").name("#r_status", booking::STATUS_ATTR).s(":r_status", status.as_str())
}

/// The items of [`keep_intent`]'s transaction, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepIntentItem {
    Booking,
    /// `PAYMENT_INTENT#<id>`, the pointer to the booking.
    Pointer,
}

/// Why [`keep_intent`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum KeepIntentError {
    /// A condition failed: the booking stopped being payable, another intent was kept first, or
    /// the intent points at another booking.
    #[error("the intent was not kept: the conditions of {0:?} failed")]
    Refused(Vec<KeepIntentItem>),
    #[error(transparent)]
    Table(#[from] TableError),
}

/// Keeps the intent's id on the booking, in ONE transaction: the booking update (condition:
/// still waiting as read, `pending_payment` or a `requested` stay, and no intent yet or this
/// very one) and the intent -> booking
/// pointer (condition: none yet, or this booking's).
pub async fn keep_intent(
    table: &Table,
    b: &BookingRecord,
    intent_id: &str,
    now: Timestamp,
) -> Result<(), KeepIntentError> {
    let update = Expr::new("SET #p.#pi = :pi, #p.#ps = :processing, #updated = :now")
        .name("#p", "payment")
        .name("#pi", "payment_intent_id")
        .name("#ps", "status")
        .name("#updated", "updated_at")
        .s(":pi", intent_id)
        .s(":processing", "processing")
        .s(":now", shared::night::instant(now));
    let waiting = match b.item.status {
        BookingStatus::Requested => BookingStatus::Requested,
        _ => BookingStatus::PendingPayment,
    };
    let condition = condition_status_is(waiting).and(
        Expr::new("attribute_not_exists(#c_p.#c_pi) OR #c_p.#c_pi = :c_pi")
            .name("#c_p", "payment")
            .name("#c_pi", "payment_intent_id")
            .s(":c_pi", intent_id),
    );
    let pointer_condition = Expr::new("attribute_not_exists(#x_pk) OR #x_b = :x_b")
        .name("#x_pk", shared::keys::PK)
        .name("#x_b", "booking_id")
        .s(":x_b", b.id());
    let mut tx = Transaction::new(table);
    tx.update(KeepIntentItem::Booking, &booking::key(b.id()), &update, Some(&condition))?;
    tx.put(KeepIntentItem::Pointer, &IntentPointer::new(intent_id, b.id(), now), Some(&pointer_condition))?;
    tx.commit().await.map_err(|e| match e {
        TransactError::Conditions(failed) => KeepIntentError::Refused(failed),
        TransactError::Table(e) => KeepIntentError::Table(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_pointer() {
        assert_eq!(intent_key("pi_1"), Key::new("PAYMENT_INTENT#pi_1", "PAYMENT_INTENT"));
        let p = IntentPointer::new("pi_1", "bkg_1", "2026-01-01T10:00:00.5Z".parse().unwrap());
        let item = shared::table::to_item(&p).unwrap();
        assert_eq!(item["PK"].as_s().unwrap(), "PAYMENT_INTENT#pi_1");
        assert_eq!(item["type"].as_s().unwrap(), "payment_intent");
        assert_eq!(item["created_at"].as_s().unwrap(), "2026-01-01T10:00:00Z");
    }

    #[test]
    fn refund_records_have_the_documented_shape() {
        let r = RefundRecord {
            amount: 500,
            currency: Currency::EUR,
            status: RefundStatus::Pending,
            reason: Some(RefundReason::NotConfirmable),
            refund_id: None,
            requested_at: Some("2026-01-01T10:00:00Z".into()),
            succeeded_at: None,
            failure_reason: None,
            failed_at: None,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"amount": 500, "currency": "EUR", "status": "pending", "reason": "not_confirmable",
                   "requested_at": "2026-01-01T10:00:00Z"})
        );
        // Bookings may write the minimal shape the API shows; payments reads it.
        let minimal: RefundRecord =
            serde_json::from_value(json!({"amount": 1, "currency": "USD", "status": "succeeded"})).unwrap();
        assert_eq!(minimal.money(), Money::new(1, Currency::USD));
    }
}

// ---------------------------------------------------------------------------------------------
// Payout accounts (`USER#<id>` / `PAYOUT_ACCOUNT`)
// ---------------------------------------------------------------------------------------------

/// GetItem of a user's payout account (1 request, strongly consistent).
pub async fn payout_account(table: &Table, user_id: &str) -> Result<Option<PayoutAccountItem>, TableError> {
    table.get(&payout::account_key(user_id)).await
}

/// Put of a new payout account (condition: the user has none).
pub async fn create_payout_account(table: &Table, account: &PayoutAccountItem) -> Result<(), TableError> {
    table.put_new(account).await
}

/// What an `account.updated` event says of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub details_submitted: bool,
    pub payouts_enabled: bool,
    pub requirements_due: Vec<String>,
    pub disabled_reason: Option<String>,
    /// The event's `created` (seconds).
    pub event_created: i64,
}

/// Applies an account's state to its user's item: condition, it is this account and the event is
/// not older than the last one applied (Stripe does not deliver in order). A condition failure
/// (an older event, or no such account) is reported as such for the caller to acknowledge.
pub async fn update_payout_account(
    table: &Table,
    user_id: &str,
    account_id: &str,
    state: &AccountState,
    now: Timestamp,
) -> Result<(), TableError> {
    let update = Expr::new(
        "SET details_submitted = :ds, payouts_enabled = :pe, requirements_due = :rd, \
         stripe_event_created = :created, updated_at = :now REMOVE disabled_reason",
    );
    let mut update = update
        .value(":ds", AttributeValue::Bool(state.details_submitted))
        .value(":pe", AttributeValue::Bool(state.payouts_enabled))
        .ser(":rd", &state.requirements_due)?
        .n(":created", state.event_created)
        .s(":now", shared::night::instant(now));
    if let Some(reason) = &state.disabled_reason {
        update.expression = update.expression.replace(" REMOVE disabled_reason", ", disabled_reason = :dr");
        update = update.s(":dr", reason.clone());
    }
    let condition = Expr::new(
        "account_id = :c_acct AND (attribute_not_exists(stripe_event_created) OR stripe_event_created <= :c_created)",
    )
    .s(":c_acct", account_id)
    .n(":c_created", state.event_created);
    table.update(&payout::account_key(user_id), &update, Some(&condition)).await
}

/// Fixtures for this crate's unit tests.
#[cfg(test)]
pub(crate) mod test_support {
    use serde_json::json;

    use super::BookingRecord;

    /// A two-night EUR booking of `lst_1` (20 000 + 2 400 service fee), guest `g`, host `h`,
    /// check-in 2027-01-10 at 15:00 in Lisbon, in `status` with its payment in `payment_status`.
    pub fn booking(status: &str, payment_status: &str, intent: Option<&str>) -> BookingRecord {
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
}
