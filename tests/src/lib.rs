//! The end-to-end harness: tests drive the stack that `cargo roost test` started (found through
//! the `stack.json` named by `ROOST_STACK`), through HTTP as a client would.

pub mod api;
pub mod authorization;
pub mod bench;
pub mod faults;
pub mod fixtures;
pub mod invariants;
pub mod load;
pub mod probe;
pub mod requests;
pub mod seed;
pub mod tokens;
pub mod tools;

pub use api::{Api, Cancel, NewListing, NewReview, Stay, anonymous};

use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
pub struct Stack {
    pub api_url: String,
    pub moto_url: String,
    pub stripe_url: String,
    pub runtime_url: String,
    pub user_pool_id: Option<String>,
    pub user_pool_client_id: Option<String>,
    pub table_name: Option<String>,
    pub logs_dir: std::path::PathBuf,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// The stack `cargo roost test` started, or `None` when `ROOST_STACK` is not set (a plain
/// `cargo test`, where the end-to-end tests skip: [`needs_stack!`]).
static STACK: LazyLock<Option<Stack>> = LazyLock::new(|| {
    let path = std::env::var("ROOST_STACK").ok()?;
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}")))
});

/// What a skipped end-to-end test says (once per process).
pub const NO_STACK: &str = "skipped: ROOST_STACK is not set (run `cargo roost test`)";

impl Stack {
    /// The stack; only for tests that began with [`needs_stack!`].
    pub fn get() -> &'static Stack {
        Stack::try_get().unwrap_or_else(|| panic!("{NO_STACK}: begin the test with roost_e2e::needs_stack!()"))
    }

    pub fn try_get() -> Option<&'static Stack> {
        STACK.as_ref()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api_url)
    }

    /// A function's log (its output and REPORT lines), as the local runtime wrote it so far.
    pub fn function_log(&self, function: &str) -> String {
        std::fs::read_to_string(self.logs_dir.join(format!("{function}.log"))).unwrap_or_default()
    }

    /// Invokes a function directly with any payload, as `aws lambda invoke` would; returns the
    /// runtime's outcome (`response`, `error` or `crashed`) and the body.
    pub async fn invoke(&self, function: &str, payload: &Value) -> (String, Value) {
        let response = client()
            .post(format!("{}/_roost/invoke/{function}", self.runtime_url))
            .json(payload)
            .send()
            .await
            .expect("runtime reachable");
        let outcome = response.headers().get("x-roost-outcome").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let text = response.text().await.expect("body");
        (outcome, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }
}

/// Whether the stack is up; when it is not, says so once per process (straight to stderr: the
/// test harness would swallow the output of a passing test).
pub fn stack_is_up() -> bool {
    if Stack::try_get().is_some() {
        return true;
    }
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{NO_STACK}");
    });
    false
}

/// The first line of every test that needs the stack: returns from the test (which passes) when
/// `ROOST_STACK` is not set, so `cargo test --workspace` without the stack is fast and green;
/// `cargo roost test` sets it and runs them all.
#[macro_export]
macro_rules! needs_stack {
    () => {
        if !$crate::stack_is_up() {
            return;
        }
    };
}

/// A new client per call: each `#[tokio::test]` has its own runtime, and a pooled connection
/// from a runtime that has ended fails ("dispatch gone").
pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// A unique name for what a test creates, so tests can run in parallel on one stack.
pub fn unique(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{}{:x}{n}", std::process::id(), jiff::Timestamp::now().as_millisecond())
}

/// A signed-up, confirmed, signed-in user, made through the public API as a client would.
#[derive(Debug, Clone)]
pub struct User {
    pub user_id: String,
    pub email: String,
    pub password: String,
    pub name: String,
    pub access_token: String,
    pub id_token: String,
    pub refresh_token: String,
}

pub const PASSWORD: &str = "Roost-test-1";

impl User {
    /// A new guest with a unique e-mail.
    pub async fn guest(name: &str) -> User {
        let email = format!("{}@test.roost.dev", unique(&name.to_lowercase().replace(' ', "-")));
        let signup =
            post_auth("/v1/auth/signup", &serde_json::json!({"email": email, "password": PASSWORD, "name": name}))
                .await;
        assert_eq!(signup.status(), 201, "signup: {}", signup.text().await.unwrap_or_default());
        let user_id = signup.json::<Value>().await.expect("json")["user_id"].as_str().expect("user_id").to_string();
        let confirm = post_auth("/v1/auth/confirm", &serde_json::json!({"email": email, "code": "123456"})).await;
        assert_eq!(confirm.status(), 204, "confirm");
        let tokens = login(&email, PASSWORD).await;
        User {
            user_id,
            email,
            password: PASSWORD.into(),
            name: name.into(),
            access_token: tokens["access_token"].as_str().expect("access").into(),
            id_token: tokens["id_token"].as_str().expect("id").into(),
            refresh_token: tokens["refresh_token"].as_str().expect("refresh").into(),
        }
    }

