//! The bookings context's rules as plain functions of values: parsing a stay, the stay rules
//! (each a 422 with a stable code naming the rule and the field), "today" in the listing's time
//! zone, the booking horizon, the guest's open holds, the price of a stay, and the booking item
//! a successful booking writes.

use std::collections::HashMap;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp};
use serde::{Deserialize, Serialize};
use shared::booking::{
    self, BookingItem, BookingStatus, HoldSlot, MAX_OPEN_HOLDS, NightlyPrice, Party, Payment, PaymentStatus, Price,
};
use shared::listing::{self, BookingMode, ListingItem, MAX_STAY_NIGHTS};
use shared::money::{Money, MoneyError};
use shared::night;
use shared::{ApiError, FieldError};

/// Body of `POST /v1/quotes` and `POST /v1/bookings`. Serialised again (fields in this order)
/// for the idempotency hash, so whitespace and key order never make "another body".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = StayRequest, description = "A stay: which listing, which nights, how many guests.", examples(json!({
    "listing_id": "lst_01jh8x3k2m4n5p6q7r8s9t0vwx", "check_in": "2026-03-01", "check_out": "2026-03-03", "guests": 2
})))]
pub struct StayBody {
    /// The listing: `lst_` + a lowercase ULID.
    #[schema(pattern = "^lst_[0-7][0-9a-hjkmnp-tv-z]{25}$", examples("lst_01jh8x3k2m4n5p6q7r8s9t0vwx"))]
    pub listing_id: String,
    /// The first night, exactly `YYYY-MM-DD` (a real date), in the listing's time zone: today
    /// there or later, at most 18 months ahead.
    #[schema(format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", examples("2026-03-01"))]
    pub check_in: String,
    /// The day the stay ends (not a night of it), exactly `YYYY-MM-DD`, after `check_in`; the
    /// stay's length within the listing's `min_nights` and `max_nights` (never over 90).
    #[schema(format = Date, pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", examples("2026-03-03"))]
    pub check_out: String,
    /// 1 to the listing's `max_guests`.
    #[schema(minimum = 1, examples(2))]
    pub guests: u32,
}

/// A well-formed stay request (the rules are checked against the listing later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stay {
    pub listing_id: String,
    pub check_in: Date,
    pub check_out: Date,
    pub guests: u32,
}

impl Stay {
    /// 400 `validation_failed` naming every malformed field.
    pub fn parse(body: &StayBody) -> Result<Self, ApiError> {
        let mut errors = Vec::new();
        let listing_id = shared::ids::parse_id("lst", &body.listing_id);
        if listing_id.is_none() {
            errors.push(FieldError::new("listing_id", "must be a listing id such as lst_01jh..."));
        }
        let mut date = |field: &str, raw: &str| {
            let d = night::parse_date(raw);
            if d.is_none() {
                errors.push(FieldError::new(field, "must be a date YYYY-MM-DD"));
            }
            d
        };
        let check_in = date("check_in", &body.check_in);
        let check_out = date("check_out", &body.check_out);
        match (listing_id, check_in, check_out) {
            (Some(id), Some(check_in), Some(check_out)) if errors.is_empty() => {
                Ok(Self { listing_id: id.to_owned(), check_in, check_out, guests: body.guests })
            }
            _ => Err(ApiError::validation(errors)),
        }
    }

    /// The nights of the half-open range `[check_in, check_out)`: empty unless `check_out` is
    /// later. At most `MAX_STAY_NIGHTS + 1` are listed: enough to break the longest-stay rule
    /// without building years of dates for a silly request.
    pub fn nights(&self) -> Vec<Date> {
        night::nights(self.check_in, self.check_out, MAX_STAY_NIGHTS as usize + 1)
    }
}

/// How far ahead a stay may start: check-in at most this many months after today (in the
/// listing's time zone).
pub const HORIZON_MONTHS: i8 = 18;

/// The last check-in date open on `today`: `today` + 18 months, clamped to the month's end as
/// calendars do (2026-08-31 -> 2028-02-29). Near the end of the calendar, the last date there is.
pub fn latest_check_in(today: Date) -> Date {
    today.checked_add(Span::new().months(HORIZON_MONTHS)).unwrap_or(Date::MAX)
}

/// A broken stay rule: 422 with a stable code naming the rule, and the field it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The listing is archived: it takes no new bookings.
    ListingUnavailable,
    /// A host cannot book their own listing.
    OwnListing,
    /// `check_out` must be after `check_in`.
    CheckOutNotAfterCheckIn,
    /// `check_in` is before today in the listing's time zone.
    CheckInInPast {
        today: Date,
    },
    /// `check_in` is after the booking horizon (`latest_check_in`).
    CheckInTooFarAhead {
        last: Date,
    },
    StayTooShort {
        min: u32,
    },
    StayTooLong {
        max: u32,
    },
    TooFewGuests,
    TooManyGuests {
        max: u32,
    },
}

