//! Host payouts through Stripe Connect (docs/payments.md, "Payouts"): the host's payout account,
//! the booking's payout item and the rules of how much a host is owed.
//!
//! Money flow: the guest pays the platform (the booking's PaymentIntent); the platform keeps the
//! guest's service fee and a platform fee of `fee_basis_points` of the host's part (nights and
//! cleaning), fixed on the booking's payout item when the booking is made; 24 hours after
//! check-in the payouts function transfers what the host is owed to the host's connected
//! account, once; a refund after that transfer reverses the host's part of it.
//!
//! Items (docs/data-model.md):
//! - `USER#<id>` / `PAYOUT_ACCOUNT`: the host's Express account, its state from `account.updated`.
//! - `BOOKING#<id>` / `PAYOUT`: the booking's payout, written with the booking (same transaction)
//!   and indexed on GSI3 under [`DUE_PARTITION`] while the payouts function has work on it.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::booking::BookingItem;
use crate::money::{self, Currency, MoneyError};
use crate::night;
use crate::table::Key;

pub const PAYOUT_SK: &str = "PAYOUT";
pub const PAYOUT_ITEM_TYPE: &str = "payout";
pub const ACCOUNT_SK: &str = "PAYOUT_ACCOUNT";
pub const ACCOUNT_ITEM_TYPE: &str = "payout_account";
/// GSI3 partition of payouts the payouts function has work on (sparse; sorted by
/// `<instant>#<booking id>`): one partition, read from its oldest entry. Its volume is a day's
/// check-ins plus retries, far below what one partition serves.
pub const DUE_PARTITION: &str = "PAYOUTS_DUE";
/// A payout is due this long after check-in (the stay has started as booked).
pub const DELAY_AFTER_CHECK_IN: SignedDuration = SignedDuration::from_hours(24);
/// The platform fee's denominator: basis points (300 = 3 %).
pub const BASIS_POINTS: u32 = 10_000;

/// `BOOKING#<id>` / `PAYOUT`.
pub fn key(booking_id: &str) -> Key {
    Key::new(format!("BOOKING#{booking_id}"), PAYOUT_SK)
}

/// `USER#<id>` / `PAYOUT_ACCOUNT`.
pub fn account_key(user_id: &str) -> Key {
    Key::new(format!("USER#{user_id}"), ACCOUNT_SK)
}

/// GSI3 sort key of a payout due at `due` (whole-second RFC 3339 UTC).
pub fn due_sort_key(due: &str, booking_id: &str) -> String {
    format!("{due}#{booking_id}")
}

/// What the host gets of a booking if nothing is refunded, fixed when it is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutTerms {
    /// The platform fee's rate, in basis points of the host's part.
    pub fee_basis_points: u32,
    /// In minor units: `fee_basis_points` of (subtotal + cleaning fee), rounded half-up.
    pub platform_fee: i64,
    /// In minor units: subtotal + cleaning fee - platform fee.
    pub host_amount: i64,
}

/// The terms of a stay priced `subtotal` + `cleaning_fee` (the guest's service fee is the
/// platform's and not part of them).
pub fn terms(subtotal: i64, cleaning_fee: i64, fee_basis_points: u32) -> Result<PayoutTerms, MoneyError> {
    if fee_basis_points > BASIS_POINTS {
        return Err(MoneyError::Overflow);
    }
    let base = subtotal.checked_add(cleaning_fee).ok_or(MoneyError::Overflow)?;
    let platform_fee = money::ratio_half_up(base, i128::from(fee_basis_points), i128::from(BASIS_POINTS))
        .ok_or(MoneyError::Overflow)?;
    Ok(PayoutTerms { fee_basis_points, platform_fee, host_amount: base - platform_fee })
}

/// What the host is owed once `refunded` of `paid` went back to the guest: the host's amount in
/// the proportion the platform kept, rounded down (a refund never leaves the host more than
/// their share of what was kept; nothing paid, nothing owed).
pub fn host_due(host_amount: i64, paid: i64, refunded: i64) -> i64 {
    if paid <= 0 || host_amount <= 0 {
        return 0;
    }
    let kept = paid - refunded.clamp(0, paid);
    let due = i128::from(host_amount) * i128::from(kept) / i128::from(paid);
    i64::try_from(due).unwrap_or(0)
}

