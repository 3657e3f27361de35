//! The bookings context's rules as plain functions of values: parsing a stay, the stay rules
//! (each a 422 with a stable code naming the rule and the field), "today" in the listing's time
//! zone, the price of a stay, and the booking item a successful booking writes.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use shared::booking::{self, BookingItem, BookingStatus, NightlyPrice, Party, Payment, PaymentStatus, Price};
use shared::listing::{self, ListingItem, MAX_STAY_NIGHTS};
use shared::money::{Money, MoneyError};
use shared::night;
use shared::{ApiError, FieldError};

/// Body of `POST /v1/quotes` and `POST /v1/bookings`. Serialised again (fields in this order)
/// for the idempotency hash, so whitespace and key order never make "another body".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StayBody {
    pub listing_id: String,
    pub check_in: String,
    pub check_out: String,
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
        nights(self.check_in, self.check_out, MAX_STAY_NIGHTS as usize + 1)
    }
}

/// `[from, to)` day by day, at most `cap` dates.
pub fn nights(from: Date, to: Date, cap: usize) -> Vec<Date> {
    let mut out = Vec::new();
    let mut d = from;
    while d < to && out.len() < cap {
        out.push(d);
        match d.tomorrow() {
            Ok(next) => d = next,
            Err(_) => break,
        }
    }
    out
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
            Self::CheckInInPast { .. } => "check_in",
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
    TimeZone::get(&l.timezone)
        .map_err(|e| anyhow::anyhow!("listing {} has time zone {:?}: {e}", l.listing_id, l.timezone))
}

/// The calendar date at `now` in `tz`: "today" for the listing.
pub fn today_in(tz: &TimeZone, now: Timestamp) -> Date {
    now.to_zoned(tz.clone()).date()
}

/// Every stay rule, in a fixed order (the first broken one is answered): the listing is active,
/// not the guest's own (`guest_id` is `None` for an anonymous quote), `check_out > check_in`,
/// `check_in >= today` (in the listing's time zone), min/max nights, guests `1..=max_guests`.
/// Returns the nights of the stay.
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
    let nights = stay.nights();
    let count = u32::try_from(nights.len()).unwrap_or(u32::MAX);
    if count < l.min_nights {
        return Err(Rule::StayTooShort { min: l.min_nights });
    }
    // Whatever the listing says, never more than one transaction can hold.
    let max = l.max_nights.min(MAX_STAY_NIGHTS);
    if count > max {
        return Err(Rule::StayTooLong { max });
    }
    if stay.guests < 1 {
        return Err(Rule::TooFewGuests);
    }
    if stay.guests > l.max_guests {
        return Err(Rule::TooManyGuests { max: l.max_guests });
    }
    Ok(nights)
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

/// The booking item for `b` on `l`: `pending_payment`, holding its nights until `now + hold`,
/// with the snapshot of what it was sold under.
pub fn booking_item(l: &ListingItem, b: NewBooking<'_>) -> anyhow::Result<BookingItem> {
    let key = booking::key(b.booking_id);
    let hold_until = b.now.checked_add(b.hold)?;
    let check_out_at = booking::check_out_instant(b.stay.check_out, &l.check_out_time, &l.timezone)?;
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
        listing_title: l.title.clone(),
        guest: b.guest,
        host: Party { user_id: l.host_id.clone(), name: l.host_name.clone() },
        check_in: b.stay.check_in,
        check_out: b.stay.check_out,
        nights,
        guests: b.stay.guests,
        price: b.price,
        cancellation_policy: l.cancellation_policy,
        timezone: l.timezone.clone(),
        check_in_time: l.check_in_time.clone(),
        check_out_time: l.check_out_time.clone(),
        address: l.address.clone(),
        status: BookingStatus::PendingPayment,
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
    use shared::listing::{self, Address, CancellationPolicy, ListingItem, ListingStatus};
    use shared::money::{Currency, Money};
    use std::collections::BTreeMap;

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
        assert_eq!(nights(d("2028-02-28"), d("2028-03-01"), 100), vec![d("2028-02-28"), d("2028-02-29")]);
        assert_eq!(nights(d("2026-12-31"), d("2027-01-01"), 100), vec![d("2026-12-31")]);
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
        l.min_nights = 1;
        let s = stay("2026-03-10", "2026-03-12", 2);
        l.timezone = "America/Los_Angeles".into();
        assert!(check_stay(&l, &s, None, today_in(&listing_tz(&l).unwrap(), now)).is_ok());
        l.timezone = "Pacific/Auckland".into();
        let today = today_in(&listing_tz(&l).unwrap(), now);
        assert_eq!(check_stay(&l, &s, None, today), Err(Rule::CheckInInPast { today: d("2026-03-11") }));
        // Around midnight UTC both can still agree.
        let early = t("2026-03-10T10:30:00Z");
        assert_eq!(today_in(&auckland, early), today_in(&la, early));
        l.timezone = "Mars/Olympus".into();
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
        long.max_nights = 365;
        long.min_nights = 1;
        assert_eq!(
            check_stay(&long, &stay("2026-03-01", "2026-06-30", 1), None, today),
            Err(Rule::StayTooLong { max: MAX_STAY_NIGHTS })
        );
        assert!(check_stay(&long, &stay("2026-03-01", "2026-05-30", 1), None, today).is_ok());
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
        let p = price(l.nightly_price, l.cleaning_fee, &s.nights()).unwrap();
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
