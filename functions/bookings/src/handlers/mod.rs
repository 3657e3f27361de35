//! One function per route of the bookings context, by resource: extract, check the rules
//! (`rules`, `cancellation`), read and write (`store`, `lifecycle`), answer with `views`.

pub mod booking;
pub mod create;
pub mod lists;
pub mod quote;

use shared::booking::BookingItem;
use shared::{ApiError, Caller};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{AppState, store};

/// The routes of this context, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(quote::quote))
        .routes(routes!(create::create_booking))
        .routes(routes!(booking::get_booking))
        .routes(routes!(booking::cancellation_preview))
        .routes(routes!(booking::cancel_booking))
        .routes(routes!(lists::trips))
        .routes(routes!(lists::reservations))
}

type Result<T> = std::result::Result<T, ApiError>;

fn unexpected(e: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Unexpected(e.into())
}

/// The booking `id` if the caller is its guest or its host; 404 for anyone else. One GetItem.
async fn party_booking(st: &AppState, caller: &Caller, id: &str) -> Result<BookingItem> {
    let id = shared::ids::parse_id(shared::booking::ID_PREFIX, id).ok_or_else(ApiError::not_found)?;
    store::booking(&st.table, id).await?.filter(|b| b.is_party(&caller.user_id)).ok_or_else(ApiError::not_found)
}
