//! Extractors whose rejections are problem+json: a bad body, query or path is always a 4xx
//! `ApiError`, never axum's plain-text rejection or a 500.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// Largest JSON body accepted; Roost's biggest body (a listing) is a few KB.
pub const MAX_JSON_BODY: usize = 64 * 1024;

/// JSON body in, JSON body out (`application/json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::malformed("The body must be JSON with Content-Type: application/json."));
        }
        if content_length(req.headers()).is_some_and(|n| n > MAX_JSON_BODY) {
            return Err(ApiError::payload_too_large());
        }
        let body = Limited::new(req.into_body(), MAX_JSON_BODY)
            .collect()
            .await
            .map_err(|e| {
                if e.downcast_ref::<LengthLimitError>().is_some() {
                    ApiError::payload_too_large()
                } else {
                    ApiError::malformed("The request body could not be read.")
                }
            })?
            .to_bytes();
        from_json_slice(&body).map(Json)
    }
}

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(bytes) => {
                ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], bytes).into_response()
            }
            Err(e) => ApiError::Unexpected(anyhow::Error::new(e).context("serialise response body")).into_response(),
        }
    }
}

/// Parses a JSON document with the same error mapping as the `Json` extractor (for bodies read
/// some other way, e.g. a stored idempotent request).
pub fn from_json_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body is an object, but serde's derived `Deserialize` also takes a struct as an array
    // of its fields in order (`[null, null]` is a valid all-optional PATCH): refuse arrays.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::malformed("The body must be a JSON object."));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => data_error(&path, strip_location(&inner.to_string())),
            serde_json::error::Category::Eof if bytes.iter().all(u8::is_ascii_whitespace) => {
                ApiError::malformed("The request body is empty.")
            }
            _ => ApiError::malformed(format!("The body is not valid JSON: {inner}.")),
        }
    })?;
    de.end().map_err(|_| ApiError::malformed("The body has data after the JSON value."))?;
    Ok(value)
}

/// Query string parameters, as `T` (use `#[serde(deny_unknown_fields)]` to refuse extras).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        from_query_str(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

pub fn from_query_str<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        match data_error(&path, message) {
            // A query has no "root" to blame: name the problem on `query`.
            ApiError::Problem(p) if p.code == "malformed_request" => ApiError::invalid_field("query", p.detail),
            other => other,
        }
    })
}

/// Path parameters. A value that does not deserialise (garbage id, bad UTF-8) is a 404: such a
/// resource cannot exist, and it is not the client's body that is wrong.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::rejection::PathRejection;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::not_found()),
            Err(other) => {
                Err(ApiError::Unexpected(anyhow::anyhow!("path parameters unavailable (route wiring?): {other}")))
            }
        }
    }
}

/// Data errors name a field when serde knows one; a wrong shape at the root is malformed.
fn data_error(path: &str, message: String) -> ApiError {
    // `.` is the root; `[0]...` means the root was an array where an object was expected.
    if path.starts_with('[') {
        return ApiError::malformed(message);
    }
    let path = if path == "." { "" } else { path };
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|start| message.strip_prefix(start))
        .and_then(|rest| rest.split('`').next());
    let field = match named {
        // serde_path_to_error already ends the path with an unknown key, not a missing one.
        Some(name) if path == name || path.ends_with(&format!(".{name}")) => path.to_owned(),
        Some(name) => join_path(path, name),
        None => path.to_owned(),
    };
    if field.is_empty() {
        ApiError::malformed(message)
    } else {
        ApiError::validation(vec![FieldError::new(field, message)])
    }
}

fn join_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() { name.to_owned() } else { format!("{prefix}.{name}") }
}

/// serde_json appends " at line L column C"; the field path says more to a client.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || essence.strip_prefix("application/").is_some_and(|sub| sub.ends_with("+json"))
}

