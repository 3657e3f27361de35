use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use payment_events::{State, handle_batch};
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
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| {
        let state = state.clone();
        async move { handle_batch(&state, event.payload).await.map_err(lambda_runtime::Error::from) }
    }))
    .await
}
