//! Injected faults (issue 17): a reverse proxy between the FUNCTIONS and the emulators that can
//! answer a chosen share of DynamoDB, SQS, SNS, SES and Stripe calls with the service's own 500,
//! its throttling error, no answer at all, or the real answer held back after the write happened.
//!
//! Each function gets its own proxy port (stack.json `fault_proxies`) so a mode can be scoped to
//! some functions: a path prefix would break SigV4, which signs the path. The runtime's pollers
//! and provisioning keep talking to moto directly: Lambda's own machinery is not under test.
//! Switched by `POST/GET/DELETE <runtime_url>/_roost/faults` (docs/local-runtime.md).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// How long `hang` and `late` hold a call: past every client's timeout (the gateway's is 30 s).
const HOLD: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    Dynamodb,
    Sqs,
    Sns,
    Ses,
    Stripe,
}

impl Service {
    const ALL: [Service; 5] = [Service::Dynamodb, Service::Sqs, Service::Sns, Service::Ses, Service::Stripe];

    fn name(self) -> &'static str {
        match self {
            Service::Dynamodb => "dynamodb",
            Service::Sqs => "sqs",
            Service::Sns => "sns",
            Service::Ses => "ses",
            Service::Stripe => "stripe",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Not forwarded: the service's 500 in its own protocol.
    Error,
    /// Not forwarded: the service's throttling error.
    Throttle,
    /// Not forwarded, not answered until the client gives up.
    Hang,
    /// Forwarded (the write happens), the answer held until the client gives up.
    Late,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Error, Kind::Throttle, Kind::Hang, Kind::Late];

    fn name(self) -> &'static str {
        match self {
            Kind::Error => "error",
            Kind::Throttle => "throttle",
            Kind::Hang => "hang",
            Kind::Late => "late",
        }
    }
}

/// The body of `POST /_roost/faults`; every field optional.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mode {
    #[serde(default)]
    pub rate: f64,
    #[serde(default = "all_services")]
    pub services: Vec<Service>,
    #[serde(default = "all_kinds")]
    pub kinds: Vec<Kind>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Template logical ids; absent: every function.
    #[serde(default)]
    pub functions: Option<Vec<String>>,
}

fn all_services() -> Vec<Service> {
    Service::ALL.to_vec()
}

fn all_kinds() -> Vec<Kind> {
    Kind::ALL.to_vec()
}

struct Active {
    mode: Mode,
    rng: StdRng,
    /// Per service: the rate accumulated since its last fault, and the level (drawn in (0, 1])
    /// at which the next one falls.
    due: BTreeMap<Service, (f64, f64)>,
}

impl Active {
    fn new(mode: Mode) -> Active {
        let rng = StdRng::seed_from_u64(mode.seed.unwrap_or_else(rand::random));
        Active { mode, rng, due: BTreeMap::new() }
    }

    /// Whether this call of `service` gets a fault. Faults are spread over each service's calls,
    /// not drawn per call: each call adds `rate`, and a fault falls when the sum passes a level
    /// drawn in (0, 1]. So every service gets exactly its share in the long run, the places are
    /// random, and a service called `1 / rate` times while a mode is on has had at least one
    /// fault (independent draws leave a service with 10 calls at 10 % untouched a third of the
    /// time, and a test of "faults in every service" flaky).
    fn falls(&mut self, service: Service) -> bool {
        let rate = self.mode.rate;
        let rng = &mut self.rng;
        let (sum, level) = self.due.entry(service).or_insert_with(|| (0.0, 1.0 - rng.random::<f64>()));
        *sum += rate;
        if *sum < *level {
            return false;
        }
        *sum -= 1.0;
        *level = 1.0 - rng.random::<f64>();
        true
    }
}

#[derive(Default)]
struct Counters {
    injected: BTreeMap<(Service, Kind), u64>,
    /// (function, service; None for any other) -> calls that reached the emulator.
    forwarded: BTreeMap<(String, Option<Service>), u64>,
    /// function -> DynamoDB capacity its forwarded calls consumed (crate::capacity).
    dynamodb: BTreeMap<String, DynamodbUse>,
}

/// A function's DynamoDB calls by operation and the units they consumed.
#[derive(Default, Serialize)]
struct DynamodbUse {
    operations: BTreeMap<String, u64>,
    read_units: f64,
    write_units: f64,
}

pub struct Faults {
    moto_url: String,
    stripe_url: String,
    client: Client<HttpConnector, Body>,
    active: Mutex<Option<Active>>,
    counters: Mutex<Counters>,
    /// Function logical id -> its proxy's base URL.
    pub proxies: BTreeMap<String, String>,
}

