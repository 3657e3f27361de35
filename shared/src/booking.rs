//! The booking item: the contract between bookings (which creates it, cancels it and sweeps
//! lapsed holds), payments and payment-events (which read the amount and confirm it) and reviews
//! (which need to know the stay is completed).
//!
//! - **Booking item** `BOOKING#<id>` / `BOOKING`: one GetItem by id serves its guest and its host
//!   (the item names both; anyone else gets a 404).
//! - On GSI1 under `GUEST#<guest id>` / `BOOKING#<id>`: the guest's trips, newest first.
//! - On GSI2 under `HOST#<host id>` / `BOOKING#<id>`: the host's reservations, newest first.
//! - **Hold slot** `GUEST#<guest id>` / `HOLD_SLOT#<n>` ([`HoldSlot`]): caps the bookings a guest
//!   has waiting for payment at [`MAX_OPEN_HOLDS`].
//!
//! A booking snapshots what it was sold under (price lines, cancellation policy, time zone,
//! check-in/out times, title, address, the listing `version` it was priced at), so later listing
//! edits never change it. Status that time changes is computed on read by [`effective_status`]
//! (every reader uses it; a sweep writes the same result later): `pending_payment` whose hold
//! lapsed reads `expired`, `confirmed` whose check-out instant passed reads `completed`.

use jiff::Timestamp;
use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::keys::Key;
use crate::listing::{Address, BookingMode, CancellationPolicy};
use crate::money::{Currency, Money};
use crate::table::Expr;

pub const ITEM_TYPE: &str = "booking";
pub const ID_PREFIX: &str = "bkg";
pub const SK: &str = "BOOKING";
pub const GUEST_INDEX: &str = "GSI1";
pub const HOST_INDEX: &str = "GSI2";
/// Sort-key prefix of bookings in both indexes (ids sort by creation time).
pub const INDEX_SORT_PREFIX: &str = "BOOKING#";
pub const STATUS_ATTR: &str = "status";
pub const HOLD_EXPIRES_AT_ATTR: &str = "hold_expires_at";
pub const CHECK_OUT_AT_ATTR: &str = "check_out_at";
pub const LISTING_ID_ATTR: &str = "listing_id";
/// GSI3, sparse: a booking that time will change (a hold that lapses, a stay that ends) sits
/// under `SWEEP#<day of that instant>` sorted by `<instant>#<id>`, so the sweep finds what is
/// due with one Query per day and never scans. Terminal statuses remove both keys.
pub const SWEEP_INDEX: &str = "GSI3";
pub const SWEEP_PK_ATTR: &str = "GSI3PK";
pub const SWEEP_SK_ATTR: &str = "GSI3SK";

/// How many bookings one guest may have waiting for payment at once (`pending_payment` with a
/// hold that has not lapsed): one hold slot item each (`HoldSlot`).
pub const MAX_OPEN_HOLDS: u32 = 3;
pub const HOLD_SLOT_ITEM_TYPE: &str = "hold_slot";
pub const HOLD_SLOT_SK_PREFIX: &str = "HOLD_SLOT#";
pub const HOLD_SLOT_BOOKING_ATTR: &str = "booking_id";

/// `BOOKING#<id>` / `BOOKING`.
pub fn key(booking_id: &str) -> Key {
    Key::new(format!("BOOKING#{booking_id}"), SK)
}

/// The sweep keys (GSI3PK, GSI3SK) for a booking that needs attention at `due`
/// (whole-second RFC 3339 UTC, as stored).
pub fn sweep_keys(booking_id: &str, due: &str) -> (String, String) {
    (sweep_partition(due.get(..10).unwrap_or(due)), format!("{due}#{booking_id}"))
}

/// The sweep partition of a day (`YYYY-MM-DD`).
pub fn sweep_partition(day: &str) -> String {
    format!("SWEEP#{day}")
}

/// GSI1 partition of a guest's trips: `GUEST#<user id>` (also the table partition of the
/// guest's hold slots).
pub fn guest_partition(guest_id: &str) -> String {
    format!("GUEST#{guest_id}")
}

