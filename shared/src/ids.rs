//! Opaque, time-sortable ids with a kind prefix: `lst_01jh3k...` (a lowercase ULID).
//!
//! Checking an id's shape before any lookup lets a garbage path id be a 404 without a DynamoDB
//! request, and keeps odd characters out of keys.

use jiff::Timestamp;
use ulid::Ulid;

const ULID_LEN: usize = 26;

/// A new id, e.g. `new_id("lst")` -> `lst_01jh...`; a trailing `_` on the prefix is optional.
pub fn new_id(prefix: &str) -> String {
    format_id(prefix, Ulid::new())
}

/// A new id whose time part is `at`, so ids sort with an injected clock's timestamps.
pub fn new_id_at(prefix: &str, at: Timestamp) -> String {
    format_id(prefix, Ulid::from_datetime(at.into()))
}

fn format_id(prefix: &str, ulid: Ulid) -> String {
    let prefix = prefix.trim_end_matches('_');
    let mut out = String::with_capacity(prefix.len() + 1 + ULID_LEN);
    out.push_str(prefix);
    out.push('_');
    out.push_str(&ulid.to_string().to_ascii_lowercase());
    out
}

/// Whether `s` starts with `prefix_` (no shape check of the rest).
pub fn has_prefix(prefix: &str, s: &str) -> bool {
    let prefix = prefix.trim_end_matches('_');
    s.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('_'))
}

/// `Some(s)` when `s` is exactly `prefix_` + a lowercase ULID, as `new_id` makes them.
pub fn parse_id<'a>(prefix: &str, s: &'a str) -> Option<&'a str> {
    let prefix = prefix.trim_end_matches('_');
    let ulid = s.strip_prefix(prefix)?.strip_prefix('_')?;
    is_lower_ulid(ulid).then_some(s)
}

/// `Some(s)` when `s` looks like a Cognito `sub` (a lowercase hyphenated UUID), the user id.
pub fn parse_user_id(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        });
    shape_ok.then_some(s)
}

fn is_lower_ulid(s: &str) -> bool {
    let b = s.as_bytes();
    // The first character only carries 3 bits: anything above '7' overflows 128 bits.
    b.len() == ULID_LEN
        && (b'0'..=b'7').contains(&b[0])
        && b.iter().all(|c| c.is_ascii_digit() || (c.is_ascii_lowercase() && !matches!(c, b'i' | b'l' | b'o' | b'u')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_have_prefix_and_lowercase_ulid() {
        let id = new_id("lst");
        assert!(id.starts_with("lst_"), "{id}");
        assert_eq!(id.len(), 4 + ULID_LEN);
        assert_eq!(id, id.to_ascii_lowercase());
        assert_eq!(parse_id("lst", &id), Some(id.as_str()));
        assert_eq!(parse_id("lst_", &id), Some(id.as_str()));
        assert!(new_id("bkg_").starts_with("bkg_0"));
    }

    #[test]
    fn ids_sort_by_time() {
        let early = new_id_at("bkg", "2025-01-01T00:00:00Z".parse().unwrap());
        let late = new_id_at("bkg", "2025-01-01T00:00:00.002Z".parse().unwrap());
        assert!(early < late);
        let now = new_id("bkg");
        assert!(late < now);
    }

    #[test]
    fn parse_rejects_garbage() {
        let id = new_id("lst");
        let ulid = &id[4..];
        assert_eq!(parse_id("bkg", &id), None);
        assert_eq!(parse_id("lst", ulid), None);
        assert_eq!(parse_id("lst", &id.to_ascii_uppercase()), None);
        assert_eq!(parse_id("lst", &format!("{id}x")), None);
        assert_eq!(parse_id("lst", &id[..id.len() - 1]), None);
        let z = "z".repeat(25);
        let zeros = "0".repeat(25);
        assert_eq!(parse_id("lst", &format!("lst_8{z}")), None);
        assert_eq!(parse_id("lst", &format!("lst_{zeros}u")), None);
        assert_eq!(parse_id("lst", &format!("lst_{zeros}!")), None);
        assert!(parse_id("lst", &format!("lst_7{z}")).is_some());
        assert_eq!(parse_id("lst", "lst_../../etc/passwd"), None);
        assert_eq!(parse_id("lst", ""), None);
    }

    #[test]
    fn has_prefix_needs_the_separator() {
        assert!(has_prefix("lst", "lst_x"));
        assert!(has_prefix("lst_", "lst_x"));
        assert!(!has_prefix("lst", "lstx"));
        assert!(!has_prefix("lst", "bkg_x"));
    }

    #[test]
    fn user_ids_are_uuids() {
        let sub = "3f1e2d4c-5b6a-4789-8abc-def012345678";
        assert_eq!(parse_user_id(sub), Some(sub));
        assert_eq!(parse_user_id(&sub.to_ascii_uppercase()), None);
        assert_eq!(parse_user_id("3f1e2d4c5b6a47898abcdef012345678"), None);
        assert_eq!(parse_user_id("USER#3f1e2d4c-5b6a-4789-8abc-def0123"), None);
    }
}
