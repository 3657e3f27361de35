//! For the function crates' own tests (feature `test-support`): the sample events in
//! `events/<function>/`, replaying one through a router exactly as Lambda delivers it, and the
//! offline dependencies a replay runs with (a table nobody can reach, a cursor key).

use axum::Router;
use axum::http::HeaderMap;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::Table;
use crate::cursor::CursorKey;

/// An endpoint nothing listens on: an AWS client pointed at it fails every call, loudly (a 500
/// in a replayed answer), so a replay proves the request was answered without AWS.
pub const OFFLINE_ENDPOINT: &str = "http://127.0.0.1:9";

/// The table, on `OFFLINE_ENDPOINT`.
pub fn offline_table() -> Table {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    let dynamodb = aws_sdk_dynamodb::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::for_tests())
        .endpoint_url(OFFLINE_ENDPOINT);
    Table::from_conf(dynamodb, "replay")
}

/// A cursor key for replays (a fixed secret: forged cursors in the samples must fail with it).
pub fn replay_cursor_key() -> CursorKey {
    CursorKey::new(&secrecy::SecretString::from("k".repeat(48))).expect("cursor key")
}

fn events_dir(function: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(function)
}

/// The sample files of `events/<function>/`, sorted: a test lists an expectation for each.
pub fn sample_files(function: &str) -> Vec<String> {
    let dir = events_dir(function);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

/// The text of `events/<function>/<file>`.
pub fn sample(function: &str, file: &str) -> String {
    let path = events_dir(function).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replays an API Gateway v2 event through `router` with the request layers, as lambda_http
/// would: the status, headers and JSON body (`Null` if not JSON).
pub async fn replay(router: Router, event: &str) -> (u16, HeaderMap, Value) {
    let request = lambda_http::request::from_str(event).unwrap_or_else(|e| panic!("not an API Gateway event: {e}"));
    let response = crate::http::with_request_layers(router).oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, headers, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// One sample's expected problem answer: (file, status, problem `code`, the field its first
/// `errors` entry names, if any).
pub type ProblemAnswer<'a> = (&'a str, u16, &'a str, Option<&'a str>);

/// Replays every sample of `events/<function>/` through a fresh `router()` and checks each is
/// answered with its problem in `expected` (which must list every file, sorted), as
/// `application/problem+json`, echoing the caller's request id (the file name by convention).
pub async fn assert_problem_answers(function: &str, router: impl Fn() -> Router, expected: &[ProblemAnswer<'_>]) {
    let listed: Vec<String> = expected.iter().map(|(f, ..)| f.to_string()).collect();
    assert_eq!(sample_files(function), listed, "every file in events/{function} has an expectation here");
    for (file, status, code, field) in expected {
        let (got_status, headers, body) = replay(router(), &sample(function, file)).await;
        assert_eq!(got_status, *status, "{file}: {body}");
        assert_eq!(body["code"], *code, "{file}: {body}");
        assert_eq!(headers["content-type"], "application/problem+json", "{file}");
        if let Some(field) = field {
            assert_eq!(body["errors"][0]["field"], *field, "{file}: {body}");
        }
        assert_eq!(
            headers["x-request-id"],
            file.trim_end_matches(".json"),
            "{file}: the caller's request id is echoed"
        );
    }
}

/// The business metrics a test's code counted (`crate::metrics::count`), on this thread only:
/// `#[tokio::test]`'s runtime runs every task on the test's thread, and tests running in
/// parallel on other threads do not add to it. A few lines rather than metrics-util's
/// `DebuggingRecorder`, which brings a registry, crossbeam and a second `rand` and `hashbrown`.
pub struct BusinessCounts {
    recorder: &'static CountingRecorder,
    _guard: ::metrics::LocalRecorderGuard<'static>,
}

impl BusinessCounts {
    /// Starts counting on this thread until the value is dropped.
    pub fn start() -> Self {
        // Leaked: a few bytes per test, and the guard must borrow it for 'static.
        let recorder: &'static CountingRecorder = Box::leak(Box::default());
        Self { recorder, _guard: ::metrics::set_default_local_recorder(recorder) }
    }

    /// How many times `metric` was counted since `start`.
    pub fn get(&self, metric: crate::metrics::Business) -> u64 {
        let counters = self.recorder.counters.lock().expect("counters lock");
        counters.get(metric.name()).map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Every metric counted at least once, with its count, sorted by name.
    pub fn all(&self) -> Vec<(String, u64)> {
        let counters = self.recorder.counters.lock().expect("counters lock");
        let mut all: Vec<(String, u64)> = counters
            .iter()
            .map(|(name, c)| (name.clone(), c.load(std::sync::atomic::Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        all.sort();
        all
    }
}

#[derive(Default)]
struct CountingRecorder {
    counters: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<std::sync::atomic::AtomicU64>>>,
}

impl ::metrics::Recorder for CountingRecorder {
    fn describe_counter(&self, _: ::metrics::KeyName, _: Option<::metrics::Unit>, _: ::metrics::SharedString) {}
    fn describe_gauge(&self, _: ::metrics::KeyName, _: Option<::metrics::Unit>, _: ::metrics::SharedString) {}
    fn describe_histogram(&self, _: ::metrics::KeyName, _: Option<::metrics::Unit>, _: ::metrics::SharedString) {}

    fn register_counter(&self, key: &::metrics::Key, _: &::metrics::Metadata<'_>) -> ::metrics::Counter {
        let mut counters = self.counters.lock().expect("counters lock");
        ::metrics::Counter::from_arc(counters.entry(key.name().to_owned()).or_default().clone())
    }

    fn register_gauge(&self, _: &::metrics::Key, _: &::metrics::Metadata<'_>) -> ::metrics::Gauge {
        ::metrics::Gauge::noop()
    }

    fn register_histogram(&self, _: &::metrics::Key, _: &::metrics::Metadata<'_>) -> ::metrics::Histogram {
        ::metrics::Histogram::noop()
    }
}