impl Faults {
    /// Starts one proxy port per function; faults are off until a `POST /_roost/faults`.
    pub async fn start(moto_url: &str, stripe_url: &str, functions: &[String]) -> Result<Arc<Self>> {
        let mut listeners = Vec::new();
        let mut proxies = BTreeMap::new();
        for function in functions {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            proxies.insert(function.clone(), format!("http://{}", listener.local_addr()?));
            listeners.push((function.clone(), listener));
        }
        let faults = Arc::new(Self {
            moto_url: moto_url.trim_end_matches('/').to_string(),
            stripe_url: stripe_url.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            active: Mutex::new(None),
            counters: Mutex::default(),
            proxies,
        });
        for (function, listener) in listeners {
            let app = Router::new().fallback(proxy).with_state((faults.clone(), Arc::new(function)));
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    eprintln!("fault proxy stopped: {e}");
                }
            });
        }
        Ok(faults)
    }

    /// `GET|POST|DELETE /_roost/faults`, merged into the runtime's server.
    pub fn control_routes(self: &Arc<Self>) -> Router {
        Router::new().route("/_roost/faults", get(show_mode).post(set_mode).delete(clear_mode)).with_state(self.clone())
    }

    /// What `GET /_roost/faults` answers.
    fn describe(&self) -> Value {
        let mode = lock(&self.active).as_ref().map(|a| json!(a.mode));
        let counters = lock(&self.counters);
        let service_name = |s: &Option<Service>| s.map_or("other", Service::name);
        let mut injected = serde_json::Map::new();
        let mut forwarded: BTreeMap<&str, u64> = BTreeMap::new();
        let mut by_function: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
        for service in Service::ALL {
            let kinds: serde_json::Map<String, Value> = Kind::ALL
                .iter()
                .map(|k| (k.name().to_string(), json!(counters.injected.get(&(service, *k)).copied().unwrap_or(0))))
                .collect();
            injected.insert(service.name().into(), Value::Object(kinds));
            forwarded.insert(service.name(), 0);
        }
        forwarded.insert("other", 0);
        for ((function, service), n) in &counters.forwarded {
            *forwarded.entry(service_name(service)).or_default() += n;
            *by_function.entry(function).or_default().entry(service_name(service)).or_default() += n;
        }
        json!({"mode": mode, "injected": injected, "forwarded": forwarded, "forwarded_by_function": by_function,
               "dynamodb_by_function": counters.dynamodb})
    }

    /// Whether this call gets a fault, and which (counted here, when decided).
    fn decide(&self, function: &str, service: Service) -> Option<Kind> {
        let mut active = lock(&self.active);
        let active = active.as_mut()?;
        let mode = &active.mode;
        let scoped = mode.functions.as_ref().is_none_or(|f| f.iter().any(|f| f == function));
        if !scoped || !mode.services.contains(&service) || mode.kinds.is_empty() {
            return None;
        }
        let kinds = mode.kinds.len();
        if !active.falls(service) {
            return None;
        }
        let kind = active.mode.kinds[active.rng.random_range(0..kinds)];
        *lock(&self.counters).injected.entry((service, kind)).or_default() += 1;
        Some(kind)
    }

    fn count_forwarded(&self, function: &str, service: Option<Service>) {
        *lock(&self.counters).forwarded.entry((function.to_string(), service)).or_default() += 1;
    }

    /// Sends the request on unchanged (headers, including the signed Host, and a streamed body).
    async fn forward(&self, function: &str, service: Option<Service>, request: Request) -> Response {
        let upstream = if service == Some(Service::Stripe) { &self.stripe_url } else { &self.moto_url };
        let (mut parts, body) = request.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = match format!("{upstream}{path}").parse::<Uri>() {
            Ok(uri) => uri,
            Err(e) => return (StatusCode::BAD_GATEWAY, format!("fault proxy: bad URI: {e}")).into_response(),
        };
        for hop_by_hop in ["connection", "keep-alive", "proxy-connection", "upgrade", "te"] {
            parts.headers.remove(hop_by_hop);
        }
        self.count_forwarded(function, service);
        if service == Some(Service::Dynamodb) {
            return self.forward_metered(function, parts, body).await;
        }
        match self.client.request(http::Request::from_parts(parts, body)).await {
            Ok(response) => response.map(Body::new),
            Err(e) => (StatusCode::BAD_GATEWAY, format!("fault proxy: {e}")).into_response(),
        }
    }

    /// A DynamoDB call, buffered (its requests are at most 16 MB, most a few hundred bytes) so
    /// the capacity it consumes can be counted from its items and its answer's size.
    async fn forward_metered(&self, function: &str, parts: http::request::Parts, body: Body) -> Response {
        let operation = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
        let operation = crate::capacity::operation(operation).to_string();
        let request = match axum::body::to_bytes(body, 16 * 1024 * 1024).await {
            Ok(bytes) => bytes,
            Err(e) => {
                return (StatusCode::BAD_GATEWAY, format!("fault proxy: reading the request: {e}")).into_response();
            }
        };
        let response = match self.client.request(http::Request::from_parts(parts, Body::from(request.clone()))).await {
            Ok(response) => response,
            Err(e) => return (StatusCode::BAD_GATEWAY, format!("fault proxy: {e}")).into_response(),
        };
        let (parts, body) = response.into_parts();
        let answer = match axum::body::to_bytes(Body::new(body), usize::MAX).await {
            Ok(bytes) => bytes,
            Err(e) => {
                return (StatusCode::BAD_GATEWAY, format!("fault proxy: reading the answer: {e}")).into_response();
            }
        };
        // A refused condition or a cancelled transaction consumes capacity on DynamoDB too.
        if !parts.status.is_server_error() {
            let units = crate::capacity::units(&operation, &request, answer.len());
            let mut counters = lock(&self.counters);
            let used = counters.dynamodb.entry(function.to_string()).or_default();
            *used.operations.entry(operation).or_default() += 1;
            used.read_units += units.read;
            used.write_units += units.write;
        }
        Response::from_parts(parts, Body::from(answer))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Proxied = State<(Arc<Faults>, Arc<String>)>;

async fn proxy(State((faults, function)): Proxied, request: Request) -> Response {
    let service = classify(request.headers());
    let fault = service.and_then(|s| faults.decide(&function, s));
    match (fault, service) {
        (Some(Kind::Late), _) => {
            let response = faults.forward(&function, service, request).await;
            tokio::time::sleep(HOLD).await;
            response
        }
        (Some(Kind::Hang), _) => {
            drop(request);
            tokio::time::sleep(HOLD).await;
            (StatusCode::GATEWAY_TIMEOUT, "fault proxy: hung call released").into_response()
        }
        (Some(kind), Some(service)) => injected_error(service, kind),
        _ => faults.forward(&function, service, request).await,
    }
}

/// Which service a call is for: the SigV4 credential scope names it (`Credential=AKID/date/
/// region/<service>/aws4_request`); `X-Amz-Target` for a JSON call signed some other way; a call
/// with no AWS signature is Stripe's (the only non-AWS client behind the proxy).
pub fn classify(headers: &HeaderMap) -> Option<Service> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let authorization = header("authorization");
    if let Some(scope) = authorization.split("Credential=").nth(1) {
        let signing_name = scope.split([',', ' ']).next().unwrap_or_default().split('/').nth(3).unwrap_or_default();
        return match signing_name {
            "dynamodb" => Some(Service::Dynamodb),
            "sqs" => Some(Service::Sqs),
            "sns" => Some(Service::Sns),
            // SES v1 and v2 both sign as `ses`.
            "ses" => Some(Service::Ses),
            _ => None,
        };
    }
    let target = header("x-amz-target");
    if target.starts_with("DynamoDB_") {
        Some(Service::Dynamodb)
    } else if target.starts_with("AmazonSQS.") {
        Some(Service::Sqs)
    } else if authorization.starts_with("AWS4-") || !target.is_empty() {
        None
    } else {
        Some(Service::Stripe)
    }
}

