//! API Gateway (HTTP API), locally: routes from the template, the JWT authorizer, the payload
//! format 2.0 event, and API Gateway's own answers when the function fails or takes longer
//! than the integration timeout (30 s).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;

use crate::lambda::{Lambda, Outcome, new_request_id};
use crate::template::ACCOUNT_ID;

/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// The HTTP API's maximum integration timeout: a slower answer is a 503.
pub const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(30);

type PathParameters = BTreeMap<String, String>;
/// (literal segments, not greedy, specific method): larger wins.
type Specificity = (usize, usize, bool);

#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub function: String,
    pub protected: bool,
}

impl Route {
    fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Path parameters if the route matches the (decoded: [`decode_path`]) path, with a
    /// specificity score: API Gateway prefers the most literal segments, then a specific method
    /// over `ANY`, and a greedy `{x+}` last.
    fn matches(&self, method: &str, path: &str) -> Option<(PathParameters, Specificity)> {
        if self.method != "ANY" && self.method != method {
            return None;
        }
        let mut params = BTreeMap::new();
        let mut literals = 0;
        let actual: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let pattern: Vec<&str> = self.path.trim_start_matches('/').split('/').collect();
        for (i, segment) in pattern.iter().enumerate() {
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix("+}")) {
                let rest = actual.get(i..).filter(|r| !r.is_empty() && !r[0].is_empty())?;
                params.insert(name.to_string(), rest.join("/"));
                return Some((params, (literals, 0, self.method != "ANY")));
            }
            let value = actual.get(i)?;
            if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                if value.is_empty() {
                    return None;
                }
                params.insert(name.to_string(), value.to_string());
            } else if segment == value {
                literals += 1;
            } else {
                return None;
            }
        }
        (actual.len() == pattern.len()).then_some((params, (literals, 1, self.method != "ANY")))
    }
}

pub struct Authorizer {
    pub issuer: String,
    pub audience: Vec<String>,
    pub jwks_url: String,
    keys: OnceCell<JwkSet>,
}

impl Authorizer {
    pub fn new(issuer: String, audience: Vec<String>, jwks_url: String) -> Self {
        Self { issuer, audience, jwks_url, keys: OnceCell::new() }
    }

    /// What API Gateway's JWT authorizer checks: the algorithm (RS256, what Cognito signs with;
    /// `none` and HMAC are refused), signature (JWKS), issuer, expiry, not-before, issued-at
    /// (not in the future), and that `aud` (id tokens) or `client_id` (access tokens) is one of
    /// the audiences.
    async fn verify(&self, token: &str) -> Result<Map<String, Value>> {
        let keys = self
            .keys
            .get_or_try_init(|| async {
                reqwest::get(&self.jwks_url).await?.error_for_status()?.json::<JwkSet>().await
            })
            .await?;
        let header = jsonwebtoken::decode_header(token)?;
        if header.alg != Algorithm::RS256 {
            bail!("algorithm {:?} is not accepted", header.alg);
        }
        let kid = header.kid.context("token has no kid")?;
        let jwk = keys.find(&kid).context("unknown kid")?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.validate_nbf = true;
        validation.validate_aud = false;
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &DecodingKey::from_jwk(jwk)?, &validation)?.claims;
        let now = jiff::Timestamp::now().as_second();
        if claims.get("iat").and_then(Value::as_i64).is_some_and(|issued| issued > now) {
            bail!("issued in the future");
        }
        let audience = claims.get("client_id").or_else(|| claims.get("aud"));
        let allowed = match audience {
            Some(Value::String(a)) => self.audience.contains(a),
            Some(Value::Array(list)) => {
                list.iter().filter_map(Value::as_str).any(|a| self.audience.iter().any(|x| x == a))
            }
            _ => false,
        };
        if !allowed {
            bail!("audience not allowed");
        }
        Ok(claims)
    }
}

pub struct Cors {
    pub allow_origins: Vec<String>,
    pub allow_methods: String,
    pub allow_headers: String,
    pub expose_headers: String,
    pub max_age: Option<u64>,
}