impl Rule {
    pub fn code(&self) -> &'static str {
        match self {
            Self::ListingUnavailable => "listing_unavailable",
            Self::OwnListing => "own_listing",
            Self::CheckOutNotAfterCheckIn => "check_out_not_after_check_in",
            Self::CheckInInPast { .. } => "check_in_in_past",
            Self::CheckInTooFarAhead { .. } => "check_in_too_far_ahead",
            Self::StayTooShort { .. } => "stay_too_short",
            Self::StayTooLong { .. } => "stay_too_long",
            Self::TooFewGuests => "too_few_guests",
            Self::TooManyGuests { .. } => "too_many_guests",
        }
    }

    pub fn field(&self) -> &'static str {
        match self {
            Self::ListingUnavailable | Self::OwnListing => "listing_id",
            Self::CheckOutNotAfterCheckIn | Self::StayTooShort { .. } | Self::StayTooLong { .. } => "check_out",
            Self::CheckInInPast { .. } | Self::CheckInTooFarAhead { .. } => "check_in",
            Self::TooFewGuests | Self::TooManyGuests { .. } => "guests",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Self::ListingUnavailable => "the listing no longer takes bookings".to_owned(),
            Self::OwnListing => "you cannot book your own listing".to_owned(),
            Self::CheckOutNotAfterCheckIn => "must be after check_in".to_owned(),
            Self::CheckInInPast { today } => {
                format!("must be today ({today}, in the listing's time zone) or later")
            }
            Self::CheckInTooFarAhead { last } => {
                format!("must be at most {HORIZON_MONTHS} months ahead: {last} or earlier, in the listing's time zone")
            }
            Self::StayTooShort { min } => format!("the listing's minimum stay is {min} nights"),
            Self::StayTooLong { max } => format!("the listing's maximum stay is {max} nights"),
            Self::TooFewGuests => "must be at least 1".to_owned(),
            Self::TooManyGuests { max } => format!("the listing takes at most {max} guests"),
        }
    }
}

impl From<Rule> for ApiError {
    fn from(rule: Rule) -> Self {
        let message = rule.message();
        ApiError::unprocessable(rule.code(), format!("{}: {message}.", rule.field())).with_field(rule.field(), message)
    }
}

/// The listing's time zone (validated by listings when stored; a bad one is our bug, a 500).
pub fn listing_tz(l: &ListingItem) -> anyhow::Result<TimeZone> {
    TimeZone::get(&l.fields.timezone)
        .map_err(|e| anyhow::anyhow!("listing {} has time zone {:?}: {e}", l.listing_id, l.fields.timezone))
}

/// The calendar date at `now` in `tz`: "today" for the listing.
pub fn today_in(tz: &TimeZone, now: Timestamp) -> Date {
    now.to_zoned(tz.clone()).date()
}

/// Every stay rule, in a fixed order (the first broken one is answered): the listing is active,
/// not the guest's own (`guest_id` is `None` for an anonymous quote), `check_out > check_in`,
/// `today <= check_in <= latest_check_in(today)` (in the listing's time zone), min/max nights
/// (the listing's, never more than `MAX_STAY_NIGHTS`), guests `1..=max_guests`. Returns the
/// nights of the stay.
///
/// The horizon also keeps every later date computation (the check-out instant, the sweep's
/// days, the cancellation's day count) far from the end of the calendar, where they would fail.
pub fn check_stay(l: &ListingItem, stay: &Stay, guest_id: Option<&str>, today: Date) -> Result<Vec<Date>, Rule> {
    if !l.is_active() {
        return Err(Rule::ListingUnavailable);
    }
    if guest_id.is_some_and(|g| g == l.host_id) {
        return Err(Rule::OwnListing);
    }
    if stay.check_out <= stay.check_in {
        return Err(Rule::CheckOutNotAfterCheckIn);
    }
    if stay.check_in < today {
        return Err(Rule::CheckInInPast { today });
    }
    let last = latest_check_in(today);
    if stay.check_in > last {
        return Err(Rule::CheckInTooFarAhead { last });
    }
    let nights = stay.nights();
    let count = u32::try_from(nights.len()).unwrap_or(u32::MAX);
    if count < l.fields.min_nights {
        return Err(Rule::StayTooShort { min: l.fields.min_nights });
    }
    // Whatever the listing says, never more than one transaction can hold.
    let max = l.fields.max_nights.min(MAX_STAY_NIGHTS);
    if count > max {
        return Err(Rule::StayTooLong { max });
    }
    if stay.guests < 1 {
        return Err(Rule::TooFewGuests);
    }
    if stay.guests > l.fields.max_guests {
        return Err(Rule::TooManyGuests { max: l.fields.max_guests });
    }
    Ok(nights)
}

/// A hold slot a new booking may take, and the booking the slot named when it was judged free
/// (the condition of the take: `shared::booking::condition_slot_unchanged`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotClaim {
    pub slot: u32,
    pub seen_booking: Option<String>,
}

/// What a guest's hold slots allow at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slots {
    /// These slots can be taken.
    Free(Vec<SlotClaim>),
    /// Every slot names a booking whose hold is live: whether those bookings are still waiting
    /// for payment must be read (they may have been paid or cancelled).
    ReadBookings(Vec<String>),
    /// Every slot holds a booking waiting for payment; the first of their holds lapses at `until`.
    Full { until: Option<Timestamp> },
}

/// Judges the guest's slots at `now`. A slot is free when it has no item, when its hold lapsed,
/// or when its booking is no longer `pending_payment` (effective status) or does not exist.
/// `slots` are the items read (any order, any subset); `bookings` are the effective statuses of
/// the slots' bookings, once read (`None`: not read yet, then a live hold counts as unknown).
pub fn judge_slots(slots: &[HoldSlot], bookings: Option<&HashMap<String, BookingStatus>>, now: Timestamp) -> Slots {
    let mut free = Vec::new();
    let mut live = Vec::new();
    for n in 1..=MAX_OPEN_HOLDS {
        let Some(s) = slots.iter().find(|s| s.slot == n) else {
            free.push(SlotClaim { slot: n, seen_booking: None });
            continue;
        };
        let claim = SlotClaim { slot: n, seen_booking: Some(s.booking_id.clone()) };
        let waiting = match bookings {
            _ if s.hold_lapsed_at(now) => false,
            None => true,
            // A request waiting for its host's answer holds a slot as an unpaid booking does.
            Some(statuses) => {
                matches!(statuses.get(&s.booking_id), Some(BookingStatus::PendingPayment | BookingStatus::Requested))
            }
        };
        if waiting { live.push(s) } else { free.push(claim) }
    }
    if !free.is_empty() {
        Slots::Free(free)
    } else if bookings.is_none() {
        Slots::ReadBookings(live.iter().map(|s| s.booking_id.clone()).collect())
    } else {
        Slots::Full { until: live.iter().filter_map(|s| s.hold_expires_at.parse::<Timestamp>().ok()).min() }
    }
}