    /// A new user who became a host, with tokens that carry the `hosts` group.
    pub async fn host(name: &str) -> User {
        let mut user = User::guest(name).await;
        let response = user.post("/v1/me/host", None).await;
        assert_eq!(response.status(), 200, "become host");
        let refreshed = post_auth("/v1/auth/refresh", &serde_json::json!({"refresh_token": user.refresh_token})).await;
        assert_eq!(refreshed.status(), 200, "refresh");
        let tokens: Value = refreshed.json().await.expect("json");
        user.access_token = tokens["access_token"].as_str().expect("access").into();
        user.id_token = tokens["id_token"].as_str().expect("id").into();
        user
    }

    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.access_token)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        client().get(Stack::get().url(path)).header("authorization", self.bearer()).send().await.expect("api")
    }

    pub async fn post(&self, path: &str, body: Option<&Value>) -> reqwest::Response {
        self.send(reqwest::Method::POST, path, body).await
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> reqwest::Response {
        let request = client().request(method, Stack::get().url(path)).header("authorization", self.bearer());
        let request = match body {
            Some(body) => request.json(body),
            None => request,
        };
        request.send().await.expect("api")
    }
}

/// `POST` to an auth route, sent again (with backoff, for up to about 10 s) while API Gateway
/// throttles it (429), as a client should: the auth routes' throttling (`RouteSettings` in the
/// template) is shared by every test on the stack, the fuzzer's bursts included.
pub async fn post_auth(path: &str, body: &Value) -> reqwest::Response {
    let mut wait = std::time::Duration::from_millis(200);
    for _ in 0..8 {
        let response = client().post(Stack::get().url(path)).json(body).send().await.expect("api");
        if response.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
            return response;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(std::time::Duration::from_secs(2));
    }
    client().post(Stack::get().url(path)).json(body).send().await.expect("api")
}

/// `POST /v1/auth/login`, asserting success; returns the token body.
pub async fn login(email: &str, password: &str) -> Value {
    let response = post_auth("/v1/auth/login", &serde_json::json!({"email": email, "password": password})).await;
    assert_eq!(response.status(), 200, "login {email}");
    response.json().await.expect("json")
}

/// Asserts an RFC 9457 problem with this status and code; returns the body for more checks.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let body: Value = response.json().await.expect("problem body is JSON");
    assert_eq!(content_type, "application/problem+json", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    body
}

/// Runs futures concurrently on the runtime's threads (so requests really race) and returns
/// their outputs in order.
pub async fn join_all<T, F>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("task panicked"));
    }
    out
}

/// A raw call to one of moto's JSON-protocol services, e.g. `moto_json("sqs", "AmazonSQS.SendMessage",
/// body)`; moto checks no signature but routes by the service in the credential scope. Asserts
/// success and returns the answer (`Null` for an empty one).
pub async fn moto_json(scope: &str, target: &str, body: &Value) -> Value {
    let version = if matches!(scope, "dynamodb" | "sqs") { "1.0" } else { "1.1" };
    let response = client()
        .post(&Stack::get().moto_url)
        .header("X-Amz-Target", target)
        .header("Content-Type", format!("application/x-amz-json-{version}"))
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{scope}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string())
        .send()
        .await
        .expect("moto reachable");
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert!(status.is_success(), "{target}: {status} {text}");
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("moto answers JSON") }
}

/// A raw DynamoDB call (e.g. `"GetItem"`, `"Query"`, `"UpdateItem"`) on the stack's table, for
/// fixtures that move an item's timestamps and for checking what is stored.
pub async fn dynamodb(operation: &str, mut body: Value) -> Value {
    body["TableName"] = Value::String(Stack::get().table_name.clone().expect("table_name in stack.json"));
    moto_json("dynamodb", &format!("DynamoDB_20120810.{operation}"), &body).await
}

/// A raw Cognito call (e.g. `"ListUsers"`, `"InitiateAuth"`) on the stack's moto.
pub async fn cognito(operation: &str, body: &Value) -> Value {
    moto_json("cognito-idp", &format!("AWSCognitoIdentityProviderService.{operation}"), body).await
}