/// GSI2 partition of a host's reservations: `HOST#<user id>`.
pub fn host_partition(host_id: &str) -> String {
    format!("HOST#{host_id}")
}

/// Sort key in both indexes: `BOOKING#<id>`.
pub fn index_sort_key(booking_id: &str) -> String {
    format!("{INDEX_SORT_PREFIX}{booking_id}")
}

/// `pending_payment` -> `confirmed` -> `completed` (once the check-out time passed in the
/// listing's time zone); exits `expired` (the hold lapsed unpaid) and `cancelled`. On a
/// `request` listing: `requested` -> `confirmed` (the host accepted) or `declined`; a request
/// unanswered for 24 hours reads `expired`, one its guest withdraws is `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BookingStatus {
    PendingPayment,
    /// On a `request` listing: the nights are held (24 hours) while the host answers.
    Requested,
    Confirmed,
    Completed,
    Expired,
    Cancelled,
    /// The host declined the request: the nights are free, the card's authorisation cancelled.
    Declined,
}

impl BookingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PendingPayment => "pending_payment",
            Self::Requested => "requested",
            Self::Confirmed => "confirmed",
            Self::Completed => "completed",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::Declined => "declined",
        }
    }

    /// Whether the guest may see the exact address: the stay was paid for.
    pub fn reveals_address(self) -> bool {
        matches!(self, Self::Confirmed | Self::Completed)
    }
}

/// The status at `now` of a booking stored with `stored`: the one function every reader uses.
/// `hold_expires_at` and `check_out_at` are RFC 3339 instants; an unreadable one never moves
/// the status (a hold that cannot be read is treated as still held, as NIGHT items are).
pub fn effective_status(
    stored: BookingStatus,
    hold_expires_at: Option<&str>,
    check_out_at: &str,
    now: Timestamp,
) -> BookingStatus {
    let passed = |t: Option<&str>| t.and_then(|t| t.parse::<Timestamp>().ok()).is_some_and(|t| t <= now);
    match stored {
        BookingStatus::PendingPayment | BookingStatus::Requested if passed(hold_expires_at) => BookingStatus::Expired,
        BookingStatus::Confirmed if passed(Some(check_out_at)) => BookingStatus::Completed,
        other => other,
    }
}

/// The `FilterExpression` that selects bookings whose [`effective_status`] at `now` is `status`,
/// for list queries. It compares the same stored instants (fixed-width RFC 3339, so string order
/// is time order); readers still apply `effective_status` to what comes back.
pub fn status_filter(status: BookingStatus, now: Timestamp) -> Expr {
    use BookingStatus::*;
    let now_s = crate::night::instant(now);
    let by_status = |e: &str| Expr::new(e).name("#f_status", STATUS_ATTR).s(":f_status", status.as_str());
    let hold = |e: Expr| e.name("#f_hold", HOLD_EXPIRES_AT_ATTR).s(":f_now", now_s.clone());
    let out = |e: Expr| e.name("#f_out", CHECK_OUT_AT_ATTR).s(":f_now", now_s.clone());
    match status {
        PendingPayment | Requested => hold(by_status("#f_status = :f_status AND #f_hold > :f_now")),
        Expired => hold(by_status(
            "#f_status = :f_status OR ((#f_status = :f_other OR #f_status = :f_requested) AND #f_hold <= :f_now)",
        ))
        .s(":f_other", PendingPayment.as_str())
        .s(":f_requested", Requested.as_str()),
        Confirmed => out(by_status("#f_status = :f_status AND #f_out > :f_now")),
        Completed => out(by_status("#f_status = :f_status OR (#f_status = :f_other AND #f_out <= :f_now)"))
            .s(":f_other", Confirmed.as_str()),
        Cancelled | Declined => by_status("#f_status = :f_status"),
    }
}

/// The instant a stay ends: `check_out` at `check_out_time` (`HH:MM`) in `timezone` (IANA).
/// A local time that does not exist (a DST gap) resolves forward, as jiff's "compatible" rule.
pub fn check_out_instant(check_out: Date, check_out_time: &str, timezone: &str) -> Result<Timestamp, anyhow::Error> {
    let time: Time =
        check_out_time.parse().map_err(|e| anyhow::anyhow!("check-out time {check_out_time:?} is not HH:MM: {e}"))?;
    let tz = TimeZone::get(timezone).map_err(|e| anyhow::anyhow!("time zone {timezone:?}: {e}"))?;
    Ok(check_out.to_datetime(time).to_zoned(tz)?.timestamp())
}

