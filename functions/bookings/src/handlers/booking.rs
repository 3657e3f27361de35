//! One booking: `GET /v1/bookings/{id}`, its cancellation preview and its cancellation.

use axum::extract::State;
use shared::extract::{Json, Path};
use shared::metrics::Business;
use shared::payout::PayoutView;
use shared::{ApiError, Caller};

use super::{Result, party_booking};
use crate::AppState;
use crate::cancellation::{self, CancelBody};
use crate::lifecycle::{self, ChangeError};
use crate::store;
use crate::views::{self, BookingView, PreviewView, Viewer};

/// GET /v1/bookings/{id}: its guest or its host; 404 to anyone else. One GetItem.
#[utoipa::path(get, path = "/v1/bookings/{id}", tag = "bookings",
    summary = "One booking (its guest or its host)",
    params(("id" = String, Path, description = "The booking's id (`bkg_` + a lowercase ULID).")),
    responses(
        (status = 200, description = "The booking, as the caller (its guest or its host) sees it.", body = BookingView),
        (status = 404, description = "not_found"),
    ),
    security(("cognito" = [])))]
pub async fn get_booking(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<BookingView>> {
    Ok(Json(booking_for(&st, &caller, &id).await?))
}

/// The booking as `caller` sees it, its guest or its host; 404 to anyone else (GraphQL's
/// `booking` too).
pub async fn booking_for(st: &AppState, caller: &Caller, id: &str) -> Result<BookingView> {
    let id = shared::ids::parse_id(shared::booking::ID_PREFIX, id).ok_or_else(ApiError::not_found)?;
    let (b, payout) = store::booking_with_payout(&st.table, id)
        .await?
        .filter(|(b, _)| b.is_party(&caller.user_id))
        .ok_or_else(ApiError::not_found)?;
    let viewer = Viewer::of(&b, &caller.user_id);
    let mut view = views::booking(&b, viewer, st.clock.now());
    // The payout is the host's business: the guest never sees it.
    if viewer == Viewer::Host {
        view.payout = payout.as_ref().map(PayoutView::from);
    }
    Ok(view)
}

/// GET /v1/bookings/{id}/cancellation: what cancelling now would refund (1 GetItem).
#[utoipa::path(get, path = "/v1/bookings/{id}/cancellation", tag = "bookings", operation_id = "preview_cancellation",
    summary = "What cancelling the booking now would refund (its guest or its host)",
    params(("id" = String, Path, description = "The booking's id (`bkg_` + a lowercase ULID).")),
    responses(
        (status = 200, description = "The refund a cancellation by the caller would give now.", body = PreviewView),
        (status = 404, description = "not_found"),
        (status = 409, description = "already_cancelled, booking_not_cancellable, stay_started"),
    ),
    security(("cognito" = [])))]
pub async fn cancellation_preview(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<PreviewView>> {
    let b = party_booking(&st, &caller, &id).await?;
    let (_, decision) = cancellation::decide_for_booking(&b, &caller.user_id, st.clock.now())?;
    Ok(Json(views::preview(&b, &decision)))
}

/// POST /v1/bookings/{id}/cancel: by its guest (per the policy it was sold under) or its host
/// (100 %). The body (`{reason?}`) is optional. 1 GetItem + 1 Query + 1 TransactWriteItems;
/// if the booking changed in between (paid, swept, cancelled by the other party) it is read and
/// judged again.
// The body is optional: `handlers::routes` marks it so in the document.
#[utoipa::path(post, path = "/v1/bookings/{id}/cancel", tag = "bookings",
    summary = "Cancel a booking (its guest, per its policy; its host, 100 % refund)",
    params(("id" = String, Path, description = "The booking's id (`bkg_` + a lowercase ULID).")),
    request_body(content = CancelBody, description = "Optional: an empty body cancels without a reason."),
    responses(
        (status = 200, description = "The booking, `cancelled`, with its `cancellation` and `refund`.", body = BookingView),
        (status = 404, description = "not_found"),
        (status = 409, description = "already_cancelled, booking_not_cancellable, stay_started, conflict"),
    ),
    security(("cognito" = [])))]
pub async fn cancel_booking(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<BookingView>> {
    let reason = cancellation::reason(&body)?;
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        let b = party_booking(&st, &caller, &id).await?;
        let now = st.clock.now();
        let (by, decision) = cancellation::decide_for_booking(&b, &caller.user_id, now)?;
        match lifecycle::cancel(&st.table, &b, by, &decision, reason.clone(), now).await {
            Ok(done) => {
                shared::metrics::count(Business::BookingsCancelled);
                return Ok(Json(views::booking(&done, Viewer::of(&done, &caller.user_id), now)));
            }
            Err(ChangeError::Changed) => {}
            Err(ChangeError::Table(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("conflict", "The booking is changing right now; try again."))
}
