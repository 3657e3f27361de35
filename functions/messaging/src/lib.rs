//! The `messaging` context: one conversation per (listing, guest) between the guest and the
//! listing's host, started by an inquiry before any booking and carried on after it.
//!
//! A message is ONE `TransactWriteItems` ([`store::post`]): the message, the conversation's
//! activity, both participants' member items (the recipient's `unread_count` is an atomic
//! `ADD`), the `message.posted` outbox item and, with an `Idempotency-Key`, its record. The
//! first message also puts the (listing, guest) pair item with `attribute_not_exists`
//! ([`store::start`]), so two concurrent inquiries cannot open two conversations. Before a
//! booking between them is confirmed, e-mail addresses and phone numbers are masked
//! ([`rules::mask_contacts`]); a sender is limited per minute by a conditional counter item.

pub mod handlers;
pub mod rules;
pub mod store;
pub mod views;

use std::sync::Arc;

use axum::Router;
use shared::cursor::CursorKey;
use shared::{SharedClock, Table};

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub clock: SharedClock,
    pub cursors: Arc<CursorKey>,
}

pub fn router(state: AppState) -> Router {
    let (router, _) = handlers::routes().split_for_parts();
    router.with_state(state)
}

/// This context's part of the OpenAPI document (merged with the others by the `docs` function).
pub fn openapi() -> utoipa::openapi::OpenApi {
    handlers::routes().into_openapi()
}
