use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::config::timeout::TimeoutConfig;
use payments::stripe::{DEFAULT_API_BASE, StripeApi};
use payments::webhook::{SqsQueue, WebhookSecrets};
use payments::{AppState, router};
use shared::config::{self, ConfigError};
use shared::{Table, clock, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    // Secrets are SSM SecureStrings read once here; the template passes their names.
    let previous = config::optional("STRIPE_WEBHOOK_SECRET_PREVIOUS_PARAMETER");
    let (secret_key, webhook_secret, previous_secret) = tokio::join!(
        async { config::secure_parameter(&ssm, &config::required("STRIPE_SECRET_KEY_PARAMETER")?).await },
        async { config::secure_parameter(&ssm, &config::required("STRIPE_WEBHOOK_SECRET_PARAMETER")?).await },
        async {
            match &previous {
                Some(name) => config::secure_parameter(&ssm, name).await.map(Some),
                None => Ok::<_, ConfigError>(None),
            }
        },
    );
    let mut secrets = vec![webhook_secret?];
    secrets.extend(previous_secret?);
    // Set only by the local runtime (localstripe); the template never sets it.
    let api_base = config::optional("STRIPE_API_BASE").unwrap_or_else(|| DEFAULT_API_BASE.to_owned());
    let stripe = StripeApi::new(&secret_key?, &api_base)?;
    // A webhook must be answered fast: a queue that hangs fails the request (Stripe retries).
    let sqs = aws_sdk_sqs::config::Builder::from(&sdk)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(3))
                .operation_timeout(Duration::from_secs(6))
                .build(),
        )
        .build();
    let state = AppState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        clock: clock::from_env()?,
        stripe: Arc::new(stripe),
        queue: Arc::new(SqsQueue {
            client: aws_sdk_sqs::Client::from_conf(sqs),
            queue_url: config::required("PAYMENT_EVENTS_QUEUE_URL")?,
        }),
        webhook_secrets: Arc::new(WebhookSecrets(secrets)),
    };
    shared::http::run(router(state)).await
}
