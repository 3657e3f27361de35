//! The `docs` function: the API described by itself. It serves the OpenAPI document that every
//! context contributes its part of (`openapi::document`), and a Swagger UI page over it whose
//! every asset is served from here (vendored in `utoipa-swagger-ui`, nothing from a CDN) under a
//! strict Content-Security-Policy.
//!
//! The document is built once per process from the code; `docs/openapi.json` is the same
//! document committed (`cargo roost openapi` writes it, a test fails when it differs).

pub mod handlers;
pub mod openapi;
pub mod page;

use std::sync::Arc;

use axum::Router;

/// Everything a request needs, built once per process in `main`.
#[derive(Clone)]
pub struct AppState {
    pub document: Arc<openapi::Published>,
    pub page: Arc<page::Page>,
}

pub fn router(state: AppState) -> Router {
    let (router, _) = handlers::routes().split_for_parts();
    router.with_state(state)
}

/// This function's own part of the document (its three routes).
pub fn own_openapi() -> utoipa::openapi::OpenApi {
    handlers::routes().into_openapi()
}
