//! For the function crates' own tests (feature `test-support`): the sample events in
//! `events/<function>/` and replaying one through a router exactly as Lambda delivers it.

use axum::Router;
use axum::http::HeaderMap;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

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
