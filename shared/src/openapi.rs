//! The OpenAPI document's shared parts: the security scheme, the gateway's own error body, the
//! parameters several contexts take, and [`finish`], which turns each operation's declared error
//! codes into problem+json responses and adds the answers every route can give.
//!
//! How a handler declares its errors (CONTRIBUTING.md): an error response's `description` is the
//! list of its `code` values, `(status = 409, description = "already_reviewed")`, nothing else.
//! [`finish`] replaces it with a `Problem` whose `code` is limited to exactly those values and an
//! example per code, so the document says which codes each operation can answer and the fuzzer
//! fails on any other. Codes every route of a kind can answer (a body's `malformed_request`, a
//! signed-in route's `unauthorized`, a conditional read's 304, every answer's `Cache-Control`) are
//! added here, in one place.

use std::collections::BTreeSet;

use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Ref, Schema, Type};
use utoipa::openapi::{Content, ContentBuilder, OpenApi, RefOr, Response, ResponseBuilder};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::error::{PROBLEM_JSON, PROBLEM_TYPE_BASE, title_for};

/// The security scheme's name: the Cognito access token as `Authorization: Bearer <jwt>`.
pub const BEARER: &str = "cognito";

/// What API Gateway itself answers (401 without a valid token, 404 for an unknown path, 413,
/// 429 when throttled, 5xx when a function fails): `application/json`, not problem+json, and
/// without `X-Request-Id` (an HTTP API cannot customise them).
#[derive(ToSchema)]
pub struct GatewayMessage {
    /// `Unauthorized`, `Not Found`, `Too Many Requests`, ...
    pub message: String,
}

/// The `Idempotency-Key` header of the routes that create something (`shared::idempotency`).
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IdempotencyKeyHeader {
    /// 1 to 255 visible ASCII characters (a UUID is a good choice). A retry with the same key and
    /// body within 24 hours gets the first answer again; the same key with another body is 422
    /// `idempotency_key_reused`; while the first is still running, 409 `idempotency_in_progress`.
    #[param(rename = "Idempotency-Key", min_length = 1, max_length = 255, pattern = "^[!-~]+$")]
    pub idempotency_key: Option<String>,
}

/// The `If-None-Match` header of the public reads (`crate::caching`); `finish` adds their 304
/// and documents their `ETag`.
#[derive(IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfNoneMatchHeader {
    /// The `ETag` of an earlier answer (a comma-separated list, `W/` tags and `*` are understood):
    /// 304 without a body while it is still this version's.
    #[param(rename = "If-None-Match")]
    pub if_none_match: Option<String>,
}

/// Pagination of every list: `limit` and the previous page's `next_cursor`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page, unchanged.
    pub cursor: Option<String>,
}

/// What every operation answers beside its own codes, and the schemas those answers use.
/// Call once on the merged document.
pub fn finish(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        for op in operations(item) {
            finish_operation(op);
        }
    }
    let components = api.components.get_or_insert_with(Default::default);
    let mut schemas = vec![
        (crate::error::ProblemBody::name().into_owned(), crate::error::ProblemBody::schema()),
        (GatewayMessage::name().into_owned(), GatewayMessage::schema()),
    ];
    crate::error::ProblemBody::schemas(&mut schemas);
    components.schemas.extend(schemas);
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch]
        .into_iter()
        .filter_map(|op| op.as_mut())
}

/// True when the operation needs the bearer token (its `security` names [`BEARER`]).
pub fn is_signed_in(op: &Operation) -> bool {
    op.security
        .as_ref()
        .is_some_and(|reqs| reqs.iter().any(|r| serde_json::to_value(r).is_ok_and(|v| v.get(BEARER).is_some())))
}

