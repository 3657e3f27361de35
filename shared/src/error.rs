//! `ApiError`: the one error type HTTP handlers return, and its one mapping to an RFC 9457
//! `application/problem+json` response.
//!
//! Body: `{"type","title","status","detail","code","errors":[{"field","message"}]}`.
//! - `code` is the stable snake_case machine code clients switch on.
//! - `type` is `https://roost.dev/problems/<code>`: one URI per code, as RFC 9457 intends (it
//!   identifies the problem type; it need not resolve). `about:blank` would force `title` to be
//!   the bare HTTP phrase and leave `type` useless to clients.
//! - `title` is the code in words ("Dates unavailable"): constant per type, as the RFC asks.
//! - `errors` is always present (possibly empty) so clients need no null check.
//!
//! Unexpected failures (`ApiError::Unexpected`, from any `anyhow::Error`) answer 500
//! `internal_error` with a body that says nothing of the cause; the cause chain goes to the log.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub const PROBLEM_TYPE_BASE: &str = "https://roost.dev/problems/";
pub const PROBLEM_JSON: &str = "application/problem+json";
/// `Retry-After` of every 503: the failures behind one (throttling, a dependency's blip, a slow
/// call) pass in about a second, and the SDKs' own retries have already waited before it.
pub const RETRY_AFTER_SECONDS: &str = "1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// A problem the client can act on: status, stable code, human detail, field errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: String,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{} {}: {}", .0.status.as_u16(), .0.code, .0.detail)]
    Problem(Box<Problem>),
    /// Anything the client cannot fix; `?` on an `anyhow::Result` lands here.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    /// Any status and code; prefer the named constructors.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self::Problem(Box::new(Problem {
            status,
            code,
            title: title_for(code),
            detail: detail.into(),
            errors: Vec::new(),
        }))
    }

    /// 400 `validation_failed` with one entry per bad field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => "The request has invalid fields.".to_owned(),
        };
        Self::new(StatusCode::BAD_REQUEST, "validation_failed", detail).with_errors(errors)
    }

    /// 400 `validation_failed` for a single field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    /// 400 `malformed_request`: the body or query could not be read at all.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_request", detail)
    }

    /// 404 `not_found`; also for resources the caller may not see (never leak existence).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "The resource does not exist.")
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// 422: well-formed but breaks a rule; add `.with_field(..)` to name the field.
    pub fn unprocessable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
    }

    pub fn payload_too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "The request body is too large.")
    }

    pub fn too_many_requests(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", detail)
    }

    /// 503 `service_unavailable`: a dependency failed or was too slow; a retry may work
    /// (`crate::dependency`). Answered with `Retry-After`.
    pub fn service_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "A service Roost depends on is briefly unavailable; try again in a moment.",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "The method is not allowed on this resource.")
    }

    /// Adds a field error (no effect on `Unexpected`).
    pub fn with_field(self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.with_errors(vec![FieldError::new(field, message)])
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        if let Self::Problem(p) = &mut self {
            p.errors.extend(errors);
        }
        self
    }

    /// Overrides the title derived from the code.
    pub fn with_title(mut self, title: impl Into<String>) -> Self {
        if let Self::Problem(p) = &mut self {
            p.title = title.into();
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Problem(p) => p.status,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Problem(p) => p.code,
            Self::Unexpected(_) => "internal_error",
        }
    }

    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Problem(p) => Some(p),
            Self::Unexpected(_) => None,
        }
    }
}

/// The problem+json body; its derived schema is the OpenAPI document's `Problem`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemBody<'a> {
    /// `https://roost.dev/problems/<code>`: one URI per problem type.
    #[serde(rename = "type")]
    kind: String,
    /// The code in words, constant per code.
    title: &'a str,
    /// The HTTP status, repeated.
    status: u16,
    /// What happened this time, for people.
    detail: &'a str,
    /// The stable snake_case code clients switch on.
    code: &'a str,
    /// One entry per bad field (empty when the problem is not about fields).
    errors: &'a [FieldError],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Problem(p) => {
                if p.status.is_server_error() {
                    tracing::error!(code = p.code, detail = %p.detail, "request failed");
                }
                problem_response(&p)
            }
            Self::Unexpected(err) => {
                tracing::error!(
                    error.cause_chain = ?err,
                    error.message = %err,
                    "request failed unexpectedly"
                );
                problem_response(&Problem {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    code: "internal_error",
                    title: title_for("internal_error"),
                    detail: "Something went wrong on our side.".to_owned(),
                    errors: Vec::new(),
                })
            }
        }
    }
}

