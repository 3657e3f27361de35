//! The three routes: the document, the page, the page's assets.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use shared::ApiError;
use shared::caching::{self, IfNoneMatch};
use shared::extract::Path;
use shared::openapi::IfNoneMatchHeader;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::page::{CONTENT_SECURITY_POLICY, EXPLORER_HTML, INDEX_HTML};

/// Clients may keep the document five minutes, then revalidate with its ETag (a deploy changes
/// it); the page's assets change only with a deploy too, so they get the same rule.
const CACHE_CONTROL: &str = caching::DOCUMENT;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs_page))
        .routes(routes!(graphql_explorer))
        .routes(routes!(docs_asset))
}

/// GET /v1/openapi.json: the document, with an ETag; 304 when the client has this version.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "docs",
    summary = "This document (OpenAPI 3.1)",
    params(IfNoneMatchHeader),
    responses(
        (status = 200, description = "The document.", content_type = "application/json", body = Object,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified: the ETag sent is this version's.",
            headers(("ETag" = String), ("Cache-Control" = String))),
    ))]
pub async fn openapi_json(State(st): State<AppState>, conditions: IfNoneMatch) -> Response {
    let doc = &st.document;
    caching::tagged(&conditions, CACHE_CONTROL, doc.etag.clone(), "application/json", doc.json.clone())
}

/// GET /v1/docs: the reference page (Swagger UI) under a strict Content-Security-Policy.
#[utoipa::path(get, path = "/v1/docs", tag = "docs",
    summary = "The reference page (Swagger UI, every asset served by us)",
    responses((status = 200, description = "The page.", content_type = "text/html", body = String,
        headers(("Content-Security-Policy" = String), ("Cache-Control" = String)))))]
pub async fn docs_page() -> Response {
    html_page(INDEX_HTML)
}

/// GET /v1/docs/graphql: the GraphQL explorer, under the same Content-Security-Policy.
#[utoipa::path(get, path = "/v1/docs/graphql", tag = "docs",
    summary = "The GraphQL explorer (every asset served by us)",
    responses((status = 200, description = "The page.", content_type = "text/html", body = String,
        headers(("Content-Security-Policy" = String), ("Cache-Control" = String)))))]
pub async fn graphql_explorer() -> Response {
    html_page(EXPLORER_HTML)
}

/// One of our pages: HTML, the docs' cache policy, the strict policy and its companions.
fn html_page(html: &'static str) -> Response {
    let mut res = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    secure(res.headers_mut());
    res
}

/// GET /v1/docs/{file}: one of the page's assets.
#[utoipa::path(get, path = "/v1/docs/{file}", tag = "docs",
    summary = "An asset of the reference page or the GraphQL explorer",
    params(("file" = String, Path, description = "`swagger-ui-bundle.js`, `swagger-ui.css`, `graphql-explorer.js`, ...")),
    responses(
        (status = 200, description = "The asset (JavaScript, CSS, PNG; the explorer's schema as text, its examples as JSON).",
            content((String = "application/javascript"), (String = "text/css"), (Vec<u8> = "image/png"),
                (String = "text/plain"), (Object = "application/json")),
            headers(("Cache-Control" = String))),
        (status = 404, description = "not_found"),
    ))]
pub async fn docs_asset(State(st): State<AppState>, Path(file): Path<String>) -> Result<Response, ApiError> {
    let asset = st.page.asset(&file).ok_or_else(ApiError::not_found)?;
    let content_type = HeaderValue::from_str(&asset.content_type).map_err(|e| ApiError::Unexpected(e.into()))?;
    let mut res = asset.bytes.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    secure(h);
    Ok(res)
}

fn secure(h: &mut HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
}