/// Where a booking's payout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    /// Waiting for its date (`due_at`).
    Scheduled,
    /// Due, but the host has no payout account that can receive transfers yet: retried.
    WaitingForAccount,
    /// The last transfer or reversal attempt failed (`last_error`): retried, and alarmed.
    Failed,
    /// Transferred (`transferred - reversed` is what the host has).
    Paid,
    /// Transferred, then reversed in full (the stay was refunded in full).
    Reversed,
    /// Nothing is owed: the booking was never paid, or was refunded in full before its date.
    NotDue,
}

impl PayoutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::WaitingForAccount => "waiting_for_account",
            Self::Failed => "failed",
            Self::Paid => "paid",
            Self::Reversed => "reversed",
            Self::NotDue => "not_due",
        }
    }
}

/// `BOOKING#<id>` / `PAYOUT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "type")]
    pub item_type: String,
    pub booking_id: String,
    pub host_id: String,
    pub currency: Currency,
    #[serde(flatten)]
    pub terms: PayoutTerms,
    pub status: PayoutStatus,
    /// RFC 3339 UTC, whole seconds: check-in + 24 h.
    pub due_at: String,
    /// Transfer attempts Stripe refused (each retry is a new request: its idempotency key counts
    /// them; an attempt whose outcome is unknown is retried with the same key).
    #[serde(default)]
    pub refused_attempts: u32,
    /// Failed attempts of any kind, for the host's view and the alarm.
    #[serde(default)]
    pub failed_attempts: u32,
    /// Stripe's error code of the last failed attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The amount of a transfer attempt whose outcome is not known yet (claimed before Stripe is
    /// called): its retry sends the same amount under the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_attempt: Option<i64>,
    /// When that attempt was claimed (RFC 3339 UTC): another run leaves a fresh claim alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_claimed_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    /// Minor units transferred to the host (0 before the transfer).
    #[serde(default)]
    pub transferred: i64,
    /// Minor units of the transfer reversed since.
    #[serde(default)]
    pub reversed: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<String>,
    #[serde(rename = "GSI3PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(rename = "GSI3SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Bumped by every write of the payouts function, each conditioned on the value it read.
    #[serde(default)]
    pub version: u64,
}

impl PayoutItem {
    /// The payout of a new booking: scheduled for 24 hours after its check-in and indexed then.
    pub fn scheduled(b: &BookingItem, fee_basis_points: u32, now: Timestamp) -> anyhow::Result<Self> {
        let terms = terms(b.price.subtotal, b.price.cleaning_fee, fee_basis_points)?;
        let check_in = crate::booking::check_out_instant(b.check_in, &b.check_in_time, &b.timezone)?;
        let due_at = night::instant(check_in.checked_add(DELAY_AFTER_CHECK_IN)?);
        let key = key(&b.booking_id);
        Ok(Self {
            pk: key.pk,
            sk: key.sk,
            item_type: PAYOUT_ITEM_TYPE.to_owned(),
            booking_id: b.booking_id.clone(),
            host_id: b.host.user_id.clone(),
            currency: b.price.currency,
            terms,
            status: PayoutStatus::Scheduled,
            gsi3pk: Some(DUE_PARTITION.to_owned()),
            gsi3sk: Some(due_sort_key(&due_at, &b.booking_id)),
            due_at,
            refused_attempts: 0,
            failed_attempts: 0,
            last_error: None,
            transfer_attempt: None,
            attempt_claimed_at: None,
            transfer_id: None,
            transferred: 0,
            reversed: 0,
            paid_at: None,
            created_at: night::instant(now),
            updated_at: night::instant(now),
            version: 0,
        })
    }

    /// What the host has now: transferred minus reversed.
    pub fn net(&self) -> i64 {
        self.transferred - self.reversed
    }
}

/// The booking's payout as its host sees it (`payout` on the booking; never shown to the guest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PayoutView {
    pub status: PayoutStatus,
    pub currency: Currency,
    /// The platform fee's rate, in basis points of nights + cleaning (300 = 3 %).
    pub fee_basis_points: u32,
    /// Minor units the platform keeps of nights + cleaning.
    pub platform_fee: i64,
    /// Minor units the host gets if nothing is refunded.
    pub host_amount: i64,
    /// When the transfer is due, RFC 3339 UTC (24 hours after check-in).
    #[schema(format = DateTime)]
    pub due_at: String,
    /// Minor units transferred to the host's payout account.
    pub transferred: i64,
    /// Minor units of that transfer reversed (a refund after the payout).
    pub reversed: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime, nullable = false)]
    pub paid_at: Option<String>,
    /// Failed attempts so far (each is retried).
    pub failed_attempts: u32,
    /// Stripe's code for the last failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_error: Option<String>,
}