fn finish_operation(op: &mut Operation) {
    let has_body = op.request_body.is_some();
    // Query parameters and the Idempotency-Key are checked (400); other headers (If-None-Match,
    // Stripe-Signature) have answers of their own.
    let has_checked_parameter = op.parameters.iter().flatten().any(|p| match p {
        RefOr::T(p) => {
            p.parameter_in == ParameterIn::Query
                || (p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case("Idempotency-Key"))
        }
        RefOr::Ref(_) => true,
    });
    // Any operation may find a dependency failing or slow (crate::dependency, crate::http).
    let mut implied: Vec<(u16, &[&str])> = vec![(500, &["internal_error"]), (503, &["service_unavailable"])];
    if has_body {
        implied.push((400, &["malformed_request", "validation_failed"]));
        implied.push((413, &["payload_too_large"]));
    } else if has_checked_parameter {
        implied.push((400, &["validation_failed"]));
    }
    let signed_in = is_signed_in(op);
    if signed_in {
        implied.push((401, &["unauthorized", "token_revoked"]));
    }
    let conditional = op.parameters.iter().flatten().any(|p| {
        matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Header && p.name.eq_ignore_ascii_case("If-None-Match"))
    });
    if conditional && !op.responses.responses.contains_key("304") {
        let not_modified = Response::new("Not modified: the `ETag` sent is still this version's; no body.");
        op.responses.responses.insert("304".to_owned(), RefOr::T(not_modified));
    }
    for (status, codes) in implied {
        let declared = match op.responses.responses.get(&status.to_string()) {
            Some(RefOr::T(r)) => r.description.clone(),
            _ => String::new(),
        };
        let all = format!("{declared}, {}", codes.join(", "));
        op.responses.responses.insert(status.to_string(), RefOr::T(Response::new(all)));
    }
    for (status, response) in op.responses.responses.iter_mut() {
        let Ok(code) = status.parse::<u16>() else { continue };
        let RefOr::T(response) = response else { continue };
        if code >= 400 {
            *response = problem_response(code, &response.description);
        }
        response.headers.insert(
            "X-Request-Id".to_owned(),
            string_header("The request's id (the client's own when it sent a valid one); quote it in support requests. Absent from the gateway's own answers."),
        );
        document_caching(response, code, signed_in, conditional);
        if code == 503 {
            response.headers.insert(
                "Retry-After".to_owned(),
                RefOr::T(
                    HeaderBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).build()))
                        .description(Some(
                            "Seconds to wait before retrying (Roost's 503s; the gateway's own 503 has none).",
                        ))
                        .build(),
                ),
            );
        }
    }
    // API Gateway throttles any route (its 429 comes with no Retry-After); an operation that
    // answers 429 itself (users: Cognito's throttling) keeps its codes, with the gateway's body.
    if !op.responses.responses.contains_key("429") {
        op.responses
            .responses
            .insert("429".to_owned(), RefOr::T(gateway_response("Too many requests (the gateway's throttling).")));
    }
}

/// The caching headers of one answer (`crate::caching`): every function answer's
/// `Cache-Control`, and a conditional read's `ETag` on its 200 and 304.
fn document_caching(response: &mut Response, code: u16, signed_in: bool, conditional: bool) {
    let validated = conditional && matches!(code, 200 | 304);
    if validated {
        let etag = "This version's strong tag; send it back as `If-None-Match`.";
        response.headers.entry("ETag".to_owned()).or_insert_with(|| string_header(etag));
    }
    let policy = if signed_in {
        "`private, no-store`: one person's data, kept by no cache."
    } else if validated {
        "How long browsers and the CDN may keep it (docs/api.md, \"Caching\")."
    } else {
        "`no-store` (absent from the gateway's own answers)."
    };
    response.headers.entry("Cache-Control".to_owned()).or_insert_with(|| string_header(policy));
}

fn string_header(description: &str) -> RefOr<Header> {
    RefOr::T(
        HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String).build()))
            .description(Some(description))
            .build(),
    )
}

