//! Rules of calendar sync (iCalendar, RFC 5545), pure: reading an imported feed into the nights it
//! covers in the listing's zone, and writing a listing's export feed from its NIGHT items.
//! Parsing and writing go through the `icalendar` crate; dates and zones through jiff.

use std::collections::BTreeSet;

use icalendar::parser::{Component, Property};
use icalendar::{Calendar, Component as _};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use shared::night::{Night, NightKind};

/// How far ahead imported events count (past nights never do).
pub const IMPORT_HORIZON_DAYS: i32 = 548;
/// How far back and ahead the export reaches.
pub const EXPORT_PAST_DAYS: i32 = 30;
pub const EXPORT_AHEAD_DAYS: i32 = 548;
/// An error message recorded on an import is at most this long.
const ERROR_MAX: usize = 300;

/// Why a feed could not be read; the message is recorded on the import as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FeedError(pub String);

fn refuse(message: impl Into<String>) -> FeedError {
    let mut m: String = message.into();
    if m.len() > ERROR_MAX {
        let cut = (0..=ERROR_MAX).rev().find(|i| m.is_char_boundary(*i)).unwrap_or(0);
        m.truncate(cut);
    }
    FeedError(m)
}

/// The nights `[first, end)` of the import window: from `today` for `IMPORT_HORIZON_DAYS`.
pub fn import_window(today: Date) -> (Date, Date) {
    (today, today.checked_add(Span::new().days(IMPORT_HORIZON_DAYS)).unwrap_or(Date::MAX))
}

/// The nights a feed makes unavailable, in `zone`, within `[first, end)`. Cancelled events are
/// ignored; a recurring event (RRULE/RDATE) refuses the whole feed (never guessed); a timed
/// event covers the nights from its start's date to its end's date (exclusive), at least the
/// start's night.
pub fn parse_feed(text: &str, zone: &TimeZone, first: Date, end: Date) -> Result<BTreeSet<Date>, FeedError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if !text.trim_start().to_ascii_uppercase().starts_with("BEGIN:VCALENDAR") {
        return Err(refuse("not an iCalendar file: it does not start with BEGIN:VCALENDAR"));
    }
    let unfolded = icalendar::parser::unfold(&text.replace("\r\n", "\n"));
    let roots = icalendar::parser::read_components(&unfolded)
        .map_err(|e| refuse(format!("not valid iCalendar: {}", e.lines().take(3).collect::<Vec<_>>().join(" "))))?;
    let calendar = roots
        .iter()
        .find(|c| c.name.as_str().eq_ignore_ascii_case("VCALENDAR"))
        .ok_or_else(|| refuse("not an iCalendar file: no VCALENDAR"))?;
    let mut nights = BTreeSet::new();
    for event in calendar.components.iter().filter(|c| c.name.as_str().eq_ignore_ascii_case("VEVENT")) {
        for night in event_nights(event, zone)? {
            if night >= first && night < end {
                nights.insert(night);
            }
        }
    }
    Ok(nights)
}

fn prop<'a>(c: &'a Component<'_>, name: &str) -> Option<&'a Property<'a>> {
    c.properties.iter().find(|p| p.name.as_str().eq_ignore_ascii_case(name))
}

fn param<'a>(p: &'a Property<'_>, key: &str) -> Option<&'a str> {
    p.params.iter().find(|x| x.key.as_str().eq_ignore_ascii_case(key)).and_then(|x| x.val.as_ref()).map(|v| v.as_str())
}

/// The nights of one VEVENT (none when cancelled).
fn event_nights(event: &Component<'_>, zone: &TimeZone) -> Result<Vec<Date>, FeedError> {
    let uid = prop(event, "UID").map(|p| p.val.as_str().to_owned()).unwrap_or_else(|| "(no UID)".into());
    if prop(event, "STATUS").is_some_and(|p| p.val.as_str().trim().eq_ignore_ascii_case("CANCELLED")) {
        return Ok(Vec::new());
    }
    if prop(event, "RRULE").is_some() || prop(event, "RDATE").is_some() {
        return Err(refuse(format!("recurring events are not supported (event {uid} has a RRULE or RDATE)")));
    }
    let start = prop(event, "DTSTART").ok_or_else(|| refuse(format!("event {uid} has no DTSTART")))?;
    let start = when(start, zone).map_err(|e| refuse(format!("event {uid}: DTSTART {e}")))?;
    let end = match (prop(event, "DTEND"), prop(event, "DURATION")) {
        (Some(p), _) => when(p, zone).map_err(|e| refuse(format!("event {uid}: DTEND {e}")))?,
        (None, Some(p)) => {
            let span: Span = p
                .val
                .as_str()
                .trim()
                .parse()
                .map_err(|_| refuse(format!("event {uid}: DURATION is not a duration")))?;
            start.plus(span, zone).map_err(|e| refuse(format!("event {uid}: DURATION {e}")))?
        }
        // RFC 5545 3.6.1: a date lasts one day, a date-time no time at all.
        (None, None) => start.plus(Span::new().days(1), zone).unwrap_or(start.clone()),
    };
    Ok(start.nights_until(&end, zone))
}

