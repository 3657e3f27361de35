//! The Lambda service, locally: each function's real binary runs under the Runtime API
//! (`AWS_LAMBDA_RUNTIME_API`), one invocation at a time per process, with up to `max_processes`
//! processes per function started on demand, so concurrent requests race as they do on Lambda.
//! Every process gets its own path prefix (`/fn/<function>/<process>`), which tells us which
//! process took which invocation (for the REPORT line's memory and init duration).
//!
//! Lambda's limits hold here too (docs/local-runtime.md, "Limits"): 6 MB events and responses,
//! the 10 s init phase, the function's `MemorySize`, an optional account concurrency cap, idle
//! sandboxes reclaimed, and a capped restart loop for a function that dies at start.
//! `POST /_roost/kill` kills the process that takes a function's next invocation, mid-work;
//! `DELETE /_roost/processes/<Function>` stops a function's idle processes (a forced cold start).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Json, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::{Report, RuntimeMetrics};
pub use crate::program::Program;
use crate::template::{ACCOUNT_ID, REGION};

pub struct FunctionSpec {
    pub name: String,
    /// What its processes run: a binary, or Python through awslambdaric.
    pub program: Program,
    pub environment: Vec<(String, String)>,
    pub memory_mb: u64,
    pub timeout: Duration,
}

/// Lambda's payload limit for a synchronous invocation, for the event and for the response.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

/// What bounds the functions, as Lambda bounds them.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Lambda's init phase: a process that has not asked for work (`/next`) by then is killed.
    pub init: Duration,
    /// A process idle this long is stopped, as Lambda reclaims idle sandboxes (`None`: never).
    pub idle_stop: Option<Duration>,
    /// Invocations in flight across every function at most (`None`: unbounded); more are
    /// throttled (`TooManyRequestsException`), as Lambda's account concurrency does.
    pub account_concurrency: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Self { init: Duration::from_secs(10), idle_stop: None, account_concurrency: None }
    }
}

#[derive(Debug)]
pub enum Outcome {
    Response(Bytes),
    /// The handler returned an error or panicked, or Lambda refused the invocation:
    /// `{errorType, errorMessage}`.
    Error(Value),
    /// The process died or was killed (timeout, memory, kill switch) before answering.
    Crashed(Crash),
}

/// An invocation whose process ended before answering, with the error type Lambda reports.
#[derive(Debug, Clone)]
pub struct Crash {
    /// `Runtime.ExitError`, `Runtime.OutOfMemory` or `Sandbox.Timedout`.
    pub error_type: &'static str,
    pub message: String,
}

impl Crash {
    fn exit(message: String) -> Self {
        Self { error_type: "Runtime.ExitError", message }
    }

    /// The payload Lambda's `Invoke` answers with `FunctionError: Unhandled`.
    pub fn to_json(&self) -> Value {
        json!({"errorType": self.error_type, "errorMessage": self.message})
    }
}

/// A one-shot order from `POST /_roost/kill`: SIGKILL the process that takes the function's
/// next invocation (whose event contains `payload_contains`, when given) `after_ms` after it
/// took it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct KillOrder {
    pub function: String,
    pub after_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_contains: Option<String>,
}

impl KillOrder {
    fn applies_to(&self, function: &str, payload: &[u8]) -> bool {
        self.function == function
            && self.payload_contains.as_ref().is_none_or(|needle| {
                let needle = needle.as_bytes();
                needle.is_empty() || payload.windows(needle.len()).any(|window| window == needle)
            })
    }
}

struct Invocation {
    request_id: String,
    payload: Bytes,
    reply: oneshot::Sender<Outcome>,
}

struct InFlight {
    request_id: String,
    started: Instant,
    reply: oneshot::Sender<Outcome>,
}

struct Process {
    pid: u32,
    spawned: Instant,
    /// When it last finished an invocation (or started): what the idle stop measures.
    last_active: Instant,
    /// Chosen for the idle stop: it takes no more work (an invocation it picks up goes back).
    retiring: bool,
    /// Set on the first `/next`; reported (and cleared) with the first invocation, as Lambda does.
    init_duration: Option<Duration>,
    initialised: bool,
    in_flight: Option<InFlight>,
    /// The Runtime API server of its own, for a runtime client that takes no path prefix
    /// (crate::program): dropped with the process, which stops that server.
    _own_api: Option<oneshot::Sender<()>>,
}

