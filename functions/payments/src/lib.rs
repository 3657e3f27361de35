//! The `payments` context, two Lambdas:
//! - `payments` (HTTP, `src/main.rs`): the booking's Stripe PaymentIntent
//!   (`POST /v1/bookings/{id}/payment`) and Stripe's webhook (`POST /v1/webhooks/stripe`), which
//!   verifies and enqueues and does nothing else;
//! - `payment-events` (SQS, `src/bin/payment-events.rs`): applies what is enqueued ([`events`]).
//!
//! Both share the Stripe calls (`stripe`) and the payment attributes of the booking item
//! (`store`); async-stripe stays inside this crate.

pub mod connect;
pub mod events;
pub mod handlers;
pub mod payouts;
pub mod queue;
pub mod rules;
pub mod signature;
pub mod store;
pub mod stripe;
pub mod views;

use std::sync::Arc;

use axum::Router;
use shared::{SharedClock, Table};

use crate::connect::Connect;
use crate::queue::EventQueue;
use crate::signature::WebhookSecrets;
use crate::stripe::Gateway;

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub stripe: Arc<dyn Gateway>,
    /// Stripe Connect (host payout accounts).
    pub connect: Arc<dyn Connect>,
    pub queue: Arc<dyn EventQueue>,
    pub webhook_secrets: Arc<WebhookSecrets>,
}

pub fn router(state: AppState) -> Router {
    let (router, _) = handlers::routes().split_for_parts();
    router.with_state(state)
}

/// This context's part of the OpenAPI document (merged with the others by the `docs` function).
pub fn openapi() -> utoipa::openapi::OpenApi {
    handlers::routes().into_openapi()
}
