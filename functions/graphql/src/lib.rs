//! The `graphql` function: the read side of Roost in one round trip per screen (a listing page,
//! a trips page). Reads only, over the same table, rules, views and cursors as REST (each
//! field calls the REST handler's own read function); writes stay on REST, where idempotency
//! keys and problem codes live. `schema` is the schema, `loaders` the batched reads, `auth` the
//! optional caller, `limits` what stops abusive queries, `persisted` the GET-able queries.

pub mod auth;
pub mod handlers;
pub mod limits;
pub mod loaders;
pub mod persisted;
pub mod schema;

use std::sync::Arc;

use axum::Router;
use shared::cursor::CursorKey;
use shared::{SharedClock, Table};

use crate::auth::TokenVerifier;
use crate::limits::Limits;
use crate::schema::RoostSchema;

/// The contexts' states the schema reads through (their handlers' read functions take them).
#[derive(Clone)]
pub struct Reads {
    pub listings: listings::AppState,
    pub bookings: bookings::AppState,
    pub reviews: reviews::AppState,
    pub table: Arc<Table>,
    pub cursors: Arc<CursorKey>,
}

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub reads: Reads,
    pub schema: RoostSchema,
    pub tokens: Arc<TokenVerifier>,
    pub clock: SharedClock,
    pub limits: Limits,
}

pub fn router(state: AppState) -> Router {
    let (router, _) = handlers::routes().split_for_parts();
    router.with_state(state)
}

/// This function's part of the OpenAPI document (merged with the others by the `docs` function).
pub fn openapi() -> utoipa::openapi::OpenApi {
    handlers::routes().into_openapi()
}
