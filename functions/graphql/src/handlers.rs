//! The two routes: `POST /v1/graphql` (any query, or a batch of up to `Limits::batch`) and
//! `GET /v1/graphql` (persisted queries only: cacheable, and no query text in URLs or logs).
//!
//! Answers follow GraphQL over HTTP with `application/json`: a request that is a GraphQL
//! request gets 200 with `data` and/or `errors` (each error's `extensions.code` is REST's
//! problem code); a request that is not one (bad JSON, no query, too long, an unknown
//! persisted query, too big a batch) gets REST's 400 problem+json, and a refused token 401.

use async_graphql::{BatchResponse, Variables};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::extract::Query;
use shared::{ApiError, caching};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Viewer;
use crate::loaders::Loaders;
use crate::persisted::PersistedQuery;

type Result<T> = std::result::Result<T, ApiError>;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(post_graphql, get_graphql))
}

/// A GraphQL request as clients send it (`query`, or a persisted query's hash in `extensions`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schema(as = GraphqlRequest)]
pub struct GraphqlBody {
    /// The query document (at most 8192 characters); absent for a persisted query.
    #[schema(max_length = 8192)]
    pub query: Option<String>,
    /// The operation to run when the document has several.
    pub operation_name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
    /// `{"persistedQuery": {"version": 1, "sha256Hash": "..."}}` (Apollo's format).
    #[schema(value_type = Option<Object>)]
    pub extensions: Option<serde_json::Map<String, serde_json::Value>>,
}

/// The body of `POST /v1/graphql`: one request, or a batch of 1 to 5 run together (one answer
/// per request, in order).
pub struct GraphqlPayloadDoc;

impl utoipa::PartialSchema for GraphqlPayloadDoc {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, OneOfBuilder, Ref};
        let one = Ref::from_schema_name("GraphqlRequest");
        let batch = ArrayBuilder::new()
            .items(Ref::from_schema_name("GraphqlRequest"))
            .min_items(Some(1))
            .max_items(Some(crate::limits::Limits::default().batch));
        OneOfBuilder::new()
            .item(one)
            .item(batch)
            .description(Some("One request, or a batch of 1 to 5 run together (one answer per request, in order)."))
            .into()
    }
}

impl utoipa::ToSchema for GraphqlPayloadDoc {
    fn name() -> std::borrow::Cow<'static, str> {
        "GraphqlPayload".into()
    }

    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push(("GraphqlRequest".to_owned(), GraphqlBody::schema()));
    }
}

/// A GraphQL answer: `data`, and `errors` whose `extensions.code` is REST's problem code.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = GraphqlResponse)]
#[allow(dead_code)]
pub struct GraphqlResponseDoc {
    #[schema(value_type = Option<Object>)]
    data: Option<serde_json::Value>,
    #[schema(value_type = Option<Vec<Object>>)]
    errors: Option<Vec<serde_json::Value>>,
}

/// The answer to a POST: one, or one per request of a batch.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = GraphqlAnswer)]
#[allow(dead_code)]
pub enum GraphqlAnswerDoc {
    One(GraphqlResponseDoc),
    Batch(Vec<GraphqlResponseDoc>),
}

/// POST /v1/graphql: one request or a batch (a JSON array).
#[utoipa::path(post, path = "/v1/graphql", tag = "graphql",
    summary = "Read with GraphQL (anyone; private fields with a token)",
    description = "The schema is `docs/schema.graphql`; `docs/graphql.md` explains fields, errors and limits. \
        Send `Authorization: Bearer <access token>` for `me` and `booking`.",
    request_body = GraphqlPayloadDoc,
    responses(
        (status = 200, description = "The answer (field errors are in `errors`); an array of answers for a batch.",
            body = GraphqlAnswerDoc, headers(("Cache-Control" = String))),
        (status = 400, description = "malformed_request, validation_failed, persisted_query_not_found"),
        (status = 401, description = "unauthorized, token_revoked"),
    ))]
