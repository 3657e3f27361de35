//! The `users` context: sign-up to sign-out through Cognito, profiles, the host role, the inbox
//! and the health route. `router` builds the whole HTTP surface from an explicit `AppState`.

pub mod cognito;
pub mod handlers;
pub mod rules;
pub mod store;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use shared::{SharedClock, Table};

use crate::cognito::Cognito;
use crate::handlers::{auth, health, inbox, me};

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
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/auth/signup", post(auth::sign_up))
        .route("/v1/auth/confirm", post(auth::confirm))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/auth/password/forgot", post(auth::forgot_password))
        .route("/v1/auth/password/reset", post(auth::reset_password))
        .route("/v1/me", get(me::me).patch(me::update_me))
        .route("/v1/me/host", post(me::become_host))
        .route("/v1/users/{id}", get(me::public_profile))
        .route("/v1/me/notifications", get(inbox::list))
        .route("/v1/me/notifications/{id}/read", post(inbox::mark_read))
        .with_state(state)
}

/// This context's part of the OpenAPI document (merged with the others by the `docs` function).
pub fn openapi() -> utoipa::openapi::OpenApi {
    utoipa::openapi::OpenApi::default()
}