/// One of `free`, spread by the new booking's (random) id so that concurrent requests of one
/// guest rarely race for the same slot; `None` if there is none.
pub fn pick_slot<'a>(free: &'a [SlotClaim], booking_id: &str, attempt: usize) -> Option<&'a SlotClaim> {
    // FNV-1a: stable, no dependency; only the spread matters, not its quality.
    let hash =
        booking_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    let len = u64::try_from(free.len()).ok().filter(|l| *l > 0)?;
    let index = usize::try_from((hash.wrapping_add(attempt as u64)) % len).ok()?;
    free.get(index)
}

/// 409 `hold_limit_reached`: the guest already has `MAX_OPEN_HOLDS` bookings waiting for payment.
pub fn hold_limit_reached(until: Option<Timestamp>) -> ApiError {
    let when = until.map(|t| format!(" (the first hold lapses at {})", night::instant(t))).unwrap_or_default();
    ApiError::conflict(
        "hold_limit_reached",
        format!(
            "You already have {MAX_OPEN_HOLDS} bookings waiting for payment{when}; pay for or cancel one before booking again."
        ),
    )
}

/// 409 `dates_unavailable`, naming each taken night.
pub fn dates_unavailable(dates: &[Date]) -> ApiError {
    let list: Vec<String> = dates.iter().map(ToString::to_string).collect();
    ApiError::conflict("dates_unavailable", format!("These nights are no longer available: {}.", list.join(", ")))
        .with_errors(list.into_iter().map(|d| FieldError::new("nights", format!("{d} is not available"))).collect())
}

/// The price of `nights` at `nightly` plus the cleaning fee: subtotal = nightly x nights,
/// service fee = 12 % of the subtotal rounded half-up to the minor unit, total = subtotal +
/// cleaning fee + service fee (the sums are `shared::listing::stay_price`, the same function
/// search uses for its totals), with one line per night.
pub fn price(nightly: Money, cleaning_fee: Option<Money>, nights: &[Date]) -> Result<Price, MoneyError> {
    if nightly.amount < 0 || cleaning_fee.is_some_and(|c| c.amount < 0) {
        return Err(MoneyError::Negative);
    }
    let count = u32::try_from(nights.len()).map_err(|_| MoneyError::Overflow)?;
    let p = listing::stay_price(nightly, count, cleaning_fee)?;
    Ok(Price {
        nightly: nights.iter().map(|d| NightlyPrice { date: *d, amount: nightly.amount }).collect(),
        subtotal: p.subtotal.amount,
        cleaning_fee: p.cleaning_fee.amount,
        service_fee: p.service_fee.amount,
        total: p.total.amount,
        currency: nightly.currency,
    })
}

/// Everything a new booking is made of besides the listing.
#[derive(Debug, Clone)]
pub struct NewBooking<'a> {
    pub booking_id: &'a str,
    pub stay: &'a Stay,
    pub guest: Party,
    pub price: Price,
    pub now: Timestamp,
    pub hold: SignedDuration,
}

/// The booking item for `b` on `l`, with the snapshot of what it was sold under: on an
/// `instant` listing `pending_payment`, holding its nights until `now + hold`; on a `request`
/// listing `requested`, holding them for `REQUEST_HOLD` while its host answers.
pub fn booking_item(l: &ListingItem, b: NewBooking<'_>) -> anyhow::Result<BookingItem> {
    let key = booking::key(b.booking_id);
    let (status, hold) = match l.fields.booking_mode {
        BookingMode::Instant => (BookingStatus::PendingPayment, b.hold),
        BookingMode::Request => (BookingStatus::Requested, booking::REQUEST_HOLD),
    };
    let hold_until = b.now.checked_add(hold)?;
    let check_out_at = booking::check_out_instant(b.stay.check_out, &l.fields.check_out_time, &l.fields.timezone)?;
    let nights = u32::try_from(b.price.nightly.len())?;
    let hold_expires_at = night::instant(hold_until);
    let (sweep_pk, sweep_sk) = booking::sweep_keys(b.booking_id, &hold_expires_at);
    Ok(BookingItem {
        pk: key.pk,
        sk: key.sk,
        item_type: booking::ITEM_TYPE.to_owned(),
        gsi1pk: booking::guest_partition(&b.guest.user_id),
        gsi1sk: booking::index_sort_key(b.booking_id),
        gsi2pk: booking::host_partition(&l.host_id),
        gsi2sk: booking::index_sort_key(b.booking_id),
        booking_id: b.booking_id.to_owned(),
        listing_id: l.listing_id.clone(),
        listing_version: l.version,
        listing_title: l.fields.title.clone(),
        guest: b.guest,
        host: Party { user_id: l.host_id.clone(), name: l.host_name.clone() },
        check_in: b.stay.check_in,
        check_out: b.stay.check_out,
        nights,
        guests: b.stay.guests,
        price: b.price,
        cancellation_policy: l.fields.cancellation_policy,
        timezone: l.fields.timezone.clone(),
        check_in_time: l.fields.check_in_time.clone(),
        check_out_time: l.fields.check_out_time.clone(),
        address: l.fields.address.clone(),
        status,
        booking_mode: l.fields.booking_mode,
        decline: None,
        hold_expires_at: Some(hold_expires_at),
        check_out_at: night::instant(check_out_at),
        payment: Payment { status: PaymentStatus::Unpaid, payment_intent_id: None, failure: None, amount_paid: None },
        cancellation: None,
        refund: None,
        // Found by the sweep when its hold lapses.
        gsi3pk: Some(sweep_pk),
        gsi3sk: Some(sweep_sk),
        created_at: night::instant(b.now),
        updated_at: night::instant(b.now),
    })
}

