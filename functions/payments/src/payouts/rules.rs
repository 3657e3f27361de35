//! The payouts function's decisions as plain functions of values: what a booking's host is owed
//! now, and the one step that brings the payout there.

use jiff::{SignedDuration, Timestamp};
use shared::booking::{BookingItem, PaymentStatus};
use shared::payout::{self, PayoutAccountItem, PayoutItem, PayoutStatus};

/// How long a payout waits before the next look when its host has no account that can receive.
pub const ACCOUNT_RETRY: SignedDuration = SignedDuration::from_hours(1);
/// The first retry of a failed attempt; doubled per failure up to [`MAX_RETRY`].
pub const FIRST_RETRY: SignedDuration = SignedDuration::from_mins(30);
pub const MAX_RETRY: SignedDuration = SignedDuration::from_hours(24);

/// The one step that brings a payout to what is owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Transfer `amount` minor units to the host's account.
    Transfer { amount: i64, destination_ready: bool },
    /// Reverse `amount` minor units of the transfer (a refund after the payout).
    Reverse { amount: i64 },
    /// Nothing more to do: record the status and leave the due index.
    Settle(PayoutStatus),
}

/// Minor units the guest paid (0 unless the payment succeeded).
pub fn paid(b: &BookingItem) -> i64 {
    match (b.payment.status, &b.payment.amount_paid) {
        (PaymentStatus::Succeeded, Some(m)) => m.amount,
        _ => 0,
    }
}

/// Minor units going back to the guest: payment-events' refund record, else what the
/// cancellation owes (recorded before payment-events has acted on it).
pub fn refunded(b: &BookingItem) -> i64 {
    match (&b.refund, &b.cancellation) {
        (Some(r), _) => r.amount,
        (None, Some(c)) => c.refund_due.amount,
        (None, None) => 0,
    }
}

/// What the host is owed now.
pub fn owed(p: &PayoutItem, b: &BookingItem) -> i64 {
    payout::host_due(p.terms.host_amount, paid(b), refunded(b))
}

/// The next step for `p`, of booking `b`, whose host's account is `account`.
pub fn next_step(p: &PayoutItem, b: &BookingItem, account: Option<&PayoutAccountItem>) -> Step {
    let owed = owed(p, b);
    if p.transfer_id.is_none() {
        if owed == 0 && p.transfer_attempt.is_none() {
            return Step::Settle(PayoutStatus::NotDue);
        }
        // An attempt whose outcome is unknown is retried with its own amount (the same
        // idempotency key must carry the same parameters); any excess is reversed after.
        let amount = p.transfer_attempt.unwrap_or(owed);
        return Step::Transfer { amount, destination_ready: account.is_some_and(PayoutAccountItem::can_receive) };
    }
    let net = p.net();
    if net > owed {
        Step::Reverse { amount: net - owed }
    } else {
        Step::Settle(if net == 0 { PayoutStatus::Reversed } else { PayoutStatus::Paid })
    }
}

/// How long a run's claim of a transfer attempt keeps other runs from calling Stripe for it
/// (longer than a Stripe call and its record; a run that died leaves it to the next).
pub const CLAIM_LEASE: SignedDuration = SignedDuration::from_secs(60);

/// Whether another run's claim of `p`'s transfer attempt is still live at `now`: Stripe answers
/// a second request under the same key with 409 while the first runs, so it is left alone.
pub fn claimed_by_another_run(p: &PayoutItem, mine: Option<u64>, now: Timestamp) -> bool {
    if mine == Some(p.version) {
        return false;
    }
    let claimed: Option<Timestamp> = p.attempt_claimed_at.as_deref().and_then(|t| t.parse().ok());
    claimed.is_some_and(|at| now < at.checked_add(CLAIM_LEASE).unwrap_or(at))
}

/// Whether `p` is due at `now` by its own (consistent) index entry: indexed, at or before now.
pub fn is_due(p: &PayoutItem, now: Timestamp) -> bool {
    let until = format!("{}#~", shared::night::instant(now));
    p.gsi3pk.as_deref() == Some(payout::DUE_PARTITION) && p.gsi3sk.as_deref().is_some_and(|sk| sk <= until.as_str())
}

/// Stripe's `Idempotency-Key` of the transfer attempt: a refused attempt (Stripe keeps its
/// answer under its key) is retried under the next one; an unknown outcome under the same.
pub fn transfer_key(p: &PayoutItem) -> String {
    format!("payout-{}-{}", p.booking_id, p.refused_attempts)
}

/// The reversal's key: what the host keeps after it, and the refused attempts so far.
pub fn reversal_key(p: &PayoutItem, amount: i64) -> String {
    format!("payout-reversal-{}-{}-{}", p.booking_id, p.net() - amount, p.refused_attempts)
}

