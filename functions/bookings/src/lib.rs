//! The `bookings` context: quotes computed on the server, bookings that hold their nights in one
//! transaction, `Idempotency-Key` on booking, the views (one booking, a guest's trips, a host's
//! reservations), cancellation, a host's answer to a request (`request`), and the sweep (`src/bin/bookings-sweep.rs`) that writes the
//! statuses time changed. `router` builds the HTTP surface from an explicit `AppState`.
//!
//! The invariants live in DynamoDB, not here: a booking is ONE `TransactWriteItems` (see
//! `store::create`) whose conditions make a double booking, a booking of a changed or archived
//! listing, and a duplicate of an idempotent request impossible; this code only maps which item
//! failed to the answer.

pub mod cancellation;
pub mod handlers;
pub mod lifecycle;
pub mod request;
pub mod rules;
pub mod store;
pub mod views;

use std::sync::Arc;

use axum::Router;
use jiff::SignedDuration;
use shared::cursor::CursorKey;
use shared::{SharedClock, Table};

/// The route an `Idempotency-Key` on a booking is scoped to.
pub const BOOKINGS_ROUTE: &str = "POST /v1/bookings";

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub cursors: Arc<CursorKey>,
    /// How long a new booking holds its nights waiting for payment (`HOLD_MINUTES`).
    pub hold: SignedDuration,
    /// The platform fee on the host's part, in basis points (`PLATFORM_FEE_BASIS_POINTS`),
    /// fixed on each new booking's payout (`shared::payout`).
    pub platform_fee_basis_points: u32,
}

pub fn router(state: AppState) -> Router {
    let (router, _) = handlers::routes().split_for_parts();
    router.with_state(state)
}

/// This context's part of the OpenAPI document (merged with the others by the `docs` function).
pub fn openapi() -> utoipa::openapi::OpenApi {
    handlers::routes().into_openapi()
}
