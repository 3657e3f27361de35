//! Rules of messaging, pure: the request bodies and their checks, masking contact details
//! before a booking is confirmed, the per-minute send window.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use shared::ApiError;
use shared::error::FieldError;

/// Longest message, in characters after trimming.
pub const MAX_TEXT_CHARS: usize = 2000;
/// Messages a sender may post per calendar minute (all conversations together).
pub const MAX_PER_MINUTE: i64 = 10;
/// What replaces an e-mail address in a masked message.
pub const EMAIL_MASK: &str = "[email hidden]";
/// What replaces a phone number in a masked message.
pub const PHONE_MASK: &str = "[phone hidden]";
/// Told to the sender of a masked message.
pub const MASKED_NOTE: &str = "Contact details (e-mail addresses and phone numbers) are hidden until a booking between you is confirmed: keep payments on Roost.";
/// Characters of a message shown in a conversation list.
pub const PREVIEW_CHARS: usize = 100;

/// `POST /v1/conversations/{id}/messages`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    /// Plain text (HTML is not interpreted: it is shown as typed). 1 to 2000 characters once
    /// leading and trailing white space is trimmed.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub text: String,
}

/// `POST /v1/conversations`: an inquiry about a listing, its first message.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InquiryBody {
    /// The listing asked about (`lst_...`).
    #[schema(pattern = "^lst_[0-9a-hjkmnp-tv-z]{26}$")]
    pub listing_id: String,
    /// As for a message: 1 to 2000 characters once trimmed.
    #[schema(min_length = 1, max_length = 2000, pattern = r"\S")]
    pub text: String,
}

/// The text of a message, trimmed; 400 `validation_failed` on `text` when empty, too long, or
/// carrying control characters other than line breaks and tabs.
pub fn check_text(raw: &str) -> Result<String, ApiError> {
    let text = raw.trim();
    let count = text.chars().count();
    let problem = if count == 0 {
        Some("must not be empty".to_owned())
    } else if count > MAX_TEXT_CHARS {
        Some(format!("must be at most {MAX_TEXT_CHARS} characters"))
    } else if text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        Some("must not contain control characters".to_owned())
    } else {
        None
    };
    match problem {
        Some(message) => Err(ApiError::validation(vec![FieldError::new("text", message)])),
        None => Ok(text.to_owned()),
    }
}

/// The listing id of an inquiry: 404 for anything that is not one (as an unknown listing).
pub fn check_listing_id(raw: &str) -> Result<&str, ApiError> {
    shared::ids::parse_id("lst", raw).ok_or_else(ApiError::not_found)
}

/// `text` with every e-mail address and phone number replaced by a mask, and whether anything
/// was. An e-mail address is a word with `local@domain.tld`; a phone number is a run of digits
/// and the separators people type (spaces, `-`, `.`, `(`, `)`, a leading `+`) holding 7 to 15
/// digits, that is not an ISO date (`2026-07-10`) or a time.
pub fn mask_contacts(text: &str) -> (String, bool) {
    let (text, emails) = mask_emails(text);
    let (text, phones) = mask_phones(&text);
    (text, emails || phones)
}

fn is_email_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn looks_like_email(word: &str) -> bool {
    let Some((local, domain)) = word.split_once('@') else { return false };
    let domain = domain.trim_end_matches('.');
    !local.is_empty()
        && local.chars().all(is_email_char)
        && domain.contains('.')
        && !domain.starts_with('.')
        && domain
            .split('.')
            .all(|label| !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

fn mask_emails(text: &str) -> (String, bool) {
    let mut out = String::with_capacity(text.len());
    let mut masked = false;
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let start =
            rest[..at].char_indices().rev().find(|(_, c)| !is_email_char(*c)).map_or(0, |(i, c)| i + c.len_utf8());
        let end = rest[at + 1..]
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-')))
            .map_or(rest.len(), |(i, _)| at + 1 + i);
        // A sentence's full stop after the address is not part of it.
        let end = start + rest[start..end].trim_end_matches('.').len();
        let word = &rest[start..end];
        if looks_like_email(word) {
            out.push_str(&rest[..start]);
            out.push_str(EMAIL_MASK);
            masked = true;
        } else {
            out.push_str(&rest[..at + 1]);
            rest = &rest[at + 1..];
            continue;
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    (out, masked)
}

fn is_phone_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')' | '/')
}

/// `2026-07-10`, `10.07.2026`, `10/07/2026`: dates stay readable.
fn is_date(run: &str) -> bool {
    let groups: Vec<&str> = run.split(['-', '.', '/']).collect();
    groups.len() == 3
        && groups.iter().all(|g| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()))
        && (groups[0].len() == 4 && groups[1].len() <= 2 && groups[2].len() <= 2
            || groups[0].len() <= 2 && groups[1].len() <= 2 && groups[2].len() == 4)
}

