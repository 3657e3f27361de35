//! One measured API call: the round trip as the client saw it, and from the function's own
//! lines the handler's duration (its REPORT line) and the DynamoDB requests it made (its request
//! line's `ddb_requests`, counted by the SDK interceptor in `shared`, not estimated).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use super::reports::Tail;
use crate::{Api, Stack, request_line, unique};

/// What one call cost.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub status: u16,
    pub round_trip_ms: f64,
    pub handler_ms: f64,
    pub ddb_requests: u64,
    pub max_memory_mb: u64,
    #[serde(skip)]
    pub body: Value,
}

/// A call to measure: which function serves it and what to send.
pub struct Call<'a> {
    pub function: &'a str,
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    pub idempotency_key: Option<String>,
}

impl<'a> Call<'a> {
    pub fn get(function: &'a str, path: impl Into<String>) -> Call<'a> {
        Call { function, method: Method::GET, path: path.into(), body: None, idempotency_key: None }
    }

    pub fn post(function: &'a str, path: impl Into<String>, body: Option<Value>) -> Call<'a> {
        Call { function, method: Method::POST, path: path.into(), body, idempotency_key: None }
    }
}

/// The log the runtime writes for `function`.
pub fn log_path(function: &str) -> std::path::PathBuf {
    Stack::get().logs_dir.join(format!("{function}.log"))
}

/// Sends `call` as `api`'s caller with a fresh `X-Request-Id`, then reads its request line and
/// REPORT line. Panics when the function wrote neither within the harness's patience: a bench
/// figure without its source would be a guess.
pub async fn measure(api: Api<'_>, call: &Call<'_>) -> Sample {
    let request_id = unique("bench-");
    let tail = Tail::at_end(&log_path(call.function));
    let mut headers = vec![("x-request-id", request_id.as_str())];
    if let Some(key) = &call.idempotency_key {
        headers.push(("idempotency-key", key.as_str()));
    }
    let started = Instant::now();
    let response = api.call(call.method.clone(), &call.path, call.body.as_ref(), &headers).await;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    let round_trip_ms = started.elapsed().as_secs_f64() * 1000.0;
    // Roost's functions log one request line with the Lambda request id and the DynamoDB count;
    // the reference functions log nothing, and calls are sequential: their only new REPORT is it.
    let line =
        if super::is_reference(call.function) { None } else { Some(request_line(call.function, &request_id).await) };
    let lambda_id = line.as_ref().and_then(|l| l["span"]["requestId"].as_str()).map(str::to_owned);
    let report = tail
        .wait_for(Duration::from_secs(10), |r| lambda_id.as_ref().is_none_or(|id| &r.request_id == id))
        .await
        .unwrap_or_else(|| panic!("no REPORT line for {request_id} in {}", log_path(call.function).display()));
    Sample {
        status,
        round_trip_ms,
        handler_ms: report.duration_ms,
        ddb_requests: line.as_ref().and_then(|l| l["ddb_requests"].as_u64()).unwrap_or_default(),
        max_memory_mb: report.max_memory_mb,
        body,
    }
}
