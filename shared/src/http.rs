//! What every HTTP function wraps its router in: a request id on every response, one JSON log
//! line per request, problem+json for unknown routes and wrong methods, the sign-out check, and
//! the request's business metrics flushed (`crate::metrics`), an answer before the invocation's
//! deadline, 503 + `Retry-After` for a request a dependency failed (`crate::dependency`), and the
//! `Cache-Control` rule of every answer (`crate::caching::apply_default_policy`: `private,
//! no-store` on every route behind the authorizer).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use lambda_http::RequestExt;
use tracing::Instrument;

use crate::error::ApiError;
use crate::sessions::{Revocations, count_session_reads};
use crate::table::{Table, count_ddb_requests};
use crate::{config, dependency};

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
const MAX_REQUEST_ID_LEN: usize = 128;
/// Time kept between a handler's answer and the invocation's end: writing the response, the
/// log line and the metrics. docs/reliability.md has the budget of every function.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// The request's id, in the request extensions for handlers that want it (e.g. to log or to
/// put in an event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// Adds the fallbacks (404/405 problem+json) and the request layer to `router`. Call it last,
/// after every route and `with_state`.
pub fn with_request_layers(router: Router) -> Router {
    router.fallback(not_found).method_not_allowed_fallback(method_not_allowed).layer(middleware::from_fn(request_layer))
}

/// Serves `router` on the Lambda runtime with the request layers and the sign-out check of
/// every `Caller` (crate::sessions: it reads profiles from the table named by `TABLE_NAME`).
pub async fn run(router: Router) -> Result<(), lambda_http::Error> {
    let table = Table::new(&config::aws_config().await, config::required("TABLE_NAME")?);
    lambda_http::run(whole_gateway_path(with_sessions(router, Arc::new(Revocations::new(table))))).await
}

/// Routes `app` on the whole path API Gateway gave. An HTTP API hands the function a decoded
/// `rawPath`, and lambda_http builds the request URI from it as a URL: a decoded `%23` becomes
/// `#` and the rest of the path a fragment, so `POST /v1/bookings/x%23/accept` would be routed
/// as `POST /v1/bookings/x` (a 405). The cut path is put back, its `#` encoded again, before
/// routing: such a path is routed whole, and its id is an id that does not exist (404).
pub fn whole_gateway_path(app: Router) -> Router {
    Router::new().fallback_service(app).layer(middleware::map_request(restore_cut_path))
}

/// What a decoded path must have encoded again to be a URI path that decodes back to it: the
/// controls, non-ASCII (always), `%` itself, and what a URI reserves or refuses outside `/`.
const PATH_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

async fn restore_cut_path(mut req: Request) -> Request {
    let raw = req.raw_http_path();
    if raw.contains('#') {
        let query = req.uri().query().map(|q| format!("?{q}")).unwrap_or_default();
        let path = percent_encoding::utf8_percent_encode(raw, PATH_ENCODE);
        match format!("{path}{query}").parse() {
            Ok(uri) => *req.uri_mut() = uri,
            Err(e) => tracing::warn!(error = %e, "a path cut at a decoded '#' could not be rebuilt"),
        }
    }
    req
}

/// `with_request_layers`, and every `Caller` checked against `revocations`.
pub fn with_sessions(router: Router, revocations: Arc<Revocations>) -> Router {
    with_request_layers(router).layer(Extension(revocations))
}

async fn not_found() -> ApiError {
    ApiError::not_found()
}

async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

