use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sns::config::timeout::TimeoutConfig;
use events_relay::{AppState, SnsPublisher, handle_batch};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use shared::{config, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    // A publish that hangs must fail (and be retried from its record) well inside the
    // function's timeout, rather than time the whole batch out.
    let sns = aws_sdk_sns::config::Builder::from(&sdk)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(events_relay::PUBLISH_BUDGET)
                .build(),
        )
        .build();
    let publisher =
        SnsPublisher::new(aws_sdk_sns::Client::from_conf(sns), config::required("DOMAIN_EVENTS_TOPIC_ARN")?);
    let state = Arc::new(AppState { publisher });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let state = state.clone();
        let deadline = shared::clock::invocation_deadline(event.context.deadline());
        async move { handle_batch(&state, &event.payload, Some(deadline)).await }
    }))
    .await
}
