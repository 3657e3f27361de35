//! A host's answer to a request to book: `POST /v1/bookings/{id}/accept` and `/decline`.

use axum::extract::State;
use shared::extract::{Json, Path};
use shared::metrics::Business;
use shared::{ApiError, Caller};

use super::{Result, party_booking};
use crate::AppState;
use crate::lifecycle::{self, ChangeError};
use crate::request::{self, Answer, AnswerStep, DeclineBody};
use crate::views::{self, BookingView, Viewer};

/// POST /v1/bookings/{id}/accept: its host, while the request waits (24 hours) and the guest's
/// card is authorised. 1 GetItem + 1 TransactWriteItems; the same answer again is the booking as
/// it is (nothing moves twice); if the booking changed in between it is read and judged again.
#[utoipa::path(post, path = "/v1/bookings/{id}/accept", tag = "bookings", operation_id = "accept_request",
    summary = "Accept a request to book: the stay is booked and the authorised payment captured (its host)",
    params(("id" = String, Path, description = "The booking's id (`bkg_` + a lowercase ULID).")),
    responses(
        (status = 200, description = "The booking, `confirmed`; its payment reads `succeeded` once captured (seconds later).", body = BookingView),
        (status = 403, description = "not_booking_host"),
        (status = 404, description = "not_found"),
        (status = 409, description = "payment_not_authorized, request_already_answered, request_expired, request_withdrawn, not_a_request, conflict"),
    ),
    security(("cognito" = [])))]
pub async fn accept(State(st): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Json<BookingView>> {
    answer(&st, &caller, &id, Answer::Accept, None).await
}

/// POST /v1/bookings/{id}/decline: its host, while the request waits; the nights are freed and
/// the card's authorisation cancelled. The body (`{message?}`, to the guest) is optional.
// The body is optional: `handlers::routes` marks it so in the document.
#[utoipa::path(post, path = "/v1/bookings/{id}/decline", tag = "bookings", operation_id = "decline_request",
    summary = "Decline a request to book: its nights are freed, the card's authorisation cancelled (its host)",
    params(("id" = String, Path, description = "The booking's id (`bkg_` + a lowercase ULID).")),
    request_body(content = DeclineBody, description = "Optional: an empty body declines without a message."),
    responses(
        (status = 200, description = "The booking, `declined`, with the host's `decline`.", body = BookingView),
        (status = 400, description = "validation_failed, malformed_request"),
        (status = 403, description = "not_booking_host"),
        (status = 404, description = "not_found"),
        (status = 409, description = "request_already_answered, request_expired, request_withdrawn, not_a_request, conflict"),
    ),
    security(("cognito" = [])))]
pub async fn decline(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<BookingView>> {
    let message = request::decline_message(&body)?;
    answer(&st, &caller, &id, Answer::Decline, message).await
}

/// Reads, judges and writes the answer; a booking that changed between read and write (the
/// card authorised, the guest withdrawing, the sweep) is read and judged again.
async fn answer(
    st: &AppState,
    caller: &Caller,
    id: &str,
    answer: Answer,
    message: Option<String>,
) -> Result<Json<BookingView>> {
    const ATTEMPTS: usize = 3;
    for _ in 0..ATTEMPTS {
        let b = party_booking(st, caller, id).await?;
        let now = st.clock.now();
        let written = match request::judge(&b, &caller.user_id, answer, now)? {
            AnswerStep::AlreadyGiven => Ok(b),
            AnswerStep::Apply if answer == Answer::Accept => {
                let accepted = lifecycle::accept(&st.table, &b, now).await;
                if accepted.is_ok() {
                    shared::metrics::count(Business::BookingsConfirmed);
                }
                accepted
            }
            AnswerStep::Apply => lifecycle::decline(&st.table, &b, message.clone(), now).await,
        };
        match written {
            Ok(done) => return Ok(Json(views::booking(&done, Viewer::Host, now))),
            Err(ChangeError::Changed) => {}
            Err(ChangeError::Table(e)) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict("conflict", "The booking is changing right now; try again."))
}
