//! A small load driver: tasks run with bounded concurrency, every API answer goes through
//! [`Tally::send`], which retries what a real client retries (503, 429, 502, with the same
//! request, so the same `Idempotency-Key`), checks the answer's shape (a 2xx, a problem+json, 503
//! with `Retry-After`, never later than API Gateway's 30 s) and counts it.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

/// API Gateway's integration timeout: no answer may come later.
pub const GATEWAY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `tasks` at most `limit` at a time (each on the runtime's threads, so requests race) and
/// returns their outputs in order.
pub async fn bounded<T, F>(limit: usize, tasks: impl IntoIterator<Item = F>) -> Vec<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(limit.max(1)));
    let handles: Vec<_> = tasks
        .into_iter()
        .map(|task| {
            let permits = permits.clone();
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await.expect("semaphore never closed");
                task.await
            })
        })
        .collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("load task panicked"));
    }
    out
}

/// One answer, as the client finally got it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    /// The problem's `code` (`-` for a 2xx, `gateway` for API Gateway's own `{"message"}`).
    pub code: String,
    pub body: Value,
    pub retry_after: Option<String>,
}

/// What a run saw, shared by its tasks.
#[derive(Debug, Default, Serialize)]
pub struct Counts {
    /// `"<status> <code>"` -> how many answers (every attempt, retried ones included).
    pub answers: BTreeMap<String, u64>,
    /// Attempts sent again after a 503, 429 or 502.
    pub retries: u64,
    /// Calls that still had a retryable answer after the last attempt.
    pub gave_up: u64,
    pub slowest_ms: u64,
    /// Answers that break the contract (shape, lateness), with what was sent.
    pub violations: Vec<String>,
    /// Answers by step (`book`, `pay`, ...) and status class.
    pub by_step: BTreeMap<String, BTreeMap<String, u64>>,
}

#[derive(Debug, Default)]
pub struct Tally {
    counts: Mutex<Counts>,
}

/// How many attempts a client makes at most (the first and retries).
pub const MAX_ATTEMPTS: u32 = 8;

