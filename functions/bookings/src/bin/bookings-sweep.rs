//! The scheduled sweep (template: `BookingsSweepFunction`, every 5 minutes): writes the statuses
//! time changed (`bookings::lifecycle::sweep`). Readers never wait for it: every view computes
//! the effective status itself.

use std::sync::Arc;

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use shared::{SharedClock, Table, clock, config, metrics, telemetry};

#[tokio::main]
async fn main() -> Result<(), Error> {
    telemetry::init();
    metrics::init()?;
    let sdk = config::aws_config().await;
    let table = Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?));
    let clock: SharedClock = clock::from_env()?;
    lambda_runtime::run(service_fn(move |_: LambdaEvent<Value>| {
        let (table, clock) = (table.clone(), clock.clone());
        metrics::flushed(async move {
            let report = bookings::lifecycle::sweep(&table, clock.now()).await?;
            tracing::info!(expired = report.expired, completed = report.completed, skipped = report.skipped, "sweep");
            Ok::<_, Error>(serde_json::to_value(report)?)
        })
    }))
    .await
}
