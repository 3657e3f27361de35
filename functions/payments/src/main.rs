//! The `payments` Lambda (template: `PaymentsFunction`): the HTTP routes of the context.

use std::sync::Arc;

use payments::queue::SqsQueue;
use payments::signature::WebhookSecrets;
use payments::stripe::StripeApi;
use payments::{AppState, router};
use shared::{Table, clock, config, metrics, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    metrics::init()?;
    let sdk = config::aws_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    // Secrets are SSM SecureStrings read once here; the template passes their names.
    let (stripe, webhook_secrets) = tokio::join!(StripeApi::from_config(&ssm), WebhookSecrets::from_config(&ssm));
    let stripe = Arc::new(stripe?);
    let state = AppState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        clock: clock::from_env()?,
        stripe: stripe.clone(),
        connect: stripe,
        queue: Arc::new(SqsQueue::from_config(&sdk)?),
        webhook_secrets: Arc::new(webhook_secrets?),
    };
    shared::http::run(router(state)).await
}