pub struct Gateway {
    pub routes: Vec<Route>,
    pub lambda: Arc<Lambda>,
    pub authorizer: Option<Authorizer>,
    pub cors: Option<Cors>,
    /// [`INTEGRATION_TIMEOUT`], or shorter for tests (`--gateway-timeout`).
    pub integration_timeout: Duration,
    /// The routes' throttling (`DefaultRouteSettings`, `RouteSettings`).
    pub throttles: crate::throttle::Throttles,
}

pub async fn handle(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let request_id = new_request_id();
    let mut response = gateway.serve(request, &request_id).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("apigw-requestid", v);
    }
    response
}

fn message(status: StatusCode, text: &str) -> Response {
    (status, [("content-type", "application/json")], json!({ "message": text }).to_string()).into_response()
}

impl Gateway {
    async fn serve(&self, request: Request, request_id: &str) -> Response {
        let (parts, body) = request.into_parts();
        let origin = parts.headers.get("origin").and_then(|v| v.to_str().ok()).map(str::to_string);
        if let (Some(cors), Some(origin)) = (&self.cors, &origin)
            && parts.method == Method::OPTIONS
            && parts.headers.contains_key("access-control-request-method")
        {
            return cors.preflight(origin);
        }
        let mut response = self.route(parts, body, request_id).await;
        if let (Some(cors), Some(origin)) = (&self.cors, &origin) {
            cors.decorate(origin, response.headers_mut());
        }
        response
    }

    async fn route(&self, parts: axum::http::request::Parts, body: Body, request_id: &str) -> Response {
        let method = parts.method.as_str().to_uppercase();
        let path = decode_path(parts.uri.path());
        let Some((route, params)) = self
            .routes
            .iter()
            .filter_map(|r| r.matches(&method, &path).map(|(params, score)| (r, params, score)))
            .max_by_key(|(_, _, score)| *score)
            .map(|(r, params, _)| (r, params))
        else {
            return message(StatusCode::NOT_FOUND, "Not Found");
        };
        if !self.throttles.admit(&route.key()) {
            return message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
        }

        let mut claims = None;
        if route.protected {
            let Some(authorizer) = &self.authorizer else { return message(StatusCode::UNAUTHORIZED, "Unauthorized") };
            let token = parts
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim());
            match token {
                Some(token) if !token.is_empty() => match authorizer.verify(token).await {
                    Ok(c) => claims = Some(c),
                    Err(_) => return message(StatusCode::UNAUTHORIZED, "Unauthorized"),
                },
                _ => return message(StatusCode::UNAUTHORIZED, "Unauthorized"),
            }
        }

