//! The `listings` context: hosts publish homes with photos and calendars; anyone reads them and
//! searches by city, dates, guests and price. `router` builds the HTTP surface from an explicit
//! `AppState`; the authorization rule every route follows is in `handlers`.

pub mod handlers;
pub mod photos;
pub mod rules;
pub mod store;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::{delete, get, post, put};
use shared::cursor::CursorKey;
use shared::{SharedClock, Table};

use crate::handlers::{calendar, listings, photos as photo_routes, search};
use crate::photos::PhotoStore;

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub photos: Arc<PhotoStore>,
    pub clock: SharedClock,
    pub cursors: Arc<CursorKey>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/listings", post(listings::create))
        .route("/v1/listings/{id}", get(listings::public).patch(listings::update).delete(listings::archive))
        .route("/v1/me/listings", get(listings::my_list))
        .route("/v1/me/listings/{id}", get(listings::mine))
        .route("/v1/listings/{id}/photos", post(photo_routes::start_upload))
        .route("/v1/listings/{id}/photos/{photo_id}/complete", post(photo_routes::complete_upload))
        .route("/v1/listings/{id}/photos/{photo_id}", delete(photo_routes::delete))
        .route("/v1/listings/{id}/availability", get(calendar::availability))
        .route("/v1/listings/{id}/blocked-dates", put(calendar::change))
        .route("/v1/search", get(search::search))
        .with_state(state)
}

/// This context's part of the OpenAPI document (merged with the others by the `docs` function).
pub fn openapi() -> utoipa::openapi::OpenApi {
    utoipa::openapi::OpenApi::default()
}
