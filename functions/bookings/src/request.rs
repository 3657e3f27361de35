//! Request to book: the rules of a host's answer to a request (`POST /v1/bookings/{id}/accept`
//! and `/decline`). Plain functions over the booking as read; `lifecycle::{accept, decline}`
//! write the answer, `handlers::answer` wires them.

use jiff::Timestamp;
use serde::Deserialize;
use shared::ApiError;
use shared::booking::{BookingItem, BookingStatus, PaymentStatus};
use shared::listing::BookingMode;

/// The host's answer to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Accept,
    Decline,
}

/// What an answer does to the booking as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerStep {
    /// Write it (one transaction, conditional on the booking being unchanged since read).
    Apply,
    /// This very answer was given before: answer with the booking as it is (a retried or
    /// repeated call changes nothing, so money and nights move once).
    AlreadyGiven,
}

/// Judges `answer` by `caller` on `b` at `now` (the caller is a party: `party_booking`).
pub fn judge(b: &BookingItem, caller: &str, answer: Answer, now: Timestamp) -> Result<AnswerStep, ApiError> {
    if b.host.user_id != caller {
        return Err(ApiError::forbidden("not_booking_host", "Only the listing's host answers a request."));
    }
    if b.booking_mode != BookingMode::Request {
        return Err(ApiError::conflict(
            "not_a_request",
            "This booking was booked instantly: there is nothing to answer.",
        ));
    }
    let answered = || ApiError::conflict("request_already_answered", "This request was answered already.");
    match (b.effective_status(now), answer) {
        (BookingStatus::Requested, Answer::Accept) if b.payment.status != PaymentStatus::Authorized => {
            Err(ApiError::conflict(
                "payment_not_authorized",
                "The guest's card is not authorised yet; accept once it is (the request tells when).",
            ))
        }
        (BookingStatus::Requested, _) => Ok(AnswerStep::Apply),
        // Accepted before (then maybe completed): the same answer again is the same booking.
        (BookingStatus::Confirmed | BookingStatus::Completed, Answer::Accept) => Ok(AnswerStep::AlreadyGiven),
        (BookingStatus::Declined, Answer::Decline) => Ok(AnswerStep::AlreadyGiven),
        (BookingStatus::Confirmed | BookingStatus::Completed | BookingStatus::Declined, _) => Err(answered()),
        (BookingStatus::Expired, _) => Err(ApiError::conflict(
            "request_expired",
            "The request was not answered within 24 hours: its nights are free again.",
        )),
        (BookingStatus::Cancelled, _) => {
            Err(ApiError::conflict("request_withdrawn", "The guest withdrew this request."))
        }
        (BookingStatus::PendingPayment, _) => {
            Err(ApiError::conflict("not_a_request", "This booking is not a request."))
        }
    }
}

/// Body of `POST /v1/bookings/{id}/decline` (optional: an empty body declines without a message).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DeclineRequest, examples(json!({"message": "Sorry, we have family staying that week."})))]
pub struct DeclineBody {
    /// To the guest, shown on the booking: at most 1000 characters, plain text (spaces around it
    /// are dropped; blank is no message).
    #[schema(max_length = 1000)]
    message: Option<String>,
}

pub const DECLINE_MESSAGE_MAX: usize = 1000;

