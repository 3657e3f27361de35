//! The NIGHT item: one per listing and night that is not free (`LISTING#<id>` / `NIGHT#<date>`).
//!
//! Written by three contexts, so its schema, keys and the conditions that decide who may take a
//! night live here once:
//! - listings: host blocks (`kind = blocked`) and unblocks (delete);
//! - bookings: holds (`kind = held`, `booking_id`, `hold_expires_at`), cancel and expiry (delete);
//! - payment-events: confirmation (`held` -> `booked`, still held by the same booking);
//! - listings' calendar sync: nights an external calendar feed covers (`kind = imported`,
//!   `import_id`), written only on free nights and removed only while still that import's.
//!
//! A free night has no item. Every write that adds or removes a NIGHT item also adds or removes
//! its date in the listing's search item (`shared::listing::UNAVAILABLE_ATTR`) in the same
//! transaction, so search never reads nights. `hold_expires_at` is trusted over `expires_at`
//! (TTL, clean-up only): an expired hold may be taken over by a booking, never assumed gone.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::keys::{Key, PK, SK};
use crate::table::{Expr, Query};

pub const ITEM_TYPE: &str = "night";
pub const SK_PREFIX: &str = "NIGHT#";
pub const KIND_ATTR: &str = "kind";
pub const BOOKING_ID_ATTR: &str = "booking_id";
pub const HOLD_EXPIRES_AT_ATTR: &str = "hold_expires_at";
pub const IMPORT_ID_ATTR: &str = "import_id";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NightKind {
    /// The host closed the night.
    Blocked,
    /// A pending booking holds it until `hold_expires_at`.
    Held,
    /// A paid booking has it.
    Booked,
    /// An external calendar the host imports (`import_id`) covers it.
    Imported,
}

impl NightKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocked => "blocked",
            Self::Held => "held",
            Self::Booked => "booked",
            Self::Imported => "imported",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Night {
    #[serde(flatten)]
    pub key: Key,
    #[serde(rename = "type")]
    pub item_type: String,
    pub listing_id: String,
    /// `YYYY-MM-DD`, a night in the listing's time zone.
    pub date: String,
    pub kind: NightKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<String>,
    /// RFC 3339 UTC; `held` only. Past it, the hold may be taken over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold_expires_at: Option<String>,
    /// `imported` only: the calendar import (`cim_...`) whose feed covers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub import_id: Option<String>,
    /// TTL (epoch seconds), clean-up only: never read as "the night is free".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    pub updated_at: String,
}

impl Night {
    /// A host block on `date`.
    pub fn blocked(listing_id: &str, date: Date, now: Timestamp) -> Self {
        Self {
            key: key(listing_id, date),
            item_type: ITEM_TYPE.to_owned(),
            listing_id: listing_id.to_owned(),
            date: date.to_string(),
            kind: NightKind::Blocked,
            booking_id: None,
            hold_expires_at: None,
            import_id: None,
            expires_at: None,
            updated_at: now.to_string(),
        }
    }

    /// A night covered by the feed of calendar import `import_id`.
    pub fn imported(listing_id: &str, date: Date, import_id: &str, now: Timestamp) -> Self {
        Self {
            kind: NightKind::Imported,
            import_id: Some(import_id.to_owned()),
            ..Self::blocked(listing_id, date, now)
        }
    }

    /// A hold for `booking_id` until `until` (TTL a day later, for clean-up only).
    pub fn held(listing_id: &str, date: Date, booking_id: &str, until: Timestamp, now: Timestamp) -> Self {
        Self {
            key: key(listing_id, date),
            item_type: ITEM_TYPE.to_owned(),
            listing_id: listing_id.to_owned(),
            date: date.to_string(),
            kind: NightKind::Held,
            booking_id: Some(booking_id.to_owned()),
            hold_expires_at: Some(instant(until)),
            import_id: None,
            expires_at: Some(until.as_second() + 24 * 3600),
            updated_at: now.to_string(),
        }
    }

    /// The night's date, if the stored string is one.
    pub fn civil_date(&self) -> Option<Date> {
        parse_date(&self.date)
    }

    /// Whether the night is taken at `now`: blocked, booked, or held with an unexpired hold.
    pub fn is_taken_at(&self, now: Timestamp) -> bool {
        match self.kind {
            NightKind::Blocked | NightKind::Booked | NightKind::Imported => true,
            NightKind::Held => self
                .hold_expires_at
                .as_deref()
                .and_then(|t| t.parse::<Timestamp>().ok())
                // An unreadable expiry is treated as still held: never free a night by accident.
                .is_none_or(|until| until > now),
        }
    }
}

