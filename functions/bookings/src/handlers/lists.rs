//! The caller's lists: `GET /v1/me/trips` and `GET /v1/me/reservations`.

use axum::extract::State;
use axum::response::IntoResponse;
use serde::Deserialize;
use shared::booking::BookingStatus;
use shared::cursor::CursorScope;
use shared::extract::{Json, Query};
use shared::openapi::PageParams;
use shared::page::{self, ListBody};
use shared::{ApiError, Caller};

use super::Result;
use crate::views::{self, BookingView, Viewer};
use crate::{AppState, store};

/// The query of `GET /v1/me/trips` (the page's `limit` and `cursor`: `PageParams`).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TripsParams {
    /// Only the bookings with this (effective) status.
    #[param(inline)]
    pub status: Option<BookingStatus>,
    #[param(ignore)]
    pub limit: Option<u32>,
    #[param(ignore)]
    pub cursor: Option<String>,
}

/// GET /v1/me/trips: the caller's bookings as guest, newest first; `status` filters on the
/// effective status. One Query on GSI1 per page.
#[utoipa::path(get, path = "/v1/me/trips", tag = "bookings", operation_id = "list_trips",
    summary = "The caller's trips: their bookings as guest, newest first",
    params(TripsParams, PageParams),
    responses(
        (status = 200, description = "One page of bookings (a page may hold fewer than `limit` items while `next_cursor` is not null).", body = ListBody<BookingView>),
        (status = 400, description = "invalid_cursor"),
    ),
    security(("cognito" = [])))]
pub async fn trips(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<TripsParams>,
) -> Result<impl IntoResponse> {
    Ok(Json(trips_page(&st, &caller, &p).await?))
}

/// One page of the caller's trips (GraphQL's `me.trips` too: the same signed cursors).
pub async fn trips_page(st: &AppState, caller: &Caller, p: &TripsParams) -> Result<ListBody<BookingView>> {
    let limit = page::parse_limit(p.limit)?;
    let filters = [("status", p.status.map(|s| s.as_str().to_owned()).unwrap_or_default())];
    let scope = CursorScope { route: "/v1/me/trips", caller: Some(&caller.user_id), filters: &filters };
    let partition = shared::booking::guest_partition(&caller.user_id);
    let start = page::open_cursor(&st.cursors, p.cursor.as_deref(), &scope, &store::trip_positions(&partition))?;
    let now = st.clock.now();
    let found = store::trips_page(&st.table, &caller.user_id, p.status, limit, start, now).await?;
    let items = found
        .items
        .iter()
        .filter(|b| p.status.is_none_or(|s| b.effective_status(now) == s))
        .map(|b| views::booking(b, Viewer::Guest, now))
        .collect();
    ListBody::sealed(items, &st.cursors, &scope, found.last_key.as_ref())
}

/// The query of `GET /v1/me/reservations` (the page's `limit` and `cursor`: `PageParams`).
#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReservationsParams {
    /// Only the bookings of this listing of the caller's (`lst_` + a lowercase ULID).
    #[param(pattern = "^lst_[0-7][0-9a-hjkmnp-tv-z]{25}$")]
    pub listing_id: Option<String>,
    /// Only the bookings with this (effective) status: `requested` lists the requests waiting
    /// for the caller's answer.
    #[param(inline)]
    pub status: Option<BookingStatus>,
    #[param(ignore)]
    pub limit: Option<u32>,
    #[param(ignore)]
    pub cursor: Option<String>,
}

/// GET /v1/me/reservations: bookings on the caller's listings (all, or one listing; all
/// statuses, or one), newest first. Hosts only. One Query on GSI2 per page.
#[utoipa::path(get, path = "/v1/me/reservations", tag = "bookings", operation_id = "list_reservations",
    summary = "The caller's reservations: bookings of their listings, newest first (hosts)",
    params(ReservationsParams, PageParams),
    responses(
        (status = 200, description = "One page of bookings, as their host sees them.", body = ListBody<BookingView>),
        (status = 400, description = "invalid_cursor"),
        (status = 403, description = "host_required"),
    ),
    security(("cognito" = [])))]
pub async fn reservations(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<ReservationsParams>,
) -> Result<impl IntoResponse> {
    Ok(Json(reservations_page(&st, &caller, &p).await?))
}

/// One page of the caller's reservations (GraphQL's `me.reservations` too).
pub async fn reservations_page(
    st: &AppState,
    caller: &Caller,
    p: &ReservationsParams,
) -> Result<ListBody<BookingView>> {
    caller.require_host()?;
    let limit = page::parse_limit(p.limit)?;
    let listing_id = match p.listing_id.as_deref() {
        Some(raw) => Some(
            shared::ids::parse_id("lst", raw)
                .ok_or_else(|| ApiError::invalid_field("listing_id", "must be a listing id such as lst_01jh..."))?,
        ),
        None => None,
    };
    let filters = [
        ("listing_id", listing_id.unwrap_or_default().to_owned()),
        ("status", p.status.map(|s| s.as_str().to_owned()).unwrap_or_default()),
    ];
    let scope = CursorScope { route: "/v1/me/reservations", caller: Some(&caller.user_id), filters: &filters };
    let partition = shared::booking::host_partition(&caller.user_id);
    let start = page::open_cursor(&st.cursors, p.cursor.as_deref(), &scope, &store::reservation_positions(&partition))?;
    let now = st.clock.now();
    let found = store::reservations_page(&st.table, &caller.user_id, listing_id, p.status, limit, start, now).await?;
    let items: Vec<BookingView> = found
        .items
        .iter()
        .filter(|b| p.status.is_none_or(|s| b.effective_status(now) == s))
        .map(|b| views::booking(b, Viewer::Host, now))
        .collect();
    ListBody::sealed(items, &st.cursors, &scope, found.last_key.as_ref())
}
