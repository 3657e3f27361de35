//! One local stack: emulators, the resources the template declares, the functions, their event
//! sources and the HTTP API, described in `stack.json` for tests and tools.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::aws::Moto;
use crate::emulators::{BENCH_VENV, Emulator, ensure_venv_of, progress};
use crate::faults::Faults;
use crate::gateway::{Authorizer, Cors, Gateway, Route};
use crate::lambda::{FunctionSpec, Lambda, Program};
use crate::provision::{Options as ProvisionOptions, Provisioned, provision};
use crate::sources::{self, Schedule, SqsChaos, SqsSource};
use crate::streams::{self, FailurePolicy, FailureQueue, StreamSource};
use crate::template::{FunctionCode, FunctionDef, Resolver, Template};

pub struct Options {
    pub root: PathBuf,
    pub template: PathBuf,
    /// `--template-overlay`: more `Resources` merged into the template's (bench/template.yaml).
    pub template_overlay: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub port: u16,
    pub release: bool,
    pub build: bool,
    pub max_processes: usize,
    pub test_mode: bool,
    pub echo_logs: bool,
    pub strictness: Strictness,
    /// Lambda's limits (init, idle stop, account concurrency).
    pub limits: crate::lambda::Limits,
    /// API Gateway's integration timeout (30 s unless a test shortens it).
    pub gateway_timeout: Duration,
    /// How the event sources deliver (`--delivery`).
    pub delivery: Delivery,
}

/// `--delivery`: `chaotic` (default in test mode) delivers as AWS may: stream records over several
/// simulated shards in parallel, SQS batches shuffled, some messages twice; `ordered` keeps one
/// shard and each batch as received.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Chaotic,
    Ordered,
}

impl Delivery {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "chaotic" => Ok(Delivery::Chaotic),
            "ordered" => Ok(Delivery::Ordered),
            other => bail!("--delivery is chaotic or ordered, not {other}"),
        }
    }

    /// Simulated shards per stream shard.
    fn stream_shards(self) -> usize {
        match self {
            Delivery::Chaotic => CHAOTIC_STREAM_SHARDS,
            Delivery::Ordered => 1,
        }
    }

    fn sqs_chaos(self) -> Option<SqsChaos> {
        (self == Delivery::Chaotic).then_some(SqsChaos { duplicate_rate: CHAOTIC_DUPLICATE_RATE })
    }

    /// What stack.json says about it.
    fn describe(self, test_mode: bool) -> Value {
        json!({
            "mode": match self { Delivery::Chaotic => "chaotic", Delivery::Ordered => "ordered" },
            "stream_shards": self.stream_shards(),
            "sqs_duplicate_rate": self.sqs_chaos().map_or(0.0, |c| c.duplicate_rate),
            "sqs_shuffle": self == Delivery::Chaotic,
            "stream_retry_delay": match stream_retry_delay(test_mode) {
                streams::RetryDelay::Fixed(d) => json!({"fixed_ms": d.as_millis() as u64}),
                streams::RetryDelay::Backoff { first, max } =>
                    json!({"first_ms": first.as_millis() as u64, "max_ms": max.as_millis() as u64}),
            },
        })
    }
}

/// Chaotic delivery's simulated shards per stream shard: enough that a handful of keys spread.
const CHAOTIC_STREAM_SHARDS: usize = 4;
/// Chaotic delivery's share of SQS messages delivered twice: "a few %", so a suite run meets
/// dozens of duplicates while most deliveries stay single.
const CHAOTIC_DUPLICATE_RATE: f64 = 0.05;

/// Retries of a failed stream batch: test mode waits a fixed 10 ms, so `MaximumRetryAttempts`
/// (100 in the template) is used up in seconds; `up` backs off as a loaded AWS poller would.
fn stream_retry_delay(test_mode: bool) -> streams::RetryDelay {
    if test_mode {
        streams::RetryDelay::Fixed(Duration::from_millis(10))
    } else {
        streams::RetryDelay::Backoff { first: Duration::from_millis(200), max: Duration::from_secs(5) }
    }
}

