//! The `listings` context: hosts publish homes with photos and calendars; anyone reads them and
//! searches by city, dates, guests and price. `router` builds the HTTP surface from an explicit
//! `AppState`; the authorization rule every route follows is in `handlers`.

pub mod feeds;
pub mod handlers;
pub mod ical;
pub mod photos;
pub mod rules;
pub mod store;
pub mod sync;
pub mod views;

use std::sync::Arc;

use axum::Router;
use shared::cursor::CursorKey;
use shared::{SharedClock, Table};

use crate::photos::PhotoStore;

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub photos: Arc<PhotoStore>,
    pub clock: SharedClock,
    pub cursors: Arc<CursorKey>,
    /// Calendar imports may name `http` feeds on loopback (the local stack only:
    /// `feeds::ALLOW_LOOPBACK_ENV`).
    pub allow_loopback_feeds: bool,
    /// A host may publish only once their payout account can receive transfers
    /// (`PAYOUT_ACCOUNT_REQUIRED_TO_PUBLISH`, per stage; docs/payments.md, "Payouts").
    pub payout_account_required: bool,
}

/// What the scheduled calendar sync needs (`src/bin/calendar-sync.rs`).
#[derive(Clone)]
pub struct SyncState {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub fetcher: Arc<feeds::FeedFetcher>,
}

pub fn router(state: AppState) -> Router {
    let (router, _) = handlers::routes().split_for_parts();
    router.with_state(state)
}

/// This context's part of the OpenAPI document (merged with the others by the `docs` function).
pub fn openapi() -> utoipa::openapi::OpenApi {
    handlers::routes().into_openapi()
}
