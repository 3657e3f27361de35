//! The end-to-end harness: tests drive the stack that `cargo roost test` started (found through
//! the `stack.json` named by `ROOST_STACK`), through HTTP as a client would.

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

static STACK: LazyLock<Stack> = LazyLock::new(|| {
    let path = std::env::var("ROOST_STACK").unwrap_or_else(|_| {
        panic!("ROOST_STACK is not set: end-to-end tests run against the stack `cargo roost test` starts")
    });
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
});

impl Stack {
    pub fn get() -> &'static Stack {
        &STACK
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

pub fn client() -> reqwest::Client {
    static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(reqwest::Client::new);
    CLIENT.clone()
}

/// A unique name for what a test creates, so tests can run in parallel on one stack.
pub fn unique(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}{}{:x}{n}", std::process::id(), jiff::Timestamp::now().as_millisecond())
}