/// moto's DynamoDB strictness switches (infra/local/moto_launcher.py, patch 7).
#[derive(Clone, Copy, Debug)]
pub struct Strictness {
    pub conflict_rate: f64,
    pub conflict_window_ms: u64,
    pub gsi_lag_ms: u64,
}

pub struct Stack {
    pub lambda: Arc<Lambda>,
    emulators: Vec<Emulator>,
    pub description: Value,
}

impl Stack {
    pub async fn start(options: &Options) -> Result<Self> {
        std::fs::create_dir_all(&options.state_dir)?;
        let template = Template::load_with_overlay(&options.template, options.template_overlay.as_deref())?;
        let functions = template.functions()?;
        if options.build {
            build(&options.root, &functions, options.release).await?;
        }
        // Only a stack with a python function pays for its virtualenv (`cargo roost test` does not).
        if functions.iter().any(|f| matches!(f.code, FunctionCode::Python { .. })) {
            ensure_venv_of(&options.root, &BENCH_VENV).await?;
        }
        let mut emulators = Vec::new();
        let started = async {
            emulators.push(Emulator::start_moto(&options.root, &options.state_dir).await?);
            emulators.push(Emulator::start_localstripe(&options.root, &options.state_dir).await?);
            anyhow::Ok(())
        }
        .await;
        match started {
            Ok(()) => {}
            Err(e) => {
                for emulator in &mut emulators {
                    emulator.stop().await;
                }
                return Err(e);
            }
        }
        let moto = Moto::new(emulators[0].url.clone());
        let stripe_url = emulators[1].url.clone();
        match Self::wire(options, &template, &functions, &moto, &stripe_url).await {
            Ok((lambda, mut description)) => {
                description["emulators"] = emulators
                    .iter()
                    .map(|e| (e.name.to_string(), json!({"url": e.url, "pid": e.pid, "log": e.log})))
                    .collect();
                Ok(Self { lambda, emulators, description })
            }
            Err(e) => {
                for emulator in &mut emulators {
                    emulator.stop().await;
                }
                Err(e)
            }
        }
    }

    async fn wire(
        options: &Options,
        template: &Template,
        functions: &[FunctionDef],
        moto: &Moto,
        stripe_url: &str,
    ) -> Result<(Arc<Lambda>, Value)> {
        progress("creating what the template declares");
        let provisioned = provision(
            moto,
            template,
            &ProvisionOptions { stack_name: "roost".into(), visibility_timeout_cap: options.test_mode.then_some(2) },
        )
        .await?;
        let resolver = &provisioned.resolver;
        let strictness = set_strictness(moto, options.strictness).await?;
        let names: Vec<String> = functions.iter().map(|f| f.logical_id.clone()).collect();
        let faults = Faults::start(&moto.url, stripe_url, &names).await?;
        let specs = function_specs(options, functions, resolver, moto, &faults)?;
        let lambda = Lambda::start(
            specs,
            options.max_processes,
            options.limits.clone(),
            options.state_dir.join("logs"),
            options.echo_logs,
            faults.control_routes(),
        )
        .await?;
        let routes = connect_events(&lambda, moto, functions, &provisioned, options)?;
        let gateway = gateway(options, template, &provisioned, moto, routes, &lambda)?;
        // With several app clients, the one the JWT authorizer accepts (not the alphabetically first).
        let api_client = gateway
            .authorizer
            .as_ref()
            .and_then(|a| a.audience.iter().find(|c| provisioned.user_pool_clients.values().any(|v| v == *c)).cloned())
            .or_else(|| provisioned.user_pool_clients.values().next().cloned());
        let api_url = serve_api(gateway, options.port).await?;

        for f in functions {
            lambda.start_and_wait(&f.logical_id, Duration::from_secs(30)).await?;
        }

        // Stripe's webhook: localstripe signs and sends its events to the local API.
        let stripe_webhook_secret = provisioned.secret_values.get(STRIPE_WEBHOOK_SECRET_PARAMETER).cloned();
        if let Some(secret) = &stripe_webhook_secret {
            register_stripe_webhook(stripe_url, &format!("{api_url}/v1/webhooks/stripe"), secret).await?;
        }

        let first = |map: &BTreeMap<String, String>| map.values().next().cloned();
        let queues: BTreeMap<String, String> = provisioned
            .queues
            .values()
            .map(|url| (url.rsplit('/').next().unwrap_or_default().to_string(), url.clone()))
            .collect();
        lambda.metrics.watch_queues(moto.clone(), queues.clone());
        let description = json!({
            "api_url": api_url,
            "moto_url": moto.url,
            "stripe_url": stripe_url,
            "runtime_url": lambda.api_base(),
            "metrics_url": format!("{}/metrics", lambda.api_base()),
            "user_pool_id": first(&provisioned.user_pools),
            "user_pool_client_id": api_client,
            "table_name": first(&provisioned.tables),
            "bucket_name": first(&provisioned.buckets),
            "queues": queues,
            "topics": provisioned.topics,
            "secret_parameters": provisioned.secret_parameters.keys().collect::<Vec<_>>(),
            "stripe_webhook_secret": stripe_webhook_secret,
            "functions": names,
            "fault_proxies": faults.proxies,
            "strictness": strictness,
            "delivery": options.delivery.describe(options.test_mode),
            "read_only_task_roots": crate::process::task_roots_are_read_only(),
            "logs_dir": options.state_dir.join("logs"),
            "pid": std::process::id(),
        });
        Ok((lambda, description))
    }

