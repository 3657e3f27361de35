//! Cold starts (issue 18, part 1): each function's idle processes are stopped through the
//! runtime (`DELETE <runtime_url>/_roost/processes/<Function>`), so the next invocation starts a
//! new process, whose REPORT line carries `Init Duration` and `Max Memory Used`. The same
//! invocation's `Duration` is the first request after a cold start; one more invocation right
//! after it is the warm one to compare it with (TLS and credentials paid in init, or not).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use super::measure::{Call, log_path};
use super::reports::{Report, Tail};
use super::stats::{Summary, summarize};
use crate::{Api, Stack, client};

/// How a function is woken: through the HTTP API as a client would, or invoked directly with
/// the event its trigger (queue, stream, schedule) would send.
pub enum Wake<'a> {
    Http(Api<'a>, Call<'a>),
    Invoke(&'a str, Value),
}

impl Wake<'_> {
    pub fn function(&self) -> &str {
        match self {
            Wake::Http(_, call) => call.function,
            Wake::Invoke(function, _) => function,
        }
    }

    async fn send(&self) {
        match self {
            Wake::Http(api, call) => {
                let mut headers = Vec::new();
                if let Some(key) = &call.idempotency_key {
                    headers.push(("idempotency-key", key.as_str()));
                }
                let response = api.call(call.method.clone(), &call.path, call.body.as_ref(), &headers).await;
                assert!(response.status().as_u16() < 500, "{} answered {}", call.path, response.status());
            }
            Wake::Invoke(function, event) => {
                let (outcome, body) = Stack::get().invoke(function, event).await;
                assert_eq!(outcome, "response", "{function}: {body}");
            }
        }
    }
}

/// An empty batch, as an SQS or DynamoDB Streams event source would never send but every
/// consumer must take: the consumer's init is what is measured, not its work.
pub fn empty_batch() -> Value {
    json!({"Records": []})
}

/// EventBridge's scheduled event, as the sweep's schedule sends it.
pub fn scheduled_event() -> Value {
    json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
}

/// A function's cold starts over the runs.
#[derive(Debug, Clone, Serialize)]
pub struct ColdStarts {
    pub init_ms: Summary,
    /// The most any of its processes used (REPORT `Max Memory Used`, the process's peak RSS).
    pub max_rss_mb: u64,
    pub memory_size_mb: u64,
    /// The invocation that followed each cold start (its handler `Duration`).
    pub first_request_ms: Summary,
    /// The invocation right after it, warm.
    pub warm_request_ms: Summary,
}

/// Stops `function`'s idle processes; the runtime answers once they have exited.
pub async fn stop_idle(function: &str) {
    let url = format!("{}/_roost/processes/{function}", Stack::get().runtime_url);
    let response = client().delete(&url).send().await.expect("runtime reachable");
    assert_eq!(response.status().as_u16(), 200, "DELETE {url}: {}", response.text().await.unwrap_or_default());
}

async fn one_cold_start(wake: &Wake<'_>) -> (Report, Report) {
    let function = wake.function();
    stop_idle(function).await;
    let tail = Tail::at_end(&log_path(function));
    wake.send().await;
    let cold = tail
        .wait_for(Duration::from_secs(15), |r| r.init_ms.is_some())
        .await
        .unwrap_or_else(|| panic!("{function}: no REPORT with an Init Duration after a cold start"));
    let tail = Tail::at_end(&log_path(function));
    wake.send().await;
    let warm = tail
        .wait_for(Duration::from_secs(15), |_| true)
        .await
        .unwrap_or_else(|| panic!("{function}: no REPORT for the warm invocation"));
    (cold, warm)
}

/// Every function's cold starts, in the order given, `runs` each, interleaved run by run so a
/// noisy moment of the machine hits every function alike rather than one.
pub async fn all_cold_starts(wakes: &[Wake<'_>], runs: usize) -> BTreeMap<String, ColdStarts> {
    let mut by_function: BTreeMap<String, Vec<(Report, Report)>> = BTreeMap::new();
    for _ in 0..runs.max(1) {
        for wake in wakes {
            by_function.entry(wake.function().to_owned()).or_default().push(one_cold_start(wake).await);
        }
    }
    by_function.into_iter().map(|(function, reports)| (function, summarize_runs(&reports))).collect()
}

fn summarize_runs(reports: &[(Report, Report)]) -> ColdStarts {
    let of = |pick: &dyn Fn(&(Report, Report)) -> f64| {
        summarize(&reports.iter().map(pick).collect::<Vec<_>>()).expect("at least one run")
    };
    ColdStarts {
        init_ms: of(&|(cold, _)| cold.init_ms.unwrap_or_default()),
        max_rss_mb: reports.iter().map(|(cold, warm)| cold.max_memory_mb.max(warm.max_memory_mb)).max().unwrap_or(0),
        memory_size_mb: reports.first().map_or(0, |(cold, _)| cold.memory_mb),
        first_request_ms: of(&|(cold, _)| cold.duration_ms),
        warm_request_ms: of(&|(_, warm)| warm.duration_ms),
    }
}