pub async fn post_graphql(State(st): State<AppState>, viewer: Viewer, body: Bytes) -> Result<Response> {
    let batch = parse_body(&body, st.limits.batch)?;
    let mut requests = Vec::with_capacity(batch.len());
    for b in batch {
        let extensions = b.extensions.map(serde_json::Value::Object);
        requests.push(st.request(
            b.query,
            b.operation_name,
            b.variables.map(serde_json::Value::Object),
            extensions.as_ref(),
        )?);
    }
    let batched = body.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'[');
    let mut answers = st.execute(requests, &viewer).await;
    let answer = match (batched, answers.pop()) {
        (false, Some(one)) => BatchResponse::Single(one),
        (_, last) => BatchResponse::Batch(answers.into_iter().chain(last).collect()),
    };
    Ok(respond(answer, &viewer, false))
}

/// The query of `GET /v1/graphql`: Apollo's persisted-query GET.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[into_params(parameter_in = Query)]
pub struct PersistedParams {
    /// `{"persistedQuery":{"version":1,"sha256Hash":"<hex>"}}`, URL-encoded JSON.
    #[param(required = true)]
    pub extensions: Option<String>,
    /// The variables, URL-encoded JSON.
    pub variables: Option<String>,
    pub operation_name: Option<String>,
}

/// GET /v1/graphql: a persisted query (the list is in `docs/graphql.md`).
#[utoipa::path(get, path = "/v1/graphql", tag = "graphql",
    summary = "Run a persisted GraphQL query (anyone; private fields with a token)",
    params(PersistedParams),
    responses(
        (status = 200, description = "The answer (field errors are in `errors`).", body = GraphqlResponseDoc,
            headers(("Cache-Control" = String))),
        (status = 400, description = "validation_failed, persisted_query_not_found"),
        (status = 401, description = "unauthorized, token_revoked"),
    ))]
pub async fn get_graphql(
    State(st): State<AppState>,
    viewer: Viewer,
    Query(p): Query<PersistedParams>,
) -> Result<Response> {
    let extensions = p.extensions.as_deref().ok_or_else(|| {
        ApiError::invalid_field(
            "extensions",
            "GET runs persisted queries only: send extensions.persistedQuery, or POST the query",
        )
    })?;
    let extensions: serde_json::Value =
        serde_json::from_str(extensions).map_err(|_| ApiError::invalid_field("extensions", "must be JSON"))?;
    let variables = match p.variables.as_deref() {
        Some(v) => Some(serde_json::from_str(v).map_err(|_| ApiError::invalid_field("variables", "must be JSON"))?),
        None => None,
    };
    let request = st.request(None, p.operation_name, variables, Some(&extensions))?;
    let answer = st
        .execute(vec![request], &viewer)
        .await
        .into_iter()
        .next()
        .map_or_else(|| BatchResponse::Batch(Vec::new()), BatchResponse::Single);
    Ok(respond(answer, &viewer, true))
}

/// One request or a batch, each an object (a top-level array of anything else is not a batch).
fn parse_body(body: &[u8], max_batch: usize) -> Result<Vec<GraphqlBody>> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'[') {
        return Ok(vec![shared::extract::from_json_slice(body)?]);
    }
    let items: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| ApiError::malformed(format!("The body is not valid JSON: {e}.")))?;
    if items.is_empty() || items.len() > max_batch {
        return Err(ApiError::invalid_field("batch", format!("a batch holds 1 to {max_batch} requests")));
    }
    items
        .into_iter()
        .map(|item| {
            if !item.is_object() {
                return Err(ApiError::malformed("Each request of a batch must be a JSON object."));
            }
            // Each request is read as a single one is, with the same 400s.
            let bytes = serde_json::to_vec(&item).map_err(|e| ApiError::Unexpected(e.into()))?;
            shared::extract::from_json_slice(&bytes)
        })
        .collect()
}

