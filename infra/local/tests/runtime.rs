//! The local runtime's own tests, end to end: `roost up` on the fixture template
//! (`infra/local/fixtures/template.yaml`, functions from `infra/local/fixtures/fixture`), driven over
//! HTTP, the Runtime API's invoke endpoint and raw JSON calls to moto.
//!
//! One shared stack per test binary, started lazily; tests run in parallel against it, each with its
//! own keys, bodies and users. Two tests start their own stack: the process lifecycle test (one
//! process per function, so "the next request" has exactly one process to go to) and the shutdown
//! test (which SIGTERMs it). The stacks run with `--no-build`: build the fixture first
//! (`cargo build -p fixture`; `cargo roost test` builds every binary before the tests).
//!
//! What reached a function is read from its log in the stack's `logs_dir`: the fixture prints one
//! `FIXTURE <role> <json>` line per invocation (http) or record (sqs, stream), and the runtime adds
//! Lambda's `REPORT` lines.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use roost_e2e::tokens::{claims_of, sign, signing_keys};
use serde_json::{Value, json};
use tokio::sync::RwLock;

// ---------------------------------------------------------------------------------------------
// Stacks

struct Stack {
    info: Value,
    dir: PathBuf,
    child: Mutex<Child>,
}

/// The stack most tests share; it stops itself when this test process exits (`--exit-with-parent`).
/// A failed start is kept as its message, so every test that needs the stack reports why.
static SHARED: LazyLock<Result<Stack, String>> = LazyLock::new(|| {
    sweep_old_state_dirs();
    std::panic::catch_unwind(|| Stack::start("shared", &["--exit-with-parent"])).map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the shared stack did not start".into())
    })
});

/// Tests that need EchoFunction to themselves (the concurrency test) take this for writing; every
/// other test that calls EchoFunction on the shared stack takes it for reading.
static ECHO: RwLock<()> = RwLock::const_new(());

fn shared() -> &'static Stack {
    match &*SHARED {
        Ok(stack) => stack,
        Err(why) => panic!("{why}"),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// `--no-build` runs `target/debug/fixture` as it is: fail clearly when it is missing or stale.
fn check_fixture(root: &Path) {
    let binary = root.join("target/debug/fixture");
    let Ok(built) = std::fs::metadata(&binary).and_then(|m| m.modified()) else {
        panic!(
            "{} is missing: these tests run the stack with --no-build, so build the fixture first \
             (`cargo build -p fixture`; `cargo roost test` builds every binary itself)",
            binary.display()
        );
    };
    let source = root.join("infra/local/fixtures/fixture/src/main.rs");
    if let Ok(edited) = std::fs::metadata(&source).and_then(|m| m.modified()) {
        assert!(
            edited <= built,
            "{} is older than {}: rebuild it (`cargo build -p fixture`)",
            binary.display(),
            source.display()
        );
    }
}

fn state_dir_prefix() -> &'static str {
    "roost-runtime-"
}

