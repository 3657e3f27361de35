//! `POST /v1/bookings/{id}/payment` (idem): the booking's PaymentIntent, the same one on every
//! call.
//!
//! 1. One GetItem of the booking: only its guest, only while `pending_payment` with a live hold
//!    (`shared::booking::effective_status`) and not yet paid; else 409 `booking_not_payable`.
//! 2. The booking already names an intent: it is read back from Stripe (for its client secret
//!    and status) and answered.
//! 3. Otherwise the booking's total must be chargeable (`shared::currencies::check_charge`, a
//!    422 before Stripe is called), and the intent is found or created: an open intent at Stripe
//!    whose metadata names this booking and whose amount is its price is ADOPTED (a previous
//!    call created it and could not record it: a DynamoDB error after Stripe answered);
//!    otherwise it is created (amount and currency from the booking's price snapshot, never from
//!    the client; Stripe `Idempotency-Key` `payment-intent-<booking id>`, so Stripe itself
//!    answers a retry with the same intent). Its id is kept on the booking by ONE
//!    TransactWriteItems: the booking update (condition: still `pending_payment`, and no intent
//!    yet or this very one) and the intent -> booking pointer. Concurrent first calls agree
//!    through the key; where they do not (localstripe ignores the key), the condition picks
//!    one, the loser's intent is cancelled and the winner's answered.
//!    When keeping the id fails for any other reason the intent is left open, never cancelled:
//!    it is the booking's, and the retry adopts it (cancelling it would leave Stripe replaying a
//!    cancelled intent for the same key, and the booking unpayable).
//!
//! With an `Idempotency-Key` header the call is reserved first (`shared::idempotency`): a
//! duplicate arriving while it runs gets 409 `idempotency_in_progress`, a later one the stored
//! answer.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use jiff::{SignedDuration, Timestamp};
use shared::booking;
use shared::extract::Path;
use shared::idempotency::{IdempotencyKey, Idempotent, Lookup, StoredResponse};
use shared::openapi::IdempotencyKeyHeader;
use shared::{ApiError, Caller};

use crate::AppState;
use crate::rules::{check_payable, intent_idempotency_key, not_payable, pick_adoptable};
use crate::store::{self, BookingRecord, KeepIntentError};
use crate::stripe::{Intent, NewIntent, StripeFailure};
use crate::views::PaymentView;

/// How long a reservation of an `Idempotency-Key` blocks duplicates if its process dies: longer
/// than the function's timeout.
pub const IDEMPOTENCY_LEASE: SignedDuration = SignedDuration::from_secs(30);

/// Stripe's refusal of the request is 502 `payment_provider_error`; Stripe unreachable, slow,
/// failing (5xx) or rate-limiting (429) is 503 `payment_provider_unavailable` with `Retry-After`:
/// the guest's retry with the same Idempotency-Key may work, and creates no second intent.
pub(crate) fn provider_error(e: StripeFailure) -> ApiError {
    let unavailable = || {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "payment_provider_unavailable",
            "The payment provider is unavailable; try again in a moment.",
        )
    };
    match e {
        StripeFailure::Api { status, code, .. } if status >= 500 || status == 429 => {
            tracing::error!(stripe_status = status, stripe_code = code.as_deref().unwrap_or(""), "Stripe unavailable");
            unavailable()
        }
        StripeFailure::Api { status, code, .. } => {
            tracing::error!(
                stripe_status = status,
                stripe_code = code.as_deref().unwrap_or(""),
                "Stripe refused a call"
            );
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "payment_provider_error",
                "The payment provider refused the request.",
            )
        }
        StripeFailure::Transport(e) => {
            tracing::error!(error = %format!("{e:#}"), "Stripe unreachable");
            unavailable()
        }
    }
}

/// POST /v1/bookings/{id}/payment (idem): its guest; the module doc tells the steps.
#[utoipa::path(post, path = "/v1/bookings/{id}/payment", tag = "payments", operation_id = "pay_booking",
    summary = "The booking's Stripe PaymentIntent, to pay with Stripe.js (its guest)",
    params(("id" = String, Path, description = "The booking's id (`bkg_` + a lowercase ULID)."), IdempotencyKeyHeader),
    responses(
        (status = 200, description = "The booking's intent: the same one on every call.", body = PaymentView,
            headers(("Idempotent-Replayed" = String, description = "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`."))),
        (status = 403, description = "not_booking_guest"),
        (status = 404, description = "not_found"),
        (status = 409, description = "booking_not_payable, idempotency_in_progress, conflict"),
        (status = 422, description = "total_below_minimum_charge, total_above_maximum_charge, total_not_chargeable, unsupported_currency"),
        (status = 502, description = "payment_provider_error"),
        (status = 503, description = "payment_provider_unavailable"),
    ),
    security(("cognito" = [])))]
