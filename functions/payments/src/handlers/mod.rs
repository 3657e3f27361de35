//! The payments Lambda's routes, one module each: `POST /v1/bookings/{id}/payment`
//! ([`payment::pay`]) and `POST /v1/webhooks/stripe` ([`webhook::stripe_webhook`]).

pub mod payment;
pub mod webhook;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

/// The routes of this context, each with its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(payment::pay)).routes(routes!(webhook::stripe_webhook))
}