/// `GUEST#<guest id>` / `HOLD_SLOT#<n>`, `n` in `1..=MAX_OPEN_HOLDS`: the guest's hold slots.
pub fn hold_slot_key(guest_id: &str, slot: u32) -> Key {
    Key::new(guest_partition(guest_id), format!("{HOLD_SLOT_SK_PREFIX}{slot}"))
}

/// The keys of all of a guest's hold slots, in slot order.
pub fn hold_slot_keys(guest_id: &str) -> Vec<Key> {
    (1..=MAX_OPEN_HOLDS).map(|n| hold_slot_key(guest_id, n)).collect()
}

/// A hold slot: which booking of the guest last took it, and until when that booking's hold
/// runs. A new booking takes one of its guest's `MAX_OPEN_HOLDS` slots in its own transaction,
/// so a guest never has more open holds than slots, whatever the concurrency.
///
/// A slot is never released by a write: it is free when no item exists, when its hold lapsed,
/// or when its booking has left `pending_payment` (paid, cancelled, expired), which the taker
/// reads. All three are permanent (a status never returns to `pending_payment`, a lapsed hold
/// never revives), so the taker's condition only has to check that the slot still names the
/// booking it judged ([`condition_slot_unchanged`]): confirmation, cancellation and the sweep
/// need no extra item, and a late payment or a lost write can never leave a slot stuck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldSlot {
    #[serde(flatten)]
    pub key: Key,
    #[serde(rename = "type")]
    pub item_type: String,
    pub slot: u32,
    pub booking_id: String,
    /// The booking's `hold_expires_at` (whole-second RFC 3339 UTC).
    pub hold_expires_at: String,
    /// TTL (epoch seconds), a day after the hold: clean-up only (a lapsed hold frees the slot
    /// whether or not TTL deleted it).
    pub expires_at: i64,
    pub updated_at: String,
}

impl HoldSlot {
    /// Slot `slot` of `guest_id`, taken by `booking_id` until `until`.
    pub fn taken(guest_id: &str, slot: u32, booking_id: &str, until: Timestamp, now: Timestamp) -> Self {
        Self {
            key: hold_slot_key(guest_id, slot),
            item_type: HOLD_SLOT_ITEM_TYPE.to_owned(),
            slot,
            booking_id: booking_id.to_owned(),
            hold_expires_at: crate::night::instant(until),
            expires_at: until.as_second() + 24 * 3600,
            updated_at: crate::night::instant(now),
        }
    }

    /// Whether its hold lapsed at `now` (the booking then reads `expired`, see
    /// [`effective_status`]). An unreadable instant counts as a live hold: never free a slot by
    /// accident.
    pub fn hold_lapsed_at(&self, now: Timestamp) -> bool {
        self.hold_expires_at.parse::<Timestamp>().is_ok_and(|t| t <= now)
    }
}

/// Condition for taking a slot: it still names the booking the taker judged (`None`: no
/// booking at all, or no item). Enough because a slot once free stays free until taken (see
/// [`HoldSlot`]); if another request took it meanwhile, the condition fails and the taker reads
/// the slots again.
pub fn condition_slot_unchanged(seen_booking: Option<&str>) -> Expr {
    match seen_booking {
        None => Expr::new("attribute_not_exists(#s_booking)").name("#s_booking", HOLD_SLOT_BOOKING_ATTR),
        Some(b) => Expr::new("#s_booking = :s_seen").name("#s_booking", HOLD_SLOT_BOOKING_ATTR).s(":s_seen", b),
    }
}

/// One night's price line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NightlyPrice {
    /// The night, `YYYY-MM-DD` in the listing's time zone.
    #[schema(value_type = String, format = Date, examples("2026-03-01"))]
    pub date: Date,
    /// Minor units of the price's currency.
    pub amount: i64,
}