/// Fixtures shared by this crate's unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use shared::listing::{self, Address, CancellationPolicy, ListingFields, ListingItem, ListingStatus};
    use shared::money::{Currency, Money};
    use std::collections::BTreeMap;

    /// A two-night booking of `listing()` made at 2026-02-01T09:00Z with a 15-minute hold.
    pub fn booking_item_fixture() -> shared::booking::BookingItem {
        let l = listing();
        let stay = super::Stay {
            listing_id: l.listing_id.clone(),
            check_in: "2026-03-01".parse().unwrap(),
            check_out: "2026-03-03".parse().unwrap(),
            guests: 2,
        };
        let price = super::price(l.fields.nightly_price, l.fields.cleaning_fee, &stay.nights()).unwrap();
        super::booking_item(
            &l,
            super::NewBooking {
                booking_id: "bkg_1",
                stay: &stay,
                guest: shared::booking::Party { user_id: "guest-1".into(), name: "Gil".into() },
                price,
                now: "2026-02-01T09:00:00Z".parse().unwrap(),
                hold: jiff::SignedDuration::from_mins(15),
            },
        )
        .unwrap()
    }

    /// An active listing in Lisbon: 123.45 EUR a night, 25.00 cleaning, 2 to 10 nights, 4 guests.
    pub fn listing() -> ListingItem {
        let k = listing::key("lst_1");
        ListingItem {
            pk: k.pk,
            sk: k.sk,
            item_type: "listing".into(),
            gsi1pk: listing::host_partition("host-1"),
            gsi1sk: listing::host_sort_key("lst_1"),
            listing_id: "lst_1".into(),
            host_id: "host-1".into(),
            host_name: "Helena".into(),
            status: ListingStatus::Active,
            version: 3,
            revision: 5,
            fields: ListingFields {
                title: "Loft".into(),
                description: String::new(),
                property_type: "apartment".into(),
                address: Address {
                    line1: "Rua A 1".into(),
                    city: "Lisboa".into(),
                    region: None,
                    country: "PT".into(),
                    postal_code: None,
                },
                timezone: "Europe/Lisbon".into(),
                max_guests: 4,
                bedrooms: 1,
                beds: 1,
                bathrooms: 1,
                amenities: vec![],
                nightly_price: Money::new(12_345, Currency::EUR),
                cleaning_fee: Some(Money::new(2_500, Currency::EUR)),
                min_nights: 2,
                max_nights: 10,
                cancellation_policy: CancellationPolicy::Strict,
                check_in_time: "15:00".into(),
                check_out_time: "11:00".into(),
                booking_mode: Default::default(),
            },
            photos: BTreeMap::new(),
            pending_photos: BTreeMap::new(),
            rating_count: 0,
            rating_total: 0,
            created_at: "2026-01-01T00:00:00Z".into(),
            updated_at: "2026-01-01T00:00:00Z".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::listing;
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use shared::listing::{CancellationPolicy, ListingStatus};
    use shared::money::Currency;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn body(check_in: &str, check_out: &str, guests: u32) -> StayBody {
        StayBody {
            listing_id: "lst_01jh3k0000000000000000000a".into(),
            check_in: check_in.into(),
            check_out: check_out.into(),
            guests,
        }
    }

    fn stay(check_in: &str, check_out: &str, guests: u32) -> Stay {
        Stay { listing_id: "lst_1".into(), check_in: d(check_in), check_out: d(check_out), guests }
    }

    #[test]
    fn stays_parse_or_name_every_bad_field() {
        let s = Stay::parse(&body("2026-03-01", "2026-03-04", 2)).unwrap();
        assert_eq!((s.check_in, s.check_out, s.guests), (d("2026-03-01"), d("2026-03-04"), 2));
        let mut bad = body("2026-02-30", "04/03/2026", 2);
        bad.listing_id = "LISTING#x".into();
        let e = Stay::parse(&bad).unwrap_err();
        assert_eq!(e.code(), "validation_failed");
        let fields: Vec<_> = e.problem().unwrap().errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["listing_id", "check_in", "check_out"]);
    }

    #[test]
    fn stays_are_half_open() {
        let s = stay("2026-03-01", "2026-03-04", 1);
        assert_eq!(s.nights(), vec![d("2026-03-01"), d("2026-03-02"), d("2026-03-03")]);
        assert!(stay("2026-03-04", "2026-03-04", 1).nights().is_empty());
        assert!(stay("2026-03-05", "2026-03-04", 1).nights().is_empty());
        // Across a month, a year and a leap day.
        assert_eq!(stay("2028-02-28", "2028-03-01", 1).nights(), vec![d("2028-02-28"), d("2028-02-29")]);
        assert_eq!(stay("2026-12-31", "2027-01-01", 1).nights(), vec![d("2026-12-31")]);
        // Adjacent stays share no night; overlapping ones do.
        let a = stay("2026-03-01", "2026-03-03", 1).nights();
        let b = stay("2026-03-03", "2026-03-05", 1).nights();
        assert!(a.iter().all(|n| !b.contains(n)));
        let c = stay("2026-03-02", "2026-03-06", 1).nights();
        assert!(a.iter().any(|n| c.contains(n)));
        // A silly range is capped just past the longest allowed stay.
        assert_eq!(stay("2026-01-01", "2036-01-01", 1).nights().len(), MAX_STAY_NIGHTS as usize + 1);
    }

    #[test]
    fn today_depends_on_the_listing_time_zone() {
        // 12:00 UTC on 10 March 2026: already the 11th in Auckland (UTC+13), still the 10th in
        // Los Angeles (UTC-7, DST started on the 8th).
        let now = t("2026-03-10T12:00:00Z");
        let auckland = TimeZone::get("Pacific/Auckland").unwrap();
        let la = TimeZone::get("America/Los_Angeles").unwrap();
        assert_eq!(today_in(&auckland, now), d("2026-03-11"));
        assert_eq!(today_in(&la, now), d("2026-03-10"));
        // So a check-in on the 10th is fine in Los Angeles and in the past in Auckland.
        let mut l = listing();
        l.fields.min_nights = 1;
        let s = stay("2026-03-10", "2026-03-12", 2);
        l.fields.timezone = "America/Los_Angeles".into();
        assert!(check_stay(&l, &s, None, today_in(&listing_tz(&l).unwrap(), now)).is_ok());
        l.fields.timezone = "Pacific/Auckland".into();
        let today = today_in(&listing_tz(&l).unwrap(), now);
        assert_eq!(check_stay(&l, &s, None, today), Err(Rule::CheckInInPast { today: d("2026-03-11") }));
        // Around midnight UTC both can still agree.
        let early = t("2026-03-10T10:30:00Z");
        assert_eq!(today_in(&auckland, early), today_in(&la, early));
        l.fields.timezone = "Mars/Olympus".into();
        assert!(listing_tz(&l).is_err());
    }

    #[test]
    fn every_rule_is_a_422_naming_its_field() {
        let l = listing();
        let today = d("2026-03-01");
        let check = |s: Stay, guest: Option<&str>| check_stay(&l, &s, guest, today);
        assert_eq!(check(stay("2026-03-01", "2026-03-03", 4), Some("guest-1")).unwrap().len(), 2);
        let cases = [
            (check(stay("2026-03-05", "2026-03-05", 2), None), "check_out_not_after_check_in", "check_out"),
            (check(stay("2026-03-06", "2026-03-05", 2), None), "check_out_not_after_check_in", "check_out"),
            (check(stay("2026-02-28", "2026-03-03", 2), None), "check_in_in_past", "check_in"),
            (check(stay("2026-03-05", "2026-03-06", 2), None), "stay_too_short", "check_out"),
            (check(stay("2026-03-05", "2026-03-16", 2), None), "stay_too_long", "check_out"),
            (check(stay("2026-03-05", "2026-03-08", 0), None), "too_few_guests", "guests"),
            (check(stay("2026-03-05", "2026-03-08", 5), None), "too_many_guests", "guests"),
            (check(stay("2026-03-05", "2026-03-08", 2), Some("host-1")), "own_listing", "listing_id"),
        ];
        for (result, code, field) in cases {
            let rule = result.unwrap_err();
            assert_eq!((rule.code(), rule.field()), (code, field));
            let e = ApiError::from(rule);
            assert_eq!(e.status().as_u16(), 422);
            assert_eq!(e.code(), code);
            assert_eq!(e.problem().unwrap().errors[0].field, field);
        }
        // Exactly min and max nights are fine.
        assert!(check(stay("2026-03-05", "2026-03-07", 2), None).is_ok());
        assert!(check(stay("2026-03-05", "2026-03-15", 2), None).is_ok());
        let mut archived = listing();
        archived.status = ListingStatus::Archived;
        let rule = check_stay(&archived, &stay("2026-03-05", "2026-03-08", 2), None, today).unwrap_err();
        assert_eq!((rule.code(), rule.field()), ("listing_unavailable", "listing_id"));
        // The transaction bound wins over a listing that claims more.
        let mut long = listing();
        long.fields.max_nights = 365;
        long.fields.min_nights = 1;
        assert_eq!(
            check_stay(&long, &stay("2026-03-01", "2026-06-30", 1), None, today),
            Err(Rule::StayTooLong { max: MAX_STAY_NIGHTS })
        );
        assert!(check_stay(&long, &stay("2026-03-01", "2026-05-30", 1), None, today).is_ok());
    }

    #[test]
    fn check_in_at_most_eighteen_months_ahead_in_the_listings_zone() {
        assert_eq!(latest_check_in(d("2026-12-06")), d("2028-06-06"));
        // Clamped to the month's end, leap years included.
        assert_eq!(latest_check_in(d("2026-08-31")), d("2028-02-29"));
        assert_eq!(latest_check_in(d("2027-08-31")), d("2029-02-28"));
        // At the end of the calendar there is no later date to refuse.
        assert_eq!(latest_check_in(d("9999-01-01")), Date::MAX);
        let mut l = listing();
        l.fields.min_nights = 1;
        let today = d("2026-12-06");
        assert!(check_stay(&l, &stay("2028-06-06", "2028-06-08", 2), None, today).is_ok(), "the last day is open");
        let rule = check_stay(&l, &stay("2028-06-07", "2028-06-09", 2), None, today).unwrap_err();
        assert_eq!(rule, Rule::CheckInTooFarAhead { last: d("2028-06-06") });
        assert_eq!((rule.code(), rule.field()), ("check_in_too_far_ahead", "check_in"));
        let e = ApiError::from(rule);
        assert_eq!((e.status().as_u16(), e.code()), (422, "check_in_too_far_ahead"));
        assert!(e.problem().unwrap().errors[0].message.contains("2028-06-06"), "{e}");
        // In the listing's zone: at 11:00 UTC on 5 Dec it is already the 6th in Auckland.
        let now = t("2026-12-05T11:00:00Z");
        l.fields.timezone = "Pacific/Auckland".into();
        let nz_today = today_in(&listing_tz(&l).unwrap(), now);
        assert!(check_stay(&l, &stay("2028-06-06", "2028-06-08", 2), None, nz_today).is_ok());
        l.fields.timezone = "America/Los_Angeles".into();
        let la_today = today_in(&listing_tz(&l).unwrap(), now);
        assert_eq!(
            check_stay(&l, &stay("2028-06-06", "2028-06-08", 2), None, la_today),
            Err(Rule::CheckInTooFarAhead { last: d("2028-06-05") })
        );
    }

    /// The calendar's edges never reach the date arithmetic that would fail (the old 500 on a
    /// check-in of 9999-12-30: the check-out instant does not exist): every one is a rule, or a
    /// right answer.
    #[test]
    fn dates_at_the_calendars_edges_are_rules_or_right_answers() {
        let mut l = listing();
        l.fields.min_nights = 1;
        let today = d("2026-12-06");
        let check = |l: &ListingItem, a: Date, b: Date| {
            check_stay(l, &Stay { listing_id: "lst_1".into(), check_in: a, check_out: b, guests: 2 }, None, today)
        };
        assert_eq!(check(&l, d("9999-12-30"), Date::MAX), Err(Rule::CheckInTooFarAhead { last: d("2028-06-06") }));
        assert_eq!(check(&l, Date::MAX, Date::MAX), Err(Rule::CheckOutNotAfterCheckIn));
        assert_eq!(check(&l, d("0000-01-01"), d("0000-01-03")), Err(Rule::CheckInInPast { today }));
        assert_eq!(check(&l, Date::MIN, Date::new(-9999, 1, 3).unwrap()), Err(Rule::CheckInInPast { today }));
        // A stay from today to the end of the calendar: too long, never a loop over 8000 years.
        assert_eq!(check(&l, today, Date::MAX), Err(Rule::StayTooLong { max: 10 }));
        // Leap day and DST nights are ordinary nights with the right count and lines.
        let nights = check(&l, d("2028-02-28"), d("2028-03-01")).unwrap();
        assert_eq!(nights, vec![d("2028-02-28"), d("2028-02-29")]);
        let p = price(l.fields.nightly_price, l.fields.cleaning_fee, &nights).unwrap();
        assert_eq!(p.nightly[1].date, d("2028-02-29"));
        assert_eq!(check(&l, d("2027-03-27"), d("2027-03-29")).unwrap().len(), 2, "spring forward in Lisbon");
        assert_eq!(check(&l, d("2027-10-30"), d("2027-11-01")).unwrap().len(), 2, "fall back in Lisbon");
        // Whatever passes the rules makes a booking item (the check-out instant exists).
        let now = t("2026-12-06T10:00:00Z");
        for (a, b) in [("2028-06-05", "2028-06-06"), ("2028-02-28", "2028-03-01"), ("2027-10-30", "2027-10-31")] {
            let s = stay(a, b, 2);
            let nights = check_stay(&l, &s, None, today).unwrap();
            let p = price(l.fields.nightly_price, l.fields.cleaning_fee, &nights).unwrap();
            let guest = Party { user_id: "guest-1".into(), name: "Gil".into() };
            let new =
                NewBooking { booking_id: "bkg_1", stay: &s, guest, price: p, now, hold: SignedDuration::from_mins(15) };
            assert!(booking_item(&l, new).is_ok(), "{a}..{b}");
        }
        // Check-out at 01:30 on the night Lisbon falls back (01:30 happens twice): the first.
        l.fields.check_out_time = "01:30".into();
        let s = stay("2027-10-30", "2027-10-31", 2);
        let p = price(l.fields.nightly_price, l.fields.cleaning_fee, &s.nights()).unwrap();
        let guest = Party { user_id: "guest-1".into(), name: "Gil".into() };
        let b = booking_item(
            &l,
            NewBooking { booking_id: "bkg_1", stay: &s, guest, price: p, now, hold: SignedDuration::from_mins(15) },
        )
        .unwrap();
        assert_eq!(b.check_out_at, "2027-10-31T00:30:00Z");
    }

    fn slot(n: u32, booking: &str, until: &str) -> HoldSlot {
        HoldSlot::taken("guest-1", n, booking, t(until), t("2026-01-01T09:00:00Z"))
    }

    fn claim(n: u32, seen: Option<&str>) -> SlotClaim {
        SlotClaim { slot: n, seen_booking: seen.map(str::to_owned) }
    }

    #[test]
    fn open_holds_are_capped_by_three_slots() {
        let now = t("2026-01-01T10:00:00Z");
        // No slot item: all three free.
        assert_eq!(judge_slots(&[], None, now), Slots::Free(vec![claim(1, None), claim(2, None), claim(3, None)]));
        // Live holds occupy their slots; a lapsed one is free (named, for the condition).
        let live = |n, b: &str| slot(n, b, "2026-01-01T10:10:00Z");
        let slots = [live(1, "bkg_a"), slot(2, "bkg_b", "2026-01-01T10:00:00Z")];
        assert_eq!(judge_slots(&slots, None, now), Slots::Free(vec![claim(2, Some("bkg_b")), claim(3, None)]));
        // Three live holds: whether they were paid or cancelled must be read.
        let full = [live(3, "bkg_c"), live(1, "bkg_a"), slot(2, "bkg_b", "2026-01-01T10:05:00Z")];
        assert_eq!(
            judge_slots(&full, None, now),
            Slots::ReadBookings(vec!["bkg_a".into(), "bkg_b".into(), "bkg_c".into()])
        );
        // All three still waiting for payment: full, naming the first hold to lapse.
        let waiting: HashMap<String, BookingStatus> =
            ["bkg_a", "bkg_b", "bkg_c"].map(|b| (b.to_owned(), BookingStatus::PendingPayment)).into();
        assert_eq!(judge_slots(&full, Some(&waiting), now), Slots::Full { until: Some(t("2026-01-01T10:05:00Z")) });
        let e = hold_limit_reached(Some(t("2026-01-01T10:05:00Z")));
        assert_eq!((e.status().as_u16(), e.code()), (409, "hold_limit_reached"));
        assert!(e.to_string().contains("10:05:00Z"), "{e}");
        // A booking that left pending_payment (paid, cancelled, expired) or is gone frees its slot.
        for (status, freed) in [
            (Some(BookingStatus::Confirmed), true),
            (Some(BookingStatus::Cancelled), true),
            (Some(BookingStatus::Expired), true),
            (Some(BookingStatus::Completed), true),
            (None, true),
            (Some(BookingStatus::PendingPayment), false),
        ] {
            let mut statuses = waiting.clone();
            match status {
                Some(s) => statuses.insert("bkg_b".into(), s),
                None => statuses.remove("bkg_b"),
            };
            let judged = judge_slots(&full, Some(&statuses), now);
            if freed {
                assert_eq!(judged, Slots::Free(vec![claim(2, Some("bkg_b"))]), "{status:?}");
            } else {
                assert!(matches!(judged, Slots::Full { .. }), "{status:?}");
            }
        }
        // An unreadable hold counts as live; a slot number out of range is ignored.
        let mut broken = live(1, "bkg_x");
        broken.hold_expires_at = "soon".into();
        let odd = live(7, "bkg_y");
        assert_eq!(judge_slots(&[broken, odd], None, now), Slots::Free(vec![claim(2, None), claim(3, None)]));
    }

    #[test]
    fn slots_are_picked_among_the_free_ones_and_spread() {
        let free = [claim(1, None), claim(2, Some("bkg_b")), claim(3, None)];
        assert_eq!(pick_slot(&[], "bkg_1", 0), None);
        assert_eq!(pick_slot(&free[1..2], "bkg_1", 0), Some(&free[1]));
        let mut seen = std::collections::HashSet::new();
        for i in 0..60 {
            let id = format!("bkg_01jh3k00000000000000000{i:03}");
            let picked = pick_slot(&free, &id, 0).unwrap();
            assert!(free.contains(picked));
            assert_eq!(pick_slot(&free, &id, 0), Some(picked), "stable for one id and attempt");
            seen.insert(picked.slot);
        }
        assert_eq!(seen.len(), 3, "every free slot gets picked by some id");
    }

    #[test]
    fn price_example() {
        // 3 nights at 123.45 EUR: subtotal 370.35; 12 % = 44.442 -> 44.44; cleaning 25.00.
        let nights = stay("2026-03-01", "2026-03-04", 1).nights();
        let p = price(Money::new(12_345, Currency::EUR), Some(Money::new(2_500, Currency::EUR)), &nights).unwrap();
        assert_eq!(p.nightly.iter().map(|n| n.amount).collect::<Vec<_>>(), [12_345; 3]);
        assert_eq!(p.nightly[2].date, d("2026-03-03"));
        assert_eq!((p.subtotal, p.service_fee, p.cleaning_fee, p.total), (37_035, 4_444, 2_500, 43_979));
        assert_eq!(p.currency, Currency::EUR);
        // No cleaning fee: zero, still listed.
        let p = price(Money::new(10_000, Currency::USD), None, &nights).unwrap();
        assert_eq!((p.cleaning_fee, p.total), (0, 33_600));
        // Exponents: JPY has no minor unit (12 % of 3 x 4_321 = 1555.56 -> 1556), KWD has 3.
        let p = price(Money::new(4_321, Currency::JPY), None, &nights).unwrap();
        assert_eq!((p.subtotal, p.service_fee, p.total), (12_963, 1_556, 14_519));
        let kwd = shared::money::Currency::parse("KWD").unwrap();
        let p = price(Money::new(10_005, kwd), None, &nights[..1]).unwrap();
        assert_eq!((p.service_fee, p.total), (1_201, 11_206)); // 1200.6 -> 1201 fils
        // Never a mix of currencies, never negative input, never overflow.
        assert!(price(Money::new(1, Currency::USD), Some(Money::new(1, Currency::EUR)), &nights).is_err());
        assert_eq!(price(Money::new(-1, Currency::USD), None, &nights), Err(MoneyError::Negative));
        assert_eq!(price(Money::new(i64::MAX / 2, Currency::USD), None, &nights), Err(MoneyError::Overflow));
    }

    /// Property: for any nightly price, cleaning fee and stay length, the parts are never
    /// negative, the lines add up to the subtotal, the total is the sum of its parts, and the fee
    /// is 12 % of the subtotal rounded half-up (|12 x subtotal - 100 x fee| within half a unit,
    /// rounding up at exactly half).
    #[test]
    fn property_total_is_the_sum_of_its_parts_and_never_negative() {
        let mut rng = StdRng::seed_from_u64(0x5eed_b00c);
        let all = stay("2026-01-01", "2026-04-01", 1).nights();
        let currencies = [Currency::USD, Currency::JPY, Currency::parse("KWD").unwrap(), Currency::EUR];
        for i in 0..20_000 {
            let currency = currencies[i % currencies.len()];
            let nightly = if i < 2_000 { i as i64 } else { rng.random_range(0..=50_000_000) };
            let cleaning = rng.random_bool(0.7).then(|| Money::new(rng.random_range(0..=5_000_000), currency));
            let n = rng.random_range(1..=MAX_STAY_NIGHTS as usize);
            let p = price(Money::new(nightly, currency), cleaning, &all[..n]).unwrap();
            assert_eq!(p.nightly.len(), n);
            assert!(p.nightly.iter().all(|l| l.amount == nightly && l.amount >= 0));
            assert_eq!(p.nightly.iter().map(|l| l.amount).sum::<i64>(), p.subtotal);
            assert_eq!(p.subtotal, nightly * n as i64);
            assert_eq!(p.cleaning_fee, cleaning.map_or(0, |c| c.amount));
            assert_eq!(p.total, p.subtotal + p.cleaning_fee + p.service_fee);
            assert!(p.subtotal >= 0 && p.cleaning_fee >= 0 && p.service_fee >= 0 && p.total >= 0);
            assert!(p.total >= p.subtotal);
            // Half-up: 100 x fee - 12 x subtotal lies in (-50, 50].
            let diff = 100 * i128::from(p.service_fee) - 12 * i128::from(p.subtotal);
            assert!(-50 < diff && diff <= 50, "fee {} for subtotal {}", p.service_fee, p.subtotal);
            assert_eq!(p.currency, currency);
        }
    }

    /// 12 % of whole minor units is a multiple of 0.04, so the fee itself never lands on exactly
    /// .5; the rounding it uses (`shared::money::percent_half_up`) is checked at .5 here: up at
    /// half, down below it, for every remainder.
    #[test]
    fn property_rounding_is_half_up_at_half() {
        use shared::money::percent_half_up;
        for amount in 0..20_000i64 {
            // 50 % of an odd amount ends in exactly .5: rounds up.
            let half = percent_half_up(amount, 50).unwrap();
            assert_eq!(half, (amount + 1) / 2, "{amount}");
            // Every percentage 0..=100 agrees with floor(x + 1/2) computed exactly.
            let pct = (amount % 101) as u32;
            let exact = i128::from(amount) * i128::from(pct);
            let expected = ((exact * 2 + 100) / 200) as i64;
            assert_eq!(percent_half_up(amount, pct).unwrap(), expected, "{pct} % of {amount}");
        }
        assert_eq!(percent_half_up(125, 12), Some(15)); // 15.00
        assert_eq!(percent_half_up(4, 12), Some(0)); // 0.48 -> 0
        assert_eq!(percent_half_up(5, 12), Some(1)); // 0.60 -> 1
        assert_eq!(percent_half_up(1, 50), Some(1)); // 0.5 -> 1
    }

    #[test]
    fn booking_items_snapshot_the_listing() {
        let l = listing();
        let s = stay("2026-03-01", "2026-03-04", 2);
        let p = price(l.fields.nightly_price, l.fields.cleaning_fee, &s.nights()).unwrap();
        let now = t("2026-02-01T09:30:12.345Z");
        let guest = Party { user_id: "guest-1".into(), name: "Gil".into() };
        let b = booking_item(
            &l,
            NewBooking {
                booking_id: "bkg_1",
                stay: &s,
                guest,
                price: p.clone(),
                now,
                hold: SignedDuration::from_mins(15),
            },
        )
        .unwrap();
        assert_eq!((b.pk.as_str(), b.sk.as_str()), ("BOOKING#bkg_1", "BOOKING"));
        assert_eq!((b.gsi1pk.as_str(), b.gsi1sk.as_str()), ("GUEST#guest-1", "BOOKING#bkg_1"));
        assert_eq!((b.gsi2pk.as_str(), b.gsi2sk.as_str()), ("HOST#host-1", "BOOKING#bkg_1"));
        assert_eq!(b.status, BookingStatus::PendingPayment);
        assert_eq!(b.hold_expires_at.as_deref(), Some("2026-02-01T09:45:12Z"));
        // Check-out at 11:00 Lisbon (UTC+0 in March before the 29th).
        assert_eq!(b.check_out_at, "2026-03-04T11:00:00Z");
        assert_eq!((b.listing_version, b.nights, b.guests), (3, 3, 2));
        assert_eq!(b.host, Party { user_id: "host-1".into(), name: "Helena".into() });
        assert_eq!(b.price, p);
        assert_eq!(b.cancellation_policy, CancellationPolicy::Strict);
        assert_eq!(b.address.line1, "Rua A 1");
        assert_eq!(b.effective_status(now), BookingStatus::PendingPayment);
        assert_eq!(b.effective_status(t("2026-02-01T09:45:12Z")), BookingStatus::Expired);
        // The item round-trips through DynamoDB's representation.
        let item = shared::table::to_item(&b).unwrap();
        assert_eq!(item["check_in"], aws_sdk_dynamodb::types::AttributeValue::S("2026-03-01".into()));
        let back: BookingItem = shared::table::from_item(item).unwrap();
        assert_eq!(back, b);
    }
}
