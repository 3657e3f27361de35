//! "Today" in a time zone, for every test that derives dates from it.
//!
//! A test computes "today + N" in the listing's time zone; the function computes its own
//! "today" when the request arrives. Across local midnight the two differ by a day, and a
//! refund band, a day-0 rule or a "not in the past" check shifts: the suite failed on whoever
//! ran it a minute before midnight somewhere. So no date is derived in the last minutes before
//! local midnight: the helper sleeps past it, and the test then has a whole day on one date.

use jiff::SignedDuration;
use jiff::civil::Date;
use jiff::tz::TimeZone;

/// How long before local midnight a date is no longer derived (the test's date-sensitive
/// requests follow the derivation within this margin, even on a loaded machine).
pub const MIDNIGHT_MARGIN: SignedDuration = SignedDuration::from_mins(3);

/// Today's date in `timezone`; in the last [`MIDNIGHT_MARGIN`] before local midnight it sleeps
/// until 00:00:05 and answers the new date (a blocking sleep: it runs once per test at most,
/// before the requests it dates).
pub fn today_in(timezone: &str) -> Date {
    let tz = TimeZone::get(timezone).unwrap_or_else(|e| panic!("time zone {timezone}: {e}"));
    let now = jiff::Timestamp::now().to_zoned(tz.clone());
    let next_midnight = now.date().tomorrow().expect("a next day").to_zoned(tz.clone()).expect("local midnight");
    let left = next_midnight.timestamp().duration_since(now.timestamp());
    if left > MIDNIGHT_MARGIN {
        return now.date();
    }
    std::thread::sleep((left + SignedDuration::from_secs(5)).unsigned_abs());
    jiff::Timestamp::now().to_zoned(tz).date()
}

/// The date `days` after [`today_in`] `timezone`, `YYYY-MM-DD`.
pub fn day_in(timezone: &str, days: i64) -> String {
    today_in(timezone).checked_add(jiff::Span::new().days(days)).expect("date").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn today_is_a_date_near_now_in_the_zone() {
        let utc = jiff::Timestamp::now().to_zoned(TimeZone::UTC).date();
        let got = today_in("UTC");
        assert!(got == utc || got == utc.tomorrow().expect("tomorrow"), "{got} vs {utc}");
        assert_eq!(day_in("UTC", 1), got.tomorrow().expect("tomorrow").to_string());
    }
}