    pub fn write_description(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&self.description)?)?;
        std::fs::rename(&tmp, path)?;
        Ok(())
    }

    pub async fn stop(mut self) {
        self.lambda.stop();
        for emulator in &mut self.emulators {
            emulator.stop().await;
        }
    }
}

/// How each function runs: its binary and its environment, the template's resolved plus where
/// AWS and Stripe are locally: the services faults can hit through the function's fault proxy,
/// the rest (S3, Cognito, SSM) straight to moto.
/// The HTTP API as the template declares it: routes, JWT authorizer, CORS, timeout, throttling.
fn gateway(
    options: &Options,
    template: &Template,
    provisioned: &Provisioned,
    moto: &Moto,
    routes: Vec<Route>,
    lambda: &Arc<Lambda>,
) -> Result<Gateway> {
    let resolver = &provisioned.resolver;
    Ok(Gateway {
        routes,
        lambda: lambda.clone(),
        authorizer: authorizer(template, resolver, moto)?,
        cors: cors(template, resolver)?,
        integration_timeout: options.gateway_timeout,
        throttles: crate::throttle::Throttles::from_http_api(
            template.resources_of_type("AWS::Serverless::HttpApi").next().map(|(_, properties)| properties),
        ),
    })
}

fn function_specs(
    options: &Options,
    functions: &[FunctionDef],
    resolver: &Resolver,
    moto: &Moto,
    faults: &Faults,
) -> Result<Vec<FunctionSpec>> {
    let target = options.root.join("target").join(if options.release { "release" } else { "debug" });
    let mut specs = Vec::new();
    for f in functions {
        let mut environment = Vec::new();
        for (key, value) in &f.environment {
            environment.push((
                key.clone(),
                resolver.resolve_string(value).with_context(|| format!("{}: {key}", f.logical_id))?,
            ));
        }
        // Local-only settings: where AWS and Stripe are. The template never sets these.
        let proxy =
            faults.proxies.get(&f.logical_id).with_context(|| format!("no fault proxy for {}", f.logical_id))?;
        for (key, value) in [
            ("AWS_ENDPOINT_URL", moto.url.clone()),
            ("AWS_ENDPOINT_URL_DYNAMODB", proxy.clone()),
            ("AWS_ENDPOINT_URL_SQS", proxy.clone()),
            ("AWS_ENDPOINT_URL_SNS", proxy.clone()),
            ("AWS_ENDPOINT_URL_SESV2", proxy.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("STRIPE_API_BASE", proxy.clone()),
            // Calendar imports may fetch an `http` feed on loopback (the one an e2e test
            // serves); in the cloud only public `https` feeds are fetched (listings/src/feeds.rs).
            ("ROOST_CALENDAR_FEEDS_ALLOW_LOOPBACK", "true".into()),
        ] {
            environment.push((key.into(), value));
        }
        if let Ok(offset) = std::env::var("ROOST_CLOCK_OFFSET_SECONDS") {
            environment.push(("ROOST_CLOCK_OFFSET_SECONDS".into(), offset));
        }
        specs.push(FunctionSpec {
            name: f.logical_id.clone(),
            program: program(options, &target, f)?,
            environment,
            memory_mb: f.memory_mb,
            timeout: Duration::from_secs(f.timeout_s),
        });
    }
    Ok(specs)
}

/// What the function's processes run: its built binary, or Python from the bench's virtualenv
/// with its CodeUri (relative to the project root) as the task root.
fn program(options: &Options, target: &Path, f: &FunctionDef) -> Result<Program> {
    match &f.code {
        FunctionCode::Binary(binary) => {
            let binary = target.join(binary);
            if !binary.exists() {
                bail!("{}: {} is not built (run without --no-build)", f.logical_id, binary.display());
            }
            Ok(Program::Binary(binary))
        }
        FunctionCode::Python { runtime, handler, code_uri } => {
            let task_root = options.root.join(code_uri);
            if !task_root.is_dir() {
                bail!("{}: CodeUri {code_uri} is not a directory of {}", f.logical_id, options.root.display());
            }
            Ok(Program::Python {
                interpreter: options.root.join(BENCH_VENV.dir).join("bin/python"),
                runtime: runtime.clone(),
                handler: handler.clone(),
                task_root,
            })
        }
    }
}

/// Starts the pollers of every SQS, DynamoDB and schedule event; returns the HTTP API's routes.
fn connect_events(
    lambda: &Arc<Lambda>,
    moto: &Moto,
    functions: &[FunctionDef],
    provisioned: &Provisioned,
    options: &Options,
) -> Result<Vec<Route>> {
    let mut routes = Vec::new();
    for f in functions {
        for event in &f.events {
            let p = &event.properties;
            match event.kind.as_str() {
                "HttpApi" => routes.push(Route {
                    method: p.get("Method").and_then(Value::as_str).unwrap_or("ANY").to_uppercase(),
                    path: p.get("Path").and_then(Value::as_str).context("HttpApi event without Path")?.into(),
                    function: f.logical_id.clone(),
                    protected: p.pointer("/Auth/Authorizer").and_then(Value::as_str) != Some("NONE"),
                }),
                "SQS" => {
                    let mut source = sqs_source(f, p, provisioned)?;
                    source.chaos = options.delivery.sqs_chaos();
                    sources::spawn_sqs(lambda.clone(), moto.clone(), source)
                }
                "DynamoDB" => {
                    let mut source = stream_source(f, p, provisioned)?;
                    source.shards = options.delivery.stream_shards();
                    source.retry_delay = stream_retry_delay(options.test_mode);
                    streams::spawn_stream(lambda.clone(), moto.clone(), source)
                }
                "Schedule" | "ScheduleV2" => {
                    let expression = p
                        .get("Schedule")
                        .or_else(|| p.get("ScheduleExpression"))
                        .and_then(Value::as_str)
                        .context("schedule without expression")?;
                    match sources::parse_rate(expression) {
                        Ok(every) => sources::spawn_schedule(
                            lambda.clone(),
                            Schedule { function: f.logical_id.clone(), name: event.name.clone(), every },
                        ),
                        Err(e) => progress(&format!("{}.{}: {e} ({expression} not run)", f.logical_id, event.name)),
                    }
                }
                other => progress(&format!("{}.{}: event type {other} is not emulated", f.logical_id, event.name)),
            }
        }
    }
    Ok(routes)
}

/// The event source mapping of an `SQS` event with properties `p`.
fn sqs_source(f: &FunctionDef, p: &Value, provisioned: &Provisioned) -> Result<SqsSource> {
    let queue_arn = provisioned.resolver.resolve_string(p.get("Queue").context("SQS event without Queue")?)?;
    let queue_url = queue_url(provisioned, &queue_arn)?;
    Ok(SqsSource {
        function: f.logical_id.clone(),
        queue_arn,
        queue_url,
        batch_size: p.get("BatchSize").and_then(Value::as_u64).unwrap_or(10) as usize,
        batching_window: Duration::from_secs(
            p.get("MaximumBatchingWindowInSeconds").and_then(Value::as_u64).unwrap_or(0),
        ),
        report_failures: reports_failures(p),
        concurrency: sources::sqs_pollers(
            p.pointer("/ScalingConfig/MaximumConcurrency").and_then(Value::as_u64).map(|n| n as usize),
        ),
        filters: sources::filters(p)?,
        chaos: None,
    })
}

/// The event source mapping of a `DynamoDB` (stream) event with properties `p`, with its failure
/// settings; ordered delivery and `up`'s retry delay until the caller says otherwise.
fn stream_source(f: &FunctionDef, p: &Value, provisioned: &Provisioned) -> Result<StreamSource> {
    let resolver = &provisioned.resolver;
    let on_failure = match p.pointer("/DestinationConfig/OnFailure") {
        None => None,
        Some(destination) => {
            let kind = destination.get("Type").and_then(Value::as_str).unwrap_or("SQS");
            if kind != "SQS" {
                bail!("{}: a stream on-failure destination of type {kind} is not emulated (only SQS)", f.logical_id);
            }
            let arn =
                resolver.resolve_string(destination.get("Destination").context("OnFailure without Destination")?)?;
            Some(FailureQueue { url: queue_url(provisioned, &arn)?, arn })
        }
    };
    Ok(StreamSource {
        function: f.logical_id.clone(),
        stream_arn: resolver.resolve_string(p.get("Stream").context("DynamoDB event without Stream")?)?,
        starting_position: p.get("StartingPosition").and_then(Value::as_str).unwrap_or("LATEST").into(),
        batch_size: p.get("BatchSize").and_then(Value::as_u64).unwrap_or(100) as usize,
        report_failures: reports_failures(p),
        filters: sources::filters(p)?,
        policy: failure_policy(p),
        on_failure,
        shards: 1,
        retry_delay: stream_retry_delay(false),
    })
}

/// `BisectBatchOnFunctionError` and `MaximumRetryAttempts` (absent or -1: until the record expires).
fn failure_policy(p: &Value) -> FailurePolicy {
    FailurePolicy {
        bisect: p.get("BisectBatchOnFunctionError").and_then(Value::as_bool).unwrap_or(false),
        max_retries: p.get("MaximumRetryAttempts").and_then(Value::as_i64).and_then(|n| u32::try_from(n).ok()),
    }
}

/// The HTTP API's JWT authorizer, checking tokens against moto's Cognito keys.
fn authorizer(template: &Template, resolver: &Resolver, moto: &Moto) -> Result<Option<Authorizer>> {
    let Some(def) = template.jwt_authorizer() else { return Ok(None) };
    let issuer = resolver.resolve_string(&def.issuer)?;
    let audience: Vec<String> = resolver
        .resolve(&def.audience)?
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let pool_id = issuer.rsplit('/').next().unwrap_or_default();
    Ok(Some(Authorizer::new(issuer.clone(), audience, format!("{}/{pool_id}/.well-known/jwks.json", moto.url))))
}

/// The HTTP API's CORS configuration, if the template declares one.
fn cors(template: &Template, resolver: &Resolver) -> Result<Option<Cors>> {
    let Some(c) = template.cors() else { return Ok(None) };
    let c = resolver.resolve(&c)?;
    let list = |key: &str| -> Vec<String> {
        match c.get(key) {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .flat_map(|s| s.split(','))
                .map(|s| s.trim().to_string())
                .collect(),
            Some(Value::String(s)) => s.split(',').map(|s| s.trim().to_string()).collect(),
            _ => Vec::new(),
        }
    };
    Ok(Some(Cors {
        allow_origins: list("AllowOrigins"),
        allow_methods: list("AllowMethods").join(","),
        allow_headers: list("AllowHeaders").join(","),
        expose_headers: list("ExposeHeaders").join(","),
        max_age: c.get("MaxAge").and_then(Value::as_u64),
    }))
}

/// Serves the gateway on `port` (0: any free one); returns its URL.
async fn serve_api(gateway: Gateway, port: u16) -> Result<String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("port {port} is taken (use --port N)"))?;
    let api_url = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().fallback(crate::gateway::handle).with_state(Arc::new(gateway));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("HTTP API stopped: {e}");
        }
    });
    Ok(api_url)
}