#[derive(Default)]
struct Pool {
    next_process: u32,
    processes: HashMap<u32, Process>,
    /// Invocations queued and not yet taken by a process.
    pending: usize,
    /// Processes waiting in `/next`.
    idle: usize,
    /// Processes in a row that died before reaching `/next`, and when the last one did: new
    /// starts back off, and invocations fail fast while none can run.
    init_failures: u32,
    last_init_failure: Option<Instant>,
}

impl Pool {
    /// How long new starts still wait after consecutive init failures: 200 ms doubling per
    /// failure, at most 30 s (`None`: start now).
    fn restart_backoff(&self) -> Option<Duration> {
        let last = self.last_init_failure?;
        let exponent = self.init_failures.saturating_sub(1).min(8);
        let backoff = (Duration::from_millis(200) * 2u32.pow(exponent)).min(Duration::from_secs(30));
        backoff.checked_sub(last.elapsed()).filter(|left| !left.is_zero())
    }
}

struct Function {
    spec: FunctionSpec,
    queue: mpsc::UnboundedSender<Invocation>,
    receiver: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    pool: Mutex<Pool>,
    log: Mutex<std::fs::File>,
    log_path: PathBuf,
}

pub struct Lambda {
    functions: HashMap<String, Arc<Function>>,
    api_base: String,
    max_processes: usize,
    limits: Limits,
    echo_logs: bool,
    stopping: AtomicBool,
    kills: Mutex<Vec<KillOrder>>,
    /// Invocations in flight across every function (for `limits.account_concurrency`).
    concurrent: AtomicUsize,
    /// What `GET /metrics` on this server shows (crate::metrics).
    pub metrics: RuntimeMetrics,
}