/// A DTSTART or DTEND: a date (`VALUE=DATE` or 8 digits) or a date-time (UTC with `Z`, in its
/// `TZID`, or floating: in the listing's zone; an unknown TZID is read as the listing's zone).
#[derive(Debug, Clone, PartialEq)]
enum When {
    Day(Date),
    At(Timestamp),
}

fn when(p: &Property<'_>, zone: &TimeZone) -> Result<When, String> {
    let v = p.val.as_str().trim();
    let is_date = param(p, "VALUE").is_some_and(|x| x.eq_ignore_ascii_case("DATE")) || v.len() == 8;
    if is_date {
        return parse_basic_date(v).map(When::Day).ok_or_else(|| format!("`{v}` is not a date (YYYYMMDD)"));
    }
    let (local, utc) = match v.strip_suffix('Z').or_else(|| v.strip_suffix('z')) {
        Some(s) => (s, true),
        None => (v, false),
    };
    let dt = parse_basic_datetime(local).ok_or_else(|| format!("`{v}` is not a date-time (YYYYMMDDTHHMMSS)"))?;
    let tz = if utc {
        TimeZone::UTC
    } else {
        param(p, "TZID").and_then(|id| TimeZone::get(id.trim_matches('"')).ok()).unwrap_or_else(|| zone.clone())
    };
    tz.to_ambiguous_zoned(dt).compatible().map(|z| When::At(z.timestamp())).map_err(|e| e.to_string())
}

impl When {
    fn plus(&self, span: Span, zone: &TimeZone) -> Result<When, String> {
        match self {
            // A date plus a duration of days stays a date; a time part makes it a date-time.
            When::Day(d) if span.get_hours() == 0 && span.get_minutes() == 0 && span.get_seconds() == 0 => {
                d.checked_add(span).map(When::Day).map_err(|e| e.to_string())
            }
            When::Day(d) => {
                let start = d.to_zoned(zone.clone()).map_err(|e| e.to_string())?;
                start.checked_add(span).map(|z| When::At(z.timestamp())).map_err(|e| e.to_string())
            }
            When::At(t) => {
                t.to_zoned(zone.clone()).checked_add(span).map(|z| When::At(z.timestamp())).map_err(|e| e.to_string())
            }
        }
    }

    fn date_and_midnight(&self, zone: &TimeZone) -> (Date, bool) {
        match self {
            When::Day(d) => (*d, true),
            When::At(t) => {
                let z = t.to_zoned(zone.clone());
                (z.date(), z.time() == jiff::civil::Time::midnight())
            }
        }
    }

    /// The nights `[self's date, end's date)`, at least self's own night.
    fn nights_until(&self, end: &When, zone: &TimeZone) -> Vec<Date> {
        let (first, _) = self.date_and_midnight(zone);
        let (last_excl, _) = end.date_and_midnight(zone);
        let nights = shared::night::nights(first, last_excl, IMPORT_HORIZON_DAYS as usize + 400);
        if nights.is_empty() { vec![first] } else { nights }
    }
}

fn parse_basic_date(v: &str) -> Option<Date> {
    if v.len() != 8 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m, d) = (v[0..4].parse().ok()?, v[4..6].parse().ok()?, v[6..8].parse().ok()?);
    Date::new(y, m, d).ok()
}

fn parse_basic_datetime(v: &str) -> Option<DateTime> {
    let (d, t) = v.split_once(['T', 't'])?;
    let date = parse_basic_date(d)?;
    if t.len() != 6 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m, s): (i8, i8, i8) = (t[0..2].parse().ok()?, t[2..4].parse().ok()?, t[4..6].parse().ok()?);
    // A leap second (60) is read as the last second of its minute.
    let time = jiff::civil::Time::new(h, m, s.min(59), 0).ok()?;
    Some(date.to_datetime(time))
}

