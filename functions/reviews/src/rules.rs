//! Reviews' rules as plain functions of values: the body checks and the review window.

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use shared::booking::{BookingItem, BookingStatus};
use shared::{ApiError, FieldError};

/// A guest may review from the check-out instant until this long after it.
pub const REVIEW_WINDOW: SignedDuration = SignedDuration::from_hours(14 * 24);
pub const COMMENT_MAX: usize = 2000;

/// `POST /v1/bookings/{id}/review` as sent (read loosely so that every field's error is named
/// at once; the schema is what [`ReviewRequest::check`] accepts).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    /// Stars, 1 to 5.
    #[schema(value_type = u8, required = true, minimum = 1, maximum = 5, examples(5))]
    pub rating: Option<serde_json::Value>,
    /// What the guest says: at most 2,000 characters, not blank (spaces around it are dropped).
    #[schema(value_type = String, required = true, min_length = 1, max_length = 2000, pattern = r"\S", examples("Spotless flat, and the host met us at midnight."))]
    pub comment: Option<serde_json::Value>,
}

/// A checked review body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewBody {
    pub rating: u8,
    pub comment: String,
}

/// `POST /v1/reviews/{id}/response` as sent.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResponseRequest {
    /// The host's answer: at most 2,000 characters, not blank (spaces around it are dropped).
    #[schema(value_type = String, required = true, min_length = 1, max_length = 2000, pattern = r"\S", examples("Thank you, come back in spring!"))]
    pub comment: Option<serde_json::Value>,
}

/// The comment trimmed; its maximum counts it as sent (as the schema's `maxLength` does).
fn comment(raw: Option<&serde_json::Value>, errors: &mut Vec<FieldError>) -> String {
    let sent = raw.and_then(|v| v.as_str());
    if sent.is_some_and(|c| c.chars().count() > COMMENT_MAX) {
        errors.push(FieldError::new("comment", format!("must be at most {COMMENT_MAX} characters")));
        return String::new();
    }
    match sent.map(str::trim) {
        None => {
            errors.push(FieldError::new("comment", "is required (a string)"));
            String::new()
        }
        Some("") => {
            errors.push(FieldError::new("comment", "must not be empty"));
            String::new()
        }
        Some(c) => c.to_owned(),
    }
}

impl ReviewRequest {
    /// Every field's error at once (400 `validation_failed`).
    pub fn check(&self) -> Result<ReviewBody, ApiError> {
        let mut errors = Vec::new();
        let rating = match self.rating.as_ref().and_then(serde_json::Value::as_u64) {
            Some(n @ 1..=5) => n as u8,
            _ => {
                errors.push(FieldError::new("rating", "must be an integer from 1 to 5"));
                0
            }
        };
        let comment = comment(self.comment.as_ref(), &mut errors);
        if errors.is_empty() { Ok(ReviewBody { rating, comment }) } else { Err(ApiError::validation(errors)) }
    }
}

impl ResponseRequest {
    pub fn check(&self) -> Result<String, ApiError> {
        let mut errors = Vec::new();
        let comment = comment(self.comment.as_ref(), &mut errors);
        if errors.is_empty() { Ok(comment) } else { Err(ApiError::validation(errors)) }
    }
}

/// Why a booking cannot be reviewed now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Not (yet) a completed stay: before check-out, unpaid, cancelled, expired.
    NotCompleted,
    /// More than `REVIEW_WINDOW` after check-out.
    WindowClosed,
}

impl From<Closed> for ApiError {
    fn from(c: Closed) -> Self {
        match c {
            Closed::NotCompleted => ApiError::unprocessable(
                "stay_not_completed",
                "A stay can be reviewed once it is completed (after check-out).",
            ),
            Closed::WindowClosed => ApiError::unprocessable(
                "review_window_closed",
                "A stay can be reviewed only within 14 days after check-out.",
            ),
        }
    }
}