async fn request_layer(mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = choose_request_id(&req);
    let method = req.method().clone();
    // Set by the router before route layers run; absent for the fallback.
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let authorized = crate::identity::carries_claims(&req);
    req.extensions_mut().insert(RequestId(request_id.clone()));

    let span = tracing::info_span!("request", request_id = %request_id);
    let time_left = time_left(&req);
    let handled = async move {
        match time_left {
            // Dropping the handler cancels its calls in flight; each write is atomic (a condition
            // or a transaction) and keyed for retries, so the client's retry finds a whole state.
            Some(left) => tokio::time::timeout(left, next.run(req)).await.unwrap_or_else(|_| {
                tracing::warn!("the invocation's deadline came before the answer");
                ApiError::service_unavailable().into_response()
            }),
            None => next.run(req).await,
        }
    };
    let (((mut res, dependency_failed), ddb_requests), session_ddb_requests) =
        count_session_reads(count_ddb_requests(dependency::watch(handled))).instrument(span).await;
    if dependency_failed && res.status() == StatusCode::INTERNAL_SERVER_ERROR {
        res = ApiError::service_unavailable().into_response();
    }

    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    crate::caching::apply_default_policy(res.headers_mut(), authorized);
    // Never headers, bodies, tokens or query strings: only the route template.
    tracing::info!(
        method = %method,
        route = route.as_deref().unwrap_or("unmatched"),
        status = res.status().as_u16(),
        latency_ms = (started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
        ddb_requests,
        session_ddb_requests,
        request_id = %request_id,
        "request"
    );
    // One request per invocation on Lambda: what this request counted goes out with it.
    crate::metrics::flush();
    res
}

/// How long the handler may run: until Lambda's deadline for this invocation less
/// [`DEADLINE_MARGIN`], so the answer (a 503 at worst) is sent before Lambda ends the invocation
/// and API Gateway answers its opaque 500 instead. `None` outside Lambda (unit tests).
fn time_left(req: &Request) -> Option<Duration> {
    let deadline = req.lambda_context_ref()?.deadline();
    Some(deadline.duration_since(SystemTime::now()).unwrap_or_default().saturating_sub(DEADLINE_MARGIN))
}

/// The caller's `X-Request-Id` if sane, else Lambda's request id, else a new ULID.
fn choose_request_id(req: &Request) -> String {
    if let Some(id) =
        req.headers().get(&REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).filter(|v| is_sane_request_id(v))
    {
        return id.to_owned();
    }
    if let Some(ctx) = req.lambda_context_ref()
        && is_sane_request_id(&ctx.request_id)
    {
        return ctx.request_id.clone();
    }
    ulid::Ulid::new().to_string().to_ascii_lowercase()
}

/// 1 to 128 characters of `[A-Za-z0-9._-]`: safe to echo in a header and to log.
pub fn is_sane_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::body_json;
    use axum::body::Body;
    use axum::extract::Extension;
    use axum::http::StatusCode;
    use axum::routing::get;
    use std::sync::{Arc, Mutex};
    use tower::ServiceExt;

    fn app() -> Router {
        let router = Router::new()
            .route("/v1/listings/{id}", get(|| async { "ok" }).post(|| async { "ok" }))
            .route("/v1/echo-id", get(|Extension(id): Extension<RequestId>| async move { id.0 }))
            .route("/v1/boom", get(|| async { ApiError::from(anyhow::anyhow!("secret cause")) }));
        with_request_layers(router)
    }

    async fn send(req: Request<Body>) -> Response {
        app().oneshot(req).await.unwrap()
    }

    #[tokio::test]
    async fn a_path_cut_at_a_decoded_hash_is_routed_whole() {
        let router = Router::new()
            .route("/v1/things/{id}", get(|| async { "the thing" }))
            .route("/v1/things/{id}/accept", axum::routing::post(|| async { "accepted" }));
        // What lambda_http makes of `POST /v1/things/x%23/accept`: the URI cut at the `#`.
        let cut = Request::post("/v1/things/%C3%B3%5B%0F1")
            .body(Body::empty())
            .unwrap()
            .with_raw_http_path("/v1/things/ó[\u{f}1#/accept");
        let res = whole_gateway_path(with_request_layers(router.clone())).oneshot(cut).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "routed to the accept route, not a 405 of /v1/things/{{id}}");
        let whole = Request::get("/v1/things/x?a=1").body(Body::empty()).unwrap().with_raw_http_path("/v1/things/x");
        let res = whole_gateway_path(with_request_layers(router)).oneshot(whole).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn echoes_a_sane_request_id() {
        let res =
            send(Request::get("/v1/echo-id").header("x-request-id", "abc-123_X.y").body(Body::empty()).unwrap()).await;
        assert_eq!(res.headers()["x-request-id"], "abc-123_X.y");
        let bytes = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&bytes[..], b"abc-123_X.y");
    }

    #[tokio::test]
    async fn replaces_an_insane_request_id() {
        for bad in ["has space", "semi;colon", &"a".repeat(129), ""] {
            let res =
                send(Request::get("/v1/listings/1").header("x-request-id", bad).body(Body::empty()).unwrap()).await;
            let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
            assert_ne!(id, bad);
            assert_eq!(id.len(), 26, "{id}");
            assert!(is_sane_request_id(&id));
        }
    }

    #[tokio::test]
    async fn uses_the_lambda_request_id() {
        let mut ctx = lambda_http::Context::default();
        ctx.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".to_owned();
        let req = Request::get("/v1/listings/1").extension(ctx).body(Body::empty()).unwrap();
        let res = send(req).await;
        assert_eq!(res.headers()["x-request-id"], "8476a536-e9f4-11e8-9739-2dfe598c3fcd");
    }

    #[tokio::test]
    async fn unknown_routes_and_methods_are_problems() {
        let res = send(Request::get("/v1/nope").body(Body::empty()).unwrap()).await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert!(res.headers().contains_key("x-request-id"));
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        assert_eq!(body_json(res).await["code"], "not_found");

        let res = send(Request::delete("/v1/listings/1").body(Body::empty()).unwrap()).await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        assert!(res.headers().contains_key("x-request-id"));
        assert_eq!(body_json(res).await["code"], "method_not_allowed");
    }

    /// `with_sessions` puts the sign-out check on every route that takes a `Caller` (its read
    /// is logged as the request's `session_ddb_requests`, apart from `ddb_requests`).
    #[tokio::test]
    async fn with_sessions_checks_every_caller() {
        use crate::identity::{Caller, claims_context};
        use crate::test_support::{AwsStub, dynamodb_client};
        let stub = AwsStub::start(|_, _| (200, r#"{"Item":{"tokens_revoked_at":{"N":"100"}}}"#.to_owned())).await;
        let revocations = Arc::new(Revocations::new(Table::from_conf(dynamodb_client(&stub.url()), "roost")));
        let router = Router::new().route("/v1/me/trips", get(|c: Caller| async move { c.user_id }));
        let app = with_sessions(router, revocations);
        let send = |iat: &'static str| {
            let req = Request::get("/v1/me/trips").extension(claims_context([("sub", "u-1"), ("iat", iat)]));
            app.clone().oneshot(req.body(Body::empty()).unwrap())
        };
        let res = send("99").await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_json(res).await["code"], "token_revoked");
        assert_eq!(send("101").await.unwrap().status(), StatusCode::OK);
        assert_eq!(stub.hits(), 1);
    }

    /// Every answer of a route behind the authorizer is `private, no-store`, even one whose
    /// handler chose a public policy; an anonymous answer keeps its policy or gets `no-store`.
    #[tokio::test]
    async fn private_routes_are_never_stored() {
        use crate::caching::{NO_STORE, PRIVATE, PUBLIC_ITEM};
        use crate::identity::claims_context;
        let public = || async { ([(axum::http::header::CACHE_CONTROL, PUBLIC_ITEM)], "shared") };
        let app =
            with_request_layers(Router::new().route("/v1/read", get(public)).route("/v1/plain", get(|| async { "x" })));
        let signed_in =
            Request::get("/v1/read").extension(claims_context([("sub", "u-1")])).body(Body::empty()).unwrap();
        let res = app.clone().oneshot(signed_in).await.unwrap();
        assert_eq!(res.headers()["cache-control"], PRIVATE);
        let res = app.clone().oneshot(Request::get("/v1/read").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.headers()["cache-control"], PUBLIC_ITEM);
        let res = app.clone().oneshot(Request::get("/v1/plain").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.headers()["cache-control"], NO_STORE);
        let res = app.oneshot(Request::get("/v1/nope").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.headers()["cache-control"], NO_STORE, "errors are not kept either");
    }

    /// Captures log output as JSON lines (the real `telemetry` format).
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn logs_one_line_per_request_without_secrets() {
        // Tracing caches per-callsite interest globally; hit the callsites once before our
        // subscriber exists so a parallel test's first registration cannot race with it.
        let _ = send(Request::get("/v1/listings/warm").body(Body::empty()).unwrap()).await;
        let _ = send(Request::get("/v1/boom").body(Body::empty()).unwrap()).await;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;

        let capture = Capture::default();
        let writer = capture.clone();
        let filter = tracing_subscriber::EnvFilter::new("info");
        let subscriber = crate::telemetry::json_subscriber(filter).with_writer(move || writer.clone()).finish();
        let guard = tracing::subscriber::set_default(subscriber);
        let res = send(
            Request::get("/v1/listings/lst_1?token=hunter2")
                .header("authorization", "Bearer sekrit")
                .header("x-request-id", "rid-1")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK);
        let _ = send(Request::get("/v1/boom").body(Body::empty()).unwrap()).await;
        drop(guard);

        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("sekrit"), "{text}");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .filter(|v: &serde_json::Value| v["message"] == "request")
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        let first = &lines[0];
        assert_eq!(first["method"], "GET");
        assert_eq!(first["route"], "/v1/listings/{id}");
        assert_eq!(first["status"], 200);
        assert_eq!(first["ddb_requests"], 0);
        assert_eq!(first["session_ddb_requests"], 0);
        assert_eq!(first["request_id"], "rid-1");
        assert!(first["latency_ms"].as_f64().unwrap() >= 0.0);
        assert_eq!(lines[1]["status"], 500);
        // The 500's cause is logged (not returned), with the request id on its span.
        assert!(text.contains("secret cause"));
    }

    /// A router whose one route reads the table behind `stub`'s answer.
    async fn table_app(status: u16, body: &'static str) -> (Router, crate::test_support::AwsStub) {
        let stub = crate::test_support::AwsStub::start(move |_, _| (status, body.to_owned())).await;
        let table = Arc::new(Table::from_conf(crate::test_support::dynamodb_client(&stub.url()), "roost"));
        let read = move || {
            let table = table.clone();
            async move {
                let key = crate::keys::Key { pk: "P".into(), sk: "S".into() };
                table.get::<serde_json::Value>(&key).await.map_err(ApiError::from).map(|_| "found")
            }
        };
        (with_request_layers(Router::new().route("/v1/read", get(read))), stub)
    }

    #[tokio::test]
    async fn a_dependency_that_keeps_throttling_answers_503_with_retry_after() {
        let throttled =
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#;
        let (app, stub) = table_app(400, throttled).await;
        let res = app.oneshot(Request::get("/v1/read").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], crate::error::RETRY_AFTER_SECONDS);
        assert_eq!(body_json(res).await["code"], "service_unavailable");
        assert_eq!(stub.hits(), 3, "the SDK's own retries ran first");
    }

    #[tokio::test]
    async fn a_bug_behind_a_healthy_dependency_stays_a_500() {
        let refused = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException","message":"bad key"}"#;
        let (app, _stub) = table_app(400, refused).await;
        let res = app.oneshot(Request::get("/v1/read").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!res.headers().contains_key("retry-after"));
    }

    #[tokio::test]
    async fn an_answer_comes_before_the_invocation_deadline() {
        let slow = || async {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            "late"
        };
        let app = with_request_layers(Router::new().route("/v1/slow", get(slow)));
        let mut context = lambda_http::Context::default();
        let deadline = SystemTime::now() + DEADLINE_MARGIN + Duration::from_millis(300);
        context.deadline = deadline.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let req = Request::get("/v1/slow").body(Body::empty()).unwrap().with_lambda_context(context);
        let started = Instant::now();
        let res = app.oneshot(req).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()["retry-after"], crate::error::RETRY_AFTER_SECONDS);
    }
}
