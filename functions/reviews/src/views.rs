//! What the reviews routes answer: the review as API.md shows it (a page of them is
//! `shared::page::ListBody`).

use serde::Serialize;
use shared::booking::Party;

use crate::store::{HostResponse, ReviewItem};

/// The API's review.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Review)]
pub struct ReviewView {
    pub review_id: String,
    pub booking_id: String,
    pub listing_id: String,
    pub author: Party,
    pub rating: u8,
    pub comment: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub response: Option<HostResponse>,
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
    use crate::rules::ReviewBody;
    use crate::rules::tests::booking;
    use serde_json::json;
    use shared::booking::BookingStatus;

    #[test]
    fn the_view_shows_the_author_and_hides_the_host() {
        let b = booking(BookingStatus::Confirmed, "2026-07-09T23:00:00Z");
        let body = ReviewBody { rating: 4, comment: "Nice".to_owned() };
        let item = ReviewItem::new("rev_1", &b, &body, "2026-07-10T10:00:00.5Z".parse().unwrap());
        let view = serde_json::to_value(ReviewView::from(item)).unwrap();
        assert_eq!(view["author"], json!({"user_id": "g", "name": "Gina"}));
        assert_eq!(view["created_at"], "2026-07-10T10:00:00Z");
        assert!(view.get("response").is_none() && view.get("host_id").is_none());
    }
}
