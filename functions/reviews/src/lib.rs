//! The `reviews` context: a guest reviews a completed stay once, within 14 days of check-out;
//! the listing's host answers once; anyone reads a listing's reviews, newest first.
//!
//! The invariants live in DynamoDB: a review is ONE `TransactWriteItems` (see [`store::post`])
//! whose reviewed mark (`attribute_not_exists`) makes a second review of a booking impossible,
//! and whose `ADD rating_count 1, rating_total <stars>` on the listing (and its search item)
//! cannot lose a count to a concurrent review: `ADD` is applied atomically by DynamoDB on the
//! current value, never computed from a value this code read. A response is an `UpdateItem`
//! conditioned on `attribute_not_exists(response)` ([`store::respond`]).

pub mod handlers;
pub mod rules;
pub mod store;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use shared::cursor::CursorKey;
use shared::{SharedClock, Table};

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub cursors: Arc<CursorKey>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/bookings/{id}/review", post(handlers::post_review))
        .route("/v1/listings/{id}/reviews", get(handlers::list_reviews))
        .route("/v1/reviews/{id}/response", post(handlers::post_response))
        .with_state(state)
}