        let body = match axum::body::to_bytes(body, MAX_BODY).await {
            Ok(b) => b,
            Err(_) => return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"),
        };
        let event = build_event(route, &parts, &path, params, claims, &body, request_id);
        let invocation = self.lambda.invoke(&route.function, Bytes::from(event.to_string()));
        // At the deadline API Gateway answers 503; the function runs on to its own Timeout.
        let Ok(outcome) = tokio::time::timeout(self.integration_timeout, invocation).await else {
            return message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable");
        };
        match outcome {
            Ok(Outcome::Response(payload)) => {
                to_http_response(&payload).unwrap_or_else(|_| message(StatusCode::BAD_GATEWAY, "Internal Server Error"))
            }
            Ok(Outcome::Error(_) | Outcome::Crashed(_)) | Err(_) => {
                message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

impl Cors {
    fn allows(&self, origin: &str) -> Option<&str> {
        if self.allow_origins.iter().any(|o| o == "*") {
            Some("*")
        } else {
            self.allow_origins.iter().find(|o| *o == origin).map(String::as_str)
        }
    }

    fn preflight(&self, origin: &str) -> Response {
        let mut headers = HeaderMap::new();
        if let Some(allowed) = self.allows(origin) {
            insert(&mut headers, "access-control-allow-origin", allowed);
            insert(&mut headers, "access-control-allow-methods", &self.allow_methods);
            insert(&mut headers, "access-control-allow-headers", &self.allow_headers);
            if let Some(max_age) = self.max_age {
                insert(&mut headers, "access-control-max-age", &max_age.to_string());
            }
        }
        (StatusCode::NO_CONTENT, headers).into_response()
    }

    fn decorate(&self, origin: &str, headers: &mut HeaderMap) {
        if let Some(allowed) = self.allows(origin) {
            insert(headers, "access-control-allow-origin", allowed);
            if !self.expose_headers.is_empty() {
                insert(headers, "access-control-expose-headers", &self.expose_headers);
            }
        }
    }
}

fn insert(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(name, v);
    }
}

/// API Gateway hands claims to the function as strings; arrays become `[a b]`.
pub fn render_claims(claims: &Map<String, Value>) -> Map<String, Value> {
    fn render(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => format!("[{}]", items.iter().map(render).collect::<Vec<_>>().join(" ")),
            other => other.to_string(),
        }
    }
    claims.iter().map(|(k, v)| (k.clone(), Value::String(render(v)))).collect()
}

/// Payload format 2.0's headers (repeated ones joined with commas) and its `cookies` (the
/// `cookie` header, split).
fn headers_and_cookies(from: &HeaderMap) -> (Map<String, Value>, Vec<Value>) {
    let mut headers: Map<String, Value> = Map::new();
    let mut cookies = Vec::new();
    for (name, value) in from {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        if name == "cookie" {
            cookies.extend(value.split(';').map(|c| Value::String(c.trim().to_string())));
            continue;
        }
        add_joined(&mut headers, name.as_str(), &value);
    }
    (headers, cookies)
}

/// Adds `key: value`, or appends `,value` to the value already there, as API Gateway joins
/// repeated headers and query parameters.
fn add_joined(map: &mut Map<String, Value>, key: &str, value: &str) {
    match map.get_mut(key) {
        Some(Value::String(existing)) => {
            existing.push(',');
            existing.push_str(value);
        }
        _ => {
            map.insert(key.to_string(), Value::String(value.to_string()));
        }
    }
}

fn build_event(
    route: &Route,
    parts: &axum::http::request::Parts,
    path: &str,
    params: BTreeMap<String, String>,
    claims: Option<Map<String, Value>>,
    body: &Bytes,
    request_id: &str,
) -> Value {
    let (headers, cookies) = headers_and_cookies(&parts.headers);
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let mut query: Map<String, Value> = Map::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        add_joined(&mut query, &k, &v);
    }
    let now = jiff::Timestamp::now();
    let (body, is_base64) = match std::str::from_utf8(body) {
        _ if body.is_empty() => (Value::Null, false),
        Ok(text) => (Value::String(text.to_string()), false),
        Err(_) => (Value::String(BASE64.encode(body)), true),
    };
    let host = headers.get("host").and_then(Value::as_str).unwrap_or("localhost").to_string();
    let mut context = json!({
        "accountId": ACCOUNT_ID,
        "apiId": "local",
        "domainName": host,
        "domainPrefix": host.split('.').next().unwrap_or("local"),
        "http": {
            "method": parts.method.as_str(),
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": headers.get("user-agent").cloned().unwrap_or(Value::String(String::new())),
        },
        "requestId": request_id,
        "routeKey": route.key(),
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000").to_string(),
        "timeEpoch": now.as_millisecond(),
    });
    if let Some(claims) = claims {
        context["authorizer"] = json!({"jwt": {"claims": render_claims(&claims), "scopes": null}});
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": route.key(),
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": is_base64,
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !params.is_empty() {
        event["pathParameters"] = json!(params);
    }
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

/// Payload format 2.0: `{statusCode, headers, cookies, body, isBase64Encoded}`, or any other JSON
/// value, which API Gateway returns as a 200 JSON body.
fn to_http_response(payload: &[u8]) -> Result<Response> {
    let value: Value = serde_json::from_slice(payload)?;
    let Some(status) = value.get("statusCode") else {
        return Ok((StatusCode::OK, [("content-type", "application/json")], value.to_string()).into_response());
    };
    let status = StatusCode::from_u16(u16::try_from(status.as_u64().context("statusCode")?)?)?;
    let mut response = Response::builder().status(status);
    let headers = response.headers_mut().context("builder")?;
    if let Some(map) = value.get("headers").and_then(Value::as_object) {
        for (name, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            headers.append(HeaderName::from_bytes(name.as_bytes())?, HeaderValue::from_str(&text)?);
        }
    }
    if let Some(map) = value.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in map {
            for v in values.as_array().into_iter().flatten().filter_map(Value::as_str) {
                headers.append(HeaderName::from_bytes(name.as_bytes())?, HeaderValue::from_str(v)?);
            }
        }
    }
    for cookie in value.get("cookies").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
        headers.append("set-cookie", HeaderValue::from_str(cookie)?);
    }
    let body = match value.get("body") {
        // A 304 (and a 204) has no body on the wire whatever the function returned, as with
        // API Gateway; its headers (ETag, Cache-Control) pass through.
        _ if status == StatusCode::NOT_MODIFIED || status == StatusCode::NO_CONTENT => Vec::new(),
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if value.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => {
            BASE64.decode(s)?
        }
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(_) => bail!("body must be a string"),
    };
    Ok(response.body(Body::from(body))?)
}

