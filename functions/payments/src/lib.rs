//! The `payments` context (HTTP): the booking's Stripe PaymentIntent
//! (`POST /v1/bookings/{id}/payment`) and Stripe's webhook (`POST /v1/webhooks/stripe`), which
//! verifies and enqueues and does nothing else. `payment-events` applies what is enqueued.
//!
//! The library also holds what both payments functions share and nothing else needs: the Stripe
//! calls (`stripe`), the webhook signature (`signature`) and the payment attributes of the
//! booking item (`record`). async-stripe stays inside these two crates.

pub mod pay;
pub mod record;
pub mod signature;
pub mod stripe;
pub mod webhook;

use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use shared::{SharedClock, Table};

use crate::stripe::Gateway;
use crate::webhook::{EventQueue, WebhookSecrets};

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub stripe: Arc<dyn Gateway>,
    pub queue: Arc<dyn EventQueue>,
    pub webhook_secrets: Arc<WebhookSecrets>,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/bookings/{id}/payment", post(pay::pay))
        .route("/v1/webhooks/stripe", post(webhook::stripe_webhook))
        .with_state(state)
}
