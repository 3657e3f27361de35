//! The cancellation rules (the rules part of the skeleton, by topic): plain functions of who
//! cancels, how many days before check-in (in the listing's time zone), what share of the
//! amount paid comes back, and the body of a cancel request. The cancellation's transaction is
//! `lifecycle::cancel`.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Deserialize;
use shared::ApiError;
use shared::booking::{BookingItem, BookingStatus, PaymentStatus};
use shared::events::CancelledBy;
use shared::listing::CancellationPolicy;
use shared::money::{Money, MoneyError};

use crate::rules::today_in;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelRefusal {
    /// From the check-in day on, a guest can no longer cancel.
    #[error("the stay has started")]
    StayStarted,
    #[error("refund out of range: {0}")]
    Money(#[from] MoneyError),
}

/// The refund due and why, as the preview and the cancel report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundDecision {
    pub refund: Money,
    pub percent: u32,
    pub reason: String,
}

/// Days from today until check-in (negative once it passed).
pub fn days_before_check_in(check_in: Date, today: Date) -> i64 {
    i64::from((check_in - today).get_days())
}

/// The guest's share by policy (API.md): flexible 100 % from 1 day before; moderate 100 % from
/// 5 days, else 50 %; strict 100 % from 14 days, 50 % from 7, else 0.
pub fn guest_refund_percent(policy: CancellationPolicy, days: i64) -> u32 {
    match policy {
        CancellationPolicy::Flexible if days >= 1 => 100,
        CancellationPolicy::Flexible => 0,
        CancellationPolicy::Moderate if days >= 5 => 100,
        CancellationPolicy::Moderate => 50,
        CancellationPolicy::Strict if days >= 14 => 100,
        CancellationPolicy::Strict if days >= 7 => 50,
        CancellationPolicy::Strict => 0,
    }
}

/// What a cancellation refunds: a percentage of what was paid (nothing if nothing was paid),
/// rounded half-up to the minor unit. A host cancels at any time and refunds everything.
pub fn decide(
    by: CancelledBy,
    policy: CancellationPolicy,
    paid: Money,
    days: i64,
) -> Result<RefundDecision, CancelRefusal> {
    let (percent, reason) = match by {
        CancelledBy::Host => (100, "cancelled by the host: 100 % of the amount paid".to_string()),
        CancelledBy::Guest if days <= 0 => return Err(CancelRefusal::StayStarted),
        CancelledBy::Guest => {
            let percent = guest_refund_percent(policy, days);
            let policy_name = match policy {
                CancellationPolicy::Flexible => "flexible",
                CancellationPolicy::Moderate => "moderate",
                CancellationPolicy::Strict => "strict",
            };
            let when = if days == 1 { "1 day".to_string() } else { format!("{days} days") };
            (percent, format!("{policy_name} policy, cancelled {when} before check-in: {percent} % of the amount paid"))
        }
    };
    let reason = if paid.amount == 0 { format!("{reason} (nothing has been paid)") } else { reason };
    Ok(RefundDecision { refund: paid.percent_half_up(percent)?, percent, reason })
}

/// The refund a cancellation of `b` by `caller` would give at `now`, or why it is refused
/// (409 `already_cancelled`, `booking_not_cancellable`, `stay_started`).
pub fn decide_for_booking(
    b: &BookingItem,
    caller: &str,
    now: Timestamp,
) -> Result<(CancelledBy, RefundDecision), ApiError> {
    let by = if b.host.user_id == caller { CancelledBy::Host } else { CancelledBy::Guest };
    match b.effective_status(now) {
        BookingStatus::PendingPayment => {}
        // Accepted, and its authorised payment not yet captured: cancel once it is (a refund
        // needs the amount paid recorded).
        BookingStatus::Confirmed if b.payment.status != PaymentStatus::Succeeded => {
            return Err(ApiError::conflict(
                "payment_pending",
                "The payment for this booking is being taken; try again in a minute.",
            ));
        }
        BookingStatus::Confirmed => {}
        // The guest withdraws a request: nothing was charged, so nothing is refunded.
        BookingStatus::Requested if by == CancelledBy::Guest => {
            let nothing = Money::new(0, b.price.currency);
            let reason = "a request withdrawn before the host answered (nothing has been paid)".to_owned();
            return Ok((by, RefundDecision { refund: nothing, percent: 100, reason }));
        }
        BookingStatus::Requested => {
            return Err(ApiError::conflict(
                "booking_not_cancellable",
                "A request is answered, not cancelled: POST /v1/bookings/{id}/decline.",
            ));
        }
        BookingStatus::Declined => {
            return Err(ApiError::conflict("booking_not_cancellable", "A declined request cannot be cancelled."));
        }
        BookingStatus::Cancelled => {
            return Err(ApiError::conflict("already_cancelled", "This booking is already cancelled."));
        }
        BookingStatus::Expired | BookingStatus::Completed => {
            return Err(ApiError::conflict(
                "booking_not_cancellable",
                "An expired or completed booking cannot be cancelled.",
            ));
        }
    }
    let tz = TimeZone::get(&b.timezone).map_err(|e| anyhow::anyhow!("booking {} time zone: {e}", b.booking_id))?;
    let days = days_before_check_in(b.check_in, today_in(&tz, now));
    let paid = match (&b.payment.status, b.payment.amount_paid) {
        (PaymentStatus::Succeeded, Some(paid)) => paid,
        (PaymentStatus::Succeeded, None) => b.price.total_money(),
        _ => Money::new(0, b.price.currency),
    };
    let decision = decide(by, b.cancellation_policy, paid, days).map_err(|e| match e {
        CancelRefusal::StayStarted => ApiError::conflict(
            "stay_started",
            "The stay has started (it is the check-in day or later in the listing's time zone); only the host can cancel now.",
        ),
        CancelRefusal::Money(e) => ApiError::Unexpected(anyhow::anyhow!("refund of {}: {e}", b.booking_id)),
    })?;
    Ok((by, decision))
}