/// The price of a stay as API.md's quote shows it: amounts in minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Price {
    /// One line per night of the stay, in date order.
    pub nightly: Vec<NightlyPrice>,
    /// The nights' sum, in minor units.
    #[schema(minimum = 0, examples(24690))]
    pub subtotal: i64,
    /// The listing's cleaning fee (0 when it has none), in minor units.
    #[schema(minimum = 0)]
    pub cleaning_fee: i64,
    /// 12 % of the subtotal, rounded half-up to the minor unit.
    #[schema(minimum = 0)]
    pub service_fee: i64,
    /// subtotal + cleaning fee + service fee: what the guest pays, in minor units.
    #[schema(minimum = 0, examples(30653))]
    pub total: i64,
    pub currency: Currency,
}

impl Price {
    /// What the guest pays.
    pub fn total_money(&self) -> Money {
        Money::new(self.total, self.currency)
    }
}

/// Where the booking's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// No payment attempt yet.
    Unpaid,
    /// An intent exists and waits for the card.
    Processing,
    /// A request's card is authorised (not charged): charged when the host accepts.
    Authorized,
    Succeeded,
    Failed,
}

/// The booking's payment. Its host sees `status` only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Payment {
    pub status: PaymentStatus,
    /// Stripe's PaymentIntent (`pi_...`), once the guest started paying (guest only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub payment_intent_id: Option<String>,
    /// Stripe's failure code of the last attempt, if it failed (guest only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub failure: Option<String>,
    /// Written by payment-events when the payment succeeded: the ceiling of any refund (guest
    /// only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub amount_paid: Option<Money>,
}

/// Who cancelled, when, and the refund due (what `booking.cancelled` carried).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Cancellation {
    pub by: crate::events::CancelledBy,
    /// When, RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub at: String,
    /// The reason its canceller gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
    /// What the cancellation refunds (0 when nothing was paid).
    pub refund_due: Money,
}

/// The host's decline of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decline {
    /// When, RFC 3339 UTC.
    #[schema(format = DateTime)]
    pub at: String,
    /// The host's message to the guest, if any (plain text, up to 1000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<String>,
}

/// How long a request holds its nights while the host answers.
pub const REQUEST_HOLD: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// The refund as payment-events records it (it owns `refund`; bookings only reads it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(
    description = "The refund a cancellation (or a payment that came too late) owes the guest, and where it stands."
)]
pub struct RefundSummary {
    /// In minor units of `currency`.
    #[schema(minimum = 0)]
    pub amount: i64,
    pub currency: Currency,
    /// `none` (nothing to pay back), `pending`, `succeeded` or `failed`.
    #[schema(schema_with = refund_status_schema)]
    pub status: String,
    /// Stripe's reason when `status` is `failed` (docs/payments.md: how an operator retries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub failure_reason: Option<String>,
}

fn refund_status_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["none", "pending", "succeeded", "failed"]))
        .description(Some("`none` (nothing to pay back), `pending`, `succeeded` or `failed`."))
        .build()
}

/// A person as a booking names them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Party {
    /// Their user id (the Cognito `sub`).
    pub user_id: String,
    /// Their display name.
    pub name: String,
}

