use std::sync::Arc;

use messaging::{AppState, router};
use shared::config;
use shared::cursor::CursorKey;
use shared::{Table, clock, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let state = AppState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        clock: clock::from_env()?,
        cursors: Arc::new(CursorKey::from_parameter(&sdk).await?),
    };
    shared::http::run(router(state)).await
}