fn mask_phones(text: &str) -> (String, bool) {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = String::with_capacity(text.len());
    let mut masked = false;
    let mut copied = 0;
    let mut i = 0;
    while i < chars.len() {
        let (start, c) = chars[i];
        let begins =
            c.is_ascii_digit() || ((c == '+' || c == '(') && chars.get(i + 1).is_some_and(|(_, n)| n.is_ascii_digit()));
        let after_word = i > 0 && chars[i - 1].1.is_alphanumeric();
        if !begins || after_word {
            i += 1;
            continue;
        }
        let mut j = i;
        let mut last_digit = i;
        while j < chars.len()
            && (chars[j].1.is_ascii_digit() || is_phone_separator(chars[j].1) || (j == i && chars[j].1 == '+'))
        {
            if chars[j].1.is_ascii_digit() {
                last_digit = j;
            }
            j += 1;
        }
        let end = chars.get(last_digit + 1).map_or(text.len(), |(b, _)| *b);
        let run = &text[start..end];
        let digits = run.bytes().filter(u8::is_ascii_digit).count();
        let glued_to_word = chars.get(last_digit + 1).is_some_and(|(_, n)| n.is_alphanumeric());
        if (7..=15).contains(&digits) && !is_date(run) && !glued_to_word {
            out.push_str(&text[copied..start]);
            out.push_str(PHONE_MASK);
            copied = end;
            masked = true;
        }
        i = last_digit + 1;
    }
    out.push_str(&text[copied..]);
    (out, masked)
}

/// The first [`PREVIEW_CHARS`] characters of a message, for the conversation list.
pub fn preview(text: &str) -> String {
    let mut p: String = text.chars().take(PREVIEW_CHARS).collect();
    if text.chars().count() > PREVIEW_CHARS {
        p.push('…');
    }
    p
}

/// The send window of `now`: its minute (`2026-07-10T10:04`, the counter's key), when the
/// counter may be deleted (epoch seconds, a minute after the window ends), and the seconds
/// until the next window (`Retry-After`, at least 1).
pub fn send_window(now: Timestamp) -> (String, i64, i64) {
    let second = now.as_second();
    let start = second - second.rem_euclid(60);
    let minute = Timestamp::from_second(start).map(|t| t.to_string()).unwrap_or_default();
    let minute = minute.get(..16).unwrap_or(&minute).to_owned();
    (minute, start + 120, (start + 60 - second).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str) -> String {
        mask_contacts(text).0
    }

    #[test]
    fn texts_are_trimmed_and_bounded() {
        assert_eq!(check_text("  Hello!\n").unwrap(), "Hello!");
        assert_eq!(check_text(&"é".repeat(2000)).unwrap().chars().count(), 2000);
        for bad in ["", "   \n\t", &"a".repeat(2001), "bell\u{7}"] {
            let e = check_text(bad).unwrap_err();
            assert_eq!(e.code(), "validation_failed", "{bad:?}");
            assert_eq!(e.problem().unwrap().errors[0].field, "text");
        }
        assert_eq!(check_text("line 1\r\nline 2\ttab").unwrap(), "line 1\r\nline 2\ttab");
        assert_eq!(check_text("<b>bold</b>").unwrap(), "<b>bold</b>", "stored as typed, escaped where shown");
    }

    #[test]
    fn e_mail_addresses_are_masked() {
        assert_eq!(masked("write to jo.doe+x@mail.example.com please"), "write to [email hidden] please");
        assert_eq!(masked("Me: a@b.co."), "Me: [email hidden].");
        assert_eq!(masked("(jo@example.org)"), "([email hidden])");
        assert_eq!(masked("two: a@b.io, c@d.io"), "two: [email hidden], [email hidden]");
        assert_eq!(
            mask_contacts("we are @ the beach, meet @home"),
            ("we are @ the beach, meet @home".to_owned(), false)
        );
        assert!(!mask_contacts("user@localhost").1);
    }

    #[test]
    fn phone_numbers_are_masked() {
        assert_eq!(masked("call +33 6 12 34 56 78 tonight"), "call [phone hidden] tonight");
        assert_eq!(masked("(555) 123-4567"), "[phone hidden]");
        assert_eq!(masked("555.123.4567!"), "[phone hidden]!");
        assert_eq!(masked("0612345678"), "[phone hidden]");
        assert_eq!(masked("tel:+4915112345678."), "tel:[phone hidden].");
    }

    #[test]
    fn ordinary_numbers_dates_and_times_stay() {
        for text in [
            "We are 2 adults and 3 kids, arriving 2026-07-10 at 15:30.",
            "From 10.07.2026 to 14/07/2026",
            "Is 120 EUR a night fine? Flight AF1234 lands at 09:45",
            "Our booking bkg_01jh0000000000000000000000 is great",
            "1 000 guests",
            "Room 12, floor 3",
        ] {
            assert_eq!(mask_contacts(text), (text.to_owned(), false), "{text}");
        }
    }

    #[test]
    fn masking_is_total_and_idempotent() {
        let text = "Mail x@y.com or call 06 12 34 56 78";
        let (once, hit) = mask_contacts(text);
        assert!(hit);
        assert_eq!(once, "Mail [email hidden] or call [phone hidden]");
        assert_eq!(mask_contacts(&once), (once.clone(), false));
        assert_eq!(mask_contacts("ünïcödé 😀 @ 😀"), ("ünïcödé 😀 @ 😀".to_owned(), false));
    }

    #[test]
    fn previews_are_short() {
        assert_eq!(preview("short"), "short");
        let long = "x".repeat(150);
        assert_eq!(preview(&long).chars().count(), PREVIEW_CHARS + 1);
    }

    #[test]
    fn send_windows_are_calendar_minutes() {
        let (minute, expires, retry) = send_window("2026-07-10T10:04:45.5Z".parse().unwrap());
        assert_eq!(minute, "2026-07-10T10:04");
        assert_eq!(retry, 15);
        assert_eq!(expires, "2026-07-10T10:06:00Z".parse::<Timestamp>().unwrap().as_second());
        assert_eq!(send_window("2026-07-10T10:04:00Z".parse().unwrap()).2, 60);
        assert_eq!(send_window("2026-07-10T10:04:59.9Z".parse().unwrap()).2, 1);
    }
}
