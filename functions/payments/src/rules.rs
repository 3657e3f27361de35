//! Who may pay a booking, and which intent at Stripe is the booking's: the payment call's
//! decisions, as plain functions of values.

use jiff::Timestamp;
use shared::ApiError;
use shared::booking::{BookingStatus, PaymentStatus};

use crate::store::BookingRecord;
use crate::stripe::{Intent, META_BOOKING_ID};

/// Stripe's `Idempotency-Key` for a booking's intent.
pub fn intent_idempotency_key(booking_id: &str) -> String {
    format!("payment-intent-{booking_id}")
}

/// 409 `booking_not_payable`.
pub fn not_payable() -> ApiError {
    ApiError::conflict(
        "booking_not_payable",
        "This booking cannot be paid: it is not waiting for payment (paid, cancelled, or its hold lapsed).",
    )
}

/// Who may pay and when: the rules, as values.
pub fn check_payable(b: &BookingRecord, caller: &str, now: Timestamp) -> Result<(), ApiError> {
    if b.item.guest.user_id != caller {
        return Err(if b.item.host.user_id == caller {
            ApiError::forbidden("not_booking_guest", "Only the booking's guest pays for it.")
        } else {
            ApiError::not_found()
        });
    }
    // A request is paid (its card authorised) while it waits for the host's answer.
    let waiting = matches!(b.item.effective_status(now), BookingStatus::PendingPayment | BookingStatus::Requested);
    if !waiting || b.item.payment.status == PaymentStatus::Succeeded {
        return Err(not_payable());
    }
    Ok(())
}

/// The open intent at Stripe that names this booking and charges exactly its price, if any.
pub fn pick_adoptable(b: &BookingRecord, found: Vec<Intent>) -> Option<Intent> {
    let total = b.total();
    found.into_iter().find(|i| {
        i.metadata.get(META_BOOKING_ID).map(String::as_str) == Some(b.id())
            && i.status != "canceled"
            && i.amount == total.amount
            && i.currency.eq_ignore_ascii_case(total.currency.code())
    })
}