impl Lambda {
    /// Starts the Runtime API server; processes start on the first invocation. `control`: more
    /// routes the same server answers (the fault switches of crate::faults).
    pub async fn start(
        specs: Vec<FunctionSpec>,
        max_processes: usize,
        limits: Limits,
        logs_dir: PathBuf,
        echo_logs: bool,
        control: Router,
    ) -> Result<Arc<Self>> {
        std::fs::create_dir_all(&logs_dir)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api_base = format!("http://{}", listener.local_addr()?);
        let mut functions = HashMap::new();
        for spec in specs {
            let (queue, receiver) = mpsc::unbounded_channel();
            let log_path = logs_dir.join(format!("{}.log", spec.name));
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .with_context(|| format!("opening {}", log_path.display()))?;
            let function = Function {
                spec,
                queue,
                receiver: tokio::sync::Mutex::new(receiver),
                pool: Mutex::default(),
                log: Mutex::new(log),
                log_path,
            };
            functions.insert(function.spec.name.clone(), Arc::new(function));
        }
        let lambda = Arc::new(Self {
            functions,
            api_base,
            max_processes,
            limits,
            echo_logs,
            stopping: AtomicBool::new(false),
            kills: Mutex::default(),
            concurrent: AtomicUsize::new(0),
            metrics: RuntimeMetrics::default(),
        });
        let app = runtime_routes()
            .route("/_roost/invoke/{function}", post(invoke_endpoint))
            .route("/_roost/kill", post(arm_kill).get(armed_kills))
            .route("/_roost/processes", get(processes_endpoint))
            .route("/_roost/processes/{function}", delete(stop_idle_endpoint))
            .route("/metrics", get(metrics_endpoint))
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(lambda.clone())
            .merge(control);
        tokio::spawn(watch_processes(Arc::downgrade(&lambda)));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("runtime API server stopped: {e}");
            }
        });
        Ok(lambda)
    }

    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    pub fn pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        for f in self.functions.values() {
            pids.extend(lock(&f.pool).processes.values().map(|p| p.pid));
        }
        pids
    }

    /// Runs one invocation to its end (response, error, crash or timeout).
    pub async fn invoke(self: &Arc<Self>, function: &str, payload: Bytes) -> Result<Outcome> {
        let f = self.functions.get(function).with_context(|| format!("no function {function}"))?.clone();
        if payload.len() > MAX_PAYLOAD {
            // Lambda's Invoke refuses it (413) before any sandbox sees it.
            return Ok(Outcome::Error(json!({
                "errorType": "RequestEntityTooLargeException",
                "errorMessage": format!("{} byte payload is too large for the Invoke API (limit {MAX_PAYLOAD} bytes)", payload.len()),
            })));
        }
        let Some(_slot) = ConcurrencySlot::take(self) else {
            return Ok(Outcome::Error(
                json!({"errorType": "TooManyRequestsException", "errorMessage": "Rate Exceeded."}),
            ));
        };
        let (reply, answer) = oneshot::channel();
        let request_id = new_request_id();
        {
            let mut pool = lock(&f.pool);
            let backoff = pool.restart_backoff();
            if let Some(wait) = backoff
                && pool.processes.is_empty()
            {
                // Nothing can run it: fail now rather than hang on a function that cannot start.
                return Ok(Outcome::Crashed(Crash::exit(format!(
                    "RequestId: {request_id} Error: {function} failed to start {} times in a row; next start in {} ms",
                    pool.init_failures,
                    wait.as_millis()
                ))));
            }
            pool.pending += 1;
            if backoff.is_none() && pool.pending > pool.idle && pool.processes.len() < self.max_processes {
                self.spawn(&f, &mut pool)?;
            }
        }
        f.queue.send(Invocation { request_id, payload, reply }).ok().context("function queue closed")?;
        Ok(answer.await.unwrap_or_else(|_| Outcome::Crashed(Crash::exit("invocation dropped".into()))))
    }

    /// Starts a process of the function (unless one runs) and waits until it asks for work, so a
    /// function that fails at init is reported at start-up rather than on the first request.
    pub async fn start_and_wait(self: &Arc<Self>, function: &str, timeout: Duration) -> Result<()> {
        let f = self.functions.get(function).with_context(|| format!("no function {function}"))?.clone();
        let number = {
            let mut pool = lock(&f.pool);
            match pool.processes.keys().next() {
                Some(n) => *n,
                None => {
                    let n = pool.next_process;
                    self.spawn(&f, &mut pool)?;
                    n
                }
            }
        };
        let started = Instant::now();
        loop {
            match lock(&f.pool).processes.get(&number) {
                None => anyhow::bail!(
                    "{function} exited during init; its log, {}:\n{}",
                    f.log_path.display(),
                    crate::emulators::tail(&f.log_path)
                ),
                Some(p) if p.initialised => return Ok(()),
                Some(_) => {}
            }
            if started.elapsed() > timeout {
                anyhow::bail!("{function} did not start within {timeout:?}; see {}", f.log_path.display());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn spawn(self: &Arc<Self>, f: &Arc<Function>, pool: &mut Pool) -> Result<()> {
        let number = pool.next_process;
        pool.next_process += 1;
        let spec = &f.spec;
        // Each process finds its own prefix of this server; a client that cannot take a prefix
        // gets a server of its own (crate::program).
        let (runtime_api, own_api) = if spec.program.takes_api_prefix() {
            (format!("{}/fn/{}/{number}", self.api_base, spec.name), None)
        } else {
            let (address, stop) = crate::program::serve_own_api(self, &spec.name, number)?;
            (address, Some(stop))
        };
        let mut command = spec.program.command();
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", physical_name(&spec.name))
            // What Lambda sets: UTC, where the code and runtime live, the handler.
            .env("TZ", ":UTC")
            .envs(spec.program.environment())
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", physical_name(&spec.name)))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{number}"))
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .envs(spec.environment.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        crate::process::die_with_parent(&mut command);
        crate::process::read_only_task_root(&mut command, &spec.program.task_root());
        let mut child = command.spawn().with_context(|| format!("starting {}", spec.program))?;
        let pid = child.id().unwrap_or_default();
        let now = Instant::now();
        pool.processes.insert(
            number,
            Process {
                pid,
                spawned: now,
                last_active: now,
                retiring: false,
                init_duration: None,
                initialised: false,
                in_flight: None,
                _own_api: own_api,
            },
        );
        tokio::spawn(enforce_init_limit(self.clone(), f.clone(), number, self.limits.init));
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward_lines(self.clone(), f.clone(), stdout));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_lines(self.clone(), f.clone(), stderr));
        }
        let lambda = self.clone();
        let f = f.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            lambda.exited(&f, number, status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()));
        });
        Ok(())
    }

    fn exited(self: &Arc<Self>, f: &Arc<Function>, number: u32, status: String) {
        let mut pool = lock(&f.pool);
        let Some(process) = pool.processes.remove(&number) else { return };
        if self.stopping.load(Ordering::Relaxed) {
            return;
        }
        self.log(f, &format!("process {number} (pid {}) exited: {status}", process.pid));
        if let Some(in_flight) = process.in_flight {
            self.metrics.crashed(&f.spec.name);
            let _ = in_flight.reply.send(Outcome::Crashed(Crash::exit(format!(
                "RequestId: {} Error: Runtime exited with error: {status}",
                in_flight.request_id
            ))));
        }
        if !process.initialised {
            // Died in init: back off before the next start, and fail what nothing can run.
            pool.init_failures += 1;
            pool.last_init_failure = Some(Instant::now());
            if pool.processes.is_empty() {
                fail_waiting(f, &mut pool, &format!("Error: Runtime exited during init: {status}"));
            }
            return;
        }
        self.replace_if_needed(f, &mut pool);
    }

    /// Starts a process if work is waiting that no process can take.
    fn replace_if_needed(self: &Arc<Self>, f: &Arc<Function>, pool: &mut Pool) {
        if pool.pending > pool.idle
            && pool.processes.len() < self.max_processes
            && pool.restart_backoff().is_none()
            && let Err(e) = self.spawn(f, pool)
        {
            self.log(f, &format!("restart failed: {e:#}"));
        }
    }

    /// Puts an invocation a process took but must not run (it is gone or retiring) back in the
    /// function's queue.
    fn requeue(self: &Arc<Self>, f: &Arc<Function>, pool: &mut Pool, invocation: Invocation) {
        pool.pending += 1;
        if f.queue.send(invocation).is_err() {
            pool.pending -= 1;
            return;
        }
        self.replace_if_needed(f, pool);
    }

    /// The pid of process `number` while it runs `request_id`.
    fn running(&self, f: &Function, number: u32, request_id: &str) -> Option<u32> {
        let pool = lock(&f.pool);
        let process = pool.processes.get(&number)?;
        process.in_flight.as_ref().filter(|i| i.request_id == request_id).map(|_| process.pid)
    }

    /// Takes the first armed kill order that applies to this invocation.
    fn take_kill_order(&self, function: &str, payload: &[u8]) -> Option<KillOrder> {
        let mut kills = lock(&self.kills);
        let index = kills.iter().position(|order| order.applies_to(function, payload))?;
        Some(kills.remove(index))
    }

    fn log(&self, f: &Function, line: &str) {
        let line = format!("[{}] {line}", f.spec.name);
        if self.echo_logs {
            println!("{line}");
        }
        let _ = writeln!(lock(&f.log), "{line}");
    }

    /// Set once the stack is stopping: pollers then end quietly instead of reporting that the
    /// emulators went away.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Stops every process; no restarts after this.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        for pid in self.pids() {
            crate::process::kill(pid, libc::SIGKILL);
        }
    }
}

