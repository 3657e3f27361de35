//! The payments Lambda's routes, one module each: `POST /v1/bookings/{id}/payment`
//! ([`payment::pay`]), `POST /v1/webhooks/stripe` ([`webhook::stripe_webhook`]) and the
//! host's payout account (`POST`/`GET /v1/me/payout-account`, [`payout_account`]).

pub mod payment;
pub mod payout_account;
pub mod webhook;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The routes of this context, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(payment::pay))
        .routes(routes!(webhook::stripe_webhook))
        .routes(routes!(payout_account::connect_payout_account, payout_account::get_payout_account))
}