/// The path as HTTP API routes it and hands it to the function (`rawPath`, `requestContext.http.path`
/// and the path parameters): percent-decoded (`%2F` becomes a segment separator, `+` stays `+`),
/// and cut at a decoded `?`. REST APIs and function URLs keep the encoding; HTTP APIs do not.
pub fn decode_path(raw: &str) -> String {
    let decoded = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
    decoded.split('?').next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> Route {
        Route { method: method.into(), path: path.into(), function: "f".into(), protected: false }
    }

    #[test]
    fn literal_segments_beat_parameters_and_greedy_paths() {
        let routes = [route("GET", "/v1/me/{x}"), route("GET", "/v1/me/listings"), route("ANY", "/v1/{proxy+}")];
        let best = |method: &str, path: &str| {
            let path = decode_path(path);
            routes
                .iter()
                .filter_map(|r| r.matches(method, &path).map(|(p, s)| (r.path.clone(), p, s)))
                .max_by_key(|(_, _, s)| *s)
                .map(|(path, params, _)| (path, params))
        };
        assert_eq!(best("GET", "/v1/me/listings").unwrap().0, "/v1/me/listings");
        let (path, params) = best("GET", "/v1/me/a%20b").unwrap();
        assert_eq!((path.as_str(), params["x"].as_str()), ("/v1/me/{x}", "a b"));
        let (path, params) = best("DELETE", "/v1/a/b%20c/d").unwrap();
        assert_eq!((path.as_str(), params["proxy"].as_str()), ("/v1/{proxy+}", "a/b c/d"));
        assert!(best("GET", "/v2").is_none());
        assert_eq!(best("GET", "/v1/me/").unwrap().0, "/v1/{proxy+}", "an empty segment fits only a greedy parameter");
    }

    #[test]
    fn claims_are_strings_and_arrays_render_as_api_gateway_does() {
        let claims = json!({"cognito:groups": ["hosts", "admins"], "exp": 1700000000, "sub": "u1"});
        let rendered = render_claims(claims.as_object().unwrap());
        assert_eq!(rendered["cognito:groups"], "[hosts admins]");
        assert_eq!(rendered["exp"], "1700000000");
        assert_eq!(rendered["sub"], "u1");
    }

    #[tokio::test]
    async fn a_304_passes_its_headers_without_a_body() {
        let not_modified = to_http_response(
            br#"{"statusCode":304,"headers":{"etag":"\"a\"","cache-control":"public, max-age=60"},"body":"stale"}"#,
        )
        .unwrap();
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(not_modified.headers()["etag"], "\"a\"");
        assert_eq!(not_modified.headers()["cache-control"], "public, max-age=60");
        let bytes = axum::body::to_bytes(not_modified.into_body(), MAX_BODY).await.unwrap();
        assert!(bytes.is_empty(), "a 304 has no body");
    }

    #[test]
    fn responses_follow_payload_format_2() {
        let ok =
            to_http_response(br#"{"statusCode":201,"headers":{"x-a":"1"},"cookies":["c=1"],"body":"hi"}"#).unwrap();
        assert_eq!(ok.status(), 201);
        assert_eq!(ok.headers()["x-a"], "1");
        assert_eq!(ok.headers()["set-cookie"], "c=1");
        let inferred = to_http_response(br#"{"hello":"world"}"#).unwrap();
        assert_eq!(inferred.status(), 200);
        assert!(to_http_response(br#"{"statusCode":"teapot"}"#).is_err());
        assert!(to_http_response(b"not json").is_err());
    }

    /// A gateway with one route, `GET /{word}`, to the bash function of `crate::test_functions`.
    async fn echo_gateway(name: &str, integration_timeout: Duration) -> Arc<Gateway> {
        echo_gateway_throttled(name, integration_timeout, None).await
    }

    /// The same, with the HTTP API's throttling properties.
    async fn echo_gateway_throttled(name: &str, integration_timeout: Duration, api: Option<&Value>) -> Arc<Gateway> {
        let (lambda, _) = crate::test_functions::start(name, "", 2, crate::lambda::Limits::default()).await;
        let route = Route { method: "GET".into(), path: "/{word}".into(), function: "F".into(), protected: false };
        let throttles = crate::throttle::Throttles::from_http_api(api);
        Arc::new(Gateway { routes: vec![route], lambda, authorizer: None, cors: None, integration_timeout, throttles })
    }

    async fn call(gateway: &Arc<Gateway>, uri: &str) -> (StatusCode, Value) {
        call_with(gateway, uri, Body::empty()).await
    }

    async fn call_with(gateway: &Arc<Gateway>, uri: &str, body: Body) -> (StatusCode, Value) {
        let request = Request::builder().uri(uri).header("host", "localhost").body(body).unwrap();
        let response = handle(State(gateway.clone()), request).await;
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), MAX_BODY).await.unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    #[tokio::test]
    async fn an_invocation_still_running_at_the_integration_timeout_is_a_503() {
        let gateway = echo_gateway("gateway-timeout", Duration::from_millis(700)).await;
        let started = std::time::Instant::now();
        let (status, body) = call(&gateway, "/sleep").await;
        assert_eq!((status, body), (StatusCode::SERVICE_UNAVAILABLE, json!({"message": "Service Unavailable"})));
        assert!(started.elapsed() < Duration::from_secs(3), "answered at the timeout: {:?}", started.elapsed());
        let (status, body) = call(&gateway, "/quick").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        gateway.lambda.stop();
    }

    #[tokio::test]
    async fn a_body_over_10_mb_is_refused_by_the_gateway_as_api_gateway_does() {
        let gateway = echo_gateway("gateway-413", INTEGRATION_TIMEOUT).await;
        let (status, body) = call_with(&gateway, "/big", Body::from(vec![b'x'; MAX_BODY + 1])).await;
        assert_eq!((status, body), (StatusCode::PAYLOAD_TOO_LARGE, json!({"message": "Request Entity Too Large"})));
        let (status, _) = call_with(&gateway, "/small", Body::from(vec![b'x'; 1_000])).await;
        assert_eq!(status, StatusCode::OK);
        gateway.lambda.stop();
    }

    #[tokio::test]
    async fn a_route_over_its_throttle_gets_api_gateways_429_before_any_function_runs() {
        let api = json!({"DefaultRouteSettings": {"ThrottlingBurstLimit": 2, "ThrottlingRateLimit": 0.001}});
        let gateway = echo_gateway_throttled("gateway-429", INTEGRATION_TIMEOUT, Some(&api)).await;
        for _ in 0..2 {
            assert_eq!(call(&gateway, "/within").await.0, StatusCode::OK);
        }
        let (status, body) = call(&gateway, "/over").await;
        assert_eq!((status, body), (StatusCode::TOO_MANY_REQUESTS, json!({"message": "Too Many Requests"})));
        gateway.lambda.stop();
    }

    #[tokio::test]
    async fn the_path_is_decoded_before_routing_as_http_api_does() {
        let gateway = echo_gateway("gateway-path", INTEGRATION_TIMEOUT).await;
        let (status, event) = call(&gateway, "/caf%C3%A9%20au+lait%3Fnot-a-query?q=1").await;
        assert_eq!(status, StatusCode::OK, "{event}");
        assert_eq!(event["rawPath"], "/café au+lait");
        assert_eq!(event["requestContext"]["http"]["path"], "/café au+lait");
        assert_eq!(event["pathParameters"]["word"], "café au+lait");
        assert_eq!(event["rawQueryString"], "q=1");
        let (status, body) = call(&gateway, "/a%2Fb").await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"message": "Not Found"})), "%2F splits segments");
        gateway.lambda.stop();
    }
}