async fn forward_lines(lambda: Arc<Lambda>, f: Arc<Function>, stream: impl tokio::io::AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        // Written to the log before it is counted: a scrape never counts an EMF line that the
        // function's log file does not show yet (tests compare the two).
        lambda.log(&f, &line);
        lambda.metrics.observe_output(&line);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

type Shared = State<Arc<Lambda>>;

/// Keeps `idle` true to what is waiting in `/next`, also when the process hangs up mid-wait.
struct IdleGuard(Arc<Function>);

impl Drop for IdleGuard {
    fn drop(&mut self) {
        lock(&self.0.pool).idle -= 1;
    }
}

/// Above Lambda's 6 MB, so an oversized event or response is refused as Lambda refuses it
/// (not by the HTTP server's own 2 MB default).
pub(crate) const BODY_LIMIT: usize = 2 * MAX_PAYLOAD;

/// The Runtime API, under each process's own prefix `/fn/<function>/<process>` (the body limit
/// is the caller's to add, after its own routes).
pub(crate) fn runtime_routes() -> Router<Arc<Lambda>> {
    Router::new()
        .route("/fn/{function}/{process}/2018-06-01/runtime/invocation/next", get(next))
        .route("/fn/{function}/{process}/2018-06-01/runtime/invocation/{id}/response", post(response))
        .route("/fn/{function}/{process}/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/fn/{function}/{process}/2018-06-01/runtime/init/error", post(init_error))
}

async fn next(State(lambda): Shared, Path((function, number)): Path<(String, u32)>) -> Response {
    let Some(f) = lambda.functions.get(&function).cloned() else { return StatusCode::NOT_FOUND.into_response() };
    {
        let mut pool = lock(&f.pool);
        let Some(process) = pool.processes.get_mut(&number) else { return StatusCode::GONE.into_response() };
        if !process.initialised {
            process.initialised = true;
            process.init_duration = Some(process.spawned.elapsed());
            pool.init_failures = 0;
            pool.last_init_failure = None;
        }
        pool.idle += 1;
    }
    let guard = IdleGuard(f.clone());
    let invocation = loop {
        let mut receiver = f.receiver.lock().await;
        let Some(invocation) = receiver.recv().await else { return StatusCode::GONE.into_response() };
        drop(receiver);
        if invocation.reply.is_closed() {
            lock(&f.pool).pending -= 1;
            continue;
        }
        break invocation;
    };
    drop(guard);
    let timeout = f.spec.timeout;
    {
        let mut pool = lock(&f.pool);
        pool.pending -= 1;
        match pool.processes.get_mut(&number) {
            Some(process) if !process.retiring => {
                process.in_flight = Some(InFlight {
                    request_id: invocation.request_id.clone(),
                    started: Instant::now(),
                    reply: invocation.reply,
                });
            }
            // Gone, or chosen for the idle stop: another process runs it.
            _ => {
                lambda.requeue(&f, &mut pool, invocation);
                return StatusCode::GONE.into_response();
            }
        }
    }
    tokio::spawn(enforce_timeout(lambda.clone(), f.clone(), number, invocation.request_id.clone(), timeout));
    if let Some(order) = lambda.take_kill_order(&function, &invocation.payload) {
        tokio::spawn(kill_after(lambda.clone(), f.clone(), number, invocation.request_id.clone(), order));
    }
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + timeout;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", invocation.request_id);
    set("lambda-runtime-deadline-ms", deadline.as_millis().to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{}", physical_name(&function)),
    );
    // As Lambda sends it: the X-Ray root (epoch seconds, 96 random bits), a parent segment id and
    // the sampling decision (not sampled: nothing is sent to X-Ray locally).
    set(
        "lambda-runtime-trace-id",
        format!(
            "Root=1-{:08x}-{:024x};Parent={:016x};Sampled=0",
            deadline.as_secs(),
            rand::random::<u128>() >> 32,
            rand::random::<u64>()
        ),
    );
    set("content-type", "application/json".into());
    (headers, invocation.payload).into_response()
}

/// Lambda stops an invocation at its timeout by ending the sandbox; we do the same.
async fn enforce_timeout(lambda: Arc<Lambda>, f: Arc<Function>, number: u32, request_id: String, timeout: Duration) {
    tokio::time::sleep(timeout).await;
    let mut pool = lock(&f.pool);
    let Some(process) = pool.processes.get_mut(&number) else { return };
    if process.in_flight.as_ref().is_some_and(|i| i.request_id == request_id) {
        let pid = process.pid;
        if let Some(in_flight) = process.in_flight.take() {
            lambda.metrics.crashed(&f.spec.name);
            let _ = in_flight.reply.send(Outcome::Crashed(Crash {
                error_type: "Sandbox.Timedout",
                message: format!(
                    "RequestId: {request_id} Error: Task timed out after {:.2} seconds",
                    timeout.as_secs_f64()
                ),
            }));
        }
        drop(pool);
        lambda.log(&f, &format!("{request_id} Task timed out after {} seconds", timeout.as_secs()));
        crate::process::kill(pid, libc::SIGKILL);
    }
}

fn finish(lambda: &Lambda, function: &str, number: u32, request_id: &str, outcome: Outcome) -> Response {
    let Some(f) = lambda.functions.get(function) else { return StatusCode::NOT_FOUND.into_response() };
    let mut pool = lock(&f.pool);
    let Some(process) = pool.processes.get_mut(&number) else { return StatusCode::GONE.into_response() };
    let Some(in_flight) = process.in_flight.take_if(|i| i.request_id == request_id) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let duration = in_flight.started.elapsed();
    process.last_active = Instant::now();
    let init = process.init_duration.take();
    let pid = process.pid;
    drop(pool);
    let failed = matches!(outcome, Outcome::Error(_));
    let _ = in_flight.reply.send(outcome);
    let max_memory_mb = crate::process::max_rss_mb(pid);
    lambda.metrics.report(&Report { function, duration, init, max_memory_mb, failed });
    let mut report = format!(
        "REPORT RequestId: {request_id}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
        duration.as_secs_f64() * 1000.0,
        duration.as_millis() + 1,
        f.spec.memory_mb,
        max_memory_mb.unwrap_or(0),
    );
    if let Some(init) = init {
        report.push_str(&format!("\tInit Duration: {:.2} ms", init.as_secs_f64() * 1000.0));
    }
    lambda.log(f, &report);
    (StatusCode::ACCEPTED, [("content-length", "0")]).into_response()
}

async fn response(
    State(lambda): Shared,
    Path((function, number, id)): Path<(String, u32, String)>,
    body: Bytes,
) -> Response {
    if body.len() > MAX_PAYLOAD {
        // Lambda refuses the runtime's answer and fails the invocation.
        let message = format!(
            "Response payload size ({} bytes) exceeded maximum allowed payload size ({MAX_PAYLOAD} bytes).",
            body.len()
        );
        let error = json!({"errorType": "Function.ResponseSizeTooLarge", "errorMessage": message});
        if let Some(f) = lambda.functions.get(&function) {
            lambda.log(f, &format!("{id} {message}"));
        }
        finish(&lambda, &function, number, &id, Outcome::Error(error));
        let refusal = json!({"errorType": "RequestEntityTooLarge", "errorMessage": message});
        return (StatusCode::PAYLOAD_TOO_LARGE, Json(refusal)).into_response();
    }
    finish(&lambda, &function, number, &id, Outcome::Response(body))
}

async fn error(
    State(lambda): Shared,
    Path((function, number, id)): Path<(String, u32, String)>,
    body: Bytes,
) -> Response {
    let error = serde_json::from_slice(&body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
    if let Some(f) = lambda.functions.get(&function) {
        lambda.log(f, &format!("{id} function error: {error}"));
    }
    finish(&lambda, &function, number, &id, Outcome::Error(error))
}

async fn init_error(State(lambda): Shared, Path((function, number)): Path<(String, u32)>, body: Bytes) -> Response {
    if let Some(f) = lambda.functions.get(&function) {
        lambda.log(f, &format!("process {number} init error: {}", String::from_utf8_lossy(&body)));
    }
    (StatusCode::ACCEPTED, [("content-length", "0")]).into_response()
}

/// For tests and tools: invoke a function with any payload, as `aws lambda invoke` would.
async fn invoke_endpoint(State(lambda): Shared, Path(function): Path<String>, payload: Bytes) -> Response {
    match lambda.invoke(&function, payload).await {
        Ok(Outcome::Response(body)) => ([("x-roost-outcome", "response")], body).into_response(),
        Ok(Outcome::Error(error)) => ([("x-roost-outcome", "error")], error.to_string()).into_response(),
        Ok(Outcome::Crashed(crash)) => ([("x-roost-outcome", "crashed")], crash.to_json().to_string()).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, format!("{e:#}")).into_response(),
    }
}

/// `POST /_roost/kill` `{"function", "after_ms", "payload_contains"?}`: arms a one-shot kill
/// (tests use it to crash a function mid-invocation). Answers the orders now armed.
async fn arm_kill(State(lambda): Shared, Json(order): Json<KillOrder>) -> Response {
    if !lambda.functions.contains_key(&order.function) {
        return (StatusCode::NOT_FOUND, format!("no function {}", order.function)).into_response();
    }
    lock(&lambda.kills).push(order);
    armed_kills(State(lambda)).await
}

/// `GET /_roost/kill`: `{"armed": [orders not yet used]}`.
async fn armed_kills(State(lambda): Shared) -> Response {
    let armed = lock(&lambda.kills).clone();
    Json(json!({ "armed": armed })).into_response()
}

/// Carries out a kill order: SIGKILL the process if it still runs that invocation; the process's
/// exit then fails the invocation as Lambda reports a crashed runtime (`Runtime.ExitError`).
async fn kill_after(lambda: Arc<Lambda>, f: Arc<Function>, number: u32, request_id: String, order: KillOrder) {
    tokio::time::sleep(Duration::from_millis(order.after_ms)).await;
    if let Some(pid) = lambda.running(&f, number, &request_id) {
        lambda.log(&f, &format!("{request_id} process {number} killed by POST /_roost/kill"));
        crate::process::kill(pid, libc::SIGKILL);
    }
}

/// Lambda's init limit: a process that has not reached `/next` in time is killed (its exit
/// then counts as an init failure).
async fn enforce_init_limit(lambda: Arc<Lambda>, f: Arc<Function>, number: u32, limit: Duration) {
    tokio::time::sleep(limit).await;
    let pid = {
        let pool = lock(&f.pool);
        match pool.processes.get(&number) {
            Some(process) if !process.initialised => process.pid,
            _ => return,
        }
    };
    lambda.log(
        &f,
        &format!("INIT_REPORT Init Duration: {:.2} ms\tPhase: init\tStatus: timeout", limit.as_secs_f64() * 1000.0),
    );
    crate::process::kill(pid, libc::SIGKILL);
}

/// Fails every queued invocation of a function no process can run (it died in init), unless a
/// process waits in `/next` (it holds the queue and will take them).
fn fail_waiting(f: &Function, pool: &mut Pool, why: &str) {
    let Ok(mut receiver) = f.receiver.try_lock() else { return };
    while let Ok(invocation) = receiver.try_recv() {
        pool.pending = pool.pending.saturating_sub(1);
        let message = format!("RequestId: {} {why}", invocation.request_id);
        let _ = invocation.reply.send(Outcome::Crashed(Crash::exit(message)));
    }
}

/// One of the account's concurrent executions, given back when the invocation ends.
struct ConcurrencySlot<'a>(&'a AtomicUsize);