impl AppState {
    /// A GraphQL request from its parts: the query text or the persisted query it names.
    fn request(
        &self,
        query: Option<String>,
        operation_name: Option<String>,
        variables: Option<serde_json::Value>,
        extensions: Option<&serde_json::Value>,
    ) -> Result<async_graphql::Request> {
        let query = match (query, PersistedQuery::named_in(extensions)?) {
            (Some(q), _) if q.chars().count() > self.limits.query_chars => {
                return Err(ApiError::invalid_field(
                    "query",
                    format!("at most {} characters", self.limits.query_chars),
                ));
            }
            (Some(q), _) => q,
            (None, Some(hash)) => crate::persisted::find(&hash)
                .ok_or_else(|| {
                    ApiError::new(
                        axum::http::StatusCode::BAD_REQUEST,
                        "persisted_query_not_found",
                        "No persisted query has this hash (docs/graphql.md lists them); POST the query instead.",
                    )
                })?
                .text
                .to_owned(),
            (None, None) => return Err(ApiError::invalid_field("query", "required (or a persisted query's hash)")),
        };
        let variables = match variables {
            None | Some(serde_json::Value::Null) => Variables::default(),
            Some(v @ serde_json::Value::Object(_)) => Variables::from_json(v),
            Some(_) => return Err(ApiError::invalid_field("variables", "must be an object")),
        };
        let mut request = async_graphql::Request::new(query).variables(variables);
        if let Some(name) = operation_name {
            request = request.operation_name(name);
        }
        Ok(request)
    }

    /// Runs the requests with this caller and fresh loaders (shared by a batch's requests).
    async fn execute(&self, requests: Vec<async_graphql::Request>, viewer: &Viewer) -> Vec<async_graphql::Response> {
        let loaders = std::sync::Arc::new(Loaders::new(&self.reads.table));
        let requests = requests.into_iter().map(|r| r.data(viewer.0.clone()).data(loaders.clone()));
        futures::future::join_all(requests.map(|r| self.schema.execute(r))).await
    }
}

/// The JSON answer. Only a persisted query asked anonymously that answered without errors may
/// be kept by shared caches (briefly, as search is); anything a token was sent with is
/// `private, no-store`, and any other answer `no-store`.
fn respond(answer: BatchResponse, viewer: &Viewer, persisted: bool) -> Response {
    let cache = match (viewer.0.is_some(), persisted && answer.is_ok()) {
        (true, _) => caching::PRIVATE,
        (false, true) => caching::SEARCH,
        (false, false) => caching::NO_STORE,
    };
    let mut res = axum::Json(&answer).into_response();
    let h: &mut HeaderMap = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(header::VARY, HeaderValue::from_static("Authorization"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_one_object_or_a_bounded_batch_of_objects() {
        assert_eq!(parse_body(br#"{"query":"{ me { id } }"}"#, 5).unwrap().len(), 1);
        assert_eq!(parse_body(br#" [{"query":"{a}"},{"query":"{b}"}]"#, 5).unwrap().len(), 2);
        assert_eq!(parse_body(br#"[{"query":"{a}"},{"query":"{b}"}]"#, 1).unwrap_err().code(), "validation_failed");
        assert_eq!(parse_body(b"[]", 5).unwrap_err().code(), "validation_failed");
        assert_eq!(parse_body(b"[null, null]", 5).unwrap_err().code(), "malformed_request");
        assert_eq!(parse_body(br#"{"query":"{a}","extra":1}"#, 5).unwrap_err().code(), "validation_failed");
        assert_eq!(parse_body(b"{", 5).unwrap_err().code(), "malformed_request");
        // `variables` and `extensions` are objects (or null), in a batch too.
        assert_eq!(parse_body(br#"{"query":"{a}","extensions":[1]}"#, 5).unwrap_err().code(), "validation_failed");
        assert_eq!(parse_body(br#"[{"query":"{a}","extensions":[null]}]"#, 5).unwrap_err().code(), "validation_failed");
        assert_eq!(parse_body(br#"[{"query":"{a}","variables":"x"}]"#, 5).unwrap_err().code(), "validation_failed");
        assert!(parse_body(br#"{"query":"{a}","variables":null,"extensions":{}}"#, 5).is_ok());
    }
}
