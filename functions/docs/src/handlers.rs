//! The three routes: the document, the page, the page's assets.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use shared::ApiError;
use shared::extract::Path;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::page::{CONTENT_SECURITY_POLICY, EXPLORER_HTML, INDEX_HTML};

/// Clients may keep the document five minutes, then revalidate with its ETag (a deploy changes
/// it); the page's assets change only with a deploy too, so they get the same rule.
const CACHE_CONTROL: &str = "public, max-age=300, must-revalidate";

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
    params(("If-None-Match" = Option<String>, Header, description = "An ETag from an earlier answer.")),
    responses(
        (status = 200, description = "The document.", content_type = "application/json", body = Object,
            headers(("ETag" = String), ("Cache-Control" = String))),
        (status = 304, description = "Not modified: the ETag sent is this version's.",
            headers(("ETag" = String), ("Cache-Control" = String))),
    ))]
pub async fn openapi_json(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let doc = &st.document;
    let fresh = headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|v| doc.matches(v));
    let mut res = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], doc.json.clone()).into_response()
    };
    let h = res.headers_mut();
    if let Ok(etag) = HeaderValue::from_str(&doc.etag) {
        h.insert(header::ETAG, etag);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    res
}

/// GET /v1/docs: the reference page (Swagger UI) under a strict Content-Security-Policy.
#[utoipa::path(get, path = "/v1/docs", tag = "docs",
    summary = "The reference page (Swagger UI, every asset served by us)",
    responses((status = 200, description = "The page.", content_type = "text/html", body = String,
        headers(("Content-Security-Policy" = String)))))]
pub async fn docs_page() -> Response {
    let mut res = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML).into_response();
    secure(res.headers_mut());
    res
}

/// GET /v1/docs/graphql: the GraphQL explorer, under the same Content-Security-Policy.
#[utoipa::path(get, path = "/v1/docs/graphql", tag = "docs",
    summary = "The GraphQL explorer (every asset served by us)",
    responses((status = 200, description = "The page.", content_type = "text/html", body = String,
        headers(("Content-Security-Policy" = String)))))]
pub async fn graphql_explorer() -> Response {
    let mut res = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], EXPLORER_HTML).into_response();
    secure(res.headers_mut());
    res
}

/// GET /v1/docs/{file}: one of the page's assets.
#[utoipa::path(get, path = "/v1/docs/{file}", tag = "docs",
    summary = "An asset of the reference page",
    params(("file" = String, Path, description = "`swagger-ui-bundle.js`, `swagger-ui.css`, ...")),
    responses(
        (status = 200, description = "The asset (JavaScript, CSS or PNG).",
            content((String = "application/javascript"), (String = "text/css"), (Vec<u8> = "image/png")),
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
