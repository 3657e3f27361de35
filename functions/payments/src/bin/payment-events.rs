//! The `payment-events` Lambda (template: `PaymentEventsFunction`): the payment-events queue's
//! consumer (`payments::events`).

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use payments::events::{Budget, DEFAULT_MAX_RECEIVE_COUNT, EventsState, handle_batch};
use payments::stripe::StripeApi;
use shared::{Table, clock, config, metrics, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    metrics::init()?;
    let sdk = config::aws_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let state = Arc::new(EventsState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        clock: clock::from_env()?,
        stripe: Arc::new(StripeApi::from_config(&ssm).await?),
        budget: Budget::default(),
        // The queue's RedrivePolicy maxReceiveCount (the template passes the same number).
        max_receive_count: match config::optional("MAX_RECEIVE_COUNT") {
            Some(n) => n.parse().map_err(|e| format!("MAX_RECEIVE_COUNT {n:?}: {e}"))?,
            None => DEFAULT_MAX_RECEIVE_COUNT,
        },
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let state = state.clone();
        let deadline = event.context.deadline();
        metrics::flushed(async move {
            handle_batch(&state, event.payload, Some(deadline)).await.map_err(lambda_runtime::Error::from)
        })
    }))
    .await
}