/// When a payout that failed `failed_attempts` times is tried again.
pub fn retry_at(now: Timestamp, failed_attempts: u32) -> Timestamp {
    let doublings = failed_attempts.saturating_sub(1).min(10);
    let wait = FIRST_RETRY.checked_mul(1 << doublings).unwrap_or(MAX_RETRY).min(MAX_RETRY);
    now.checked_add(wait).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use shared::booking::{Cancellation, RefundSummary};
    use shared::events::CancelledBy;
    use shared::money::{Currency, Money};

    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn booking(paid: Option<i64>) -> BookingItem {
        let mut b = crate::store::test_support::booking("confirmed", "unpaid", None).item;
        b.payment.status = if paid.is_some() { PaymentStatus::Succeeded } else { PaymentStatus::Unpaid };
        b.payment.amount_paid = paid.map(|a| Money::new(a, eur()));
        b
    }

    fn payout_of(b: &BookingItem) -> PayoutItem {
        PayoutItem::scheduled(b, 300, "2026-01-01T00:00:00Z".parse().unwrap()).unwrap()
    }

    fn enabled() -> PayoutAccountItem {
        let mut a = PayoutAccountItem::new("host", "acct_1", "PT", Timestamp::UNIX_EPOCH);
        a.payouts_enabled = true;
        a
    }

    #[test]
    fn a_paid_stay_transfers_the_hosts_amount_once_then_settles() {
        let b = booking(Some(22_400));
        let mut p = payout_of(&b);
        let host = p.terms.host_amount;
        // 3 % of 20_000 (no cleaning fee) = 600.
        assert_eq!((p.terms.platform_fee, host), (600, 19_400));
        assert_eq!(p.due_at, "2027-01-11T15:00:00Z");
        assert_eq!(next_step(&p, &b, Some(&enabled())), Step::Transfer { amount: host, destination_ready: true });
        assert_eq!(next_step(&p, &b, None), Step::Transfer { amount: host, destination_ready: false });
        p.transfer_id = Some("tr_1".into());
        p.transferred = host;
        assert_eq!(next_step(&p, &b, Some(&enabled())), Step::Settle(PayoutStatus::Paid));
    }

    #[test]
    fn nothing_paid_or_all_refunded_before_the_date_is_not_due() {
        let unpaid = booking(None);
        assert_eq!(next_step(&payout_of(&unpaid), &unpaid, Some(&enabled())), Step::Settle(PayoutStatus::NotDue));
        let mut refunded = booking(Some(1_000));
        let total = refunded.price.total;
        refunded.payment.amount_paid = Some(Money::new(total, eur()));
        refunded.cancellation = Some(Cancellation {
            by: CancelledBy::Host,
            at: "2026-01-01T00:00:00Z".into(),
            reason: None,
            refund_due: Money::new(total, eur()),
        });
        assert_eq!(next_step(&payout_of(&refunded), &refunded, None), Step::Settle(PayoutStatus::NotDue));
    }

    #[test]
    fn a_refund_after_the_transfer_reverses_the_hosts_part_of_it() {
        let mut b = booking(None);
        let total = b.price.total;
        b.payment.status = PaymentStatus::Succeeded;
        b.payment.amount_paid = Some(Money::new(total, eur()));
        let mut p = payout_of(&b);
        let host = p.terms.host_amount;
        p.transfer_id = Some("tr_1".into());
        p.transferred = host;
        // Half refunded: the host keeps half their amount (rounded down).
        b.refund = Some(RefundSummary {
            amount: total / 2,
            currency: eur(),
            status: "succeeded".into(),
            failure_reason: None,
        });
        let keep = payout::host_due(host, total, total / 2);
        assert_eq!(next_step(&p, &b, None), Step::Reverse { amount: host - keep });
        assert_eq!(reversal_key(&p, host - keep), format!("payout-reversal-{}-{keep}-0", p.booking_id));
        p.reversed = host - keep;
        assert_eq!(next_step(&p, &b, None), Step::Settle(PayoutStatus::Paid));
        // All refunded: all reversed.
        b.refund.as_mut().unwrap().amount = total;
        assert_eq!(next_step(&p, &b, None), Step::Reverse { amount: keep });
        p.reversed = host;
        assert_eq!(next_step(&p, &b, None), Step::Settle(PayoutStatus::Reversed));
    }

    #[test]
    fn an_attempt_of_unknown_outcome_is_retried_with_its_amount_and_key() {
        let b = booking(None);
        let mut p = payout_of(&b);
        p.transfer_attempt = Some(500);
        // Even though nothing is owed now: the attempt may have gone through.
        assert_eq!(next_step(&p, &b, None), Step::Transfer { amount: 500, destination_ready: false });
        assert_eq!(transfer_key(&p), format!("payout-{}-0", p.booking_id));
        p.refused_attempts = 2;
        assert_eq!(transfer_key(&p), format!("payout-{}-2", p.booking_id));
    }

    #[test]
    fn a_fresh_claim_of_another_run_is_left_alone_and_a_stale_one_taken_over() {
        let b = booking(Some(22_400));
        let mut p = payout_of(&b);
        let now: Timestamp = "2027-01-11T16:00:00Z".parse().unwrap();
        assert!(!claimed_by_another_run(&p, None, now), "no claim");
        p.transfer_attempt = Some(19_400);
        p.attempt_claimed_at = Some("2027-01-11T15:59:30Z".into());
        p.version = 4;
        assert!(claimed_by_another_run(&p, None, now));
        assert!(!claimed_by_another_run(&p, Some(4), now), "this run's own claim");
        assert!(!claimed_by_another_run(&p, None, now + SignedDuration::from_secs(31)), "a stale claim");
    }

    #[test]
    fn only_its_own_index_entry_makes_a_payout_due() {
        let b = booking(Some(22_400));
        let mut p = payout_of(&b);
        let before: Timestamp = "2027-01-11T14:59:59Z".parse().unwrap();
        let at: Timestamp = "2027-01-11T15:00:00Z".parse().unwrap();
        assert!(!is_due(&p, before));
        assert!(is_due(&p, at));
        // Settled (out of the index), or moved on by a retry: a stale index entry is not enough.
        p.gsi3pk = None;
        assert!(!is_due(&p, at));
    }

    #[test]
    fn retries_back_off_from_half_an_hour_to_a_day() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(retry_at(now, 1), now + SignedDuration::from_mins(30));
        assert_eq!(retry_at(now, 2), now + SignedDuration::from_hours(1));
        assert_eq!(retry_at(now, 7), now + SignedDuration::from_hours(24));
        assert_eq!(retry_at(now, 40), now + SignedDuration::from_hours(24));
    }
}
