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
    let (router, _) = handlers::routes().split_for_parts();
    router.with_state(state)
}

/// This context's part of the OpenAPI document (merged with the others by the `docs` function).
pub fn openapi() -> utoipa::openapi::OpenApi {
    handlers::routes().into_openapi()
}