/// Removes the state directories of earlier runs whose test process is gone.
fn sweep_old_state_dirs() {
    let Ok(entries) = std::fs::read_dir(env!("CARGO_TARGET_TMPDIR")) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(state_dir_prefix()) else { continue };
        let Some(pid) = rest.rsplit('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Stack {
    /// `roost up` on the fixture template, on free ports, in its own state directory; returns once
    /// it is ready (all functions have started by then).
    fn start(label: &str, extra: &[&str]) -> Stack {
        let root = root();
        check_fixture(&root);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "{}{label}-{}",
            state_dir_prefix(),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("state dir");
        let output = |name: &str| std::fs::File::create(dir.join(name)).expect("roost output file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_roost"))
            .current_dir(&root)
            .arg("up")
            .arg("--template")
            .arg(root.join("infra/local/fixtures/template.yaml"))
            .args(["--port", "0", "--state-dir"])
            .arg(&dir)
            // Ordered delivery: these tests assert the runtime's own SQS semantics (a message
            // processed once, deleted on success); chaotic delivery's deliberate duplicates are
            // proven by the e2e suite (tests/tests/e2e/delivery.rs) and would make them flaky.
            .args(["--no-build", "--test-mode", "--quiet", "--no-seed", "--delivery", "ordered"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(output("roost.out"))
            .stderr(output("roost.err"))
            .spawn()
            .expect("spawning roost");
        // Ready: stack.json written and `Roost API: ...` printed (the last thing `up` does).
        let stack_file = dir.join("stack.json");
        let started = Instant::now();
        loop {
            let ready = std::fs::read_to_string(dir.join("roost.out")).is_ok_and(|out| out.contains("Roost API: "));
            if ready && let Ok(text) = std::fs::read_to_string(&stack_file) {
                let info: Value = serde_json::from_str(&text).expect("stack.json is JSON");
                return Stack { info, dir, child: Mutex::new(child) };
            }
            if let Some(status) = child.try_wait().expect("roost status") {
                panic!(
                    "roost up exited before it was ready ({status}); its stderr:\n{}",
                    std::fs::read_to_string(dir.join("roost.err")).unwrap_or_default()
                );
            }
            if started.elapsed() > Duration::from_secs(90) {
                let _ = child.kill();
                panic!(
                    "roost up was not ready within 90 s; its stderr:\n{}",
                    std::fs::read_to_string(dir.join("roost.err")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn get(&self, key: &str) -> &str {
        self.info[key].as_str().unwrap_or_else(|| panic!("{key} missing from stack.json: {}", self.info))
    }

    fn api(&self, path: &str) -> String {
        format!("{}{path}", self.get("api_url"))
    }

    fn pid(&self) -> u32 {
        self.info["pid"].as_u64().expect("pid in stack.json") as u32
    }

    fn log_path(&self, function: &str) -> PathBuf {
        Path::new(self.get("logs_dir")).join(format!("{function}.log"))
    }

    fn queue_url(&self, name: &str) -> String {
        self.info["queues"][name].as_str().unwrap_or_else(|| panic!("no queue {name}: {}", self.info)).to_string()
    }

    /// SIGTERM, then the exit status (SIGKILL and panic if it takes more than `patience`).
    fn terminate(&self, patience: Duration) -> ExitStatus {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        signal(child.id(), libc::SIGTERM);
        let asked = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("roost status") {
                return status;
            }
            if asked.elapsed() > patience {
                let _ = child.kill();
                let _ = child.wait();
                panic!("roost did not stop within {patience:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Stacks a test starts itself stop with it, even when it fails.
impl Drop for Stack {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        if matches!(child.try_wait(), Ok(None)) {
            signal(child.id(), libc::SIGTERM);
            for _ in 0..200 {
                if !matches!(child.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn signal(pid: u32, signal: i32) {
    let pid = i32::try_from(pid).expect("pid");
    // SAFETY: a plain syscall on a process this test started.
    unsafe {
        libc::kill(pid, signal);
    }
}

// ---------------------------------------------------------------------------------------------
// Processes (/proc)

struct ProcStat {
    state: char,
    ppid: u32,
    start_time: u64,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so split after the last ')'.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

fn proc_name(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

/// Every live descendant of `pid`, with its start time (to tell a reused pid from the original).
fn descendants(pid: u32) -> BTreeMap<u32, u64> {
    let mut parents: HashMap<u32, Vec<(u32, u64)>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(p) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        if let Some(stat) = proc_stat(p)
            && stat.state != 'Z'
        {
            parents.entry(stat.ppid).or_default().push((p, stat.start_time));
        }
    }
    let mut out = BTreeMap::new();
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        for &(child, start) in parents.get(&p).map(Vec::as_slice).unwrap_or_default() {
            if out.insert(child, start).is_none() {
                todo.push(child);
            }
        }
    }
    out
}

/// Still running: present, not a zombie, and not a new process that reused the pid.
fn running(pid: u32, start_time: Option<u64>) -> bool {
    proc_stat(pid).is_some_and(|s| s.state != 'Z' && start_time.is_none_or(|t| t == s.start_time))
}

// ---------------------------------------------------------------------------------------------
// Logs

/// The complete lines of a log (a line still being written is left out).
fn log_lines(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let end = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end]).lines().map(str::to_string).collect()
}

/// The JSON of every `FIXTURE <role> <json>` line in a function's log, in order.
fn fixture_records(stack: &Stack, function: &str, role: &str) -> Vec<Value> {
    let prefix = format!("[{function}] FIXTURE {role} ");
    log_lines(&stack.log_path(function))
        .iter()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(|json| serde_json::from_str(json).unwrap_or_else(|e| panic!("bad FIXTURE line ({e}): {json}")))
        .collect()
}

/// Polls `probe` every 100 ms until it returns something, for at most `limit`.
async fn eventually<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(started.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What EchoFunction's fixture saw of the HTTP request API Gateway called `apigw_id`: its Lambda
/// request id and the process (pid) that ran it.
async fn invocation_of(stack: &Stack, apigw_id: &str) -> (String, u32) {
    let record = eventually(
        &format!(
            "a FIXTURE http line for request {apigw_id} in {} (is target/debug/fixture built from the current source?)",
            stack.log_path("EchoFunction").display()
        ),
        Duration::from_secs(10),
        || {
            fixture_records(stack, "EchoFunction", "http")
                .into_iter()
                .find(|r| r["event"]["requestContext"]["requestId"] == apigw_id)
        },
    )
    .await;
    (record["requestId"].as_str().expect("requestId").to_string(), record["pid"].as_u64().expect("pid") as u32)
}

/// None of `refused` reached EchoFunction. `sentinel` is a later request that did: once its line is
/// in the log, any line of the earlier requests would be too.
async fn assert_never_reached(stack: &Stack, sentinel: &str, refused: &[String]) {
    invocation_of(stack, sentinel).await;
    let seen: HashSet<String> = fixture_records(stack, "EchoFunction", "http")
        .iter()
        .filter_map(|r| r["event"]["requestContext"]["requestId"].as_str().map(str::to_string))
        .collect();
    for id in refused {
        assert!(!seen.contains(id), "request {id} was refused but reached the function");
    }
}

#[derive(Debug)]
struct Report {
    request_id: String,
    duration_ms: f64,
    billed_ms: u64,
    max_memory_mb: u64,
    init_ms: Option<f64>,
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// `X ms` with two decimals, as Lambda prints durations.
fn millis(s: &str) -> Option<f64> {
    let number = s.strip_suffix(" ms")?;
    let (whole, decimals) = number.split_once('.')?;
    (!whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && decimals.len() == 2
        && decimals.bytes().all(|b| b.is_ascii_digit()))
    .then(|| number.parse().ok())?
}

fn whole(s: &str, unit: &str) -> Option<u64> {
    s.strip_suffix(unit)?.parse().ok()
}

/// `REPORT RequestId: <uuid>\tDuration: X ms\tBilled Duration: N ms\tMemory Size: 128 MB\tMax Memory Used: N MB[\tInit Duration: X ms]`.
fn parse_report(line: &str, function: &str) -> Option<Report> {
    let rest = line.strip_prefix(&format!("[{function}] REPORT "))?;
    let fields: Vec<&str> = rest.split('\t').collect();
    fn malformed<T>(line: &str) -> T {
        panic!("malformed REPORT line: {line:?}")
    }
    if fields.len() != 5 && fields.len() != 6 {
        malformed::<()>(line);
    }
    let request_id = fields[0].strip_prefix("RequestId: ").filter(|id| is_uuid(id)).unwrap_or_else(|| malformed(line));
    let duration_ms = fields[1].strip_prefix("Duration: ").and_then(millis).unwrap_or_else(|| malformed(line));
    let billed_ms =
        fields[2].strip_prefix("Billed Duration: ").and_then(|s| whole(s, " ms")).unwrap_or_else(|| malformed(line));
    if fields[3] != "Memory Size: 128 MB" {
        malformed::<()>(line);
    }
    let max_memory_mb =
        fields[4].strip_prefix("Max Memory Used: ").and_then(|s| whole(s, " MB")).unwrap_or_else(|| malformed(line));
    let init_ms =
        fields.get(5).map(|f| f.strip_prefix("Init Duration: ").and_then(millis).unwrap_or_else(|| malformed(line)));
    Some(Report { request_id: request_id.to_string(), duration_ms, billed_ms, max_memory_mb, init_ms })
}

fn reports(stack: &Stack, function: &str) -> Vec<Report> {
    log_lines(&stack.log_path(function)).iter().filter_map(|l| parse_report(l, function)).collect()
}

async fn report_of(stack: &Stack, request_id: &str) -> Report {
    eventually(&format!("the REPORT line of {request_id}"), Duration::from_secs(10), || {
        reports(stack, "EchoFunction").into_iter().find(|r| r.request_id == request_id)
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct Reply {
    status: u16,
    /// API Gateway's `apigw-requestid`, which is also the event's `requestContext.requestId`.
    id: String,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// What the echo function answers: `{pid, event}`.
    fn echo(&self) -> (u32, Value) {
        assert_eq!(self.status, 200, "expected the echo function's 200, got: {}", self.body);
        let body = self.json();
        (body["pid"].as_u64().expect("pid") as u32, body["event"].clone())
    }

    fn assert_message(&self, status: u16, message: &str) {
        assert_eq!((self.status, self.json()), (status, json!({ "message": message })), "body: {}", self.body);
    }
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("HTTP API unreachable");
    let status = response.status().as_u16();
    let id = response
        .headers()
        .get("apigw-requestid")
        .and_then(|v| v.to_str().ok())
        .expect("every answer carries apigw-requestid")
        .to_string();
    Reply { status, id, body: response.text().await.expect("body") }
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

/// A raw JSON call to moto (no signature is checked; the credential scope names the service).
async fn aws(stack: &Stack, scope: &str, target: &str, body: Value) -> Value {
    let version = if matches!(scope, "sqs" | "dynamodb") { "1.0" } else { "1.1" };
    let response = reqwest::Client::new()
        .post(stack.get("moto_url"))
        .header("X-Amz-Target", target)
        .header("Content-Type", format!("application/x-amz-json-{version}"))
        .header(
            "Authorization",
            format!("AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{scope}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("{target}: moto unreachable: {e}"));
    let status = response.status();
    let text = response.text().await.expect("moto body");
    assert!(status.is_success(), "{target}: {status}: {text}");
    if text.is_empty() { Value::Null } else { serde_json::from_str(&text).expect("moto JSON") }
}

async fn cognito(stack: &Stack, action: &str, body: Value) -> Value {
    aws(stack, "cognito-idp", &format!("AWSCognitoIdentityProviderService.{action}"), body).await
}

async fn sqs(stack: &Stack, action: &str, body: Value) -> Value {
    aws(stack, "sqs", &format!("AmazonSQS.{action}"), body).await
}

// ---------------------------------------------------------------------------------------------
// 1. Routing and the payload format 2.0 event

#[tokio::test]
async fn routes_path_parameters_and_query_strings_reach_the_function() {
    let stack = shared();
    let _echo = ECHO.read().await;
    let http = reqwest::Client::new();
    let tag = unique("route");

    // A path parameter arrives percent-decoded (as HTTP APIs decode the path before routing),
    // repeated query keys are joined with ",", and the raw query string is passed through untouched.
    let reply = send(http.get(stack.api(&format!("/items/{tag}%20caf%C3%A9%2B1?a=1&b=x%20y&a=2")))).await;
    let (_, event) = reply.echo();
    assert_eq!(event["pathParameters"], json!({ "id": format!("{tag} café+1") }));
    assert_eq!(event["rawPath"], format!("/items/{tag} café+1"));
    assert_eq!(event["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
    assert_eq!(event["rawQueryString"], "a=1&b=x%20y&a=2");
    assert_eq!(event["routeKey"], "GET /items/{id}");
    assert_eq!(event["requestContext"]["routeKey"], "GET /items/{id}");
    assert_eq!(event["requestContext"]["http"]["method"], "GET");
    assert_eq!(event["requestContext"]["stage"], "$default");
    assert_eq!(event["requestContext"]["requestId"], reply.id.as_str());
    assert_eq!(event["version"], "2.0");

    // A greedy `{proxy+}` takes the rest of the path (each segment decoded); ANY takes any method.
    let reply = send(http.post(stack.api(&format!("/public/{tag}/a%20b/c"))).body("hello")).await;
    let (_, event) = reply.echo();
    assert_eq!(event["pathParameters"], json!({ "proxy": format!("{tag}/a b/c") }));
    assert_eq!(event["routeKey"], "ANY /public/{proxy+}");
    assert_eq!(event["rawPath"], format!("/public/{tag}/a b/c"));
    assert_eq!(event["requestContext"]["http"]["method"], "POST");
    assert_eq!(event["requestContext"]["stage"], "$default");
    assert_eq!(event["body"], "hello");
    assert!(event.get("queryStringParameters").is_none(), "no query, no queryStringParameters: {event}");

    let (_, event) = send(http.delete(stack.api(&format!("/public/{tag}")))).await.echo();
    assert_eq!(event["pathParameters"], json!({ "proxy": tag }));
    assert_eq!(event["requestContext"]["http"]["method"], "DELETE");

    // A decoded `%2F` splits the segment, so `/items/{id}` no longer matches: API Gateway's 404.
    let split = send(http.get(stack.api(&format!("/items/{tag}%2Fx")))).await;
    assert_eq!((split.status, split.body.as_str()), (404, r#"{"message":"Not Found"}"#));

    // No route: an unknown path, a method the route does not take, a greedy route with nothing
    // to take. API Gateway answers these itself.
    let mut refused = Vec::new();
    for request in [
        http.get(stack.api(&format!("/{tag}"))),
        http.post(stack.api(&format!("/items/{tag}"))),
        http.get(stack.api("/public")),
        http.get(stack.api(&format!("/items/{tag}/more"))),
    ] {
        let reply = send(request).await;
        reply.assert_message(404, "Not Found");
        refused.push(reply.id);
    }
    let sentinel = send(http.get(stack.api(&format!("/items/{tag}-last")))).await;
    sentinel.echo();
    assert_never_reached(stack, &sentinel.id, &refused).await;
}

// ---------------------------------------------------------------------------------------------
// 2. The JWT authorizer

#[tokio::test]
async fn the_authorizer_passes_cognito_tokens_as_string_claims_and_refuses_the_rest() {
    let stack = shared();
    let _echo = ECHO.read().await;
    let http = reqwest::Client::new();
    let pool = stack.get("user_pool_id");
    let client = stack.get("user_pool_client_id");
    let email = format!("{}@example.com", unique("host"));
    let password = "Passw0rd!-roost";

    cognito(
        stack,
        "SignUp",
        json!({"ClientId": client, "Username": email, "Password": password,
               "UserAttributes": [{"Name": "email", "Value": email}]}),
    )
    .await;
    cognito(stack, "AdminConfirmSignUp", json!({"UserPoolId": pool, "Username": email})).await;
    cognito(stack, "AdminAddUserToGroup", json!({"UserPoolId": pool, "Username": email, "GroupName": "hosts"})).await;
    let sign_in = |client: String| {
        let email = email.clone();
        async move {
            cognito(
                stack,
                "InitiateAuth",
                json!({"AuthFlow": "USER_PASSWORD_AUTH", "ClientId": client,
                       "AuthParameters": {"USERNAME": email, "PASSWORD": password}}),
            )
            .await["AuthenticationResult"]
                .clone()
        }
    };
    let tokens = sign_in(client.to_string()).await;
    let access = tokens["AccessToken"].as_str().expect("AccessToken");
    let id_token = tokens["IdToken"].as_str().expect("IdToken");
    let private = |token: &str| http.get(stack.api("/private")).header("Authorization", format!("Bearer {token}"));

    // A real access token: 200, with every claim a JSON string, arrays rendered `[a b]`.
    let (_, event) = send(private(access)).await.echo();
    let claims = event["requestContext"]["authorizer"]["jwt"]["claims"].as_object().expect("claims").clone();
    for (name, value) in &claims {
        assert!(value.is_string(), "claim {name} is not a JSON string: {value}");
    }
    assert_eq!(claims["cognito:groups"], "[hosts]");
    assert!(!claims["sub"].as_str().unwrap_or_default().is_empty(), "no sub: {claims:?}");
    assert_eq!(claims["client_id"], client);
    assert_eq!(claims["token_use"], "access");
    assert!(claims["exp"].as_str().unwrap_or_default().parse::<u64>().is_ok_and(|exp| exp > now()), "exp: {claims:?}");
    assert_eq!(event["routeKey"], "GET /private");

    // The id token is accepted too: its audience is `aud` rather than `client_id`.
    let (_, event) = send(private(id_token)).await.echo();
    let id_claims = &event["requestContext"]["authorizer"]["jwt"]["claims"];
    assert_eq!((id_claims["aud"].as_str(), id_claims["token_use"].as_str()), (Some(client), Some("id")));
    assert_eq!(id_claims["email"], email.as_str());

    // Tokens we sign ourselves. First the control: moto's key and valid claims pass, so each
    // refusal below is down to the one thing that differs.
    let (moto_key, other_key) = signing_keys();
    let base = claims_of(access);
    let with = |changes: Value| {
        let mut claims = base.clone();
        claims.insert("exp".into(), json!(now() + 600));
        for (k, v) in changes.as_object().expect("changes") {
            claims.insert(k.clone(), v.clone());
        }
        claims
    };
    let control = send(private(&sign(&with(json!({})), &moto_key))).await;
    let (_, event) = control.echo();
    assert_eq!(event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"], claims["sub"]);

    let other_client =
        cognito(stack, "ListUserPoolClients", json!({"UserPoolId": pool, "MaxResults": 60})).await["UserPoolClients"]
            .as_array()
            .expect("UserPoolClients")
            .iter()
            .find(|c| c["ClientName"].as_str().is_some_and(|n| n.ends_with("OtherClient")))
            .and_then(|c| c["ClientId"].as_str())
            .expect("the OtherClient app client")
            .to_string();
    assert_ne!(other_client, client, "stack.json's user_pool_client_id must be the API's client, not OtherClient");
    let other_tokens = sign_in(other_client.clone()).await;

    let expired = with(json!({"exp": now() - 600, "iat": now() - 4200, "auth_time": now() - 4200}));
    let wrong_issuer = with(json!({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_SomeOtherPool"}));
    let refusals = [
        ("no Authorization header", http.get(stack.api("/private"))),
        ("an empty bearer token", http.get(stack.api("/private")).header("Authorization", "Bearer ")),
        ("garbage", private("garbage")),
        ("a token signed by another key with kid dummy", private(&sign(&with(json!({})), &other_key))),
        ("an expired token", private(&sign(&expired, &moto_key))),
        ("a token for OtherClient", private(&sign(&with(json!({"client_id": other_client})), &moto_key))),
        ("a real sign-in through OtherClient", private(other_tokens["AccessToken"].as_str().expect("token"))),
        ("another issuer", private(&sign(&wrong_issuer, &moto_key))),
    ];
    let mut refused = Vec::new();
    for (what, request) in refusals {
        let reply = send(request).await;
        assert_eq!((reply.status, reply.json()), (401, json!({"message": "Unauthorized"})), "{what}: {}", reply.body);
        refused.push(reply.id);
    }
    let sentinel = send(private(access)).await;
    sentinel.echo();
    assert_never_reached(stack, &sentinel.id, &refused).await;
    invocation_of(stack, &control.id).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Concurrency: one invocation at a time per process, processes started on demand

#[tokio::test]
async fn concurrent_requests_run_in_separate_processes() {
    const N: usize = 4;
    let stack = shared();
    let _echo = ECHO.write().await;
    let http = reqwest::Client::new();
    let group = unique("concurrency");
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..N {
        requests.spawn(send(http.get(stack.api(&format!("/together/{N}/{group}")))));
    }
    let mut pids = HashSet::new();
    while let Some(reply) = requests.join_next().await {
        let reply = reply.expect("request task");
        // Each invocation waits at the fixture's barrier until all N are in: `met` proves they
        // overlapped, with no wall-clock bound that a loaded machine could miss.
        assert_eq!(reply.json()["met"], true, "the {N} requests did not run at once: {}", reply.body);
        let (pid, event) = reply.echo();
        assert_eq!(event["rawPath"], format!("/together/{N}/{group}"));
        pids.insert(pid);
    }
    // The stack started with one EchoFunction process, so N distinct pids means N - 1 or more
    // were started for this burst, and none ran two at once.
    assert_eq!(pids.len(), N, "{N} concurrent requests were answered by processes {pids:?}");
}

// ---------------------------------------------------------------------------------------------
// 4. Failures: panics, exits and malformed responses

#[tokio::test]
async fn a_panic_keeps_the_process_an_exit_replaces_it_a_malformed_answer_is_a_502() {
    // One process at most, so "the next request" can only go to the process that is left.
    let stack =
        tokio::task::spawn_blocking(|| Stack::start("lifecycle", &["--exit-with-parent", "--max-processes", "1"]))
            .await
            .expect("starting the stack");
    let http = reqwest::Client::new();
    let echo = |path: &str| send(http.get(stack.api(path)));

    let first = echo("/items/first").await;
    let (pid, _) = first.echo();

    let panic = echo("/panic").await;
    panic.assert_message(500, "Internal Server Error");
    let (panic_request, panic_pid) = invocation_of(&stack, &panic.id).await;
    assert_eq!(panic_pid, pid);
    let after_panic = echo("/items/after-panic").await;
    assert_eq!(after_panic.echo().0, pid, "a panic must not cost the process");
    assert!(
        log_lines(&stack.log_path("EchoFunction"))
            .iter()
            .any(|l| l.contains(&format!("{panic_request} function error")) && l.contains("asked to panic")),
        "the panic is logged as a function error"
    );

    let exit = echo("/exit").await;
    exit.assert_message(500, "Internal Server Error");
    assert_eq!(invocation_of(&stack, &exit.id).await.1, pid);
    assert!(!running(pid, None), "process {pid} exited, yet it still runs");
    let after_exit = echo("/items/after-exit").await;
    let (new_pid, _) = after_exit.echo();
    assert_ne!(new_pid, pid, "the process that exited cannot serve again");

    let malformed = echo("/malformed").await;
    assert_eq!(malformed.status, 502, "a malformed function response: {}", malformed.body);
    let after_malformed = echo("/items/after-malformed").await;
    assert_eq!(after_malformed.echo().0, new_pid, "a malformed response must not cost the process");

    // Lambda reports Init Duration with a process's first invocation only.
    for (reply, first_of_process) in [
        (&first, true),
        (&panic, false),
        (&after_panic, false),
        (&after_exit, true),
        (&malformed, false),
        (&after_malformed, false),
    ] {
        let (request_id, _) = invocation_of(&stack, &reply.id).await;
        let report = report_of(&stack, &request_id).await;
        assert_eq!(report.init_ms.is_some(), first_of_process, "{report:?}");
    }
    let exit_request = invocation_of(&stack, &exit.id).await.0;
    assert!(
        reports(&stack, "EchoFunction").iter().all(|r| r.request_id != exit_request),
        "no REPORT for an invocation whose process died"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. SQS: partial batch failures and redrive

#[tokio::test]
async fn sqs_deletes_what_succeeded_and_redrives_what_failed() {
    let stack = shared();
    let queue = stack.queue_url("roost-WorkQueue");
    let dead_letters = stack.queue_url("roost-WorkDeadLetterQueue");
    let tag = unique("sqs");
    let good = [format!("ok {tag} 1"), format!("ok {tag} 2"), format!("ok {tag} 3")];
    let bad = format!("please fail {tag}");
    for body in good.iter().chain([&bad]) {
        sqs(stack, "SendMessage", json!({"QueueUrl": queue, "MessageBody": body})).await;
    }

    let deliveries =
        |body: &str| fixture_records(stack, "WorkerFunction", "sqs").iter().filter(|r| r["body"] == body).count();
    // Visibility timeouts are 2 s in test mode and maxReceiveCount is 2: two deliveries, then the
    // third receive moves the message to the dead-letter queue.
    let started = Instant::now();
    let dead = loop {
        let received = sqs(
            stack,
            "ReceiveMessage",
            json!({"QueueUrl": dead_letters, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1}),
        )
        .await;
        let bodies: Vec<String> = received["Messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["Body"].as_str().map(str::to_string))
            .collect();
        for body in &good {
            assert!(!bodies.contains(body), "{body:?} succeeded, yet it reached the dead-letter queue");
        }
        if let Some(body) = bodies.into_iter().find(|b| *b == bad) {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{bad:?} not in the dead-letter queue after 30 s ({} deliveries)",
            deliveries(&bad)
        );
    };
    assert_eq!(dead, bad);
    eventually("both deliveries of the failing message logged", Duration::from_secs(5), || {
        (deliveries(&bad) == 2).then_some(())
    })
    .await;
    for body in &good {
        assert_eq!(deliveries(body), 1, "{body:?} must be processed exactly once");
    }
    for record in fixture_records(stack, "WorkerFunction", "sqs").iter().filter(|r| r["body"] == bad.as_str()) {
        assert_eq!(record["eventSource"], "aws:sqs");
        assert!(record["eventSourceARN"].as_str().is_some_and(|a| a.ends_with(":roost-WorkQueue")), "{record}");
    }
    let attributes = sqs(
        stack,
        "GetQueueAttributes",
        json!({"QueueUrl": queue, "AttributeNames": ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]}),
    )
    .await;
    assert_eq!(
        attributes["Attributes"],
        json!({"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}),
        "the work queue keeps nothing: successes deleted, the failure moved"
    );
}

// ---------------------------------------------------------------------------------------------
// 6. DynamoDB Streams with the mapping's filter

#[tokio::test]
async fn the_stream_delivers_only_what_the_filter_matches() {
    let stack = shared();
    let table = stack.get("table_name");
    let tag = unique("stream");
    let put = |pk: String, kind: &str, version: u32| {
        let item =
            json!({"PK": {"S": pk}, "SK": {"S": "item"}, "type": {"S": kind}, "version": {"N": version.to_string()}});
        aws(stack, "dynamodb", "DynamoDB_20120810.PutItem", json!({"TableName": table, "Item": item}))
    };
    let other = format!("{tag}-other");
    let outbox = format!("{tag}-outbox");
    let last = format!("{tag}-last");
    put(other.clone(), "other", 1).await; // filtered out: not an outbox item
    put(outbox.clone(), "outbox", 1).await; // delivered: an INSERT of an outbox item
    put(outbox.clone(), "outbox", 2).await; // filtered out: a MODIFY
    put(last.clone(), "outbox", 1).await; // delivered; the shard is in order, so once it is here, so is everything above

    let keyed = |pk: &str| -> Vec<Value> {
        fixture_records(stack, "StreamFunction", "stream")
            .into_iter()
            .filter(|r| r["dynamodb"]["Keys"]["PK"]["S"] == pk)
            .collect()
    };
    eventually("the last outbox INSERT in StreamFunction's log", Duration::from_secs(30), || {
        (!keyed(&last).is_empty()).then_some(())
    })
    .await;
    let delivered = keyed(&outbox);
    assert_eq!(delivered.len(), 1, "exactly the outbox INSERT: {delivered:?}");
    let record = &delivered[0];
    assert_eq!(record["eventName"], "INSERT");
    assert_eq!(record["dynamodb"]["NewImage"]["type"]["S"], "outbox");
    assert_eq!(record["dynamodb"]["NewImage"]["version"]["N"], "1");
    assert!(record["eventSourceARN"].as_str().is_some_and(|a| a.contains(":table/roost-Table/stream/")), "{record}");
    assert_eq!(keyed(&other), Vec::<Value>::new(), "the filter lets only outbox items through");
}

// ---------------------------------------------------------------------------------------------
// 7. REPORT lines

#[tokio::test]
async fn every_invocation_gets_a_lambda_report_line() {
    let stack = shared();
    let _echo = ECHO.read().await;
    let reply = send(reqwest::Client::new().get(stack.api("/slow"))).await;
    reply.echo();
    let (request_id, _) = invocation_of(stack, &reply.id).await;
    let report = report_of(stack, &request_id).await;
    assert!(report.duration_ms >= 400.0, "/slow takes 400 ms: {report:?}");
    assert!(
        report.billed_ms as f64 >= report.duration_ms && (report.billed_ms as f64) <= report.duration_ms + 1.01,
        "{report:?}"
    );
    assert!(report.max_memory_mb >= 1, "{report:?}");

    // Each process's first invocation, and only that one, carries Init Duration.
    let by_request: HashMap<String, Report> =
        reports(stack, "EchoFunction").into_iter().map(|r| (r.request_id.clone(), r)).collect();
    let mut seen = HashSet::new();
    let mut firsts_checked = 0;
    for record in fixture_records(stack, "EchoFunction", "http") {
        let pid = record["pid"].as_u64().expect("pid");
        let first = seen.insert(pid);
        let Some(report) = by_request.get(record["requestId"].as_str().expect("requestId")) else { continue };
        assert_eq!(report.init_ms.is_some(), first, "pid {pid}, first invocation: {first}: {report:?}");
        if let Some(init) = report.init_ms {
            assert!(init > 0.0, "{report:?}");
            firsts_checked += 1;
        }
    }
    assert!(firsts_checked >= 1, "no first invocation found in {}", stack.log_path("EchoFunction").display());
}

// ---------------------------------------------------------------------------------------------
// 8. Shutdown

#[tokio::test]
async fn sigterm_stops_the_stack_and_everything_it_started() {
    let stack = tokio::task::spawn_blocking(|| Stack::start("shutdown", &[])).await.expect("starting the stack");
    // More than the one process per function it starts with: three invocations that wait for
    // each other at the fixture's barrier need three EchoFunction processes, however slow the
    // machine is.
    let http = reqwest::Client::new();
    let together = format!("/together/3/{}", unique("shutdown"));
    let mut invocations = tokio::task::JoinSet::new();
    for _ in 0..3 {
        let request = http
            .post(format!("{}/_roost/invoke/EchoFunction", stack.get("runtime_url")))
            .body(json!({"rawPath": together, "requestContext": {"requestId": unique("invoke")}}).to_string());
        invocations.spawn(async move { request.send().await.expect("runtime API unreachable") });
    }
    while let Some(response) = invocations.join_next().await {
        let response = response.expect("invoke task");
        assert_eq!(response.headers()["x-roost-outcome"], "response");
        let answer: Value = response.json().await.expect("the fixture's answer is JSON");
        let body: Value = serde_json::from_str(answer["body"].as_str().expect("body")).expect("echo body");
        assert_eq!(body["met"], true, "the three invocations did not run at once: {answer}");
    }

    let roost = stack.pid();
    let family = descendants(roost);
    let emulators =
        ["moto", "localstripe"].map(|e| stack.info["emulators"][e]["pid"].as_u64().expect("emulator pid") as u32);
    for pid in emulators {
        assert!(family.contains_key(&pid), "emulator {pid} is not among roost's descendants {family:?}");
    }
    let functions = family.keys().filter(|p| proc_name(**p) == "fixture").count();
    assert!(functions >= 5, "expected at least 5 function processes (3 EchoFunction, 1 each other), found {functions}");

    // Blocking here is fine: nothing else runs on this test's runtime.
    let status = stack.terminate(Duration::from_secs(15));
    assert!(status.success(), "roost exited with {status} after SIGTERM");
    let asked = Instant::now();
    loop {
        let left: Vec<String> = family
            .iter()
            .filter(|(pid, start)| running(**pid, Some(**start)))
            .map(|(pid, _)| format!("{pid} ({})", proc_name(*pid)))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(asked.elapsed() < Duration::from_secs(5), "still running 5 s after roost stopped: {left:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!stack.dir.join("stack.json").exists(), "stack.json is removed on stop");
}

// ---------------------------------------------------------------------------------------------
// 9. Python functions (an overlay's), and cold starts on demand

/// What pip prints when it cannot reach the package index at all (no network, no DNS): then,
/// and only then, the python test skips instead of failing.
const PIP_UNREACHABLE: [&str; 5] = [
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ProxyError",
];

/// `roost up` with the python overlay; `None` (after saying why) when pip could not reach the
/// package index to install .venv-bench.
fn start_with_python() -> Option<Stack> {
    let overlay = root().join("infra/local/fixtures/python.yaml");
    let overlay = overlay.to_string_lossy().into_owned();
    let started =
        std::panic::catch_unwind(|| Stack::start("python", &["--exit-with-parent", "--template-overlay", &overlay]));
    match started {
        Ok(stack) => Some(stack),
        Err(panic) => {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            if why.contains("pip install failed") && PIP_UNREACHABLE.iter().any(|sign| why.contains(sign)) {
                eprintln!("skipped: pip could not reach the package index to install .venv-bench:\n{why}");
                return None;
            }
            std::panic::resume_unwind(panic)
        }
    }
}

/// The REPORT line of PythonFunction's invocation `request_id`.
async fn python_report(stack: &Stack, request_id: &str) -> Report {
    eventually(&format!("PythonFunction's REPORT line of {request_id}"), Duration::from_secs(10), || {
        reports(stack, "PythonFunction").into_iter().find(|r| r.request_id == request_id)
    })
    .await
}

#[tokio::test]
async fn a_python_function_runs_under_awslambdaric_and_starts_cold_after_delete() {
    let Some(stack) = tokio::task::spawn_blocking(start_with_python).await.expect("starting the stack") else {
        return;
    };
    let http = reqwest::Client::new();
    let first = send(http.get(stack.api("/python/first"))).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let seen = first.json();
    assert_eq!(seen["name"], "first", "the path parameter reached the handler: {seen}");
    assert_eq!(seen["function_name"], "roost-PythonFunction");
    assert_eq!(seen["memory_limit_in_mb"], "128");
    let environment = &seen["environment"];
    assert_eq!(environment["_HANDLER"], "app.handler");
    assert_eq!(environment["AWS_EXECUTION_ENV"], "AWS_Lambda_python3.11");
    assert_eq!(environment["TABLE_NAME"], "roost-Table", "the overlay's Ref resolves against the template");
    let task_root = root().join("infra/local/fixtures/python");
    assert_eq!(environment["LAMBDA_TASK_ROOT"], task_root.to_string_lossy().as_ref());
    let api = environment["AWS_LAMBDA_RUNTIME_API"].as_str().expect("runtime API");
    assert!(api.starts_with("127.0.0.1:") && !api.contains('/'), "host:port, as awslambdaric takes it: {api}");

    // The process started at `up`: its first invocation reports its init and its own peak RSS.
    let report = python_report(&stack, seen["request_id"].as_str().expect("request id")).await;
    assert!(report.init_ms.is_some_and(|ms| ms > 0.0), "{report:?}");
    // CPython with awslambdaric loaded holds several MB: 0 would be a memory nobody read.
    assert!(report.max_memory_mb >= 5, "{report:?}");
    let warm = send(http.get(stack.api("/python/warm"))).await.json();
    assert_eq!(warm["pid"], seen["pid"], "back to back: the same process");
    let warm_report = python_report(&stack, warm["request_id"].as_str().expect("request id")).await;
    assert_eq!(warm_report.init_ms, None, "{warm_report:?}");

    let stop = http
        .delete(format!("{}/_roost/processes/PythonFunction", stack.get("runtime_url")))
        .send()
        .await
        .expect("runtime API unreachable");
    assert_eq!(stop.status(), 200);
    assert_eq!(stop.json::<Value>().await.expect("JSON"), json!({"stopped": 1}));
    let pid = seen["pid"].as_u64().expect("pid") as u32;
    assert!(!running(pid, None), "the stopped process {pid} is gone once DELETE answers");
    let cold = send(http.get(stack.api("/python/cold"))).await.json();
    assert_ne!(cold["pid"], seen["pid"], "a new process after DELETE");
    let cold_report = python_report(&stack, cold["request_id"].as_str().expect("request id")).await;
    assert!(cold_report.init_ms.is_some(), "a cold start reports its init: {cold_report:?}");
    assert!(cold_report.max_memory_mb >= 5, "{cold_report:?}");
}