/// A raw SQS call (e.g. `"SendMessage"`, `"ReceiveMessage"`) on the stack's moto.
pub async fn sqs(operation: &str, body: &Value) -> Value {
    moto_json("sqs", &format!("AmazonSQS.{operation}"), body).await
}

/// The `ddb_requests` of `function`'s request line for the request sent with this
/// `X-Request-Id` (the log is written as the runtime reads it: polled for up to [`PATIENCE`], as
/// every other wait: a loaded machine may take more than a few seconds to flush it).
pub async fn ddb_requests(function: &str, request_id: &str) -> u32 {
    let line = request_line(function, request_id).await;
    u32::try_from(line["ddb_requests"].as_u64().expect("ddb_requests")).expect("small")
}

/// `function`'s request log line (JSON) for the request sent with this `X-Request-Id`, polled
/// for up to [`PATIENCE`].
pub async fn request_line(function: &str, request_id: &str) -> Value {
    let needle = format!("\"request_id\":\"{request_id}\"");
    eventually(&format!("the request line of {request_id} in the {function} log"), || async {
        let log = Stack::get().function_log(function);
        let line = log.lines().find(|l| l.contains(&needle) && l.contains("\"message\":\"request\""))?;
        Some(serde_json::from_str::<Value>(&line[line.find('{').expect("json line")..]).expect("log line is JSON"))
    })
    .await
}

/// A listing's NIGHT items straight from the table (consistent Query): (date, kind, booking id).
pub async fn night_items(listing_id: &str) -> Vec<(String, String, Option<String>)> {
    let out = dynamodb(
        "Query",
        serde_json::json!({
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :night)",
            "ExpressionAttributeValues": {":pk": {"S": format!("LISTING#{listing_id}")}, ":night": {"S": "NIGHT#"}},
            "ConsistentRead": true
        }),
    )
    .await;
    out["Items"]
        .as_array()
        .expect("Items")
        .iter()
        .map(|i| {
            (
                i["date"]["S"].as_str().expect("date").to_owned(),
                i["kind"]["S"].as_str().expect("kind").to_owned(),
                i["booking_id"]["S"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// How long a test waits for something asynchronous (a webhook, a queue, the relay) at most.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls `check` until it returns `Some`, for at most [`PATIENCE`]: the one way tests wait.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    eventually_for(PATIENCE, what, check).await
}

/// Reads with `read` until `settled` holds for the answer, at most [`PATIENCE`]; the last answer.
/// For a read of a global secondary index right after a write: GSIs are eventually consistent
/// (locally too: `cargo roost test` lags them, docs/local-runtime.md), so a client polls. The
/// caller still asserts what it proves on the answer, which after the bound is the stale one.
pub async fn until_indexed<T, F, Fut>(read: F, settled: impl Fn(&T) -> bool) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let answer = read().await;
        if settled(&answer) || std::time::Instant::now() >= deadline {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// [`eventually`] with another bound.
pub async fn eventually_for<T, F, Fut>(patience: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + patience;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The stack's table through `shared::Table` on moto, for tests that commit transactions with
/// the real helpers (outbox, receipts).
pub fn table() -> shared::Table {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let stack = Stack::get();
    let config = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&stack.moto_url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "e2e"));
    shared::Table::from_conf(config, stack.table_name.clone().expect("table_name in stack.json"))
}

/// An SNS client on the stack's moto (to subscribe probe queues to the domain-events topic).
pub fn sns() -> aws_sdk_sns::Client {
    use aws_sdk_sns::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_sns::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(&Stack::get().moto_url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "e2e"))
        .build();
    aws_sdk_sns::Client::from_conf(config)
}

/// The `domain-events` topic's ARN.
pub fn topic_arn() -> String {
    Stack::get().rest["topics"]["DomainEventsTopic"].as_str().expect("DomainEventsTopic in stack.json").to_owned()
}

/// The body of `response` as JSON, after asserting its status (the body is shown when it
/// differs). A body that is not JSON fails the test, naming the status and the body.
pub async fn json_of(response: reqwest::Response, status: u16) -> Value {
    let got = response.status().as_u16();
    let text = response.text().await.expect("body");
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{got}: the body is not JSON ({e}): {text:?}"))
}

/// The string field `field` of `v`; panics (naming it) when missing.
pub fn s<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field].as_str().unwrap_or_else(|| panic!("{field} in {v}"))
}
