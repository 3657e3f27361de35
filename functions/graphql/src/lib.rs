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
pub mod reads;
pub mod schema;

use std::sync::Arc;

use axum::Router;
use shared::SharedClock;

use crate::auth::TokenVerifier;
use crate::limits::Limits;
pub use crate::reads::Reads;
use crate::schema::RoostSchema;

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
