//! Reviews' rules and items, free of I/O: the body checks, the review window, the keys.
//!
//! - **Review item** `REVIEW#<rev id>` / `REVIEW`: found by its id in one GetItem (the host's
//!   response is an `UpdateItem` on it). On GSI1 under `LISTING#<listing id>` / `REVIEW#<rev id>`:
//!   a listing's reviews, newest first (review ids are ULIDs made from the creation time).
//! - **Reviewed mark** `BOOKING#<booking id>` / `REVIEW`: put with `attribute_not_exists(PK)` in
//!   the review's transaction, so a booking has at most one review whatever the races.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use shared::booking::{BookingItem, BookingStatus, Party};
use shared::keys::Key;
use shared::{ApiError, FieldError};

pub const ID_PREFIX: &str = "rev";
pub const ITEM_TYPE: &str = "review";
pub const MARK_ITEM_TYPE: &str = "review_mark";
pub const SK: &str = "REVIEW";
/// The index of a listing's reviews (shared with other item kinds under other partitions).
pub const LISTING_INDEX: &str = "GSI1";
pub const INDEX_SORT_PREFIX: &str = "REVIEW#";
/// A guest may review from the check-out instant until this long after it.
pub const REVIEW_WINDOW: SignedDuration = SignedDuration::from_hours(14 * 24);
pub const COMMENT_MAX: usize = 2000;
pub const RESPONSE_ATTR: &str = "response";

/// `REVIEW#<id>` / `REVIEW`.
pub fn key(review_id: &str) -> Key {
    Key::new(format!("REVIEW#{review_id}"), SK)
}

/// `BOOKING#<booking id>` / `REVIEW`: the booking's "reviewed" mark.
pub fn mark_key(booking_id: &str) -> Key {
    Key::new(format!("BOOKING#{booking_id}"), SK)
}

/// GSI1 partition of a listing's reviews: `LISTING#<listing id>`.
pub fn listing_partition(listing_id: &str) -> String {
    shared::listing::pk(listing_id)
}

pub fn index_sort_key(review_id: &str) -> String {
    format!("{INDEX_SORT_PREFIX}{review_id}")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub comment: String,
    pub created_at: String,
}

/// The review item (`key(id)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    #[serde(rename = "PK")]
    pub pk: String,
    #[serde(rename = "SK")]
    pub sk: String,
    #[serde(rename = "type")]
    pub item_type: String,
    #[serde(rename = "GSI1PK")]
    pub gsi1pk: String,
    #[serde(rename = "GSI1SK")]
    pub gsi1sk: String,
    pub review_id: String,
    pub booking_id: String,
    pub listing_id: String,
    /// The listing's host (from the booking): the only one who may respond.
    pub host_id: String,
    /// The guest, with the public name the booking snapshotted (never the e-mail).
    pub author: Party,
    pub rating: u8,
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
    pub created_at: String,
}

impl ReviewItem {
    pub fn new(review_id: &str, booking: &BookingItem, body: &ReviewBody, now: Timestamp) -> Self {
        Self {
            pk: key(review_id).pk,
            sk: SK.to_owned(),
            item_type: ITEM_TYPE.to_owned(),
            gsi1pk: listing_partition(&booking.listing_id),
            gsi1sk: index_sort_key(review_id),
            review_id: review_id.to_owned(),
            booking_id: booking.booking_id.clone(),
            listing_id: booking.listing_id.clone(),
            host_id: booking.host.user_id.clone(),
            author: booking.guest.clone(),
            rating: body.rating,
            comment: body.comment.clone(),
            response: None,
            created_at: shared::night::instant(now),
        }
    }
}

/// The reviewed mark (`mark_key(booking id)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkItem {
    #[serde(flatten)]
    pub key: Key,
    #[serde(rename = "type")]
    pub item_type: String,
    pub review_id: String,
}

/// `POST /v1/bookings/{id}/review` as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub rating: Option<serde_json::Value>,
    pub comment: Option<serde_json::Value>,
}

/// A checked review body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewBody {
    pub rating: u8,
    pub comment: String,
}

/// `POST /v1/reviews/{id}/response` as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseRequest {
    pub comment: Option<serde_json::Value>,
}

fn comment(raw: Option<&serde_json::Value>, errors: &mut Vec<FieldError>) -> String {
    match raw.and_then(|v| v.as_str()).map(str::trim) {
        None => {
            errors.push(FieldError::new("comment", "is required (a string)"));
            String::new()
        }
        Some("") => {
            errors.push(FieldError::new("comment", "must not be empty"));
            String::new()
        }
        Some(c) if c.chars().count() > COMMENT_MAX => {
            errors.push(FieldError::new("comment", format!("must be at most {COMMENT_MAX} characters")));
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

/// The API's review.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewView {
    pub review_id: String,
    pub booking_id: String,
    pub listing_id: String,
    pub author: Party,
    pub rating: u8,
    pub comment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
    pub created_at: String,
}

impl From<ReviewItem> for ReviewView {
    fn from(r: ReviewItem) -> Self {
        Self {
            review_id: r.review_id,
            booking_id: r.booking_id,
            listing_id: r.listing_id,
            author: r.author,
            rating: r.rating,
            comment: r.comment,
            response: r.response,
            created_at: r.created_at,
        }
    }
}

#[cfg(test)]
mod tests {
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
        let r: ResponseRequest = serde_json::from_value(json!({"comment": " Thanks "})).unwrap();
        assert_eq!(r.check().unwrap(), "Thanks");
        let r: ResponseRequest = serde_json::from_value(json!({})).unwrap();
        assert_eq!(fields(r.check().unwrap_err()), ["comment"]);
    }

    fn booking(status: BookingStatus, check_out_at: &str) -> BookingItem {
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

    #[test]
    fn keys_and_the_view() {
        assert_eq!(key("rev_1"), Key::new("REVIEW#rev_1", "REVIEW"));
        assert_eq!(mark_key("bkg_1"), Key::new("BOOKING#bkg_1", "REVIEW"));
        assert_ne!(mark_key("bkg_1"), shared::booking::key("bkg_1"));
        assert_eq!(listing_partition("lst_1"), "LISTING#lst_1");
        let b = booking(BookingStatus::Confirmed, "2026-07-09T23:00:00Z");
        let body = ReviewBody { rating: 4, comment: "Nice".to_owned() };
        let item = ReviewItem::new("rev_1", &b, &body, t("2026-07-10T10:00:00.5Z"));
        assert_eq!(item.gsi1sk, "REVIEW#rev_1");
        assert_eq!(item.host_id, "h");
        let view = serde_json::to_value(ReviewView::from(item)).unwrap();
        assert_eq!(view["author"], json!({"user_id": "g", "name": "Gina"}));
        assert_eq!(view["created_at"], "2026-07-10T10:00:00Z");
        assert!(view.get("response").is_none() && view.get("host_id").is_none());
    }
}