fn content_length(headers: &HeaderMap) -> Option<usize> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Money;
    use crate::test_support::body_json;
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use serde::Deserialize;
    use tower::ServiceExt;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct NewListing {
        title: String,
        max_guests: u8,
        policy: Policy,
        nightly_price: Money,
        address: Address,
        #[serde(default)]
        amenities: Vec<String>,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Address {
        city: String,
    }

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Policy {
        Flexible,
        Strict,
    }

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "title": "Loft", "max_guests": 2, "policy": "strict",
            "nightly_price": {"amount": 12300, "currency": "USD"},
            "address": {"city": "Lisbon"}, "amenities": ["wifi"]
        })
    }

    fn app() -> Router {
        Router::new()
            .route("/listings", post(|Json(l): Json<NewListing>| async move { Json(l) }))
            .route("/search", get(|Query(q): Query<SearchQuery>| async move { Json(q) }))
            .route(
                "/listings/{id}/nights/{n}",
                get(|Path((id, n)): Path<(String, u32)>| async move { format!("{id}:{n}") }),
            )
    }

    #[derive(Debug, Deserialize, Serialize)]
    #[serde(deny_unknown_fields)]
    struct SearchQuery {
        city: String,
        limit: Option<u32>,
        policy: Option<Policy>,
    }

    async fn post_json(body: impl Into<Body>, content_type: Option<&str>) -> Response {
        let mut req = Request::post("/listings");
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        app().oneshot(req.body(body.into()).unwrap()).await.unwrap()
    }

    async fn problem(res: Response) -> (StatusCode, serde_json::Value) {
        let status = res.status();
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        (status, body_json(res).await)
    }

    #[tokio::test]
    async fn valid_body_round_trips() {
        let res = post_json(valid().to_string(), Some("application/json; charset=utf-8")).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(body_json(res).await, valid());
    }

    #[tokio::test]
    async fn content_type_and_syntax_are_malformed() {
        for (body, ct) in [
            (valid().to_string(), None),
            (valid().to_string(), Some("text/plain")),
            ("{\"title\": ".to_owned(), Some("application/json")),
            ("{,}".to_owned(), Some("application/json")),
            (String::new(), Some("application/json")),
            (format!("{} {{}}", valid()), Some("application/json")),
            ("[1, 2]".to_owned(), Some("application/json")),
            ("\"loft\"".to_owned(), Some("application/json")),
            ("null".to_owned(), Some("application/json")),
        ] {
            let (status, body) = problem(post_json(body.clone(), ct).await).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["code"], "malformed_request", "{ct:?} {body}");
        }
    }

    #[tokio::test]
    async fn an_array_is_refused_even_where_every_field_is_optional() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Patch {
            name: Option<String>,
            bio: Option<String>,
        }
        for body in ["[null, null]", " \n[\"Ana\"]", "[]"] {
            let err = from_json_slice::<Patch>(body.as_bytes()).expect_err(body);
            let res = err.into_response();
            let (status, problem) = problem(res).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
            assert_eq!(problem["code"], "malformed_request", "{problem}");
        }
        assert!(from_json_slice::<Patch>(br#"{"name": null}"#).is_ok());
    }

    async fn field_error(patch: impl FnOnce(&mut serde_json::Value)) -> (String, String) {
        let mut v = valid();
        patch(&mut v);
        let (status, body) = problem(post_json(v.to_string(), Some("application/json")).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], "validation_failed", "{body}");
        (
            body["errors"][0]["field"].as_str().unwrap().to_owned(),
            body["errors"][0]["message"].as_str().unwrap().to_owned(),
        )
    }

    #[tokio::test]
    async fn data_errors_name_the_field() {
        let (f, m) = field_error(|v| v["max_guests"] = "two".into()).await;
        assert_eq!(f, "max_guests");
        assert!(m.contains("invalid type"), "{m}");
        assert!(!m.contains("line"), "{m}");

        let (f, _) = field_error(|v| v["max_guests"] = 300.into()).await;
        assert_eq!(f, "max_guests");

        let (f, m) = field_error(|v| v["policy"] = "lenient".into()).await;
        assert_eq!(f, "policy");
        assert!(m.contains("unknown variant"), "{m}");

        let (f, _) = field_error(|v| v["nightly_price"]["currency"] = "usd".into()).await;
        assert_eq!(f, "nightly_price.currency");

        let (f, m) = field_error(|v| v["nightly_price"]["amount"] = (-5).into()).await;
        assert_eq!(f, "nightly_price");
        assert!(m.contains("negative"), "{m}");

        let (f, _) = field_error(|v| v["amenities"][0] = 7.into()).await;
        assert_eq!(f, "amenities[0]");

        let (f, m) = field_error(|v| {
            v.as_object_mut().unwrap().remove("title");
        })
        .await;
        assert_eq!(f, "title");
        assert!(m.contains("missing field"), "{m}");

        let (f, _) = field_error(|v| {
            v["address"].as_object_mut().unwrap().remove("city");
        })
        .await;
        assert_eq!(f, "address.city");

        let (f, m) = field_error(|v| v["host_id"] = "me".into()).await;
        assert_eq!(f, "host_id");
        assert!(m.contains("unknown field"), "{m}");

        let (f, _) = field_error(|v| v["address"]["street"] = "x".into()).await;
        assert_eq!(f, "address.street");
    }

    #[tokio::test]
    async fn oversize_bodies_are_413() {
        let mut v = valid();
        v["title"] = "x".repeat(MAX_JSON_BODY).into();
        let (status, body) = problem(post_json(v.to_string(), Some("application/json")).await).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body["code"], "payload_too_large");

        // A declared length over the limit is refused before reading anything.
        let req = Request::post("/listings")
            .header("content-type", "application/json")
            .header("content-length", (MAX_JSON_BODY + 1).to_string())
            .body(Body::from(valid().to_string()))
            .unwrap();
        let (status, _) = problem(app().oneshot(req).await.unwrap()).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    async fn get_query(q: &str) -> Response {
        app().oneshot(Request::get(format!("/search?{q}")).body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn query_errors_are_validation_failures() {
        let res = get_query("city=Lisbon&limit=5&policy=flexible").await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(body_json(res).await["limit"], 5);

        for (q, field) in [
            ("city=Lisbon&limit=lots", "limit"),
            ("city=Lisbon&limit=-1", "limit"),
            ("city=Lisbon&policy=lenient", "policy"),
            ("limit=5", "city"),
            ("city=Lisbon&token=secret", "token"),
        ] {
            let (status, body) = problem(get_query(q).await).await;
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert_eq!(body["code"], "validation_failed", "{q}");
            assert_eq!(body["errors"][0]["field"], field, "{q}: {body}");
        }
    }

    #[tokio::test]
    async fn garbage_path_is_404() {
        let ok = app().oneshot(Request::get("/listings/abc/nights/3").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        let res = app().oneshot(Request::get("/listings/abc/nights/x").body(Body::empty()).unwrap()).await.unwrap();
        let (status, body) = problem(res).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "not_found");
        let res = app().oneshot(Request::get("/listings/%FF/nights/3").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn content_type_matching() {
        let mut h = HeaderMap::new();
        assert!(!is_json_content_type(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/merge-patch+json", true),
            ("application/jsonx", false),
            ("text/json", false),
            ("multipart/form-data", false),
        ] {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(is_json_content_type(&h), ok, "{ct}");
        }
    }
}
