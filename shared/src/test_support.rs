//! A stand-in AWS JSON-protocol endpoint on loopback, so the real SDK call path (serialisation,
//! retries, interceptors, error parsing) runs in unit tests without an emulator.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

type Handler = dyn Fn(&str, &[u8]) -> (u16, String) + Send + Sync;

pub struct AwsStub {
    addr: std::net::SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl AwsStub {
    /// `handler(target, body)` answers each request with (status, JSON body); an error body uses
    /// `{"__type": "...", "message": "..."}` like the real services.
    pub async fn start(handler: impl Fn(&str, &[u8]) -> (u16, String) + Send + Sync + 'static) -> Self {
        let hits = Arc::new(AtomicUsize::new(0));
        let state: (Arc<Handler>, Arc<AtomicUsize>) = (Arc::new(handler), hits.clone());
        let app = axum::Router::new().fallback(answer).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, hits }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn answer(
    State((handler, hits)): State<(Arc<Handler>, Arc<AtomicUsize>)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (status, body) = handler(&target, &body);
    (StatusCode::from_u16(status).unwrap(), [("content-type", "application/x-amz-json-1.0")], body).into_response()
}

pub fn dynamodb_client(url: &str) -> aws_sdk_dynamodb::config::Builder {
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(
            RetryConfig::standard().with_max_attempts(3).with_initial_backoff(std::time::Duration::from_millis(1)),
        )
        .endpoint_url(url)
}

pub async fn body_json(res: Response) -> serde_json::Value {
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