impl Tally {
    pub fn new() -> Tally {
        Tally::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut Counts) -> R) -> R {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut counts)
    }

    /// A copy of the counts so far.
    pub fn snapshot(&self) -> Value {
        self.with(|c| serde_json::to_value(&*c).expect("counts are JSON"))
    }

    pub fn violations(&self) -> Vec<String> {
        self.with(|c| c.violations.clone())
    }

    pub fn retries(&self) -> u64 {
        self.with(|c| c.retries)
    }

    /// Every answer but the retryable ones, over every answer: the run's error rate is
    /// `1 - ok_rate` (a retried 503 counts as an error each time).
    pub fn answers(&self) -> BTreeMap<String, u64> {
        self.with(|c| c.answers.clone())
    }

    /// Sends `request()` until it gets an answer a client does not retry, at most
    /// [`MAX_ATTEMPTS`] times, waiting `Retry-After` (or a short backoff) between attempts.
    /// `step` names the call in the counts. A transport error (no answer at all) is a violation.
    pub async fn send(&self, step: &str, request: impl Fn() -> reqwest::RequestBuilder) -> Answer {
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            let answer = self.once(step, request()).await;
            // 409 `idempotency_in_progress` says "retry in a moment" (the first attempt's
            // reservation still holds), as Stripe's clients retry their idempotency conflicts.
            let retryable = matches!(answer.status, 429 | 502 | 503)
                || (answer.status == 409 && answer.code == "idempotency_in_progress");
            if !retryable {
                return answer;
            }
            if attempt >= MAX_ATTEMPTS {
                self.with(|c| c.gave_up += 1);
                return answer;
            }
            let wait = answer
                .retry_after
                .as_deref()
                .and_then(|s| s.parse::<u64>().ok())
                .map_or(backoff, Duration::from_secs)
                .min(Duration::from_secs(2));
            self.with(|c| c.retries += 1);
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
            attempt += 1;
        }
    }

    async fn once(&self, step: &str, request: reqwest::RequestBuilder) -> Answer {
        let started = Instant::now();
        let described =
            request.try_clone().and_then(|r| r.build().ok()).map(|r| format!("{} {}", r.method(), r.url().path()));
        let described = described.unwrap_or_else(|| step.to_owned());
        // A bound above the gateway's, so a gateway that never answers is seen as a violation,
        // not a hung test.
        let sent = tokio::time::timeout(GATEWAY_TIMEOUT + Duration::from_secs(10), request.send()).await;
        let elapsed = started.elapsed();
        let response = match sent {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return self.violation(step, format!("{described}: no answer: {e}")),
            Err(_) => return self.violation(step, format!("{described}: no answer in {elapsed:?}")),
        };
        let status = response.status().as_u16();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let content_type = header("content-type").unwrap_or_default();
        let retry_after = header("retry-after");
        let text = response.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        let mut problems = Vec::new();
        if elapsed > GATEWAY_TIMEOUT {
            problems.push(format!("answered after {elapsed:?}, past the gateway's 30 s"));
        }
        let code = if (200..300).contains(&status) {
            "-".to_owned()
        } else if content_type == "application/problem+json" {
            if body["status"] != status || !body["code"].is_string() {
                problems.push(format!("a problem whose status or code is wrong: {text}"));
            }
            if status == 503 && retry_after.is_none() {
                problems.push("503 without Retry-After".to_owned());
            }
            body["code"].as_str().unwrap_or("?").to_owned()
        } else if status == 429 && body == serde_json::json!({"message": "Too Many Requests"}) {
            // API Gateway's own throttle, before any function: documented, and retried.
            "gateway".to_owned()
        } else {
            problems.push(format!("neither a success nor a problem+json ({content_type}): {text}"));
            "unclean".to_owned()
        };
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        self.with(|c| {
            *c.answers.entry(format!("{status} {code}")).or_default() += 1;
            *c.by_step.entry(step.to_owned()).or_default().entry(format!("{}xx", status / 100)).or_default() += 1;
            c.slowest_ms = c.slowest_ms.max(ms);
            for p in &problems {
                c.violations.push(format!("{described} -> {status}: {p}"));
            }
        });
        Answer { status, code, body, retry_after }
    }

    fn violation(&self, step: &str, what: String) -> Answer {
        self.with(|c| {
            *c.answers.entry("0 no-answer".to_owned()).or_default() += 1;
            *c.by_step.entry(step.to_owned()).or_default().entry("none".to_owned()).or_default() += 1;
            c.violations.push(what.clone());
        });
        Answer { status: 0, code: "no-answer".into(), body: Value::String(what), retry_after: None }
    }
}

/// The share of answers that were not a success or a client error the journey expects
/// (`5xx`, `429`, no answer) among `answers` (as [`Tally::answers`] keys them).
pub fn error_rate(answers: &BTreeMap<String, u64>) -> f64 {
    let total: u64 = answers.values().sum();
    if total == 0 {
        return 0.0;
    }
    let errors: u64 = answers
        .iter()
        .filter(|(key, _)| {
            let status: u16 = key.split(' ').next().and_then(|s| s.parse().ok()).unwrap_or(0);
            status == 0 || status == 429 || status >= 500
        })
        .map(|(_, n)| n)
        .sum();
    errors as f64 / total as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_rate_counts_5xx_429_and_no_answer() {
        let answers = BTreeMap::from([
            ("200 -".to_owned(), 6),
            ("409 nights_unavailable".to_owned(), 1),
            ("503 service_unavailable".to_owned(), 1),
            ("429 gateway".to_owned(), 1),
            ("0 no-answer".to_owned(), 1),
        ]);
        assert!((error_rate(&answers) - 0.3).abs() < 1e-9);
        assert_eq!(error_rate(&BTreeMap::new()), 0.0);
    }

    #[tokio::test]
    async fn bounded_keeps_order_and_the_limit() {
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks = (0..12).map(|i| {
            let (running, peak) = (running.clone(), peak.clone());
            async move {
                let now = running.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                peak.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                i
            }
        });
        let out = bounded(3, tasks).await;
        assert_eq!(out, (0..12).collect::<Vec<_>>());
        assert!(peak.load(std::sync::atomic::Ordering::SeqCst) <= 3);
    }
}
