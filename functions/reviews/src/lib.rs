//! The `reviews` context: a guest reviews a completed stay once, within 14 days of check-out;
//! the listing's host answers once; anyone reads a listing's reviews, newest first.
//!
//! The invariants live in DynamoDB: a review is ONE `TransactWriteItems` (see [`post_review`])
//! whose reviewed mark (`attribute_not_exists`) makes a second review of a booking impossible,
//! and whose `ADD rating_count 1, rating_total <stars>` on the listing (and its search item)
//! cannot lose a count to a concurrent review: `ADD` is applied atomically by DynamoDB on the
//! current value, never computed from a value this code read. A response is an `UpdateItem`
//! conditioned on `attribute_not_exists(response)`.

pub mod domain;

use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use shared::booking::{BookingItem, BookingStatus};
use shared::cursor::{CursorKey, CursorScope};
use shared::events::{Envelope, ReviewPosted, outbox_put};
use shared::extract::{Json, Path, Query};
use shared::keys::{PK, SK};
use shared::table::{Expr, Item, TableError};
use shared::{ApiError, Caller, SharedClock, Table};

use crate::domain::{MarkItem, ResponseRequest, ReviewItem, ReviewRequest, ReviewView};

pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_LIMIT: u32 = 100;
const LIST_ROUTE: &str = "/v1/listings/{id}/reviews";

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub cursors: Arc<CursorKey>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/bookings/{id}/review", post(post_review))
        .route("/v1/listings/{id}/reviews", get(list_reviews))
        .route("/v1/reviews/{id}/response", post(post_response))
        .with_state(state)
}

type Result<T> = std::result::Result<T, ApiError>;

fn unexpected(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Unexpected(e.into())
}

fn already_reviewed() -> ApiError {
    ApiError::conflict("already_reviewed", "This stay has already been reviewed.")
}

/// The transaction's items, in this order (cancellation reasons are indexed by it).
const TX_MARK: usize = 0;
const TX_BOOKING: usize = 2;

/// POST /v1/bookings/{id}/review: its guest only (404 to anyone else). 1 GetItem (booking) +
/// 1 TransactWriteItems of 6: the reviewed mark (Put, `attribute_not_exists`), the review (Put,
/// new), a ConditionCheck that the booking is still its guest's and confirmed/completed, the
/// listing's and the search item's `ADD` to the rating counters, and the `review.posted` outbox
/// item.
async fn post_review(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ReviewRequest>,
) -> Result<Response> {
    let id = shared::ids::parse_id(shared::booking::ID_PREFIX, &id).ok_or_else(ApiError::not_found)?;
    let body = body.check()?;
    let booking: BookingItem = st
        .table
        .get(&shared::booking::key(id))
        .await?
        .filter(|b: &BookingItem| b.guest.user_id == caller.user_id)
        .ok_or_else(ApiError::not_found)?;
    let now = st.clock.now();
    domain::review_window(&booking, now)?;
    let review_id = shared::ids::new_id_at(domain::ID_PREFIX, now);
    let item = ReviewItem::new(&review_id, &booking, &body, now);
    let mark = MarkItem {
        key: domain::mark_key(&booking.booking_id),
        item_type: domain::MARK_ITEM_TYPE.to_owned(),
        review_id: review_id.clone(),
    };
    let event = Envelope::new(
        ReviewPosted {
            review_id: review_id.clone(),
            booking_id: booking.booking_id.clone(),
            listing_id: booking.listing_id.clone(),
            author_id: booking.guest.user_id.clone(),
            host_id: booking.host.user_id.clone(),
            rating: body.rating,
        },
        now,
    );
    let still_reviewable = Expr::new("#b_guest.#b_uid = :b_uid AND #b_status IN (:b_confirmed, :b_completed)")
        .name("#b_guest", "guest")
        .name("#b_uid", "user_id")
        .name("#b_status", shared::booking::STATUS_ATTR)
        .s(":b_uid", caller.user_id.clone())
        .s(":b_confirmed", BookingStatus::Confirmed.as_str())
        .s(":b_completed", BookingStatus::Completed.as_str());
    let exists = Expr::exists();
    let t = &st.table;
    let items = vec![
        t.tx_put_new(&mark)?,
        t.tx_put_new(&item)?,
        t.tx_check(&shared::booking::key(&booking.booking_id), &still_reviewable)?,
        t.tx_update(
            &shared::listing::key(&booking.listing_id),
            &shared::listing::add_rating(body.rating),
            Some(&exists),
        )?,
        t.tx_update(
            &shared::listing::search_key(&booking.listing_id),
            &shared::listing::add_rating(body.rating),
            Some(&exists),
        )?,
        outbox_put(t, &event).map_err(unexpected)?,
    ];
    match t.transact(items).await {
        Ok(()) => {}
        Err(e @ TableError::TransactionCancelled { .. }) => {
            let failed = e.failed_items();
            return Err(if failed.contains(&TX_MARK) {
                already_reviewed()
            } else if failed.contains(&TX_BOOKING) {
                domain::Closed::NotCompleted.into()
            } else {
                e.into()
            });
        }
        Err(e) => return Err(e.into()),
    }
    let mut res = (StatusCode::CREATED, Json(ReviewView::from(item))).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/reviews/{review_id}")) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    Ok(res)
}

