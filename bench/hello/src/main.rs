//! The hello-world reference of `cargo roost bench` (bench/README.md): the least a Rust
//! `lambda_http` function costs on the same runtime, so Roost's functions are measured against
//! it. No AWS SDK, no tracing subscriber, no state: only what answering HTTP needs.

use lambda_http::http::header::CONTENT_TYPE;
use lambda_http::{Body, Error, Request, Response, service_fn};

/// `{"hello":"world"}` to any request.
async fn hello(_request: Request) -> Result<Response<Body>, Error> {
    let body = serde_json::json!({"hello": "world"}).to_string();
    Ok(Response::builder().status(200).header(CONTENT_TYPE, "application/json").body(Body::from(body))?)
}

// One thread: a function handles one invocation at a time, and the runtime's worker threads
// would only add to the init time and memory the reference is there to show.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(hello)).await
}