pub async fn pay(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let key = IdempotencyKey::from_headers(&headers)?;
    let booking_id = shared::ids::parse_id(booking::ID_PREFIX, &id).ok_or_else(ApiError::not_found)?.to_owned();
    let now = st.clock.now();
    let Some(key) = key else {
        return Ok(
            StoredResponse::json(StatusCode::OK, &payment(&st, &caller, &booking_id, now).await?)?.to_response(false)
        );
    };
    // The request has no body: the route (with the booking id) is what the key is bound to.
    let idem = Idempotent::new(&caller.user_id, &format!("POST /v1/bookings/{booking_id}/payment"), &key, b"");
    match idem.reserve(&st.table, now, IDEMPOTENCY_LEASE).await? {
        Lookup::New => {}
        other => return other.into_response()?.ok_or_else(|| anyhow::anyhow!("reservation answered nothing").into()),
    }
    match payment(&st, &caller, &booking_id, now).await {
        Ok(view) => {
            let stored = StoredResponse::json(StatusCode::OK, &view)?;
            if let Err(e) = idem.complete(&st.table, &stored).await {
                // The answer is right either way; a retry would find the same intent.
                tracing::warn!(error = %e, "could not store the idempotent response");
            }
            Ok(stored.to_response(false))
        }
        Err(e) => {
            if let Err(release) = idem.release(&st.table).await {
                tracing::warn!(error = %release, "could not release the idempotency reservation");
            }
            Err(e)
        }
    }
}

async fn payment(st: &AppState, caller: &Caller, booking_id: &str, now: Timestamp) -> Result<PaymentView, ApiError> {
    let b = store::read_booking(&st.table, booking_id).await?.ok_or_else(ApiError::not_found)?;
    check_payable(&b, &caller.user_id, now)?;
    if let Some(existing) = b.intent_id() {
        return existing_intent(st, &b, existing).await;
    }
    shared::currencies::check_charge(b.total())?;
    let intent = match adoptable_intent(st, &b).await? {
        Some(found) => {
            tracing::warn!(booking_id, payment_intent_id = %found.id, "adopting an intent a previous call created");
            found
        }
        None => {
            let new = NewIntent {
                amount: b.total(),
                booking_id: booking_id.to_owned(),
                guest_id: b.item.guest.user_id.clone(),
                idempotency_key: intent_idempotency_key(booking_id),
                capture_manually: b.item.booking_mode == shared::listing::BookingMode::Request,
            };
            st.stripe.create_intent(&new).await.map_err(provider_error)?
        }
    };
    match store::keep_intent(&st.table, &b, &intent.id, now).await {
        Ok(()) => {
            tracing::info!(booking_id, payment_intent_id = %intent.id, "payment intent kept on the booking");
            PaymentView::of(&b, intent)
        }
        Err(KeepIntentError::Refused(_)) => {
            // Another call recorded its intent first, or the booking stopped being payable.
            let current = store::read_booking(&st.table, booking_id).await?.ok_or_else(ApiError::not_found)?;
            let winner = current.intent_id().map(str::to_owned);
            if winner.as_deref() != Some(intent.id.as_str()) {
                cancel_orphan(st, &intent.id).await;
            }
            check_payable(&current, &caller.user_id, now)?;
            match winner {
                Some(w) => existing_intent(st, &current, &w).await,
                None => Err(not_payable()),
            }
        }
        Err(KeepIntentError::Table(e)) => {
            // Left open on purpose: a retry finds and adopts it (module doc, step 3).
            tracing::warn!(booking_id, payment_intent_id = %intent.id, "intent not recorded; a retry adopts it");
            Err(e.into())
        }
    }
}

async fn adoptable_intent(st: &AppState, b: &BookingRecord) -> Result<Option<Intent>, ApiError> {
    let found = st.stripe.intents_of_booking(b.id()).await.map_err(provider_error)?;
    Ok(pick_adoptable(b, found))
}

async fn existing_intent(st: &AppState, b: &BookingRecord, intent_id: &str) -> Result<PaymentView, ApiError> {
    let intent = st.stripe.retrieve_intent(intent_id).await.map_err(provider_error)?;
    if intent.status == "canceled" {
        return Err(not_payable());
    }
    PaymentView::of(b, intent)
}

/// Best effort: an intent nobody will use is cancelled (a failure is only logged).
async fn cancel_orphan(st: &AppState, intent_id: &str) {
    if let Err(e) = st.stripe.cancel_intent(intent_id).await {
        tracing::warn!(payment_intent_id = intent_id, error = %e, "could not cancel an unused payment intent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> StripeFailure {
        StripeFailure::Api { status, code: Some("x".into()), decline_code: None, message: None }
    }

    #[test]
    fn stripe_failing_or_throttling_is_unavailable_and_a_refusal_is_a_bad_gateway() {
        for status in [500, 503, 429] {
            assert_eq!(provider_error(api(status)).status(), StatusCode::SERVICE_UNAVAILABLE, "{status}");
            assert_eq!(provider_error(api(status)).code(), "payment_provider_unavailable");
        }
        assert_eq!(provider_error(api(402)).status(), StatusCode::BAD_GATEWAY);
        assert_eq!(provider_error(api(400)).code(), "payment_provider_error");
        let unreachable = provider_error(StripeFailure::Transport(anyhow::anyhow!("connection refused")));
        assert_eq!(unreachable.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
