//! The e-mail throttle of messages: a person is e-mailed about a conversation at most once per
//! [`MESSAGE_EMAIL_INTERVAL`] while messages keep coming (each message still gets its inbox
//! item). The store applies it with a condition on the stored "last e-mailed at".

use jiff::{SignedDuration, Timestamp};

/// At most one e-mail per conversation and person in this interval.
pub const MESSAGE_EMAIL_INTERVAL: SignedDuration = SignedDuration::from_mins(15);

/// The stored form of an instant (whole-second RFC 3339 UTC: strings compare in time order).
pub fn instant(t: Timestamp) -> String {
    shared::night::instant(t)
}

/// A last e-mail at or before this instant no longer holds the next one back.
pub fn cutoff(now: Timestamp) -> String {
    instant(now.checked_sub(MESSAGE_EMAIL_INTERVAL).unwrap_or(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_fifteen_minutes_back_and_compares_as_text() {
        let now: Timestamp = "2026-07-10T10:20:00.7Z".parse().unwrap();
        assert_eq!(cutoff(now), "2026-07-10T10:05:00Z");
        assert!(instant("2026-07-10T10:04:59Z".parse().unwrap()) <= cutoff(now));
        assert!(instant("2026-07-10T10:05:01Z".parse().unwrap()) > cutoff(now));
    }
}
