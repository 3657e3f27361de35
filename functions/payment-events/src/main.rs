use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use payment_events::{Budget, DEFAULT_MAX_RECEIVE_COUNT, State, handle_batch};
use payments::stripe::{DEFAULT_API_BASE, StripeApi};
use shared::config;
use shared::{Table, clock, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let secret_key = config::secure_parameter(&ssm, &config::required("STRIPE_SECRET_KEY_PARAMETER")?).await?;
    // Set only by the local runtime (localstripe); the template never sets it.
    let api_base = config::optional("STRIPE_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
    let state = Arc::new(State {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        clock: clock::from_env()?,
        stripe: Arc::new(StripeApi::new(&secret_key, &api_base)?),
        budget: Budget::default(),
        // The queue's RedrivePolicy maxReceiveCount (the template passes the same number).
        max_receive_count: match config::optional("MAX_RECEIVE_COUNT") {
            Some(n) => n.parse().map_err(|e| format!("MAX_RECEIVE_COUNT {n:?}: {e}"))?,
            None => DEFAULT_MAX_RECEIVE_COUNT,
        },
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| {
        let state = state.clone();
        let deadline = event.context.deadline();
        async move { handle_batch(&state, event.payload, Some(deadline)).await.map_err(lambda_runtime::Error::from) }
    }))
    .await
}