impl<'a> ConcurrencySlot<'a> {
    /// `None` when the account's concurrency cap is reached (the invocation is throttled).
    fn take(lambda: &'a Lambda) -> Option<Self> {
        let running = lambda.concurrent.fetch_add(1, Ordering::SeqCst);
        let slot = Self(&lambda.concurrent);
        lambda.limits.account_concurrency.is_none_or(|cap| running < cap).then_some(slot)
    }
}

impl Drop for ConcurrencySlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How often processes are checked against their memory size and the idle stop.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// Enforces `MemorySize` and the idle stop on every process until the runtime stops.
async fn watch_processes(lambda: Weak<Lambda>) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let Some(lambda) = lambda.upgrade() else { return };
        if lambda.is_stopping() {
            return;
        }
        for f in lambda.functions.values() {
            enforce_memory(&lambda, f);
            if let Some(idle_stop) = lambda.limits.idle_stop {
                stop_idle(&lambda, f, idle_stop);
            }
        }
    }
}

/// A process whose resident memory exceeds the function's `MemorySize` is killed, and its
/// invocation fails as Lambda's `Runtime.OutOfMemory`.
fn enforce_memory(lambda: &Lambda, f: &Function) {
    let mut pool = lock(&f.pool);
    for (number, process) in pool.processes.iter_mut() {
        let Some(rss_mb) = crate::process::rss_mb(process.pid) else { continue };
        if rss_mb <= f.spec.memory_mb {
            continue;
        }
        lambda.log(f, &format!("process {number} used {rss_mb} MB of {} MB: killed", f.spec.memory_mb));
        if let Some(in_flight) = process.in_flight.take() {
            lambda.metrics.crashed(&f.spec.name);
            let message =
                format!("RequestId: {} Error: Runtime exited with error: signal: killed", in_flight.request_id);
            let _ = in_flight.reply.send(Outcome::Crashed(Crash { error_type: "Runtime.OutOfMemory", message }));
        }
        crate::process::kill(process.pid, libc::SIGKILL);
    }
}