/// POST /v1/reviews/{id}/response: the host of the reviewed listing, once. 1 GetItem (review)
/// and 1 UpdateItem conditioned on `attribute_not_exists(response)`: 2 requests. 404 for an
/// unknown review, 403 `not_listing_host` for anyone but its host, 409 `already_responded`.
async fn post_response(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(body): Json<ResponseRequest>,
) -> Result<Json<ReviewView>> {
    let id = shared::ids::parse_id(domain::ID_PREFIX, &id).ok_or_else(ApiError::not_found)?;
    let comment = body.check()?;
    let key = domain::key(id);
    let mut review: ReviewItem = st.table.get(&key).await?.ok_or_else(ApiError::not_found)?;
    if review.host_id != caller.user_id {
        return Err(ApiError::forbidden(
            "not_listing_host",
            "Only the host of the listing can respond to its reviews.",
        ));
    }
    if review.response.is_some() {
        return Err(already_responded());
    }
    let response = domain::Response { comment, created_at: shared::night::instant(st.clock.now()) };
    let update = Expr::new("SET #resp = :resp").name("#resp", domain::RESPONSE_ATTR).ser(":resp", &response)?;
    let condition = Expr::new("attribute_not_exists(#resp) AND #host = :host")
        .name("#resp", domain::RESPONSE_ATTR)
        .name("#host", "host_id")
        .s(":host", caller.user_id.clone());
    match st.table.update(&key, &update, Some(&condition)).await {
        Ok(()) => {}
        Err(TableError::ConditionFailed) => return Err(already_responded()),
        Err(e) => return Err(e.into()),
    }
    review.response = Some(response);
    Ok(Json(review.into()))
}

fn already_responded() -> ApiError {
    ApiError::conflict("already_responded", "The host has already responded to this review.")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    limit: Option<u32>,
    cursor: Option<String>,
}

#[derive(Serialize)]
struct ListBody<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

/// GET /v1/listings/{id}/reviews: anyone; newest first. One Query on GSI1 per page
/// (`GSI1PK = LISTING#<id> AND begins_with(GSI1SK, "REVIEW#")`, descending, `Limit = limit`);
/// the cursor is sealed over the route and the listing. An unknown listing has no reviews.
async fn list_reviews(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<ListParams>,
) -> Result<impl IntoResponse> {
    let listing_id = shared::ids::parse_id("lst", &id).ok_or_else(ApiError::not_found)?;
    let limit = match p.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => return Err(ApiError::invalid_field("limit", format!("must be 1 to {MAX_LIMIT}"))),
    };
    let filters = [("listing_id", listing_id.to_owned())];
    let scope = CursorScope { route: LIST_ROUTE, caller: None, filters: &filters };
    let partition = domain::listing_partition(listing_id);
    let start = match p.cursor.as_deref() {
        None => None,
        Some(c) => {
            let key = st.cursors.open_key(c, &scope)?;
            if !is_position_in(&key, &partition) {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_cursor",
                    "The cursor is invalid for this request.",
                )
                .with_field("cursor", "invalid cursor"));
            }
            Some(key)
        }
    };
    let query = shared::table::Query::begins_with("GSI1PK", partition, "GSI1SK", domain::INDEX_SORT_PREFIX)
        .index(domain::LISTING_INDEX)
        .descending()
        .limit(limit)
        .start(start);
    let page = st.table.query::<ReviewItem>(query).await?;
    let items: Vec<ReviewView> = page.items.into_iter().map(ReviewView::from).collect();
    Ok(Json(ListBody { items, next_cursor: st.cursors.seal_key(&scope, page.last_key.as_ref())? }))
}

/// A cursor's key must be a review position in this listing's partition of GSI1.
fn is_position_in(key: &Item, partition: &str) -> bool {
    let is_s = |a: &str| matches!(key.get(a), Some(AttributeValue::S(_)));
    key.len() == 4
        && is_s(PK)
        && is_s(SK)
        && matches!(key.get("GSI1SK"), Some(AttributeValue::S(s)) if s.starts_with(domain::INDEX_SORT_PREFIX))
        && key.get("GSI1PK") == Some(&AttributeValue::S(partition.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn cursor_positions_must_be_reviews_of_the_listing() {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        let good: Item = HashMap::from([
            ("PK".to_owned(), s("REVIEW#rev_1")),
            ("SK".to_owned(), s("REVIEW")),
            ("GSI1PK".to_owned(), s("LISTING#lst_1")),
            ("GSI1SK".to_owned(), s("REVIEW#rev_1")),
        ]);
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