/// The answer the service itself gives for a `kind` fault, in its own protocol, so the SDK
/// classifies it as it would on AWS (a retryable server error, a throttle).
pub fn injected_error(service: Service, kind: Kind) -> Response {
    let throttle = kind == Kind::Throttle;
    let json10 = "application/x-amz-json-1.0";
    let (status, content_type, error_type, body) = match (service, throttle) {
        (Service::Dynamodb, false) => (500, json10, "", aws_json("com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal server error")),
        (Service::Dynamodb, true) => (
            400,
            json10,
            "",
            aws_json(
                "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "The level of configured provisioned throughput for the table was exceeded.",
            ),
        ),
        (Service::Sqs, false) => (500, json10, "", aws_json("com.amazonaws.sqs#InternalFailure", "Internal failure")),
        (Service::Sqs, true) => (400, json10, "", aws_json("com.amazonaws.sqs#RequestThrottled", "Rate exceeded")),
        (Service::Sns, false) => (500, "text/xml", "", sns_xml("Receiver", "InternalError", "Internal failure")),
        (Service::Sns, true) => (400, "text/xml", "", sns_xml("Sender", "Throttling", "Rate exceeded")),
        (Service::Ses, false) => (500, "application/json", "InternalFailure", json!({"message": "Internal failure"}).to_string()),
        (Service::Ses, true) => {
            (429, "application/json", "TooManyRequestsException", json!({"message": "Too Many Requests"}).to_string())
        }
        (Service::Stripe, false) => (
            500,
            "application/json",
            "",
            json!({"error": {"type": "api_error", "message": "An unknown error occurred (injected)."}}).to_string(),
        ),
        (Service::Stripe, true) => (
            429,
            "application/json",
            "",
            json!({"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests hit the API too quickly."}})
                .to_string(),
        ),
    };
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    headers.insert("x-amzn-requestid", HeaderValue::from_static("00000000-0000-4000-8000-0000000fa017"));
    if !error_type.is_empty() {
        headers.insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    }
    response
}