/// One event of the export: a stay (held or booked nights of one booking in a row) or a run of
/// host blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    pub uid: String,
    pub summary: &'static str,
    pub from: Date,
    /// The day after the last night (DTEND is exclusive).
    pub to: Date,
    /// The latest change of its nights (DTSTAMP: stable while nothing changes, so the feed's
    /// ETag is too).
    pub stamp: String,
}

pub const RESERVED: &str = "Reserved";
pub const NOT_AVAILABLE: &str = "Not available";

/// The export's events from the NIGHT items (sorted by date): stays grouped by booking, host
/// blocks by runs of consecutive nights. Imported nights are not exported (two platforms that
/// import each other's feeds would otherwise keep a dropped event alive between them); a lapsed
/// hold is free, so not exported either.
pub fn feed_events(listing_id: &str, nights: &[Night], now: Timestamp) -> Vec<FeedEvent> {
    let mut events: Vec<FeedEvent> = Vec::new();
    for n in nights {
        let Some(date) = n.civil_date() else { continue };
        let (uid, summary) = match (n.kind, n.booking_id.as_deref()) {
            (NightKind::Held | NightKind::Booked, Some(b)) if n.is_taken_at(now) => (stay_uid(b), RESERVED),
            (NightKind::Blocked, _) => (String::new(), NOT_AVAILABLE),
            _ => continue,
        };
        let Ok(next) = date.tomorrow() else { continue };
        if let Some(last) = events.last_mut()
            && last.to == date
            && last.summary == summary
            && (summary == NOT_AVAILABLE || last.uid == uid)
        {
            last.to = next;
            if n.updated_at > last.stamp {
                last.stamp.clone_from(&n.updated_at);
            }
            continue;
        }
        let uid = if uid.is_empty() { format!("block-{listing_id}-{}@roost", basic_date(date)) } else { uid };
        events.push(FeedEvent { uid, summary, from: date, to: next, stamp: n.updated_at.clone() });
    }
    events
}

/// A stay's UID: stable for the booking, but not its id (the feed goes to other platforms and
/// calendar apps; a booking id is nothing they need).
pub fn stay_uid(booking_id: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("roost-stay:{booking_id}").as_bytes());
    let hex: String = digest.iter().take(10).map(|b| format!("{b:02x}")).collect();
    format!("stay-{hex}@roost")
}

fn basic_date(d: Date) -> String {
    d.strftime("%Y%m%d").to_string()
}

