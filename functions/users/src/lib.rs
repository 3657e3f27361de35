//! The `users` context: sign-up to sign-out through Cognito, profiles, the host role, the inbox
//! and the health route. `router` builds the whole HTTP surface from an explicit `AppState`.

pub mod cognito;
pub mod handlers;
pub mod rules;
pub mod store;
pub mod views;

use std::sync::Arc;

use axum::Router;
use shared::{SharedClock, Table};

use crate::cognito::Cognito;

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub table: Arc<Table>,
    pub cognito: Arc<Cognito>,
    pub clock: SharedClock,
    /// Signs the inbox's pagination cursors (the key from SSM, shared by every instance).
    pub cursors: Arc<shared::cursor::CursorKey>,
    /// How long an unconfirmed account keeps its e-mail against new sign-ups
    /// (`UNCONFIRMED_ACCOUNT_GRACE_HOURS`, 24 in the template).
    pub unconfirmed_grace: jiff::SignedDuration,
}

pub fn router(state: AppState) -> Router {
    let (router, _) = handlers::routes().split_for_parts();
    router.with_state(state)
}

/// This context's part of the OpenAPI document (merged with the others by the `docs` function).
pub fn openapi() -> utoipa::openapi::OpenApi {
    handlers::routes().into_openapi()
}
