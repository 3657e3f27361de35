use std::sync::Arc;
use std::time::SystemTime;

use lambda_runtime::{LambdaEvent, service_fn};
use notifications::{AppState, DynamoInbox, Ses, handle_batch};
use shared::config;
use shared::{Table, clock, metrics, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    telemetry::init();
    metrics::init()?;
    let sdk = config::aws_config().await;
    let table = Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?));
    let state = Arc::new(AppState {
        table: table.clone(),
        inbox: Arc::new(DynamoInbox { table }),
        clock: clock::from_env()?,
        mailer: Arc::new(Ses { client: ses_client(&sdk), from: config::required("EMAIL_FROM")? }),
    });
    lambda_runtime::run(service_fn(move |event: LambdaEvent<aws_lambda_events::event::sqs::SqsEvent>| {
        let state = state.clone();
        metrics::flushed(async move {
            let remaining = event.context.deadline().duration_since(SystemTime::now()).unwrap_or_default();
            handle_batch(&state, event.payload, remaining).await.map_err(lambda_runtime::Error::from)
        })
    }))
    .await
}

/// SES without SDK retries: a retried `SendEmail` whose first attempt SES accepted (answer lost)
/// sends the e-mail twice; a failed send is retried by the redelivery under a new claim instead.
fn ses_client(sdk: &aws_config::SdkConfig) -> aws_sdk_sesv2::Client {
    let conf = aws_sdk_sesv2::config::Builder::from(sdk)
        .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_sesv2::Client::from_conf(conf)
}