/// `LISTING#<id>` / `NIGHT#<YYYY-MM-DD>`.
pub fn key(listing_id: &str, date: Date) -> Key {
    Key::new(crate::listing::pk(listing_id), sort_key(date))
}

/// `NIGHT#<YYYY-MM-DD>`: sorts by date, so a date range is one key-range query.
pub fn sort_key(date: Date) -> String {
    format!("{SK_PREFIX}{date}")
}

/// The date of a `NIGHT#...` sort key.
pub fn date_of_sort_key(sk: &str) -> Option<Date> {
    parse_date(sk.strip_prefix(SK_PREFIX)?)
}

/// Strictly `YYYY-MM-DD` (no other ISO 8601 spelling), a real calendar date.
pub fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    if !shape {
        return None;
    }
    s.parse().ok()
}

/// The nights of the half-open stay `[from, to)`, day by day, at most `cap` of them: empty unless
/// `to` is later. Never fails at the calendar's edges: there is no day after 9999-12-31, so a
/// range that reaches it simply ends there (a stay's nights are civil dates in the listing's
/// time zone: a DST change makes a night 23 or 25 hours long, never two nights or none).
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

/// The last night of a stay that checks out on `check_out` (the day before), if there is one.
pub fn last_night(check_out: Date) -> Option<Date> {
    check_out.yesterday().ok()
}

/// The NIGHT items of `listing_id` with `from <= date <= last` (one strongly consistent Query:
/// 366 nights of about 150 bytes stay far below the 1 MB page limit).
pub fn range_query(listing_id: &str, from: Date, last: Date) -> Query {
    Query::between(PK, crate::listing::pk(listing_id), SK, sort_key(from), sort_key(last)).consistent()
}

/// Condition for a host block (`Put` of a blocked night) or unblock (`Delete`): the night is
/// free or already blocked. A held night (even with an expired hold: bookings' sweep releases
/// it and updates search in the same transaction) or a booked night fails it.
pub fn condition_free_or_blocked() -> Expr {
    Expr::new("attribute_not_exists(#n_pk) OR #n_kind = :n_blocked")
        .name("#n_pk", PK)
        .name("#n_kind", KIND_ATTR)
        .s(":n_blocked", NightKind::Blocked.as_str())
}

/// Condition for an imported night: the night is free (an import never takes a night from a
/// hold, expired or not, a booking or a host block).
pub fn condition_free() -> Expr {
    Expr::new("attribute_not_exists(#n_pk)").name("#n_pk", PK)
}

/// Condition for removing an imported night: still imported by `import_id`.
pub fn condition_imported_by(import_id: &str) -> Expr {
    Expr::new("#n_kind = :n_imported AND #n_import = :n_import")
        .name("#n_kind", KIND_ATTR)
        .name("#n_import", IMPORT_ID_ATTR)
        .s(":n_imported", NightKind::Imported.as_str())
        .s(":n_import", import_id)
}

/// Condition for a new hold: the night is free, or held by a hold that expired before `now`.
pub fn condition_free_or_expired_hold(now: Timestamp) -> Expr {
    Expr::new("attribute_not_exists(#n_pk) OR (#n_kind = :n_held AND #n_until < :n_now)")
        .name("#n_pk", PK)
        .name("#n_kind", KIND_ATTR)
        .name("#n_until", HOLD_EXPIRES_AT_ATTR)
        .s(":n_held", NightKind::Held.as_str())
        .s(":n_now", instant(now))
}

/// RFC 3339 UTC at whole seconds (`2026-01-01T10:15:00Z`): one fixed width, so DynamoDB's
/// string comparison of two instants is their time order (a fractional part would break it:
/// `...00.5Z` sorts before `...00Z`).
pub fn instant(t: Timestamp) -> String {
    Timestamp::from_second(t.as_second()).unwrap_or(t).to_string()
}

/// The update that books a held night (a paid booking, an accepted request): `booked`, its hold
/// and TTL removed. Pair it with [`condition_held_by`].
pub fn book_update(now: Timestamp) -> Expr {
    Expr::new("SET #k = :booked, #nu = :now REMOVE #hold, #ttl")
        .name("#k", KIND_ATTR)
        .name("#nu", "updated_at")
        .name("#hold", HOLD_EXPIRES_AT_ATTR)
        .name("#ttl", "expires_at")
        .s(":booked", NightKind::Booked.as_str())
        .s(":now", instant(now))
}

