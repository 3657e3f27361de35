//! The reviews context's DynamoDB access: the keys and items it owns, and one function per
//! access pattern with its request count.
//!
//! - **Review item** `REVIEW#<rev id>` / `REVIEW`: found by its id in one GetItem (the host's
//!   response is an `UpdateItem` on it). On GSI1 under `LISTING#<listing id>` / `REVIEW#<rev id>`:
//!   a listing's reviews, newest first (review ids are ULIDs made from the creation time).
//! - **Reviewed mark** `BOOKING#<booking id>` / `REVIEW`: put with `attribute_not_exists(PK)` in
//!   the review's transaction, so a booking has at most one review whatever the races.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use shared::Table;
use shared::booking::{self, BookingItem, BookingStatus, Party};
use shared::events::{Envelope, ReviewPosted, outbox_put};
use shared::keys::Key;
use shared::page::Partition;
use shared::table::{Expr, Item, Page, Query, TableError, TransactError, Transaction};

use crate::rules::ReviewBody;

pub const ID_PREFIX: &str = "rev";
pub const ITEM_TYPE: &str = "review";
pub const MARK_ITEM_TYPE: &str = "review_mark";
pub const SK: &str = "REVIEW";
/// The index of a listing's reviews (shared with other item kinds under other partitions).
pub const LISTING_INDEX: &str = "GSI1";
pub const INDEX_SORT_PREFIX: &str = "REVIEW#";
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

/// The host's answer to a review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HostResponse {
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
    pub response: Option<HostResponse>,
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

/// GetItem of a booking (1 request, strongly consistent).
pub async fn booking(table: &Table, booking_id: &str) -> Result<Option<BookingItem>, TableError> {
    table.get(&booking::key(booking_id)).await
}

/// GetItem of a review (1 request, strongly consistent).
pub async fn review(table: &Table, review_id: &str) -> Result<Option<ReviewItem>, TableError> {
    table.get(&key(review_id)).await
}

/// Why a review's transaction was cancelled.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The booking's reviewed mark exists: it has a review already.
    #[error("the booking has already been reviewed")]
    AlreadyReviewed,
    /// The booking is no longer its guest's confirmed or completed stay.
    #[error("the booking is no longer reviewable")]
    NotReviewable,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// The items of a review's transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostItem {
    Mark,
    Review,
    Booking,
    ListingRating,
    SearchRating,
    Event,
}

/// Posts `review` of `b`: ONE TransactWriteItems (1 request) of 6 items: the reviewed mark (Put,
/// `attribute_not_exists`), the review (Put, new), a ConditionCheck that the booking is still
/// its guest's and confirmed/completed, the listing's and the search item's `ADD` to the
/// rating counters, and the `review.posted` outbox item.
pub async fn post(table: &Table, review: &ReviewItem, b: &BookingItem, now: Timestamp) -> Result<(), PostError> {
    let mark = MarkItem {
        key: mark_key(&b.booking_id),
        item_type: MARK_ITEM_TYPE.to_owned(),
        review_id: review.review_id.clone(),
    };
    let event = Envelope::new(
        ReviewPosted {
            review_id: review.review_id.clone(),
            booking_id: b.booking_id.clone(),
            listing_id: b.listing_id.clone(),
            author_id: b.guest.user_id.clone(),
            host_id: b.host.user_id.clone(),
            rating: review.rating,
        },
        now,
    );
    let still_reviewable = Expr::new("#b_guest.#b_uid = :b_uid AND #b_status IN (:b_confirmed, :b_completed)")
        .name("#b_guest", "guest")
        .name("#b_uid", "user_id")
        .name("#b_status", booking::STATUS_ATTR)
        .s(":b_uid", b.guest.user_id.clone())
        .s(":b_confirmed", BookingStatus::Confirmed.as_str())
        .s(":b_completed", BookingStatus::Completed.as_str());
    let exists = Expr::exists();
    let add_rating = shared::listing::add_rating(review.rating);
    let mut tx = Transaction::new(table);
    tx.put_new(PostItem::Mark, &mark)?;
    tx.put_new(PostItem::Review, review)?;
    tx.check(PostItem::Booking, &booking::key(&b.booking_id), &still_reviewable)?;
    tx.update(PostItem::ListingRating, &shared::listing::key(&b.listing_id), &add_rating, Some(&exists))?;
    tx.update(PostItem::SearchRating, &shared::listing::search_key(&b.listing_id), &add_rating, Some(&exists))?;
    tx.push(PostItem::Event, outbox_put(table, &event).map_err(|e| TableError::from(anyhow::Error::from(e)))?);
    match tx.commit().await {
        Ok(()) => Ok(()),
        Err(TransactError::Conditions(failed)) if failed.contains(&PostItem::Mark) => Err(PostError::AlreadyReviewed),
        Err(TransactError::Conditions(failed)) if failed.contains(&PostItem::Booking) => Err(PostError::NotReviewable),
        Err(e) => Err(TableError::from(e).into()),
    }
}