fn aws_json(error_type: &str, message: &str) -> String {
    json!({"__type": error_type, "message": message}).to_string()
}

fn sns_xml(fault_type: &str, code: &str, message: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>{fault_type}</Type>\
         <Code>{code}</Code><Message>{message}</Message></Error>\
         <RequestId>00000000-0000-4000-8000-0000000fa017</RequestId></ErrorResponse>"
    )
}

type Control = State<Arc<Faults>>;

async fn show_mode(State(faults): Control) -> Response {
    axum::Json(faults.describe()).into_response()
}

async fn set_mode(State(faults): Control, body: Bytes) -> Response {
    let mode = match parse_mode(&body, &faults.proxies) {
        Ok(mode) => mode,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e:#}")).into_response(),
    };
    *lock(&faults.active) = Some(Active::new(mode));
    axum::Json(faults.describe()).into_response()
}

async fn clear_mode(State(faults): Control) -> Response {
    *lock(&faults.active) = None;
    axum::Json(faults.describe()).into_response()
}

/// A mode from a request body (empty: the defaults), checked against the stack's functions.
fn parse_mode(body: &[u8], functions: &BTreeMap<String, String>) -> Result<Mode> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    let mode: Mode =
        serde_json::from_slice(body).context("a fault mode is {rate, services, kinds, seed, functions}")?;
    if !(0.0..=1.0).contains(&mode.rate) {
        anyhow::bail!("rate {} is not between 0 and 1", mode.rate);
    }
    for f in mode.functions.iter().flatten() {
        if !functions.contains_key(f) {
            anyhow::bail!("no function {f} in this stack");
        }
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(service: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let value = format!(
            "AWS4-HMAC-SHA256 Credential=test/20261207/eu-west-1/{service}/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc"
        );
        headers.insert("authorization", HeaderValue::from_str(&value).unwrap());
        headers
    }

    #[test]
    fn the_credential_scope_names_the_service() {
        assert_eq!(classify(&signed("dynamodb")), Some(Service::Dynamodb));
        assert_eq!(classify(&signed("sqs")), Some(Service::Sqs));
        assert_eq!(classify(&signed("sns")), Some(Service::Sns));
        assert_eq!(classify(&signed("ses")), Some(Service::Ses));
        assert_eq!(classify(&signed("s3")), None, "S3 is never faulted");
    }

    #[test]
    fn unsigned_json_calls_go_by_target_and_the_rest_is_stripe() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-target", HeaderValue::from_static("DynamoDB_20120810.GetItem"));
        assert_eq!(classify(&headers), Some(Service::Dynamodb));
        headers.insert("x-amz-target", HeaderValue::from_static("AmazonSQS.SendMessage"));
        assert_eq!(classify(&headers), Some(Service::Sqs));
        let mut stripe = HeaderMap::new();
        stripe.insert("authorization", HeaderValue::from_static("Bearer sk_test_123"));
        assert_eq!(classify(&stripe), Some(Service::Stripe));
    }

    async fn body_of(response: Response) -> (u16, String, Value) {
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        (status, content_type, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    #[tokio::test]
    async fn errors_speak_each_services_protocol() {
        let (status, ct, body) = body_of(injected_error(Service::Dynamodb, Kind::Error)).await;
        assert_eq!((status, ct.as_str()), (500, "application/x-amz-json-1.0"));
        assert_eq!(body["__type"], "com.amazonaws.dynamodb.v20120810#InternalServerError");
        let (status, _, body) = body_of(injected_error(Service::Dynamodb, Kind::Throttle)).await;
        assert_eq!(status, 400);
        assert_eq!(body["__type"], "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException");
        let (status, _, body) = body_of(injected_error(Service::Sqs, Kind::Throttle)).await;
        assert_eq!((status, body["__type"].as_str()), (400, Some("com.amazonaws.sqs#RequestThrottled")));
        let (status, ct, body) = body_of(injected_error(Service::Sns, Kind::Error)).await;
        assert_eq!((status, ct.as_str()), (500, "text/xml"));
        assert!(body.as_str().unwrap().contains("<Code>InternalError</Code>"), "{body}");
        let response = injected_error(Service::Ses, Kind::Throttle);
        assert_eq!(response.headers()["x-amzn-errortype"], "TooManyRequestsException");
        assert_eq!(response.status(), 429);
        let (status, _, body) = body_of(injected_error(Service::Stripe, Kind::Error)).await;
        assert_eq!((status, body["error"]["type"].as_str()), (500, Some("api_error")));
        let (status, _, body) = body_of(injected_error(Service::Stripe, Kind::Throttle)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (429, Some("rate_limit")));
    }

    #[test]
    fn a_mode_defaults_to_everything_at_rate_zero_and_rejects_the_unknown() {
        let functions = BTreeMap::from([("BookingsFunction".to_string(), String::new())]);
        let mode = parse_mode(b"", &functions).unwrap();
        assert_eq!((mode.rate, mode.services.len(), mode.kinds.len()), (0.0, 5, 4));
        assert!(mode.functions.is_none());
        let scoped = parse_mode(br#"{"rate":1,"functions":["BookingsFunction"]}"#, &functions).unwrap();
        assert_eq!(scoped.functions.unwrap(), ["BookingsFunction"]);
        assert!(parse_mode(br#"{"rate":1.5}"#, &functions).is_err());
        assert!(parse_mode(br#"{"services":["s3"]}"#, &functions).is_err());
        assert!(parse_mode(br#"{"functions":["Nope"]}"#, &functions).is_err());
    }

    #[tokio::test]
    async fn faults_hit_only_the_scoped_functions_at_the_rate_asked() {
        let faults =
            Faults::start("http://127.0.0.1:9", "http://127.0.0.1:9", &["A".into(), "B".into()]).await.unwrap();
        let mode = parse_mode(br#"{"rate":1,"services":["sqs"],"kinds":["error"],"functions":["A"]}"#, &faults.proxies)
            .unwrap();
        *lock(&faults.active) = Some(Active::new(mode));
        assert_eq!(faults.decide("A", Service::Sqs), Some(Kind::Error));
        assert_eq!(faults.decide("B", Service::Sqs), None, "B is not in scope");
        assert_eq!(faults.decide("A", Service::Dynamodb), None, "dynamodb is not in scope");
        let mode = parse_mode(br#"{"rate":0.25,"seed":7}"#, &faults.proxies).unwrap();
        *lock(&faults.active) = Some(Active::new(mode));
        let hits = (0..4000).filter(|_| faults.decide("B", Service::Sns).is_some()).count();
        assert!((999..=1001).contains(&hits), "{hits} of 4000 at rate 0.25");
        assert_eq!(faults.describe()["injected"]["sqs"]["error"], 1);
    }

    #[test]
    fn every_service_called_one_over_rate_times_has_a_fault_at_a_random_place() {
        let mut places = std::collections::BTreeSet::new();
        for seed in 0..50 {
            let mut active = Active::new(
                parse_mode(format!(r#"{{"rate":0.1,"seed":{seed}}}"#).as_bytes(), &BTreeMap::new()).unwrap(),
            );
            let first = (1..=10).find(|_| active.falls(Service::Ses));
            places.insert(first.expect("a fault within the first 10 calls"));
            let more = (0..990).filter(|_| active.falls(Service::Ses)).count();
            assert!((98..=100).contains(&more), "{more} faults in 990 more calls at 10 %");
        }
        assert!(places.len() >= 5, "the first fault's place varies with the seed: {places:?}");
        let mut never = Active::new(parse_mode(br#"{"rate":0}"#, &BTreeMap::new()).unwrap());
        assert!((0..1000).all(|_| !never.falls(Service::Dynamodb)), "rate 0 injects nothing");
        let mut always = Active::new(parse_mode(br#"{"rate":1}"#, &BTreeMap::new()).unwrap());
        assert!((0..1000).all(|_| always.falls(Service::Dynamodb)), "rate 1 injects every call");
    }
}