/// Condition for confirming or releasing a hold: still held by this booking (whatever the clock).
pub fn condition_held_by(booking_id: &str) -> Expr {
    Expr::new("#n_kind = :n_held AND #n_booking = :n_booking")
        .name("#n_kind", KIND_ATTR)
        .name("#n_booking", BOOKING_ID_ATTR)
        .s(":n_held", NightKind::Held.as_str())
        .s(":n_booking", booking_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn keys_sort_by_date() {
        let k = key("lst_1", d("2026-03-09"));
        assert_eq!(k, Key::new("LISTING#lst_1", "NIGHT#2026-03-09"));
        assert!(sort_key(d("2026-03-09")) < sort_key(d("2026-03-10")));
        assert!(sort_key(d("2026-12-31")) < sort_key(d("2027-01-01")));
        assert_eq!(date_of_sort_key("NIGHT#2026-03-09"), Some(d("2026-03-09")));
        assert_eq!(date_of_sort_key("LISTING"), None);
    }

    #[test]
    fn dates_are_strict() {
        assert_eq!(parse_date("2026-02-28"), Some(d("2026-02-28")));
        for bad in ["2026-02-30", "20260228", "2026-2-28", "2026-02-28T00:00", " 2026-02-28", "", "2026/02/28"] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        assert_eq!(parse_date("2028-02-29"), Some(d("2028-02-29")));
        assert_eq!(parse_date("2027-02-29"), None);
    }

    /// The calendar's edges: jiff's dates run from -9999-01-01 to 9999-12-31; Roost's dates are
    /// exactly `YYYY-MM-DD`, so year 0 parses (and is in the past for every rule) and a signed or
    /// five-digit year is malformed, never an overflow further on.
    #[test]
    fn dates_at_the_edges_of_the_calendar() {
        assert_eq!(parse_date("0000-01-01"), Some(Date::new(0, 1, 1).unwrap()));
        assert_eq!(parse_date("0000-02-29"), Some(Date::new(0, 2, 29).unwrap()), "year 0 is a leap year");
        assert_eq!(parse_date("9999-12-31"), Some(Date::MAX));
        for bad in
            ["-9999-01-01", "-0001-12-31", "+9999-12-31", "10000-01-01", "9999-12-32", "9999-13-01", "0000-00-01"]
        {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        // Leap days: 2028 is a leap year, 2027 and 2100 are not, 2000 is.
        assert_eq!(parse_date("2028-02-29"), Some(d("2028-02-29")));
        assert_eq!(parse_date("2027-02-29"), None);
        assert_eq!(parse_date("2100-02-29"), None);
        assert_eq!(parse_date("2000-02-29"), Some(d("2000-02-29")));
        // Keys of the edges still sort by date.
        assert!(sort_key(Date::new(0, 1, 1).unwrap()) < sort_key(d("2026-01-01")));
        assert!(sort_key(d("2026-01-01")) < sort_key(Date::MAX));
        assert_eq!(date_of_sort_key("NIGHT#9999-12-31"), Some(Date::MAX));
    }

    #[test]
    fn nights_never_fail_at_the_edges() {
        // The last day there is: one night, and no day after it to overflow into.
        assert_eq!(nights(d("9999-12-30"), Date::MAX, 100), vec![d("9999-12-30")]);
        assert!(nights(Date::MAX, Date::MAX, 100).is_empty());
        assert_eq!(nights(d("9999-12-29"), Date::MAX, 1), vec![d("9999-12-29")], "capped");
        assert_eq!(
            nights(Date::MIN, Date::new(-9999, 1, 3).unwrap(), 100),
            vec![Date::MIN, Date::new(-9999, 1, 2).unwrap()]
        );
        // Across a leap day and a year end.
        assert_eq!(nights(d("2028-02-28"), d("2028-03-01"), 100), vec![d("2028-02-28"), d("2028-02-29")]);
        assert_eq!(nights(d("2027-02-28"), d("2027-03-01"), 100), vec![d("2027-02-28")]);
        assert_eq!(nights(d("2026-12-31"), d("2027-01-01"), 100), vec![d("2026-12-31")]);
        // The nights of a DST change are civil dates: Lisbon springs forward on 2027-03-28 and
        // falls back on 2027-10-31; each is one night, 23 and 25 hours long.
        assert_eq!(nights(d("2027-03-27"), d("2027-03-29"), 100), vec![d("2027-03-27"), d("2027-03-28")]);
        assert_eq!(nights(d("2027-10-30"), d("2027-11-01"), 100), vec![d("2027-10-30"), d("2027-10-31")]);
        // Empty and reversed ranges.
        assert!(nights(d("2026-03-04"), d("2026-03-04"), 100).is_empty());
        assert!(nights(d("2026-03-05"), d("2026-03-04"), 100).is_empty());
        assert_eq!(nights(d("2026-01-01"), d("2036-01-01"), 91).len(), 91);
        // The last night before a check-out, and none before the first day there is.
        assert_eq!(last_night(d("2028-03-01")), Some(d("2028-02-29")));
        assert_eq!(last_night(d("2027-01-01")), Some(d("2026-12-31")));
        assert_eq!(last_night(Date::MAX), Some(d("9999-12-30")));
        assert_eq!(last_night(Date::MIN), None);
    }

    #[test]
    fn night_items_round_trip() {
        let now: Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        let n = Night::blocked("lst_1", d("2026-03-09"), now);
        let item = crate::table::to_item(&n).unwrap();
        assert_eq!(item["PK"], AttributeValue::S("LISTING#lst_1".into()));
        assert_eq!(item["SK"], AttributeValue::S("NIGHT#2026-03-09".into()));
        assert_eq!(item["kind"], AttributeValue::S("blocked".into()));
        assert_eq!(item["type"], AttributeValue::S("night".into()));
        assert!(!item.contains_key("booking_id") && !item.contains_key("hold_expires_at"));
        let back: Night = crate::table::from_item(item).unwrap();
        assert_eq!(back, n);
        assert_eq!(back.civil_date(), Some(d("2026-03-09")));

        let until: Timestamp = "2026-01-01T10:15:00Z".parse().unwrap();
        let h = Night::held("lst_1", d("2026-03-09"), "bkg_1", until, now);
        let item = crate::table::to_item(&h).unwrap();
        assert_eq!(item["hold_expires_at"], AttributeValue::S("2026-01-01T10:15:00Z".into()));
        assert_eq!(item["expires_at"], AttributeValue::N((until.as_second() + 86400).to_string()));
    }

    #[test]
    fn taken_follows_kind_and_expiry() {
        let now: Timestamp = "2026-01-01T10:00:00Z".parse().unwrap();
        let later: Timestamp = "2026-01-01T10:30:00Z".parse().unwrap();
        assert!(Night::blocked("l", d("2026-03-09"), now).is_taken_at(later));
        let h = Night::held("l", d("2026-03-09"), "b", "2026-01-01T10:15:00Z".parse().unwrap(), now);
        assert!(h.is_taken_at(now));
        assert!(!h.is_taken_at(later));
        let mut broken = h.clone();
        broken.hold_expires_at = Some("soon".into());
        assert!(broken.is_taken_at(later));
        let mut booked = h;
        booked.kind = NightKind::Booked;
        assert!(booked.is_taken_at(later));
    }

    #[test]
    fn instants_have_one_width_and_sort_in_time_order() {
        let a: Timestamp = "2026-01-01T10:15:00Z".parse().unwrap();
        let b: Timestamp = "2026-01-01T10:15:00.5Z".parse().unwrap();
        let c: Timestamp = "2026-01-01T10:15:01Z".parse().unwrap();
        assert_eq!(instant(b), "2026-01-01T10:15:00Z");
        assert!(instant(a) <= instant(b) && instant(b) < instant(c));
        assert_eq!(instant(a).len(), instant(c).len());
    }

    #[test]
    fn conditions_name_their_placeholders() {
        let c = condition_free_or_blocked();
        assert_eq!(c.expression, "attribute_not_exists(#n_pk) OR #n_kind = :n_blocked");
        assert_eq!(c.values[":n_blocked"], AttributeValue::S("blocked".into()));
        let c = condition_free_or_expired_hold("2026-01-01T10:00:00Z".parse().unwrap());
        assert_eq!(c.values[":n_now"], AttributeValue::S("2026-01-01T10:00:00Z".into()));
        assert_eq!(c.names["#n_until"], "hold_expires_at");
        let c = condition_held_by("bkg_1");
        assert_eq!(c.values[":n_booking"], AttributeValue::S("bkg_1".into()));
        let q = range_query("lst_1", d("2026-01-01"), d("2026-01-31"));
        let dbg = format!("{q:?}");
        assert!(
            dbg.contains("NIGHT#2026-01-01") && dbg.contains("NIGHT#2026-01-31") && dbg.contains("consistent: true")
        );
    }
}