/// Whether the booking's guest may review it at `now`: its effective status is `completed` and
/// `now` is before its check-out instant (the listing's time zone and check-out time, as stored
/// in `check_out_at`) plus 14 days.
pub fn review_window(b: &BookingItem, now: Timestamp) -> Result<(), Closed> {
    if b.effective_status(now) != BookingStatus::Completed {
        return Err(Closed::NotCompleted);
    }
    let out: Timestamp = b.check_out_at.parse().map_err(|_| Closed::NotCompleted)?;
    match out.checked_add(REVIEW_WINDOW) {
        Ok(end) if now < end => Ok(()),
        _ => Err(Closed::WindowClosed),
    }
}
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn req(v: serde_json::Value) -> ReviewRequest {
        serde_json::from_value(v).unwrap()
    }

    fn fields(e: ApiError) -> Vec<String> {
        e.problem().map(|p| p.errors.iter().map(|f| f.field.clone()).collect()).unwrap_or_default()
    }

    #[test]
    fn ratings_are_integers_from_one_to_five() {
        for r in 1..=5 {
            let ok = req(json!({"rating": r, "comment": "  Lovely  "})).check().unwrap();
            assert_eq!(ok, ReviewBody { rating: r as u8, comment: "Lovely".to_owned() });
        }
        for bad in [json!(0), json!(6), json!(4.5), json!(-1), json!("5"), json!(null)] {
            let e = req(json!({"rating": bad, "comment": "x"})).check().unwrap_err();
            assert_eq!(fields(e), ["rating"], "{bad}");
        }
        assert_eq!(fields(req(json!({"comment": "x"})).check().unwrap_err()), ["rating"]);
    }

    #[test]
    fn comments_are_one_to_two_thousand_characters() {
        let max = "é".repeat(COMMENT_MAX);
        assert_eq!(req(json!({"rating": 5, "comment": max})).check().unwrap().comment.chars().count(), COMMENT_MAX);
        for bad in [json!(""), json!("   "), json!("é".repeat(COMMENT_MAX + 1)), json!(3)] {
            let e = req(json!({"rating": 5, "comment": bad})).check().unwrap_err();
            assert_eq!(fields(e), ["comment"]);
        }
        assert_eq!(fields(req(json!({})).check().unwrap_err()), ["rating", "comment"]);
        assert!(serde_json::from_value::<ReviewRequest>(json!({"rating": 5, "comment": "x", "x": 1})).is_err());
        let padded = format!(" {max}");
        assert_eq!(fields(req(json!({"rating": 5, "comment": padded})).check().unwrap_err()), ["comment"]);
        let r: ResponseRequest = serde_json::from_value(json!({"comment": " Thanks "})).unwrap();
        assert_eq!(r.check().unwrap(), "Thanks");
        let r: ResponseRequest = serde_json::from_value(json!({})).unwrap();
        assert_eq!(fields(r.check().unwrap_err()), ["comment"]);
    }

    /// A booking of guest `g` on listing `lst_1` (host `h`), checked out at `check_out_at`.
    pub(crate) fn booking(status: BookingStatus, check_out_at: &str) -> BookingItem {
        serde_json::from_value(json!({
            "PK": "BOOKING#bkg_1", "SK": "BOOKING", "type": "booking",
            "GSI1PK": "GUEST#g", "GSI1SK": "BOOKING#bkg_1", "GSI2PK": "HOST#h", "GSI2SK": "BOOKING#bkg_1",
            "booking_id": "bkg_1", "listing_id": "lst_1", "listing_version": 1, "listing_title": "Cabin",
            "guest": {"user_id": "g", "name": "Gina"}, "host": {"user_id": "h", "name": "Hal"},
            "check_in": "2026-07-08", "check_out": "2026-07-10", "nights": 2, "guests": 1,
            "price": {"nightly": [], "subtotal": 0, "cleaning_fee": 0, "service_fee": 0, "total": 0, "currency": "USD"},
            "cancellation_policy": "flexible", "timezone": "Pacific/Auckland",
            "check_in_time": "15:00", "check_out_time": "11:00",
            "address": {"line1": "1 Road", "city": "Town", "country": "NZ"},
            "status": status, "check_out_at": check_out_at,
            "payment": {"status": "succeeded"},
            "created_at": "2026-07-01T00:00:00Z", "updated_at": "2026-07-01T00:00:00Z"
        }))
        .unwrap()
    }

    #[test]
    fn the_window_opens_at_check_out_and_closes_fourteen_days_later() {
        // 11:00 on 2026-07-10 in Auckland is 23:00 UTC the day before.
        let out = "2026-07-09T23:00:00Z";
        let b = booking(BookingStatus::Confirmed, out);
        assert_eq!(review_window(&b, t("2026-07-09T22:59:59Z")), Err(Closed::NotCompleted));
        assert_eq!(review_window(&b, t("2026-07-09T23:00:00Z")), Ok(()));
        assert_eq!(review_window(&b, t("2026-07-23T22:59:59Z")), Ok(()));
        assert_eq!(review_window(&b, t("2026-07-23T23:00:00Z")), Err(Closed::WindowClosed));
        let swept = booking(BookingStatus::Completed, out);
        assert_eq!(review_window(&swept, t("2026-07-10T00:00:00Z")), Ok(()));
        assert_eq!(review_window(&swept, t("2026-08-01T00:00:00Z")), Err(Closed::WindowClosed));
        for never in [BookingStatus::PendingPayment, BookingStatus::Cancelled, BookingStatus::Expired] {
            assert_eq!(review_window(&booking(never, out), t("2026-07-12T00:00:00Z")), Err(Closed::NotCompleted));
        }
        assert_eq!(ApiError::from(Closed::NotCompleted).code(), "stay_not_completed");
        assert_eq!(ApiError::from(Closed::WindowClosed).code(), "review_window_closed");
        assert_eq!(ApiError::from(Closed::WindowClosed).status().as_u16(), 422);
    }
}
