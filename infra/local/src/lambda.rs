//! The Lambda service, locally: each function's real binary runs under the Runtime API
//! (`AWS_LAMBDA_RUNTIME_API`), one invocation at a time per process, with up to `max_processes`
//! processes per function started on demand, so concurrent requests race as they do on Lambda.
//! Every process gets its own path prefix (`/fn/<function>/<process>`), which tells us which
//! process took which invocation (for the REPORT line's memory and init duration).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::metrics::{Report, RuntimeMetrics};
use crate::template::{ACCOUNT_ID, REGION};

pub struct FunctionSpec {
    pub name: String,
    pub binary: PathBuf,
    pub environment: Vec<(String, String)>,
    pub memory_mb: u64,
    pub timeout: Duration,
}

#[derive(Debug)]
pub enum Outcome {
    Response(Bytes),
    /// The handler returned an error or panicked: `{errorType, errorMessage}`.
    Error(Value),
    /// The process died or was killed (timeout) before answering.
    Crashed(String),
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
    /// Set on the first `/next`; reported (and cleared) with the first invocation, as Lambda does.
    init_duration: Option<Duration>,
    initialised: bool,
    in_flight: Option<InFlight>,
}

#[derive(Default)]
struct Pool {
    next_process: u32,
    processes: HashMap<u32, Process>,
    /// Invocations queued and not yet taken by a process.
    pending: usize,
    /// Processes waiting in `/next`.
    idle: usize,
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
    echo_logs: bool,
    stopping: AtomicBool,
    /// What `GET /metrics` on this server shows (crate::metrics).
    pub metrics: RuntimeMetrics,
}

impl Lambda {
    /// Starts the Runtime API server; processes start on the first invocation. `control`: more
    /// routes the same server answers (the fault switches of crate::faults).
    pub async fn start(
        specs: Vec<FunctionSpec>,
        max_processes: usize,
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
            echo_logs,
            stopping: AtomicBool::new(false),
            metrics: RuntimeMetrics::default(),
        });
        let app = Router::new()
            .route("/fn/{function}/{process}/2018-06-01/runtime/invocation/next", get(next))
            .route("/fn/{function}/{process}/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/fn/{function}/{process}/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/fn/{function}/{process}/2018-06-01/runtime/init/error", post(init_error))
            .route("/_roost/invoke/{function}", post(invoke_endpoint))
            .route("/metrics", get(metrics_endpoint))
            .with_state(lambda.clone())
            .merge(control);
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
        let (reply, answer) = oneshot::channel();
        let request_id = new_request_id();
        {
            let mut pool = lock(&f.pool);
            pool.pending += 1;
            if pool.pending > pool.idle && pool.processes.len() < self.max_processes {
                self.spawn(&f, &mut pool)?;
            }
        }
        f.queue.send(Invocation { request_id, payload, reply }).ok().context("function queue closed")?;
        Ok(answer.await.unwrap_or_else(|_| Outcome::Crashed("invocation dropped".into())))
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
        let mut command = tokio::process::Command::new(&spec.binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", format!("{}/fn/{}/{number}", self.api_base, spec.name))
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string())
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", spec.name))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{number}"))
            .env("AWS_REGION", REGION)
            .env("AWS_DEFAULT_REGION", REGION)
            .env("_HANDLER", "bootstrap")
            .envs(spec.environment.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        crate::process::die_with_parent(&mut command);
        let mut child = command.spawn().with_context(|| format!("starting {}", spec.binary.display()))?;
        let pid = child.id().unwrap_or_default();
        pool.processes.insert(
            number,
            Process { pid, spawned: Instant::now(), init_duration: None, initialised: false, in_flight: None },
        );
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
            let _ = in_flight.reply.send(Outcome::Crashed(format!("Runtime exited: {status}")));
        }
        // Replace it if work is waiting and nobody else can take it.
        if pool.pending > pool.idle
            && pool.processes.len() < self.max_processes
            && let Err(e) = self.spawn(f, &mut pool)
        {
            self.log(f, &format!("restart failed: {e:#}"));
        }
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

async fn next(State(lambda): Shared, Path((function, number)): Path<(String, u32)>) -> Response {
    let Some(f) = lambda.functions.get(&function).cloned() else { return StatusCode::NOT_FOUND.into_response() };
    {
        let mut pool = lock(&f.pool);
        let Some(process) = pool.processes.get_mut(&number) else { return StatusCode::GONE.into_response() };
        if !process.initialised {
            process.initialised = true;
            process.init_duration = Some(process.spawned.elapsed());
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
            Some(process) => {
                process.in_flight = Some(InFlight {
                    request_id: invocation.request_id.clone(),
                    started: Instant::now(),
                    reply: invocation.reply,
                });
            }
            None => {
                let _ = invocation.reply.send(Outcome::Crashed("Runtime exited".into()));
                return StatusCode::GONE.into_response();
            }
        }
    }
    tokio::spawn(enforce_timeout(lambda.clone(), f.clone(), number, invocation.request_id.clone(), timeout));
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default() + timeout;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", invocation.request_id);
    set("lambda-runtime-deadline-ms", deadline.as_millis().to_string());
    set("lambda-runtime-invoked-function-arn", format!("arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}"));
    set("lambda-runtime-trace-id", format!("Root=1-{:08x}-{:024x}", deadline.as_secs(), rand::random::<u128>() >> 32));
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
            let _ = in_flight
                .reply
                .send(Outcome::Crashed(format!("Task timed out after {:.2} seconds", timeout.as_secs_f64())));
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
        Ok(Outcome::Crashed(reason)) => ([("x-roost-outcome", "crashed")], reason).into_response(),
        Err(e) => (StatusCode::NOT_FOUND, format!("{e:#}")).into_response(),
    }
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