impl From<&PayoutItem> for PayoutView {
    fn from(p: &PayoutItem) -> Self {
        Self {
            status: p.status,
            currency: p.currency,
            fee_basis_points: p.terms.fee_basis_points,
            platform_fee: p.terms.platform_fee,
            host_amount: p.terms.host_amount,
            due_at: p.due_at.clone(),
            transferred: p.transferred,
            reversed: p.reversed,
            paid_at: p.paid_at.clone(),
            failed_attempts: p.failed_attempts,
            last_error: p.last_error.clone(),
        }
    }
}

/// Where a host's payout account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Created; the host has not finished Stripe's onboarding.
    Onboarding,
    /// Stripe pays out to it: transfers can be made.
    Enabled,
    /// Stripe has disabled payouts (`disabled_reason`, `requirements_due`).
    Restricted,
}

/// `USER#<id>` / `PAYOUT_ACCOUNT`: the host's Connect Express account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutAccountItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "type")]
    pub item_type: String,
    pub user_id: String,
    /// Stripe's `acct_...`.
    pub account_id: String,
    pub country: String,
    pub details_submitted: bool,
    pub payouts_enabled: bool,
    /// Stripe's `requirements.currently_due`.
    #[serde(default)]
    pub requirements_due: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    /// `created` of the last `account.updated` applied (seconds): older events are ignored.
    #[serde(default)]
    pub stripe_event_created: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl PayoutAccountItem {
    pub fn new(user_id: &str, account_id: &str, country: &str, now: Timestamp) -> Self {
        let key = account_key(user_id);
        Self {
            pk: key.pk,
            sk: key.sk,
            item_type: ACCOUNT_ITEM_TYPE.to_owned(),
            user_id: user_id.to_owned(),
            account_id: account_id.to_owned(),
            country: country.to_owned(),
            details_submitted: false,
            payouts_enabled: false,
            requirements_due: Vec::new(),
            disabled_reason: None,
            stripe_event_created: 0,
            created_at: night::instant(now),
            updated_at: night::instant(now),
        }
    }

    pub fn status(&self) -> AccountStatus {
        match (self.payouts_enabled, self.details_submitted) {
            (true, _) => AccountStatus::Enabled,
            (false, true) => AccountStatus::Restricted,
            (false, false) => AccountStatus::Onboarding,
        }
    }

    /// Whether a transfer to it can be made now.
    pub fn can_receive(&self) -> bool {
        self.payouts_enabled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_keep_the_fee_of_nights_and_cleaning_and_give_the_host_the_rest() {
        // 3 % of 24_690 + 5_000 = 890.7 -> 891.
        let t = terms(24_690, 5_000, 300).unwrap();
        assert_eq!(t, PayoutTerms { fee_basis_points: 300, platform_fee: 891, host_amount: 28_799 });
        assert_eq!(terms(1_000, 0, 0).unwrap().host_amount, 1_000);
        assert_eq!(terms(1_000, 0, BASIS_POINTS).unwrap().host_amount, 0);
        assert!(terms(1_000, 0, BASIS_POINTS + 1).is_err());
        assert!(terms(i64::MAX, 1, 300).is_err());
    }

    #[test]
    fn the_host_is_owed_their_share_of_what_was_kept() {
        assert_eq!(host_due(28_799, 33_342, 0), 28_799);
        assert_eq!(host_due(28_799, 33_342, 33_342), 0);
        // Half refunded: half the host's amount, rounded down.
        assert_eq!(host_due(28_799, 33_342, 16_671), 14_399);
        // Never more than the host's amount, never negative.
        assert_eq!(host_due(28_799, 33_342, -5), 28_799);
        assert_eq!(host_due(28_799, 33_342, 99_999), 0);
        assert_eq!(host_due(28_799, 0, 0), 0);
    }

    #[test]
    fn an_account_is_enabled_only_when_stripe_pays_out_to_it() {
        let mut a = PayoutAccountItem::new("u-1", "acct_1", "US", Timestamp::UNIX_EPOCH);
        assert_eq!(a.status(), AccountStatus::Onboarding);
        a.details_submitted = true;
        assert_eq!(a.status(), AccountStatus::Restricted);
        a.payouts_enabled = true;
        assert_eq!(a.status(), AccountStatus::Enabled);
        assert!(a.can_receive());
        assert_eq!(account_key("u-1"), Key::new("USER#u-1", "PAYOUT_ACCOUNT"));
        assert_eq!(key("bkg_1"), Key::new("BOOKING#bkg_1", "PAYOUT"));
    }
}