/// Stops processes idle for longer than `idle_stop`, as Lambda reclaims idle sandboxes: the next
/// invocation starts a process cold.
fn stop_idle(lambda: &Lambda, f: &Function, idle_stop: Duration) {
    let mut pool = lock(&f.pool);
    for (number, process) in pool.processes.iter_mut() {
        if process.initialised
            && !process.retiring
            && process.in_flight.is_none()
            && process.last_active.elapsed() > idle_stop
        {
            process.retiring = true;
            lambda.log(f, &format!("process {number} stopped after {} s idle", idle_stop.as_secs()));
            crate::process::kill(process.pid, libc::SIGKILL);
        }
    }
}

/// `GET /_roost/processes`: `{"functions": {"<Function>": [{"process": n, "pid": p,
/// "age_ms": ms, "busy": bool}]}}`, the processes running now (the soak samples their RSS and
/// open file descriptors through `/proc/<pid>`).
async fn processes_endpoint(State(lambda): Shared) -> Response {
    let mut functions = serde_json::Map::new();
    for (name, f) in &lambda.functions {
        let pool = lock(&f.pool);
        let mut list: Vec<Value> = pool
            .processes
            .iter()
            .map(|(number, p)| {
                json!({"process": number, "pid": p.pid, "age_ms": p.spawned.elapsed().as_millis(),
                       "busy": p.in_flight.is_some()})
            })
            .collect();
        list.sort_by_key(|p| p["process"].as_u64());
        functions.insert(name.clone(), Value::Array(list));
    }
    Json(json!({ "functions": functions })).into_response()
}