fn problem_response(p: &Problem) -> Response {
    let body = ProblemBody {
        kind: format!("{PROBLEM_TYPE_BASE}{}", p.code),
        title: &p.title,
        status: p.status.as_u16(),
        detail: &p.detail,
        code: p.code,
        errors: &p.errors,
    };
    // Serialising plain strings and numbers cannot fail; the fallback keeps the status anyway.
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let mut res = (p.status, bytes).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if p.status == StatusCode::SERVICE_UNAVAILABLE {
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    }
    res
}

/// `dates_unavailable` -> `Dates unavailable`.
pub fn title_for(code: &str) -> String {
    let words = code.replace('_', " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::body_json;
    use anyhow::Context;

    #[tokio::test]
    async fn problem_json_shape() {
        let res = ApiError::conflict("dates_unavailable", "Those nights are taken.").into_response();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = body_json(res).await;
        assert_eq!(
            body,
            serde_json::json!({
                "type": "https://roost.dev/problems/dates_unavailable",
                "title": "Dates unavailable",
                "status": 409,
                "detail": "Those nights are taken.",
                "code": "dates_unavailable",
                "errors": []
            })
        );
    }

    #[tokio::test]
    async fn validation_lists_fields() {
        let err = ApiError::validation(vec![
            FieldError::new("title", "must be 1 to 120 characters"),
            FieldError::new("max_guests", "must be 1 to 50"),
        ]);
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err.code(), "validation_failed");
        let body = body_json(err.into_response()).await;
        assert_eq!(body["errors"][1]["field"], "max_guests");
        assert_eq!(body["errors"][1]["message"], "must be 1 to 50");
        let one = ApiError::invalid_field("guests", "must be 1 to 50");
        assert_eq!(one.problem().unwrap().detail, "guests: must be 1 to 50");
    }

    #[tokio::test]
    async fn constructors_have_their_status_and_code() {
        let cases = [
            (ApiError::malformed("x"), 400, "malformed_request"),
            (ApiError::not_found(), 404, "not_found"),
            (ApiError::unauthorized("unauthorized", "x"), 401, "unauthorized"),
            (ApiError::forbidden("not_your_listing", "x"), 403, "not_your_listing"),
            (ApiError::conflict("already_cancelled", "x"), 409, "already_cancelled"),
            (ApiError::unprocessable("stay_too_long", "x"), 422, "stay_too_long"),
            (ApiError::payload_too_large(), 413, "payload_too_large"),
            (ApiError::too_many_requests("x"), 429, "too_many_requests"),
            (ApiError::method_not_allowed(), 405, "method_not_allowed"),
        ];
        for (err, status, code) in cases {
            assert_eq!(err.status().as_u16(), status);
            assert_eq!(err.code(), code);
            let body = body_json(err.into_response()).await;
            assert_eq!(body["status"], status);
            assert_eq!(body["code"], code);
        }
        let err = ApiError::unprocessable("min_nights", "Stay at least 2 nights.")
            .with_field("check_out", "too early")
            .with_title("Too short");
        let body = body_json(err.into_response()).await;
        assert_eq!(body["errors"][0]["field"], "check_out");
        assert_eq!(body["title"], "Too short");
    }

    #[tokio::test]
    async fn unexpected_hides_the_cause() {
        let cause: anyhow::Result<()> = Err(anyhow::anyhow!("dynamodb said: secret table ARN"));
        let err: ApiError = cause.context("write booking").unwrap_err().into();
        assert_eq!(err.code(), "internal_error");
        let res = err.into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_json(res).await;
        assert_eq!(body["code"], "internal_error");
        let text = body.to_string();
        assert!(!text.contains("secret") && !text.contains("write booking"), "{text}");
    }

    #[test]
    fn every_503_says_when_to_retry() {
        let res = ApiError::service_unavailable().into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        let other = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "payment_provider_unavailable", "x").into_response();
        assert_eq!(other.headers()[header::RETRY_AFTER], RETRY_AFTER_SECONDS);
        assert!(!ApiError::not_found().into_response().headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn question_mark_converts_anyhow() {
        fn handler() -> Result<(), ApiError> {
            Err(anyhow::anyhow!("boom")).context("step")?;
            Ok(())
        }
        assert!(matches!(handler(), Err(ApiError::Unexpected(_))));
    }
}