/// The booking item (`key(id)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookingItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "type")]
    pub item_type: String,
    /// `GUEST#<guest id>`.
    #[serde(rename = "GSI1PK")]
    pub gsi1pk: String,
    /// `BOOKING#<id>`.
    #[serde(rename = "GSI1SK")]
    pub gsi1sk: String,
    /// `HOST#<host id>`.
    #[serde(rename = "GSI2PK")]
    pub gsi2pk: String,
    /// `BOOKING#<id>`.
    #[serde(rename = "GSI2SK")]
    pub gsi2sk: String,
    pub booking_id: String,
    pub listing_id: String,
    /// The listing `version` the price was computed from (and checked against when booking).
    pub listing_version: u64,
    pub listing_title: String,
    pub guest: Party,
    pub host: Party,
    pub check_in: Date,
    pub check_out: Date,
    pub nights: u32,
    pub guests: u32,
    pub price: Price,
    pub cancellation_policy: CancellationPolicy,
    /// IANA time zone of the listing: dates and times below are local to it.
    pub timezone: String,
    pub check_in_time: String,
    pub check_out_time: String,
    /// The exact address, shown to the guest only once confirmed.
    pub address: Address,
    /// As stored; read it through `effective_status`.
    pub status: BookingStatus,
    /// The listing's booking mode when booked (absent on older items: `instant`).
    #[serde(default)]
    pub booking_mode: BookingMode,
    /// The host's answer to a request: declined, when and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decline: Option<Decline>,
    /// RFC 3339 UTC, whole seconds (`night::instant`): the hold on the nights lapses then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_expires_at: Option<String>,
    /// RFC 3339 UTC, whole seconds: `check_out` at `check_out_time` in `timezone`.
    pub check_out_at: String,
    pub payment: Payment,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancellation: Option<Cancellation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundSummary>,
    #[serde(rename = "GSI3PK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3pk: Option<String>,
    #[serde(rename = "GSI3SK", default, skip_serializing_if = "Option::is_none")]
    pub gsi3sk: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl BookingItem {
    pub fn effective_status(&self, now: Timestamp) -> BookingStatus {
        effective_status(self.status, self.hold_expires_at.as_deref(), &self.check_out_at, now)
    }

    /// Whether `user_id` may read it: its guest or its host.
    pub fn is_party(&self, user_id: &str) -> bool {
        self.guest.user_id == user_id || self.host.user_id == user_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn keys() {
        assert_eq!(key("bkg_1"), Key::new("BOOKING#bkg_1", "BOOKING"));
        assert_eq!(guest_partition("u-1"), "GUEST#u-1");
        assert_eq!(host_partition("u-2"), "HOST#u-2");
        assert_eq!(index_sort_key("bkg_1"), "BOOKING#bkg_1");
        assert!(index_sort_key("bkg_1").starts_with(INDEX_SORT_PREFIX));
        // Never the listing's key shapes.
        assert_ne!(key("x").pk, crate::listing::key("x").pk);
    }

    #[test]
    fn lapsed_holds_read_expired_and_ended_stays_completed() {
        let hold = Some("2026-01-01T10:15:00Z");
        let out = "2026-02-03T11:00:00Z";
        let s = |stored, now| effective_status(stored, hold, out, t(now));
        use BookingStatus::*;
        assert_eq!(s(PendingPayment, "2026-01-01T10:14:59Z"), PendingPayment);
        assert_eq!(s(PendingPayment, "2026-01-01T10:15:00Z"), Expired);
        assert_eq!(s(PendingPayment, "2026-03-01T00:00:00Z"), Expired);
        assert_eq!(s(Confirmed, "2026-02-03T10:59:59Z"), Confirmed);
        assert_eq!(s(Confirmed, "2026-02-03T11:00:00Z"), Completed);
        // A request unanswered when its 24-hour hold lapses reads expired, as an unpaid hold.
        assert_eq!(s(Requested, "2026-01-01T10:14:59Z"), Requested);
        assert_eq!(s(Requested, "2026-01-01T10:15:00Z"), Expired);
        for stored in [Completed, Expired, Cancelled, Declined] {
            assert_eq!(s(stored, "2030-01-01T00:00:00Z"), stored);
        }
        // Unreadable instants never move the status.
        assert_eq!(effective_status(PendingPayment, Some("soon"), out, t("2030-01-01T00:00:00Z")), PendingPayment);
        assert_eq!(effective_status(PendingPayment, None, out, t("2030-01-01T00:00:00Z")), PendingPayment);
        assert_eq!(effective_status(Confirmed, None, "later", t("2030-01-01T00:00:00Z")), Confirmed);
        assert!(Confirmed.reveals_address() && Completed.reveals_address());
        assert!(!PendingPayment.reveals_address() && !Expired.reveals_address() && !Cancelled.reveals_address());
        assert!(!Requested.reveals_address() && !Declined.reveals_address());
    }

    #[test]
    fn check_out_is_local_to_the_listing() {
        let d: Date = "2026-07-10".parse().unwrap();
        assert_eq!(check_out_instant(d, "11:00", "Europe/Lisbon").unwrap(), t("2026-07-10T10:00:00Z"));
        assert_eq!(check_out_instant(d, "11:00", "Pacific/Auckland").unwrap(), t("2026-07-09T23:00:00Z"));
        assert_eq!(check_out_instant(d, "11:00", "America/Los_Angeles").unwrap(), t("2026-07-10T18:00:00Z"));
        // 01:30 does not exist in Lisbon on 2026-03-29 (clocks jump from 01:00 to 02:00): 02:30 WEST.
        let gap: Date = "2026-03-29".parse().unwrap();
        assert_eq!(check_out_instant(gap, "01:30", "Europe/Lisbon").unwrap(), t("2026-03-29T01:30:00Z"));
        assert!(check_out_instant(d, "11h", "Europe/Lisbon").is_err());
        assert!(check_out_instant(d, "11:00", "Mars/Olympus").is_err());
    }

    /// DST in the listing's zone, and the end of the calendar: check-out instants are exact or
    /// an error, never a panic (bookings refuses such dates before it gets here: see its horizon).
    #[test]
    fn check_out_instants_at_dst_changes_and_the_calendars_end() {
        // Lisbon falls back on 2026-10-25 (02:00 WEST -> 01:00 WET): 01:30 happens twice; the
        // compatible rule takes the first (WEST, UTC+1).
        let fold: Date = "2026-10-25".parse().unwrap();
        assert_eq!(check_out_instant(fold, "01:30", "Europe/Lisbon").unwrap(), t("2026-10-25T00:30:00Z"));
        assert_eq!(check_out_instant(fold, "11:00", "Europe/Lisbon").unwrap(), t("2026-10-25T11:00:00Z"));
        // New York springs forward on 2027-03-14 at 02:00: 02:30 does not exist -> 03:30 EDT.
        let gap: Date = "2027-03-14".parse().unwrap();
        assert_eq!(check_out_instant(gap, "02:30", "America/New_York").unwrap(), t("2027-03-14T07:30:00Z"));
        // Auckland's autumn change (2027-04-04, 03:00 NZDT -> 02:00 NZST): 02:30 twice, first wins.
        let nz: Date = "2027-04-04".parse().unwrap();
        assert_eq!(check_out_instant(nz, "02:30", "Pacific/Auckland").unwrap(), t("2027-04-03T13:30:00Z"));
        // A leap day.
        let leap: Date = "2028-02-29".parse().unwrap();
        assert_eq!(check_out_instant(leap, "11:00", "Europe/Lisbon").unwrap(), t("2028-02-29T11:00:00Z"));
        // Past the last instant jiff represents (9999-12-30T22:00:00.999999999Z): an error, not
        // a panic. Just before it, in a zone ahead of UTC, still an answer.
        assert!(check_out_instant(Date::MAX, "11:00", "Europe/Lisbon").is_err());
        assert_eq!(check_out_instant(Date::MAX, "11:00", "Pacific/Auckland").unwrap(), t("9999-12-30T22:00:00Z"));
        assert!(check_out_instant(Date::MAX, "12:00", "Pacific/Auckland").is_err());
    }

    #[test]
    fn hold_slots_are_keyed_per_guest_and_judged_by_their_hold() {
        assert_eq!(hold_slot_key("u-1", 2), Key::new("GUEST#u-1", "HOLD_SLOT#2"));
        let keys = hold_slot_keys("u-1");
        assert_eq!(keys.len(), MAX_OPEN_HOLDS as usize);
        assert_eq!(keys[0].sk, "HOLD_SLOT#1");
        assert_eq!(keys[2].sk, "HOLD_SLOT#3");
        // Never a booking's or a listing's key.
        assert_ne!(keys[0].pk, key("u-1").pk);
        let now = t("2026-01-01T10:00:00.400Z");
        let until = t("2026-01-01T10:15:00Z");
        let s = HoldSlot::taken("u-1", 2, "bkg_1", until, now);
        assert_eq!((s.key.pk.as_str(), s.key.sk.as_str(), s.slot), ("GUEST#u-1", "HOLD_SLOT#2", 2));
        assert_eq!(
            (s.hold_expires_at.as_str(), s.updated_at.as_str()),
            ("2026-01-01T10:15:00Z", "2026-01-01T10:00:00Z")
        );
        assert_eq!(s.expires_at, until.as_second() + 86_400);
        assert!(!s.hold_lapsed_at(t("2026-01-01T10:14:59Z")));
        assert!(s.hold_lapsed_at(until), "lapsed when the booking reads expired");
        let mut broken = s.clone();
        broken.hold_expires_at = "soon".into();
        assert!(!broken.hold_lapsed_at(t("2030-01-01T00:00:00Z")));
        let item = crate::table::to_item(&s).unwrap();
        assert_eq!(item["type"], aws_sdk_dynamodb::types::AttributeValue::S("hold_slot".into()));
        assert_eq!(item["booking_id"], aws_sdk_dynamodb::types::AttributeValue::S("bkg_1".into()));
        let back: HoldSlot = crate::table::from_item(item).unwrap();
        assert_eq!(back, s);
        let c = condition_slot_unchanged(None);
        assert_eq!(c.expression, "attribute_not_exists(#s_booking)");
        assert!(c.values.is_empty());
        let c = condition_slot_unchanged(Some("bkg_0"));
        assert_eq!(c.expression, "#s_booking = :s_seen");
        assert_eq!(c.values[":s_seen"], aws_sdk_dynamodb::types::AttributeValue::S("bkg_0".into()));
        assert_eq!(c.names["#s_booking"], "booking_id");
    }

    #[test]
    fn status_filters_use_the_same_instants() {
        let now = t("2026-01-01T10:00:00.750Z");
        let f = status_filter(BookingStatus::Expired, now);
        assert_eq!(
            f.expression,
            "#f_status = :f_status OR ((#f_status = :f_other OR #f_status = :f_requested) AND #f_hold <= :f_now)"
        );
        assert_eq!(f.values[":f_requested"], aws_sdk_dynamodb::types::AttributeValue::S("requested".into()));
        assert_eq!(f.names["#f_hold"], "hold_expires_at");
        assert_eq!(f.values[":f_now"], aws_sdk_dynamodb::types::AttributeValue::S("2026-01-01T10:00:00Z".into()));
        assert_eq!(f.values[":f_other"], aws_sdk_dynamodb::types::AttributeValue::S("pending_payment".into()));
        let f = status_filter(BookingStatus::Completed, now);
        assert_eq!(f.names["#f_out"], "check_out_at");
        assert_eq!(f.values[":f_other"], aws_sdk_dynamodb::types::AttributeValue::S("confirmed".into()));
        let f = status_filter(BookingStatus::PendingPayment, now);
        assert_eq!(f.expression, "#f_status = :f_status AND #f_hold > :f_now");
        let f = status_filter(BookingStatus::Requested, now);
        assert_eq!(f.expression, "#f_status = :f_status AND #f_hold > :f_now");
        assert_eq!(f.values[":f_status"], aws_sdk_dynamodb::types::AttributeValue::S("requested".into()));
        let f = status_filter(BookingStatus::Confirmed, now);
        assert_eq!(f.expression, "#f_status = :f_status AND #f_out > :f_now");
        let f = status_filter(BookingStatus::Cancelled, now);
        assert_eq!(f.expression, "#f_status = :f_status");
        assert_eq!(f.values.len(), 1);
        // Every placeholder used is defined and every one defined is used (DynamoDB rejects both).
        for s in [
            BookingStatus::PendingPayment,
            BookingStatus::Confirmed,
            BookingStatus::Completed,
            BookingStatus::Expired,
            BookingStatus::Cancelled,
        ] {
            let f = status_filter(s, now);
            for p in f.names.keys().chain(f.values.keys()) {
                assert!(f.expression.contains(p.as_str()), "{s:?}: {p} unused");
            }
            for token in f.expression.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '#' || c == ':')) {
                if token.starts_with('#') {
                    assert!(f.names.contains_key(token), "{s:?}: {token} undefined");
                } else if token.starts_with(':') {
                    assert!(f.values.contains_key(token), "{s:?}: {token} undefined");
                }
            }
        }
    }
}