/// The message a decline carries (trimmed; `None` when the body is empty or the message blank),
/// or 400 naming `message` when it is over `DECLINE_MESSAGE_MAX` characters.
pub fn decline_message(body: &[u8]) -> Result<Option<String>, ApiError> {
    let body: DeclineBody = if body.iter().all(u8::is_ascii_whitespace) {
        DeclineBody::default()
    } else {
        shared::extract::from_json_slice(body)?
    };
    if body.message.as_ref().is_some_and(|m| m.chars().count() > DECLINE_MESSAGE_MAX) {
        return Err(ApiError::invalid_field("message", format!("must be at most {DECLINE_MESSAGE_MAX} characters")));
    }
    Ok(body.message.map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests_support::booking_item_fixture;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn request(status: BookingStatus, payment: PaymentStatus) -> BookingItem {
        let mut b = booking_item_fixture();
        b.booking_mode = BookingMode::Request;
        b.status = status;
        b.payment.status = payment;
        b.hold_expires_at = Some("2026-01-02T10:00:00Z".into());
        b
    }

    #[test]
    fn only_the_host_answers_and_accepting_needs_the_authorised_card() {
        let now = at("2026-01-01T12:00:00Z");
        let b = request(BookingStatus::Requested, PaymentStatus::Authorized);
        let host = b.host.user_id.clone();
        assert_eq!(judge(&b, &host, Answer::Accept, now).unwrap(), AnswerStep::Apply);
        assert_eq!(judge(&b, &host, Answer::Decline, now).unwrap(), AnswerStep::Apply);
        assert_eq!(judge(&b, &b.guest.user_id, Answer::Accept, now).unwrap_err().code(), "not_booking_host");
        for unpaid in [PaymentStatus::Unpaid, PaymentStatus::Processing, PaymentStatus::Failed] {
            let b = request(BookingStatus::Requested, unpaid);
            assert_eq!(judge(&b, &host, Answer::Accept, now).unwrap_err().code(), "payment_not_authorized");
            // A request whose guest never authorised the card can still be declined.
            assert_eq!(judge(&b, &host, Answer::Decline, now).unwrap(), AnswerStep::Apply);
        }
    }

    #[test]
    fn the_same_answer_again_changes_nothing_and_another_answer_is_refused() {
        let now = at("2026-01-01T12:00:00Z");
        let accepted = request(BookingStatus::Confirmed, PaymentStatus::Succeeded);
        let host = accepted.host.user_id.clone();
        assert_eq!(judge(&accepted, &host, Answer::Accept, now).unwrap(), AnswerStep::AlreadyGiven);
        assert_eq!(judge(&accepted, &host, Answer::Decline, now).unwrap_err().code(), "request_already_answered");
        let declined = request(BookingStatus::Declined, PaymentStatus::Authorized);
        assert_eq!(judge(&declined, &host, Answer::Decline, now).unwrap(), AnswerStep::AlreadyGiven);
        assert_eq!(judge(&declined, &host, Answer::Accept, now).unwrap_err().code(), "request_already_answered");
        let withdrawn = request(BookingStatus::Cancelled, PaymentStatus::Authorized);
        assert_eq!(judge(&withdrawn, &host, Answer::Accept, now).unwrap_err().code(), "request_withdrawn");
    }

    #[test]
    fn a_request_unanswered_for_24_hours_is_expired_and_an_instant_booking_is_no_request() {
        let b = request(BookingStatus::Requested, PaymentStatus::Authorized);
        let host = b.host.user_id.clone();
        let late = at("2026-01-02T10:00:00Z");
        assert_eq!(judge(&b, &host, Answer::Accept, late).unwrap_err().code(), "request_expired");
        let mut instant = b.clone();
        instant.booking_mode = BookingMode::Instant;
        assert_eq!(
            judge(&instant, &host, Answer::Accept, at("2026-01-01T12:00:00Z")).unwrap_err().code(),
            "not_a_request"
        );
    }

    #[test]
    fn a_decline_message_is_optional_trimmed_and_bounded() {
        assert_eq!(decline_message(b"").unwrap(), None);
        assert_eq!(decline_message(br#"{"message": "  "}"#).unwrap(), None);
        assert_eq!(decline_message(br#"{"message": " Sorry! "}"#).unwrap().as_deref(), Some("Sorry!"));
        let long = format!(r#"{{"message": "{}"}}"#, "x".repeat(DECLINE_MESSAGE_MAX + 1));
        assert_eq!(decline_message(long.as_bytes()).unwrap_err().status(), axum::http::StatusCode::BAD_REQUEST);
        assert!(decline_message(br#"{"note": "x"}"#).is_err());
    }
}
