//! The `payouts` Lambda (template: `PayoutsFunction`, every 30 minutes): host payouts through
//! Stripe Connect (`payments::payouts`).

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use payments::payouts::{PayoutsState, run};
use payments::stripe::StripeApi;
use serde_json::Value;
use shared::{Table, clock, config, metrics, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    metrics::init()?;
    let sdk = config::aws_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let state = Arc::new(PayoutsState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        clock: clock::from_env()?,
        connect: Arc::new(StripeApi::from_config(&ssm).await?),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let state = state.clone();
        let deadline = shared::clock::invocation_deadline(event.context.deadline());
        metrics::flushed(async move {
            let report = run(&state, Some(deadline)).await?;
            tracing::info!(report = ?report, "payouts run");
            Ok::<_, Error>(serde_json::to_value(report)?)
        })
    }))
    .await
}
