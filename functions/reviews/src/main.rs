use std::sync::Arc;

use reviews::{AppState, router};
use shared::config;
use shared::cursor::CursorKey;
use shared::{Table, clock, telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init();
    let sdk = config::aws_config().await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let cursor_secret = config::secure_parameter(&ssm, &config::required("CURSOR_KEY_PARAMETER")?).await?;
    let state = AppState {
        table: Arc::new(Table::new(&sdk, config::required("TABLE_NAME")?)),
        clock: clock::from_env()?,
        cursors: Arc::new(CursorKey::new(&cursor_secret)?),
    };
    shared::http::run(router(state)).await
}