/// The problem+json response of `status` whose `code` is one of `codes` (", "-separated), plus
/// the gateway's own body where the gateway answers that status itself.
fn problem_response(status: u16, codes: &str) -> Response {
    let codes: BTreeSet<&str> = codes.split(',').map(str::trim).filter(|c| !c.is_empty()).collect();
    for code in &codes {
        assert!(
            code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "status {status}: `{code}` is not a problem code; an error response's description lists its codes"
        );
    }
    assert!(!codes.is_empty(), "status {status} declares no problem code");
    let listed: Vec<String> = codes.iter().map(|c| format!("`{c}`")).collect();
    let reason = axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
    let schema =
        AllOfBuilder::new()
            .item(Ref::from_schema_name("Problem"))
            .item(ObjectBuilder::new().property(
                "code",
                ObjectBuilder::new().schema_type(Type::String).enum_values(Some(codes.iter().copied())),
            ))
            .build();
    let mut content = ContentBuilder::new().schema(Some(Schema::AllOf(schema)));
    for code in &codes {
        let example = serde_json::json!({
            "type": format!("{PROBLEM_TYPE_BASE}{code}"),
            "title": title_for(code),
            "status": status,
            "detail": format!("{}.", title_for(code)),
            "code": code,
            "errors": [],
        });
        content = content.examples_from_iter([(code.to_string(), ExampleBuilder::new().value(Some(example)).build())]);
    }
    let mut builder = ResponseBuilder::new()
        .description(format!("{reason}: {}.", listed.join(", ")))
        .content(PROBLEM_JSON, content.build());
    // The gateway's own answers: 401 from its authorizer, 404 for a path no route matches (an
    // empty or odd path parameter), 413 over its body limit, 429 when throttled, 500 when a function fails,
    // 503 when a function has not answered within its 30 s integration timeout.
    if matches!(status, 401 | 404 | 413 | 429 | 500 | 503) {
        builder = builder.content("application/json", gateway_content());
    }
    builder.build()
}

fn gateway_response(description: &str) -> Response {
    ResponseBuilder::new().description(description).content("application/json", gateway_content()).build()
}

fn gateway_content() -> Content {
    ContentBuilder::new().schema(Some(Ref::from_schema_name("GatewayMessage"))).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use utoipa::OpenApi;

    #[derive(utoipa::ToSchema, serde::Deserialize)]
    #[allow(dead_code)]
    struct Body {
        a: u8,
    }

    #[utoipa::path(post, path = "/v1/things/{id}", params(("id" = String, Path)), request_body = Body,
        responses((status = 201, description = "Made."), (status = 409, description = "taken, conflict")),
        security(("cognito" = [])))]
    #[allow(dead_code)]
    async fn make() {}

    #[utoipa::path(get, path = "/v1/public", params(PageParams), responses((status = 200, description = "Ok.")))]
    #[allow(dead_code)]
    async fn list() {}

    #[derive(OpenApi)]
    #[openapi(paths(make, list))]
    struct Doc;

    fn finished() -> Value {
        let mut api = Doc::openapi();
        finish(&mut api);
        serde_json::to_value(api).unwrap()
    }

    fn codes(response: &Value) -> Value {
        response["content"][PROBLEM_JSON]["schema"]["allOf"][1]["properties"]["code"]["enum"].clone()
    }

    #[test]
    fn declared_codes_become_an_enum_and_every_route_of_a_kind_gets_its_answers() {
        let doc = finished();
        let make = &doc["paths"]["/v1/things/{id}"]["post"]["responses"];
        assert_eq!(codes(&make["409"]), json!(["conflict", "taken"]));
        assert_eq!(make["409"]["content"][PROBLEM_JSON]["examples"]["taken"]["value"]["status"], 409);
        assert_eq!(codes(&make["400"]), json!(["malformed_request", "validation_failed"]));
        assert_eq!(codes(&make["401"]), json!(["token_revoked", "unauthorized"]));
        assert!(make["401"]["content"]["application/json"].is_object(), "the authorizer's own 401");
        assert_eq!(codes(&make["413"]), json!(["payload_too_large"]));
        assert_eq!(codes(&make["500"]), json!(["internal_error"]));
        assert_eq!(make["429"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/GatewayMessage");
        assert!(make["201"]["headers"]["X-Request-Id"].is_object());

        let list = &doc["paths"]["/v1/public"]["get"]["responses"];
        assert_eq!(codes(&list["400"]), json!(["validation_failed"]), "a checked query parameter");
        assert!(list.get("401").is_none() && list.get("413").is_none(), "public, no body: {list}");
        assert!(doc["components"]["schemas"]["Problem"].is_object());
    }

    #[test]
    #[should_panic(expected = "is not a problem code")]
    fn an_error_description_that_is_not_a_code_list_is_refused() {
        problem_response(409, "The thing is taken.");
    }
}
