//! The scheduled calendar sync (template: `CalendarSyncFunction`, every 30 minutes): fetches the
//! due calendar imports' feeds and applies them (`listings::sync::run`).

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use listings::SyncState;
use listings::feeds::FeedFetcher;
use serde_json::Value;
use shared::{Table, clock, config, metrics, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    metrics::init()?;
    let sdk = config::aws_config().await;
    let state = SyncState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        clock: clock::from_env()?,
        fetcher: Arc::new(FeedFetcher::from_env()?),
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let state = state.clone();
        let deadline = shared::clock::invocation_deadline(event.context.deadline());
        metrics::flushed(async move {
            let report = listings::sync::run(&state, Some(deadline)).await?;
            tracing::info!(synced = report.synced, failed = report.failed, "calendar sync");
            Ok::<_, Error>(serde_json::to_value(report)?)
        })
    }))
    .await
}