/// Body of `POST /v1/bookings/{id}/cancel` (optional: an empty body is no reason).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CancelRequest, examples(json!({"reason": "Our flight was cancelled."})))]
pub struct CancelBody {
    /// Why, shown on the booking: at most 500 characters (spaces around it are dropped; blank is
    /// no reason).
    #[schema(max_length = 500, examples("Our flight was cancelled."))]
    reason: Option<String>,
}

const CANCEL_REASON_MAX: usize = 500;

/// The reason a cancel request gives (trimmed; `None` when the body is empty or blank, or the
/// reason is), or 400 naming `reason` when it is over `CANCEL_REASON_MAX` characters.
pub fn reason(body: &[u8]) -> Result<Option<String>, ApiError> {
    let body: CancelBody = if body.iter().all(u8::is_ascii_whitespace) {
        CancelBody::default()
    } else {
        shared::extract::from_json_slice(body)?
    };
    // The maximum counts the reason as sent, as the schema's `maxLength` does.
    if body.reason.as_ref().is_some_and(|r| r.chars().count() > CANCEL_REASON_MAX) {
        return Err(ApiError::invalid_field("reason", format!("must be at most {CANCEL_REASON_MAX} characters")));
    }
    Ok(body.reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::money::Currency;

    fn usd(amount: i64) -> Money {
        Money::new(amount, Currency::parse("USD").unwrap())
    }

    #[test]
    fn every_policy_at_every_boundary() {
        use CancellationPolicy::*;
        let table = [
            // days:      14   13   7    6    5    4    1    0 (refused below)
            (Flexible, [100, 100, 100, 100, 100, 100, 100]),
            (Moderate, [100, 100, 100, 100, 100, 50, 50]),
            (Strict, [100, 50, 50, 0, 0, 0, 0]),
        ];
        for (policy, expected) in table {
            for (days, percent) in [14, 13, 7, 6, 5, 4, 1].into_iter().zip(expected) {
                assert_eq!(guest_refund_percent(policy, days), percent, "{policy:?} at {days} days");
            }
            assert_eq!(decide(CancelledBy::Guest, policy, usd(10_000), 0), Err(CancelRefusal::StayStarted));
            assert_eq!(decide(CancelledBy::Guest, policy, usd(10_000), -3), Err(CancelRefusal::StayStarted));
        }
    }

    #[test]
    fn the_percentage_applies_to_what_was_paid_rounded_half_up() {
        let decision = decide(CancelledBy::Guest, CancellationPolicy::Moderate, usd(12_345), 2).unwrap();
        assert_eq!((decision.refund, decision.percent), (usd(6_173), 50), "6172.5 rounds up");
        let nothing_paid = decide(CancelledBy::Guest, CancellationPolicy::Flexible, usd(0), 30).unwrap();
        assert_eq!(nothing_paid.refund, usd(0));
    }

    #[test]
    fn a_host_refunds_everything_even_after_check_in() {
        let decision = decide(CancelledBy::Host, CancellationPolicy::Strict, usd(9_999), -1).unwrap();
        assert_eq!((decision.refund, decision.percent), (usd(9_999), 100));
    }

    #[test]
    fn today_is_the_listings_date_not_utcs() {
        // 2026-03-09 20:00 UTC: already the 10th in Auckland, still the 9th in Los Angeles.
        let now: Timestamp = "2026-03-09T20:00:00Z".parse().unwrap();
        let auckland = today_in(&TimeZone::get("Pacific/Auckland").unwrap(), now);
        let los_angeles = today_in(&TimeZone::get("America/Los_Angeles").unwrap(), now);
        assert_eq!(auckland.to_string(), "2026-03-10");
        assert_eq!(los_angeles.to_string(), "2026-03-09");
        let check_in: Date = "2026-03-15".parse().unwrap();
        assert_eq!(days_before_check_in(check_in, auckland), 5);
        assert_eq!(days_before_check_in(check_in, los_angeles), 6);
        // So a moderate booking refunds 100 % in both places, and a strict one at 7 days differs:
        assert_eq!(guest_refund_percent(CancellationPolicy::Strict, 6), 0);
    }
}