/// How long `DELETE /_roost/processes/<Function>` waits for the processes it killed to be gone.
const STOP_PATIENCE: Duration = Duration::from_secs(10);

/// `DELETE /_roost/processes/<Function>`: stops the function's idle processes and answers once
/// they have exited, `{"stopped": n}`, so that its next invocation starts a process cold (the
/// bench forces cold starts this way). Busy processes and those still in init are left; 404 for
/// an unknown function.
async fn stop_idle_endpoint(State(lambda): Shared, Path(function): Path<String>) -> Response {
    let Some(f) = lambda.functions.get(&function).cloned() else {
        return (StatusCode::NOT_FOUND, format!("no function {function}")).into_response();
    };
    let stopped: Vec<u32> = {
        let mut pool = lock(&f.pool);
        let mut stopped = Vec::new();
        for (number, process) in pool.processes.iter_mut() {
            // Retiring, as the idle stop does: an invocation it takes meanwhile goes back.
            if process.initialised && !process.retiring && process.in_flight.is_none() {
                process.retiring = true;
                lambda.log(&f, &format!("process {number} stopped by DELETE /_roost/processes/{function}"));
                crate::process::kill(process.pid, libc::SIGKILL);
                stopped.push(*number);
            }
        }
        stopped
    };
    // Gone once its exit was seen (`Lambda::exited` removes it from the pool).
    let asked = Instant::now();
    while lock(&f.pool).processes.keys().any(|number| stopped.contains(number)) {
        if asked.elapsed() > STOP_PATIENCE {
            let message = format!("{function}: processes {stopped:?} still running {STOP_PATIENCE:?} after SIGKILL");
            return (StatusCode::INTERNAL_SERVER_ERROR, message).into_response();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Json(json!({ "stopped": stopped.len() })).into_response()
}

/// The function's name in the account: `roost-<LogicalId>`, as every local resource is named.
pub fn physical_name(logical_id: &str) -> String {
    format!("roost-{logical_id}")
}

/// `GET /metrics`: the Prometheus text format (crate::metrics).
async fn metrics_endpoint(State(lambda): Shared) -> Response {
    let text = lambda.metrics.scrape().await;
    ([("content-type", prometheus_client::encoding::prometheus_text::CONTENT_TYPE)], text).into_response()
}

pub fn new_request_id() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
    )
}

#[cfg(test)]
#[path = "lambda_tests.rs"]
mod tests;