/// Why a host's response was not written.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// The review has a response already (or its host changed).
    #[error("the review already has a response")]
    AlreadyResponded,
    #[error(transparent)]
    Table(#[from] TableError),
}

/// Adds `response` to the review: 1 UpdateItem conditioned on `attribute_not_exists(response)`
/// and on `host_id` being the responding host.
pub async fn respond(
    table: &Table,
    review_id: &str,
    response: &HostResponse,
    host_id: &str,
) -> Result<(), RespondError> {
    let update = Expr::new("SET #resp = :resp").name("#resp", RESPONSE_ATTR).ser(":resp", response)?;
    let condition = Expr::new("attribute_not_exists(#resp) AND #host = :host")
        .name("#resp", RESPONSE_ATTR)
        .name("#host", "host_id")
        .s(":host", host_id);
    match table.update(&key(review_id), &update, Some(&condition)).await {
        Ok(()) => Ok(()),
        Err(TableError::ConditionFailed) => Err(RespondError::AlreadyResponded),
        Err(e) => Err(e.into()),
    }
}

/// One page of a listing's reviews, newest first: one Query on GSI1
/// (`GSI1PK = LISTING#<id> AND begins_with(GSI1SK, "REVIEW#")`, descending, `Limit = limit`).
pub async fn listing_page(
    table: &Table,
    listing_id: &str,
    limit: u32,
    start: Option<Item>,
) -> Result<Page<ReviewItem>, TableError> {
    let query = Query::begins_with("GSI1PK", listing_partition(listing_id), "GSI1SK", INDEX_SORT_PREFIX)
        .index(LISTING_INDEX)
        .descending()
        .limit(limit)
        .start(start);
    table.query(query).await
}

/// Where a cursor of a listing's reviews may point: a review position in the listing's
/// `partition` of GSI1.
pub fn listing_positions(partition: &str) -> Partition<'_> {
    Partition::index(LISTING_INDEX, partition, INDEX_SORT_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::tests::booking;
    use aws_sdk_dynamodb::types::AttributeValue;
    use shared::page;
    use std::collections::HashMap;

    #[test]
    fn keys_and_the_item() {
        assert_eq!(key("rev_1"), Key::new("REVIEW#rev_1", "REVIEW"));
        assert_eq!(mark_key("bkg_1"), Key::new("BOOKING#bkg_1", "REVIEW"));
        assert_ne!(mark_key("bkg_1"), shared::booking::key("bkg_1"));
        assert_eq!(listing_partition("lst_1"), "LISTING#lst_1");
        let b = booking(BookingStatus::Confirmed, "2026-07-09T23:00:00Z");
        let body = ReviewBody { rating: 4, comment: "Nice".to_owned() };
        let item = ReviewItem::new("rev_1", &b, &body, "2026-07-10T10:00:00.5Z".parse().unwrap());
        assert_eq!(item.gsi1sk, "REVIEW#rev_1");
        assert_eq!(item.host_id, "h");
    }

    #[test]
    fn cursor_positions_must_be_reviews_of_the_listing() {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let good: Item = HashMap::from([
            ("PK".to_owned(), s("REVIEW#rev_1")),
            ("SK".to_owned(), s("REVIEW")),
            ("GSI1PK".to_owned(), s("LISTING#lst_1")),
            ("GSI1SK".to_owned(), s("REVIEW#rev_1")),
        ]);
        let is_position_in = |key: &Item, partition: &str| page::is_position_in(key, &listing_positions(partition));
        assert!(is_position_in(&good, "LISTING#lst_1"));
        assert!(!is_position_in(&good, "LISTING#lst_2"));
        let mut other = good.clone();
        other.insert("GSI1SK".to_owned(), s("BOOKING#x"));
        assert!(!is_position_in(&other, "LISTING#lst_1"));
        let mut extra = good.clone();
        extra.insert("x".to_owned(), s("y"));
        assert!(!is_position_in(&extra, "LISTING#lst_1"));
    }
}