/// The export feed: CRLF lines, folded at 75 octets by the crate, one all-day VEVENT per event.
pub fn write_feed(listing_title: &str, events: &[FeedEvent]) -> String {
    let mut cal = Calendar::empty();
    cal.append_property(icalendar::Property::new("PRODID", "-//Roost//Calendar sync//EN"))
        .append_property(icalendar::Property::new("VERSION", "2.0"))
        .append_property(icalendar::Property::new("CALSCALE", "GREGORIAN"))
        .append_property(icalendar::Property::new("METHOD", "PUBLISH"))
        .append_property(icalendar::Property::new("X-WR-CALNAME", format!("Roost: {listing_title}")));
    for e in events {
        let stamp = e.stamp.parse::<Timestamp>().map(|t| t.strftime("%Y%m%dT%H%M%SZ").to_string());
        let mut ev = icalendar::Event::new();
        ev.uid(&e.uid)
            .summary(e.summary)
            .add_property("DTSTAMP", stamp.unwrap_or_else(|_| "19700101T000000Z".into()))
            .append_property(
                icalendar::Property::new("DTSTART", basic_date(e.from)).add_parameter("VALUE", "DATE").done(),
            )
            .append_property(icalendar::Property::new("DTEND", basic_date(e.to)).add_parameter("VALUE", "DATE").done())
            .add_property("TRANSP", "OPAQUE");
        cal.push(ev.done());
    }
    cal.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    fn lisbon() -> TimeZone {
        TimeZone::get("Europe/Lisbon").unwrap()
    }

    fn read(text: &str) -> Result<Vec<String>, FeedError> {
        let nights = parse_feed(text, &lisbon(), d("2027-01-01"), d("2028-07-01"))?;
        Ok(nights.into_iter().map(|n| n.to_string()).collect())
    }

    fn crlf(s: &str) -> String {
        s.replace('\n', "\r\n")
    }

    /// Airbnb's export: all-day events, `Reserved` and `Airbnb (Not available)`, a folded
    /// DESCRIPTION with the reservation URL, CRLF lines.
    const AIRBNB: &str = "BEGIN:VCALENDAR
PRODID;X-RICAL-TZSOURCE=TZINFO:-//Airbnb Inc//Hosting Calendar 1.0//EN
CALSCALE:GREGORIAN
VERSION:2.0
BEGIN:VEVENT
DTEND;VALUE=DATE:20270312
DTSTART;VALUE=DATE:20270309
UID:1418fb94e984-5a3d1e0cbfa0e6c3bd4b8f1a8c9f9a4c@airbnb.com
DESCRIPTION:Reservation URL: https://www.airbnb.com/hosting/reservations/de
 tails/HMABCDEF12\\nPhone Number (Last 4 Digits): 1234
SUMMARY:Reserved
END:VEVENT
BEGIN:VEVENT
DTEND;VALUE=DATE:20270402
DTSTART;VALUE=DATE:20270401
UID:7f1b6a3d2d10-1f0f0e9c7f6d2b3a@airbnb.com
SUMMARY:Airbnb (Not available)
END:VEVENT
END:VCALENDAR
";

    /// Booking.com's export: LF lines, all-day events, `CLOSED - Not available`.
    const BOOKING: &str = "BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//admin.booking.com//EN
BEGIN:VEVENT
UID:b9e1c3f5c6d34a1@booking.com
DTSTAMP:20261215T101500Z
DTSTART;VALUE=DATE:20270105
DTEND;VALUE=DATE:20270107
SUMMARY:CLOSED - Not available
END:VEVENT
END:VCALENDAR
";

    #[test]
    fn airbnb_export_crlf_and_folded() {
        assert_eq!(read(&crlf(AIRBNB)).unwrap(), ["2027-03-09", "2027-03-10", "2027-03-11", "2027-04-01"]);
        assert_eq!(read(AIRBNB).unwrap().len(), 4, "LF lines read the same");
    }

    #[test]
    fn booking_com_export() {
        assert_eq!(read(BOOKING).unwrap(), ["2027-01-05", "2027-01-06"]);
        assert_eq!(read(&crlf(BOOKING)).unwrap(), ["2027-01-05", "2027-01-06"]);
    }

    fn one_event(lines: &str) -> String {
        format!("BEGIN:VCALENDAR\nVERSION:2.0\nBEGIN:VEVENT\nUID:x@y\n{lines}\nEND:VEVENT\nEND:VCALENDAR\n")
    }

    #[test]
    fn timed_events_cover_their_nights_in_the_listings_zone() {
        // Check-in 15:00 UTC, check-out 11:00 two days later: two nights.
        let f = one_event("DTSTART:20270310T150000Z\nDTEND:20270312T110000Z");
        assert_eq!(read(&f).unwrap(), ["2027-03-10", "2027-03-11"]);
        // 23:30 UTC on the 9th is 23:30 in Lisbon in winter, still the 9th; in New York's zone
        // (TZID) 20:00 on the 9th is the 10th 01:00 UTC, the 10th 01:00 in Lisbon.
        let f = one_event("DTSTART;TZID=America/New_York:20270109T200000\nDTEND;TZID=America/New_York:20270111T100000");
        assert_eq!(read(&f).unwrap(), ["2027-01-10"]);
        // A short event within one day still takes that night.
        let f = one_event("DTSTART:20270310T100000\nDTEND:20270310T120000");
        assert_eq!(read(&f).unwrap(), ["2027-03-10"]);
        // A DURATION instead of DTEND; a date without DTEND is one day.
        assert_eq!(read(&one_event("DTSTART;VALUE=DATE:20270310\nDURATION:P3D")).unwrap().len(), 3);
        assert_eq!(read(&one_event("DTSTART;VALUE=DATE:20270310")).unwrap(), ["2027-03-10"]);
        // An unknown TZID (a Windows name) is read in the listing's zone.
        let f = one_event(
            "DTSTART;TZID=W. Europe Standard Time:20270310T150000\nDTEND;TZID=W. Europe Standard Time:20270311T110000",
        );
        assert_eq!(read(&f).unwrap(), ["2027-03-10"]);
    }

    #[test]
    fn cancelled_past_and_far_events_are_ignored() {
        let f = one_event("STATUS:CANCELLED\nDTSTART;VALUE=DATE:20270310\nDTEND;VALUE=DATE:20270312");
        assert!(read(&f).unwrap().is_empty());
        let f = one_event("DTSTART;VALUE=DATE:20261230\nDTEND;VALUE=DATE:20270102");
        assert_eq!(read(&f).unwrap(), ["2027-01-01"], "past nights dropped");
        let f = one_event("DTSTART;VALUE=DATE:20280629\nDTEND;VALUE=DATE:20280705");
        assert_eq!(read(&f).unwrap(), ["2028-06-29", "2028-06-30"], "beyond the horizon dropped");
    }

    #[test]
    fn recurring_events_are_refused_clearly() {
        let e = read(&one_event("DTSTART;VALUE=DATE:20270310\nRRULE:FREQ=WEEKLY;COUNT=4")).unwrap_err();
        assert!(e.0.contains("recurring events are not supported") && e.0.contains("x@y"), "{e}");
    }

    #[test]
    fn broken_files_are_clear_errors_never_panics() {
        for (bad, says) in [
            ("", "not an iCalendar file"),
            ("<html><body>Sign in</body></html>", "not an iCalendar file"),
            ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:2027031\nEND:VEVENT\nEND:VCALENDAR\n", "not a date"),
            ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\nEND:VCALENDAR\n", "no DTSTART"),
            ("BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART:20271340T000000Z\nEND:VEVENT\nEND:VCALENDAR\n", "not a date-time"),
            (
                "BEGIN:VCALENDAR\nBEGIN:VEVENT\nDTSTART;VALUE=DATE:20270310\nDURATION:soon\nEND:VEVENT\nEND:VCALENDAR\n",
                "DURATION",
            ),
        ] {
            let e = read(bad).unwrap_err();
            assert!(e.0.contains(says), "{bad:?}: {e}");
        }
        // Truncated or garbled: an error or nothing, never a panic.
        let airbnb = crlf(AIRBNB);
        for cut in (0..airbnb.len()).step_by(7) {
            if airbnb.is_char_boundary(cut) {
                let _ = read(&airbnb[..cut]);
            }
        }
        let _ = read("BEGIN:VCALENDAR\n\u{0}\u{1}:::;;;\nEND:VCALENDAR");
    }

    fn night(date: &str, kind: NightKind, booking: Option<&str>, updated: &str) -> Night {
        let now: Timestamp = updated.parse().unwrap();
        let mut n = Night::blocked("lst_1", d(date), now);
        n.kind = kind;
        n.booking_id = booking.map(str::to_owned);
        n
    }

    #[test]
    fn export_groups_stays_and_blocks_and_reads_back() {
        let t = "2027-01-01T10:00:00Z";
        let nights = vec![
            night("2027-03-01", NightKind::Booked, Some("bkg_A"), t),
            night("2027-03-02", NightKind::Booked, Some("bkg_A"), "2027-01-02T10:00:00Z"),
            night("2027-03-03", NightKind::Booked, Some("bkg_B"), t),
            night("2027-03-04", NightKind::Blocked, None, t),
            night("2027-03-05", NightKind::Blocked, None, t),
            night("2027-03-07", NightKind::Blocked, None, t),
            night("2027-03-08", NightKind::Imported, None, t),
        ];
        let events = feed_events("lst_1", &nights, t.parse().unwrap());
        let got: Vec<(&str, &str, String, String)> =
            events.iter().map(|e| (e.uid.as_str(), e.summary, e.from.to_string(), e.to.to_string())).collect();
        assert_eq!(
            got,
            [
                (stay_uid("bkg_A").as_str(), RESERVED, "2027-03-01".into(), "2027-03-03".into()),
                (stay_uid("bkg_B").as_str(), RESERVED, "2027-03-03".into(), "2027-03-04".into()),
                ("block-lst_1-20270304@roost", NOT_AVAILABLE, "2027-03-04".into(), "2027-03-06".into()),
                ("block-lst_1-20270307@roost", NOT_AVAILABLE, "2027-03-07".into(), "2027-03-08".into()),
            ]
        );
        assert_eq!(events[0].stamp, "2027-01-02T10:00:00Z");
        let feed = write_feed("Sea view", &events);
        assert!(feed.contains("DTSTART;VALUE=DATE:20270301\r\n") && feed.contains("DTEND;VALUE=DATE:20270303\r\n"));
        assert!(
            feed.contains(&format!("UID:{}", stay_uid("bkg_A"))) && feed.contains("DTSTAMP:20270102T100000Z"),
            "{feed}"
        );
        assert!(!feed.contains("bkg_"), "no booking id in the feed");
        assert_eq!(feed, write_feed("Sea view", &events), "the same nights, the same bytes");
        let back = parse_feed(&feed, &lisbon(), d("2027-01-01"), d("2028-01-01")).unwrap();
        assert_eq!(back.len(), 6);
    }
}