/// Switches moto's TransactionConflict and GSI lag on (or off); what moto then reports.
async fn set_strictness(moto: &Moto, strictness: Strictness) -> Result<Value> {
    let body = json!({
        "transaction_conflict": {"rate": strictness.conflict_rate, "window_ms": strictness.conflict_window_ms},
        "gsi_lag_ms": strictness.gsi_lag_ms,
    });
    let response = reqwest::Client::new()
        .post(format!("{}/moto-api/roost/strictness", moto.url))
        .json(&body)
        .send()
        .await
        .context("setting moto's DynamoDB strictness")?;
    if !response.status().is_success() {
        bail!("moto refused the DynamoDB strictness settings: {}", response.status());
    }
    let mut answer: Value = response.json().await.context("moto's DynamoDB strictness answer")?;
    if let Some(settings) = answer.as_object_mut() {
        settings.remove("counters");
    }
    Ok(answer)
}

/// The template parameter naming the Stripe webhook signing secret.
const STRIPE_WEBHOOK_SECRET_PARAMETER: &str = "StripeWebhookSecretSecretParameter";

/// `POST /_config/webhooks/roost` (form `url`, `secret`; no `events[]`: every event type).
async fn register_stripe_webhook(stripe_url: &str, url: &str, secret: &str) -> Result<()> {
    let response = reqwest::Client::new()
        .post(format!("{stripe_url}/_config/webhooks/roost"))
        .form(&[("url", url), ("secret", secret)])
        .send()
        .await
        .context("registering the Stripe webhook with localstripe")?;
    if !response.status().is_success() {
        bail!("localstripe refused the webhook registration: {}", response.status());
    }
    Ok(())
}

fn reports_failures(properties: &Value) -> bool {
    properties
        .get("FunctionResponseTypes")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|v| v == "ReportBatchItemFailures"))
}

fn queue_url(provisioned: &Provisioned, arn: &str) -> Result<String> {
    let name = arn.rsplit(':').next().unwrap_or_default();
    provisioned
        .queues
        .values()
        .find(|url| url.rsplit('/').next() == Some(name))
        .cloned()
        .with_context(|| format!("no queue {arn}"))
}

async fn build(root: &Path, functions: &[FunctionDef], release: bool) -> Result<()> {
    let mut binaries: Vec<&str> = functions.iter().filter_map(FunctionDef::binary).collect();
    binaries.sort();
    binaries.dedup();
    if binaries.is_empty() {
        return Ok(());
    }
    progress(&format!("building {} ({})", binaries.join(", "), if release { "release" } else { "debug" }));
    let mut command = tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(root).args(["build", "--quiet"]);
    if release {
        command.arg("--release");
    }
    for binary in binaries {
        command.args(["--bin", binary]);
    }
    let status = command.status().await?;
    if !status.success() {
        bail!("building the functions failed ({status})");
    }
    Ok(())
}
